"""User-facing errors: each carries a full sentence naming what was wrong and how to fix it.

The CLI prints these without a traceback; anything else escaping is a bug in GateBench.
"""


class GateBenchError(Exception):
    """An error caused by user input (a spec, a submission, a command-line flag)."""


class SpecError(GateBenchError):
    """A task spec file is malformed; the message names the file and the field."""


class RegistryError(GateBenchError):
    """An unknown or duplicate gate / task / family name."""


class SubmissionError(GateBenchError):
    """A submission folder, manifest or module is malformed; the message names the file."""


class RunError(GateBenchError):
    """A run could not start (bad device, bad results folder, ...)."""
