"""tlens in-kernel payload, part: the user's input, from expressions to values, tokens and labels.

A sweep spec names kernel variables by expression (``model``, ``clean_tokens``, ``answer``);
these helpers find the names that are not defined, evaluate the expressions in the user's
namespace, and turn prompts / token ids / answer strings into tensors on the model's device,
with a message that says how to fix each kind of bad input.
"""

import ast
import builtins

from .core import TlensError, _user_ns
from .environment import _model_device


def _missing_names(expressions):
    """Free names in the spec's expressions that the kernel does not define."""
    ns = _user_ns()
    missing = []
    for expr in expressions:
        if not expr:
            continue
        try:
            tree = ast.parse(expr, mode="eval")
        except SyntaxError as e:
            raise TlensError("bad-expression", f"cannot parse {expr!r}: {e.msg}") from None
        bound = {
            n.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        for a in ast.walk(tree):  # lambda / comprehension parameters are bound too
            if isinstance(a, ast.arguments):
                bound |= {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs}
                bound |= {p.arg for p in (a.vararg, a.kwarg) if p is not None}
        for n in ast.walk(tree):
            if (
                isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Load)
                and n.id not in bound
                and n.id not in ns
                and not hasattr(builtins, n.id)
                and n.id not in missing
            ):
                missing.append(n.id)
    return missing


def _eval(expr, what):
    try:
        return eval(expr, _user_ns())  # noqa: S307 - the user's own code
    except Exception as e:  # noqa: BLE001
        raise TlensError(
            "eval-failed", f"evaluating {what} `{expr}` in the kernel failed: {type(e).__name__}: {e}"
        ) from None


def _as_tokens(model, value, what):
    import torch

    device = _model_device(model)
    if isinstance(value, torch.Tensor):
        if value.dtype.is_floating_point or value.dtype == torch.bool:
            raise TlensError(
                "bad-tokens",
                f"{what} is a {value.dtype} tensor; expected integer token ids "
                "(e.g. model.to_tokens(prompt)).",
            )
        tokens = value
    elif isinstance(value, str):
        tokens = _to_tokens(model, value, what)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        lengths = [int(_to_tokens(model, v, what).shape[-1]) for v in value]
        if len(set(lengths)) > 1:
            raise TlensError(
                "ragged-prompts",
                f"the {what} prompts tokenize to different lengths {lengths}; activation "
                "patching needs positions that line up. Use prompts with the same number of "
                "tokens, or pass a token tensor.",
            )
        tokens = _to_tokens(model, list(value), what)
    elif isinstance(value, (list, tuple)) and value:
        try:
            tokens = torch.tensor(value, dtype=torch.long)
        except Exception:  # noqa: BLE001
            raise TlensError(
                "bad-tokens",
                f"{what} must be a token tensor, a prompt string or a list of prompts; "
                f"got a {type(value).__name__} that is none of these.",
            ) from None
    else:
        raise TlensError(
            "bad-tokens",
            f"{what} must be a token tensor, a prompt string or a list of prompts; got "
            f"{type(value).__name__}.",
        )
    if tokens.ndim == 1:
        tokens = tokens.unsqueeze(0)
    if tokens.ndim != 2 or tokens.shape[-1] == 0:
        raise TlensError(
            "bad-tokens", f"{what} tokens must have shape [batch, pos]; got {list(tokens.shape)}."
        )
    return tokens.to(device)


def _to_tokens(model, text, what):
    try:
        return model.to_tokens(text)
    except Exception as e:  # noqa: BLE001
        raise TlensError(
            "tokenize-failed", f"model.to_tokens({what}) failed: {type(e).__name__}: {e}"
        ) from None


def _token_ids(model, value, nb, what):
    """answer / wrong -> LongTensor [nb]."""
    import torch

    if isinstance(value, torch.Tensor):
        ids = value.flatten().tolist()
    elif isinstance(value, (list, tuple)):
        ids = list(value)
    else:
        ids = [value]
    out = []
    for v in ids:
        if isinstance(v, str):
            try:
                out.append(int(model.to_single_token(v)))
            except Exception:  # noqa: BLE001
                n = int(_to_tokens_nobos(model, v))
                raise TlensError(
                    "multi-token",
                    f"{what} {v!r} is {n} tokens, not one; the logit difference needs single "
                    "tokens (mind the leading space: ' Mary' vs 'Mary').",
                ) from None
        elif isinstance(v, (int,)) or (hasattr(v, "__index__") and not isinstance(v, float)):
            out.append(int(v))
        else:
            raise TlensError(
                "bad-answer", f"{what} must be token ids or strings; got {type(v).__name__}."
            )
    if len(out) == 1:
        out = out * nb
    if len(out) != nb:
        raise TlensError(
            "bad-answer",
            f"{what} gives {len(out)} tokens but there are {nb} prompts; give one per prompt "
            "or a single one for all.",
        )
    return torch.tensor(out, dtype=torch.long)


def _to_tokens_nobos(model, text):
    try:
        return model.to_tokens(text, prepend_bos=False).shape[-1]
    except Exception:  # noqa: BLE001
        return 0


def _str_tokens(model, tokens_row):
    """Token strings of one prompt (a 1-D tensor); '#id' when there is no tokenizer."""
    try:
        toks = model.to_str_tokens(tokens_row)
        if len(toks) == len(tokens_row):
            return [str(t) for t in toks]
    except Exception:  # noqa: BLE001
        pass
    return [f"#{int(t)}" for t in tokens_row.tolist()]


def _tok_desc(model, ids):
    uniq = sorted(set(ids.tolist()))
    if len(uniq) > 1:
        return f"answer[{len(ids)}]" if len(uniq) > 2 else "/".join(_tok_str(model, i) for i in uniq)
    return _tok_str(model, uniq[0])


def _tok_str(model, i):
    try:
        return repr(model.to_string([int(i)]))
    except Exception:  # noqa: BLE001
        return f"#{int(i)}"
