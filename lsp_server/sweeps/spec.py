"""SweepSpec (what to patch), SweepProgress (how far it got) and SweepResult (what came back).

Spec and result are JSON-serialisable. The kinds are listed in ``kinds.py``; grid layouts of
``SweepResult.values`` by kind:
  resid_pre | resid_mid | resid_post | attn_out | mlp_out : [layer][pos]
  heads         : [layer][head]        (z of every position patched at once)
  heads_by_pos  : [layer][pos][head]
  block         : [3][layer][pos]      (panels resid_pre, attn_out, mlp_out)
  attribution   : [3][layer][pos] plus ``head_values`` [layer][head]; each value is the
                  linear estimate of the patched metric (comparable to the exact sweeps)
Cells not computed (cancelled / every kernel died) are ``None`` and their index paths into
``values`` are listed in ``missing_cells`` (a NaN metric is ``None`` too, but computed).
"""

from __future__ import annotations

import ast
import inspect
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Awaitable, Callable

from .errors import SweepError
from .kinds import DEFAULT_KIND, SWEEP_KIND_NAMES

KINDS = SWEEP_KIND_NAMES


@dataclass
class SweepSpec:
    """A patching sweep, described by expressions evaluated in the kernel.

    Attributes:
        model: variable name (or expression) of the TL model in the kernel.
        clean, corrupted: expressions giving token tensors, a prompt string or a list of
            prompts (tokenized with ``model.to_tokens``); shapes must match.
        kind: one of ``KINDS``.
        metric: expression naming a callable ``f(logits) -> scalar tensor``; or else
        answer, wrong: expressions giving token ids or single-token strings (one, or one per
            prompt); the metric is then the logit difference at the last position, averaged
            over the batch.
        normalize: report (m - corrupted) / (clean - corrupted) instead of the raw metric.
        positions: expression giving a position labelling of the prompt pairs, a dict label ->
            one token position per pair (``{"S1": [...], "IO": [...], "END": [...]}``): the grid's
            position axis is then the labels, each pair patched at its own position; a logit
            difference is read at END. Without it, pairs of different lengths are right-padded
            and column p is token p of every pair.
    """

    model: str
    clean: str
    corrupted: str
    kind: str = DEFAULT_KIND
    metric: str | None = None
    answer: str | None = None
    wrong: str | None = None
    normalize: bool = False
    positions: str | None = None

    def validate(self) -> None:
        """Check what can be checked without the kernel.

        Raises:
            SweepError: unknown kind, a metric that is both/neither given, or an expression
                that does not parse; the message names the field.
        """
        if self.kind not in KINDS:
            raise SweepError(f"unknown sweep kind {self.kind!r}; use one of: {', '.join(KINDS)}.", "bad-kind")
        if bool(self.metric) == bool(self.answer or self.wrong):
            raise SweepError(
                "give either `metric` (a callable f(logits) -> scalar) or `answer` and `wrong` "
                "(for a logit difference), not both or neither.",
                "bad-metric",
            )
        if not self.metric and not (self.answer and self.wrong):
            raise SweepError("a logit difference needs both `answer` and `wrong`.", "bad-metric")
        for name in ("model", "clean", "corrupted", "metric", "answer", "wrong", "positions"):
            expr = getattr(self, name)
            if expr is None:
                continue
            if not isinstance(expr, str) or not expr.strip():
                raise SweepError(f"`{name}` must be a non-empty Python expression.", "bad-expression")
            try:
                ast.parse(expr, mode="eval")
            except SyntaxError as e:
                raise SweepError(
                    f"`{name}` = {expr!r} is not a Python expression: {e.msg}.", "bad-expression"
                ) from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepSpec":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SweepError(f"unknown SweepSpec field(s): {', '.join(sorted(unknown))}.", "bad-spec")
        return cls(**data)


@dataclass
class SweepProgress:
    """Streamed while a sweep runs."""

    done: int
    total: int
    elapsed_s: float
    eta_s: float | None
    phase: str  # "setup" | "preparing" | "running" | "cancelling"
    detail: str | None = None  # setup: which statement runs ("ioi.py, line 48 of 338: model = ...")


ProgressCallback = Callable[[SweepProgress], "Awaitable[None] | None"]


async def report(callback: Callable[..., Any] | None, *args: Any) -> None:
    """Call a progress callback, sync or async."""
    if callback is None:
        return
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


@dataclass
class SweepResult:
    """Numbers, labels and provenance of one sweep (JSON via ``to_json``)."""

    kind: str
    values: list
    row_labels: list[str]
    col_labels: list[str]
    metric: str
    clean_value: float | None
    corrupted_value: float | None
    normalized: bool
    partial: bool
    cells_done: int
    cells_total: int
    elapsed_s: float
    backend: str
    tl_version: str
    device: str
    head_labels: list[str] = field(default_factory=list)
    panel_labels: list[str] | None = None
    head_values: list | None = None
    path: str = ""
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    missing_cells: list[list[int]] = field(default_factory=list)  # index paths into `values`; why: `error`
    kernels: list[dict] = field(default_factory=list)  # one sweep over several kernels: each one's share
    position_labels: bool = False  # col_labels are the labels of a position labelling, not tokens
    baseline_chunks: int = 1  # forwards each baseline run (clean, corrupted) was split over to fit the memory

    @property
    def value_label(self) -> str:
        """What a number in ``values`` means, for titles and colour bars."""
        if self.normalized:
            return "(m − corrupted) / (clean − corrupted)"
        return self.metric

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepResult":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
