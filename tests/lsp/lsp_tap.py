"""Runs a language server between our stdin/stdout and its own, copying every byte of the LSP traffic (both
ways) to TRACE and the server's stderr (its log) to LOG: what an editor's LSP trace and the server's output
channel would hold, for tests that grep them.

Usage: python lsp_tap.py TRACE LOG COMMAND...
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading


def main() -> int:
    trace_path, log_path, *command = sys.argv[1:]
    lock = threading.Lock()
    with open(trace_path, "wb") as trace, open(log_path, "wb") as log:
        server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)

        def pump(source: int, sink: int) -> None:  # raw file descriptors: no buffer locks at exit
            try:
                while chunk := os.read(source, 65536):
                    with lock:
                        trace.write(chunk)
                        trace.flush()
                    os.write(sink, chunk)
            except OSError:
                pass  # the other side went away
            os.close(sink)  # the client closed stdin: so does the server's; the server exited: so does ours

        to_server = threading.Thread(target=pump, args=(0, server.stdin.fileno()), daemon=True)
        to_server.start()
        pump(server.stdout.fileno(), 1)
        code = server.wait()
    os._exit(code)  # not waiting for the thread that still reads our stdin


if __name__ == "__main__":
    main()
