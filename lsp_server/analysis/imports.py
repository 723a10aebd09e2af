"""Names bound by import statements, and the workspace modules they come from.

``from utils import patch_head as ph`` binds ``ph`` to ``patch_head`` of the module ``utils``;
``import helpers as h`` binds ``h`` to the module itself. Which file a module is, and its analysis,
is the business of :class:`ModuleLinks` (the server and the command line implement it over the
workspace's files); this module only reads the syntax and follows a name into the analysis it gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .syntax import Node, text

if TYPE_CHECKING:
    from .document import Analysis
    from .scopes import Definition

# Installed libraries a workspace may also hold a copy of (a fork in a research repository): their
# names are never followed into workspace files.
LIBRARIES = frozenset({"transformer_lens", "sae_lens", "torch", "numpy", "einops", "functools", "typing"})


@dataclass(frozen=True)
class Imported:
    """What an imported name stands for: ``attr`` of module ``module`` (None: the module itself)."""

    module: str  # dotted, without the leading dots of a relative import
    level: int  # leading dots: 0 for an absolute import
    attr: str | None

    @property
    def from_library(self) -> bool:
        """An installed library's name (never followed into a workspace copy of it)."""
        return self.module.split(".")[0] in LIBRARIES


class ModuleLinks(Protocol):
    """The workspace modules one document can import, and the documents that import it."""

    path: Path  # the document's own file

    def resolve(self, name: str, level: int) -> Path | None:
        """The workspace file module ``name`` (``level`` leading dots) is, imported from this document."""

    def library_copy(self, name: str) -> Path | None:
        """The workspace's own copy of the installed library ``name`` (see :data:`LIBRARIES`) that this
        document would import instead, if there is one: a fork may have hook points the library has not."""

    def module(self, name: str, level: int) -> "Analysis | None":
        """The analysis of the workspace file ``name`` (``level`` leading dots) is, as imported from this
        document; None when it is not a workspace file (an installed library) or cannot be read."""

    def importers(self) -> "list[Analysis]":
        """Analyses of the workspace files that import this document (a bounded few)."""

    def conftests(self) -> "list[Analysis]":
        """Analyses of the ``conftest.py`` files pytest reads for this document: in its folder and each folder
        above it within the workspace, nearest first."""

    def fresh(self) -> bool:
        """Whether every other file read so far is still the version that was read."""

    def inherit(self, previous: "ModuleLinks") -> None:
        """Count what ``previous`` (the previous version's links, still fresh) read as read by this document's
        analysis too: it reuses what was worked out from those files."""

    def read_files(self) -> "list[tuple[Path, bool]]":
        """(file, whether read as a module this document imports) for each file whose analysis was used."""


def bindings(stmt: Node) -> list[tuple[str, Node, Imported]]:
    """(name bound, node naming it, what it stands for) for each name an import statement binds."""
    out = []
    if stmt.type == "import_from_statement":
        module_node = stmt.child_by_field_name("module_name")
        if module_node is None:
            return out
        module, level = _module_of(module_node)
        for name_node in stmt.children_by_field_name("name"):
            original = name_node.child_by_field_name("name") if name_node.type == "aliased_import" else name_node
            alias = name_node.child_by_field_name("alias") if name_node.type == "aliased_import" else None
            if original is None:
                continue
            bound = alias if alias is not None else original
            out.append((text(bound), bound, Imported(module, level, text(original))))
    elif stmt.type == "import_statement":
        for name_node in stmt.children_by_field_name("name"):
            if name_node.type == "aliased_import":  # `import a.b as c`: c is the module a.b
                dotted, alias = name_node.child_by_field_name("name"), name_node.child_by_field_name("alias")
                if dotted is not None and alias is not None:
                    out.append((text(alias), alias, Imported(text(dotted), 0, None)))
            elif "." not in text(name_node):  # `import a.b` binds `a`, the package: not followed
                out.append((text(name_node), name_node, Imported(text(name_node), 0, None)))
    return out


def _module_of(node: Node) -> tuple[str, int]:
    if node.type == "relative_import":
        prefix = next((c for c in node.children if c.type == "import_prefix"), None)
        dotted = next((c for c in node.named_children if c.type == "dotted_name"), None)
        return (text(dotted) if dotted is not None else ""), (len(text(prefix)) if prefix is not None else 0)
    return text(node), 0


def followed(imported: Imported, links: ModuleLinks | None) -> "tuple[Analysis, Definition] | None":
    """The analysis of the module an imported name comes from and the module-level definition it names
    there (its last one: the value the module ends up with)."""
    if links is None or imported.attr is None or imported.from_library:
        return None
    other = links.module(imported.module, imported.level)
    if other is None:
        return None
    defs = other.scopes.definitions(imported.attr)
    return (other, defs[-1]) if defs else None


def module_of(imported: Imported, links: ModuleLinks | None) -> "Analysis | None":
    """The analysis of a module an import binds: ``import helpers as h``, or ``from package import helpers``
    (None when the name is not a workspace module)."""
    name = _module_name(imported)
    return links.module(name, imported.level) if links is not None and name is not None else None


def module_path(imported: Imported, links: ModuleLinks | None) -> Path | None:
    """The file of a module an import binds (as :func:`module_of`), without analysing it."""
    name = _module_name(imported)
    return links.resolve(name, imported.level) if links is not None and name is not None else None


def _module_name(imported: Imported) -> str | None:
    if imported.from_library:
        return None
    return imported.module if imported.attr is None else f"{imported.module}.{imported.attr}".lstrip(".")
