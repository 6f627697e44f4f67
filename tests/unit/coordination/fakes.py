"""An in-memory stand-in for the few kazoo client calls the coordinator makes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError


@dataclass
class Stat:
    version: int
    ephemeralOwner: int


class FakeZooKeeper:
    """Znodes in a dict; ``session`` plays the owner of ephemeral nodes."""

    def __init__(self, session: int = 1, *, connected: bool = True) -> None:
        self.nodes: dict[str, tuple[bytes, Stat]] = {}
        self.session = session
        self.connected = connected
        self.client_id = (session, b"")
        self.listeners: list[Callable[[str], None]] = []
        self.writes = 0
        self.conflicts = 0  # BadVersionError to raise before accepting a versioned set

    def add_listener(self, listener: Callable[[str], None]) -> None:
        self.listeners.append(listener)

    def ensure_path(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self.nodes.setdefault("/" + "/".join(parts[:i]), (b"", Stat(0, 0)))

    def exists(self, path: str) -> Stat | None:
        node = self.nodes.get(path)
        return None if node is None else node[1]

    def create(
        self, path: str, data: bytes, *, ephemeral: bool = False, makepath: bool = False
    ) -> None:
        if path in self.nodes:
            raise NodeExistsError()
        parent = path.rsplit("/", 1)[0]
        if makepath:
            self.ensure_path(parent)
        self.nodes[path] = (data, Stat(0, self.session if ephemeral else 0))
        self.writes += 1

    def get(self, path: str) -> tuple[bytes, Stat]:
        if path not in self.nodes:
            raise NoNodeError()
        return self.nodes[path]

    def set(self, path: str, data: bytes, version: int = -1) -> None:
        _, stat = self.get(path)
        if self.conflicts:
            self.conflicts -= 1
            raise BadVersionError()
        if version not in (-1, stat.version):
            raise BadVersionError()
        self.nodes[path] = (data, Stat(stat.version + 1, stat.ephemeralOwner))
        self.writes += 1

    def delete(self, path: str) -> None:
        if path not in self.nodes:
            raise NoNodeError()
        del self.nodes[path]
        self.writes += 1

    def get_children(self, path: str) -> list[str]:
        if path not in self.nodes:
            raise NoNodeError()
        prefix = path.rstrip("/") + "/"
        return sorted({p[len(prefix) :].split("/")[0] for p in self.nodes if p.startswith(prefix)})

    def expire(self, session: int) -> None:
        """The server ends a session: its ephemeral nodes go."""
        self.nodes = {p: n for p, n in self.nodes.items() if n[1].ephemeralOwner != session}

    def fire(self, state: str) -> None:
        self.connected = state == "CONNECTED"
        for listener in self.listeners:
            listener(state)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"FakeZooKeeper has no {name}")
