"""sweeps/named_kernels.py without kernels: how named kernels are read, and that each kernel gets one share."""

from __future__ import annotations

from lsp_server.cli import build_parser
from lsp_server.sweeps.named_kernels import NamedKernel, distinct


def test_a_setting_entry_is_a_connection_file_or_a_gateway_kernel():
    assert NamedKernel.parse("/run/jupyter/kernel-1.json") == NamedKernel(connection_file="/run/jupyter/kernel-1.json")
    assert NamedKernel.parse("gateway:5f1c-77") == NamedKernel(kernel_id="5f1c-77")


def test_a_kernel_named_twice_or_leading_the_sweep_gets_no_second_share(tmp_path):
    a, b = tmp_path / "kernel-a.json", tmp_path / "kernel-b.json"
    same_a = tmp_path / "sub" / ".." / "kernel-a.json"  # the same file by another path
    named = [NamedKernel(connection_file=str(a)), NamedKernel(connection_file=str(same_a)),
             NamedKernel(connection_file=str(b)), NamedKernel(kernel_id="k1"), NamedKernel(kernel_id="k1")]
    assert distinct(named) == [named[0], named[2], named[3]]
    assert distinct(named, lead=NamedKernel(connection_file=str(b))) == [named[0], named[3]]


def test_the_cli_reads_repeated_and_mixed_kernels():
    args = build_parser().parse_args(["sweep", "exp.py:3", "--out", "m.png", "--kernel", "a.json", "--kernel", "b.json",
                                      "--gateway", "http://gw:8888", "--kernel-id", "k1", "--kernel-id", "k2"])
    assert (args.kernel, args.gateway, args.kernel_id) == (["a.json", "b.json"], "http://gw:8888", ["k1", "k2"])
    plain = build_parser().parse_args(["sweep", "exp.py:3", "--out", "m.png"])
    assert (plain.kernel, plain.kernel_id, plain.kernels) == ([], [], 1)
