"""Tokenization diagnostics: multi-token strings passed to to_single_token, missing leading spaces."""

from __future__ import annotations

from .findings import Finding


def check_tokens(analysis) -> list[Finding]:
    return []
