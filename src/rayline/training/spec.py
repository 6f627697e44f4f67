"""The training spec: what to train, on which data, with how many workers.

A spec is a versioned document (``spec_version: 1``) read from YAML or JSON;
unknown fields are refused so a typo is an error naming the field.

Example:
    >>> spec = load_spec('''{"spec_version": 1, "name": "iris", "dataset": "sklearn:iris",
    ...     "target": "target", "task": "classification", "framework": "xgboost"}''')
    >>> spec.workers, spec.resolved_hyperparameters()["num_boost_round"]
    (1, 100)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from rayline.training.dataset_uri import DatasetRef, parse_dataset_uri
from rayline.training.errors import InvalidSpecError
from rayline.training.params import FRAMEWORK_PARAMS

__all__ = ["SPEC_VERSION", "Framework", "Task", "TrainingSpec", "load_spec"]

SPEC_VERSION = 1
Framework = Literal["xgboost", "sklearn", "torch"]
Task = Literal["classification", "regression"]
# Same alphabet as artifact names and the Cluster Manager's model names.
_NAME_RE = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.]{0,127}")


class TrainingSpec(BaseModel):
    """One training run, as written by a person or a DAG."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec_version: Literal[1] = Field(description="Format version of this document; 1.")
    # The patterns only go into the JSON schema (the validators below give the
    # clearer message), so a form or a DAG param refuses a bad value early.
    name: str = Field(
        description="Model name; every run registers a new version of it.",
        json_schema_extra={"pattern": f"^{_NAME_RE.pattern}$"},
    )
    dataset: str = Field(
        description="s3://bucket/key.csv, file:///path/data.parquet (under RAYLINE_DATA_ROOTS), "
        "or sklearn:iris|breast_cancer|diabetes|digits.",
        json_schema_extra={"pattern": "^(s3://|file://|sklearn:)"},
    )
    dataset_format: Literal["csv", "parquet"] | None = Field(
        default=None, description="Only when the dataset path's suffix does not tell."
    )
    target: str = Field(min_length=1, max_length=256, description="Column to predict.")
    task: Task
    framework: Framework
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="The framework's keys (bounded: see rayline.training.params) and any "
        "native option of its library.",
    )
    workers: int = Field(default=1, ge=1, le=256, description="Training workers (Ray actors).")
    cpus_per_worker: float = Field(default=1, gt=0, le=1024)
    gpus_per_worker: float = Field(default=0, ge=0, le=64)
    validation_split: float = Field(
        default=0.2, gt=0, le=0.5, description="Share of rows held out for validation."
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    max_failures: int = Field(
        default=2, ge=0, le=100, description="Worker failures to recover from a checkpoint."
    )
    checkpoint_every: int = Field(
        default=10, ge=1, le=100_000, description="Boosting rounds or epochs between checkpoints."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.fullmatch(value) or ".." in value:
            raise ValueError(
                "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, "
                "without '..' or '/'"
            )
        return value

    @model_validator(mode="after")
    def _check_combination(self) -> TrainingSpec:
        try:
            parse_dataset_uri(self.dataset, fmt=self.dataset_format)
        except ValueError as err:
            raise ValueError(f"dataset: {err}") from None
        try:
            FRAMEWORK_PARAMS[self.framework].model_validate(self.hyperparameters)
        except PydanticValidationError as err:
            raise ValueError(
                f"hyperparameters for {self.framework}: " + "; ".join(_problems(err))
            ) from None
        if self.framework == "sklearn" and self.workers != 1:
            raise ValueError(
                "sklearn trains on one worker; set `workers: 1`, or use xgboost or torch "
                "for data-parallel training"
            )
        if self.framework == "sklearn" and self.gpus_per_worker:
            raise ValueError("sklearn does not use GPUs; set `gpus_per_worker: 0`")
        return self

    @property
    def dataset_ref(self) -> DatasetRef:
        """The parsed dataset URI."""
        return parse_dataset_uri(self.dataset, fmt=self.dataset_format)

    def resolved_hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters with the framework's defaults filled in."""
        return FRAMEWORK_PARAMS[self.framework].model_validate(self.hyperparameters).resolved()

    def to_json(self) -> str:
        """Compact JSON, accepted by :func:`load_spec` and ``rayline.jobs.train --spec``."""
        return self.model_dump_json(exclude_defaults=False)


def load_spec(source: str | Path | Mapping[str, Any] | TrainingSpec) -> TrainingSpec:
    """Read and validate a training spec.

    Args:
        source: A spec, a mapping, inline JSON (a string starting with ``{``),
            or the path of a YAML or JSON file.

    Returns:
        The validated spec.

    Raises:
        InvalidSpecError: The document is unreadable or breaks a rule; every
            problem is listed with the field it is about.
    """
    if isinstance(source, TrainingSpec):
        return source
    where, data = _read(source)
    if not isinstance(data, Mapping):
        raise InvalidSpecError(where, ["the document must be a mapping of spec fields"])
    try:
        return TrainingSpec.model_validate(dict(data))
    except PydanticValidationError as err:
        raise InvalidSpecError(where, _problems(err)) from None


def _read(source: str | Path | Mapping[str, Any]) -> tuple[str, Any]:
    if isinstance(source, Mapping):
        return "(mapping)", source
    if isinstance(source, str) and source.lstrip().startswith("{"):
        try:
            return "(inline JSON)", json.loads(source)
        except json.JSONDecodeError as err:
            raise InvalidSpecError("(inline JSON)", [f"not valid JSON: {err}"]) from None
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidSpecError(str(path), [f"cannot read the file: {err.strerror}"]) from None
    try:
        return str(path), yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as err:
        raise InvalidSpecError(str(path), [f"not valid YAML or JSON: {err}"]) from None


def _problems(err: PydanticValidationError) -> list[str]:
    problems = []
    for error in err.errors():
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "literal_error":  # say what was given, not only what is allowed
            message = f"{error['input']!r} is not allowed; {message[0].lower()}{message[1:]}"
        problems.append(f"{field}: {message}" if field else message)
    return problems
