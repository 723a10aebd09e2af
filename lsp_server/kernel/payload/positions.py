"""tlens in-kernel payload, part: batches of prompt pairs and their position axis.

A sweep over N prompt pairs patches "the same position" of every pair. Two ways to say which:
  padded    the prompts are (or are padded to) one length; column p is token p of every pair.
  labelled  a position labelling ``{"S1": [...], "IO": [...], "END": [...]}`` (one token
            position per pair for each label, as in IOI datasets) aligns pairs of different
            lengths; column j is label j, at its own position in each pair.
Either way the sweep holds an index ``[columns, pairs]`` of token positions; hooks patch with it.
"""

from .core import TlensError
from .environment import _model_device
from .inputs import _as_tokens, _to_tokens


def _padded_tokens(model, value, what):
    """Prompts of different lengths -> right-padded tokens [nb, P] and each prompt's length.

    Returns None when ``value`` is not a list of prompt strings (tensors are taken as given).
    Right padding changes no earlier position (causal attention), so patched values of the
    real tokens are those of each prompt alone.
    """
    if not (isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value)):
        return None
    rows = [_to_tokens(model, v, what)[0] for v in value]
    lengths = [int(r.shape[-1]) for r in rows]
    return _pad_rows(rows, max(lengths), _pad_id(model)), lengths


def _pad_rows(rows, length, pad_id):
    import torch

    out = torch.full((len(rows), length), pad_id, dtype=torch.long, device=rows[0].device)
    for i, r in enumerate(rows):
        out[i, : r.shape[-1]] = r
    return out


def _pad_to(tokens, length, pad_id):
    """Right-pad a [nb, P] token tensor to ``length`` positions."""
    if tokens.shape[-1] >= length:
        return tokens
    return _pad_rows(list(tokens), length, pad_id)


def _pad_id(model):
    tok = getattr(model, "tokenizer", None)
    for attr in ("pad_token_id", "eos_token_id"):
        v = getattr(tok, attr, None)
        if isinstance(v, int):
            return v
    return 0


def _position_labelling(value, nb, n_tokens, lengths=None):
    """A labelling (dict label -> one position per pair, or one for all) -> (labels, index).

    ``index[j][b]`` is the token position of label j in pair b. Negative positions count
    from each prompt's end (its own length when the prompts were padded).
    """
    import torch

    if not isinstance(value, dict) or not value:
        raise TlensError(
            "bad-positions",
            "positions must be a dict of label -> token positions, one per prompt pair "
            f'(e.g. {{"S1": [...], "IO": [...], "END": [...]}}); got {type(value).__name__}.',
        )
    labels, index = [], []
    for label, pos in value.items():
        if isinstance(pos, torch.Tensor):
            pos = pos.flatten().tolist()
        elif isinstance(pos, int) or hasattr(pos, "__index__"):
            pos = [int(pos)] * nb
        if not isinstance(pos, (list, tuple)) or len(pos) != nb:
            got = len(pos) if isinstance(pos, (list, tuple)) else type(pos).__name__
            raise TlensError(
                "bad-positions",
                f"positions[{label!r}] must give one token position per prompt pair ({nb}); got {got}.",
            )
        row = []
        for b, p in enumerate(pos):
            if isinstance(p, bool) or not (isinstance(p, int) or hasattr(p, "__index__")):
                raise TlensError("bad-positions", f"positions[{label!r}][{b}] is {p!r}, not a token position.")
            end = lengths[b] if lengths else n_tokens
            p = int(p) + end if int(p) < 0 else int(p)
            if not 0 <= p < end:
                raise TlensError(
                    "bad-positions",
                    f"positions[{label!r}][{b}] = {pos[b]} is outside prompt pair {b} ({end} tokens).",
                )
            row.append(p)
        labels.append(str(label))
        index.append(row)
    return labels, index


def _end_positions(labels, index, lengths, nb, n_tokens):
    """Where a logit difference is read in each pair: label END, else each prompt's last token."""
    for j, label in enumerate(labels or ()):
        if label.upper() == "END":
            return index[j]
    if lengths:
        return [n - 1 for n in lengths]
    return [n_tokens - 1] * nb


def _batch_tokens(model, value, what):
    """Tokens [nb, P] of a batch and each prompt's length (None unless prompts were padded)."""
    padded = _padded_tokens(model, value, what)
    if padded is not None and len(set(padded[1])) > 1:
        tokens, lengths = padded
        return tokens.to(_model_device(model)), lengths
    return _as_tokens(model, value, what), None


def _pair_lengths(clean_lengths, corr_lengths, nb):
    """The common per-pair lengths of padded clean/corrupted batches (positions must line up)."""
    if clean_lengths and corr_lengths and clean_lengths != corr_lengths:
        b = next(i for i, (x, y) in enumerate(zip(clean_lengths, corr_lengths)) if x != y)
        raise TlensError(
            "shape-mismatch",
            f"prompt pair {b}: the clean prompt has {clean_lengths[b]} tokens, the corrupted one "
            f"{corr_lengths[b]}; patching needs the positions of a pair to line up.",
        )
    lengths = clean_lengths or corr_lengths
    if lengths and len(lengths) != nb:
        return None
    return lengths
