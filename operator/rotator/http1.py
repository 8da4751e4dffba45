"""A lean HTTP/1.1 client: one server, a pool of keep-alive connections, plain sockets.

Every request the operator makes itself (the Kubernetes API, Vault) is a small JSON call on a
kept-alive connection. urllib3 spent ~460 µs of CPU on such a call and http.client alone ~260 µs
(its header parsing goes through the ``email`` package); reading the answer here from a buffered
socket costs ~90 µs (a Vault read on the same machine; ``tests/integration/test_http1.py``). At
a mass rotation's ~20 calls a rotation that was a fifth of the operator's CPU (issue 11).

What it does not do, on purpose: proxies, redirects, compression, cookies, streaming. Its callers
never need them (Vault's rare cases go through requests, see ``rotator.stores.vault.transport``).

Failures are :class:`HttpFailure` (a ``ConnectionError``); the OS or TLS error that caused one is
its ``__cause__``. A connection the server closed while idle is noticed before it is used; a
request on a reused connection that got no byte back is sent again on a new one only when
replaying it is safe (an idempotent method), as Go's and urllib3's clients do.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Final

IDEMPOTENT: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_MAX_LINE: Final = 65536
_MAX_HEADERS: Final = 200
_MAX_BODY_LINE: Final = 64 * 1024 * 1024  # one watch event: an object, at most etcd's 1.5 MiB and then some
_NO_BODY_STATUSES: Final = frozenset({204, 304})
FRESH: Final = 1.0


class HttpFailure(ConnectionError):
    """No complete answer: the server could not be reached or the exchange broke off."""


class ConnectFailed(HttpFailure):
    """No connection (refused, unresolvable, TLS handshake refused): nothing was sent."""


class TlsFailed(ConnectFailed):
    """The TLS handshake failed; the ``ssl`` error (a certificate verdict) is the cause."""


class ConnectTimedOut(ConnectFailed, TimeoutError):
    """The connection was not established in time: nothing was sent."""


class ReadTimedOut(HttpFailure, TimeoutError):
    """The server took longer than the timeout to answer (the request may have been acted on)."""


class Dropped(HttpFailure):
    """The connection closed or broke mid-exchange, or the answer was not HTTP/1.x."""


class Headers(dict[str, str]):
    """Response headers by lower-cased name, looked up in any case."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


@dataclass(frozen=True)
class Answer:
    """One complete response, whatever its status."""

    status: int
    reason: str
    headers: Headers
    data: bytes


@dataclass(frozen=True)
class Timeout:
    """Seconds to connect and to wait for each read (None: no limit)."""

    connect: float | None
    read: float | None

    @classmethod
    def of(cls, seconds: float | tuple[float | None, float | None] | None) -> Timeout:
        if isinstance(seconds, tuple):
            return cls(*seconds)
        return cls(seconds, seconds)


_NO_TIMEOUT: Final = Timeout(None, None)


