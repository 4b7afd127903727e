"""``python -m suite.bench_gpu``: the GPU checks' first name, kept working for the guides that
give it. The checks live in ``suite.bench.gpu``."""
