"""Rendered template fields as typed values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowException

__all__ = ["rendered_mapping"]


def rendered_mapping(raw: object) -> dict[str, Any]:
    """A rendered template field as a dict: a mapping, or a JSON object in a string.

    DAGs pass dicts typed: ``render_template_as_native_obj=True`` renders a
    ``{{ params.x }}`` template to the dict itself, or use ``| tojson``.

    Raises:
        AirflowException: it is neither.
    """
    if isinstance(raw, str):
        text = raw
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise AirflowException(
                f"expected a JSON object, got {text[:200]!r}: {exc}; render the template "
                "as a native object (render_template_as_native_obj=True) or with `| tojson`"
            ) from exc
    if not isinstance(raw, Mapping):
        raise AirflowException(f"expected an object (a dict), not {type(raw).__name__}")
    return dict(raw)
