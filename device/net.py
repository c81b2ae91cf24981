"""One deadline for a whole HTTP request: name lookup, connect, TLS, send and every read.

``requests`` and urllib3 time each socket operation, never a request. Name resolution has no
timeout at all (a dead venue resolver held every offline scan for 10 s), and a server that sends
one byte now and then resets the read timeout with each byte. Here:

- ``deadline(seconds)`` opens a scope on this thread. Scopes nest; the inner one never outlives
  the outer one, so a scan's token fetch and the scan itself share one budget.
- ``Resolver`` runs ``getaddrinfo`` on a daemon thread and waits for it only as long as the
  deadline allows. A host has at most one lookup in flight: a resolver that never answers costs
  one thread, however many requests wait. Answers are kept a short while.
- The connection classes below resolve through it, try each address with a share of the time
  left, and set every socket timeout to the time left. A watchdog thread shuts down the socket
  of a request whose deadline passes, which wakes a recv() or send() that a drip-feeding server
  or a stalled TLS handshake would otherwise hold.
- ``session()`` (requests) and ``PoolManager`` (urllib3) mount them.

Outside a scope a connection only bounds its lookup and connect by its connect timeout.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import ipaddress
import itertools
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection as _HTTPConnection
from urllib3.connection import HTTPSConnection as _HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.connection import allowed_gai_family

CACHE_S = 30.0  # a resolved address is reused this long; getaddrinfo does not say the DNS TTL

AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]
GetAddrInfo = Callable[[str, None, int, int], list[AddrInfo]]


class LookupTimeoutError(Exception):
    """The name lookup did not answer before the deadline."""


class NameResolutionTimeoutError(ConnectTimeoutError):
    """urllib3's form of LookupTimeoutError. A ConnectTimeoutError that is not a NewConnectionError,
    so requests raises ConnectTimeout (requests/adapters.py HTTPAdapter.send): never sent."""


# Deadlines


class Deadline:
    """The end of one request, ``at`` on time.monotonic. Made by ``deadline()``."""

    def __init__(self, at: float, seconds: float) -> None:
        self.at = at
        self.seconds = seconds  # what was asked for, for messages
        self.sent = False  # a request began to go out (set by the connection)
        self.cut = False  # the watchdog shut a connection down at the deadline
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._armed = False
        self._closed = False

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down when the deadline passes (at once if it has passed).

        The watchdog keeps its own duplicate of the descriptor. A TLS wrap moves the descriptor
        to a new socket object and urllib3 may close its own at any moment; the duplicate is
        the same connection whatever happens to them, and can never be a stranger's.
        """
        try:
            duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type, sock.proto)
        except OSError:
            return  # already closed: nothing left to cut
        with self._lock:
            if self._closed:
                duplicate.close()
                return
            self._watched.append(duplicate)
            arm, self._armed = not self._armed, True
        if self.expired():
            self.expire()
        elif arm:
            _WATCHDOG.arm(self)

    def expire(self) -> None:
        """Shut down every watched connection (the watchdog calls this at ``at``)."""
        with self._lock:
            if self._closed or not self._watched:
                return
            # Set first: the thread woken by the shutdown reads it, maybe before we return.
            self.cut = True
            for duplicate in self._watched:
                with contextlib.suppress(OSError):
                    duplicate.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """The request is over: nothing is cut from now on."""
        with self._lock:
            self._closed = True
            watched, self._watched = self._watched, []
        for duplicate in watched:
            duplicate.close()

    def timeout(self, limit: float | None) -> float:
        """A socket timeout for the next step: ``limit``, but no later than the deadline."""
        left = self.remaining()
        if left <= 0:
            raise TimeoutError(f"deadline of {self.seconds:g}s passed")
        return left if limit is None else min(limit, left)


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """``with deadline(2.0) as d:`` every request on this thread ends within 2 s of now."""
    at = time.monotonic() + seconds
    outer = _current.get()
    scope = Deadline(at if outer is None else min(at, outer.at), seconds)
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
        scope.close()


def current() -> Deadline | None:
    """The innermost deadline open on this thread, if any."""
    return _current.get()


@dataclass(order=True)
class _Alarm:
    at: float
    seq: int
    deadline: Deadline = field(compare=False)


class _Watchdog:
    """One daemon thread that calls ``Deadline.expire`` when each armed deadline passes."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._alarms: list[_Alarm] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: Deadline) -> None:
        with self._wake:
            heapq.heappush(self._alarms, _Alarm(deadline.at, next(self._seq), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="net-watchdog", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                due = self._next_due()
            due.deadline.expire()  # a closed deadline ignores it

    def _next_due(self) -> _Alarm:
        while True:
            if not self._alarms:
                self._wake.wait()
                continue
            wait = self._alarms[0].at - time.monotonic()
            if wait <= 0:
                return heapq.heappop(self._alarms)
            self._wake.wait(wait)


_WATCHDOG = _Watchdog()


# Name resolution


class _Lookup:
    """One getaddrinfo call on its own thread; any number of callers wait for it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.addresses: list[AddrInfo] = []
        self.error: OSError | None = None


