"""What a trained model version holds, and the predictor that loads it back.

Layout of one published version (``<store>/<model name>/<version id>/``)::

    model.json            what to load: format, framework, task, model file
    model.ubj|.pkl|.pt    the model, in the framework's own format
    signature.json        input features (names, types), target, classes
    preprocessing.json    label classes and the framework's scaling statistics
    metrics.json          train_* and validation_* metrics
    params.json           resolved hyperparameters and training settings
    spec.json             the training spec as submitted
    lineage.json          dataset URI + sha256, code version, run ids, resume info
    input_example.json    a few validation rows and the job's predictions for them
    manifest.json         written last by the store: every file's size and sha256

Example:
    >>> predictor = load_model(open_store(), "iris", "20250101T0000Z-ab12")  # doctest: +SKIP
    >>> predictor.predict([{"sepal length (cm)": 5.1, ...}])  # doctest: +SKIP
    [0]
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from rayline.training.errors import InvalidInputError, ModelLoadError
from rayline.training.frameworks import LoopConfig, Scorer, get_framework
from rayline.training.model_files import checked_model_path
from rayline.training.signature import Signature

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from rayline.storage import ArtifactStore

__all__ = [
    "ARTIFACT_FORMAT",
    "VERSION_FILES",
    "ModelBundle",
    "Predictor",
    "load_model",
    "load_model_dir",
    "load_registered_model",
    "write_artifacts",
]

ARTIFACT_FORMAT = 1
#: Every file of a published version but the model file itself (layout above).
VERSION_FILES = frozenset(
    {
        "model.json",
        "signature.json",
        "preprocessing.json",
        "metrics.json",
        "params.json",
        "spec.json",
        "lineage.json",
        "input_example.json",
        "manifest.json",
    }
)
Rows: TypeAlias = Sequence[Mapping[str, Any]] | pd.DataFrame


@dataclass
class ModelBundle:
    """The files of one version, before they are written next to the model file.

    Attributes:
        name: Model name.
        framework: ``xgboost``, ``sklearn`` or ``torch``.
        model_file: File name of the model inside the version.
        signature: Inputs and outputs.
        loop: The loop config the model was trained with (features, classes count...).
        metrics: ``train_*`` / ``validation_*`` numbers.
        params: Resolved hyperparameters and training settings.
        spec: The spec as submitted (JSON-ready).
        lineage: Dataset, code, run and resume information.
    """

    name: str
    framework: str
    model_file: str
    signature: Signature
    loop: LoopConfig
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def write_artifacts(directory: Path, bundle: ModelBundle) -> None:
    """Write every file but the model itself (already there) and the manifest.

    ``input_example.json`` is written separately by :func:`write_input_example`
    once the predictor has scored the example.
    """
    if not (directory / bundle.model_file).is_file():
        raise FileNotFoundError(f"{directory / bundle.model_file} is missing; save the model first")
    _write_json(
        directory / "model.json",
        {
            "format": ARTIFACT_FORMAT,
            "name": bundle.name,
            "framework": bundle.framework,
            "task": bundle.signature.task,
            "model_file": bundle.model_file,
        },
    )
    _write_json(directory / "signature.json", bundle.signature.to_dict())
    _write_json(
        directory / "preprocessing.json",
        {
            "label_classes": list(bundle.signature.classes or []),
            "framework": bundle.loop.preprocessing,
            "loop": bundle.loop.to_dict(),
        },
    )
    _write_json(directory / "metrics.json", bundle.metrics)
    _write_json(directory / "params.json", bundle.params)
    _write_json(directory / "spec.json", bundle.spec)
    _write_json(directory / "lineage.json", bundle.lineage)


def write_input_example(
    directory: Path, rows: list[dict[str, Any]], predictions: list[Any]
) -> None:
    """Record a few input rows and the predictions the job made for them."""
    _write_json(directory / "input_example.json", {"rows": rows, "predictions": predictions})


class Predictor:
    """A loaded model version: turns rows of features into predictions.

    Attributes:
        name: Model name.
        version_id: Store version id (``None`` when loaded from a bare directory).
        framework: The training framework.
        signature: Inputs (in model order) and output.
        metrics: The metrics recorded at training time.
    """

    def __init__(
        self,
        *,
        name: str,
        version_id: str | None,
        framework: str,
        signature: Signature,
        scorer: Scorer,
        metrics: dict[str, float],
    ) -> None:
        self.name = name
        self.version_id = version_id
        self.framework = framework
        self.signature = signature
        self.metrics = metrics
        self._scorer = scorer

    @property
    def task(self) -> str:
        """``classification`` or ``regression``."""
        return self.signature.task

    def predict(self, rows: Rows) -> list[Any]:
        """Predict class labels (classification) or values (regression).

        Args:
            rows: Mappings of feature name -> number (extra keys are ignored), or a frame.

        Returns:
            One prediction per row, in row order.

        Raises:
            InvalidInputError: A row lacks a feature or has a value that is not a number.
        """
        scores = self.scores(rows)
        if self.task == "regression":
            return [float(v) for v in scores]
        classes = self.signature.classes or ()
        return [_plain(classes[i]) for i in np.argmax(scores, axis=1)]

    def scores(self, rows: Rows) -> np.ndarray:
        """The model's raw output: probabilities ``[n, k]`` or regression values ``[n]``."""
        return self._scorer.scores(self.features(rows))

    def predict_proba(self, rows: Rows) -> list[list[float]]:
        """Class probabilities per row, in the order of ``signature.classes``.

        Raises:
            InvalidInputError: As :meth:`predict`, or the model is a regressor.
        """
        if self.task != "classification":
            raise InvalidInputError(f"{self.name} is a regression model; use predict()")
        return [[float(p) for p in row] for row in self.scores(rows)]

    def features(self, rows: Rows) -> np.ndarray:
        """The ``float64`` feature matrix of ``rows``, columns in signature order."""
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        names = self.signature.feature_names
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise InvalidInputError(
                f"rows lack feature(s) {', '.join(map(repr, missing[:10]))} of model {self.name}; "
                f"it needs: {', '.join(map(repr, names[:30]))}"
            )
        selected = frame[names]
        bad = [
            n
            for n in names
            if not (pd.api.types.is_numeric_dtype(selected[n]) or selected[n].isna().all())
        ]
        if bad:
            raise InvalidInputError(
                f"feature(s) {', '.join(map(repr, bad[:10]))} of model {self.name} must be numbers"
            )
        matrix: np.ndarray = selected.to_numpy(dtype=np.float64, na_value=np.nan)
        return matrix


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _read_json(directory: Path, name: str) -> Any:
    try:
        return json.loads((directory / name).read_text())
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{directory / name} is missing or unreadable ({err})") from None


