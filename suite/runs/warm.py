"""Imported once by the executor's fork server: the job functions, every task family and every
baseline, so each forked run starts with them loaded instead of importing them again."""

import torch._dynamo  # (imported lazily by the first optimiser step: about 1 s)
import torch._functorch.vmap  # noqa: F401  (the seeds' vectorised pass: about 1 s on first use)

import suite.runs.jobs  # noqa: F401
from suite.gates.entries import gates
from suite.tasks.family import families

families.names()
gates.names()
