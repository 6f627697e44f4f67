"""The node launcher's host-wide start slots (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

from rayline.clusters.backends._ray_start import _StartSlots


def test_slots_are_exclusive_until_released(tmp_path: Path) -> None:
    first, second, third = (_StartSlots(tmp_path / "slots", 2) for _ in range(3))
    assert first.try_acquire()
    assert second.try_acquire()
    assert not third.try_acquire()  # both slots taken
    first.release()
    assert third.try_acquire()
    second.release()
    third.release()
    third.release()  # releasing twice is harmless