def load_model_dir(
    directory: Path,
    *,
    version_id: str | None = None,
    model_sha256: str | None = None,
    require_manifest: bool = False,
) -> Predictor:
    """Load a model version from a local directory laid out as described above.

    ``model_file`` in ``model.json`` must be a plain file name; when the directory
    holds a ``manifest.json`` (every fetched version does), the model file must be
    listed there and match its sha256. Both are checked before the model is
    loaded: a pickled model runs code when it is loaded.

    Args:
        directory: The version's files.
        version_id: The store's version id, if it came from a store.
        model_sha256: The model file's sha256 as its writer recorded it (a
            directory not published yet has no manifest); checked when given.
        require_manifest: Refuse a directory without ``manifest.json``.

    Raises:
        ModelLoadError: A file is missing, the format is unknown, the model file
            is not a plain listed name or fails its sha256, or the framework
            cannot load its model.
    """
    info = _read_json(directory, "model.json")
    if info.get("format") != ARTIFACT_FORMAT:
        raise ModelLoadError(
            f"{directory} holds model format {info.get('format')!r}; this Rayline reads "
            f"format {ARTIFACT_FORMAT}: upgrade Rayline or retrain"
        )
    model_path = checked_model_path(
        directory,
        info.get("model_file"),
        expected_sha256=model_sha256,
        require_manifest=require_manifest,
        reserved=VERSION_FILES,
    )
    signature = Signature.from_dict(_read_json(directory, "signature.json"))
    loop = LoopConfig.from_dict(_read_json(directory, "preprocessing.json")["loop"])
    try:
        scorer = get_framework(info["framework"]).load(model_path, loop)
    except (OSError, ValueError, KeyError) as err:
        raise ModelLoadError(
            f"cannot load the {info['framework']} model in {directory}: {err}"
        ) from err
    return Predictor(
        name=info["name"],
        version_id=version_id,
        framework=info["framework"],
        signature=signature,
        scorer=scorer,
        metrics=_read_json(directory, "metrics.json"),
    )


def load_model(
    store: ArtifactStore,
    name: str,
    version: str,
    *,
    expected_manifest_sha256: str | None = None,
) -> Predictor:
    """Fetch a published version, verifying every file's sha256, and load it.

    Args:
        store: The artifact store it was published to.
        name: Model name.
        version: The store's version id (the last segment of the registered
            ``artifact_uri``); see :func:`load_registered_model` for registry numbers.
        expected_manifest_sha256: The manifest digest recorded in the metadata
            store; pins exactly the files that were registered.

    Raises:
        ArtifactNotFoundError: No such published version.
        ChecksumMismatchError: A file differs from the manifest (nothing is loaded).
        ModelLoadError: The files are there but cannot be loaded.
    """
    with tempfile.TemporaryDirectory(prefix="rayline-model-") as tmp:
        target = Path(tmp, "version")
        store.fetch_version(
            name, version, target, expected_manifest_sha256=expected_manifest_sha256
        )
        return load_model_dir(target, version_id=version, require_manifest=True)


def load_registered_model(
    bind: Session | Engine,
    name: str,
    version: int | None = None,
    *,
    store: ArtifactStore | None = None,
) -> Predictor:
    """Load version ``version`` (default: the latest) of a registered model.

    The registry's manifest sha256 is checked, so the files are exactly those
    that were registered.

    Raises:
        ModelNotFoundError, ModelVersionNotFoundError: Not in the registry.
        ModelLoadError: The registered artifact URI is not a version directory.
    """
    from rayline.metadata import ModelRegistry
    from rayline.storage import open_store

    row = ModelRegistry().get_version(bind, name=name, version=version)
    root, _, version_id = row.artifact_uri.rstrip("/").rpartition("/")
    if not root.endswith(f"/{name}"):
        raise ModelLoadError(f"{row.artifact_uri} is not <store>/{name}/<version id>")
    target = store or open_store(root.removesuffix(f"/{name}"))
    return load_model(target, name, version_id, expected_manifest_sha256=row.sha256)
