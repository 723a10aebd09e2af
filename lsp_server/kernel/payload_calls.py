"""The server's side of the ``__tlens__`` payload: install it in a kernel, call it, read its answer.

``PayloadCalls`` is the part of ``KernelBridge`` that talks to the payload (see ``payload/``): it
needs only the bridge's ``execute``. The payload is installed once per kernel (and again when its
hash changes or the kernel restarted); each call is one silent execute request whose JSON answer
comes back through a user expression.
"""

from __future__ import annotations

import ast
import asyncio
import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from . import payload
from .errors import KernelEnvironmentError, KernelError, PayloadError
from .replies import ExecResult


@dataclass
class KernelEnvironment:
    """What ``probe()`` found in the kernel."""

    python: str
    executable: str
    torch: str | None
    cuda: bool
    mps: bool
    transformer_lens: str | None
    backends: list[str]
    models: list[dict]
    errors: list[str]

    @property
    def device(self) -> str:
        return "cuda" if self.cuda else "mps" if self.mps else "cpu"


class PayloadCalls:
    """Payload calls over ``execute``; mixed into ``KernelBridge``."""

    execute: Callable[..., Awaitable[ExecResult]]
    _payload_hash: str | None = None  # the hash installed in the kernel, as far as we know

    async def ensure_payload(self) -> None:
        """Install (or update) the ``__tlens__`` payload in the kernel if needed."""
        want = payload.payload_hash()
        if self._payload_hash == want:
            return
        res = await self._execute_unaborted(
            "pass", user_expressions={"h": payload.installed_hash_expression()}
        )
        if res.user_expressions.get("h") != repr(want):
            res = await self._execute_unaborted(payload.install_code())
            if not res.ok:
                raise PayloadError(
                    f"installing the tlens payload failed: {res.ename}: {res.evalue}", "install"
                )
        self._payload_hash = want

    async def _execute_unaborted(self, code: str, **kwargs: Any) -> ExecResult:
        """``execute``, retried when ipykernel aborts it because a cell before it failed."""
        for attempt in range(3):
            res = await self.execute(code, **kwargs)
            if res.status != "aborted":
                return res
            await asyncio.sleep(0.2 * (attempt + 1))
        raise PayloadError(
            "the kernel kept aborting the request (the cells before it failed); run it again.", "aborted"
        )

    async def call_payload(self, name: str, timeout: float | None = None, **args: Any) -> Any:
        """Run ``__tlens__.<name>(**args)`` in the kernel and return its value.

        Raises:
            PayloadError: the payload reported an error (its message is user-facing).
            KernelError: interrupted (``.interrupted`` ExecResult), died, timed out.
        """
        await self.ensure_payload()
        res = await self._execute_unaborted(
            payload.call_code(name, json.dumps(args)),
            timeout=timeout,
            user_expressions={"out": payload.TAKE_EXPRESSION},
        )
        if not res.ok:
            if res.ename == "NameError" and "__tlens__" in (res.evalue or ""):
                self._payload_hash = None  # kernel restarted behind our back
            raise PayloadCallInterrupted(res) if res.interrupted else PayloadError(
                f"{res.ename}: {res.evalue}", "kernel-error"
            )
        if res.expression_errors.get("out", "").startswith("KeyboardInterrupt"):
            raise PayloadCallInterrupted(res)  # the interrupt landed while the answer was read
        if "out" in res.expression_errors:
            raise PayloadError(f"reading the payload's answer failed: {res.expression_errors['out']}")
        answer = json.loads(ast.literal_eval(res.user_expressions["out"]))
        if not answer["ok"]:
            raise PayloadError(answer["error"], answer.get("code", "error"), answer.get("details"))
        return answer["value"]

    async def probe(self) -> KernelEnvironment:
        """Python / torch / transformer_lens versions and backends in the kernel.

        Raises:
            KernelEnvironmentError: torch or transformer_lens cannot be imported; the message
                gives the pip command for the kernel's own interpreter.
        """
        info = await self.call_payload("probe")
        env = KernelEnvironment(**{k: info[k] for k in KernelEnvironment.__dataclass_fields__})
        exe = env.executable
        if env.torch is None:
            raise KernelEnvironmentError(
                f"PyTorch cannot be imported in the kernel ({exe}, Python {env.python}). "
                f"Install it with: {exe} -m pip install torch transformer-lens"
                + _errors_suffix(env.errors)
            )
        if env.transformer_lens is None:
            raise KernelEnvironmentError(
                f"transformer_lens cannot be imported in the kernel ({exe}, Python {env.python}). "
                f"Install it with: {exe} -m pip install transformer-lens" + _errors_suffix(env.errors)
            )
        return env


class PayloadCallInterrupted(KernelError):
    """A payload call ended with KeyboardInterrupt (cancel, or the user pressed interrupt)."""

    def __init__(self, result: ExecResult):
        super().__init__("the kernel was interrupted")
        self.result = result


def _errors_suffix(errors: list[str]) -> str:
    return f" (import error: {errors[0]})" if errors else ""
