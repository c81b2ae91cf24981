"""Reading an HTTP answer we do not trust: a size cap, a deadline, and JSON only as an object."""

from __future__ import annotations

import json
from typing import Any

import requests

from device import net


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
) -> tuple[requests.Response, bytes]:
    """POST without following redirects; the response and its body, read by ``read_capped``.

    All of it (name lookup, connect, TLS, send, every read) ends within ``timeout_s``, or within
    the deadline already open on this thread if that ends sooner (``device.net``). A request the
    deadline cut short is a Timeout: a ConnectTimeout when it never began to go out.
    """
    with net.deadline(timeout_s) as deadline:
        try:
            with session.post(
                url,
                data=data,
                headers=headers,
                timeout=timeout_s,
                allow_redirects=False,
                stream=True,
            ) as response:
                raw = read_capped(response, limit=limit, deadline=deadline)
                deadline.close()  # before the connection goes back to the pool
        except requests.RequestException as error:
            if deadline.cut and not isinstance(error, requests.Timeout):
                raise _cut_short(deadline) from error
            raise
        if deadline.cut:  # a body that ends at the connection's close may have been truncated
            raise _cut_short(deadline)
        return response, raw


def _cut_short(deadline: net.Deadline) -> requests.Timeout:
    kind = requests.ReadTimeout if deadline.sent else requests.ConnectTimeout
    return kind(f"no complete answer within {deadline.seconds:g}s")


def read_capped(response: requests.Response, *, limit: int, deadline: net.Deadline) -> bytes:
    """The body, refusing more than ``limit`` bytes or a server that drips past ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=16384):
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        if deadline.expired():
            raise requests.ReadTimeout("response body too slow")
        chunks.append(chunk)
    return b"".join(chunks)


def json_object(raw: bytes) -> dict[str, Any] | None:
    """``raw`` as a JSON object; None for anything else, however deeply it nests."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
