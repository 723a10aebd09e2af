"""CellGrid: the cells of one sweep as they come back from the kernel(s), made into a SweepResult.

Cells arrive in any order and from any kernel, by flat (row-major) index into the grid. A cell
counts once: the first value that arrives for it is the one kept (a resent or re-run cell adds
nothing). The cells that never arrived are ``None`` in ``values`` and listed in ``missing_cells``.
"""

from __future__ import annotations

import math
import time

from .spec import SweepProgress, SweepResult, SweepSpec


class CellGrid:
    """Flat store of cell values, reshaped into nested lists at the end."""

    def __init__(self, prep: dict) -> None:
        self.prep = prep
        self.shape = prep["grid_shape"]
        self.flat: list[float | None] = [None] * math.prod(self.shape)
        self.filled = [False] * len(self.flat)
        self.done = 0
        self.total = prep["total"]
        self.fill(prep["precomputed"])

    def fill(self, step: dict) -> int:
        """Store the cells of a payload reply (``cells``, ``values``); returns how many were new."""
        new = 0
        for cell, value in zip(step["cells"], step["values"]):
            if not self.filled[cell]:  # a NaN metric comes back as None but is still done
                self.filled[cell] = True
                self.flat[cell] = value
                new += 1
        self.done += new
        return new

    @property
    def complete(self) -> bool:
        return self.done >= self.total

    def missing(self) -> list[int]:
        """Flat indices of the cells not computed yet."""
        return [i for i, filled in enumerate(self.filled) if not filled]

    def progress(self, t0: float, eta: float | None, phase: str) -> SweepProgress:
        return SweepProgress(self.done, self.total, time.monotonic() - t0, eta, phase)

    def result(
        self, spec: SweepSpec, prep: dict, elapsed: float, error: str | None, notes: list[str],
        kernels: list[dict] | None = None,
    ) -> SweepResult:
        clean, corr = prep.get("clean_value"), prep.get("corrupted_value")
        values, head_values = self.flat, prep.get("head_values")
        normalized = False
        if spec.normalize:
            if clean is None or corr is None or abs(clean - corr) < 1e-9:
                notes.append(
                    "not normalised: clean and corrupted baselines are equal "
                    f"({clean} vs {corr}), so (m − corrupted)/(clean − corrupted) is undefined."
                )
            else:
                normalized = True
                values = [_norm(v, clean, corr) for v in values]
                if head_values is not None:
                    head_values = [[_norm(v, clean, corr) for v in row] for row in head_values]
        kind = spec.kind
        cols = prep["head_labels"] if kind == "heads" else prep["pos_labels"]
        if prep.get("n_prompts", 1) > 1 and not prep.get("position_labels"):
            notes.append(f"position labels are the tokens of the first of {prep['n_prompts']} prompts.")
        partial = not self.complete
        return SweepResult(
            kind=kind,
            values=_reshape(values, self.shape),
            row_labels=prep["row_labels"],
            col_labels=cols,
            metric=prep["metric"],
            clean_value=clean,
            corrupted_value=corr,
            normalized=normalized,
            partial=partial,
            cells_done=self.done,
            cells_total=self.total,
            elapsed_s=round(elapsed, 4),
            backend=prep["backend"],
            tl_version=prep["tl_version"],
            device=prep["device"],
            head_labels=prep["head_labels"],
            panel_labels=prep.get("panel_labels"),
            head_values=head_values,
            path=prep.get("path", ""),
            error=error,
            notes=notes,
            position_labels=bool(prep.get("position_labels")),
            missing_cells=[_unravel(i, self.shape) for i in self.missing()] if partial else [],
            kernels=kernels or [],
            baseline_chunks=prep.get("baseline_chunks", 1),
        )


def _norm(v: float | None, clean: float, corr: float) -> float | None:
    return None if v is None else (v - corr) / (clean - corr)


def _reshape(flat: list, shape: list[int]) -> list:
    if len(shape) == 1:
        return list(flat)
    step = math.prod(shape[1:])
    return [_reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _unravel(flat: int, shape: list[int]) -> list[int]:
    """The index path into the nested ``values`` of flat (row-major) index ``flat``."""
    path = []
    for size in reversed(shape):
        flat, i = divmod(flat, size)
        path.append(i)
    return path[::-1]
