"""Connection-file validation and discovery (no kernel needed)."""

from __future__ import annotations

import json
import os
import tempfile
import time

import pytest

from lsp_server.kernel import ConnectionFileError, list_connection_files, load_connection_file

GOOD = {
    "shell_port": 50001, "iopub_port": 50002, "stdin_port": 50003, "control_port": 50004,
    "hb_port": 50005, "ip": "127.0.0.1", "key": "abc", "transport": "tcp",
    "signature_scheme": "hmac-sha256", "kernel_name": "python3",
}


def write(tmp_path, content, name="kernel-x.json"):
    p = tmp_path / name
    p.write_text(content if isinstance(content, str) else json.dumps(content))
    return p


def test_valid_file_loads(tmp_path):
    info = load_connection_file(write(tmp_path, GOOD))
    assert info["shell_port"] == 50001 and info["key"] == "abc"


def test_signature_scheme_defaults(tmp_path):
    info = load_connection_file(write(tmp_path, {k: v for k, v in GOOD.items() if k != "signature_scheme"}))
    assert info["signature_scheme"] == "hmac-sha256"


def test_missing_file_says_how_to_find_it(tmp_path):
    with pytest.raises(ConnectionFileError, match="does not exist.*get_connection_file"):
        load_connection_file(tmp_path / "nope.json")


def test_malformed_json_names_the_position(tmp_path):
    with pytest.raises(ConnectionFileError, match=r"not valid JSON \(.*line 1, column"):
        load_connection_file(write(tmp_path, '{"shell_port": 1,'))


def test_json_that_is_not_an_object(tmp_path):
    with pytest.raises(ConnectionFileError, match="JSON list, not an object"):
        load_connection_file(write(tmp_path, "[1, 2]"))


@pytest.mark.parametrize("key", ["shell_port", "hb_port", "ip", "key", "transport"])
def test_missing_key_is_named(tmp_path, key):
    with pytest.raises(ConnectionFileError, match=f"no '{key}' key"):
        load_connection_file(write(tmp_path, {k: v for k, v in GOOD.items() if k != key}))


def test_port_of_wrong_type_is_named(tmp_path):
    with pytest.raises(ConnectionFileError, match="'iopub_port' must be a port number, got '5'"):
        load_connection_file(write(tmp_path, {**GOOD, "iopub_port": "5"}))


def test_a_key_in_the_wrong_field_is_not_quoted(tmp_path):
    key = "5ec7e7-0123456789abcdef"
    with pytest.raises(ConnectionFileError, match="'shell_port' must be a port number, got a string that is not a number") as error:
        load_connection_file(write(tmp_path, {**GOOD, "key": key, "shell_port": key}))
    assert key not in str(error.value)


def test_directory_is_rejected(tmp_path):
    with pytest.raises(ConnectionFileError, match="not a file"):
        load_connection_file(tmp_path)


def test_list_connection_files_newest_first(tmp_path, monkeypatch):
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    old = write(runtime, GOOD, "kernel-old.json")
    vscode = write(temp, GOOD, "kernel-v2-123abc.json")
    new = write(runtime, GOOD, "kernel-new.json")
    write(runtime, GOOD, "not-a-kernel.json")
    write(temp, GOOD, "kernel-other.json")  # temp dir: only VS Code's kernel-v2-*
    now = time.time()
    for i, p in enumerate([old, vscode, new]):
        os.utime(p, (now + i, now + i))
    assert list_connection_files() == [new.resolve(), vscode.resolve(), old.resolve()]


def test_list_connection_files_tolerates_missing_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "absent"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "absent2"))
    assert list_connection_files() == []
