"""tlens in-kernel payload, part: the kernel's environment (``probe``) and what a TL model is.

Stdlib only at import; torch and transformer_lens are imported inside ``probe`` so that it can
report their absence.
"""

import sys

from .core import _API, _user_ns


def probe():
    """Describe the kernel's environment without failing when torch/TL are missing."""
    info = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "torch": None,
        "cuda": False,
        "mps": False,
        "transformer_lens": None,
        "backends": [],
        "models": [],
        "errors": [],
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = bool(torch.cuda.is_available())
        mps = getattr(torch.backends, "mps", None)
        info["mps"] = bool(mps is not None and mps.is_available())
    except Exception as e:  # noqa: BLE001
        info["errors"].append(f"import torch: {type(e).__name__}: {e}")
        return info
    try:
        import transformer_lens  # noqa: F401
    except Exception as e:  # noqa: BLE001
        info["errors"].append(f"import transformer_lens: {type(e).__name__}: {e}")
        return info
    info["transformer_lens"] = _tl_version()
    try:
        from transformer_lens import HookedTransformer  # noqa: F401  (removed in 4.0)

        info["backends"].append("HookedTransformer")
    except Exception:  # noqa: BLE001
        pass
    try:
        from transformer_lens.model_bridge import TransformerBridge  # noqa: F401

        info["backends"].append("TransformerBridge")
    except Exception:  # noqa: BLE001
        pass
    for name, value in list(_user_ns().items()):
        if name.startswith("_") or not _is_tl_model(value):
            continue
        cfg = value.cfg
        info["models"].append(
            {
                "name": name,
                "class": type(value).__name__,
                "n_layers": int(cfg.n_layers),
                "d_model": int(cfg.d_model),
                "n_heads": int(cfg.n_heads),
                "device": str(_model_device(value)),
            }
        )
    return info


def _tl_version():
    try:
        from importlib.metadata import version

        return version("transformer-lens")
    except Exception:  # noqa: BLE001
        import transformer_lens

        return getattr(transformer_lens, "__version__", "unknown")


def _is_tl_model(obj):
    names = {c.__name__ for c in type(obj).__mro__}
    return bool(names & {"HookedTransformer", "TransformerBridge", "HookedRootModule"}) and hasattr(
        obj, "cfg"
    )


def _model_device(model):
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        import torch

        return torch.device("cpu")


_API["probe"] = probe
