"""payload/environment.py and payload/inputs.py: probe, and a spec's expressions turned into values and tokens."""

from __future__ import annotations

import re

import pytest
import torch

from .installed import HookedTransformer, answer


def test_probe_reports_versions_and_the_models_in_scope(tlens, user_ns):
    user_ns.update(model=HookedTransformer(n_layers=3), _hidden=HookedTransformer(), number=3)
    info = answer(tlens, "probe")["value"]
    assert info["torch"] == torch.__version__ and info["transformer_lens"] and not info["errors"]
    assert info["models"] == [{"name": "model", "class": "HookedTransformer", "n_layers": 3, "d_model": 8,
                               "n_heads": 2, "device": "cpu"}]


def test_a_tl_model_is_known_by_class_name_and_cfg(tlens):
    class HookedRootModule:
        cfg = None

    assert tlens._is_tl_model(HookedTransformer()) and tlens._is_tl_model(HookedRootModule())
    assert not tlens._is_tl_model(object()) and not tlens._is_tl_model(type("HookedTransformer", (), {})())


def test_missing_names_skip_builtins_bound_names_and_the_namespace(tlens, user_ns):
    user_ns["defined"] = 1
    exprs = ["defined + absent", "lambda x, *a, k=1, **kw: x + a + k + kw + later", "[i for i in range(n)]",
             "len(absent)", None, ""]
    assert tlens._missing_names(exprs) == ["absent", "later", "n"]
    with pytest.raises(tlens.TlensError, match=re.escape("cannot parse 'x +': invalid syntax")) as e:
        tlens._missing_names(["x +"])
    assert e.value.code == "bad-expression"


def test_eval_runs_in_the_user_namespace_and_names_the_failure(tlens, user_ns):
    user_ns["x"] = 20
    assert tlens._eval("x + 1", "clean") == 21
    with pytest.raises(tlens.TlensError, match=r"evaluating clean `x / 0` in the kernel failed: ZeroDivisionError"):
        tlens._eval("x / 0", "clean")


def test_tokens_from_tensors_prompts_and_lists(tlens):
    model = HookedTransformer()
    assert tlens._as_tokens(model, torch.tensor([5, 6]), "clean").tolist() == [[5, 6]]
    assert tlens._as_tokens(model, "ab", "clean").tolist() == [[0, 97, 98]]
    assert tlens._as_tokens(model, ["ab", "cd"], "clean").tolist() == [[0, 97, 98], [0, 99, 100]]
    assert tlens._as_tokens(model, [[1, 2]], "clean").tolist() == [[1, 2]]


@pytest.mark.parametrize("value, code, message", [
    (torch.ones(1, 3), "bad-tokens", "clean is a torch.float32 tensor; expected integer token ids"),
    (["ab", "abc"], "ragged-prompts", "the clean prompts tokenize to different lengths [3, 4]"),
    ([[1], [2, 3]], "bad-tokens", "clean must be a token tensor, a prompt string or a list of prompts; got a list"),
    (3.5, "bad-tokens", "clean must be a token tensor, a prompt string or a list of prompts; got float."),
    (torch.zeros(1, 2, 2, dtype=torch.long), "bad-tokens", "clean tokens must have shape [batch, pos]; got [1, 2, 2]."),
])
def test_bad_tokens_say_what_is_wrong(tlens, value, code, message):
    with pytest.raises(tlens.TlensError) as e:
        tlens._as_tokens(HookedTransformer(), value, "clean")
    assert e.value.code == code and str(e.value).startswith(message)


def test_answer_ids_from_strings_ids_and_tensors(tlens):
    model = HookedTransformer()
    assert tlens._token_ids(model, "a", 2, "answer").tolist() == [97, 97]  # one for every prompt
    assert tlens._token_ids(model, ["a", 98], 2, "answer").tolist() == [97, 98]
    assert tlens._token_ids(model, torch.tensor([7]), 1, "answer").tolist() == [7]
    with pytest.raises(tlens.TlensError, match=r"answer 'ab' is 2 tokens, not one") as e:
        tlens._token_ids(model, "ab", 1, "answer")
    assert e.value.code == "multi-token"
    with pytest.raises(tlens.TlensError, match="wrong gives 2 tokens but there are 3 prompts"):
        tlens._token_ids(model, [1, 2], 3, "wrong")
    with pytest.raises(tlens.TlensError, match="answer must be token ids or strings; got float"):
        tlens._token_ids(model, 1.0, 1, "answer")


def test_token_labels(tlens):
    model = HookedTransformer()
    assert tlens._str_tokens(model, torch.tensor([0, 97])) == ["<bos>", "a"]
    assert tlens._str_tokens(object(), torch.tensor([5, 6])) == ["#5", "#6"]  # no tokenizer
    assert tlens._tok_desc(model, torch.tensor([97, 97])) == "'a'"
    assert tlens._tok_desc(model, torch.tensor([97, 98])) == "'a'/'b'"
    assert tlens._tok_desc(model, torch.tensor([97, 98, 99])) == "answer[3]"
