#!/usr/bin/python3
"""webhook_receiver.py: a webhook receiver for the end-to-end tests (standard library only).

It listens on 127.0.0.1 (never anything else) on a free port, verifies every request's
Standard Webhooks signature against the secrets it is given, records what arrived, and
answers as each path is told to: fail the first N requests, sleep past the sender's timeout,
redirect, or answer with any status.

In a test:
    with Receiver(secrets=[secret]) as rx:
        rx.behave("/flaky", fail_first=3)
        url = rx.url("/flaky")
        ...
        rx.requests  # list of Request

Standalone (for trying a stack by hand):
    webhook_receiver.py [--port N] [--secret whsec_...]   prints one JSON line per request
"""
import base64
import hashlib
import hmac
import http.server
import json
import sys
import threading
import time


class Request:
    """One request as received: path, headers (lower-case names), body bytes, when, what the
    signature check found, and the status answered (None when the receiver never answered)."""

    def __init__(self, path, headers, body, at):
        self.path = path
        self.headers = headers
        self.body = body
        self.at = at
        self.webhook_id = headers.get("webhook-id")
        self.timestamp = headers.get("webhook-timestamp")
        self.signature = headers.get("webhook-signature", "")
        self.verified_with = []  # indices of the secrets that verified one of the signatures
        self.n_signatures = 0
        self.status = None      # the status this receiver chose to answer
        self.answered = False   # True once the answer was written (False: the sender gave up)

    @property
    def verified(self):
        return bool(self.verified_with)

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Request %s id=%s status=%s verified=%s>" % (
            self.path, self.webhook_id, self.status, self.verified_with)


def secret_key(secret):
    """The HMAC key of a whsec_ secret: the base64-decoded part after the prefix."""
    if secret.startswith("whsec_"):
        secret = secret[len("whsec_"):]
    return base64.b64decode(secret)


def sign(secret, msg_id, timestamp, body):
    """The v1 signature (without the "v1," prefix) of body, computed here independently of the C
    code: base64(HMAC-SHA256(key, "id.timestamp.body"))."""
    content = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return base64.b64encode(hmac.new(secret_key(secret), content, hashlib.sha256).digest()).decode()


def verify(secrets, msg_id, timestamp, signature_header, body):
    """Returns (indices of secrets that verified, number of signatures in the header)."""
    found = []
    sigs = [s for s in signature_header.split(" ") if s]
    for i, secret in enumerate(secrets):
        want = sign(secret, msg_id, timestamp, body)
        for s in sigs:
            version, _, value = s.partition(",")
            if version == "v1" and hmac.compare_digest(value, want):
                found.append(i)
                break
    return found, len(sigs)


