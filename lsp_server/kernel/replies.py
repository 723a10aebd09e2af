"""Execute replies as the bridge returns them: ``ExecResult``, and the reply a dropped one stands for."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# An interrupt that lands after the code finished but before ipykernel sent the reply makes it
# log "KeyboardInterrupt caught in kernel" and go idle without replying. The reply travels on
# shell and the idle status on iopub, so allow for their skew before calling it dropped.
DROPPED_REPLY_GRACE = 2.0
DROPPED_REPLY = {
    "content": {
        "status": "error",
        "ename": "KeyboardInterrupt",
        "evalue": "the kernel was interrupted as the request finished and sent no reply",
        "traceback": [],
    }
}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class ExecResult:
    """Outcome of one execute request.

    Attributes:
        status: "ok", "error" or "aborted".
        ename, evalue, traceback: the exception, when status is "error" (ANSI codes removed).
        user_expressions: name -> text/plain value; failed expressions map to an
            ``ExprError`` string "<ename>: <evalue>" and are listed in ``expression_errors``.
        stdout, stderr: stream output produced by this request.
    """

    status: str
    ename: str | None = None
    evalue: str | None = None
    traceback: list[str] = field(default_factory=list)
    user_expressions: dict[str, str] = field(default_factory=dict)
    expression_errors: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def interrupted(self) -> bool:
        return self.ename == "KeyboardInterrupt"

    def traceback_text(self) -> str:
        return "\n".join(self.traceback)


def exec_result(content: dict, streams: dict[str, list[str]]) -> ExecResult:
    """The ``ExecResult`` of an execute reply's content and the streams the request printed."""
    exprs, expr_errors = {}, {}
    for name, value in (content.get("user_expressions") or {}).items():
        if value.get("status") == "ok":
            exprs[name] = value.get("data", {}).get("text/plain", "")
        else:
            expr_errors[name] = f"{value.get('ename')}: {value.get('evalue')}"
    return ExecResult(
        status=content.get("status", "error"),
        ename=content.get("ename"),
        evalue=content.get("evalue"),
        traceback=[_ANSI.sub("", line) for line in content.get("traceback", [])],
        user_expressions=exprs,
        expression_errors=expr_errors,
        stdout="".join(streams.get("stdout", [])),
        stderr="".join(streams.get("stderr", [])),
    )
