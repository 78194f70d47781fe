"""Every error a user can act on, with its exit code: the CLI's status, the worker's `code` field and the README share them.

Standard library only (GIMP's Python raises and catches these too). Each message is one line that names the
problem and the fix; `exit_code` is the one name for the code, on the class and, where a far end chose it, on the instance.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_WEIGHTS_UNAVAILABLE = 3
EXIT_CANCELLED = 4
EXIT_OUT_OF_MEMORY = 5
EXIT_REMOTE = 6  # the remote worker could not be reached, or the link to it dropped
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "ok"),
    (EXIT_BAD_INPUT, "bad input (one line naming the file and the fix)"),
    (EXIT_WEIGHTS_UNAVAILABLE, "weights unavailable"),
    (EXIT_CANCELLED, "cancelled"),
    (EXIT_OUT_OF_MEMORY, "out of memory"),
    (EXIT_REMOTE, "remote worker unreachable or connection dropped"),
    (EXIT_INTERNAL, "internal error"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)

REPAIR = "python3 install.py"  # what sets up (or repairs) the environment, the weights, the instant network and the plug-in
REPAIR_HERE = f"{REPAIR} (in the stylecore folder)"


class StylecoreError(Exception):
    """Base class: the message is one line that names the problem and the fix."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str = "", *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class BadInput(StylecoreError):
    """An input file or option is unusable (unreadable, not an image, absurd size or value)."""

    exit_code = EXIT_BAD_INPUT


class BadRequest(BadInput):
    """A worker request the protocol refuses; the message names the field and the fix."""


class WeightsUnavailable(StylecoreError):
    """No VGG weights (or instant network) could be found, fetched or verified."""

    exit_code = EXIT_WEIGHTS_UNAVAILABLE


class Cancelled(StylecoreError):
    """The run was cancelled by the caller; nothing was written."""

    exit_code = EXIT_CANCELLED

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


class OutOfMemory(StylecoreError):
    """The device ran out of memory; the message suggests a smaller working size."""

    exit_code = EXIT_OUT_OF_MEMORY


class RemoteFailure(StylecoreError):
    """The worker on another machine cannot be reached, or the link to it dropped."""

    exit_code = EXIT_REMOTE


class WorkerFailed(StylecoreError):
    """The worker could not start, stopped, or ended a request with an error (then exit_code and kind are the worker's)."""

    def __init__(self, message: str = "", *, exit_code: int | None = None, kind: str = ""):
        super().__init__(message, exit_code=exit_code)
        self.kind = kind


class SetupError(StylecoreError):
    """stylecore is not (or no longer) set up here: a missing or damaged worker config; the message ends with the repair."""