class Receiver:
    """A threaded HTTP receiver on 127.0.0.1:<free port>."""

    def __init__(self, secrets=()):
        self.secrets = list(secrets)
        self.requests = []
        self._behaviour = {}
        self._served = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                receiver._handle(self)

            def do_GET(self):
                receiver._handle(self)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        return False

    def url(self, path="/hook", host="127.0.0.1"):
        return "http://%s:%d%s" % (host, self.port, path)

    def behave(self, path, status=200, fail_first=0, fail_status=500, sleep=0.0,
               location=None, body=b'{"received":true}', headers=None):
        """How to answer requests to path: the first fail_first get fail_status, then status.
        sleep: seconds to wait before answering; location: a Location header (for 3xx)."""
        with self._lock:
            self._behaviour[path] = dict(status=status, fail_first=fail_first,
                                         fail_status=fail_status, sleep=sleep,
                                         location=location, body=body,
                                         headers=dict(headers or {}))

    def _handle(self, h):
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        req = Request(h.path, headers, body, time.time())
        if req.webhook_id and req.timestamp:
            req.verified_with, req.n_signatures = verify(self.secrets, req.webhook_id, req.timestamp,
                                                         req.signature, body)
        with self._cond:
            b = self._behaviour.get(h.path, dict(status=200, fail_first=0, fail_status=500,
                                                 sleep=0.0, location=None,
                                                 body=b'{"received":true}', headers={}))
            n = self._served.get(h.path, 0)
            self._served[h.path] = n + 1
            status = b["fail_status"] if n < b["fail_first"] else b["status"]
            self.requests.append(req)
            self._cond.notify_all()
        req.status = status
        if b["sleep"]:
            time.sleep(b["sleep"])
        try:
            h.send_response(status)
            if b["location"]:
                h.send_header("Location", b["location"])
            for k, v in b["headers"].items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(b["body"])))
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(b["body"])
            h.wfile.flush()
            req.answered = True
        except OSError:
            pass  # the sender gave up (its timeout): it never saw this answer
        h.close_connection = True

    def received(self, path=None):
        """The requests so far (to path, when given)."""
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_for(self, n, path=None, timeout=10.0):
        """Waits until at least n requests (to path) arrived; returns them."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if path is None or r.path == path]
                if len(got) >= n:
                    return got
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("receiver: want %d request(s) to %s, got %d" % (
                        n, path or "any path", len(got)))
                self._cond.wait(left)


# ------------------------------------------------------------ helpers for the stack tests

def _lib():
    import lib
    return lib


def make_delivery(client, url, event_type="case.completed", due_ms=None):
    """Creates a case of client (dict from lib.new_client_full) through the API with
    clientWebhookUrl = url, moves it by SQL to the state the event reports, and queues the
    event in the outbox the way src/store/outbox.c does (same envelope, deterministic
    event_id). The case's internal events are marked done so no worker acts on the case.
    Returns dict caseId, eventId, body (str, the exact bytes stored)."""
    lib = _lib()
    body = lib.valid_case_body()
    body["clientWebhookUrl"] = url
    r = lib.post("/cases", body, key=client["key"])
    if r.status == 400:
        # A URL the API refuses (not http, CR/LF): as if it came from an older version or an
        # operator's edit; the case gets a harmless one.
        body["clientWebhookUrl"] = "http://127.0.0.1:9/unused"
        r = lib.post("/cases", body, key=client["key"])
    case_id = lib.expect_ok(r, 201)["caseId"]
    now = lib.now_ms()
    lib.sql("UPDATE events SET state = 'done', done_at = %d WHERE case_id = '%s'" % (now, case_id))
    if event_type == "case.completed":
        lib.sql("UPDATE cases SET status = 'COMPLETED', result_status = 'goal_achieved',"
                " result = '{\"signedW9Received\": true}', attempt_count = 2,"
                " updated_at = %d, finished_at = %d WHERE id = '%s'" % (now, now, case_id))
    elif event_type == "case.failed":
        lib.sql("UPDATE cases SET status = 'FAILED', result_status = 'BOUNCED',"
                " failure_reason = 'smtp; 550 5.1.1 no such user', attempt_count = 1,"
                " updated_at = %d, finished_at = %d WHERE id = '%s'" % (now, now, case_id))
    else:
        raise ValueError(event_type)
    c = lib.get_case(case_id, key=client["key"])
    data = {k: c.get(k) for k in ("caseId", "status", "channel", "attemptCount", "attachments",
                                  "clientReferenceId", "metadata", "resultStatus", "result",
                                  "failureReason")}
    event_id = "evt_%s_%s_%d" % (case_id, event_type.replace(".", "_"), c["updatedAt"])
    envelope = json.dumps({"event_id": event_id, "event_type": event_type,
                           "timestamp": c["updatedAt"], "data": data}, separators=(",", ":"))
    lib.sql("INSERT INTO webhook_deliveries (event_id, client_id, case_id, event_type, url, body,"
            " state, attempts, next_attempt_at, created_at) VALUES (%s, %s, %s, %s, %s, %s,"
            " 'pending', 0, %d, %d)" % (
                lib.sql_str(event_id), lib.sql_str(client["clientId"]), lib.sql_str(case_id),
                lib.sql_str(event_type), lib.sql_str(url), lib.sql_str(envelope),
                now if due_ms is None else due_ms, now))
    return {"caseId": case_id, "eventId": event_id, "body": envelope}


def deliver(case_id=None, allow_private=True, loopback_only=True, offset_s=0, env=None,
            expect_rc=0, budget_s=60):
    """Runs "offloadctl webhook deliver --once" (limited to case_id when given) with the
    [webhook] settings passed through the environment, under faketime when offset_s is not 0.
    loopback_only keeps every test from reaching past 127.0.0.1 even if something is wrong.
    Returns the JSON stats {delivered, failed, dead, ok}."""
    import os
    import subprocess
    lib = _lib()
    e = lib.env()
    penv = dict(os.environ)
    penv["OFFLOAD_WEBHOOK_ALLOW_PRIVATE"] = "true" if allow_private else "false"
    penv["OFFLOAD_WEBHOOK_LOOPBACK_ONLY"] = "true" if loopback_only else "false"
    penv.update(env or {})
    cmd = [os.path.join(e.bin, "offloadctl"), "-c", e.config, "--json", "webhook", "deliver",
           "--once", "--budget", str(budget_s)]
    if case_id:
        cmd += ["--case", case_id]
    if offset_s:
        cmd = lib.faketime_prefix("%+ds" % offset_s) + cmd
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=penv, timeout=300)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    assert p.returncode == expect_rc, "webhook deliver exited %d (want %d): %s %s" % (
        p.returncode, expect_rc, out, err)
    try:
        stats = json.loads(out)
    except ValueError:
        raise AssertionError("webhook deliver: output is not JSON: %r (stderr %r)" % (out, err))
    stats["stderr"] = err
    return stats


DELIVERY_COLUMNS = ("state", "attempts", "next_attempt_at", "last_status_code", "last_error",
                    "last_response_body", "delivered_at", "lease_owner", "lease_until")


def delivery_row(event_id):
    """The delivery's columns (DELIVERY_COLUMNS) as a dict; numbers as int, NULL as None."""
    lib = _lib()
    row = lib.sql_one("SELECT %s FROM webhook_deliveries WHERE event_id = %s" % (
        ", ".join(DELIVERY_COLUMNS), lib.sql_str(event_id)))
    d = dict(zip(DELIVERY_COLUMNS, row))
    for k in ("attempts", "next_attempt_at", "last_status_code", "delivered_at", "lease_until"):
        if d[k] is not None:
            d[k] = int(d[k])
    return d


