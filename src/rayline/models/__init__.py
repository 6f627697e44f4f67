"""A published model version: what its files are, and the predictor that loads them.

Training writes these files (:mod:`rayline.training.artifacts`); serving, the
tracker and tests load them back from here, so none of them needs training's
internals. Layout of one version (``<store>/<model name>/<version id>/``)::

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

from rayline.models.loading import (
    ARTIFACT_FORMAT,
    VERSION_FILES,
    load_model,
    load_model_dir,
    load_registered_model,
)
from rayline.models.predictor import Predictor, Rows

__all__ = [
    "ARTIFACT_FORMAT",
    "VERSION_FILES",
    "Predictor",
    "Rows",
    "load_model",
    "load_model_dir",
    "load_registered_model",
]
