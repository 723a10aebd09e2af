"""Fixtures shared by tests/kernel, tests/lsp and the CLI tests."""

from __future__ import annotations

import pytest

from .gateway_server import LocalGateway


@pytest.fixture(scope="session")
def gateway():
    """A local Jupyter Kernel Gateway with token auth; at the end it must hold no kernel and leave no process."""
    server = LocalGateway().start()
    try:
        yield server
    finally:
        server.stop()