class _Connection:
    __slots__ = ("idle_since", "reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: IO[bytes] = sock.makefile("rb")
        self.idle_since = 0.0

    def dropped(self, now: float) -> bool:
        """Readable while idle: the server closed it (or sent what nobody asked for).

        Not asked of a connection idle for less than :data:`FRESH` seconds: servers close idle
        connections after tens of seconds, and the select() was ~2 % of the operator's CPU in
        a mass rotation. A close within that instant costs an idempotent request nothing (it is
        sent again) and any other a temporary failure its caller retries."""
        if now - self.idle_since < FRESH:
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


class Pool:
    """Keep-alive connections to one server (``scheme://host:port``). Thread-safe.

    ``tls`` is the SSL context for an https server (None for http); ``server_hostname`` the name
    its certificate must carry when that is not the host (kubeconfig ``tls-server-name``).
    ``maxsize`` idle connections are kept; more may be open at once while busy. ``retries``:
    how many more times a connection that could not be established is tried.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        maxsize: int = 10,
        retries: int = 0,
    ) -> None:
        self.host = host
        self.port = port
        self._tls = tls
        self._server_hostname = server_hostname or host
        self._maxsize = maxsize
        self._retries = retries
        default_port = 443 if tls is not None else 80
        name = f"[{host}]" if ":" in host else host
        self._host_header = name if port == default_port else f"{name}:{port}"
        self._idle: deque[_Connection] = deque()
        self._lock = threading.Lock()
        self._closed = False
        # A pool dropped without close() (a client let go) still closes its sockets.
        weakref.finalize(self, _close_all, self._idle)

    def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: Timeout | None = None,
    ) -> Answer:
        """Send ``method target`` (target: the path and query) and read the whole answer."""
        timeout = timeout or _NO_TIMEOUT
        message = _message(method, target, self._host_header, headers, body)
        connect_attempts = 0
        while True:
            connection, reused = self._take()
            if connection is None:
                try:
                    connection = self._connect(timeout.connect)
                except ConnectFailed:
                    connect_attempts += 1
                    if connect_attempts > self._retries:
                        raise
                    continue
            try:
                answer, keep = self._exchange(connection, message, method, timeout.read)
            except _NothingBack as nothing:
                connection.close()
                if reused and (nothing.unsent or method in IDEMPOTENT):
                    continue  # the server had closed it: the request was never read
                raise Dropped("the server closed the connection without answering") from nothing.__cause__
            except BaseException:
                connection.close()
                raise
            if keep:
                self._give_back(connection)
            else:
                connection.close()
            return answer

    def stream(
        self, method: str, target: str, headers: Mapping[str, str], timeout: Timeout | None = None
    ) -> Stream:
        """Send ``method target`` on a connection of its own and return the answer as it
        arrives (a watch): its status and headers now, its body through :meth:`Stream.lines`.
        ``timeout.read`` bounds each wait for more of the body, not the whole stream."""
        timeout = timeout or _NO_TIMEOUT
        connection = self._connect(timeout.connect)
        try:
            connection.sock.settimeout(timeout.read)
            connection.sock.sendall(_message(method, target, self._host_header, headers, None))
            line = connection.reader.readline(_MAX_LINE)
            if not line:
                raise Dropped(f"{self._host_header} closed the connection without answering")
            _, status, reason, head = _final_head(connection.reader, line)
        except TimeoutError as exc:
            connection.close()
            raise ReadTimedOut(f"{self._host_header} did not answer in time") from exc
        except HttpFailure:
            connection.close()
            raise
        except OSError as exc:
            connection.close()
            raise Dropped(f"the connection to {self._host_header} broke: {_describe(exc)}") from exc
        return Stream(connection, status, reason, head, self._host_header)

    def close(self) -> None:
        """Close the idle connections; those in use close when their request ends."""
        with self._lock:
            self._closed = True
        _close_all(self._idle)

    def _take(self) -> tuple[_Connection | None, bool]:
        while True:
            try:
                connection = self._idle.pop()  # the most recently used: least likely closed
            except IndexError:
                return None, False
            if not connection.dropped(time.monotonic()):
                return connection, True
            connection.close()

    def _give_back(self, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        with self._lock:
            if not self._closed and len(self._idle) < self._maxsize:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self, timeout: float | None) -> _Connection:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except TimeoutError as exc:
            raise ConnectTimedOut(f"connecting to {self._host_header} timed out") from exc
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {self._host_header}: {_describe(exc)}") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._server_hostname)
        except TimeoutError as exc:
            sock.close()
            raise ConnectTimedOut(f"TLS handshake with {self._host_header} timed out") from exc
        except ssl.SSLError as exc:
            sock.close()
            raise TlsFailed(f"TLS handshake with {self._host_header} failed: {_describe(exc)}") from exc
        except OSError as exc:
            sock.close()
            raise ConnectFailed(f"cannot connect to {self._host_header}: {_describe(exc)}") from exc
        return _Connection(sock)

    def _exchange(
        self, connection: _Connection, message: bytes, method: str, read_timeout: float | None
    ) -> tuple[Answer, bool]:
        connection.sock.settimeout(read_timeout)
        try:
            connection.sock.sendall(message)
        except TimeoutError as exc:
            raise ReadTimedOut(f"sending to {self._host_header} timed out") from exc
        except OSError as exc:
            raise _NothingBack(unsent=True) from exc
        try:
            return _read_answer(connection.reader, method)
        except TimeoutError as exc:
            raise ReadTimedOut(f"{self._host_header} did not answer in time") from exc
        except (_NothingBack, HttpFailure):
            raise
        except OSError as exc:
            raise Dropped(f"the connection to {self._host_header} broke: {_describe(exc)}") from exc


class Stream:
    """An answer read as it arrives, on a connection of its own. :meth:`close` may be called
    from another thread: it ends a read blocked in :meth:`lines`."""

    def __init__(
        self, connection: _Connection, status: int, reason: str, headers: Headers, host: str
    ) -> None:
        self._connection = connection
        self.status = status
        self.reason = reason
        self.headers = headers
        self._host = host
        self._closed = False

    def lines(self) -> Iterator[bytes]:
        """The body's lines (without line ends), each as soon as it is complete; ends with the
        body. Raises ReadTimedOut when nothing came within the read timeout, Dropped when the
        connection broke (or was closed)."""
        reader = self._connection.reader
        chunked = "chunked" in (self.headers.get("transfer-encoding") or "").lower()
        try:
            if not chunked:
                length = self.headers.get("content-length")
                if length is not None:  # one short answer (an error's Status): exactly that much
                    body = reader.read(int(length))
                    yield from (line.rstrip(b"\r") for line in body.split(b"\n") if line.strip())
                    return
                while line := reader.readline(_MAX_BODY_LINE):  # to the end of the connection
                    yield line.rstrip(b"\r\n")
                return
            pending = b""
            while True:
                size_line = reader.readline(_MAX_LINE)
                if not size_line:
                    raise Dropped(f"{self._host} ended the stream mid-body")
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise Dropped("a chunk of the stream has no valid size") from None
                if size == 0:
                    _headers(reader)
                    if pending:
                        yield pending
                    return
                chunk = reader.read(size)
                if len(chunk) != size or reader.read(2) != b"\r\n":
                    raise Dropped(f"{self._host} ended the stream within a chunk")
                pending += chunk
                if len(pending) > _MAX_BODY_LINE:
                    raise Dropped(
                        f"a line of the stream from {self._host} is longer than {_MAX_BODY_LINE} bytes"
                    )
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    if line.strip():
                        yield line.rstrip(b"\r")
        except TimeoutError as exc:
            raise ReadTimedOut(f"{self._host} sent nothing within the read timeout") from exc
        except HttpFailure:
            raise
        except (OSError, ValueError) as exc:  # ValueError: read on a file closed meanwhile
            if self._closed:
                raise Dropped("the stream was closed") from None
            raise Dropped(f"the stream from {self._host} broke: {_describe(exc)}") from exc

    def read_all(self) -> bytes:
        """The rest of the body as one (an error's Status); never more than a short answer."""
        return b"\n".join(self.lines())

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._connection.sock.shutdown(socket.SHUT_RDWR)
        self._connection.close()


def _close_all(idle: deque[_Connection]) -> None:
    while True:
        try:
            connection = idle.pop()
        except IndexError:
            return
        connection.close()


class _NothingBack(Exception):
    """Not one byte of an answer: the server may never have read the request."""

    def __init__(self, *, unsent: bool = False) -> None:
        super().__init__("no answer")
        self.unsent = unsent


def _message(method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"header {name!r} holds a line break or colon")  # never its value
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    if any(c in target for c in " \r\n"):
        raise ValueError("the request target holds a space or a line break")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


def _read_answer(reader: IO[bytes], method: str) -> tuple[Answer, bool]:
    """The whole answer, and whether the connection can carry another request."""
    try:
        line = reader.readline(_MAX_LINE)
    except ConnectionResetError as exc:
        raise _NothingBack() from exc
    if not line:
        raise _NothingBack()
    version, status, reason, headers = _final_head(reader, line)
    connection = (headers.get("connection") or "").lower()
    keep = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    if method == "HEAD" or status in _NO_BODY_STATUSES:
        return Answer(status, reason, headers, b""), keep
    if "chunked" in (headers.get("transfer-encoding") or "").lower():
        return Answer(status, reason, headers, _chunked(reader)), keep
    length = headers.get("content-length")
    if length is None:
        return Answer(status, reason, headers, reader.read()), False  # to the end: not reusable
    try:
        size = int(length)
    except ValueError:
        raise Dropped("the answer's Content-Length is not a number") from None
    data = reader.read(size)
    if len(data) != size:
        raise Dropped(f"the answer was cut short ({len(data)} of {size} bytes)")
    return Answer(status, reason, headers, data), keep


def _final_head(reader: IO[bytes], line: bytes) -> tuple[str, int, str, Headers]:
    """The status line (``line``, read already) and headers of the final answer: an interim
    one (100 Continue) is skipped."""
    while True:
        version, status, reason = _status_line(line)
        headers = _headers(reader)
        if not 100 <= status < 200:
            return version, status, reason, headers
        line = reader.readline(_MAX_LINE)
        if not line:
            raise Dropped("the connection closed after an interim answer")


def _status_line(line: bytes) -> tuple[str, int, str]:
    version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise Dropped("the answer is not HTTP/1.x")
    return version, int(code), reason


def _headers(reader: IO[bytes]) -> Headers:
    headers = Headers()
    for _ in range(_MAX_HEADERS):
        line = reader.readline(_MAX_LINE)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise Dropped("the connection closed within the answer's headers")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise Dropped("an answer header has no colon")
        key = name.strip().lower()
        value = value.strip()
        previous = dict.get(headers, key)
        dict.__setitem__(headers, key, value if previous is None else f"{previous}, {value}")
    raise Dropped(f"the answer has more than {_MAX_HEADERS} headers")


def _chunked(reader: IO[bytes]) -> bytes:
    parts: list[bytes] = []
    while True:
        line = reader.readline(_MAX_LINE)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise Dropped("a chunk of the answer has no valid size") from None
        if size == 0:
            _headers(reader)  # trailers, up to the closing blank line
            return b"".join(parts)
        chunk = reader.read(size)
        if len(chunk) != size or reader.read(2) != b"\r\n":
            raise Dropped("the answer was cut short within a chunk")
        parts.append(chunk)


def _describe(exc: BaseException) -> str:
    """An OS or TLS error in words without any request content (it holds none: addresses and
    OpenSSL's reasons only)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return str(exc.verify_message or "certificate verify failed")
    return getattr(exc, "strerror", None) or type(exc).__name__


def tls_context(
    *,
    verify: bool = True,
    ca_file: str | None = None,
    ca_dir: str | None = None,
    client_cert: tuple[str, str] | None = None,
) -> ssl.SSLContext:
    """An SSL context as urllib3 and requests build one: TLS 1.2 or newer, the server's
    certificate and name checked unless ``verify`` is False."""
    context = ssl.create_default_context(cafile=ca_file, capath=ca_dir)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        context.load_cert_chain(client_cert[0], client_cert[1])
    context.set_alpn_protocols(["http/1.1"])
    return context


def split_origin(origin: str) -> tuple[str, str, int]:
    """``scheme://host[:port]`` (what follows is the caller's) -> (scheme, host, port)."""
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {origin!r}")
    scheme = scheme.lower()
    netloc = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if netloc.startswith("["):
        host, _, after = netloc[1:].partition("]")
        port_text = after[1:] if after.startswith(":") else ""
    else:
        host, _, port_text = netloc.partition(":")
    if not host:
        raise ValueError(f"no host in {origin!r}")
    try:
        port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"the port in {origin!r} is not a number") from None
    return scheme, host, port
