"""The one error of the stack's commands."""

from __future__ import annotations

__all__ = ["StackError"]


class StackError(RuntimeError):
    """A component did not start or stop; the message says which and shows its log."""
