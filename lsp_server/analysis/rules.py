"""What each finding code means, for reports that list their rules (SARIF): a title, the description the
editor setting shows (package.json's ``tlens.diagnostics.severity``), what to do, and the severity the
code is reported at when it is most certain."""

from __future__ import annotations

from dataclasses import dataclass

from .findings import Severity


@dataclass(frozen=True)
class Rule:
    title: str
    description: str  # the same words as the editor setting's description of the code
    help: str
    severity: Severity


RULES: dict[str, Rule] = {
    "unknown-hook": Rule(
        "Unknown hook name",
        "A cache key or hook name that the model does not have (typo, wrong component).",
        "Use a hook point the model has; the quick fix offers the nearest name. A name without a layer "
        "(`cache[\"resid_pre\"]`) needs one.", "error"),
    "layer-out-of-range": Rule(
        "Layer out of range",
        "A layer index at or beyond the model's n_layers.",
        "Index a layer below the model's n_layers (negative indices count from the end).", "error"),
    "hook-not-enabled": Rule(
        "Hook not enabled",
        "A hook that only exists after a config flag (e.g. use_attn_result) is switched on.",
        "Switch the flag on before the forward pass, e.g. `model.set_use_attn_result(True)`.", "warning"),
    "hook-meaning": Rule(
        "Hook reads another tensor on TransformerBridge",
        "A hook name that reads another tensor on this TransformerBridge than on HookedTransformer "
        "(e.g. ln1.hook_normalized before the LayerNorm's weight and bias, BLOOM's hook_q_input after the LayerNorm).",
        "Read the hook that holds HookedTransformer's value, or call `model.enable_compatibility_mode()`.", "warning"),
    "removed-api": Rule(
        "API removed in this TransformerLens",
        "An API that the installed TransformerLens version removed or renamed.",
        "Migrate to the replacement (HookedTransformer -> TransformerBridge), or declare the TransformerLens "
        "version the code targets (requirements, pyproject, `--tl-version`).", "error"),
    "unavailable-api": Rule(
        "API not in this TransformerLens yet",
        "An API that the TransformerLens version in use does not have yet (TransformerBridge before 3.0).",
        "Upgrade TransformerLens, or use the API of the version the code runs on.", "error"),
    "stale-hook": Rule(
        "Hook still attached",
        "A hook added with add_hook (or left by reset_hooks_end=False) that is still active in a later forward pass or run_with_cache.",
        "Scope the hook with `with model.hooks(...)`, or call `model.reset_hooks()` after the forward it was meant for.",
        "error"),
    "hook-accumulates": Rule(
        "Hook added again on every run",
        "add_hook in a loop or re-run cell, so the same hook is added again on every run.",
        "Reset hooks inside the loop, or scope them with `with model.hooks(...)`.", "warning"),
    "reset-hooks-end-false": Rule(
        "Hooks kept with reset_hooks_end=False",
        "reset_hooks_end=False without a later reset_hooks().",
        "Call `model.reset_hooks()` once the hooks have served, or drop `reset_hooks_end=False`.", "warning"),
    "hook-signature": Rule(
        "Hook function without a `hook` parameter",
        "A hook function whose second parameter is not named `hook` (TransformerLens passes it by keyword).",
        "Name the hook function's second parameter `hook`.", "error"),
    "multi-token": Rule(
        "String is several tokens",
        "A string used as a single token that the tokenizer splits into several.",
        "Use a string the model's tokenizer keeps as one token, or handle several tokens.", "warning"),
    "leading-space": Rule(
        "Token without its leading space",
        "A single-token string whose token differs without its leading space (' Mary' vs 'Mary').",
        "Add the leading space the prompt has (' Paris', not 'Paris').", "warning"),
    "live-hooks": Rule(
        "Hooks attached in the kernel",
        "Hooks still attached to a model in the attached Jupyter kernel (they fire on every later forward); "
        "offers Reset hooks in kernel.",
        "Reset the model's hooks in the kernel.", "warning"),
    "not-cached": Rule(
        "Key not in the kernel's cache",
        "A cache key the document reads that the kernel's cache of that name does not hold (a names_filter dropped it).",
        "Widen the names_filter of the run that made the cache.", "warning"),
}
