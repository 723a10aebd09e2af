"""`make demo`: what tlens-lsp finds in the example research scripts, without an editor.

Runs the same commands a user would: `tlens-lsp check`, `tlens-lsp hover`, and (when the sweep
machinery is available) `tlens-lsp sweep` on a tiny random model built in the example itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CLI = [sys.executable, "-m", "lsp_server"]

HOVERS = [
    ("hooked_transformer/ioi_patching.py", 'cache["resid_post", 5]', 'resid_post", 5'),
    ("hooked_transformer/ioi_patching.py", 'clean_cache["pattern", 9]', 'pattern", 9'),
    ("hooked_transformer/ioi_patching.py", "clean_cache[hook.name]", "hook.name"),
    ("hooked_transformer/logit_lens.py", 'cache["scale", layer, "ln1"]', 'scale", layer'),
    ("hooked_transformer/logit_lens.py", "cache.decompose_resid(layer=3, return_labels=True)", "decompose_resid"),
    ("hooked_transformer/logit_lens.py", "cache.accumulated_resid(layer=-1, incl_mid=True, …)", "accumulated_resid"),
    ("hooked_transformer/induction_heads.py", "lambda name: name.endswith(\"pattern\")", '"pattern")'),
    ("hooked_transformer/induction_heads.py", "model.W_V[1]", "W_V"),
]


def banner(title: str) -> None:
    width = min(shutil.get_terminal_size((100, 20)).columns, 100)
    print("\n" + "━" * width + f"\n {title}\n" + "━" * width)


def run(args: list[str]) -> str:
    out = subprocess.run(CLI + args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return out.stdout.rstrip()


def locate(path: Path, needle: str) -> tuple[int, int]:
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        col = line.find(needle)
        if col >= 0:
            return i, col + 2
    raise SystemExit(f"demo: {needle!r} not found in {path.name}")


def main() -> None:
    banner("tlens-lsp check examples/   (diagnostics, as the editor shows them)")
    print("examples/tiny_patching.py is TransformerBridge code (TransformerLens 4, as installed here);\n"
          "examples/hooked_transformer/ holds HookedTransformer code, and its requirements.txt pins\n"
          "TransformerLens 2.x: the server reads the pin and checks that code as 2.x code.\n")
    print(run(["check", "examples/"]))

    for name, shown, needle in HOVERS:
        path = EXAMPLES / name
        line, col = locate(path, needle)
        banner(f"tlens-lsp hover examples/{name}:{line}:{col}   ← {shown}")
        print(run(["hover", f"examples/{name}:{line}:{col}"]))

    sweep_example = EXAMPLES / "tiny_patching.py"
    if sweep_example.exists() and (ROOT / "lsp_server" / "sweeps" / "cli.py").exists():
        line, _ = locate(sweep_example, "# sweep here")
        out_png = ROOT / ".tlens" / "demo-sweep.png"
        banner(f"tlens-lsp sweep examples/tiny_patching.py:{line} --out {out_png.relative_to(ROOT)}")
        print("A tiny GPT-2 with RANDOM weights (nothing can be downloaded here), built by the example itself:\n"
              "the heatmap shows the machinery (a fresh kernel, the file's setup code, a batched sweep),\n"
              "not a circuit. Swap in TransformerBridge.boot_transformers('gpt2') for the real picture.\n")
        print(run(["sweep", f"examples/tiny_patching.py:{line}", "--out", str(out_png)]))
        print(f"\nOpen {out_png} to see the heatmap.")
    print()


if __name__ == "__main__":
    main()
