"""Errors a user can act on, and every exit code the CLI (and the plug-in reading it) knows.

Each error carries its exit code and a one-line message that names the problem and the fix.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_WEIGHTS_UNAVAILABLE = 3
EXIT_CANCELLED = 4
EXIT_OUT_OF_MEMORY = 5
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug
EXIT_INTERRUPTED = 130  # Ctrl-C


class StylecoreError(Exception):
    """Base class: the message is one line that names the problem and the fix."""

    exit_code = EXIT_INTERNAL


class BadInput(StylecoreError):
    """An input file or option is unusable (unreadable, not an image, absurd size or value)."""

    exit_code = EXIT_BAD_INPUT


class WeightsUnavailable(StylecoreError):
    """No VGG weights could be found, fetched or verified."""

    exit_code = EXIT_WEIGHTS_UNAVAILABLE


class Cancelled(StylecoreError):
    """The run was cancelled by the caller; nothing was written."""

    exit_code = EXIT_CANCELLED

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


class OutOfMemory(StylecoreError):
    """The device ran out of memory; the message suggests a smaller working size."""

    exit_code = EXIT_OUT_OF_MEMORY
