"""Airflow for unit tests: a throw-away AIRFLOW_HOME, set before Airflow is first imported.

No metadata database: these tests call operators, hooks and triggers directly.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from rayline.orchestration.embedded import configure_airflow

# Shared with tests/integration/orchestration: whichever conftest loads first decides.
if "RAYLINE_TEST_AIRFLOW_HOME" not in os.environ:
    os.environ["RAYLINE_TEST_AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="rl-af-")
    atexit.register(shutil.rmtree, os.environ["RAYLINE_TEST_AIRFLOW_HOME"], ignore_errors=True)
_home = Path(os.environ["RAYLINE_TEST_AIRFLOW_HOME"])
configure_airflow(_home, dags_folder=_home / "dags")
