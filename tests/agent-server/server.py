#!/usr/bin/python3
"""server.py: a scripted OpenAI-compatible Chat Completions server for the agent's tests.

    server.py PORT SCRIPT.json [--port-file FILE] [--record FILE]

Listens on 127.0.0.1:PORT (0: any free port, written to --port-file once listening) and
answers POST .../chat/completions from SCRIPT.json; every request is checked and recorded
(one JSON line per request in --record). SIGTERM or SIGINT stops it. Tests in Python import
it instead and run AgentServer in a thread. Standard library only.

The script (JSON):
    {
      "model": "m",                 the model every request must name
      "api_key": "test",            requests must carry "Authorization: Bearer test"
      "marker": "tok-1",            optional: requests whose prompt lacks it belong to another
                                    case; they get the "foreign" answers and no checks beyond
                                    the protocol, and consume no step
      "contains": ["Avery", ...],   text every own request's prompt must contain
      "draft_contains": [...],      ... every draft_message request's prompt
      "evaluate_contains": [...],   ... every evaluate_thread request's prompt
      "draft_message": [STEP, ...], answers to draft_message requests, in order
      "evaluate_thread": [STEP, ...],
      "after": {"draft_message": STEP, "evaluate_thread": STEP}
                                    answers once a list is used up (default: a violation
                                    and HTTP 500 "script exhausted")
    }
    STEP: {"content": OBJECT or STRING (an object is sent as its JSON text),
           "status": 200, "raw": "a body sent as is instead of a Chat Completions answer",
           "delay_ms": 0, "refusal": null, "finish_reason": "stop",
           "usage": {"prompt_tokens": .., "completion_tokens": .., "total_tokens": ..},
           "expect_contains": [...], "expect_absent": [...],
           "expect_fenced": [...]   text that must sit inside a data fence whose boundary the
                                    system prompt names}

A request that breaks a rule is answered HTTP 400 with the reasons (so the agent sees a
failure) and the reasons are kept in its record's "violations".
"""
import argparse
import json
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMES = ("draft_message", "evaluate_thread")
EVAL_KEYS = {"decision", "reply", "inputQuestion", "result", "reason"}
DECISIONS = {"GOAL_ACHIEVED", "REPLY", "NEEDS_INPUT", "REJECTED"}
FENCE_RE = re.compile(r"----- BEGIN UNTRUSTED DATA ([0-9a-f]{16,64}) -----")

FOREIGN = {
    "draft_message": {"content": {"subject": "Scripted server: a message",
                                  "body": "Hello,\n\nThis is a message from the scripted test server.\n"}},
    "evaluate_thread": {"content": {"decision": "NEEDS_INPUT", "reply": None,
                                    "inputQuestion": "Scripted server: this case is not in my script.",
                                    "result": None, "reason": None}},
}


def strict_problems(schema, path):
    """The ways schema breaks OpenAI's strict subset (doc/operator-guide.md, "The agent")."""
    out = []
    if not isinstance(schema, dict):
        return ["%s: not an object" % path]
    if "type" not in schema:
        out.append("%s: no type" % path)
    if "$ref" in schema:
        out.append("%s: $ref" % path)
    props = schema.get("properties")
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "object" in types:
        if not isinstance(props, dict):
            out.append("%s: object without properties" % path)
            props = {}
        if schema.get("additionalProperties") is not False:
            out.append("%s: additionalProperties is not false" % path)
        if sorted(schema.get("required") or []) != sorted(props):
            out.append("%s: required %r is not every property %r" % (path, schema.get("required"), sorted(props)))
        for k, v in props.items():
            out += strict_problems(v, "%s.%s" % (path, k))
    if "array" in types:
        out += strict_problems(schema.get("items"), path + "[]")
    return out


