"""Live-kernel mode: what the attached (or started) Jupyter kernel holds makes the analysis exact.

After each execution in the kernel (busy -> idle, debounced) the server asks the kernel, through the
``__tlens__`` payload (``live_state``), for its TransformerLens models (config, hook names, hooks still
attached, tokenizer), its activation caches (key -> shape, dtype, device) and nothing else; no tensor
data is read and no name is bound in the user's namespace. The answer becomes
``AnalysisContext.live`` (:class:`~.analysis.live_facts.LiveFacts`):

* a model variable the document defines or uses gets the kernel model's spec (dims, flags, compat
  mode), so ``hook-not-enabled``, layer ranges and shapes follow what actually runs;
* cache-key hovers show the live shape, dtype and device;
* ``live-hooks`` (hooks left on a model, with the "Reset hooks in kernel" action) and ``not-cached``
  diagnostics;
* token hovers and checks use the kernel model's own tokenizer (its ``tokenizer.json``, shipped once).

Scheduling rules: hover and diagnostics only read the last answer; an introspection never starts
while the kernel is busy (the user's cell runs: wait for its idle); our own requests' busy/idle do
not trigger another one; a kernel that dies drops the live answer and says so.

Commands: ``tlens.resetKernelHooks {model?}``, ``tlens.liveState``, ``tlens.refreshLiveState``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from lsprotocol import types

from .analysis.document import AnalysisContext
from .analysis.live_facts import LiveCache, LiveFacts, LiveHook, LiveModel, LiveTensor
from .analysis.models import spec_from_tl_config
from .features import convert
from .handlers import command
from .kernel.errors import ExecuteTimeout, KernelDiedError, KernelError, PayloadError
from .knowledge import versions
from .knowledge.spec import ModelSpec
from .open_documents import open_uris
from .workspace import View, findings_in

if TYPE_CHECKING:  # pragma: no cover
    from .kernel import KernelBridge
    from .knowledge.tokenizers import Tok
    from .server import TlensServer

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.3  # a burst of cells (run all) is introspected once, after the last
TIMEOUT_S = 10.0  # one introspection, queueing included (the kernel side stops after BUDGET_S)
LIMITS = {"max_models": 16, "max_caches": 16, "max_keys": 4096, "max_hooks": 64, "max_bytes": 1 << 20, "budget_s": 1.0}
TOKENIZER_MAX_BYTES = 20 << 20
TOKENIZER_TIMEOUT_S = 60.0
LIVE_PREFIX = "live:"  # ModelSpec.tokenizer of a kernel model's tokenizer: "live:<key>"


# ------------------------------------------------------------------------------ answer -> facts


def facts_from_answer(answer: dict, no_tokenizer: Callable[[str], bool] = lambda key: False) -> LiveFacts:
    """The analysis' view of a ``live_state`` answer.

    Args:
        answer: the payload's ``live_state`` value.
        no_tokenizer: key -> True when that tokenizer cannot be shipped (the spec then keeps the
            static tokenizer family, if any).
    """
    models = {}
    for m in answer.get("models", []):
        spec = spec_of(m, no_tokenizer)
        hooks = tuple(LiveHook(h["hook"], h["fn"], bool(h["permanent"]), h["dir"]) for h in m.get("hooks", []))
        templates = m.get("hook_templates")
        models[m["var"]] = LiveModel(m["var"], m["class"], m.get("tl_version"), spec, hooks,
                                     int(m.get("hooks_total", len(hooks))),
                                     frozenset(templates) if templates is not None else None)
    caches = {}
    for c in answer.get("caches", []):
        dtypes, devices = c.get("dtypes", []), c.get("devices", [])
        keys = {}
        for key, (shape, dtype, device) in c.get("keys", {}).items():
            if shape is None:
                keys[key] = LiveTensor(None, str(dtype), None)
            else:
                keys[key] = LiveTensor(tuple(shape), dtypes[dtype], devices[device])
        caches[c["var"]] = LiveCache(c["var"], c.get("model"), keys, int(c.get("n_keys", len(keys))), bool(c.get("complete")))
    return LiveFacts(models, caches)


def spec_of(model: dict, no_tokenizer: Callable[[str], bool] = lambda key: False) -> ModelSpec:
    """A kernel model's exact spec (source ``live kernel: <var> (<class>, TL <version>)``)."""
    cfg = model.get("cfg", {})
    bridge = model.get("backend") == "bridge"
    source = f"live kernel: {model['var']} ({model['class']}, TL {model.get('tl_version') or '?'})"
    spec = spec_from_tl_config(cfg, source=source)
    tok = model.get("tokenizer") or {}
    key = tok.get("key") if tok.get("fast") else None
    return dataclasses.replace(
        spec,
        name=cfg.get("model_name") or None,
        backend="bridge" if bridge else "hooked",
        architecture=(cfg.get("architecture") or None) if bridge else None,
        compat_mode=bool(model.get("compat_mode")) if bridge else False,
        tokenizer=LIVE_PREFIX + key if key and not no_tokenizer(key) else None,
    )


