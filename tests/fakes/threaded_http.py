"""The part every thread-served HTTP stand-in shares: listen in a background thread, stop."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StandInHTTPServer(ThreadingHTTPServer):
    """A threaded server that answers like a real one under load.

    A listen backlog of 5 (the default) drops connections under a burst (the client's SYN retry
    costs it a second), and Nagle's algorithm holds back each small write (a streamed event)
    until the previous one is acknowledged: a delayed-ACK stall of tens of milliseconds.
    """

    request_queue_size = 1024

    def get_request(self) -> tuple[socket.socket, object]:
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address


class ThreadedHTTPStandIn:
    """Base of the stand-ins served by ``http.server`` from a daemon thread."""

    server_class: type[ThreadingHTTPServer] = StandInHTTPServer
    thread_name = "stand-in"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        """Listen with ``handler`` in a background thread."""
        self._httpd = self.server_class((self._host, self._port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=self.thread_name, daemon=True
        )
        self._thread.start()

    def _shutdown(self) -> None:
        """Stop listening (idempotent)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def origin(self) -> str:
        """``http://host:port`` of the running server."""
        assert self._httpd is not None, "start() first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"
