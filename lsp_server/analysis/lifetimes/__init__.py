"""Hook lifetimes: stale hooks, hooks piling up in loops, leaked reset_hooks_end=False hooks.

What TransformerLens does (measured on 2.18, 3.9 and 4.3; shared knowledge §3): a hook added with
``model.add_hook`` or ``HookPoint.add_hook`` stays until ``reset_hooks()`` / ``remove_all_hook_fns()``;
``run_with_cache``, ``run_with_hooks`` and ``hooks()`` never remove it. Hooks that ``run_with_hooks`` /
``run_with_cache`` / ``hooks()`` add with ``reset_hooks_end=False`` stay too (HookedTransformer drops them
after the next default-reset ``run_with_*`` has run them; TransformerBridge keeps them until a reset).

How we follow a program: per scope (the module, each function), the hook events and forward passes in
source order, which is execution order for scripts, ``# %%`` files and notebooks (cells arrive
concatenated). A hook is *meant* for the first statement after it that runs a forward pass (a loop
statement counts as one); a forward after that statement, with no reset in between, is a leak. Calls of
functions defined in this file count by what they do (forward, reset, leave hooks attached), one level
deep. Anything we cannot follow ends tracking silently: a model passed to code we cannot see, a name
rebound to another model, mutually exclusive branches, a ``return`` between the hook and the forward.

The steps, one module each: ``hook_events`` and ``scope_events`` collect the events (kinds and what each
does: ``events``), ``summaries`` says what each function does, ``flow`` follows each attached hook through
its scope, ``messages`` and ``fixes`` write the findings. ``doc``, ``models``, ``calls`` and ``syntax``
serve them all.
"""

from __future__ import annotations

from ..findings import Finding
from ..hook_signatures import check_hook_signatures
from .doc import Doc
from .fixes import Fixes
from .hook_events import HookEvents
from .messages import Messages, Report
from .models import ModelKeys
from .summaries import Summaries

__all__ = ["check_hook_lifetimes"]


def check_hook_lifetimes(analysis) -> list[Finding]:
    """All lifetime and hook-signature findings of one document."""
    doc = Doc(analysis)
    report = Report()
    models = ModelKeys(doc)
    hooks = HookEvents(doc, models, report.emit)
    if not (b"add_hook" in doc.src or b"reset_hooks_end" in doc.src or b".hooks(" in doc.src):
        hooks.collect_permanent()
        return check_hook_signatures(doc.scopes, hooks.hook_sites, doc.where) if hooks.hook_sites else []
    hooks.collect()
    messages = Messages(doc, models, Fixes(doc, hooks.backwards))
    Summaries(doc, models, hooks, messages, report.emit).follow_hooks()
    out = list(report.findings.values())
    if hooks.hook_sites:
        out += check_hook_signatures(doc.scopes, hooks.hook_sites, doc.where)
    return out
