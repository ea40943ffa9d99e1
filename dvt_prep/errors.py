"""Errors that dvt reports to users as one line: what went wrong, with which file, what to do."""

from __future__ import annotations


class DvtError(Exception):
    """Base class of every error dvt reports as a single line (no traceback)."""


class VideoError(DvtError):
    """A video cannot be opened, decoded or encoded."""


class StoreError(DvtError):
    """A store cannot be opened, read or written."""


class InputError(DvtError, ValueError):
    """A value the user gave is wrong: a flag, a settings or config field, an input path (missing,
    unreadable, clashing ids). Raised by the settings' `validate()` and by the functions that
    take the user's inputs, library or command line alike. Also a ValueError, for callers that
    catch that.

    Code errors (a tensor of the wrong shape, an internal invariant) stay plain ValueError."""
