#!/usr/bin/python3
"""webhook_receiver: a local receiver of branchmark-notify's webhooks for the
tests (Debian's python3, standard library only).

POST /hook/NAME: checks X-Branchmark-Signature (sha256=HMAC-SHA256 of the
body with NAME's secret; 401 when wrong or missing), requires an
Idempotency-Key (400 without) and a JSON body, and appends one JSON line per
request to LOG: {"endpoint", "key", "kind", "branch", "first": true|false}.
"first" is false for a key seen before; the seen keys are read back from LOG
at start, so deduplication survives a restart, as a real receiver's store
would.  Answers 200 to every well-signed request, duplicates included.

  webhook_receiver.py --port P --log FILE --secret NAME=SECRET [--secret ...]
"""
import argparse
import hashlib
import hmac
import http.server
import json
import os
import signal
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--secret", action="append", default=[])
    args = ap.parse_args()
    secrets = dict(s.split("=", 1) for s in args.secret)
    seen = set()
    if os.path.exists(args.log):
        with open(args.log) as f:
            for line in f:
                seen.add(json.loads(line)["key"])
    log = open(args.log, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):
            sys.stderr.write("receiver: " + (fmt % a) + "\n")

        def answer(self, code, text):
            body = (json.dumps({"result": text}) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            name = self.path[len("/hook/"):] if self.path.startswith("/hook/") else None
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if name not in secrets:
                return self.answer(404, "unknown endpoint")
            want = "sha256=" + hmac.new(secrets[name].encode(), body, hashlib.sha256).hexdigest()
            got = self.headers.get("X-Branchmark-Signature", "")
            if not hmac.compare_digest(want, got):
                return self.answer(401, "bad signature")
            key = self.headers.get("Idempotency-Key")
            if not key:
                return self.answer(400, "no Idempotency-Key")
            try:
                doc = json.loads(body)
            except ValueError:
                return self.answer(400, "not JSON")
            first = key not in seen
            seen.add(key)
            log.write(json.dumps({"endpoint": name, "key": key, "kind": doc.get("kind"),
                                  "branch": doc.get("branch"), "first": first}) + "\n")
            return self.answer(200, "accepted" if first else "duplicate, ignored")

    server = http.server.HTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        log.close()


if __name__ == "__main__":
    main()
