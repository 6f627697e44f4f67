"""The typed requests of Rayline's jobs, and their entrypoint arguments both ways.

A request is built once by its caller (CLI, Airflow, serving), turned into the
job's command line by :meth:`to_argv`, and rebuilt on the cluster by
:meth:`from_argv`; the two live side by side so they cannot drift.

    >>> request = DeployRequest(model="iris", version=3, port=8000)
    >>> DeployRequest.from_argv(request.to_argv()) == request
    True
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rayline.serving.spec import ModelRef, ServingSpec, parse_model_ref
from rayline.training.spec import TrainingSpec, load_spec

__all__ = ["DEPLOY_MODULE", "TRAIN_MODULE", "DeployRequest", "TrainRequest", "entrypoint"]

TRAIN_MODULE = "rayline.jobs.train"
DEPLOY_MODULE = "rayline.jobs.deploy"


def entrypoint(module: str, argv: Sequence[str]) -> str:
    """``python -m MODULE ARGV...``, quoted for the shell Ray runs it in."""
    return shlex.join(["python", "-m", module, *argv])


class _ArgumentError(Exception):
    """argparse's complaint, raised instead of its exit."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ArgumentError(f"{self.prog}: {message}")


class TrainRequest(BaseModel):
    """Train one spec on the cluster the job runs on.

    Attributes:
        spec: The validated training spec.
        run_name: Ray Train run name; the same name resumes that run.
        workflow_run_id: The workflow run recorded as the version's lineage.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["train"] = "train"
    spec: TrainingSpec
    run_name: str | None = None
    workflow_run_id: int | None = None

    def to_argv(self) -> list[str]:
        """The arguments of ``python -m rayline.jobs.train``."""
        argv = ["--spec", self.spec.to_json()]
        if self.run_name:
            argv += ["--run-name", self.run_name]
        if self.workflow_run_id is not None:
            argv += ["--workflow-run-id", str(self.workflow_run_id)]
        return argv

    def entrypoint(self) -> str:
        """The job's shell command."""
        return entrypoint(TRAIN_MODULE, self.to_argv())

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> TrainRequest:
        """Parse the job's arguments.

        Raises:
            InvalidSpecError: The spec is missing or invalid.
        """
        from rayline.training.errors import InvalidSpecError

        try:
            args = _train_parser().parse_args(list(argv))
        except _ArgumentError as err:
            raise InvalidSpecError("in the job's arguments", [str(err)]) from None
        return cls(
            spec=load_spec(args.spec), run_name=args.run_name, workflow_run_id=args.workflow_run_id
        )


def _train_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=f"python -m {TRAIN_MODULE}", description="Train one spec.")
    parser.add_argument("--spec", required=True, help="spec file (YAML/JSON) or inline JSON")
    parser.add_argument("--run-name", help="Ray Train run name; the same name resumes that run")
    parser.add_argument("--workflow-run-id", type=int, help="workflow run id, for lineage")
    return parser


class DeployRequest(BaseModel):
    """Deploy, roll back or stop a served model on the serving cluster the job runs on.

    Attributes:
        action: ``deploy`` a version, ``rollback`` to the one served before, or
            ``delete`` (stop) a deployment or every deployment of a model.
        model: The model's name; for ``delete`` a deployment id or a model name.
        version: The version to deploy (default: the latest); only with ``deploy``.
        alias: The alias to deploy instead of a version; only with ``deploy``.
        port: The port to serve on (default: a free one).
        cluster_id: The serving cluster the job runs on.
        mode: ``docker`` or ``ray`` (default: the ``RAYLINE_SERVING_MODE`` setting).
        spec: Replicas, batching and limits.
        labels: Labels put on what the deploy makes.
        workflow_run_id: The workflow run recorded as the deployment's lineage.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["deploy"] = "deploy"
    action: Literal["deploy", "rollback", "delete"] = "deploy"
    model: str = Field(min_length=1, max_length=255)
    version: int | None = Field(default=None, ge=1)
    alias: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    cluster_id: str | None = None
    mode: Literal["docker", "ray"] | None = None
    spec: ServingSpec = Field(default_factory=ServingSpec)
    labels: dict[str, str] = Field(default_factory=dict)
    workflow_run_id: int | None = None

    @property
    def ref(self) -> ModelRef:
        """The model reference a ``deploy`` serves."""
        return ModelRef(self.model, version=self.version, alias=self.alias)

    def to_argv(self) -> list[str]:
        """The arguments of ``python -m rayline.jobs.deploy``."""
        target = str(self.ref) if self.action == "deploy" else self.model
        argv = [f"--{self.action}", target]
        if self.port is not None:
            argv += ["--port", str(self.port)]
        if self.cluster_id is not None:
            argv += ["--cluster-id", self.cluster_id]
        if self.mode is not None:
            argv += ["--mode", self.mode]
        if self.spec != ServingSpec():
            argv += ["--spec", self.spec.model_dump_json(exclude_defaults=True)]
        for key, value in sorted(self.labels.items()):
            argv += ["--label", f"{key}={value}"]
        if self.workflow_run_id is not None:
            argv += ["--workflow-run-id", str(self.workflow_run_id)]
        return argv

    def entrypoint(self) -> str:
        """The job's shell command."""
        return entrypoint(DEPLOY_MODULE, self.to_argv())

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> DeployRequest:
        """Parse the job's arguments.

        Raises:
            ValueError: An argument is missing or malformed (``InvalidModelRefError``
                for a bad model reference, pydantic's ``ValidationError`` for a
                bad field).
        """
        try:
            args = _deploy_parser().parse_args(list(argv))
        except _ArgumentError as err:
            raise ValueError(str(err)) from None
        labels = {}
        for item in args.label:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(f"--label {item!r} is not KEY=VALUE")
            labels[key] = value
        fields: dict[str, object] = {}
        if args.deploy is not None:
            ref = parse_model_ref(args.deploy)
            fields = {"action": "deploy", "model": ref.name, "version": ref.version}
            fields["alias"] = ref.alias
        elif args.rollback is not None:
            fields = {"action": "rollback", "model": args.rollback}
        else:
            fields = {"action": "delete", "model": args.delete}
        return cls.model_validate(
            {
                **fields,
                "port": args.port,
                "cluster_id": args.cluster_id,
                "mode": args.mode,
                "spec": ServingSpec.model_validate_json(args.spec),
                "labels": labels,
                "workflow_run_id": args.workflow_run_id,
            }
        )


def _deploy_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=f"python -m {DEPLOY_MODULE}", description="Deploy a model.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--deploy", "--model", dest="deploy", help="NAME, NAME:VERSION or NAME@ALIAS to deploy"
    )
    action.add_argument("--rollback", metavar="NAME", help="serve the previous version again")
    action.add_argument("--delete", metavar="TARGET", help="deployment id or model name to stop")
    parser.add_argument("--port", type=int, help="port to serve on (default: a free one)")
    parser.add_argument("--cluster-id", help="the serving cluster this job runs on")
    parser.add_argument("--mode", choices=["docker", "ray"], help="default: RAYLINE_SERVING_MODE")
    parser.add_argument("--spec", default="{}", help="ServingSpec as JSON (replicas, batching...)")
    parser.add_argument("--label", action="append", default=[], help="KEY=VALUE for what is made")
    parser.add_argument("--workflow-run-id", type=int, help="workflow run id, for lineage")
    return parser
