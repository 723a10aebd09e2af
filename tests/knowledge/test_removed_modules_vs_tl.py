"""The modules ``removed-api`` calls removed really are gone from the installed TransformerLens 4."""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest

from lsp_server.analysis.checks import REMOVED_MODULES


@pytest.mark.parametrize("module", REMOVED_MODULES)
def test_removed_module_is_gone_in_tl4(module):
    if int(importlib.metadata.version("transformer-lens").split(".")[0]) < 4:
        pytest.skip("this interpreter does not have TransformerLens 4")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"transformer_lens.{module}")
