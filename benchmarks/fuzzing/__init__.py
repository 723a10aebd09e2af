"""Fuzzing the language server: seeded mutations of real documents (:mod:`.mutations`), where the documents
come from (:mod:`.sources`), and a client that drives the real server over stdio and counts what went
wrong (:mod:`.driver`). ``benchmarks/fuzz_server.py`` is the command line; ``tests/test_fuzz.py`` runs a
CI-sized sample."""
