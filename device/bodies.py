"""Reading an HTTP answer we do not trust: a size cap, a deadline, and JSON only as an object."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests


class BodyTooLargeError(Exception):
    """The answer was larger than its cap: not the server we expect."""


def post_capped(
    session: requests.Session,
    url: str,
    *,
    data: bytes | str,
    headers: dict[str, str],
    timeout_s: float,
    limit: int,
    deadline: float,
    clock: Callable[[], float],
) -> tuple[requests.Response, bytes]:
    """POST without following redirects; the response and its body, read by ``read_capped``."""
    with session.post(
        url,
        data=data,
        headers=headers,
        timeout=timeout_s,
        allow_redirects=False,
        stream=True,
    ) as response:
        return response, read_capped(response, limit=limit, deadline=deadline, clock=clock)


def read_capped(
    response: requests.Response, *, limit: int, deadline: float, clock: Callable[[], float]
) -> bytes:
    """The body, refusing more than ``limit`` bytes or a server that drips past ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=16384):
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        if clock() > deadline:
            raise requests.Timeout("response body too slow")
        chunks.append(chunk)
    return b"".join(chunks)


def json_object(raw: bytes) -> dict[str, Any] | None:
    """``raw`` as a JSON object; None for anything else, however deeply it nests."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
