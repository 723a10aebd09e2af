"""The previous version's cache-key resolutions, reused where an edit cannot have changed them.

Resolving the keys of a cache subscript (following variables, helpers and their call sites) is most
of what an analysis costs. After a *local* edit (see :mod:`.edits`), a subscript outside the edited
lines whose refs were computed from names the edit does not mention, and from code outside it,
resolves as before: its refs are
carried over, moved to their new offsets, with the cache and model of the new analysis (which must
be the same cache and the same model, else the subscript is resolved again). A subscript whose key resolved
to nothing is remembered likewise (:class:`NoRefs`). Words typed in a comment or a docstring mention no
name; an edit that changes lines, brackets or quotes, that starts a line with a statement word, or that lies
in a statement with a syntax error counts as an edit of the whole top-level statements it touches (see
:meth:`Reuse.between`).
"""

from __future__ import annotations

import bisect
import builtins
import dataclasses
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .edits import CONFIG, SHAPE, STATEMENT, Edit, diff_in, in_prose, widened
from .models import CacheInfo, ModelInfo

if TYPE_CHECKING:
    from .document import AnalysisContext
    from .hookrefs import HookRef
    from .scopes import Scopes


_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class NoRefs:
    """A subscript of a cache whose key resolved to nothing, and what that was worked out from (as a ref's
    ``deps`` and ``spans``): the most costly keys to resolve are often those that end unknown."""

    name: str  # the subscripted name
    deps: frozenset[str]
    spans: tuple[tuple[int, int], ...]
    cache: CacheInfo | None
    model: ModelInfo | None


@dataclass(frozen=True)
class NameResolution:
    """What a hook name passed to a registration or a filter (``add_hook(name, fn)``, ``fwd_hooks=[(name, fn)]``)
    resolved to (None: no hook name), and what that was worked out from."""

    ref: HookRef | None
    deps: frozenset[str]  # the names it was read from (the model's aside)
    spans: tuple[tuple[int, int], ...]
    model: ModelInfo | None


@dataclass(frozen=True)
class KeyResolutions:
    """One version's refs of each cache subscript (by the subscript's byte range) and of each registered name (by
    its byte range and use), and what they held for."""

    source: bytes
    context: AnalysisContext
    by_subscript: dict[tuple[int, int], tuple[HookRef, ...] | NoRefs]
    scopes: Scopes  # its statements, those with a syntax error, the names it binds
    models: tuple  # Models.fingerprint()
    by_name: dict[tuple[int, int, str], NameResolution] = dataclasses.field(default_factory=dict)


