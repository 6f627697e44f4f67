"""Trigger `rayline_train_and_serve` on the stack's Airflow and follow the run to its end.

Only Airflow's REST API and our metadata store are used: nothing here imports
Airflow, so the command works from any shell that reaches the stack.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rayline.orchestration.progress import run_record
from rayline.stack.airflow import AirflowClient

__all__ = ["RunOutcome", "build_conf", "follow_run", "load_yaml", "run_record"]

_FINAL_STATES = ("success", "failed")


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML (or JSON) mapping from ``path``.

    Raises:
        ValueError: the file does not hold a mapping.
    """
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping, not {type(data).__name__}")
    return data


def build_conf(
    spec: Mapping[str, Any],
    dag_params: Mapping[str, Any],
    *,
    serving_spec: Mapping[str, Any] | None = None,
    port: int | None = None,
    sample_request: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's conf: the DAG's params with the user's specs put in.

    Args:
        spec: a training spec (what ``rayline train`` takes), or a whole conf with
            ``training``/``serving``/``training_cluster``/``serving_cluster`` keys.
        dag_params: the DAG's params as Airflow's REST API shows them (each a dict
            with its default under ``value``); a param given in conf replaces its
            default whole, so the serving param is completed from its default.
        serving_spec: replicas, batching... (the serving param's ``spec``).
        port: the port to serve on (default: the deploy job picks a free one).
        sample_request: the request the endpoint check sends (``{"instances": [...]}``).
    """
    conf: dict[str, Any] = (
        copy.deepcopy(dict(spec)) if "training" in spec else {"training": copy.deepcopy(dict(spec))}
    )
    serving = {**_default(dag_params, "serving"), **conf.get("serving", {})}
    if serving_spec is not None:
        serving["spec"] = dict(serving_spec)
    if port is not None:
        serving["port"] = port
    if sample_request is not None:
        serving["sample_request"] = dict(sample_request)
    conf["serving"] = serving
    return conf


def _default(dag_params: Mapping[str, Any], name: str) -> dict[str, Any]:
    param = dag_params.get(name)
    value = param.get("value") if isinstance(param, dict) and "value" in param else param
    return copy.deepcopy(value) if isinstance(value, dict) else {}


@dataclass(frozen=True)
class RunOutcome:
    """How a DAG run ended, per Airflow."""

    run_id: str
    state: str  # success, failed, or timeout
    failed_tasks: list[str]


def follow_run(
    client: AirflowClient,
    dag_id: str,
    run_id: str,
    *,
    timeout: float,
    on_state: Callable[[str], None] = lambda _state: None,
    interval: float = 2.0,
) -> RunOutcome:
    """Poll the run until Airflow says it succeeded or failed (or ``timeout`` passes).

    Args:
        on_state: called with each new state of the run (queued, running, ...).
    """
    deadline = time.monotonic() + timeout
    state = ""
    while True:
        current = str(client.dag_run(dag_id, run_id)["state"])
        if current != state:
            state = current
            on_state(state)
        if state in _FINAL_STATES or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    failed = [
        f"{ti['task_id']} (try {ti.get('try_number', '?')}, {ti['state']})"
        for ti in client.task_instances(dag_id, run_id)
        if ti.get("state") in ("failed", "upstream_failed")
    ]
    return RunOutcome(run_id, state if state in _FINAL_STATES else "timeout", failed)
