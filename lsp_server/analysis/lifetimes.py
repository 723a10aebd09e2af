"""Hook lifetimes: stale hooks, hooks piling up in loops, leaked reset_hooks_end=False hooks."""

from __future__ import annotations

from .findings import Finding


def check_hook_lifetimes(analysis) -> list[Finding]:
    return []
