"""Kernel keys are remembered when read and masked in what the server writes (LSP messages, its log)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from lsp_server.kernel import secrets
from lsp_server.kernel.connection import load_connection_file
from lsp_server.kernel.errors import ConnectionFileError

KEY = "0166374e-cbc657d6d804e9ec43c5446b"


@pytest.fixture(autouse=True)
def no_secrets(monkeypatch):
    monkeypatch.setattr(secrets, "_secrets", set())


def test_a_remembered_key_is_masked_with_its_length_kept():
    message = f'{{"jsonrpc": "2.0", "result": {{"error": "bad key {KEY}"}}}}'.encode()
    assert secrets.mask(message) == message  # nothing remembered yet
    secrets.remember(KEY)
    secrets.remember("short")  # too short to be a secret: ordinary text stays
    masked = secrets.mask(message + b" short")
    assert KEY.encode() not in masked and len(masked) == len(message) + 6 and masked.endswith(b" short")


def test_the_writer_masks_every_message():
    out = io.BytesIO()
    writer = secrets.MaskingWriter(out)
    secrets.remember(KEY.encode())
    body = json.dumps({"message": f"traceback ... key={KEY!r}"})
    writer.write(f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
    header, sent = out.getvalue().decode().split("\r\n\r\n")
    assert KEY not in sent and json.loads(sent)["message"] == "traceback ... key='" + "*" * len(KEY) + "'"
    assert header == f"Content-Length: {len(sent)}"


def test_the_log_masks_messages_and_tracebacks():
    secrets.remember(KEY)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(secrets.MaskingFormatter(logging.BASIC_FORMAT))
    logger = logging.getLogger("tlens-test-secrets")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError(f"session key {KEY}")
        except ValueError:
            logger.exception("Sending data: %s", {"key": KEY})
    finally:
        logger.removeHandler(handler)
    assert "Sending data" in stream.getvalue() and "ValueError" in stream.getvalue()
    assert KEY not in stream.getvalue()


def test_reading_a_connection_file_remembers_its_key_even_when_it_fails(tmp_path):
    path = tmp_path / "kernel-1.json"
    path.write_text(json.dumps({"key": KEY, "shell_port": "x"}))
    with pytest.raises(ConnectionFileError):
        load_connection_file(path)
    assert secrets.mask(KEY.encode()) == b"*" * len(KEY)
