"""Run a file's setup code (imports, model, prompts) in a kernel tlens started, statement by statement.

A kernel we start has nothing of the user's defined: before a sweep, the top-level code above the
experiment runs there (``runner.sweep_experiment`` decides when). Tracebacks name the user's files
and lines as they know them (``ioi.py, line 48``, ``ioi.ipynb, cell 4``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ..kernel.bridge import KernelBridge, PayloadCallInterrupted
from ..kernel.errors import ExecuteTimeout, KernelError, PayloadError
from .spec import report


@dataclass(frozen=True)
class SetupStep:
    """One top-level statement of the setup code: lines ``first_line..last_line`` of ``file``."""

    file: str
    first_line: int  # 1-based, in the file (or notebook cell) as the user sees it
    last_line: int
    summary: str = ""  # the statement's first line, for progress messages


@dataclass
class SetupCode:
    """Setup code as the user wrote it: the files' texts (by the label they know them by, e.g.
    ``examples/ioi.py`` or ``ioi.ipynb, cell 4``) and the statements to run, in order."""

    files: dict[str, str]
    steps: list[SetupStep]

    @classmethod
    def single(cls, code: str, file: str = "setup code") -> "SetupCode":
        """All of ``code`` as one step (tests and benchmarks set kernels up this way)."""
        return cls({file: code}, [SetupStep(file, 1, max(code.count("\n") + 1, 1))])

    def describe(self, step: SetupStep) -> str:
        """``ioi.py, line 48 of 338`` / ``ioi.ipynb, cell 4, line 2``: where a step is."""
        total = self.files[step.file].count("\n") + 1
        of = f" of {total}" if "cell" not in step.file else ""
        return f"{step.file}, line {step.first_line}{of}"


@dataclass
class SetupResult:
    """Outcome of ``run_setup``.

    Attributes:
        ok: the code ran without an exception.
        message: one line for the user ("setup code failed at ioi.py, line 3: NameError: ...").
        stdout: what the code printed (stdout and stderr).
        traceback: the kernel's traceback, from the user's code on; empty when ok.
        file, line: where the innermost error happened in the user's code, if known.
        cancelled: stopped by ``cancel_event``.
    """

    ok: bool
    message: str
    stdout: str = ""
    traceback: str = ""
    file: str | None = None
    line: int | None = None
    cancelled: bool = False


SetupProgress = Callable[[SetupStep, int, int], "Awaitable[None] | None"]


async def run_setup(
    bridge: KernelBridge,
    setup: SetupCode | str,
    timeout: float | None = None,
    *,
    on_step: SetupProgress | None = None,
    cancel_event: asyncio.Event | None = None,
) -> SetupResult:
    """Execute a file's setup code (imports, model, prompts) in the kernel, statement by statement.

    Runs silently (no notebook output or history). Tracebacks name the user's files and lines.
    On timeout or cancel the kernel is interrupted.

    Args:
        setup: the statements to run; a string is run as one step of a file called "setup code".
        timeout: seconds for the whole setup.
        on_step: called before each step with (step, index, count).
        cancel_event: set it to stop between (or during) steps.
    """
    if isinstance(setup, str):
        setup = SetupCode.single(setup)
    cancel_event = cancel_event or asyncio.Event()
    deadline = None if timeout is None else time.monotonic() + timeout
    output: list[str] = []
    try:
        await bridge.call_payload("setup_begin", files=setup.files)
        for i, step in enumerate(setup.steps):
            if cancel_event.is_set():
                return SetupResult(False, "setup code cancelled", "".join(output), cancelled=True)
            await report(on_step, step, i, len(setup.steps))
            left = None if deadline is None else max(deadline - time.monotonic(), 0.01)
            call = asyncio.ensure_future(bridge.call_payload(
                "setup_step", timeout=left, file=step.file, first_line=step.first_line, last_line=step.last_line))
            try:
                answer = await _interrupt_on_cancel(bridge, call, cancel_event)
            except PayloadCallInterrupted:
                if cancel_event.is_set():
                    return SetupResult(False, "setup code cancelled", "".join(output), cancelled=True)
                return SetupResult(False, f"setup code was interrupted at {setup.describe(step)}", "".join(output))
            output.append(answer.get("stdout", ""))
    except ExecuteTimeout:
        with contextlib.suppress(KernelError):
            await bridge.interrupt()
        return SetupResult(False, f"setup code did not finish within {timeout:g} s; interrupted it.", "".join(output))
    except PayloadError as e:
        if e.code != "setup-failed":
            return SetupResult(False, f"setup code did not run: {e}", "".join(output))
        file, line = e.details.get("file"), e.details.get("line")
        where = ""
        if line:
            where = f" at line {line}" if len(setup.files) == 1 and file == "setup code" else f" at {file}, line {line}"
        return SetupResult(False, f"setup code failed{where}: {e}", "".join(output) + e.details.get("stdout", ""),
                           e.details.get("traceback", ""), file, line)
    except KernelError as e:
        return SetupResult(False, f"setup code did not run: {e}", "".join(output))
    return SetupResult(True, "setup code ran", "".join(output))


async def _interrupt_on_cancel(bridge: KernelBridge, call: asyncio.Future, cancel_event: asyncio.Event) -> Any:
    """Await a payload call; a cancel interrupts it at once (setup steps may load a model for minutes)."""
    waiter = asyncio.ensure_future(cancel_event.wait())
    try:
        done, _ = await asyncio.wait({call, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if call not in done:
            with contextlib.suppress(KernelError):
                await bridge.interrupt_own()
        return await call
    finally:
        waiter.cancel()
