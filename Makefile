# tlens-lsp: every target bootstraps what it needs on a fresh machine.
#   make demo   - show what the server finds in examples/ (check, hover, a patching sweep)
#   make test   - the whole test suite (unit, LSP over stdio, real kernels, real editors)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Second and third environments: TransformerLens 2.18 (HookedTransformer) and 3.9 (both
# HookedTransformer and TransformerBridge), used by the catalog-vs-library and kernel tests.
HT_VENV := .venv-ht
HT_PY := $(HT_VENV)/bin/python
HT3_VENV := .venv-ht3
HT3_PY := $(HT3_VENV)/bin/python
TORCH := torch==2.13.0

.PHONY: demo test test-fast bench vsix editors clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: a bare torch requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(HT_VENV)/.installed:
	$(PYTHON) -m venv $(HT_VENV)
	$(HT_PY) -m pip install -q --upgrade pip
	$(HT_PY) -m pip install -q $(TORCH)
	# TL 2.18 pins numpy<2; pyarrow>=21 needs numpy>=2, so cap it (see shared knowledge, 0.).
	$(HT_PY) -m pip install -q 'transformer-lens==2.18.0' 'pyarrow<21' ipykernel
	touch $@

$(HT3_VENV)/.installed:
	$(PYTHON) -m venv $(HT3_VENV)
	$(HT3_PY) -m pip install -q --upgrade pip
	$(HT3_PY) -m pip install -q $(TORCH)
	$(HT3_PY) -m pip install -q 'transformer-lens==3.9.0' ipykernel
	touch $@

demo: $(VENV)/.installed
	$(PY) scripts/demo.py

TEST_ENV := TLENS_REQUIRE_EDITORS=1 TLENS_HT_PYTHON=$(abspath $(HT_PY)) TLENS_HT3_PYTHON=$(abspath $(HT3_PY))

# The editor suite runs in its own pytest process: Playwright's event loop must not share one
# with the asyncio tests.
test: $(VENV)/.installed $(HT_VENV)/.installed $(HT3_VENV)/.installed editors
	$(TEST_ENV) $(PY) -m pytest -q -m "not editor"
	$(TEST_ENV) $(PY) -m pytest -q -m editor tests/editors

# Without the editor suite and the HookedTransformer environment: quick inner loop.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not editor and not ht"

bench: $(VENV)/.installed $(HT_VENV)/.installed
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) benchmarks/lsp_latency.py
	$(PY) benchmarks/lsp_latency.py --workspace 300
	$(PY) benchmarks/token_checks.py
	$(PY) benchmarks/sweep_speed.py --ht-python $(abspath $(HT_PY))
	$(PY) benchmarks/baseline_memory.py
	$(PY) benchmarks/live_introspection.py --ht-python $(abspath $(HT_PY))
	$(PY) benchmarks/hover_pictures.py

editors: $(VENV)/.installed
	scripts/install-editors.sh

vsix: editors
	scripts/build-vsix.sh

clean:
	rm -rf $(VENV) $(HT_VENV) $(HT3_VENV) .editors build dist *.egg-info
