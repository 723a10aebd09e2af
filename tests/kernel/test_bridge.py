"""KernelBridge against real ipykernel processes: execute, attach, interrupt, faults."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import pytest
import pytest_asyncio

from lsp_server.kernel import (
    ConnectionFileError,
    KernelBridge,
    KernelDiedError,
    KernelEnvironmentError,
    KernelError,
    KernelNotResponding,
    KernelStartError,
)

from .faults import drop_an_execute_reply

pytestmark = [pytest.mark.kernel, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kernel(kernel_factory):
    return await kernel_factory.start()


async def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_execute_returns_expressions_and_streams(kernel):
    res = await kernel.execute("v = 6 * 7\nprint('hello')", user_expressions={"v": "v", "bad": "nope"})
    assert res.ok
    assert res.user_expressions["v"] == "42"
    assert res.expression_errors["bad"].startswith("NameError")
    assert res.stdout == "hello\n"


async def test_execute_error_has_name_value_and_clean_traceback(kernel):
    res = await kernel.execute("1/0")
    assert not res.ok and res.ename == "ZeroDivisionError"
    assert "division by zero" in res.evalue
    assert "\x1b[" not in res.traceback_text() and "ZeroDivisionError" in res.traceback_text()


async def test_silent_execution_leaves_no_history(kernel):
    probe = {"n": "get_ipython().execution_count", "h": "len(In)"}
    before = (await kernel.execute("pass", user_expressions=probe)).user_expressions
    await kernel.execute("x_hist = 1\nx_hist")
    after = (await kernel.execute("pass", user_expressions=probe)).user_expressions
    assert before == after


async def test_state_follows_execution(kernel):
    seen = []
    kernel.on_state = seen.append
    try:
        await kernel.execute("import time; time.sleep(0.3)")
        assert await wait_for(lambda: kernel.state == "idle")
    finally:
        kernel.on_state = None
    assert "busy" in seen and seen[-1] == "idle"


async def test_attach_by_connection_file_shares_the_namespace(kernel, kernel_factory):
    await kernel.execute("shared_value = 'from owner'")
    other = await kernel_factory.attach(kernel.connection_file)
    assert not other.owned and other.state == "idle"
    res = await other.execute("pass", user_expressions={"v": "shared_value"})
    assert res.user_expressions["v"] == "'from owner'"


async def test_interrupt_owned_kernel_keeps_it_usable(kernel):
    task = asyncio.create_task(kernel.execute("import time\nfor _ in range(400): time.sleep(0.05)"))
    assert await wait_for(lambda: kernel.state == "busy")
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    await kernel.interrupt()
    res = await asyncio.wait_for(task, 10)
    assert res.interrupted and time.monotonic() - t0 < 5
    assert (await kernel.execute("pass", user_expressions={"x": "1+1"})).user_expressions["x"] == "2"


async def test_interrupt_attached_kernel_uses_control_channel(kernel, kernel_factory):
    other = await kernel_factory.attach(kernel.connection_file)
    task = asyncio.create_task(other.execute("import time\nfor _ in range(400): time.sleep(0.05)"))
    await asyncio.sleep(0.5)
    await other.interrupt()
    res = await asyncio.wait_for(task, 10)
    assert res.interrupted
    assert (await other.execute("pass", user_expressions={"x": "2+2"})).user_expressions["x"] == "4"


async def test_a_dropped_reply_reads_as_interrupted_not_a_hang(kernel):
    res = await asyncio.wait_for(kernel.execute(drop_an_execute_reply(skip=0)), 10)  # its own reply
    assert res.interrupted and "no reply" in res.evalue
    assert (await kernel.execute("pass", user_expressions={"x": "3+3"})).user_expressions["x"] == "6"


async def test_wrong_key_gives_clear_error(kernel, tmp_path):
    info = json.loads(open(kernel.connection_file).read())
    info["key"] = "0" * len(info["key"])
    bad = tmp_path / "kernel-wrongkey.json"
    bad.write_text(json.dumps(info))
    t0 = time.monotonic()
    with pytest.raises(KernelNotResponding, match="kernel did not reply.*wrong key or dead kernel"):
        await KernelBridge.attach(bad, timeout=2)
    assert time.monotonic() - t0 < 6


async def test_attach_rejects_malformed_connection_file(tmp_path):
    bad = tmp_path / "kernel-broken.json"
    bad.write_text('{"ip": "127.0.0.1"}')
    with pytest.raises(ConnectionFileError, match="no 'shell_port' key"):
        await KernelBridge.attach(bad)


async def test_start_with_missing_interpreter():
    with pytest.raises(KernelStartError, match="not found"):
        await KernelBridge.start("/no/such/python3")


async def test_start_with_interpreter_without_ipykernel(filtered_python):
    python = filtered_python(("ipykernel", "ipykernel_launcher"))
    with pytest.raises(KernelStartError, match=r"(?s)ipykernel.*pip install ipykernel"):
        await KernelBridge.start(python, timeout=30)


async def test_probe_reports_missing_transformer_lens(kernel_factory, filtered_python):
    python = filtered_python(("transformer_lens",))
    bridge = await kernel_factory.start(python)
    with pytest.raises(KernelEnvironmentError) as err:
        await bridge.probe()
    msg = str(err.value)
    assert "transformer_lens cannot be imported" in msg
    assert f"{python} -m pip install transformer-lens" in msg


async def test_probe_reports_missing_torch(kernel_factory, filtered_python):
    python = filtered_python(("torch", "transformer_lens"))
    bridge = await kernel_factory.start(python)
    with pytest.raises(KernelEnvironmentError, match=r"PyTorch cannot be imported.*-m pip install torch"):
        await bridge.probe()


async def test_probe_in_a_full_environment(kernel):
    env = await kernel.probe()
    assert env.torch and env.transformer_lens and env.python == sys.version.split()[0]
    assert env.backends and env.device in ("cpu", "cuda", "mps")


async def test_restart_owned_kernel_clears_variables(kernel_factory):
    bridge = await kernel_factory.start()
    await bridge.execute("lost = 1")
    await bridge.restart()
    assert bridge.state == "idle"
    res = await bridge.execute("pass", user_expressions={"x": "lost"})
    assert res.expression_errors["x"].startswith("NameError")


async def test_restart_is_refused_for_attached_kernels(kernel, kernel_factory):
    other = await kernel_factory.attach(kernel.connection_file)
    with pytest.raises(KernelError, match="did not start"):
        await other.restart()


async def test_dead_kernel_is_detected_owner_and_attached(kernel_factory):
    bridge = await kernel_factory.start()
    other = await kernel_factory.attach(bridge.connection_file)
    pending = asyncio.create_task(other.execute("import time; time.sleep(30)"))
    await asyncio.sleep(0.3)
    bridge._km.provisioner.process.kill()
    assert await wait_for(lambda: bridge.state == "dead", 5)
    assert await wait_for(lambda: other.state == "dead", 10)  # heartbeat only
    with pytest.raises(KernelDiedError, match="stopped answering its heartbeat"):
        await asyncio.wait_for(pending, 10)
    with pytest.raises(KernelDiedError, match="kernel process exited"):
        await bridge.execute("1")


async def test_shutdown_stops_our_process_and_removes_connection_file(kernel_factory):
    bridge = await kernel_factory.start()
    pid = bridge._km.provisioner.process.pid
    cf = bridge.connection_file
    await bridge.shutdown()
    assert bridge.state == "none"
    assert not os.path.exists(cf)
    assert await wait_for(lambda: not _alive(pid), 5)
    with pytest.raises(KernelError, match="shut down"):
        await bridge.execute("1")


async def test_shutdown_of_attached_bridge_leaves_kernel_running(kernel, kernel_factory):
    other = await kernel_factory.attach(kernel.connection_file)
    await other.shutdown()
    assert (await kernel.execute("pass", user_expressions={"x": "3"})).user_expressions["x"] == "3"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); look at its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


async def test_run_setup_reports_failures_with_line(kernel):
    from lsp_server.sweeps.setup_code import run_setup

    ok = await run_setup(kernel, "import math\nsetup_value = math.pi\nprint('ready')")
    assert ok.ok and ok.stdout == "ready\n"
    bad = await run_setup(kernel, "import math\n\ndef f():\n    return undefined_thing\n\nf()\n")
    assert not bad.ok and bad.line == 4
    assert bad.message == "setup code failed at line 4: NameError: name 'undefined_thing' is not defined"
    assert "undefined_thing" in bad.traceback


async def test_run_setup_timeout_interrupts(kernel):
    from lsp_server.sweeps.setup_code import run_setup

    res = await run_setup(kernel, "import time\ntime.sleep(30)", timeout=1)
    assert not res.ok and "did not finish within 1 s" in res.message
    # The interrupt stopped the sleep: the kernel answers promptly again.
    t0 = time.monotonic()
    assert (await kernel.execute("pass", user_expressions={"x": "5"})).user_expressions["x"] == "5"
    assert time.monotonic() - t0 < 5
