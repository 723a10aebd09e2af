"""Activation-patching sweeps: run a patching experiment found in the code in a Jupyter kernel, with
progress and cancel, and show its heatmap.

    kinds.py       the sweep kinds and their titles: the one list
    spec.py        SweepSpec (what to patch), SweepProgress, SweepResult (what came back)
    errors.py      SweepError, SweepCancelled
    driver.py      run_sweep: prepare the sweep in the kernel's payload, stream its cells back, cancel
    shards.py      run_sharded_sweep: one sweep's cells shared among several kernels (a work queue),
                   a dead kernel's cells re-run on the others
    extra_kernels.py  the kernels started besides the holder's for that (``tlens.sweep.kernels``)
    named_kernels.py  the running kernels a user names for it (``--kernel`` repeated, a list setting)
    grid.py        CellGrid: cells as they come back -> SweepResult (missing cells named)
    setup_code.py  run_setup: a file's setup code, statement by statement, in a kernel tlens started
    saved.py       save_result: .tlens/sweeps/<timestamp>-<kind>.png and .json
    runner.py      sweep_experiment: an Experiment in a view -> setup, sweep, heatmaps, files (no LSP)
    lsp.py         the editor: tlens.runSweep, work-done progress, code lenses and actions, hovers
    cli.py         ``tlens-lsp sweep PATH:LINE --out FILE.png [--kernels N] [--kernel CONN]...``

Elsewhere, each for a reason: the experiments are found by ``analysis/experiments.py`` (pure
analysis of the syntax tree, memoised on the document's analysis), drawn by ``render/heatmap.py``
(pillow only, a pure layer), run inside the kernel by ``kernel/payload/`` (stdlib-only source text
sent to the kernel), in the kernel that ``kernel/holder.py`` holds and ``kernel_commands.py`` attaches.

This package's ``__init__`` imports nothing: the pure layers read ``kinds`` and ``spec`` without
loading pygls (``tests/test_architecture.py`` checks it).
"""
