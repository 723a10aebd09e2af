"""Indirect-object identification: which residual-stream positions carry the name?

Activation patching on the IOI task (Wang et al. 2022), in the style of the
TransformerLens "Exploratory Analysis Demo".
"""
# %%
import torch
from functools import partial
from transformer_lens import HookedTransformer, utils
import transformer_lens.patching as patching

torch.set_grad_enabled(False)
model = HookedTransformer.from_pretrained("gpt2-small", device="cpu")

# %%
prompt_format = "When John and Mary went to the shops,{} gave the bag to"
names = [" Mary", " John", " Tom", " James", " Dan", " Sid", " Martin", " Amy"]
prompts = [prompt_format.format(name) for name in [" John", " Mary", " Tom", " James"]]
answers = [(" Mary", " John"), (" John", " Mary"), (" Dan", " Sid"), (" Martin", " Amy")]

clean_tokens = model.to_tokens(prompts)
corrupted_tokens = clean_tokens[[1, 0, 3, 2]]
answer_tokens = torch.tensor(
    [[model.to_single_token(a), model.to_single_token(b)] for a, b in answers]
)

def logits_to_ave_logit_diff(logits, answer_tokens=answer_tokens):
    final_logits = logits[:, -1, :]
    answer_logits = final_logits.gather(dim=-1, index=answer_tokens)
    return (answer_logits[:, 0] - answer_logits[:, 1]).mean()

clean_logits, clean_cache = model.run_with_cache(clean_tokens)
corrupted_logits, corrupted_cache = model.run_with_cache(corrupted_tokens)
CLEAN_BASELINE = logits_to_ave_logit_diff(clean_logits)
CORRUPTED_BASELINE = logits_to_ave_logit_diff(corrupted_logits)

def ioi_metric(logits):
    return (logits_to_ave_logit_diff(logits) - CORRUPTED_BASELINE) / (CLEAN_BASELINE - CORRUPTED_BASELINE)

# %% Inspect some activations
resid = clean_cache["resid_post", 5]
pattern = clean_cache["pattern", 9]
name_mover_z = clean_cache[utils.get_act_name("z", 9)]
scale = clean_cache["scale", 4, "ln1"]
final_resid = clean_cache["resid_post", -1]
embed = clean_cache["embed"]
q = clean_cache["blocks.9.attn.hook_q"]
for layer in range(model.cfg.n_layers):
    attn = clean_cache["attn", layer]
    mlp_act = clean_cache[f"blocks.{layer}.mlp.hook_post"]

# %% Hand-written residual-stream patching loop
def patch_residual_component(corrupted_component, hook, pos, clean_cache):
    corrupted_component[:, pos, :] = clean_cache[hook.name][:, pos, :]
    return corrupted_component

num_positions = clean_tokens.shape[1]
patched_diff = torch.zeros(model.cfg.n_layers, num_positions)
for layer in range(model.cfg.n_layers):
    for position in range(num_positions):
        hook_fn = partial(patch_residual_component, pos=position, clean_cache=clean_cache)
        patched_logits = model.run_with_hooks(
            corrupted_tokens,
            fwd_hooks=[(utils.get_act_name("resid_pre", layer), hook_fn)],
            return_type="logits",
        )
        patched_diff[layer, position] = ioi_metric(patched_logits)

# %% The same sweep with the library, one forward per cell
resid_pre_results = patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, ioi_metric)
