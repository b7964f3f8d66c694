"""The examples' HTTP agent: `/` says who answers, `/health` passes unless started with `--failing-health`.

Told so, it behaves as a simulated instance would (the parity tests draw these from a scenario's behaviors):
`--healthy-after-ms N` fails its health checks for N ms after it starts, `--exit-after-ms N` exits after N ms
with `--exit-code` (default 1: a crash; 0: a clean end).

It listens on 127.0.0.1:$PORT, as the worker tells it, and reads the MN_* variables the worker sets. The three
example versions share this file; their manifests differ only in the arguments of `config.command`. It says on
stdout when it serves and logs each request but the health checks on stderr (`mn-deploy deployment logs`).
"""

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--greeting", default="hello")
parser.add_argument("--failing-health", action="store_true")
parser.add_argument("--healthy-after-ms", type=float, default=0.0)
parser.add_argument("--exit-after-ms", type=float)
parser.add_argument("--exit-code", type=int, default=1)
ARGS = parser.parse_args()
STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            warm = (time.monotonic() - STARTED) * 1000 >= ARGS.healthy_after_ms
            healthy = warm and not ARGS.failing_health
            self.answer(200 if healthy else 503, {"healthy": healthy})
        elif self.path == "/":
            self.answer(
                200,
                {
                    "greeting": ARGS.greeting,
                    "version": os.environ.get("MN_DEPLOYMENT_VERSION"),
                    "agent_id": os.environ.get("MN_AGENT_ID"),
                    "instance_id": os.environ.get("MN_INSTANCE_ID"),
                    "role": os.environ.get("MN_DEPLOYMENT_ROLE"),
                },
            )
        else:
            self.answer(404, {"error": "not found"})

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Every request but the health checks: one every few hundred ms would drown the rest."""
        if self.path != "/health":
            super().log_message(format, *args)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    print(f"{ARGS.greeting}: serving on 127.0.0.1:{server.server_port}", flush=True)
    if ARGS.exit_after_ms is not None:
        threading.Timer(ARGS.exit_after_ms / 1000, os._exit, (ARGS.exit_code,)).start()
    server.serve_forever()
