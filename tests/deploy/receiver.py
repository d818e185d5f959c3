"""The compose test's stand-in for a county's SMS gateway and its WeCom / DingTalk group robots:
an HTTP server on port 8080 of a container on compose's network, run as `python -c` with this
file's text in the Rollcall image (tests/deploy/test_compose.py). It answers as they do (the
robots `errcode` 0, the gateway a 2xx) and prints each request as one JSON line, which the test
reads from the container's log. Standard library only: it runs in the image."""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Requests are served on threads: one line is written whole before the next begins.
PRINTING = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        line = json.dumps({"path": self.path.split("?")[0], "key": self.headers.get(
            "Idempotency-Key"), "body": body}, ensure_ascii=False)
        with PRINTING:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        robot = self.path.startswith("/robot/")
        answer = json.dumps({"errcode": 0, "errmsg": "ok"} if robot else {"status": "queued"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args) -> None:  # one line per request, above, and nothing else
        pass


ThreadingHTTPServer(("0.0.0.0", 8080), Receiver).serve_forever()
