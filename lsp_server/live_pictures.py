"""Pictures of live tensors: in the hover of a cache key, and large in the heatmap panel.

With a kernel attached, the hover of ``cache["pattern", 5]`` (and of residual and component
activations, a neuron, ``@ direction``; see ``analysis/picture_target.py``) gets a picture drawn by
the kernel's payload from the live tensor (``live_picture`` in ``kernel/payload/pictures.py``).

Rules:
* computed within the hover request, which waits at most ``WAIT_S`` for it; a slower one says "hover
  again" and lands in the cache when it is done;
* cached per kernel generation (a busy spell of the kernel that is not ours, such as a cell, starts
  a new one) and per arguments; the payload also memoises per execution count;
* never started while the user's cell runs or a sweep runs (the hover says why);
* editors that show no images in hovers (Neovim, other terminal editors) get a text table instead,
  and VS Code an "Open in panel" link (``tlens.client.openPicture {id}``, which asks
  ``tlens.livePicture {id}`` for the large picture with every cell's value).
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from .analysis.picture_target import PictureTarget, picture_target
from .handlers import command
from .kernel.errors import KernelError
from .workspace import View

if TYPE_CHECKING:  # pragma: no cover
    from .server import TlensServer

log = logging.getLogger(__name__)

WAIT_S = 2.0  # the longest a hover waits for the kernel's picture
CALL_TIMEOUT_S = 30.0
HOVER_MAX_CHARS = 60_000  # base64 PNG in a hover: VS Code cuts hover markdown at 100,000 characters
KEPT = 64  # pictures (and link targets) kept
OPEN_COMMAND = "tlens.client.openPicture"  # the extension's command behind "Open in panel"
# Clients whose hovers show Markdown but no images (checked against clientInfo.name, lower case).
NO_IMAGES = ("neovim", "nvim", "vim", "emacs", "eglot", "lsp-mode", "helix", "kakoune", "sublime")
BUSY = "the kernel is running a cell; hover again when it has finished"
SWEEPING = "a patch sweep is running in the kernel; hover again when it has finished"
PENDING = "the kernel is drawing it; hover again in a moment"


class PictureService:
    """Live pictures: the kernel draws them, this keeps them per kernel generation."""

    def __init__(self, server: "TlensServer") -> None:
        self.server = server
        self.client_name: str | None = None  # clientInfo.name from initialize
        self._done: dict[tuple, dict | str] = {}  # (generation, id, size) -> answer, or why there is none
        self._running: dict[tuple, asyncio.Task] = {}
        self._targets: dict[str, PictureTarget] = {}  # id -> target ("Open in panel" links)

    def images(self) -> bool:
        """Whether the client shows images in hover Markdown."""
        caps = self.server.client_capabilities
        hover = caps.text_document.hover if caps and caps.text_document else None
        formats = hover.content_format if hover is not None else None
        if formats is not None and types.MarkupKind.Markdown not in formats:
            return False
        name = (self.client_name or "").lower()
        return not any(word in name for word in NO_IMAGES)

    def _generation(self) -> tuple[int, int]:
        return id(self.server.kernel.holder.bridge), self.server.live.user_runs

    # -- hover

    async def hover_section(self, view: View, offset: int) -> str | None:
        """The picture part of the hover at ``offset`` (None: no live tensor there)."""
        if self.server.live.facts is None:
            return None
        target = picture_target(view.analysis, offset)
        if target is None:
            return None
        self._remember(self._targets, target.id, target)
        images = self.images()
        answer = await self.picture(target, "hover", WAIT_S)
        return picture_markdown(target, answer, images, link=images)

    async def picture(self, target: PictureTarget, size: str, wait: float) -> dict | str:
        """The payload's answer for ``target``, or a sentence saying why there is none (yet)."""
        bridge = self.server.kernel.holder.bridge
        if bridge is None or bridge.state in ("dead", "none", "starting"):
            return "no live kernel"
        key = (self._generation(), target.id, size)
        if key in self._done:
            return self._done[key]
        task = self._running.get(key)
        if task is None:
            sweep = self.server.sweeps.running
            if sweep is not None and not sweep.done():
                return SWEEPING
            if bridge.state == "busy" and not bridge.executing:
                return BUSY
            task = asyncio.ensure_future(self._draw(bridge, key, target, size))
            self._running[key] = task
        try:
            return await asyncio.wait_for(asyncio.shield(task), wait)
        except asyncio.TimeoutError:
            return PENDING

    async def _draw(self, bridge, key: tuple, target: PictureTarget, size: str) -> dict | str:
        try:
            async with self.server.live.quiet():
                answer: dict | str = await bridge.call_payload(
                    "live_picture", timeout=CALL_TIMEOUT_S, size=size, max_chars=HOVER_MAX_CHARS, **target.args())
        except KernelError as e:  # a payload error (bad index, not cached) or the kernel went away
            answer = f"no picture: {e}"
        finally:
            self._running.pop(key, None)
        if key[0] == self._generation():  # a cell ran meanwhile: the picture may be of old values
            self._remember(self._done, key, answer)
        return answer

    @staticmethod
    def _remember(store: dict, key: Any, value: Any) -> None:
        store[key] = value
        while len(store) > KEPT:
            store.pop(next(iter(store)))

    # -- the panel

    async def large(self, args: dict) -> dict:
        """``tlens.livePicture``: the picture large, with its cells, as the heatmap panel shows results."""
        target = self._targets.get(str(args.get("id", "")))
        if target is None and args.get("cache") and args.get("key"):
            target = PictureTarget(str(args["cache"]), str(args["key"]), (), 0, 0, tuple(args.get("index") or ()),
                                   args.get("direction"), args.get("tokens"))
        if target is None:
            return {"error": "this picture is no longer known to the server; hover the cache key again."}
        answer = await self.picture(target, "large", CALL_TIMEOUT_S)
        if isinstance(answer, str):
            return {"error": answer}
        return panel_payload(target, answer)


