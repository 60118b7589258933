"""The HTTP sender against a raw socket server on 127.0.0.1: keep-alive connections are
reused, a connection the server closed is replaced before the next request, and timeouts
and refused connections become retry outcomes (never exceptions)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from sla_engine.escalation.notifiers import HttpSender
from tests.support.server import free_port

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
OK_THEN_CLOSE = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


@dataclass
class RawServer:
    """Answers each request per `mode`: `keep` (keep-alive), `close` (answers then closes,
    saying so), `drop_idle` (answers, then closes the idle connection without a word) or
    `slow` (answers after `delay_s`)."""

    mode: str = "keep"
    delay_s: float = 0.0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                buffer = rest[length:]
                self.requests.append(rest[:length])
                if self.delay_s:
                    time.sleep(self.delay_s)
                conn.sendall(OK_THEN_CLOSE if self.mode == "close" else OK)
                if self.mode in ("close", "drop_idle"):
                    time.sleep(0.05)
                    return


@pytest.fixture
def raw_server() -> Iterator[tuple[RawServer, str]]:
    server = RawServer()
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=server.serve, args=(listener,), daemon=True).start()
    yield server, f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    listener.close()


def post_many(sender: HttpSender, url: str, count: int, pause_s: float = 0.0) -> list[str]:
    results = []
    for i in range(count):
        outcome = sender.post(
            url, f'{{"n":{i}}}', {"content-type": "application/json", "webhook-id": f"msg_{i}"}
        )
        results.append(outcome.result)
        time.sleep(pause_s)
    return results


def test_one_keep_alive_connection_carries_a_threads_requests(raw_server) -> None:
    server, url = raw_server
    sender = HttpSender(timeout_s=2)
    assert post_many(sender, url, 20) == ["sent"] * 20
    sender.close()
    assert server.connections == 1
    assert server.requests == [f'{{"n":{i}}}'.encode() for i in range(20)]


@pytest.mark.parametrize("mode", ["close", "drop_idle"])
def test_a_connection_the_server_closed_is_replaced_before_the_next_request(
    raw_server, mode: str
) -> None:
    server, url = raw_server
    server.mode = mode
    sender = HttpSender(timeout_s=2)
    assert post_many(sender, url, 3, pause_s=0.1) == ["sent"] * 3
    sender.close()
    assert server.connections == 3
    assert len(server.requests) == 3


def test_a_slow_answer_is_a_timeout_to_retry(raw_server) -> None:
    server, url = raw_server
    server.delay_s = 0.5
    sender = HttpSender(timeout_s=0.1)
    outcome = sender.post(url, "{}", {"webhook-id": "msg_slow"})
    sender.close()
    assert outcome.result == "retry"
    assert outcome.status is None
    assert "timed out" in (outcome.error or "")


def test_a_refused_connection_is_a_retry() -> None:
    sender = HttpSender(timeout_s=1)
    outcome = sender.post(f"http://127.0.0.1:{free_port()}/hook", "{}", {"webhook-id": "m"})
    sender.close()
    assert outcome.result == "retry"
    assert "ConnectionRefusedError" in (outcome.error or "")
