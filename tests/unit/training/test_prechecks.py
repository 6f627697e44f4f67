"""What fails before a cluster is requested: bad spec, bad target, bad columns, bad URI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rayline.config import Settings
from rayline.training.errors import (
    DatasetNotFoundError,
    DatasetUnreachableError,
    InvalidSpecError,
    MissingTargetError,
    NonNumericFeaturesError,
)
from rayline.training.prechecks import check_training_input


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", data_roots=str(tmp_path))


def _spec(dataset: str, **fields: Any) -> dict[str, Any]:
    return {
        "spec_version": 1,
        "name": "m",
        "dataset": dataset,
        "target": "label",
        "task": "classification",
        "framework": "sklearn",
        **fields,
    }


def test_a_good_spec_passes_and_comes_back_validated(settings: Settings) -> None:
    spec = check_training_input(_spec("sklearn:iris", target="target"), settings=settings)
    assert spec.dataset == "sklearn:iris" and spec.workers == 1


def test_missing_target_of_a_bundled_dataset(settings: Settings) -> None:
    with pytest.raises(MissingTargetError, match="'species' is not in dataset sklearn:iris"):
        check_training_input(_spec("sklearn:iris", target="species"), settings=settings)


def test_missing_target_and_strings_of_a_local_file(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": [1, 2], "colour": ["red", "blue"], "label": [0, 1]}).to_csv(
        path, index=False
    )
    with pytest.raises(MissingTargetError, match="'y' is not in dataset"):
        check_training_input(_spec(path.as_uri(), target="y"), settings=settings)
    with pytest.raises(NonNumericFeaturesError, match="'colour'"):
        check_training_input(_spec(path.as_uri()), settings=settings)


def test_parquet_is_checked_from_its_footer(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"a": [1.0, 2.0], "label": [0, 1]}).to_parquet(path, index=False)
    check_training_input(_spec(path.as_uri()), settings=settings)
    with pytest.raises(MissingTargetError):
        check_training_input(_spec(path.as_uri(), target="nope"), settings=settings)


def test_a_file_this_machine_lacks_is_left_to_the_cluster(
    tmp_path: Path, settings: Settings
) -> None:
    check_training_input(_spec((tmp_path / "on-the-nodes.csv").as_uri()), settings=settings)


def test_an_existing_directory_without_data_is_refused(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "empty").mkdir()
    uri = (tmp_path / "empty").as_uri() + "/"
    with pytest.raises(DatasetNotFoundError, match="no data files"):
        check_training_input(_spec(uri, dataset_format="csv"), settings=settings)


def test_unreachable_s3(tmp_path: Path) -> None:
    nowhere = Settings(
        home=tmp_path / "home",
        s3_endpoint_url="http://127.0.0.1:9",
        s3_access_key_id="k",
        s3_secret_access_key="s",
    )
    with pytest.raises(DatasetUnreachableError, match=r"s3://b/d\.csv"):
        check_training_input(_spec("s3://b/d.csv"), settings=nowhere)


def test_a_bad_spec(settings: Settings) -> None:
    with pytest.raises(InvalidSpecError, match="framework"):
        check_training_input(_spec("sklearn:iris", framework="lightgbm"), settings=settings)
