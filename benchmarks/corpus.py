"""Realistic large research files for benchmarks: TransformerLens code between ordinary Python."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"

# Code every research notebook also has: plotting, data wrangling, bookkeeping.
ORDINARY = '''
def plot_heatmap_{i}(values, labels, title="{i}"):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 6))
    im = ax.imshow(values, cmap="RdBu", vmin=-1, vmax=1)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=90)
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    return fig


@dataclass
class RunConfig{i}:
    seed: int = {i}
    batch_size: int = 32
    lr: float = 1e-4
    notes: str = "sweep {i}"


def summarise_{i}(rows):
    """Aggregate results per prompt template."""
    totals = {{}}
    for row in rows:
        key = (row["template"], row["position"])
        totals.setdefault(key, []).append(row["score"])
    return {{k: sum(v) / len(v) for k, v in totals.items()}}


df_{i} = pd.DataFrame({{"layer": list(range(12)), "score": [0.1 * j for j in range(12)]}})
df_{i}["normalised"] = (df_{i}["score"] - df_{i}["score"].mean()) / df_{i}["score"].std()
print(f"run {i}: best layer", df_{i}["score"].idxmax())
'''


def research_file(lines: int = 5000, dense: bool = False) -> str:
    """A file of about ``lines`` lines (whole examples); ``dense`` = TransformerLens code only (the worst case)."""
    parts = [p.read_text() for p in sorted(EXAMPLES.rglob("*.py"))]
    header = "import pandas as pd\nfrom dataclasses import dataclass\n"
    out, i = [header], 0
    while sum(s.count("\n") for s in out) < lines:
        out.append(parts[i % len(parts)].replace("model", f"model{i % 5}"))
        if not dense:
            out.append(ORDINARY.format(i=2 * i) + ORDINARY.format(i=2 * i + 1))
        i += 1
    return "".join(out)  # whole examples: valid Python (ast.parse is the latency baseline)
