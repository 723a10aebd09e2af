"""How the payload's parts become the one ``__tlens__`` module (lsp_server/kernel/payload/__init__.py).

The parts must behave the same read one by one (with their relative imports) and joined in the
kernel (one namespace, imports blanked): each imports only from parts before it, uses no name it
neither defines nor imports, and defines no top-level name another part defines too.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import re
import subprocess
import sys
import symtable
from pathlib import Path

import pytest

from lsp_server.kernel import payload
from lsp_server.kernel.payload import PARTS, install_code, kernel_text, part_filename, payload_hash, payload_parts, payload_source

from .installed import HookedTransformer, answer, install

FOLDER = Path(payload.__file__).parent
SOURCES = {part: (FOLDER / f"{part}.py").read_text(encoding="utf-8") for part in PARTS}


def _top_level_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names the part defines, names it imports) at its top level."""
    defined, imported = set(), set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined |= {name for t in targets for name in _bound(t)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return defined, imported


def _bound(target: ast.expr) -> set[str]:
    """Names an assignment target binds (``_API["x"] = ...`` binds none)."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return {name for t in target.elts for name in _bound(t)}
    return _bound(target.value) if isinstance(target, ast.Starred) else set()


def _globals_read(table: symtable.SymbolTable) -> set[str]:
    """Names a part reads from its module namespace, in any function or class inside it."""
    names = {s.get_name() for s in table.get_symbols()
             if s.is_referenced() and (s.is_global() or table.get_type() == "module")}
    for child in table.get_children():
        names |= _globals_read(child)
    return names


def test_every_file_of_the_folder_is_a_declared_part():
    files = {p.stem for p in FOLDER.glob("*.py")} - {"__init__"}
    assert files == set(PARTS)
    assert len(PARTS) == len(set(PARTS))


@pytest.mark.parametrize("part", PARTS)
def test_a_part_imports_stdlib_and_earlier_parts_only(part):
    earlier = set(PARTS[: PARTS.index(part)])
    for node in ast.parse(SOURCES[part]).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            assert node.level == 1 and node.module in earlier, f"{part} imports .{node.module}"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            assert all(m.split(".")[0] in sys.stdlib_module_names for m in modules), modules


@pytest.mark.parametrize("part", PARTS)
def test_a_part_reads_only_names_it_defines_or_imports(part):
    defined, imported = _top_level_names(ast.parse(SOURCES[part]))
    unknown = _globals_read(symtable.symtable(SOURCES[part], part, "exec")) - defined - imported - set(dir(builtins))
    assert not unknown, f"{part} reads names it neither defines nor imports: {sorted(unknown)}"


def test_no_two_parts_define_the_same_name():
    owner: dict[str, str] = {}
    for part in PARTS:
        for name in _top_level_names(ast.parse(SOURCES[part]))[0]:
            assert name not in owner, f"{name} is defined in {owner.get(name)} and in {part}"
            owner[name] = part


def test_parts_import_on_their_own_without_torch():
    code = ("import importlib, sys\n"
            f"for part in {PARTS!r}:\n"
            "    importlib.import_module('lsp_server.kernel.payload.' + part)\n"
            "print(sorted(m for m in ('torch', 'transformer_lens') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=FOLDER.parents[2])
    assert out.stdout.strip() == "[]"


def test_kernel_text_blanks_relative_imports_and_keeps_lines():
    source = 'import json\nfrom .core import (\n    TlensError,\n)\nfrom .inputs import _eval\n\n\ndef f():\n    return 1\n'
    text = kernel_text(source)
    assert text.splitlines() == ["import json", "", "", "", "", "", "", "def f():", "    return 1"]
    with pytest.raises(ValueError, match="line 2: a relative import must be at the top level"):
        kernel_text("def f():\n    from .core import TlensError\n")


def test_the_kernel_gets_every_part_in_order_with_its_imports_blanked():
    assert [part for part, _ in payload_parts()] == list(PARTS)
    for part, text in payload_parts():
        assert len(text.splitlines()) == len(SOURCES[part].splitlines())
        assert not re.search(r"^\s*from \.", text, flags=re.M)
    source = payload_source()
    assert all(text in source for _, text in payload_parts())
    assert payload_hash() == hashlib.sha256(source.encode()).hexdigest()[:16]
    assert repr(payload_hash()) in install_code()


def test_the_joined_source_is_one_module_with_the_installed_names():
    joined: dict = {}
    exec(compile(payload_source(), "<joined>", "exec"), joined)
    installed = vars(install())
    assert {n for n in joined if not n.startswith("__")} == {n for n in installed if not n.startswith("__")} - {"PAYLOAD_HASH"}


def test_each_part_is_compiled_under_its_own_file_name_at_its_own_lines(tlens):
    for fn, part in [(tlens.call, "core"), (tlens.probe, "environment"), (tlens._metric_reads, "metric_reads"),
                     (tlens._SweepReplay._chunk_fast, "sweep_replay"), (tlens.live_state, "live")]:
        code = fn.__code__
        assert code.co_filename == part_filename(part)
        assert SOURCES[part].splitlines()[code.co_firstlineno - 1].lstrip().startswith(f"def {fn.__name__}(")


def test_a_traceback_from_the_kernel_names_the_part_file_and_line(user_ns, tlens):
    class BrokenModel(HookedTransformer):
        def reset_hooks(self, including_permanent=False):
            raise RuntimeError("reset failed")

    user_ns["model"] = BrokenModel()
    out = answer(tlens, "live_reset_hooks", var="model")
    assert out["code"] == "exception" and out["error"] == "RuntimeError: reset failed"
    frames = re.findall(r'File "(<tlens-payload/\w+\.py>)", line (\d+), in (\w+)', out["traceback"])
    assert frames[0][0] == part_filename("core") and frames[-1][0] == part_filename("live")
    for filename, line, _ in frames:
        part = filename[len("<tlens-payload/"):-len(".py>")]
        assert SOURCES[part].splitlines()[int(line) - 1].strip()  # a line of code, not a blanked import
    assert "model.reset_hooks(including_permanent=False)" in SOURCES["live"].splitlines()[int(frames[-1][1]) - 1]


def test_install_binds_only_tlens_and_the_user_namespace(user_ns, tlens):
    assert set(user_ns) == {"__builtins__", "__tlens__"}
    assert tlens._NS is user_ns and tlens._user_ns() is user_ns
    assert tlens.PAYLOAD_API == 1 and tlens.PAYLOAD_HASH == payload_hash()
    assert sorted(tlens._API) == ["assign", "collect", "live_picture", "live_reset_hooks", "live_state", "live_tokenizer",
                                  "planned", "prepare", "probe", "release", "run", "setup_begin", "setup_step"]
