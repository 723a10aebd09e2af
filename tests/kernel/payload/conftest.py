"""Fixtures for the payload's in-process tests: a notebook namespace with the payload installed."""

from __future__ import annotations

import pytest

from .installed import install


@pytest.fixture
def user_ns() -> dict:
    """A fresh notebook namespace holding ``__tlens__`` (and nothing else)."""
    ns: dict = {}
    install(ns)
    return ns


@pytest.fixture
def tlens(user_ns):
    return user_ns["__tlens__"]
