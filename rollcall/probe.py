"""Container health probes, standard library only so that a probe every few seconds stays cheap.

`python -m rollcall.probe ready` asks the service in this container for /readyz (NATS and the
database answer); `python -m rollcall.probe live` for /healthz (the process serves HTTP). The
port is ROLLCALL_HTTP_PORT, which the image sets for every service. Exit 0 when the answer is 200.
"""

import os
import sys
import urllib.error
import urllib.request

PATHS = {"live": "/healthz", "ready": "/readyz"}


def probe(kind: str, port: int, timeout: float = 3.0) -> bool:
    url = f"http://127.0.0.1:{port}{PATHS[kind]}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return False


def main(argv: list[str]) -> int:
    kind = argv[0] if argv else "ready"
    if kind not in PATHS:
        print("usage: python -m rollcall.probe [live|ready]", file=sys.stderr)
        return 2
    return 0 if probe(kind, int(os.environ.get("ROLLCALL_HTTP_PORT", "8080"))) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
