"""The operator's HTTP/1.1 client (``rotator.http1``) against real servers: OpenBao (a Go
server, keep-alive), Python's HTTP/1.0 server, and a scripted socket server for the failures a
pool must survive (a connection the server closed while idle or before answering, an answer cut
short, a server that never answers)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from rotator import http1
from rotator.sandbox.openbao import OpenBaoServer
from tests.fixtures.listener import Listener

#: What a scripted server does with one accepted connection.
Script = Callable[[socket.socket, "Scripted"], None]

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Scripted:
    """A socket server on 127.0.0.1: the n-th accepted connection runs ``scripts[n]``; it
    records each request head it reads."""

    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = scripts
        self.heads: list[bytes] = []
        self.accepted = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def read_request(self, conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return b""
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                while len(rest) < length:
                    rest += conn.recv(65536)
        self.heads.append(head)
        return head

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            script = self.scripts[min(self.accepted, len(self.scripts) - 1)]
            self.accepted += 1
            thread = threading.Thread(target=self._run, args=(script, conn), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, script: Script, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            script(conn, self)

    def __enter__(self) -> Scripted:
        self._accepting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # shutdown() wakes a thread blocked in accept() or recv(); close() alone does not.
        for sock in (self.sock, *self._conns):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._accepting.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)


def answer_all(conn: socket.socket, server: Scripted) -> None:
    while server.read_request(conn):
        conn.sendall(OK)


def answer_once(conn: socket.socket, server: Scripted) -> None:
    """Answer one request, keep-alive, then close while the client holds it idle."""
    server.read_request(conn)
    conn.sendall(OK)
    time.sleep(0.05)


def answer_once_then_drop(conn: socket.socket, server: Scripted) -> None:
    """Answer one request; read the next and close without a byte back."""
    server.read_request(conn)
    conn.sendall(OK)
    server.read_request(conn)


@pytest.fixture
def pool_to() -> Iterator[Callable[[int], http1.Pool]]:
    pools: list[http1.Pool] = []

    def make(port: int) -> http1.Pool:
        pools.append(http1.Pool("127.0.0.1", port, maxsize=4))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


def test_one_kept_alive_connection_carries_every_request_to_openbao(openbao: OpenBaoServer) -> None:
    _, host, port = http1.split_origin(openbao.address)
    pool = http1.Pool(host, port, maxsize=4)
    headers = {"X-Vault-Token": openbao.root_token, "Content-Type": "application/json"}
    try:
        body = json.dumps({"data": {"value": "v"}}).encode()
        written = pool.request("POST", "/v1/secret/data/http1-probe", headers, body)
        assert written.status == 200, written.data
        ports = set()
        for _ in range(20):
            read = pool.request("GET", "/v1/secret/data/http1-probe", headers)
            assert read.status == 200
            assert json.loads(read.data)["data"]["data"] == {"value": "v"}
            assert read.headers["content-type"] == read.headers["Content-Type"] == "application/json"
            ports.add(pool._idle[0].sock.getsockname()[1])
        missing = pool.request("GET", "/v1/secret/data/http1-absent", headers)
        assert missing.status == 404
    finally:
        pool.close()
    assert len(ports) == 1, "every request went over the same connection"
    assert not pool._idle, "close() closed the idle connection"


def test_an_http_1_0_server_gets_a_new_connection_per_request(pool_to: Callable[[int], http1.Pool]) -> None:
    with Listener() as server:
        pool = pool_to(int(server.address.rsplit(":", 1)[1]))
        for _ in range(3):
            answer = pool.request("GET", "/v1/anything", {})
            assert answer.status == 403
            assert json.loads(answer.data) == {"errors": ["permission denied"]}
        assert not pool._idle, "HTTP/1.0 without keep-alive: nothing is kept"
        assert len(server.paths) == 3


def test_a_connection_the_server_closed_while_idle_is_not_used(pool_to: Callable[[int], http1.Pool]) -> None:
    with Scripted([answer_once]) as server:
        pool = pool_to(server.port)
        assert pool.request("POST", "/first", {}, b"{}").status == 200
        time.sleep(http1.FRESH + 0.2)  # the server has closed it meanwhile
        assert pool.request("POST", "/second", {}, b"{}").status == 200
    assert server.accepted == 2
    assert [head.split(b" ")[1] for head in server.heads] == [b"/first", b"/second"]


def test_a_get_on_a_connection_closed_a_moment_ago_is_sent_again_on_a_new_one(
    pool_to: Callable[[int], http1.Pool],
) -> None:
    """Within FRESH the pool does not look before use: the closed connection is tried, and an
    idempotent request goes again on a new one."""
    with Scripted([answer_once, answer_all]) as server:
        pool = pool_to(server.port)
        assert pool.request("GET", "/first", {}).status == 200
        time.sleep(0.1)  # closed by the server, still fresh to the pool
        assert pool.request("GET", "/second", {}).status == 200
    assert server.accepted == 2
    assert [head.split(b" ")[1] for head in server.heads] == [b"/first", b"/second"]


@pytest.mark.parametrize(
    ("method", "replayed"), [("GET", True), ("PUT", True), ("POST", False), ("PATCH", False)]
)
def test_a_request_a_reused_connection_dropped_is_sent_again_only_when_idempotent(
    pool_to: Callable[[int], http1.Pool], method: str, replayed: bool
) -> None:
    with Scripted([answer_once_then_drop, answer_all]) as server:
        pool = pool_to(server.port)
        assert pool.request("GET", "/warm", {}).status == 200
        if replayed:
            assert pool.request(method, "/again", {}, b"{}").status == 200
        else:
            with pytest.raises(http1.Dropped):
                pool.request(method, "/again", {}, b"{}")
    sent_again = [head for head in server.heads if b" /again " in head]
    assert len(sent_again) == (2 if replayed else 1)


def test_a_chunked_answer_with_trailers_is_read_whole(pool_to: Callable[[int], http1.Pool]) -> None:
    def chunked(conn: socket.socket, server: Scripted) -> None:
        while server.read_request(conn):
            conn.sendall(
                b"HTTP/1.1 100 Continue\r\n\r\n"
                b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-Multi: a\r\nX-Multi: b\r\n\r\n"
                b'4;ext=1\r\n{"a"\r\n4\r\n: 1}\r\n0\r\nTrailer: x\r\n\r\n'
            )

    with Scripted([chunked]) as server:
        pool = pool_to(server.port)
        for _ in range(2):  # and the connection stays usable after it
            answer = pool.request("POST", "/c", {}, b"{}")
            assert (answer.status, answer.reason, json.loads(answer.data)) == (201, "Created", {"a": 1})
            assert answer.headers["x-multi"] == "a, b"
    assert server.accepted == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}",
    ],
    ids=["cut-short", "not-http", "bad-length", "cut-chunk"],
)
def test_a_broken_answer_is_a_failure_never_a_short_body(
    pool_to: Callable[[int], http1.Pool], raw: bytes
) -> None:
    def broken(conn: socket.socket, server: Scripted) -> None:
        server.read_request(conn)
        conn.sendall(raw)

    with Scripted([broken]) as server:
        pool = pool_to(server.port)
        with pytest.raises(http1.Dropped):
            pool.request("GET", "/", {})
        assert not pool._idle


def test_a_silent_server_is_a_read_timeout(pool_to: Callable[[int], http1.Pool]) -> None:
    release = threading.Event()

    def silent(conn: socket.socket, server: Scripted) -> None:
        server.read_request(conn)
        release.wait(10)

    with Scripted([silent]) as server:
        pool = pool_to(server.port)
        with pytest.raises(http1.ReadTimedOut) as timed_out:
            pool.request("GET", "/", {}, timeout=http1.Timeout(5.0, 0.3))
        release.set()  # the server would have answered only now
    assert isinstance(timed_out.value, TimeoutError)
    assert not pool._idle, "a connection that timed out is not reused"


def test_a_closed_port_is_a_connect_failure_after_the_retries() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    pool = http1.Pool("127.0.0.1", port, retries=2)
    with pytest.raises(http1.ConnectFailed) as refused:
        pool.request("GET", "/", {})
    assert isinstance(refused.value.__cause__, ConnectionRefusedError)
    assert str(port) in str(refused.value)


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(
    pool_to: Callable[[int], http1.Pool],
) -> None:
    with Scripted([answer_all]) as server:
        pool = pool_to(server.port)
        with pytest.raises(ValueError, match="Authorization") as refused:
            pool.request("GET", "/", {"Authorization": "Bearer t\r\nX-Injected: 1"})
        assert "Bearer" not in str(refused.value), "the value never appears in the error"
        assert pool.request("GET", "/after", {}).status == 200
    assert [head.split(b" ")[1] for head in server.heads] == [b"/after"]


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://10.0.0.1:6443", ("https", "10.0.0.1", 6443)),
        ("http://vault.example", ("http", "vault.example", 80)),
        ("HTTPS://api.example/prefix/path?x=1", ("https", "api.example", 443)),
        ("https://[fd00::1]:8200", ("https", "fd00::1", 8200)),
        ("https://user@host:1", ("https", "host", 1)),
    ],
)
def test_split_origin(origin: str, expected: tuple[str, str, int]) -> None:
    assert http1.split_origin(origin) == expected


@pytest.mark.parametrize("origin", ["ftp://x", "https://", "https://host:port", "host:1"])
def test_split_origin_refuses_what_is_not_an_http_url(origin: str) -> None:
    with pytest.raises(ValueError, match=r"http|host|port"):
        http1.split_origin(origin)


def test_a_stream_yields_whole_lines_however_the_chunks_cut_them(
    pool_to: Callable[[int], http1.Pool],
) -> None:
    def watch(conn: socket.socket, server: Scripted) -> None:
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b'{"a":', b' 1}\n{"b": 2}\n{"c"', b": 3}\n"):
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.02)
        conn.sendall(b"0\r\n\r\n")

    with Scripted([watch]) as server:
        stream = pool_to(server.port).stream("GET", "/watch", {}, http1.Timeout(5.0, 5.0))
        assert stream.status == 200
        assert [json.loads(line) for line in stream.lines()] == [{"a": 1}, {"b": 2}, {"c": 3}]
        stream.close()


def test_a_streamed_error_answer_is_read_to_its_length_not_to_the_end_of_the_connection(
    pool_to: Callable[[int], http1.Pool],
) -> None:
    refused = b'{"kind": "Status", "code": 503}'

    def keep_alive_error(conn: socket.socket, server: Scripted) -> None:
        server.read_request(conn)
        conn.sendall(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n%s" % (len(refused), refused)
        )
        server.read_request(conn)  # holds the connection open, as a keep-alive server does

    with Scripted([keep_alive_error]) as server:
        stream = pool_to(server.port).stream("GET", "/watch", {}, http1.Timeout(5.0, 5.0))
        assert (stream.status, stream.read_all()) == (503, refused)
        stream.close()