class Resolver:
    """``Resolver().resolve("api.example", 443, by=time.monotonic() + 2)``: getaddrinfo's list.

    Raises LookupTimeoutError at ``by``, or getaddrinfo's own socket.gaierror. ``getaddrinfo`` is
    injectable for tests.
    """

    def __init__(
        self,
        getaddrinfo: GetAddrInfo = socket.getaddrinfo,  # type: ignore[assignment]
        *,
        cache_s: float = CACHE_S,
    ) -> None:
        self._getaddrinfo = getaddrinfo
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[str, int], _Lookup] = {}
        self._cache: dict[tuple[str, int], tuple[float, list[AddrInfo]]] = {}

    def resolve(self, host: str, port: int, *, by: float) -> list[AddrInfo]:
        family = allowed_gai_family()
        if _is_ip_literal(host):  # answered from the string itself: never blocks
            flags = socket.AI_NUMERICHOST
            return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, flags)  # type: ignore[return-value]
        lookup = self._lookup((host, family))
        if isinstance(lookup, list):
            return _with_port(lookup, port)
        if not lookup.done.wait(_left(by)):
            raise LookupTimeoutError(f"no answer for {host!r} in time")
        if lookup.error is not None:  # a copy: other threads raise the same failure
            raise type(lookup.error)(*lookup.error.args) from lookup.error
        return _with_port(lookup.addresses, port)

    def _lookup(self, key: tuple[str, int]) -> list[AddrInfo] | _Lookup:
        """The cached answer, or the lookup in flight for ``key``, started if there is none."""
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and time.monotonic() < cached[0]:
                return cached[1]
            lookup = self._in_flight.get(key)
            if lookup is None:
                lookup = self._in_flight[key] = _Lookup()
                threading.Thread(
                    target=self._run, args=(key, lookup), name=f"resolve {key[0]}", daemon=True
                ).start()
            return lookup

    def _run(self, key: tuple[str, int], lookup: _Lookup) -> None:
        host, family = key
        try:
            lookup.addresses = self._getaddrinfo(host, None, family, socket.SOCK_STREAM)
        except OSError as error:
            lookup.error = error
        except Exception as error:  # e.g. UnicodeError for a label too long: still a failure
            lookup.error = socket.gaierror(socket.EAI_FAIL, f"lookup failed: {error!r}")
        if lookup.error is None and not lookup.addresses:
            lookup.error = socket.gaierror(socket.EAI_NONAME, "no address")
        with self._lock:
            del self._in_flight[key]
            if lookup.error is None:
                self._cache[key] = (time.monotonic() + self._cache_s, lookup.addresses)
        lookup.done.set()


_FOREVER = float("inf")


def _left(by: float) -> float | None:
    """Seconds until ``by`` (at least 1 ms: 0 would make a socket non-blocking); None: no end."""
    return None if by == _FOREVER else max(by - time.monotonic(), 0.001)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])  # an IPv6 zone ("fe80::1%eth0") too
    except ValueError:
        return False
    return True


def _with_port(addresses: list[AddrInfo], port: int) -> list[AddrInfo]:
    """Looked up without a port (so one answer serves every port); put ``port`` in."""
    return [(*entry[:4], (entry[4][0], port, *entry[4][2:])) for entry in addresses]


DEFAULT_RESOLVER = Resolver()


def connect(
    addresses: list[AddrInfo],
    *,
    by: float,
    options: list[tuple[int, int, int | bytes]] | None,
    source_address: tuple[str, int] | None,
) -> socket.socket:
    """A socket connected to the first address that answers before ``by``.

    As urllib3.util.connection.create_connection, but each address gets a fair share of the
    time left, so a black-holed IPv6 address cannot use it all before IPv4 is tried.
    """
    error: OSError = OSError("getaddrinfo returned no address")
    for index, (family, kind, proto, _, address) in enumerate(addresses):
        left = by - time.monotonic()
        if left <= 0:
            raise TimeoutError("connect deadline passed")
        sock = socket.socket(family, kind, proto)
        try:
            for option in options or ():
                sock.setsockopt(*option)
            sock.settimeout(None if left == _FOREVER else left / (len(addresses) - index))
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
        except OSError as failed:
            sock.close()
            error = failed
            continue
        return sock
    raise error


# urllib3 connections, pools and pool manager


