"""`python -m gateway.cli`, as `python -m gateway` and the `gateway` console script: run `main`
and exit with its status."""

import sys

from gateway.cli import main

sys.exit(main())
