"""Errors a user can act on, each with its exit code (the codes themselves are contract.EXIT_CODES).

Each error carries its exit code and a one-line message that names the problem and the fix.
"""

from __future__ import annotations

from .contract import (  # noqa: F401  (re-exported: the exit codes are the contract's, shared with the plug-in)
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUT_OF_MEMORY,
    EXIT_WEIGHTS_UNAVAILABLE,
)


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