def schema_problems(name, schema):
    """The shape of the two calls (doc/operator-guide.md, "The agent"), exactly, and
    strict."""
    out = strict_problems(schema, name)
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return out + ["%s: no properties" % name]
    if name == "draft_message":
        if set(props) != {"subject", "body"}:
            out.append("draft_message: properties %r, want subject, body" % sorted(props))
        for k in ("subject", "body"):
            if props.get(k, {}).get("type") != "string":
                out.append("draft_message.%s: not a string" % k)
    else:
        if set(props) != EVAL_KEYS:
            out.append("evaluate_thread: properties %r, want %r" % (sorted(props), sorted(EVAL_KEYS)))
        d = props.get("decision", {})
        if d.get("type") != "string" or set(d.get("enum") or []) != DECISIONS or len(d.get("enum")) != 4:
            out.append("evaluate_thread.decision: %r" % d)
        for k in ("reply", "inputQuestion", "reason"):
            if sorted(props.get(k, {}).get("type") or []) != ["null", "string"]:
                out.append("evaluate_thread.%s: type %r, want [string, null]" % (k, props.get(k, {}).get("type")))
        rt = props.get("result", {}).get("type")
        if not isinstance(rt, list) or sorted(rt) != ["null", "object"]:
            out.append("evaluate_thread.result: type %r, want [object, null]" % rt)
    return out


def fenced(system, user, needle):
    """True when needle occurs in user only inside BEGIN/END fences whose boundary the system
    prompt names."""
    m = FENCE_RE.search(system) or re.search(r"UNTRUSTED DATA ([0-9a-f]{16,64}) -----", system)
    if not m:
        return False
    b = m.group(1)
    begin = "----- BEGIN UNTRUSTED DATA %s -----\n" % b
    end = "\n----- END UNTRUSTED DATA %s -----" % b
    found = False
    pos = 0
    while True:
        i = user.find(needle, pos)
        if i < 0:
            return found
        bi = user.rfind(begin, 0, i)
        ei = user.rfind(end, 0, i)
        if bi < 0 or ei > bi or user.find(end, i) < 0:
            return False
        found = True
        pos = i + 1


