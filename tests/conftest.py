"""Fixtures shared by tests/kernel, tests/lsp and the CLI tests."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from .gateway_server import LocalGateway

# Property tests draw the same examples on every run (a submission's CI run must not depend on luck);
# `HYPOTHESIS_PROFILE=explore` draws new ones, to look for counterexamples (keep what it finds as @example).
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def gateway():
    """A local Jupyter Kernel Gateway with token auth; at the end it must hold no kernel and leave no process."""
    server = LocalGateway().start()
    try:
        yield server
    finally:
        server.stop()
