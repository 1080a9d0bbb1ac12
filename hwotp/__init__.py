"""Shared code of every hwotp service: config, server bootstrap, metrics, image
preprocessing, writer scoring and sealing. Generated stubs live in hwotp.v1."""

import os

# Services run many small numpy products on concurrent request threads; OpenBLAS's
# own worker threads then spin against each other and doubled the verifier's CPU
# per login (bench figures in BENCHMARKS.md). Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
