"""A local stand-in for a host's provisioning endpoint, for the http adapter to call.

Each POST takes the next scripted answer: an HTTP status, or "timeout" (the
server waits longer than the client will). Requests are recorded with their
headers and raw body. Nothing here is shipped with the application.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

SECRET = "host-shared-secret-0123456789"


class FakeHost:
    def __init__(self) -> None:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/provision"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._lock = threading.Lock()
        self.stall_seconds = 1.0
        self.reset()

    def start(self) -> FakeHost:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def reset(self, *answers: int | str) -> None:
        with self._lock:
            self.script: list[int | str] = list(answers)
            self.requests: list[dict[str, Any]] = []

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            answer = self.script.pop(0) if self.script else 200
            self.requests.append({"headers": dict(request.headers), "body": request.get_data()})
        if answer == "timeout":
            time.sleep(self.stall_seconds)
            answer = 200
        return Response("ok" if answer == 200 else "no", status=int(answer))(
            environ, start_response
        )
