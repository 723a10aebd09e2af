"""Where a sweep's heatmap and numbers are saved: ``.tlens/sweeps/<timestamp>-<kind>.png`` and ``.json``.

The JSON is ``SweepResult.to_json``; scripts read its ``values``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from .spec import SweepResult


def save_result(result: SweepResult, png_bytes: bytes, workspace_root: str | Path) -> tuple[Path, Path]:
    """Write ``.tlens/sweeps/<timestamp>-<kind>.png`` and ``.json`` (raw numbers).

    Returns:
        (png_path, json_path).
    """
    folder = Path(workspace_root) / ".tlens" / "sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{result.kind}"
    n = 1
    while (folder / f"{base}.png").exists() or (folder / f"{base}.json").exists():
        n += 1
        base = f"{stamp}-{result.kind}-{n}"
    png_path, json_path = folder / f"{base}.png", folder / f"{base}.json"
    png_path.write_bytes(png_bytes)
    json_path.write_text(result.to_json(indent=1), encoding="utf-8")
    return png_path, json_path
