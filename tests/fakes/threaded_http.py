"""The part every thread-served HTTP stand-in shares: listen in a background thread, stop."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ThreadedHTTPStandIn:
    """Base of the stand-ins served by ``http.server`` from a daemon thread."""

    server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer
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