class Reuse:
    """Refs of the previous version for the subscripts of this one that an edit spares."""

    def __init__(self, previous: KeyResolutions, edit: Edit):
        self.previous = previous
        self.edit = edit
        # Whether an old cache or model is the new one, by (id(old), id(new)): the same few pairs come back
        # for every subscript (both sides stay alive while this version is analysed).
        self._same: dict[tuple[int, int], bool] = {}
        self._spans: dict[int, tuple] = {}  # code ranges moved already, by id (keys read from one binding share theirs)

    @classmethod
    def between(cls, previous: KeyResolutions | None, source: bytes, context: AnalysisContext,
                scopes: Scopes, models: tuple) -> Reuse | None:
        """The reuse from ``previous`` to ``source`` (whose statements ``scopes`` found and whose models have the
        fingerprint ``models``), or None when nothing can be reused: no previous version, another context, an
        edit that can change scopes, models or flags anywhere (words of a model's configuration count only
        when the file's models came out otherwise), or a statement of unchanged text that tree-sitter parsed
        otherwise than before.
        An edit that adds, removes or reindents lines, or changes their brackets or quotes, an edit of a line
        that starts with a statement word (``for``, ``def``, ``with``, ...), and an edit in a statement with a
        syntax error (before or after it), count as an edit of the whole top-level statements they touch, and only
        while every other statement begins and ends where it did and the file's models stay the same: an
        unclosed bracket, or tree-sitter's recovery from an error, may swallow or split the statements around.
        Any other edit is reused only while the statements of the block it is in keep their bounds likewise
        (tree-sitter reads `x = torch.` on into the next line without an error)."""
        if previous is None or scopes.parsed_otherwise or not _same_facts(previous.context, context):
            return None
        edit = diff_in(previous.source, source, previous.scopes.parsed.root)
        if edit.shaped and in_prose(edit, scopes.parsed.root):
            edit = dataclasses.replace(edit, names=frozenset(), words=frozenset(), blockers=frozenset())  # words there bind nothing
        if edit.blockers == {CONFIG} and _same_models(previous.models, models, edit):
            edit = dataclasses.replace(edit, blockers=frozenset())  # `print(hook.name)`: the models came out the same
        at_error = _touches(previous.scopes.error_spans, edit.start, edit.old_end) or \
            _touches(scopes.error_spans, edit.start, edit.new_end)
        if edit.blockers & {SHAPE, STATEMENT} and edit.blockers <= {SHAPE, STATEMENT, CONFIG} or edit.local and at_error:
            # A line typed or joined, brackets opened, `for layer in range(4):` -> `range(6)`: what its statement
            # binds and passes may change, nothing more, while the statement keeps its bounds; a syntax error's
            # recovery may parse the statement's other lines otherwise
            edit = _over_statement(edit, previous, source, scopes, models, at_error)
        elif edit.local and not _same_statements(edit, previous.scopes, scopes):
            return None  # `x = torch.` joins the next line's statement, with no syntax error
        if edit is None or not edit.local:
            return None
        if edit.names & _BUILTINS:  # `range(len(x))` there: the file's calls of a builtin give no facts
            unbound = _BUILTINS - previous.scopes.bound_names() - scopes.bound_names()
            edit = dataclasses.replace(edit, names=edit.names - unbound)
        return cls(previous, edit)

    def refs(self, start: int, end: int, cache: CacheInfo | None, model: ModelInfo | None) -> list[HookRef] | NoRefs | None:
        """The previous refs of the subscript now at [start, end), moved, for ``cache`` of ``model`` (or that it
        had none); None when it must be resolved again."""
        edit = self.edit
        old_start, old_end = edit.to_old(start), edit.to_old(end)
        if old_start is None or old_end is None:
            return None
        old = self.previous.by_subscript.get((old_start, old_end))
        if isinstance(old, NoRefs):
            return self._no_refs(old, old_start, old_end, cache, model)
        if not old or any(r.context in ("store", "key") for r in old):
            return None  # a dict's keys are hook names only while no write anywhere says otherwise
        if any((r.model is None) != (model is None) for r in old):
            return None  # the cache's model came out otherwise (`wrapped = Wrapper(lens)` edited away: the file's model)
        if not all(edit.spares(old_start, old_end, r.deps, r.spans) for r in old):
            return None
        moved = [_moved(r, edit, cache, model, self._same, self._spans) for r in old]
        if any(r is None for r in moved):
            return None
        return moved  # type: ignore[return-value]

    def name(self, start: int, end: int, context: str, model: ModelInfo | None) -> NameResolution | None:
        """The previous resolution of the registered name now at [start, end), moved, for ``model``; None when it
        must be resolved again."""
        edit = self.edit
        old_start, old_end = edit.to_old(start), edit.to_old(end)
        old = self.previous.by_name.get((old_start, old_end, context)) if old_start is not None and old_end is not None else None
        owner = frozenset({old.model.var}) if old is not None and old.model is not None else frozenset()
        if old is None or not edit.spares(old_start, old_end, old.deps | owner, old.spans):
            return None
        if (old.model is None) != (model is None) or old.model is not None and not _memo(self._same, _same_model, old.model, model, edit):
            return None
        ref = _moved(old.ref, edit, None, model, self._same, self._spans) if old.ref is not None else None
        if old.ref is not None and ref is None:
            return None
        return NameResolution(ref, old.deps, _moved_spans(old.spans, edit, self._spans), model)

    def _no_refs(self, old: NoRefs, old_start: int, old_end: int, cache: CacheInfo | None,
                 model: ModelInfo | None) -> NoRefs | None:
        """``old`` for the new version, if the edit spared it. An edited line naming the subscripted value at all
        counts (``acts[hook.name] = act`` there makes ``acts`` a dict of activations, whose keys are hook names)."""
        edit = self.edit
        if old.name in edit.words or not edit.spares(old_start, old_end, old.deps, old.spans):
            return None
        if (old.cache is None) != (cache is None) or (old.model is None) != (model is None):
            return None
        if old.cache is not None and not _memo(self._same, _same_cache, old.cache, cache, edit) or \
                old.model is not None and not _memo(self._same, _same_model, old.model, model, edit):
            return None
        return NoRefs(old.name, old.deps, _moved_spans(old.spans, edit, self._spans), cache, model)


