"""Hook points that SAE Lens adds under a model hook while an SAE is attached there.

``HookedSAETransformer.add_sae(sae)`` (or ``run_with_cache_with_saes(..., saes=[sae])``) splices
the SAE in at ``sae.cfg.hook_name``; its own hook points then appear below that name:
``blocks.8.hook_resid_pre.hook_sae_acts_post``. They exist only while the SAE is attached,
so they are not in the model's catalog.

Shapes follow SAE Lens's ``SAE`` (read in sae_lens 6.54: ``process_sae_in``, ``forward``, ``decode``):
``hook_sae_input`` comes after ``reshape_fn_in`` (a ``hook_z`` SAE flattens the heads there) and
``hook_sae_recons`` before ``reshape_fn_out``, so both are ``d_in`` wide; the latents are ``d_sae`` wide;
``hook_sae_output`` comes after ``reshape_fn_out`` and ``hook_sae_error`` is ``x - reconstruction`` of the
unflattened input, so both have the shape of the model hook the SAE sits on.
"""

from __future__ import annotations

# suffix -> (space of the last axis, meaning)
SAE_POINTS: dict[str, tuple[str, str]] = {
    "hook_sae_input": ("d_in", "Input to the SAE"),
    "hook_sae_acts_pre": ("d_sae", "SAE latents before the activation function"),
    "hook_sae_acts_post": ("d_sae", "SAE feature activations (after the activation function)"),
    "hook_sae_recons": ("d_in", "The SAE's reconstruction of its input"),
    "hook_sae_error": ("d_in", "Reconstruction error, input − reconstruction (only with `use_error_term=True`)"),
    "hook_sae_output": ("d_in", "What the SAE passes on: the reconstruction, plus the error with `use_error_term=True`"),
}


# The shape an SAE hook has whatever model hook the SAE sits on (unknown base: ``f"{sae.cfg.hook_name}.hook_sae_acts_post"``,
# or an SAE's own cache): only the last axis is known, and only where no reshaping can touch it.
ANY_BASE_SHAPES: dict[str, tuple[str, ...]] = {
    "hook_sae_input": ("...", "d_in"),
    "hook_sae_acts_pre": ("...", "d_sae"),
    "hook_sae_acts_post": ("...", "d_sae"),
    "hook_sae_recons": ("...", "d_in"),
}


def split_sae_name(template: str) -> tuple[str, str] | None:
    """``blocks.{l}.hook_resid_pre.hook_sae_acts_post`` -> (model hook, SAE suffix); else None."""
    base, dot, suffix = template.rpartition(".")
    if not dot or not base or not suffix.startswith("hook_sae_"):
        return None
    return base, suffix


def sae_shape(base_shape: tuple[str, ...], base_template: str, suffix: str) -> tuple[str, ...] | None:
    """Shape at the SAE hook, from the shape of the model hook it is attached to."""
    space = SAE_POINTS.get(suffix, (None, ""))[0]
    if space is None or len(base_shape) < 2:
        return None
    if suffix in ("hook_sae_output", "hook_sae_error"):  # back in the model hook's own shape
        return base_shape
    if base_template.endswith("hook_z"):  # hook_z SAEs flatten the heads: d_in = n_heads * d_head
        return (*base_shape[:2], "n_heads*d_head" if space == "d_in" else "d_sae")
    return base_shape if space == "d_in" else (*base_shape[:-1], "d_sae")
