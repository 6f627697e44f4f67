"""Key, name and version-id rules, one bad input per row."""

from __future__ import annotations

import pytest

from rayline.storage.errors import InvalidKeyError
from rayline.storage.keys import join_key, validate_key, validate_name, validate_prefix

BAD_KEYS = [
    ("", "must not be empty"),
    ("/etc/passwd", "absolute"),
    ("a/../b", "'..' segments"),
    ("..", "'..' segments"),
    ("../escape", "'..' segments"),
    ("a/./b", "'.' segments"),
    ("a\\b", "backslashes"),
    ("a\x00b", "control character"),
    ("a\nb", "control character"),
    ("a\x7fb", "control character"),
    ("a//b", "empty path segment"),
    ("a/b/", "empty path segment"),
    (".rayline/sha256/x", "reserved"),
    ("a/.rayline-tmp-1", "reserved"),
    ("x" * 1025, "longer than 1024 bytes"),
    ("é" * 513, "longer than 1024 bytes"),  # 1026 bytes in UTF-8
    ("a/" + "y" * 256, "longer than 255 bytes"),
]


@pytest.mark.parametrize(("key", "rule"), BAD_KEYS, ids=[repr(k[:20]) for k, _ in BAD_KEYS])
def test_bad_keys_are_refused_naming_the_rule(key: str, rule: str) -> None:
    with pytest.raises(InvalidKeyError, match=rule) as info:
        validate_key(key)
    assert "invalid artifact key" in str(info.value)


@pytest.mark.parametrize(
    "key", ["a", "model.pkl", "iris/v1/model.pkl", "a b/c-d_e.f", "ünï/cödé", "x" * 255, ".hidden"]
)
def test_good_keys_pass_unchanged(key: str) -> None:
    assert validate_key(key) == key


def test_error_names_the_key() -> None:
    with pytest.raises(InvalidKeyError) as info:
        validate_key("a/../b")
    assert info.value.key == "a/../b"
    assert "'a/../b'" in str(info.value)


@pytest.mark.parametrize(
    "name", ["", "a/b", "../x", ".hidden", "-dash", "sp ace", "é", "x" * 129, "a\x00"]
)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidKeyError):
        validate_name(name)


@pytest.mark.parametrize("name", ["iris", "my-model_2.v1", "A", "0" * 128])
def test_good_names_pass(name: str) -> None:
    assert validate_name(name) == name


def test_prefix_allows_empty_and_trailing_slash() -> None:
    assert validate_prefix("") == ""
    assert validate_prefix("models/") == "models"
    with pytest.raises(InvalidKeyError):
        validate_prefix("/abs")


def test_join_key_validates_the_result() -> None:
    assert join_key("", "a", "b/c") == "a/b/c"
    with pytest.raises(InvalidKeyError):
        join_key("a", "..")
