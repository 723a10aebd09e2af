"""Model name -> ModelSpec, in the documented order: official table, then the local HF cache.

(Configs written in the file are resolved by the analysis itself; a live kernel's model by the
kernel bridge.) Not memoised: a table lookup takes ~10 µs and a cache miss ~40 µs, and a model
downloaded while the server runs must be found on the next analysis.
"""

from __future__ import annotations

import logging

from .spec import ModelSpec

log = logging.getLogger(__name__)


def resolve_model_name(name: str) -> ModelSpec | None:
    from . import registry  # local: keeps start-up light

    try:
        spec = registry.lookup(name)
        if spec is not None:
            return spec
        from . import hf_cache

        return hf_cache.lookup_hf_cache(name)
    except Exception:  # a broken cache file must never take hovers down
        log.exception("resolving model name %r failed", name)
        return None
