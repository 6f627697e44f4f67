"""The backend registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from rayline.clusters.backends import BACKENDS, UnknownBackendError, get_backend
from rayline.clusters.backends.base import ClusterBackend
from rayline.clusters.backends.local import LocalBackend
from rayline.config import Settings


def test_local_is_registered_under_its_own_name() -> None:
    assert BACKENDS["local"] is LocalBackend
    for name, backend_class in BACKENDS.items():
        assert issubclass(backend_class, ClusterBackend)
        assert backend_class.name == name


def test_get_backend_builds_the_named_backend(tmp_path: Path) -> None:
    backend = get_backend("local", Settings(home=tmp_path))
    assert isinstance(backend, LocalBackend)


def test_unknown_backend_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownBackendError) as caught:
        get_backend("kubernetes", Settings(home=tmp_path))
    message = str(caught.value)
    assert "'kubernetes'" in message
    assert "known backends: local" in message
    assert "RAYLINE_CLUSTER_BACKEND" in message
    assert isinstance(caught.value, LookupError)
