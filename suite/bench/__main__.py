"""``python -m suite.bench``: every speed measurement, or one item (``--only-...``)."""

from suite.bench.run import main

raise SystemExit(main())
