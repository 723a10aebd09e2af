"""Kernel-side code that reproduces ipykernel faults on demand."""

from __future__ import annotations


def drop_an_execute_reply(skip: int, record: str = "") -> str:
    """Code that makes the kernel drop one execute reply, as ipykernel does when a SIGINT lands
    between the code and its reply: the KeyboardInterrupt escapes the handler, ipykernel logs
    "KeyboardInterrupt caught in kernel", goes idle and never replies.

    Args:
        skip: replies sent normally first (the first is the installing request's own).
        record: an expression evaluated in the kernel when the reply is dropped; its values
            are appended to the global ``dropped_at``.
    """
    return f'''
_k = get_ipython().kernel
_send, _skip, dropped_at = _k.session.send, [{skip}], []
def _drop_one_reply(stream, msg_or_type, *args, **kwargs):
    if msg_or_type == "execute_reply":
        if _skip[0]:
            _skip[0] -= 1
        else:
            _k.session.send = _send
            dropped_at.append({record or "None"})
            raise KeyboardInterrupt
    return _send(stream, msg_or_type, *args, **kwargs)
_k.session.send = _drop_one_reply
'''


def block_a_forward_when_armed(module: str, armed: str, blocked: str) -> str:
    """Code that makes ``module``'s next forward, once the file ``armed`` exists, block until the
    kernel is interrupted, so a test can interrupt a step that is certainly running.

    The hook deletes ``armed`` and creates ``blocked`` before it blocks: a test waits for
    ``blocked``, then interrupts. It gives up after 60 s with a RuntimeError, so an interrupt that
    never lands fails the test instead of hanging it. Remove it with ``_blocking_hook.remove()``.
    """
    return f'''
import os as _os, time as _time
def _block_when_armed(_module, _args):
    if _os.path.exists({armed!r}):
        _os.remove({armed!r})
        open({blocked!r}, "w").close()
        _deadline = _time.monotonic() + 60
        while _time.monotonic() < _deadline:
            _time.sleep(0.01)  # a SIGINT raises KeyboardInterrupt here
        raise RuntimeError("the blocked forward was never interrupted")
_blocking_hook = {module}.register_forward_pre_hook(_block_when_armed)
'''
