"""Sweep history: every saved run of an experiment, and the difference of two runs.

Each saved sweep (``saved.py``: ``.tlens/sweeps/<stamp>-<kind>.json``) gets one line in
``.tlens/sweeps/history.jsonl`` naming the file and experiment it ran, so that the runs of one
experiment can be listed (the heatmap panel switches between them) and the last two of the same kind
and shape compared ("Compare with previous": latest − previous, cell by cell). Protocol-free.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .spec import SweepResult

INDEX = Path(".tlens") / "sweeps" / "history.jsonl"
LISTED = 20  # runs the panel lists (the newest)


@dataclass(frozen=True)
class Run:
    """One saved sweep of an experiment."""

    file: str  # the document, as the user knows it (relative to the workspace root)
    experiment: str  # the experiment's one-line description
    kind: str
    shape: tuple[int, ...]  # of the values
    json_path: str
    png_path: str
    when: float  # seconds since the epoch
    summary: str  # the strongest cell

    def label(self) -> str:
        return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.when))} · {self.kind} · {self.summary}"

    def to_wire(self, current: str | None = None) -> dict[str, Any]:
        return {"jsonPath": self.json_path, "label": self.label(), "kind": self.kind,
                "current": self.json_path == current}


def shape_of(values: Any) -> tuple[int, ...]:
    """The shape of nested lists (the first element's, level by level)."""
    shape = []
    while isinstance(values, list):
        shape.append(len(values))
        values = values[0] if values else None
    return tuple(shape)


def record(root: str | Path, file: str, experiment: str, result: SweepResult, json_path: str | Path,
           png_path: str | Path, summary: str) -> Run:
    """Append one run to the workspace's history."""
    run = Run(file, experiment, result.kind, shape_of(result.values), str(json_path), str(png_path), time.time(), summary)
    index = Path(root) / INDEX
    index.parent.mkdir(parents=True, exist_ok=True)
    with index.open("a", encoding="utf-8") as out:
        out.write(json.dumps({**dataclasses.asdict(run), "shape": list(run.shape)}) + "\n")
    return run


def runs_of(root: str | Path, file: str, experiment: str) -> list[Run]:
    """The runs of one experiment whose numbers are still on disk, oldest first."""
    index = Path(root) / INDEX
    if not index.is_file():
        return []
    runs = []
    for line in index.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
            run = Run(**{**data, "shape": tuple(data["shape"])})
        except (ValueError, TypeError, KeyError):
            continue  # a line cut by a crash, or written by another version
        if run.file == file and run.experiment == experiment and Path(run.json_path).is_file():
            runs.append(run)
    return runs


def previous_pair(runs: list[Run]) -> tuple[Run, Run] | None:
    """(previous, latest): the newest run and the one before it of the same kind and shape."""
    if not runs:
        return None
    latest = runs[-1]
    earlier = next((r for r in reversed(runs[:-1]) if r.kind == latest.kind and r.shape == latest.shape), None)
    return (earlier, latest) if earlier is not None else None


def load(json_path: str | Path) -> SweepResult:
    return SweepResult.from_dict(json.loads(Path(json_path).read_text(encoding="utf-8")))


def difference(latest: SweepResult, previous: SweepResult) -> SweepResult:
    """``latest − previous`` cell by cell (None where either run has no value); labels of ``latest``.

    Raises:
        ValueError: the runs are of another kind or shape.
    """
    if latest.kind != previous.kind or shape_of(latest.values) != shape_of(previous.values):
        raise ValueError(f"the runs differ in kind or shape ({latest.kind} {list(shape_of(latest.values))} vs "
                         f"{previous.kind} {list(shape_of(previous.values))}); only like runs can be compared.")

    def minus(a: Any, b: Any) -> Any:
        if isinstance(a, list):
            return [minus(x, y) for x, y in zip(a, b)]
        return None if a is None or b is None else a - b

    head_values = (minus(latest.head_values, previous.head_values)
                   if latest.head_values is not None and previous.head_values is not None
                   and shape_of(latest.head_values) == shape_of(previous.head_values) else None)
    return dataclasses.replace(
        latest, values=minus(latest.values, previous.values), head_values=head_values,
        metric=f"Δ {latest.value_label}", normalized=False, clean_value=None, corrupted_value=None,
        partial=latest.partial or previous.partial,
        notes=[*latest.notes, "difference: latest run − previous run, cell by cell"])
