"""``python -m hpo SWEEP.yaml``: the same as ``hpo-tune``."""

import sys

from hpo.tune import main

sys.exit(main())
