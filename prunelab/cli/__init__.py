"""The `prunelab` command line: `parser` (the arguments), `commands` (one function per command), `output` (what
they print). `main` runs one command; a PrunelabError becomes one line on stderr and exit code 2."""
from __future__ import annotations

import sys

from prunelab.cli.parser import build_parser
from prunelab.errors import PrunelabError

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PrunelabError as error:
        print(f"prunelab: error: {error}", file=sys.stderr)
        return 2
