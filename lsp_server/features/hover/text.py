"""What every hover returns, and the line that says where a shape's dimensions come from."""

from __future__ import annotations

from dataclasses import dataclass

from ...analysis.models import ModelInfo
from ...knowledge.spec import ModelSpec


@dataclass(frozen=True)
class HoverText:
    markdown: str
    start: int
    end: int


def provenance(model: ModelInfo | None, spec: ModelSpec) -> str:
    """The model a shape is for, its backend, and where its dimensions come from."""
    backend = "TransformerBridge" if spec.backend == "bridge" else "HookedTransformer"
    if model is None:
        return f"*Symbolic shape: no model found ({backend} names).*"
    if spec.n_layers is None and spec.d_model is None:
        reason = spec.source if spec.source != "symbolic" else "the model's configuration is not known statically"
        return f"*`{model.var}`: {backend}; symbolic shape only ({reason}).*"
    label = f"{spec.name} — " if spec.name else ""
    return f"*`{model.var}`: {backend} · {label}dims from {spec.source}.*"
