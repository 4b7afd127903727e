"""Speed measurements (``nox -s bench``, ``python -m suite.bench``), one module per item: ``run``
(the command and the per-gate items), ``sweeps`` (whole sweeps, the site, the proxy, Dask),
``seeds`` (seeds stacked vs alone, a seed's updaters over one pass), ``scaling`` (cost against T
and B), ``roofline`` (where a run's time goes), ``fusion`` (what a compiler buys), ``hf`` (the
transformers bridge against the model's own router) and ``gpu`` (the GPU checks in one command,
``python -m suite.bench.gpu``)."""
