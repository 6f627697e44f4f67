"""Who may change Rayline's znodes: digest auth and creator-only ACLs.

With ``RAYLINE_ZOOKEEPER_PASSWORD`` set, every client the managers open
authenticates as the ZooKeeper user ``rayline``, and every znode they create
(election, locks, registry, shared config) carries an ACL that gives that user
every right and everyone else only READ: discovery readers need no password, but
no other client of the ensemble can take the leadership, steal a lock or point a
model's registry entry elsewhere. Without it, znodes are open (the development
default; production refuses to start so).

ACLs apply when a znode is created: a root made earlier by an open client keeps
its open ACL, so use a fresh ``RAYLINE_ZOOKEEPER_ROOT`` when turning this on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kazoo.security import ACL, make_acl, make_digest_acl

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = ["ZOOKEEPER_USER", "client_security"]

ZOOKEEPER_USER = "rayline"


def client_security(settings: Settings) -> tuple[list[tuple[str, str]], list[ACL] | None]:
    """The ``auth_data`` and ``default_acl`` of a kazoo client for these settings.

    Returns ``([], None)`` (no auth, kazoo's open default) without a password.
    """
    if settings.zookeeper_password is None:
        return [], None
    password = settings.zookeeper_password.get_secret_value()
    acl = [
        make_digest_acl(ZOOKEEPER_USER, password, all=True),
        make_acl("world", "anyone", read=True),
    ]
    return [("digest", f"{ZOOKEEPER_USER}:{password}")], acl
