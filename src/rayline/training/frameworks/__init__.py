"""The training frameworks, listed as data. Add new ones here.

Each entry names a :class:`~rayline.training.frameworks.base.Framework`
subclass by import path, so an optional library (torch) is imported only when
a spec asks for it.
"""

from __future__ import annotations

import importlib

from rayline.training.frameworks.base import Framework, LoopConfig, Scorer

__all__ = ["FRAMEWORKS", "Framework", "LoopConfig", "Scorer", "get_framework"]

FRAMEWORKS: dict[str, str] = {
    "xgboost": "rayline.training.frameworks.xgboost_trainer:XGBoostFramework",
    "sklearn": "rayline.training.frameworks.sklearn_trainer:SklearnFramework",
    "torch": "rayline.training.frameworks.torch_trainer:TorchFramework",
}


def get_framework(name: str) -> Framework:
    """Return the framework registered as ``name``.

    Raises:
        KeyError: No framework has this name (the spec prevents this).
    """
    if name not in FRAMEWORKS:
        raise KeyError(f"unknown framework {name!r}; known: {', '.join(sorted(FRAMEWORKS))}")
    module, _, attr = FRAMEWORKS[name].partition(":")
    cls: type[Framework] = getattr(importlib.import_module(module), attr)
    return cls()
