"""The previous version's cache-key resolutions, reused where an edit cannot have changed them.

Resolving the keys of a cache subscript (following variables, helpers and their call sites) is most
of what an analysis costs. After a *local* edit (see :mod:`.edits`), a subscript outside the edited
lines whose refs were computed from names the edit does not mention, and from code outside it,
resolves as before: its refs are
carried over, moved to their new offsets, with the cache and model of the new analysis (which must
be the same cache and the same model, else the subscript is resolved again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .edits import Edit, diff
from .models import CacheInfo, ModelInfo

if TYPE_CHECKING:
    from .document import AnalysisContext
    from .hookrefs import HookRef


@dataclass(frozen=True)
class KeyResolutions:
    """One version's refs of each cache subscript (by the subscript's byte range), and what they held for."""

    source: bytes
    context: AnalysisContext
    by_subscript: dict[tuple[int, int], tuple[HookRef, ...]]
    error_spans: list[tuple[int, int]]  # top-level statements with a syntax error


class Reuse:
    """Refs of the previous version for the subscripts of this one that an edit spares."""

    def __init__(self, previous: KeyResolutions, edit: Edit):
        self.previous = previous
        self.edit = edit
        # Whether an old cache or model is the new one, by (id(old), id(new)): the same few pairs come back
        # for every subscript (both sides stay alive while this version is analysed).
        self._same: dict[tuple[int, int], bool] = {}

    @classmethod
    def between(cls, previous: KeyResolutions | None, source: bytes, context: AnalysisContext,
                error_spans: list[tuple[int, int]]) -> Reuse | None:
        """The reuse from ``previous`` to ``source`` (whose top-level statements with a syntax error are at
        ``error_spans``), or None when nothing can be reused: no previous version, another context, an edit
        that can change scopes, models or flags anywhere, or one in a statement with a syntax error before or
        after it (tree-sitter's recovery may have parsed the statements around it otherwise)."""
        if previous is None or not _same_facts(previous.context, context):
            return None
        edit = diff(previous.source, source)
        if not edit.local or _touches(previous.error_spans, edit.start, edit.old_end) or \
                _touches(error_spans, edit.start, edit.new_end):
            return None
        return cls(previous, edit)

    def refs(self, start: int, end: int, cache: CacheInfo | None, model: ModelInfo | None) -> list[HookRef] | None:
        """The previous refs of the subscript now at [start, end), moved, for ``cache`` of ``model``;
        None when it must be resolved again."""
        edit = self.edit
        old_start, old_end = edit.to_old(start), edit.to_old(end)
        if old_start is None or old_end is None:
            return None
        old = self.previous.by_subscript.get((old_start, old_end))
        if not old or any(r.context == "store" for r in old):
            return None  # a dict's keys are hook names only while no write anywhere says otherwise
        if not all(edit.spares(old_start, old_end, r.deps, r.spans) for r in old):
            return None
        moved = [_moved(r, edit, cache, model, self._same) for r in old]
        if any(r is None for r in moved):
            return None
        return moved  # type: ignore[return-value]


def _touches(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(s <= end and start <= e for s, e in spans)


def _same_facts(a: AnalysisContext, b: AnalysisContext) -> bool:
    """Whether two contexts give cache keys the same meaning (tokenizers aside: keys do not use them)."""
    if (a.tl_major, a.tl_version, a.resolve_model, a.live) != (b.tl_major, b.tl_version, b.resolve_model, b.live):
        return False
    if a.links is None or b.links is None:
        return a.links is b.links
    return a.links.path == b.links.path and a.links.fresh()  # the other files read are as they were


def _moved(ref: HookRef, edit: Edit, cache: CacheInfo | None, model: ModelInfo | None,
           same: dict[tuple[int, int], bool]) -> HookRef | None:
    """``ref`` at its new offsets, for the new analysis's cache and model (None if they differ; a ref
    made without them, like ``hook.name``'s, stays without). ``same``: comparisons made already."""
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
    options = tuple(_moved(o, edit, cache, model, same) for o in ref.options) if ref.options else ()
    if any(o is None for o in options):
        return None
    delta, after = edit.delta, edit.old_end
    # The spans are outside the edit (it spared them): those after it move, as a whole.
    spans = ref.spans if not delta else tuple((s + delta, e + delta) if s > after else (s, e) for s, e in ref.spans)
    # A shallow copy (dataclasses.replace re-runs __init__ and copy.copy goes through __reduce_ex__: 4x and
    # 3x slower, on every key of the file).
    moved = object.__new__(type(ref))
    moved.__dict__.update(ref.__dict__)
    moved.start, moved.end, moved.literal, moved.computed_at, moved.short = start, end, literal, computed_at, short
    moved.options, moved.spans, moved.cache, moved.model = options, spans, cache, model
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
