"""A real HTTP server that answers slowly on purpose: the head at once, then one line every
``interval`` seconds, so no single read waits long but the answer as a whole never comes in time.
Tests of time limits use it for calendar feeds and webhook receivers."""

from __future__ import annotations

import socket
import threading


class SlowHttp:
    def __init__(
        self,
        head: bytes,
        line: str,
        path: str,
        *,
        interval: float = 0.2,
        lines: int = 300,
    ) -> None:
        """``head`` is sent at once; then ``line.format(n=...)`` every ``interval`` s, ``lines`` times."""
        self.head, self.line, self.path = head, line, path
        self.interval, self.lines = interval, lines
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.closed = threading.Event()
        #: Set once a client has been sent the head.
        self.connected = threading.Event()
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}{self.path}"

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(self.head)
                self.connected.set()
                for n in range(self.lines):
                    if self.closed.wait(self.interval):
                        return
                    conn.sendall(self.line.format(n=n).encode())
            except OSError:
                return

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


#: The head of a calendar feed that never finishes.
CALENDAR_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\n"
