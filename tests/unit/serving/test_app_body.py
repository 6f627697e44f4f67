"""The request body limit of the serving app: 413 before reading too much."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request

from rayline.serving.app import _read_body
from rayline.serving.errors import InvalidRequestError


def _request(chunks: list[bytes], headers: dict[str, str]) -> Request:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    return Request(scope, receive)


def test_small_bodies_are_read_whole() -> None:
    request = _request([b'{"a":', b"1}"], {"content-length": "6"})
    assert asyncio.run(_read_body(request, 100)) == b'{"a":1}'


def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    request = _request([b"x" * 10], {"content-length": str(50 * 1024 * 1024)})
    with pytest.raises(InvalidRequestError, match="larger than the limit of 1024 bytes") as caught:
        asyncio.run(_read_body(request, 1024))
    assert caught.value.status == 413


def test_a_chunked_body_is_cut_off_at_the_limit() -> None:
    request = _request([b"x" * 600, b"x" * 600, b"x" * 600], {})
    with pytest.raises(InvalidRequestError) as caught:
        asyncio.run(_read_body(request, 1024))
    assert caught.value.status == 413


def test_a_bad_content_length_is_400() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        asyncio.run(_read_body(_request([b""], {"content-length": "lots"}), 1024))
    assert caught.value.status == 400
