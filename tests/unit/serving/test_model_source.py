"""Where a deployment's model comes from: the registered artifact URI, split."""

from __future__ import annotations

import pytest

from rayline.serving.errors import ServingError
from rayline.serving.model_source import split_artifact_uri


def test_split_artifact_uri() -> None:
    assert split_artifact_uri("s3://b/p/iris/v1", "iris") == ("s3://b/p", "v1")
    assert split_artifact_uri("file:///d/iris/v1/", "iris") == ("file:///d", "v1")
    with pytest.raises(ServingError, match="is not <store>/iris/<version id>"):
        split_artifact_uri("s3://b/other/v1", "iris")
