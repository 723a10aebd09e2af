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
