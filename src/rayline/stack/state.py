"""What the stack started itself (``stack.json``), so ``down`` stops only that."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

__all__ = ["StackState"]

Kind = Literal["services", "addons"]


class StackState:
    """The services and add-ons one stack started, kept in its state dir."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "stack.json"

    def read(self) -> dict[str, Any]:
        """The whole state (empty before the first ``up``)."""
        if not self.path.is_file():
            return {}
        state: dict[str, Any] = json.loads(self.path.read_text())
        return state

    def started(self, kind: Kind) -> list[str]:
        """The names of the ``kind`` the stack started."""
        return list(self.read().get(f"started_{kind}", []))

    def add_started(self, kind: Kind, names: list[str]) -> None:
        """Remember that the stack started ``names``."""
        self._write(kind, sorted({*self.started(kind), *names}))

    def clear_started(self, kind: Kind) -> None:
        """Forget every ``kind`` (they were stopped)."""
        self._write(kind, [])

    def _write(self, kind: Kind, names: list[str]) -> None:
        state = {**self.read(), f"started_{kind}": names}
        self.path.write_text(json.dumps(state, indent=2) + "\n")
