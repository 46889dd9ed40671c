"""One fake OpenAI-compatible HTTP endpoint on 127.0.0.1 for the tests (judges, LLM prompt writers, a vLLM
server stand-in): each test says only how it answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    """`answer(path, headers, body) -> (status, payload)` for each POST (payload None: no body); a GET (e.g.
    /v1/models) lists `served`. `url` is the /v1 base a client is given."""

    def __init__(self, answer: Callable[[str, dict, dict], tuple[int, dict | None]], served: str = "served-llava"):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status: int, payload: dict | None) -> None:
                self.send_response(status)
                if payload is None:
                    self.end_headers()
                    return
                data = json.dumps(payload).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):     # the client gave up (a timeout test)
                    pass

            def do_GET(self):
                self._send(200, {"data": [{"id": served}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._send(*answer(self.path, self.headers, body))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def chat_reply(text: str, **extra) -> tuple[int, dict]:
    """A 200 chat-completions answer with `text` as the message (plus e.g. usage=...)."""
    return 200, {"choices": [{"message": {"content": text}}], **extra}
