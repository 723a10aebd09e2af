"""Pillow heatmaps for patching sweeps: ``render_heatmap(result, size) -> PNG bytes``, ``data_uri(png)``."""

from .heatmap import HOVER_URI_LIMIT, data_uri, render_heatmap

__all__ = ["HOVER_URI_LIMIT", "data_uri", "render_heatmap"]
