"""Pillow heatmaps for patching sweeps: ``render_heatmap(result, size) -> PNG bytes``, ``data_uri(png)``,
``render_heatmap_with_layout(result, size) -> (PNG bytes, [PanelGeometry])`` for viewers that read cells."""

from .heatmap import HOVER_URI_LIMIT, PanelGeometry, data_uri, render_heatmap, render_heatmap_with_layout

__all__ = ["HOVER_URI_LIMIT", "PanelGeometry", "data_uri", "render_heatmap", "render_heatmap_with_layout"]
