"""Errors that the CLI turns into a one-line message and exit code 2."""


class PrunelabError(Exception):
    """A user-facing problem with input (a file, a flag, a spec). The message names what is wrong."""
