"""The full local stack: Postgres, S3, Docker, the Cluster Manager and Airflow on loopback.

See `rayline.stack.stack` (``rayline stack up|down|status``) and
`rayline.stack.airflow` (the client ``rayline workflow run`` triggers DAG runs with).
"""

from __future__ import annotations

from rayline.stack.config import StackConfig
from rayline.stack.errors import StackError
from rayline.stack.stack import Stack
from rayline.stack.status import ComponentStatus

__all__ = ["ComponentStatus", "Stack", "StackConfig", "StackError"]
