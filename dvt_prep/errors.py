"""Errors that dvt reports to users as one line: what went wrong, with which file, what to do."""

from __future__ import annotations


class DvtError(Exception):
    """Base class of every error dvt reports as a single line (no traceback)."""


class VideoError(DvtError):
    """A video cannot be opened, decoded or encoded."""


class StoreError(DvtError):
    """A store cannot be opened, read or written."""


class InputError(DvtError):
    """The inputs given on the command line are wrong (missing, unreadable, clashing ids)."""
