"""Log a finished Rayline model version as an MLflow model, in its library's own flavor.

XGBoost and scikit-learn models are logged with ``mlflow.xgboost`` /
``mlflow.sklearn``, so ``mlflow.<flavor>.load_model`` gives back the native
model; other frameworks are logged as a pyfunc that predicts through Rayline's
own loader (the version's files are its artifacts). Each carries the signature
inferred from the input example the job recorded, and that example. The pip
requirements are given, not inferred: inference loads the model in a subprocess,
which costs seconds per run.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mlflow.pyfunc.model import PythonModel

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.models.model import ModelInfo

    from rayline.training.artifacts import ModelBundle

__all__ = ["MODEL_NAME", "log_bundle_model", "log_version_dir"]

#: The name of the logged model inside its run.
MODEL_NAME = "model"


def log_bundle_model(directory: Path, bundle: ModelBundle, *, run_id: str) -> ModelInfo:
    """Log the version in ``directory`` as the MLflow model of run ``run_id``."""
    return _log_model(
        directory,
        name=bundle.name,
        framework=bundle.framework,
        model_file=bundle.model_file,
        feature_names=bundle.signature.feature_names,
        run_id=run_id,
    )


def log_version_dir(directory: Path, *, run_id: str) -> ModelInfo:
    """Log a published version fetched into ``directory`` (its ``model.json`` says what)."""
    described = json.loads((directory / "model.json").read_text())
    signature = json.loads((directory / "signature.json").read_text())
    return _log_model(
        directory,
        name=described["name"],
        framework=described["framework"],
        model_file=described["model_file"],
        feature_names=[field["name"] for field in signature["inputs"]],
        run_id=run_id,
    )


def _log_model(
    directory: Path,
    *,
    name: str,
    framework: str,
    model_file: str,
    feature_names: list[str],
    run_id: str,
) -> ModelInfo:
    from mlflow.models import infer_signature

    common: dict[str, Any] = {"name": MODEL_NAME, "run_id": run_id, "tags": {"rayline.model": name}}
    if (directory / "input_example.json").is_file():  # versions published before it lack it
        example, predictions = _input_example(directory, feature_names)
        common["signature"] = infer_signature(example, predictions)
        common["input_example"] = example
    model_path = directory / model_file
    if framework == "xgboost":
        import mlflow.xgboost
        import xgboost

        booster = xgboost.Booster(model_file=str(model_path))
        info = mlflow.xgboost.log_model(
            booster, pip_requirements=[f"xgboost=={xgboost.__version__}"], **common
        )
        return cast("ModelInfo", info)
    if framework == "sklearn":
        import mlflow.sklearn
        import sklearn

        estimator = pickle.loads(model_path.read_bytes())  # checksummed by the job that wrote it
        # cloudpickle, as Rayline's own model.pkl: skops refuses estimators holding numpy types.
        info = mlflow.sklearn.log_model(
            estimator,
            serialization_format="cloudpickle",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            **common,
        )
        return cast("ModelInfo", info)
    info = mlflow.pyfunc.log_model(
        python_model=RaylineBundleModel(),
        artifacts={"bundle": str(directory)},
        pip_requirements=["rayline"],
        **common,
    )
    return cast("ModelInfo", info)


def _input_example(directory: Path, feature_names: list[str]) -> tuple[pd.DataFrame, Any]:
    """The rows and predictions the job wrote to ``input_example.json``."""
    import pandas as pd

    recorded = json.loads((directory / "input_example.json").read_text())
    frame = pd.DataFrame(recorded["rows"], columns=feature_names)
    return frame, recorded["predictions"]


class RaylineBundleModel(PythonModel):
    """A pyfunc predicting with Rayline's loader from the version's files."""

    def load_context(self, context: Any) -> None:
        """Load the version from the logged ``bundle`` artifact."""
        from rayline.models import load_model_dir

        self._predictor = load_model_dir(Path(context.artifacts["bundle"]))

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        """Predict rows of a DataFrame (or a list of row dicts)."""
        rows = model_input
        if hasattr(model_input, "to_dict"):
            rows = model_input.to_dict(orient="records")
        return self._predictor.predict(rows)
