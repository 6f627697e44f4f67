"""Model references and the serving spec."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rayline.serving.errors import InvalidModelRefError
from rayline.serving.spec import ModelRef, ServingSpec, parse_model_ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iris", ModelRef("iris")),
        ("iris:3", ModelRef("iris", version=3)),
        ("iris@champion", ModelRef("iris", alias="champion")),
        ("my.model-v2_a:12", ModelRef("my.model-v2_a", version=12)),
        ("  iris:1 ", ModelRef("iris", version=1)),
    ],
)
def test_parse_model_ref(text: str, expected: ModelRef) -> None:
    assert parse_model_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "names hold"),
        ("iris:", "not a positive integer"),
        ("iris:0", "not a positive integer"),
        ("iris:x", "not a positive integer"),
        ("iris@", "alias"),
        ("iris:1@a", "names hold"),
        ("-iris", "names hold"),
        ("ir is", "names hold"),
    ],
)
def test_bad_model_refs_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(InvalidModelRefError, match=why) as caught:
        parse_model_ref(text)
    assert "NAME:VERSION" in str(caught.value)


def test_ref_prints_back() -> None:
    for text in ("iris", "iris:3", "iris@champion"):
        assert str(parse_model_ref(text)) == text


def test_fixed_replicas_by_default() -> None:
    options = ServingSpec(num_replicas=2).deployment_options()
    assert options["num_replicas"] == 2
    assert "autoscaling_config" not in options
    assert options["ray_actor_options"] == {"num_cpus": 0.5}
    assert options["graceful_shutdown_timeout_s"] == 20


def test_max_replicas_turns_autoscaling_on() -> None:
    options = ServingSpec(min_replicas=1, max_replicas=4).deployment_options()
    assert "num_replicas" not in options
    assert options["autoscaling_config"]["min_replicas"] == 1
    assert options["autoscaling_config"]["max_replicas"] == 4


@pytest.mark.parametrize(
    "fields",
    [
        {"min_replicas": 2},
        {"min_replicas": 5, "max_replicas": 2},
        {"num_replicas": 0},
        {"max_batch_size": 0},
        {"unknown": 1},
    ],
)
def test_bad_specs_are_refused(fields: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        ServingSpec.model_validate(fields)


@pytest.mark.parametrize("fields", [{"max_body_bytes": 2**40}, {"max_rows": 10**9}])
def test_request_limits_are_bounded_above(fields: dict[str, int]) -> None:
    from pydantic import ValidationError

    from rayline.serving.spec import ServingSpec

    with pytest.raises(ValidationError, match=next(iter(fields))):
        ServingSpec(**fields)
