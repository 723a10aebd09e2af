"""tlens in-kernel payload, part: the compute floor, running only the positions a patch changes.

A cell that first changes token position p (its ``start``) leaves every position < p of every
later layer equal to the corrupted run: attention is causal. So a replay of such cells runs the
blocks on positions >= q (q = the smallest start in the chunk) only, and each attention reads
the corrupted run's keys and values at positions < q, recorded once when the sweep is prepared:
  HookedTransformer   hook_k / hook_v of the corrupted run, passed back to the block as a
                      frozen ``past_kv_cache_entry`` (TL's own generation cache interface);
  TransformerBridge   the keys/values its attention hands to ``_update_kv_cache`` (after
                      rotary), recorded during the corrupted run and prepended there again.
The block arguments that span positions (masks, rotary tables, position ids) are cut to the
positions run. Anything this part does not recognise turns the reuse off (the replay then runs
every position, as before); the sweep checks the result against the model's own forward.
"""


class _Unsliceable(Exception):
    """A block argument spans the positions in a way this part cannot cut."""


class _PrefixEntry:
    """Duck-typed ``HookedTransformerKeyValueCacheEntry``: frozen corrupted keys/values."""

    def __init__(self, keys, values):
        self.past_keys = keys
        self.past_values = values
        self.frozen = True

    def append(self, new_keys, new_values):
        import torch

        return torch.cat([self.past_keys, new_keys], dim=1), torch.cat([self.past_values, new_values], dim=1)


class _SweepPrefix:
    """Part of ``_Sweep`` (sweep.py): recording the corrupted keys/values, and suffix block calls."""

    def _prefix_style(self):
        """'hooked' (past_kv_cache_entry), 'bridge' (_update_kv_cache) or None (no reuse)."""
        args, kwargs = self.block_args.get(0, ((), {}))
        if "past_kv_cache_entry" in kwargs:
            return "hooked"
        attn = getattr(self.model.blocks[0], "attn", None)
        if self.is_bridge and callable(getattr(attn, "_update_kv_cache", None)):
            return "bridge"
        return None

    def _prefix_hook_names(self):
        """Extra activations of the corrupted run that HookedTransformer's prefix needs."""
        if self.is_bridge:
            return []
        return [f"blocks.{l}.attn.hook_{x}" for l in range(self.L) for x in ("k", "v")]

    def _recording_kv(self):
        """Context: while it is open, each bridge attention records the keys/values it makes."""
        sweep = self

        class _Recording:
            def __enter__(self):
                self.seen = {}
                if not sweep.is_bridge:
                    return self
                for layer, block in enumerate(sweep.model.blocks):
                    attn = getattr(block, "attn", None)
                    if attn is not None and callable(getattr(attn, "_update_kv_cache", None)):
                        attn._update_kv_cache = _recorder(attn, layer, self.seen)
                return self

            def __exit__(self, *exc):
                for block in sweep.model.blocks if sweep.is_bridge else ():
                    getattr(block, "attn", block).__dict__.pop("_update_kv_cache", None)
                return False

        return _Recording()

    def _keep_prefix(self, corr, seen):
        """Store the corrupted keys/values per layer (None: the reuse is off for this sweep)."""
        self.prefix = None
        self.prefix_style = self._prefix_style()
        if self.prefix_style == "hooked":
            names = self._prefix_hook_names()
            if all(n in corr for n in names):
                self.prefix = [(corr[f"blocks.{l}.attn.hook_k"], corr[f"blocks.{l}.attn.hook_v"]) for l in range(self.L)]
            self.prefix_dim = 1  # [batch, pos, kv_heads, d_head]
        elif self.prefix_style == "bridge":
            if all(l in seen and seen[l][0].shape[-2] == self.P for l in range(self.L)):
                self.prefix = [seen[l] for l in range(self.L)]
            self.prefix_dim = 2  # [batch, kv_heads, pos, d_head]

    def _suffix_call(self, layer, block, x, rest, kw, q):
        """Call ``block`` on positions >= q of its input ``x`` (already cut), with the prefix."""
        import torch

        rows = x.shape[0]
        d = self.prefix_dim
        keys, values = (_tile_rows(t.narrow(d, 0, q), self.nb, rows) for t in self.prefix[layer])
        rest = tuple(_cut(a, q, self.P, None) for a in rest)
        kw = {k: _cut(v, q, self.P, k) for k, v in kw.items()}
        if self.prefix_style == "hooked":
            kw["past_kv_cache_entry"] = _PrefixEntry(keys, values)
            return block(x, *rest, **kw)
        attn = block.attn

        def extend(k, v, **_):
            return torch.cat([keys.to(k.device, k.dtype), k], dim=d), torch.cat([values.to(v.device, v.dtype), v], dim=d)

        attn._update_kv_cache = extend
        try:
            return block(x, *rest, **kw)
        finally:
            attn.__dict__.pop("_update_kv_cache", None)


def _recorder(attn, layer, seen):
    original = type(attn)._update_kv_cache

    def record(k, v, **kwargs):
        seen.setdefault(layer, (k.detach(), v.detach()))
        return original(attn, k, v, **kwargs)

    return record


def _tile_rows(t, nb, rows):
    return t if rows == t.shape[0] else t.repeat(rows // t.shape[0], *([1] * (t.ndim - 1)))


# Block arguments that span positions, by name: the axis to cut and whether it is the query axis
# of a [.., query, key] mask (only the query rows are cut; the keys cover the prefix too).
_POSITION_AXES = {"position_ids": -1, "cache_position": -1, "position_embeddings": -2, "shortformer_pos_embed": 1}


def _cut(obj, q, P, name):
    """A recorded block argument restricted to positions >= q."""
    import torch

    if q == 0 or obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple) and name == "position_embeddings":
        return tuple(_cut(o, q, P, name) for o in obj)
    if not isinstance(obj, torch.Tensor):
        if isinstance(obj, (tuple, list)):
            raise _Unsliceable(name)
        return obj
    if name in _POSITION_AXES:
        axis = _POSITION_AXES[name]
        if obj.shape[axis] != P:
            raise _Unsliceable(name)
        return obj.narrow(axis % obj.ndim, q, P - q)
    if obj.ndim == 4 and obj.shape[-1] == P and obj.shape[-2] == P:  # [batch, 1, query, key] mask
        return obj[..., q:, :]
    if name == "attention_mask" and obj.ndim == 2 and obj.shape[-1] == P:  # padding mask of all keys
        return obj
    if P in tuple(obj.shape[1:]):
        raise _Unsliceable(name)
    return obj
