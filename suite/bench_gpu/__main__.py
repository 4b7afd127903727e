"""``python -m suite.bench_gpu`` runs ``python -m suite.bench.gpu`` with the same arguments."""

import sys

from suite.bench.gpu import main

sys.exit(main())
