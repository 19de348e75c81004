"""Benchmarks for outagebot: verdict latency on a large store and bulk-import throughput.

Run ``python -m benchmarks [--quick] [--only verdict|import]``. Each benchmark measures the bot's
own code path beside a plain peer (a hand-written SQL scan, a raw ``executemany``) in the same run,
so the ratios stay meaningful on a noisy, shared machine. Generated data lives in
``benchmarks/data/`` (git-ignored); the full-mode figures are written to ``benchmarks/RESULTS.md``.
"""
