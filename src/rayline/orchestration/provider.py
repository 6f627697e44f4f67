"""Airflow provider metadata, so Airflow lists Rayline's connection types and hooks.

Registered through the ``apache_airflow_provider`` entry point of the package::

    [project.entry-points.apache_airflow_provider]
    provider_info = "rayline.orchestration.provider:get_provider_info"
"""

from __future__ import annotations

from typing import Any

import rayline

__all__ = ["get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Describe Rayline's hooks, connection types, operators, sensors and triggers."""
    package = "rayline.orchestration"
    return {
        "package-name": "rayline",
        "name": "Rayline",
        "description": "Ray clusters from the Rayline Cluster Manager, Ray jobs, model deployment.",
        "versions": [rayline.__version__],
        "connection-types": [
            {
                "hook-class-name": f"{package}.hooks.cluster_manager.ClusterManagerHook",
                "connection-type": "rayline",
            },
            {
                "hook-class-name": f"{package}.hooks.ray_jobs.RayJobHook",
                "connection-type": "ray_jobs",
            },
        ],
        "hooks": [
            {
                "integration-name": "Rayline",
                "python-modules": [
                    f"{package}.hooks.cluster_manager",
                    f"{package}.hooks.ray_jobs",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Rayline",
                "python-modules": [
                    f"{package}.operators.clusters",
                    f"{package}.operators.ray_job",
                    f"{package}.operators.deploy",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "Rayline", "python-modules": [f"{package}.sensors.ray_cluster"]}
        ],
        "triggers": [
            {
                "integration-name": "Rayline",
                "python-modules": [
                    f"{package}.triggers.ray_job",
                    f"{package}.triggers.ray_cluster",
                ],
            }
        ],
        "integrations": [{"integration-name": "Rayline", "tags": ["software"]}],
    }
