"""Settings every manager replica must agree on, kept in one znode.

``/rayline/config`` holds a JSON object with any of the `SharedConfig` fields.
Each manager watches it (kazoo ``DataWatch``) and applies it to its `Settings`
object in place, so the next quota check or cluster request uses the new value
without a restart; a field removed from the znode falls back to the value the
manager started with. `rayline config get|set|unset` edits it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rayline.config import Settings

__all__ = [
    "SharedConfig",
    "SharedConfigApplier",
    "decode",
    "encode",
    "read_shared",
    "update_shared",
]


class SharedConfig(BaseModel):
    """The shared fields; unset ones keep each manager's own value."""

    model_config = ConfigDict(extra="forbid")

    max_live_clusters: int | None = Field(default=None, ge=1, le=10_000)
    default_ttl_seconds: int | None = Field(default=None, ge=1)
    default_idle_timeout_seconds: int | None = Field(default=None, ge=1)

    @classmethod
    def names(cls) -> list[str]:
        """The names `rayline config set` accepts."""
        return list(cls.model_fields)


def decode(data: bytes | None) -> SharedConfig:
    """Parse the znode's content; an absent or empty node means nothing is shared."""
    if not data:
        return SharedConfig()
    return SharedConfig.model_validate(json.loads(data))


def encode(config: SharedConfig) -> bytes:
    """Serialise only the fields that are set."""
    return json.dumps(config.model_dump(exclude_none=True), sort_keys=True).encode()


class SharedConfigApplier:
    """Applies a `SharedConfig` to a live `Settings` object, remembering the originals."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._baseline: dict[str, Any] = {
            name: getattr(settings, name) for name in SharedConfig.names()
        }
        self.current = SharedConfig()

    def apply(self, config: SharedConfig) -> dict[str, Any]:
        """Set every shared field (or restore it when unset); returns what changed."""
        changed: dict[str, Any] = {}
        for name in SharedConfig.names():
            value = getattr(config, name)
            wanted = self._baseline[name] if value is None else value
            if getattr(self._settings, name) != wanted:
                setattr(self._settings, name, wanted)
                changed[name] = wanted
        self.current = config
        return changed

    def effective(self) -> dict[str, Any]:
        """The values in force now."""
        return {name: getattr(self._settings, name) for name in SharedConfig.names()}


def read_shared(client: Any, path: str) -> SharedConfig:
    """The shared config as stored (an absent znode means nothing is shared)."""
    if client.exists(path) is None:
        return SharedConfig()
    data, _ = client.get(path)
    return decode(data)


def update_shared(client: Any, path: str, changes: dict[str, Any]) -> SharedConfig:
    """Set (or with None, unset) fields; a compare-and-set on the znode version.

    Two concurrent updates never lose one another: the loser re-reads and retries.

    Raises:
        pydantic.ValidationError: a key is unknown or a value out of range.
    """
    from kazoo.exceptions import BadVersionError, NodeExistsError

    while True:
        client.ensure_path(path)
        data, stat = client.get(path)
        merged = {**decode(data).model_dump(exclude_none=True), **changes}
        config = SharedConfig.model_validate({k: v for k, v in merged.items() if v is not None})
        try:
            client.set(path, encode(config), version=stat.version)
        except (BadVersionError, NodeExistsError):
            continue
        return config
