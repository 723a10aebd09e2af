"""The JSON-RPC protocol object of the server: pygls's, with routine cancels kept quiet and secrets
(kernel keys) masked in every message it writes (``kernel/secrets.py``); and stdio read on the event loop."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any

from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async
from pygls.protocol import LanguageServerProtocol

from .kernel.secrets import MaskingWriter

log = logging.getLogger(__name__)


class TlensProtocol(LanguageServerProtocol):
    def _handle_cancel_notification(self, msg_id):
        """A cancel for a request that already finished is routine (editors cancel hovers and code
        actions as the cursor moves): no warning in the user's output channel."""
        if msg_id not in self._request_futures:
            log.debug("cancel for request %s, which already finished", msg_id)
            return
        super()._handle_cancel_notification(msg_id)

    def set_writer(self, writer: Any, include_headers: bool = True) -> None:
        super().set_writer(MaskingWriter(writer), include_headers)


class PipeReader:
    """stdin read by the event loop itself (asyncio's pipe transport), with the two calls pygls's message
    loop makes. pygls reads each header line and each body through a thread: three hand-offs per
    message, and while an analysis holds the interpreter each one waits for it (a hover sent right after
    a keystroke waited for several)."""

    def __init__(self, stream: asyncio.StreamReader):
        self.stream = stream

    async def readline(self) -> bytes:
        # Messages already buffered would be read without yielding: first let the async handlers of
        # the last one start, so that each message's handler begins in the order the client sent them
        # (a setting pushed, then a request that reads it; a hover, then the edit after it).
        await asyncio.sleep(0)
        return await self.stream.readline()

    async def readexactly(self, n: int) -> bytes:
        try:
            return await self.stream.readexactly(n)
        except asyncio.IncompleteReadError as e:  # the client went away: what came (b"" ends pygls's loop)
            return e.partial


async def _stdin_reader(server: Any) -> PipeReader | StdinAsyncReader:
    """The event loop's reader of stdin where the platform has one for it, else pygls's threaded one."""
    if sys.platform != "win32":  # (a Windows pipe handle must be opened for overlapped I/O to be read so)
        stream = asyncio.StreamReader(limit=1 << 20)
        try:
            await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), sys.stdin.buffer)
            return PipeReader(stream)
        except (ValueError, OSError) as e:  # stdin is a file or a terminal: read it as pygls does
            log.info("stdin is not a pipe (%s): reading it through a thread", e)
    return StdinAsyncReader(sys.stdin.buffer, server.thread_pool)


def serve_stdio(server: Any) -> None:
    """Serve LSP over stdin/stdout: pygls's ``start_io``, with stdin read on the event loop."""
    server._stop_event = stop = threading.Event()
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))

    async def serve() -> None:
        reader = await _stdin_reader(server)
        await run_async(stop_event=stop, reader=reader, protocol=server.protocol, logger=log,
                        error_handler=server.report_server_error)

    try:
        asyncio.run(serve())
    except BrokenPipeError:
        log.error("Connection to the client is lost! Shutting down the server.")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
