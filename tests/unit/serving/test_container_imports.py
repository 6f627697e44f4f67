"""What a model container imports must be in the serving image (no SQLAlchemy, boto3...)."""

from __future__ import annotations

import subprocess
import sys

# Host-only libraries the base image leaves out on purpose.
NOT_IN_IMAGE = ("sqlalchemy", "boto3", "airflow", "alembic", "psycopg", "docker", "typer")


def test_container_side_modules_need_only_the_image_packages() -> None:
    code = (
        "import sys\n"
        "import rayline.serving.container, rayline.serving.app, rayline.models\n"
        f"print(sorted(m for m in {NOT_IN_IMAGE!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
