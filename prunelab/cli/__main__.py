"""`python -m prunelab.cli ARGS`, the same as `prunelab ARGS` and `python -m prunelab ARGS`."""
import sys

from prunelab.cli import main

sys.exit(main())
