"""Task families, one sub-package each (discovered by folder convention): its spec model, data,
model, training loop, metrics and ``specs/`` folder. ``transition/`` is the first."""
