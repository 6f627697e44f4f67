"""Small socket helpers: is a port free, give me a free one."""

from __future__ import annotations

import errno
import socket

__all__ = ["ephemeral_port", "port_free"]


def port_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound right now (TCP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                return False
            raise
    return True


def ephemeral_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out as free (from its ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
