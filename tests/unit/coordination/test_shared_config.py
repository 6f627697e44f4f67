"""The shared-config znode: parsing, applying in place, compare-and-set updates."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rayline.config import Settings
from rayline.coordination.shared_config import (
    SharedConfig,
    SharedConfigApplier,
    decode,
    encode,
    read_shared,
    update_shared,
)
from tests.unit.coordination.fakes import FakeZooKeeper

PATH = "/rayline/config"


def test_an_empty_or_absent_node_shares_nothing() -> None:
    assert decode(None) == SharedConfig()
    assert decode(b"") == SharedConfig()
    assert read_shared(FakeZooKeeper(), PATH) == SharedConfig()


def test_only_set_fields_are_written() -> None:
    assert encode(SharedConfig(max_live_clusters=3)) == b'{"max_live_clusters": 3}'


@pytest.mark.parametrize("raw", [b'{"max_live_clusters": 0}', b'{"surprise": 1}', b"not json"])
def test_invalid_content_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode(raw)


def test_applier_sets_fields_in_place_and_restores_the_baseline(tmp_path: object) -> None:
    settings = Settings(max_live_clusters=8)
    applier = SharedConfigApplier(settings)
    assert applier.apply(SharedConfig(max_live_clusters=3, default_ttl_seconds=600)) == {
        "max_live_clusters": 3,
        "default_ttl_seconds": 600,
    }
    assert settings.max_live_clusters == 3
    assert settings.default_ttl_seconds == 600
    assert applier.apply(SharedConfig(max_live_clusters=3)) == {"default_ttl_seconds": None}
    assert applier.apply(SharedConfig()) == {"max_live_clusters": 8}
    assert applier.effective() == {
        "max_live_clusters": 8,
        "default_ttl_seconds": None,
        "default_idle_timeout_seconds": None,
    }


def test_update_merges_unsets_and_retries_a_lost_race() -> None:
    zk = FakeZooKeeper()
    assert update_shared(zk, PATH, {"max_live_clusters": 3}) == SharedConfig(max_live_clusters=3)
    zk.conflicts = 2  # two other writers got in first
    merged = update_shared(zk, PATH, {"default_idle_timeout_seconds": 300})
    assert merged == SharedConfig(max_live_clusters=3, default_idle_timeout_seconds=300)
    assert update_shared(zk, PATH, {"max_live_clusters": None}) == SharedConfig(
        default_idle_timeout_seconds=300
    )
    assert read_shared(zk, PATH) == SharedConfig(default_idle_timeout_seconds=300)


def test_update_validates_before_writing() -> None:
    zk = FakeZooKeeper()
    with pytest.raises(ValidationError):
        update_shared(zk, PATH, {"max_live_clusters": -1})
    assert read_shared(zk, PATH) == SharedConfig()