# ------------------------------------------------------------------------------ the service


class LiveService:
    """Keeps the last live answer of the server's kernel and feeds it to the analyses."""

    def __init__(self, server: "TlensServer") -> None:
        self.server = server
        self.holder = server.kernel.holder
        self.facts: LiveFacts | None = None
        self.answer: dict | None = None
        self.status = "off"  # off | waiting | refreshing | ready | error | dead
        self.detail: str | None = None
        self.introspections = 0
        self.last_cost: dict | None = None  # kernelMs, roundTripMs, bytes of the last answer
        self._bridge: KernelBridge | None = None  # the kernel the facts come from
        self._fingerprint: str | None = None
        self._tokenizers: dict[str, Tok] = {}
        self._tokenizer_errors: dict[str, str] = {}
        self._own_request = False  # our request runs: its busy/idle trigger nothing
        self._busy_seen = 0
        self._due = 0.0
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._waiters: list[tuple[int, asyncio.Future]] = []  # (first refresh round that answers it, future)
        self._round = 0  # refresh attempts started
        self.user_runs = 0  # busy spells not of our making (a cell, another client): tensors may have changed
        previous = self.holder.on_state

        def chained(state: str) -> None:
            if previous is not None:
                previous(state)
            self._on_state(state)

        self.holder.on_state = chained

    # -- analysis inputs

    def kernel_tl_version(self) -> versions.TLVersion | None:
        """The TL version the attached kernel has imported (None: no kernel, or no TL there)."""
        if self.answer is None:
            return None
        return versions.from_string(self.answer.get("tl_version") or "", "the attached kernel")

    def extend(self, context: AnalysisContext) -> AnalysisContext:
        """``context`` plus the live facts and the kernel tokenizers (unchanged without a kernel)."""
        if self.facts is None:
            return context
        base = context.tokenizer_for

        def tokenizer_for(spec: ModelSpec):
            family = spec.tokenizer or ""
            if family.startswith(LIVE_PREFIX):
                return self._tokenizers.get(family[len(LIVE_PREFIX):])
            return base(spec) if base is not None else None

        return dataclasses.replace(context, live=self.facts, tokenizer_for=tokenizer_for)

    # -- kernel state

    def _on_state(self, state: str) -> None:
        if state in ("dead", "none", "starting"):  # starting: a restart empties the namespace
            self._drop("dead" if state == "dead" else "off",
                       "the kernel died; the live state is gone" if state == "dead" else None, wake=True)
            return
        if self._own_request:
            self._busy_seen += state == "busy"
            return
        self.user_runs += state == "busy"
        if state == "idle":  # something ran (a cell, a sweep step, an attach probe): look again
            self.request()

    def request(self, delay: float = DEBOUNCE_S) -> None:
        """Ask for an introspection ``delay`` s from now (later requests push it back)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a state change during interpreter shutdown
            return
        self._due = loop.time() + delay
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run())
        self._wake.set()

    async def refresh(self, timeout: float = 60.0) -> dict:
        """Introspect now (once the kernel is idle) and return :meth:`summary`."""
        future = asyncio.get_running_loop().create_future()
        waiter = (self._round + 1, future)  # a refresh already under way may predate the caller's change
        self._waiters.append(waiter)
        self.request(0)
        try:
            answered = await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            raise KernelError(f"the kernel stayed busy for {timeout:.0f} s; the live state was not refreshed.") from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
        return answered

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while (delay := self._due - loop.time()) > 0:
                await asyncio.sleep(delay)
            self._round += 1
            this_round = self._round
            try:
                done = await self._refresh_once()
            except Exception:  # noqa: BLE001 - the worker must survive anything
                log.exception("live introspection failed")
                self.status, self.detail, done = "error", "internal error (see the server log)", True
            if done:
                self._answer_waiters(this_round)

    async def _refresh_once(self) -> bool:
        """One introspection. False: the kernel is busy with someone else's code (retry on idle)."""
        bridge = self.holder.bridge
        if bridge is not self._bridge:
            self._drop("off", None)
            self._bridge = bridge
        if bridge is None:
            return True
        if bridge.state == "dead":
            self._drop("dead", "the kernel died; the live state is gone")
            return True
        while bridge.executing and bridge.state != "dead":  # our own sweep step: it ends soon
            await asyncio.sleep(0.1)
        if bridge.state == "busy":
            self.status = "waiting"  # the user's cell runs; its idle requests us again
            return False
        self.status = "refreshing"
        t0 = time.monotonic()
        try:
            async with self._own():
                answer = await bridge.call_payload("live_state", timeout=TIMEOUT_S, **LIMITS)
                self.introspections += 1
                await self._fetch_tokenizers(bridge, answer)
        except KernelDiedError as e:
            self._drop("dead", str(e))
            return True
        except ExecuteTimeout:
            self.status, self.detail = "error", f"the kernel did not answer within {TIMEOUT_S:.0f} s"
            return True
        except KernelError as e:  # interrupted, payload error: keep the last answer
            self.status, self.detail = "error", str(e)
            return True
        if bridge is not self.holder.bridge or bridge.state == "dead":
            return True  # the kernel changed under us
        self.last_cost = {"kernelMs": answer.get("elapsed_ms"), "roundTripMs": round((time.monotonic() - t0) * 1000, 1),
                          "bytes": len(json.dumps(answer))}
        self.status, self.detail = "ready", ("; ".join(answer.get("truncated", [])) or None)
        self._apply(answer)
        if self._busy_seen > 1:  # a cell ran next to ours: its effects may postdate our answer
            self.request()
        return True

    def quiet(self):
        """Context for a payload call of ours: its busy/idle triggers no introspection."""
        return self._own()

    @contextlib.asynccontextmanager
    async def _own(self):
        self._own_request, self._busy_seen = True, 0
        try:
            yield
        finally:
            self._own_request = False
            self.user_runs += self._busy_seen > 1  # a cell ran next to ours (or our call made two requests)

    def _apply(self, answer: dict) -> None:
        comparable = {k: v for k, v in answer.items() if k != "elapsed_ms"}
        fingerprint = json.dumps(comparable, sort_keys=True)
        self.answer = answer
        if fingerprint == self._fingerprint and self.facts is not None:
            return
        self._fingerprint = fingerprint
        self._rebuild()

    def _rebuild(self) -> None:
        self.facts = facts_from_answer(self.answer, self._tokenizer_errors.__contains__) if self.answer else None
        self._republish()

    def _drop(self, status: str, detail: str | None, wake: bool = False) -> None:
        self.status, self.detail = status, detail
        self.answer, self._fingerprint = None, None
        self._tokenizers.clear()
        self._tokenizer_errors.clear()
        if self.facts is not None:
            self.facts = None
            self._republish()
        if wake:  # nothing will answer them now
            self._answer_waiters(None)

    def _answer_waiters(self, round_: int | None) -> None:
        """Answer the refreshes that round ``round_`` (None: any) serves with the state it left: a round the worker
        starts before a caller resumes (a cell ran next to ours) must not show them "refreshing"."""
        summary = self.summary()
        for needed, future in self._waiters:
            if (round_ is None or needed <= round_) and not future.done():
                future.set_result(summary)

    def _republish(self) -> None:
        """Analyses made with the old answer are stale: drop them and publish diagnostics again."""
        server = self.server
        server.workspace_cache.invalidate()
        for uri in open_uris(server.workspace):
            server.schedule_diagnostics(uri)

    # -- tokenizers

    async def _fetch_tokenizers(self, bridge: "KernelBridge", answer: dict) -> None:
        """Ship each new fast tokenizer once (it is keyed by the kernel's tokenizer object)."""
        from tokenizers import Tokenizer

        from .knowledge.tokenizers import Tok

        for m in answer.get("models", []):
            tok = m.get("tokenizer") or {}
            key = tok.get("key") if tok.get("fast") else None
            if not key or key in self._tokenizers or key in self._tokenizer_errors:
                continue
            if bridge.state != "idle":  # a cell started meanwhile: do not queue behind it (next round)
                return
            try:
                value = await bridge.call_payload("live_tokenizer", timeout=TOKENIZER_TIMEOUT_S, var=m["var"],
                                                  max_bytes=TOKENIZER_MAX_BYTES)
            except PayloadError as e:  # not a fast tokenizer, too large: token checks stay static
                self._tokenizer_errors[key] = str(e)
                continue
            try:
                built = await asyncio.to_thread(Tokenizer.from_str, value["json"])
            except Exception as e:  # noqa: BLE001 - a tokenizer.json this tokenizers version cannot read
                self._tokenizer_errors[key] = f"cannot load the kernel's tokenizer here: {e}"
                continue
            name = m.get("cfg", {}).get("model_name") or value.get("name") or m["var"]
            self._tokenizers[value["key"]] = Tok(name, built, value.get("bos_token"))
            if value["key"] != key:  # replaced between the two calls: the next answer has the new key
                self._tokenizer_errors[key] = "the tokenizer changed while it was being copied"

    # -- commands

    async def reset_hooks(self, model: str | None) -> dict:
        bridge = self.holder.bridge
        if bridge is None or bridge.state in ("dead", "none"):
            raise KernelError("no live kernel: attach the notebook's kernel first (TLens: Attach to Jupyter Kernel).")
        if bridge.state == "busy" and not bridge.executing:
            raise KernelError("the kernel is running a cell; reset the hooks when it has finished.")
        async with self._own():
            done = await bridge.call_payload("live_reset_hooks", timeout=30.0, var=model)
        try:
            await self.refresh(timeout=30.0)  # the live-hooks diagnostics go away
        except KernelError as e:
            log.warning("refreshing the live state after reset_hooks: %s", e)
        parts = []
        for m in done:
            part = f"removed {m['removed']} hook{'s' if m['removed'] != 1 else ''} from {m['var']}"
            if m["permanent_left"]:
                part += (f" ({m['permanent_left']} permanent hook{'s' if m['permanent_left'] != 1 else ''} stay; "
                         "reset_hooks(including_permanent=True) removes them)")
            parts.append(part)
        message = "; ".join(parts) or "no TransformerLens model in the kernel"
        self.server.window_show_message(types.ShowMessageParams(type=types.MessageType.Info, message=f"tlens: {message}"))
        return {"models": done, "message": message}

    def summary(self) -> dict:
        """The live state in short (``tlens.liveState``): status, cost, models, caches."""
        bridge = self.holder.bridge
        answer = self.answer or {}
        models = []
        for m in answer.get("models", []):
            tok = m.get("tokenizer") or {}
            key = tok.get("key") if tok.get("fast") else None
            if key in self._tokenizers:
                tok_state = "loaded"
            elif key in self._tokenizer_errors:
                tok_state = f"unavailable: {self._tokenizer_errors[key]}"
            else:
                tok_state = "none" if not tok else ("not a fast tokenizer" if not key else "loading")
            models.append({"var": m["var"], "class": m["class"], "backend": m.get("backend"),
                           "tlVersion": m.get("tl_version"), "nLayers": m.get("cfg", {}).get("n_layers"),
                           "hooks": m.get("hooks", []), "hooksTotal": m.get("hooks_total", 0), "tokenizer": tok_state})
        caches = [{"var": c["var"], "model": c.get("model"), "nKeys": c.get("n_keys"), "complete": c.get("complete")}
                  for c in answer.get("caches", [])]
        return {"status": self.status, "detail": self.detail, "introspections": self.introspections,
                "waitingForKernel": self.status == "waiting", "inFlight": self._own_request,
                "kernelState": bridge.state if bridge is not None else "none", "cost": self.last_cost,
                "models": models, "caches": caches, "truncated": answer.get("truncated", [])}

    # -- editor surfaces

    def code_actions(self, ls, view: View, params: types.CodeActionParams, start: int, end: int) -> list[types.CodeAction]:
        actions = []
        for finding in findings_in(view):
            if finding.code != "live-hooks" or finding.end < start or finding.start > end:
                continue
            model = view.analysis.source[finding.start:finding.end].decode("utf-8", "replace")
            diagnostic = convert.diagnostic(view, finding, ls.settings)
            command = types.Command(title="Reset hooks in kernel", command="tlens.resetKernelHooks",
                                    arguments=[{"model": model}])
            actions.append(types.CodeAction(title="Reset hooks in kernel", kind=types.CodeActionKind.QuickFix,
                                            diagnostics=[diagnostic] if diagnostic else None, command=command))
        return actions


def register(server: "TlensServer") -> None:
    """Register the live-kernel commands on ``server``."""
    service = server.live

    def error(what: str, e: Exception) -> dict:
        server.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=f"tlens: {what}: {e}"))
        return {"error": str(e)}

    @command(server, "tlens.resetKernelHooks")
    async def reset_kernel_hooks(ls, args: dict) -> Any:
        try:
            return await service.reset_hooks(args.get("model"))
        except KernelError as e:
            return error("could not reset the hooks in the kernel", e)

    @command(server, "tlens.liveState")
    def live_state(ls, args: dict) -> dict:
        return service.summary()

    @command(server, "tlens.refreshLiveState")
    async def refresh_live_state(ls, args: dict) -> Any:
        try:
            return await service.refresh(float(args.get("timeout", 60)))
        except KernelError as e:
            return {"error": str(e), **service.summary()}