class AgentServer:
    """The scripted server. start() serves in a thread; requests (a list of records) and
    violations() are for assertions; stop() shuts it down."""

    def __init__(self, script, port=0, record_path=None):
        self.script = script
        self.lock = threading.Lock()
        self.requests = []
        self.steps = {n: list(script.get(n, [])) for n in NAMES}
        self.used = {n: 0 for n in NAMES}
        self.record_path = record_path
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/v1" % self.port
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="agent-server", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.thread:
            self.thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def violations(self):
        with self.lock:
            return [(r["n"], v) for r in self.requests for v in r["violations"]]

    def own(self, name=None):
        """The requests of this script's case (not foreign), optionally of one call name."""
        with self.lock:
            return [r for r in self.requests if not r["foreign"] and (name is None or r["name"] == name)]

    def remaining(self, name):
        with self.lock:
            return len(self.steps[name]) - self.used[name]

    # ------------------------------------------------------------------ handling

    def _check_and_pick(self, path, headers, raw):
        """Returns (record, step)."""
        rec = {"path": path, "headers": headers, "name": None, "body": None, "prompt": "",
               "system": "", "foreign": False, "violations": [], "at": time.time()}
        v = rec["violations"]
        if not path.endswith("/chat/completions"):
            v.append("path %r does not end with /chat/completions" % path)
        if headers.get("content-type", "").split(";")[0].strip() != "application/json":
            v.append("content-type %r" % headers.get("content-type"))
        want_auth = "Bearer %s" % self.script.get("api_key", "test")
        if headers.get("authorization") != want_auth:
            v.append("authorization header is %s" % ("missing" if "authorization" not in headers else "wrong"))
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            v.append("body is not JSON")
            return rec, None
        rec["body"] = body
        if not isinstance(body, dict):
            v.append("body is not an object")
            return rec, None
        if body.get("model") != self.script.get("model", "m"):
            v.append("model %r" % body.get("model"))
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in (
                    "system", "user", "assistant") for m in msgs):
            v.append("messages are not a list of {role, content}")
            msgs = []
        elif msgs[0].get("role") != "system":
            v.append("the first message is not the system prompt")
        rec["prompt"] = "\n".join(m["content"] for m in msgs if isinstance(m, dict) and isinstance(m.get("content"), str))
        rec["system"] = msgs[0]["content"] if msgs else ""
        rec["user"] = msgs[1]["content"] if len(msgs) > 1 else ""
        rec["n_messages"] = len(msgs)
        rf = body.get("response_format") or {}
        js = rf.get("json_schema") if isinstance(rf, dict) else None
        if not isinstance(rf, dict) or rf.get("type") != "json_schema" or not isinstance(js, dict):
            v.append("response_format is not json_schema: %r" % rf)
            return rec, None
        name = js.get("name")
        rec["name"] = name
        if name not in NAMES:
            v.append("json_schema name %r" % name)
            return rec, None
        if js.get("strict") is not True:
            v.append("json_schema strict is not true")
        v += schema_problems(name, js.get("schema"))
        if body.get("stream"):
            v.append("stream requested")
        marker = self.script.get("marker")
        if marker and marker not in rec["prompt"]:
            rec["foreign"] = True
            return rec, (self.script.get("foreign") or {}).get(name) or FOREIGN[name]
        for t in list(self.script.get("contains", [])) + list(
                self.script.get("draft_contains" if name == "draft_message" else "evaluate_contains", [])):
            if t not in rec["prompt"]:
                v.append("the prompt lacks %r" % t)
        with self.lock:
            i = self.used[name]
            if i < len(self.steps[name]):
                step = self.steps[name][i]
                self.used[name] += 1
                rec["step"] = i
            else:
                step = (self.script.get("after") or {}).get(name)
                rec["step"] = None
                if step is None:
                    v.append("script exhausted: no %s step %d" % (name, i))
                    step = {"status": 500, "raw": json.dumps({"error": {"message": "script exhausted"}})}
        for t in step.get("expect_contains", []):
            if t not in rec["prompt"]:
                v.append("the prompt lacks %r (step %s)" % (t, rec.get("step")))
        for t in step.get("expect_absent", []):
            if t in rec["prompt"]:
                v.append("the prompt has %r (step %s)" % (t, rec.get("step")))
        for t in step.get("expect_fenced", []):
            if not fenced(rec["system"], rec["user"], t):
                v.append("%r is not inside a data fence named by the system prompt" % t)
        return rec, step

    def answer(self, path, headers, raw):
        """(status, body bytes) for one request; records it."""
        rec, step = self._check_and_pick(path, headers, raw)
        with self.lock:
            rec["n"] = len(self.requests)
            self.requests.append(rec)
        if self.record_path:
            with self.lock, open(self.record_path, "a", encoding="utf-8") as f:
                f.write(json.dumps({k: rec[k] for k in rec if k != "headers"}) + "\n")
        if step is None or (rec["violations"] and not rec["foreign"]):
            msg = "; ".join(rec["violations"]) or "unusable request"
            return 400, json.dumps({"error": {"message": "scripted server: " + msg, "type": "invalid_request_error"}})
        if step.get("delay_ms"):
            time.sleep(step["delay_ms"] / 1000.0)
        status = int(step.get("status", 200))
        if "raw" in step:
            return status, step["raw"]
        content = step.get("content")
        if content is not None and not isinstance(content, str):
            content = json.dumps(content)
        prompt_tokens = max(1, len(rec["prompt"]) // 4)
        completion_tokens = max(1, len(content or "") // 4)
        usage = step.get("usage") or {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                      "total_tokens": prompt_tokens + completion_tokens}
        body = {
            "id": "chatcmpl-scripted-%d" % rec["n"], "object": "chat.completion", "created": int(time.time()),
            "model": self.script.get("model", "m"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content,
                                                 "refusal": step.get("refusal")},
                         "finish_reason": step.get("finish_reason", "stop")}],
            "usage": usage,
        }
        return status, json.dumps(body)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # quiet: the records are the log
                pass

            def _send(self, status, body):
                data = body.encode("utf-8") if isinstance(body, str) else body
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n > 0 else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body = server.answer(self.path, headers, raw)
                self._send(status, body)

            def do_GET(self):
                self._send(404, json.dumps({"error": {"message": "only POST /v1/chat/completions"}}))

        return Handler


def main(argv):
    ap = argparse.ArgumentParser(description="A scripted OpenAI-compatible server for tests.")
    ap.add_argument("port", type=int)
    ap.add_argument("script")
    ap.add_argument("--port-file")
    ap.add_argument("--record")
    a = ap.parse_args(argv[1:])
    with open(a.script, "r", encoding="utf-8") as f:
        script = json.load(f)
    srv = AgentServer(script, port=a.port, record_path=a.record)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.port)
        import os
        os.rename(a.port_file + ".tmp", a.port_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    srv.start()
    print("agent-server: listening on %s" % srv.url, file=sys.stderr, flush=True)
    stop.wait()
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