def retire(case_ids):
    """Marks the still pending deliveries of these cases dead so no later pass sends them to a
    receiver that is gone."""
    lib = _lib()
    ids = [c for c in case_ids if c]
    if ids:
        lib.sql("UPDATE webhook_deliveries SET state = 'dead', last_error = 'test finished'"
                " WHERE state = 'pending' AND case_id IN (%s)" % ", ".join(lib.sql_str(c) for c in ids))


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="Print webhook deliveries and check their signatures.")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", action="append", default=[])
    args = ap.parse_args(argv[1:])
    rx = Receiver(secrets=args.secret)
    if args.port:
        rx._server.server_close()
        rx._server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port),
                                                     rx._server.RequestHandlerClass)
        rx.port = args.port
        rx._thread = threading.Thread(target=rx._server.serve_forever, daemon=True)
    with rx:
        print("listening on %s" % rx.url("/"), flush=True)
        seen = 0
        try:
            while True:
                reqs = rx.wait_for(seen + 1, timeout=3600)
                for r in reqs[seen:]:
                    print(json.dumps({"path": r.path, "webhook-id": r.webhook_id,
                                      "timestamp": r.timestamp, "verified": r.verified,
                                      "body": r.body.decode("utf-8", "replace")}), flush=True)
                seen = len(reqs)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