def _touches(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(s <= end and start <= e for s, e in spans)


def _over_statement(edit: Edit, previous: KeyResolutions, source: bytes, scopes: Scopes, models: tuple,
                    at_error: bool) -> Edit | None:
    """``edit`` grown over the statements it touches, when every other top-level statement keeps its bounds
    (see :func:`_touched`); else None. Where neither version has a syntax error there (``at_error``), the statements are
    those of the innermost block holding the edit (a line split in a long function is an edit of its own
    statement, not of the function), as long as the block's other statements keep their bounds too. Words
    there that can change facts anywhere (a model's configuration) are safe while the file's models stay the
    same."""
    regions = _touched(edit, previous.scopes.statement_spans(), scopes.statement_spans())
    if regions is None:
        return None
    if not at_error:
        regions = _in_block(edit, previous.scopes, scopes) or regions
    (old_start, old_end), (new_start, new_end) = regions
    same_models = _same_models(previous.models, models, edit)
    return widened(edit, previous.source, source, min(old_start, new_start), old_end, new_end, same_models)


def _in_block(edit: Edit, previous: Scopes, scopes: Scopes) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Where the statements the edit touches lie in the innermost block (not the module) holding it in both
    versions, when that block begins and ends at the same place in both and its other statements keep their
    bounds; else None."""
    old, new = _block_at(previous.parsed.root, edit.start, edit.old_end), _block_at(scopes.parsed.root, edit.start, edit.new_end)
    if old is None or new is None or old.type != "block" or new.type != "block" or not _same_bounds(edit, old, new):
        return None
    return _touched(edit, _spans_in(old), _spans_in(new))


def _same_statements(edit: Edit, previous: Scopes, scopes: Scopes) -> bool:
    """Whether the statements of the innermost block holding the edited lines (the file's, a function's body)
    other than those the edit touches begin and end at the same places in both versions, and so does the
    block: a local edit changed what its own statements say, not how the code around splits into statements."""
    old, new = _block_at(previous.parsed.root, edit.start, edit.old_end), _block_at(scopes.parsed.root, edit.start, edit.new_end)
    if old is None or new is None or old.type != new.type or not _same_bounds(edit, old, new):
        return False
    if old.type == "module":
        return _touched(edit, previous.statement_spans(), scopes.statement_spans()) is not None
    return _touched(edit, _spans_in(old), _spans_in(new)) is not None


def _same_bounds(edit: Edit, old, new) -> bool:
    """Whether a block of the old version and one of the new begin at the same place and end at the same place
    (moved by the edit), or both within it; else lines after the edit joined the block or left it."""
    if old.start_byte != new.start_byte:
        return False
    return not (old.end_byte > edit.old_end and edit.to_new(old.end_byte) != new.end_byte or
                old.end_byte <= edit.old_end and new.end_byte > edit.new_end)


def _block_at(root, start: int, end: int):
    """The innermost block (or the module) that holds all of [start, end)."""
    node = root.descendant_for_byte_range(start, max(start, end - 1))
    while node is not None and node.type not in ("block", "module"):
        node = node.parent
    return node


def _spans_in(block) -> list[tuple[int, int]]:
    return [(n.start_byte, n.end_byte) for n in block.named_children if n.type != "comment"]


def _touched(edit: Edit, old_spans: list[tuple[int, int]], spans: list[tuple[int, int]]
             ) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Where the statements the edit touches lie in the old and the new version (of the file, or of one block:
    ``old_spans`` and ``spans`` list their bounds), when every other one begins and ends at the same place in
    both (moved by the edit after it); None when one moved: an unclosed bracket, a trailing `.` (tree-sitter
    reads `x = torch.` and the next line as one statement, without an error), or the recovery from a syntax
    error swallowed or split the statements around."""
    # (No statement there: blank lines and comments, or a statement typed into a comment's line, `x# %%`.)
    old = _region(old_spans, edit.start, edit.old_end) or (edit.start, edit.old_end)
    new = _region(spans, edit.start, edit.new_end) or (edit.start, edit.new_end)
    old_before, new_before = bisect.bisect_left(old_spans, (old[0], -1)), bisect.bisect_left(spans, (new[0], -1))
    old_after, new_after = bisect.bisect_right(old_spans, (old[1], sys.maxsize)), bisect.bisect_right(spans, (new[1], sys.maxsize))
    if old_spans[:old_before] != spans[:new_before] or len(old_spans) - old_after != len(spans) - new_after:
        return None
    delta = edit.delta
    if any(a + delta != c or b + delta != d for (a, b), (c, d) in zip(old_spans[old_after:], spans[new_after:])):
        return None
    return old, new


def _same_models(old: tuple, new: tuple, edit: Edit) -> bool:
    """Whether two versions' model fingerprints (Models.fingerprint) match, offsets mapped through ``edit``."""
    return len(old) == len(new) and all((a[0], edit.to_new(a[1]), *a[2:]) == b for a, b in zip(old, new))


def _region(spans: list[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    """From the first to the last of the (ordered, disjoint) ``spans`` overlapping [start, end]; None if none does."""
    i = bisect.bisect_right(spans, (end, sys.maxsize))
    j = i
    while j > 0 and spans[j - 1][1] >= start:
        j -= 1
    return (spans[j][0], spans[i - 1][1]) if j < i else None


def _same_facts(a: AnalysisContext, b: AnalysisContext) -> bool:
    """Whether two contexts give cache keys the same meaning (tokenizers aside: keys do not use them)."""
    if (a.tl_major, a.tl_version, a.resolve_model, a.live) != (b.tl_major, b.tl_version, b.resolve_model, b.live):
        return False
    if a.links is None or b.links is None:
        return a.links is b.links
    return a.links.path == b.links.path and a.links.fresh()  # the other files read are as they were


def _moved(ref: HookRef, edit: Edit, cache: CacheInfo | None, model: ModelInfo | None,
           same: dict[tuple[int, int], bool], spans_moved: dict[int, tuple]) -> HookRef | None:
    """``ref`` at its new offsets, for the new analysis's cache and model (None if they differ; a ref
    made without them, like ``hook.name``'s, stays without). ``same``, ``spans_moved``: comparisons made and
    code ranges moved already."""
    if ref.cache is not None and not _memo(same, _same_cache, ref.cache, cache, edit) or \
            ref.model is not None and not _memo(same, _same_model, ref.model, model, edit):
        return None
    cache, model = (cache if ref.cache is not None else None), (model if ref.model is not None else None)
    start, end = edit.to_new(ref.start), edit.to_new(ref.end)
    literal = _moved_range(ref.literal, edit)
    computed_at = edit.to_new(ref.computed_at) if ref.computed_at is not None else None
    short = (ref.short[0], _moved_range(ref.short[1], edit)) if ref.short is not None else None
    if start is None or end is None or (ref.literal is not None and literal is None) or (
            ref.computed_at is not None and computed_at is None) or (short is not None and short[1] is None):
        return None
    options = tuple(_moved(o, edit, cache, model, same, spans_moved) for o in ref.options) if ref.options else ()
    if any(o is None for o in options):
        return None
    spans = _moved_spans(ref.spans, edit, spans_moved)
    # A shallow copy (dataclasses.replace re-runs __init__ and copy.copy goes through __reduce_ex__: 4x and
    # 3x slower, on every key of the file).
    moved = object.__new__(type(ref))
    moved.__dict__.update(ref.__dict__)
    moved.start, moved.end, moved.literal, moved.computed_at, moved.short = start, end, literal, computed_at, short
    moved.options, moved.spans, moved.cache, moved.model = options, spans, cache, model
    return moved


def _moved_spans(spans: tuple[tuple[int, int], ...], edit: Edit, memo: dict[int, tuple]) -> tuple[tuple[int, int], ...]:
    """Code ranges outside the edit (it spared them; in order) at their new offsets: those after it move
    (``memo``: those moved already, by the id of their old ranges, which the previous version keeps alive)."""
    delta = edit.delta
    if not delta or not spans or spans[-1][0] <= edit.old_end:
        return spans
    moved = memo.get(id(spans))  # (by identity: hashing a long tuple costs as much as moving it)
    if moved is None:
        i = bisect.bisect_right(spans, (edit.old_end, sys.maxsize))
        moved = memo[id(spans)] = spans[:i] + tuple((s + delta, e + delta) for s, e in spans[i:])
    return moved


def _memo(same: dict[tuple[int, int], bool], compare, old, new, edit: Edit) -> bool:
    key = (id(old), id(new))
    found = same.get(key)
    if found is None:
        found = same[key] = compare(old, new, edit)
    return found


def _moved_range(span: tuple[int, int] | None, edit: Edit) -> tuple[int, int] | None:
    if span is None:
        return None
    start, end = edit.to_new(span[0]), edit.to_new(span[1])
    return (start, end) if start is not None and end is not None else None


def _same_cache(old: CacheInfo, new: CacheInfo | None, edit: Edit) -> bool:
    return new is not None and old.var == new.var and edit.to_new(old.offset) == new.offset and (
        old.remove_batch_dim, old.pos_slice, old.assumed) == (new.remove_batch_dim, new.pos_slice, new.assumed)


def _same_model(old: ModelInfo, new: ModelInfo | None, edit: Edit) -> bool:
    """The same model, configured the same way (a negative layer was wrapped with its layer count)."""
    return new is not None and old.var == new.var and edit.to_new(old.offset) == new.offset and old.kind == new.kind \
        and old.stand_in == new.stand_in and old.enabled_flags == new.enabled_flags and old.compat_mode == new.compat_mode \
        and (old.spec is new.spec or old.spec == new.spec)
