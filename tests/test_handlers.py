"""The one registration call: a handler that raises answers its default and reports the crash once."""

from __future__ import annotations

import asyncio

from lsp_server.handlers import command, handles


class FakeServer:
    def __init__(self):
        self.registered: dict[str, tuple] = {}
        self.errors: list[str] = []

    def feature(self, method, options=None):
        return lambda fn: self.registered.setdefault(method, (fn, options))

    def command(self, name):
        return lambda fn: self.registered.setdefault(name, (fn, None))

    def report_error(self, what):
        self.errors.append(what)


def test_a_crashing_feature_answers_its_default_and_reports_the_method():
    ls = FakeServer()

    @handles(ls, "textDocument/inlayHint", options="opts", default=[])
    def broken(ls, params):
        raise ValueError("bug")

    fn, options = ls.registered["textDocument/inlayHint"]
    assert options == "opts" and fn(ls, object()) == [] and ls.errors == ["textDocument/inlayHint"]


def test_commands_get_their_options_object_or_an_empty_one():
    ls = FakeServer()
    seen = []

    @command(ls, "tlens.thing")
    async def thing(ls, args: dict):
        seen.append(args)
        return args.get("x")

    fn, _ = ls.registered["tlens.thing"]
    assert asyncio.run(fn(ls, {"x": 1})) == 1
    assert asyncio.run(fn(ls)) is None and seen[-1] == {}  # an editor may send no arguments
    assert asyncio.run(fn(ls, ["not", "a", "dict"])) is None and seen[-1] == {}
    assert ls.errors == []
