"""``tlens-lsp sweep PATH:LINE --out FILE.png``: the editor's sweep path, without an editor.

Kernels: one started here (default), ``--kernel CONN`` (a running local kernel), ``--gateway URL``
(one started there) or ``--gateway URL --kernel-id ID`` (a running one there). Several ``--kernel`` /
``--kernel-id`` (mixed, and with ``--gateway`` alone a kernel started there) share one sweep's
cells; ``--kernels N`` starts more here until there are N.

Prints ``heatmap: PNG`` and ``numbers: JSON`` (scripts read these lines, and the JSON's ``values``).
Every ``tlens-lsp`` command builds the parser, so asyncio and the kernel machinery are imported only
when a sweep runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ..files import cli_workspace, load_views
from .kinds import DEFAULT_KIND, SWEEP_KIND_NAMES


def add_arguments(sweep: argparse.ArgumentParser) -> None:
    """The ``sweep`` subcommand's arguments."""
    sweep.add_argument("location", help="PATH:LINE of the experiment")
    sweep.add_argument("--kernel", action="append", default=[], metavar="CONN",
                       help="connection file of a running kernel (default: start one); repeat it to share the "
                            "sweep's cells among several running kernels")
    sweep.add_argument("--gateway", nargs="?", const="", metavar="URL",
                       help="run in a kernel of this Jupyter Server / Kernel Gateway / Enterprise Gateway (default URL: "
                            "$JUPYTER_GATEWAY_URL; token: $JUPYTER_GATEWAY_AUTH_TOKEN); with --kernel, a kernel "
                            "started there shares the sweep with those")
    sweep.add_argument("--kernel-id", action="append", default=[], metavar="ID",
                       help="with --gateway: a running gateway kernel to use (default: start one there, running the "
                            "file's setup code first); repeat it, or mix it with --kernel, to share the sweep")
    sweep.add_argument("--kind", default=DEFAULT_KIND, choices=SWEEP_KIND_NAMES)
    sweep.add_argument("--python", help="interpreter for a started kernel (default: this one)")
    sweep.add_argument("--kernels", type=_kernel_count, default=1, metavar="N",
                       help="share the sweep's cells among N kernels in all: the named (or started) ones plus as many "
                            "started ones as it takes, each running the file's setup code first (default: 1)")
    sweep.add_argument("--out", required=True, help="where to write the heatmap PNG")
    sweep.add_argument("--raw", action="store_true",
                       help="raw metric values (default: normalised, 0 = corrupted, 1 = clean)")


def _kernel_count(text: str) -> int:
    from ..settings import MAX_SWEEP_KERNELS

    if not text.isdigit() or not 1 <= int(text) <= MAX_SWEEP_KERNELS:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_SWEEP_KERNELS}, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    import asyncio

    try:
        name, line_text = args.location.rsplit(":", 1)
        line = int(line_text)
    except ValueError:
        print("sweep: expected PATH:LINE (1-based), e.g. examples/tiny_patching.py:52", file=sys.stderr)
        return 2
    path = Path(name)
    try:
        return asyncio.run(_sweep(path, line, args))
    except KeyboardInterrupt:
        print("sweep: interrupted", file=sys.stderr)
        return 130


async def _sweep(path: Path, line: int, args: argparse.Namespace) -> int:
    import asyncio

    from ..analysis.experiments import experiment_at, find_experiments
    from ..kernel.errors import KernelError
    from ..kernel.gateway_config import GatewayConfig
    from ..kernel.holder import KernelHolder
    from .errors import SweepCancelled, SweepError
    from .extra_kernels import ExtraKernels
    from .named_kernels import NamedKernel, attached_for_sweep, distinct
    from .runner import describe_missing, sweep_experiment

    try:
        views = load_views(path, cli_workspace())
    except (OSError, ValueError) as e:
        print(f"sweep: cannot read {path}: {e}", file=sys.stderr)
        return 2
    view = views[0]
    analysis = view.analysis
    exp = experiment_at(analysis, analysis.lines.offset(line - 1, 0))
    if exp is None:
        found = [f"line {analysis.lines.position(e.start).line + 1}: {e.description}" for e in find_experiments(analysis)]
        print(f"sweep: no patching experiment at {path}:{line}." + ("\n  experiments in this file:\n  " + "\n  ".join(found) if found else ""),
              file=sys.stderr)
        return 2

    def say(text: str) -> None:
        print(f"tlens: {text}", file=sys.stderr)

    def progress(p) -> None:
        if p.phase == "setup":
            say(f"running setup: {p.detail}")
        elif p.total and sys.stderr.isatty():
            print(f"\r  {p.done}/{p.total} cells", end="", file=sys.stderr)

    gateway = None
    if args.gateway is not None or args.kernel_id:
        gateway = GatewayConfig.resolve(args.gateway or None)
        if gateway is None:
            print("sweep: --gateway needs a URL (or JUPYTER_GATEWAY_URL)", file=sys.stderr)
            return 2
    named = [NamedKernel(connection_file=c) for c in args.kernel] + [NamedKernel(kernel_id=i) for i in args.kernel_id]
    # The sweep leads with a kernel started on the gateway (--gateway without --kernel-id), else the first named.
    lead = None if (args.gateway is not None and not args.kernel_id) or not named else named.pop(0)
    named = distinct(named, lead)
    holder, extra = KernelHolder(configured_gateway=lambda: gateway), ExtraKernels()
    try:
        if lead is not None:
            await (holder.attach(lead.connection_file) if lead.kernel_id is None else holder.attach_gateway(lead.kernel_id))
            say(f"attached to {lead.describe(gateway)}")
        async with attached_for_sweep(named, gateway) as attached:  # disconnected after: they are the user's
            for n in named:
                say(f"attached to {n.describe(gateway)} to share the sweep")
            say(f"experiment: {exp.description} (model={exp.model}, clean={exp.clean}, corrupted={exp.corrupted})")
            outcome = await sweep_experiment(holder, view, exp, args.kind, str(path.resolve().parent),
                                             args.python, progress, asyncio.Event(), say, normalize=not args.raw,
                                             file_name=str(path), extra=extra, kernels=max(1, args.kernels - len(attached)),
                                             attached=attached)
    except SweepCancelled as e:
        say(f"cancelled: {e}")
        return 130
    except (SweepError, KernelError) as e:
        say(f"the sweep failed: {e}")
        return 1
    finally:
        await extra.close()
        await holder.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(outcome.png_path, out)
    r = outcome.result
    state = "PARTIAL" if r.partial else "complete"
    print(f"{state}: {r.cells_done}/{r.cells_total} cells of {r.kind} in {r.elapsed_s:.1f} s "
          f"({r.backend} {r.tl_version} on {r.device}); strongest cell: {outcome.summary}")
    print(f"heatmap: {out}\nnumbers: {outcome.json_path}")
    for note in r.notes:
        print(f"note: {note}")
    if r.missing_cells:
        print(f"missing: {describe_missing(r)}")
    return 0 if not r.partial else 1
