"""Rayline's DAG files; point Airflow's ``dags_folder`` (or a DAG bundle) at `DAGS_FOLDER`."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DAGS_FOLDER"]

#: This directory: the DAG files Airflow parses.
DAGS_FOLDER = Path(__file__).resolve().parent
