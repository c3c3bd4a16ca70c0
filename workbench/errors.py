"""The one exception type that users see as a one-line message (the CLI exits with code 2)."""

from __future__ import annotations

__all__ = ["WorkbenchError"]


class WorkbenchError(Exception):
    """Bad input or a missing resource: the message says what is wrong and what to do."""