class _Bounded(_HTTPConnection):
    """Hooks on urllib3.connection.HTTPConnection (urllib3 2.x, urllib3/connection.py)."""

    def __init__(self, *args: Any, resolver: Resolver | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resolver = resolver or DEFAULT_RESOLVER
        self._watched_by: Deadline | None = None

    def _new_conn(self) -> socket.socket:
        """As HTTPConnection._new_conn, with resolve and connect bounded together by the
        connect timeout and the deadline, and the socket watched from its first moment (so a
        stalled TLS handshake in HTTPSConnection.connect is cut too)."""
        scope = current()
        limit = self.timeout if isinstance(self.timeout, int | float) else None
        by = _FOREVER if limit is None else time.monotonic() + limit
        if scope is not None:
            by = min(by, scope.at)
        host = self._dns_host.strip("[]")
        try:
            host.encode("idna")
        except UnicodeError:
            raise LocationParseError(f"'{host}', label empty or too long") from None
        try:
            addresses = self._resolver.resolve(host, self.port, by=by)
            sock = connect(
                addresses, by=by, options=self.socket_options, source_address=self.source_address
            )
        except LookupTimeoutError as error:
            raise NameResolutionTimeoutError(self, f"No address for {self.host} in time") from error
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        except TimeoutError as error:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={limit})"
            ) from error
        except OSError as error:
            raise NewConnectionError(
                self, f"Failed to establish a new connection: {error}"
            ) from error
        sock.settimeout(_left(by))  # what is left of it is the TLS handshake's
        if scope is not None:
            scope.watch(sock)
            self._watched_by = scope
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock

    def connect(self) -> None:
        """A TLS handshake that times out or is cut is a connect timeout: nothing was sent.

        urllib3's HTTPSConnectionPool._make_request would call it a read timeout."""
        try:
            super().connect()
        except OSError as error:  # socket.timeout and ssl.SSLError are OSErrors
            scope = current()
            if isinstance(error, TimeoutError) or (scope is not None and scope.cut):
                raise ConnectTimeoutError(
                    self, f"TLS handshake with {self.host} did not finish in time"
                ) from error
            raise

    def request(self, *args: Any, **kwargs: Any) -> None:
        """As HTTPConnection.request, on a connection made first (http.client would make it
        inside) and watched, with the socket timeout cut to the time left."""
        scope = current()
        if scope is not None:
            if self.sock is None:
                self.connect()
            assert self.sock is not None
            left = scope.remaining()
            if left <= 0:
                raise ConnectTimeoutError(self, f"deadline passed before sending to {self.host}")
            if self._watched_by is not scope:  # a kept-alive connection, new to this request
                scope.watch(self.sock)
                self._watched_by = scope
            self.sock.settimeout(left)
            scope.sent = True
        super().request(*args, **kwargs)

    def getresponse(self) -> urllib3.HTTPResponse:  # type: ignore[override]
        """As HTTPConnection.getresponse, whose reads time out no later than the deadline."""
        scope = current()
        if scope is not None:
            limit = self.timeout if isinstance(self.timeout, int | float) else None
            self.timeout = scope.timeout(limit)
        return super().getresponse()


class HTTPConnection(_Bounded):
    """urllib3's HTTPConnection within the deadline."""


class HTTPSConnection(_Bounded, _HTTPSConnection):
    """urllib3's HTTPSConnection within the deadline. TLS still names ``host``: SNI and the
    certificate check use it (HTTPSConnection.connect), never the address it resolved to."""


class HTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = HTTPConnection


class HTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = HTTPSConnection


class PoolManager(urllib3.PoolManager):
    """urllib3.PoolManager whose connections resolve through ``resolver`` and keep deadlines."""

    def __init__(self, *args: Any, resolver: Resolver | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resolver = resolver or DEFAULT_RESOLVER
        self.pool_classes_by_scheme = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> urllib3.HTTPConnectionPool:
        # urllib3/poolmanager.py PoolManager._new_pool; a pool hands conn_kw to each connection.
        # Not passed through connection_pool_kw: the pool key (PoolKey) has no field for it.
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.conn_kw["resolver"] = self._resolver
        return pool


# requests


class Adapter(HTTPAdapter):
    """requests' HTTPAdapter on a ``PoolManager`` of bounded connections."""

    def __init__(self, resolver: Resolver | None = None, **kwargs: Any) -> None:
        self._resolver = resolver or DEFAULT_RESOLVER  # init_poolmanager, below, needs it
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        # requests/adapters.py HTTPAdapter.init_poolmanager, with our PoolManager.
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = PoolManager(
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            resolver=self._resolver,
            **pool_kwargs,
        )


def bounded(session: requests.Session, resolver: Resolver | None = None) -> requests.Session:
    """``session`` with bounded adapters for http:// and https:// in place of requests' own.

    An adapter the caller mounted (one of ours, or a test's transport) is kept.
    """
    for prefix in ("http://", "https://"):
        if type(session.adapters.get(prefix)) is HTTPAdapter:
            session.mount(prefix, Adapter(resolver))
    return session


def session(resolver: Resolver | None = None) -> requests.Session:
    """A new requests.Session whose requests keep ``deadline``s, resolving through ``resolver``."""
    return bounded(requests.Session(), resolver)
