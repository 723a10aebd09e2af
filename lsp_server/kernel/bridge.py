"""KernelBridge: one asyncio connection to a Jupyter kernel (attach, start, or on a Jupyter gateway), via
jupyter-client.

Usage::

    bridge = await KernelBridge.attach("/path/kernel-1234.json")      # the user's kernel
    bridge = await KernelBridge.start("/venv/bin/python", cwd=root)    # a kernel we own
    res = await bridge.execute("x = 1", user_expressions={"x": "x"})   # silent, no history
    env = await bridge.probe()                                         # torch / TL versions
    await bridge.interrupt()      # whatever runs (SIGINT if ours, interrupt_request if attached)
    await bridge.interrupt_own()  # only our request in flight, never a queued notebook cell
    await bridge.restart()        # own kernels only
    await bridge.shutdown()       # own kernel: stopped; attached kernel: we only disconnect
    await bridge.call_payload("probe")  # the __tlens__ payload (see payload/), installed once
    bridge = await KernelBridge.open(await GatewayKernel.start(config), timeout=60)  # see gateway.py

``state`` is one of "none", "starting", "idle", "busy", "dead"; ``on_state(state)`` is called
on every change. Busy/idle comes from the kernel's iopub status (any client's requests,
so a running notebook cell shows as busy). A kernel is dead when its process exits (ours),
its heartbeat stops answering, or its gateway closes the connection (culled, gateway gone).

Everything we execute is ``silent=True, store_history=False``: no execution count, no
``In``/``Out``/``_`` history, no output in the user's notebook.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
from queue import Empty
from typing import Any, Awaitable, Callable

from jupyter_client import AsyncKernelClient

from .errors import ExecuteTimeout, KernelDiedError, KernelError
from .launch import wait_ready
from .payload_calls import KernelEnvironment, PayloadCallInterrupted, PayloadCalls
from .replies import DROPPED_REPLY, DROPPED_REPLY_GRACE, ExecResult, exec_result
from .targets import AttachedKernel, KernelTarget, OwnKernel

# Re-exported: the package and sweeps.py import these from here.
__all__ = ["ExecResult", "KernelBridge", "KernelEnvironment", "PayloadCallInterrupted"]

StateCallback = Callable[[str], "Awaitable[None] | None"]


class KernelBridge(PayloadCalls):
    """An asyncio connection to one Jupyter kernel. Create it with ``attach``, ``start`` or, for a
    kernel on a Jupyter gateway, ``open`` with a ``gateway.GatewayKernel``.

    What depends on where the kernel lives (connecting, liveness, interrupt, restart, stopping)
    is the target's (targets.py, gateway.py). Calls to the ``__tlens__`` payload (``ensure_payload``,
    ``call_payload``, ``probe``) come from ``PayloadCalls`` (payload_calls.py).
    """

    def __init__(self, target: KernelTarget, *, on_state: StateCallback | None = None) -> None:
        self._target = target
        self._kc: AsyncKernelClient | None = None
        self.connection_file = target.connection_file
        self.on_state = on_state
        self._state = "none"
        self._exec_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._streams: dict[str, dict[str, list[str]]] = {}
        self._idle: dict[str, asyncio.Event] = {}
        self._executing: str | None = None
        self._started: set[str] = set()  # our requests the kernel has begun to run
        self._interrupt_when_started: str | None = None
        self._restarting = False
        self._closed = False
        self._payload_hash: str | None = None
        self._generation = 0  # bumped by restart(): replies from before it never come

    # ------------------------------------------------------------------ construction

    @classmethod
    async def attach(
        cls, connection_file: str | os.PathLike, *, timeout: float = 10.0, on_state: StateCallback | None = None
    ) -> "KernelBridge":
        """Connect to a running kernel from its connection file.

        Raises:
            ConnectionFileError: missing / malformed file (message names the key).
            KernelNotResponding: no reply within ``timeout`` (wrong key or dead kernel).
        """
        return await cls.open(AttachedKernel(connection_file), timeout=timeout, on_state=on_state)

    @classmethod
    async def start(
        cls,
        interpreter: str | os.PathLike,
        cwd: str | os.PathLike | None = None,
        *,
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
        on_state: StateCallback | None = None,
    ) -> "KernelBridge":
        """Start a kernel on ``interpreter`` (``-m ipykernel_launcher``); it is ours to stop.

        Raises:
            KernelStartError: the interpreter does not exist, or the kernel process exited
                or stayed silent during start-up (the message quotes its stderr).
        """
        target = OwnKernel(interpreter)
        return await cls.open(target, timeout=timeout, on_state=on_state, launch=target.launch(cwd, env))

    @classmethod
    async def open(
        cls,
        target: KernelTarget,
        *,
        timeout: float,
        on_state: StateCallback | None = None,
        launch: Awaitable[None] | None = None,
    ) -> "KernelBridge":
        """Connect to ``target``'s kernel (after ``launch``, which starts it) and wait for its first answer."""
        bridge = cls(target, on_state=on_state)
        bridge._set_state("starting")
        try:
            if launch is not None:
                await launch
            bridge._kc = await target.connect()
            await wait_ready(bridge._kc, target, timeout)
        except BaseException as e:
            error = target.start_failed(e)
            await bridge._teardown()
            bridge._set_state("none")
            if error is e:
                raise
            raise error from None
        bridge._start_watchers()
        bridge._set_state("idle")
        return bridge

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> str:
        """"none" | "starting" | "idle" | "busy" | "dead"."""
        return self._state

    @property
    def owned(self) -> bool:
        """True when this bridge started the kernel (so it may restart / stop it)."""
        return self._target.owned

    @property
    def gateway(self) -> str | None:
        """The URL of the Jupyter gateway the kernel runs on (None: a local kernel)."""
        return self._target.gateway

    @property
    def kernel_id(self) -> str | None:
        """The gateway's id of the kernel (None: a local kernel)."""
        return self._target.kernel_id

    @property
    def _km(self) -> Any:
        """The jupyter-client manager of a local kernel we started (tests kill its process)."""
        return getattr(self._target, "km", None)

    def _set_state(self, state: str) -> None:
        if state == self._state:
            return
        if self._state == "dead" and state in ("idle", "busy") and not self._restarting:
            return  # a late status message must not resurrect a dead kernel
        self._state = state
        if self.on_state is not None:
            result = self.on_state(state)
            if inspect.isawaitable(result):
                self._tasks.append(asyncio.ensure_future(result))

    def _start_watchers(self) -> None:
        self._tasks.append(asyncio.create_task(self._watch_iopub()))
        self._tasks.append(asyncio.create_task(self._watch_alive()))

    async def _watch_iopub(self) -> None:
        while not self._closed:
            try:
                msg = await self._kc.get_iopub_msg(timeout=0.5)
            except Empty:
                continue
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception:  # noqa: BLE001 - socket closed during shutdown
                await asyncio.sleep(0.1)
                continue
            parent = msg.get("parent_header", {}).get("msg_id")
            kind = msg["msg_type"]
            if kind == "status":
                st = msg["content"].get("execution_state")
                if st in ("busy", "idle") and self._state != "dead" and not self._restarting:
                    self._set_state(st)
                if st == "busy" and parent in self._idle:
                    self._started.add(parent)
                    if parent == self._interrupt_when_started:
                        self._interrupt_when_started = None
                        self._tasks.append(asyncio.ensure_future(self._interrupt_quietly()))
                if st == "idle" and parent in self._idle:
                    self._idle[parent].set()
            elif kind == "stream" and parent in self._streams:
                self._streams[parent].setdefault(msg["content"]["name"], []).append(
                    msg["content"]["text"]
                )

    async def _watch_alive(self) -> None:
        """Mark the kernel dead when its target says so (process exited, heartbeat or gateway gone)."""
        while not self._closed:
            await asyncio.sleep(0.5)
            if self._restarting or self._state == "dead":
                continue
            if not await self._target.alive(self._kc):
                self._set_state("dead")

    def _check_usable(self) -> None:
        if self._closed:
            raise KernelError("this kernel connection was shut down; attach or start again.")
        if self._state == "dead":
            raise KernelDiedError(self._death_message())

    def _death_message(self) -> str:
        return self._target.death_message()

    # ------------------------------------------------------------------ execute

    async def execute(
        self,
        code: str,
        *,
        timeout: float | None = None,
        user_expressions: dict[str, str] | None = None,
        silent: bool = True,
    ) -> ExecResult:
        """Run ``code`` in the kernel and wait for the reply.

        Args:
            code: Python source.
            timeout: seconds to wait for the reply (None: as long as the kernel lives).
            user_expressions: name -> expression evaluated after ``code`` succeeds.
            silent: no output/history in the user's notebook (default).

        Raises:
            KernelDiedError: the kernel died before replying.
            ExecuteTimeout: no reply in ``timeout`` s (the code may still be running).
        """
        self._check_usable()
        async with self._exec_lock:
            self._check_usable()
            msg_id = self._kc.execute(
                code,
                silent=silent,
                store_history=False,
                user_expressions=user_expressions or {},
                allow_stdin=False,
            )
            self._streams[msg_id] = {}
            self._idle[msg_id] = asyncio.Event()
            self._executing = msg_id
            try:
                reply = await self._await_reply(msg_id, timeout)
                # Streams arrive on iopub; the idle status that ends them follows the reply.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._idle[msg_id].wait(), 1.0)
                streams = self._streams.get(msg_id, {})
            finally:
                self._executing = None
                self._streams.pop(msg_id, None)
                self._idle.pop(msg_id, None)
                self._started.discard(msg_id)
                if self._interrupt_when_started == msg_id:
                    self._interrupt_when_started = None
        return exec_result(reply["content"], streams)

    async def _await_reply(self, msg_id: str, timeout: float | None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        generation = self._generation
        idle_since: float | None = None
        while True:
            if self._state == "dead":
                raise KernelDiedError(self._death_message())
            if self._generation != generation:
                raise KernelDiedError("the kernel was restarted while running the request.")
            try:
                msg = await self._kc.get_shell_msg(timeout=0.25)
            except Empty:
                if self._idle[msg_id].is_set():
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > DROPPED_REPLY_GRACE:
                        return DROPPED_REPLY
                if deadline is not None and time.monotonic() > deadline:
                    raise ExecuteTimeout(
                        f"the kernel did not finish within {timeout:.0f} s; it may still be "
                        "running (interrupt it to stop)."
                    ) from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    @property
    def executing(self) -> bool:
        """True while one of our execute requests is in flight."""
        return self._executing is not None

    # ------------------------------------------------------------------ control

    async def interrupt_own(self) -> None:
        """Interrupt our request in flight, never someone else's code.

        If the kernel is still busy with another client's request (a notebook cell) and has
        not started ours, the interrupt is sent the moment ours starts.
        """
        msg_id = self._executing
        if msg_id is None:
            return
        if msg_id in self._started:
            await self.interrupt()
        else:
            self._interrupt_when_started = msg_id

    async def _interrupt_quietly(self) -> None:
        with contextlib.suppress(KernelError):
            await self.interrupt()

    async def interrupt(self) -> None:
        """Interrupt whatever the kernel runs (SIGINT if ours, interrupt_request otherwise)."""
        self._check_usable()
        await self._target.interrupt(self._kc)

    async def restart(self, timeout: float = 60.0) -> None:
        """Restart a kernel we started (its variables are lost).

        Raises:
            KernelError: the kernel was attached, not started by us.
        """
        if not self.owned:
            await self._target.restart()  # raises: only our own kernels are restarted
        self._restarting = True
        self._generation += 1
        self._set_state("starting")
        try:
            await self._target.restart()
            async with self._exec_lock:
                # The iopub watcher is running: it, not the handshake, reads iopub now.
                await wait_ready(self._kc, self._target, timeout, check_iopub=False)
            self._payload_hash = None
        finally:
            self._restarting = False
        self._set_state("idle")

    async def shutdown(self) -> None:
        """Stop a kernel we own; for an attached kernel only disconnect. Idempotent."""
        if self._closed:
            return
        await self._teardown()
        self._set_state("none")

    async def _teardown(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        if self._kc is not None:
            with contextlib.suppress(Exception):
                await self._target.disconnect(self._kc)
        await self._target.close(dead=self._state == "dead")

    async def __aenter__(self) -> "KernelBridge":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()
