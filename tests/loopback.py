"""The tests' loopback HTTP server: threaded, and quiet about clients that hang up early."""
from __future__ import annotations

import http.server
import sys


class LoopbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A fetcher that stops reading at its size limit or timeout is what several tests check: not a server error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
