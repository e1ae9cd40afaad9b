"""`python -m prunelab ARGS` runs the CLI, as `prunelab ARGS` does (cluster/local.sh uses it)."""
import sys

from prunelab.cli import main

sys.exit(main())
