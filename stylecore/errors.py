"""Errors a user can act on. Each carries the CLI exit code and a one-line message."""

from __future__ import annotations


class StylecoreError(Exception):
    """Base class: the message is one line that names the problem and the fix."""

    exit_code = 70  # EX_SOFTWARE


class BadInput(StylecoreError):
    """An input file or option is unusable (unreadable, not an image, absurd size or value)."""

    exit_code = 2


class WeightsUnavailable(StylecoreError):
    """No VGG weights could be found, fetched or verified."""

    exit_code = 3


class Cancelled(StylecoreError):
    """The run was cancelled by the caller; nothing was written."""

    exit_code = 4

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


class OutOfMemory(StylecoreError):
    """The device ran out of memory; the message suggests a smaller working size."""

    exit_code = 5