# ------------------------------------------------------------------------------ Markdown


def picture_markdown(target: PictureTarget, answer: dict | str, images: bool, link: bool) -> str:
    """The hover's picture section: a caption, the image (or a text table), notes, the panel link."""
    if isinstance(answer, str):
        return f"*Live picture of `{target.expression()}`: {answer}.*"
    caption = f"**Live** `{target.expression()}`: {describe(answer)}"
    notes = list(answer.get("notes") or []) + list(target.notes)
    lines = [caption]
    if answer.get("png") and images:
        lines.append(f"![live picture of {target.key}](data:image/png;base64,{answer['png']})")
        if answer.get("summary"):
            lines.append(answer["summary"])
    else:
        lines += [t for t in (answer.get("summary"), answer.get("table")) if t]
    tokens = answer.get("tokens")
    if tokens and len(tokens) <= 32:
        lines.append("tokens: " + " ".join("`" + repr(t).replace("`", "'") + "`" for t in tokens))
    footer = notes + [f"kernel execution [{answer['execution_count']}]" if answer.get("execution_count") else "",
                      f"{answer.get('elapsed_ms', 0):.0f} ms in the kernel"]
    lines.append("*" + " · ".join(f for f in footer if f) + "*")
    if link and answer.get("png"):
        uri = f"command:{OPEN_COMMAND}?" + urllib.parse.quote(json.dumps([{"id": target.id}]))
        lines.append(f"[Open in panel]({uri} \"the picture large, with the value under the mouse\")")
    return "\n\n".join(lines)


def describe(answer: dict) -> str:
    """What the picture shows, in words."""
    kind, shape = answer.get("kind"), answer.get("shape") or []
    if kind == "heads":
        marked = answer.get("marked") or {}
        framed = f"; framed: H{marked['head']}, the most attention off the diagonal and off BOS" if marked else ""
        return f"{shape[0]} heads (query × key each, left to right, top to bottom){framed}"
    if kind == "head":
        return "one head (rows: query, columns: key)"
    if kind == "strip":
        return "a value per position" + (" (L2 norm)" if any("norm" in n for n in answer.get("notes", [])) else "")
    if kind == "heatmap":
        axes = answer.get("axes") or []
        words = {"layer": "component", "pos": "position", "head": "head", "query": "query", "key": "key"}
        shown = " × ".join(words.get(a, a) for a in axes)
        lens = " (logit lens)" if axes == ["layer", "pos"] and any(n.startswith("projected on") for n in answer.get("notes", [])) else ""
        return f"{shown}{lens}"
    return answer.get("summary") or "nothing to draw"


def panel_payload(target: PictureTarget, answer: dict) -> dict:
    """The large picture as the heatmap panel takes a result (``SweepResult`` fields, kind "picture")."""
    return {
        "uri": "", "line": 0, "kind": "picture", "title": f"Live: {target.expression()}", "png": answer.get("png") or "",
        "values": [], "rowLabels": [], "colLabels": [], "panelLabels": None, "headLabels": None,
        "partial": False, "metric": describe(answer),
        "summary": (answer.get("summary") or "").replace("**", ""),  # plain text in the panel
        "panels": answer.get("panels") or [], "notes": answer.get("notes") or [], "history": [],
    }


def register(server: "TlensServer") -> None:
    """Register ``tlens.livePicture`` on ``server``."""
    service = server.pictures

    @command(server, "tlens.livePicture")
    async def live_picture(ls, args: dict) -> Any:
        return await service.large(args)


def client_name(params: types.InitializeParams) -> str | None:
    return params.client_info.name if params.client_info is not None else None
