"""lib.py: helpers for the end-to-end tests (HTTP through nginx, SQL, offloadctl).

Standard library, plus openapi_check (python3-yaml, python3-jsonschema) on every
response. Every request goes to OFFLOAD_BASE_URL, which must be a loopback
address; the helpers refuse anything else.
"""
import base64
import calendar
import configparser
import hashlib
import hmac
import http.client as httpclient
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import uuid

import openapi_check

UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_MS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SENTINEL = 253402300799999
HTTP_TIMEOUT = 20.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class Env:
    """The stack's environment, read once."""

    def __init__(self):
        def need(name):
            v = os.environ.get(name)
            if not v:
                raise RuntimeError("environment variable %s is not set (source the stack's env file)" % name)
            return v

        self.base_url = need("OFFLOAD_BASE_URL").rstrip("/")
        u = urllib.parse.urlsplit(self.base_url)
        if u.scheme != "http" or u.hostname not in LOOPBACK_HOSTS:
            raise RuntimeError("OFFLOAD_BASE_URL must be http on loopback, got %r" % self.base_url)
        self.host = u.hostname
        self.port = u.port or 80
        self.prefix = u.path or ""
        self.api_key = need("OFFLOAD_API_KEY")
        self.api_key_id = os.environ.get("OFFLOAD_API_KEY_ID", "")
        self.client_id = need("OFFLOAD_CLIENT_ID")
        self.config = need("OFFLOAD_CONFIG")
        self.bin = need("OFFLOAD_BIN")
        self.src = os.environ.get("OFFLOAD_SRC", "")
        self.stack_dir = os.environ.get("OFFLOAD_STACK_DIR", "")
        self.db_socket = need("OFFLOAD_DB_SOCKET")
        self.db_name = os.environ.get("OFFLOAD_DB_NAME", "offload")
        self.files_dir = need("OFFLOAD_FILES_DIR")


_env = None


def env():
    global _env
    if _env is None:
        _env = Env()
    return _env


# ---------------------------------------------------------------------------- HTTP

class Response:
    """status, headers (lower-cased names -> list of values), json (or None), raw bytes."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        self.json = None
        try:
            self.json = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def header(self, name, default=None):
        v = self.headers.get(name.lower())
        return v[0] if v else default

    def __iter__(self):
        # allows: status, headers, body, raw = http(...)
        return iter((self.status, self.headers, self.json, self.raw))

    def __repr__(self):
        return "<HTTP %s %s>" % (self.status, self.raw[:300])


_DEFAULT = object()


def http(method, path, body=None, key=_DEFAULT, headers=None, raw_body=None, content_type=_DEFAULT):
    """Sends one request to OFFLOAD_BASE_URL + path (path sent as is, so it may carry
    percent-encodings and a query string).

    body: a JSON-able value (serialised, content-type application/json unless
    content_type says otherwise); raw_body: bytes sent as is (no content-type unless given).
    key: the x-api-key (default: the stack's key; None: no header).
    Returns a Response, which also unpacks as (status, headers, json_or_None, raw).
    """
    e = env()
    if not path.startswith("/"):
        raise ValueError("path must start with /")
    hdrs = {}
    if key is _DEFAULT:
        key = e.api_key
    if key is not None:
        hdrs["x-api-key"] = key
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        if content_type is _DEFAULT:
            content_type = "application/json"
    elif raw_body is not None:
        data = raw_body
    if content_type is not _DEFAULT and content_type is not None:
        hdrs["content-type"] = content_type
    if headers:
        hdrs.update(headers)
    conn = httpclient.HTTPConnection(e.host, e.port, timeout=HTTP_TIMEOUT)
    try:
        conn.putrequest(method, e.prefix + path, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if data is not None or method in ("POST", "PUT", "PATCH"):
            conn.putheader("content-length", str(len(data or b"")))
        conn.endheaders()
        if data:
            try:
                conn.send(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered early (413); read what it said
        resp = conn.getresponse()
        raw = resp.read()
        hs = {}
        for k, v in resp.getheaders():
            hs.setdefault(k.lower(), []).append(v)
        return openapi_check.checked(method, path, Response(resp.status, hs, raw))
    finally:
        conn.close()


def get(path, **kw):
    return http("GET", path, **kw)


def post(path, body=None, **kw):
    return http("POST", path, body=body, **kw)


# ------------------------------------------------------------------ envelope checks

def _ctx(r):
    return "(HTTP %s, body %r)" % (r.status, r.raw[:500])


def check_json_ct(r):
    ct = r.header("content-type", "")
    assert ct.split(";")[0].strip().lower() == "application/json", \
        "content-type is %r, want application/json %s" % (ct, _ctx(r))


def expect_ok(r, status=200):
    """Checks a success envelope with the given status; returns data."""
    assert r.status == status, "want HTTP %s, got %s" % (status, _ctx(r))
    check_json_ct(r)
    b = r.json
    assert isinstance(b, dict), "body is not a JSON object %s" % _ctx(r)
    assert set(b.keys()) == {"ok", "data"}, "success envelope keys are %s %s" % (sorted(b), _ctx(r))
    assert b["ok"] is True, "ok is not true %s" % _ctx(r)
    assert isinstance(b["data"], dict), "data is not an object %s" % _ctx(r)
    return b["data"]


def expect_err(r, status, code, msg_prefix=None, msg_contains=None):
    """Checks an error envelope: status, code, non-empty message; returns message."""
    assert r.status == status, "want HTTP %s %s, got %s" % (status, code, _ctx(r))
    check_json_ct(r)
    b = r.json
    assert isinstance(b, dict), "body is not a JSON object %s" % _ctx(r)
    assert set(b.keys()) == {"ok", "error"}, "error envelope keys are %s %s" % (sorted(b), _ctx(r))
    assert b["ok"] is False, "ok is not false %s" % _ctx(r)
    err = b["error"]
    assert isinstance(err, dict), "error is not an object %s" % _ctx(r)
    assert set(err.keys()) == {"code", "message"}, "error keys are %s %s" % (sorted(err), _ctx(r))
    assert err["code"] == code, "want code %s, got %s" % (code, _ctx(r))
    msg = err["message"]
    assert isinstance(msg, str) and msg.strip(), "message is empty %s" % _ctx(r)
    if msg_prefix is not None:
        assert msg.startswith(msg_prefix), "message should start with %r %s" % (msg_prefix, _ctx(r))
    if msg_contains is not None:
        assert msg_contains in msg, "message should contain %r %s" % (msg_contains, _ctx(r))
    return msg


# ---------------------------------------------------------------------------- SQL

def sql_str(s):
    """A SQL literal for any Python str (hex-encoded, so no quoting pitfalls)."""
    if s is None:
        return "NULL"
    b = s.encode("utf-8")
    if not b:
        return "''"
    return "CONVERT(X'%s' USING utf8mb4)" % b.hex()


def _unescape(v):
    if v == "NULL":
        return None
    if "\\" not in v:
        return v
    out = []
    i = 0
    while i < len(v):
        c = v[i]
        if c == "\\" and i + 1 < len(v):
            n = v[i + 1]
            out.append({"n": "\n", "t": "\t", "0": "\0", "\\": "\\"}.get(n, n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sql(query):
    """Runs query as root over the stack's socket; returns rows as lists of str (None for NULL)."""
    e = env()
    p = subprocess.run(
        ["mariadb", "--socket=" + e.db_socket, "-uroot", e.db_name, "-N", "-B", "-e", query],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise AssertionError("SQL failed: %s\n%s" % (query[:500], p.stderr.decode("utf-8", "replace")))
    out = p.stdout.decode("utf-8")
    rows = []
    for line in out.split("\n"):
        if line == "":
            continue
        rows.append([_unescape(v) for v in line.split("\t")])
    return rows


def park_other_cases(keep_id, days=30):
    """Moves the due time of every other open case days later, so that a worker pass run with
    a clock far ahead (faketime) works only keep_id's case and not the cases other test files
    left behind (their follow-ups would come due too, and be drafted first)."""
    sql("UPDATE cases SET next_action_at = next_action_at + %d WHERE id <> %s"
        " AND next_action_at IS NOT NULL AND status NOT IN ('COMPLETED', 'FAILED')"
        % (days * 86400000, sql_str(keep_id)))


def nginx_start(work):
    """Starts an nginx of a test's own from work/nginx.conf (pid work/nginx.pid, error log
    work/error.log) and returns once its pid file exists."""
    r = subprocess.run(["nginx", "-p", work + "/", "-c", os.path.join(work, "nginx.conf"),
                        "-e", os.path.join(work, "error.log")], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0, "nginx did not start: %s" % r.stdout.decode(errors="replace")
    deadline = time.monotonic() + 10
    while not os.path.exists(os.path.join(work, "nginx.pid")) and time.monotonic() < deadline:
        time.sleep(0.05)


def nginx_stop(work):
    """Stops the nginx nginx_start(work) started (waiting up to 10 s for it to go), then
    removes work."""
    pid_file = os.path.join(work, "nginx.pid")
    if os.path.exists(pid_file):
        with open(pid_file) as f:
            pid = int(f.read().strip())
        os.kill(pid, 15)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    shutil.rmtree(work, ignore_errors=True)


def sql_one(query):
    rows = sql(query)
    assert len(rows) == 1, "want one row from %s, got %r" % (query, rows)
    return rows[0][0] if len(rows[0]) == 1 else rows[0]


def attachment_bytes(attachment_id):
    """The bytes of an attachment as the database holds them (attachment_chunks, in order)."""
    rows = sql("SELECT seq, HEX(data) FROM attachment_chunks WHERE attachment_id = %s ORDER BY seq"
               % sql_str(attachment_id))
    assert [int(r[0]) for r in rows] == list(range(len(rows))), "chunks of %s not numbered 0..n-1: %r" % (
        attachment_id, [r[0] for r in rows])
    return b"".join(bytes.fromhex(r[1]) for r in rows)


def files_signing_key():
    return bytes.fromhex(sql_one("SELECT HEX(value) FROM settings WHERE name='files_signing_key'"))


def sign_link(attachment_id, expires):
    mac = hmac.new(files_signing_key(), ("/files/%s\n%d" % (attachment_id, expires)).encode(),
                   hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


# ---------------------------------------------------------------------- offloadctl

def ctl(*args):
    """Runs offloadctl -c CONFIG args...; returns stdout (str); raises on failure."""
    e = env()
    cmd = [os.path.join(e.bin, "offloadctl"), "-c", e.config] + [str(a) for a in args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise AssertionError("offloadctl %s failed (%d): %s" % (
            " ".join(cmd[3:]), p.returncode, p.stderr.decode("utf-8", "replace")))
    return p.stdout.decode("utf-8")


def ctl_json(*args):
    out = ctl(*args)
    try:
        return json.loads(out)
    except ValueError:
        raise AssertionError("offloadctl %s: output is not JSON: %r" % (" ".join(map(str, args)), out[:500]))


def new_client_full(plan="SANDBOX"):
    """Creates a client and a key; returns a dict clientId, key, keyId, plan."""
    name = "e2e-%s-%s" % (plan.lower(), uuid.uuid4().hex[:8])
    c = ctl_json("client", "create", "--name", name, "--plan", plan, "--json")
    assert isinstance(c, dict) and c.get("clientId"), "client create: %r" % c
    assert c.get("plan") == plan and c.get("name") == name, "client create: %r" % c
    k = ctl_json("key", "create", "--client", c["clientId"], "--json")
    assert isinstance(k, dict) and k.get("key") and k.get("keyId"), "key create: %r" % k
    assert k.get("clientId") == c["clientId"], "key create: %r" % k
    return {"clientId": c["clientId"], "key": k["key"], "keyId": k["keyId"], "plan": plan,
            "webhookSecret": c.get("webhookSecret")}


def new_client(plan="SANDBOX"):
    c = new_client_full(plan)
    return c["clientId"], c["key"]


def new_key(client_id):
    k = ctl_json("key", "create", "--client", client_id, "--json")
    return k["keyId"], k["key"]


# -------------------------------------------------------------------------- cases

def valid_case_body():
    return {
        "clientReferenceId": "vendor_2048",
        "channel": "EMAIL",
        "maxAttempts": 3,
        "followUpDelayHours": 72,
        "goal": {
            "objective": "Collect a signed W-9 from the vendor",
            "knowledge": {"vendorName": "Northstar Supplies", "reason": "AP onboarding"},
        },
        "counterparty": {
            "address": "ap@northstar.example",
            "name": "Maya Chen",
            "company": "Northstar Supplies",
            "timezone": "America/Los_Angeles",
            "customData": {"vendorId": "vendor_2048"},
        },
        "senderPersona": {
            "name": "Avery",
            "role": "Accounts Payable",
            "company": "Example Corp",
            "tone": "friendly, concise",
        },
        "constraints": ["Email only"],
        "resultSchema": {
            "type": "object",
            "properties": {"signedW9Received": {"type": "boolean"}, "receivedAt": {"type": "string"}},
            "required": ["signedW9Received"],
        },
        "clientWebhookUrl": "https://hooks.example.com/offload",
        "metadata": {"source": "e2e", "n": 1},
    }


def minimal_case_body():
    return {
        "channel": "EMAIL",
        "goal": {"objective": "Collect a signed W-9"},
        "counterparty": {"address": "ap@northstar.example", "name": "Maya Chen"},
        "senderPersona": {"name": "Avery"},
    }


def create_case(body=None, key=_DEFAULT):
    """POSTs a case (valid_case_body by default), expects 201; returns the caseId."""
    r = post("/cases", body if body is not None else valid_case_body(), key=key)
    data = expect_ok(r, 201)
    assert set(data.keys()) == {"caseId"}, "POST /cases data: %r" % data
    assert UUID4_RE.match(data["caseId"]), "caseId is not a lowercase UUID v4: %r" % data["caseId"]
    return data["caseId"]


def get_case(case_id, key=_DEFAULT, query=""):
    return expect_ok(get("/cases/%s%s" % (case_id, query), key=key), 200)


def now_ms():
    return int(time.time() * 1000)


def iso_ms(ms):
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % (ms % 1000)


def month_start_ms(ms=None):
    if ms is None:
        ms = now_ms()
    t = time.gmtime(ms // 1000)
    return calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)) * 1000


def config_value(section, key):
    """A value from the stack's config file, with OFFLOAD_<SECTION>_<KEY> overriding; or None."""
    v = os.environ.get("OFFLOAD_%s_%s" % (section.upper(), key.upper()))
    if v:
        return v
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        cp.read(env().config)
    except configparser.Error:
        return None
    if cp.has_option(section, key):
        v = cp.get(section, key).strip()
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        return v
    return None


def find_config_key(key):
    """Looks for key in any section of the config; returns (section, value) or None."""
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        cp.read(env().config)
    except configparser.Error:
        return None
    for s in cp.sections():
        env_v = os.environ.get("OFFLOAD_%s_%s" % (s.upper(), key.upper()))
        if env_v:
            return s, env_v
        if cp.has_option(s, key):
            v = cp.get(s, key).strip()
            if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
                v = v[1:-1]
            return s, v
    return None


# ------------------------------------------------------------- worker, SMTP sink, IMAP
# Helpers for tests/e2e/test_worker_*.py: run offload-worker (optionally under faketime),
# read what the stack's SMTP sink received (DIR/outbox), feed inbound mail to
# offload-inbound or the stack's Dovecot. Everything stays on 127.0.0.1.

import email as _email  # noqa: E402
import email.policy as _email_policy  # noqa: E402
import tempfile as _tempfile  # noqa: E402

WORKER_TIMEOUT = 180.0
SUMMARY_RE = re.compile(r"pass: (\d+) events, (\d+) sent, (\d+) retried later")


def stack_env(name):
    """An environment variable the mail-enabled stack writes (OFFLOAD_SMTP_OUTBOX, ...)."""
    v = os.environ.get(name)
    if not v:
        raise AssertionError("environment variable %s is not set: the stack was started by a "
                             "tests/stack/stack without mail, or its env file was not sourced" % name)
    return v


class WorkerRun:
    """One offload-worker run: rc, stderr (str), and the summary counts of its last pass."""

    def __init__(self, cmd, rc, stderr):
        self.cmd = cmd
        self.rc = rc
        self.stderr = stderr
        self.events = self.sent = self.retried = None
        self.work_remains = "work remains" in stderr
        for line in stderr.splitlines():
            m = SUMMARY_RE.search(line)
            if m:
                self.events, self.sent, self.retried = (int(x) for x in m.groups())

    def tail(self, n=40):
        lines = self.stderr.rstrip().splitlines()
        return "\n".join(lines[-n:])

    def __repr__(self):
        return "<offload-worker rc=%s: %s>" % (self.rc, self.tail(5))


def worker_env():
    """The environment for offload-worker: the caller's, without OFFLOAD_MAIL_* overrides (the
    stack's config says where mail goes) and with webhooks held to loopback; fails unless SMTP
    and IMAP are on loopback."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("OFFLOAD_MAIL_")}
    # Webhooks of other test files' cases (https://hooks.example.com/...) must not leave loopback.
    e["OFFLOAD_WEBHOOK_LOOPBACK_ONLY"] = "true"
    for key in ("smtp_url", "imap_url"):
        cp = configparser.ConfigParser(interpolation=None, strict=False)
        cp.read(env().config)
        url = cp.get("mail", key, fallback="").strip()
        if url:
            host = urllib.parse.urlsplit(url).hostname
            assert host in LOOPBACK_HOSTS, "[mail] %s = %r is not on loopback: refusing to run the worker" % (
                key, url)
    return e


def worker_cmd(fake=None, args=()):
    """The command line of one worker pass; fake is a faketime offset such as '+73h'."""
    e = env()
    cmd = [os.path.join(e.bin, "offload-worker"), "-c", e.config, "--once"] + [str(a) for a in args]
    if fake:
        cmd = faketime_prefix(fake) + cmd
    return cmd


def faketime_prefix(offset):
    """Words that run a command with the clock moved by offset ('+73h', '+600s').

    libfaketime is preloaded through env(1) rather than the faketime wrapper: the wrapper
    forks (a kill reaches the wrapper, not the program) and keeps a named semaphore per pid
    that a killed run leaves behind, so a later wrapper with the same pid fails with
    "sem_open: File exists"."""
    import glob
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1") +
                   glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    assert found, "libfaketime.so.1 not found (apt-get install faketime)"
    return ["env", "LD_PRELOAD=" + found[0], "FAKETIME=" + offset]


def worker_pass(fake=None, args=(), timeout=WORKER_TIMEOUT, check=True):
    """Runs one offload-worker pass to its end; returns a WorkerRun. With check, asserts that
    it exited 0 and printed its summary line."""
    cmd = worker_cmd(fake, args)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=worker_env())
    run = WorkerRun(cmd, p.returncode, p.stderr.decode("utf-8", "replace"))
    if check:
        assert run.rc == 0, "%s exited %d; stderr:\n%s" % (" ".join(cmd), run.rc, run.tail())
        assert run.events is not None, "%s printed no summary line 'pass: N events, N sent, ...'; " \
            "stderr:\n%s" % (" ".join(cmd), run.tail())
    return run


def worker_start(fake=None, args=()):
    """Starts a worker pass in the background; returns (Popen, stderr file). stderr goes to a
    temporary file, so a chatty worker never blocks on a full pipe."""
    cmd = worker_cmd(fake, args)
    errf = _tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf, env=worker_env())
    p.cmd = cmd
    return p, errf


def worker_finish(p, errf, timeout=WORKER_TIMEOUT):
    """Waits for a worker started by worker_start; returns its WorkerRun (not checked)."""
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("%s did not finish within %ds" % (" ".join(p.cmd), timeout))
    errf.seek(0)
    text = errf.read().decode("utf-8", "replace")
    errf.close()
    return WorkerRun(p.cmd, p.returncode, text)


def worker_drain(fake=None, max_passes=30):
    """Runs passes (checked) until one ends with nothing left to claim, so that a backlog
    (work left by other test files) cannot make a test's pass stop at its time budget.
    Returns the runs; the last one is the pass that found nothing more to claim."""
    runs = []
    for _ in range(max_passes):
        run = worker_pass(fake=fake)
        runs.append(run)
        if not run.work_remains:
            return runs
    raise AssertionError("the worker still had work after %d passes; last stderr:\n%s" % (
        max_passes, runs[-1].tail()))


def worker_ready(ctx):
    """Once per run: works off whatever other test files left due, at the real time."""
    return ctx.once("worker-drained", lambda: worker_drain(max_passes=200))


def worker_stderr(runs):
    """The stderr of a list of runs (for failure messages), last lines only."""
    text = "\n".join(r.stderr.rstrip() for r in runs)
    return "\n".join(text.splitlines()[-60:])


class OutMail:
    """A message the SMTP sink stored: n, meta (mail_from, rcpt_tos, received_at), raw bytes,
    msg (email.message.EmailMessage, policy default)."""

    def __init__(self, n, path, meta, raw):
        self.n = n
        self.path = path
        self.meta = meta
        self.raw = raw
        self.msg = _email.message_from_bytes(raw, policy=_email_policy.default)

    @property
    def rcpts(self):
        return [a.lower() for a in self.meta.get("rcpt_tos", [])]

    def header(self, name):
        v = self.msg.get(name)
        return None if v is None else str(v)

    def text(self):
        """The text/plain body, decoded with its declared charset and transfer encoding, with
        CRLF line ends (as sent over SMTP) turned into LF."""
        part = self.msg.get_body(preferencelist=("plain",))
        assert part is not None, "message %s has no text/plain body" % self.path
        return part.get_content().replace("\r\n", "\n")

    def __repr__(self):
        return "<mail %06d to %s: %s>" % (self.n, self.rcpts, self.header("Subject"))


_outbox_cache = {}


def outbox_all():
    """Every message in the sink's outbox (a .eml shows only once its .json is there), oldest
    first. Parsed messages are cached by file name (the sink never rewrites a file)."""
    d = stack_env("OFFLOAD_SMTP_OUTBOX")
    out = []
    names = set(os.listdir(d))
    for name in sorted(names):
        m = re.match(r"^(\d+)\.eml$", name)
        if not m or (m.group(1) + ".json") not in names:
            continue
        path = os.path.join(d, name)
        if path not in _outbox_cache:
            with open(path, "rb") as f:
                raw = f.read()
            with open(os.path.join(d, m.group(1) + ".json"), "r", encoding="utf-8") as f:
                meta = json.load(f)
            _outbox_cache[path] = OutMail(int(m.group(1)), path, meta, raw)
        out.append(_outbox_cache[path])
    return out


def outbox_count():
    """How many messages the sink has stored (cheap: no parsing)."""
    d = stack_env("OFFLOAD_SMTP_OUTBOX")
    return sum(1 for n in os.listdir(d) if n.endswith(".eml"))


def outbox_to(address):
    """The stored messages whose envelope recipients include address, oldest first."""
    a = address.lower()
    return [m for m in outbox_all() if a in m.rcpts]


def smtp_set_mode(mode):
    """Writes the sink's mode file ('down-451', 'slow-MS', 'hold-MS'); None removes it."""
    path = stack_env("OFFLOAD_SMTP_MODE_FILE")
    if mode is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(mode + "\n")
    os.rename(tmp, path)


def smtp_log_count(needle):
    """How many lines of the sink's log (DIR/smtp.log) contain needle."""
    path = os.path.join(stack_env("OFFLOAD_STACK_DIR"), "smtp.log")
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        return sum(1 for line in f if needle in line)


def unique_address(prefix="w"):
    """A fresh recipient address (example.com: the sink keeps it; nothing leaves loopback)."""
    return "%s-%s@example.com" % (prefix, uuid.uuid4().hex[:12])


def running_case(tag, **over):
    """A case the worker has sent its first message for, with a follow-up after 24 h unless
    over (case body members) says otherwise: (caseId, address, that mail)."""
    addr = unique_address(tag)
    body = minimal_case_body()
    body["counterparty"] = {"address": addr, "name": "Maya Chen"}
    body["followUpDelayHours"] = 24
    body.update(over)
    cid = create_case(body)
    runs = worker_drain()
    mails = outbox_to(addr)
    c = get_case(cid)
    assert c["status"] == "RUNNING" and len(mails) == 1, "setup: %s, %d mails\n%s" % (
        c["status"], len(mails), worker_stderr(runs))
    return cid, addr, mails[0]


def poll(fn, timeout, interval=0.02, what="the condition"):
    """Calls fn() until it returns a true value, which is returned; fails after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("%s did not happen within %.1fs" % (what, timeout))
        time.sleep(interval)


def pause_case_for_input(case_id, question="Which tax year should the W-9 cover?"):
    """Puts a case in INPUT_NEEDED with a fresh PENDING request and no schedule, as the
    worker does when it pauses; returns the request id."""
    rid = str(uuid.uuid4())
    at = now_ms()
    sql("INSERT INTO input_requests (id, case_id, question, status, requested_at) VALUES (%s, %s, %s, 'PENDING', %d);"
        "UPDATE cases SET status='INPUT_NEEDED', input_request_id=%s, next_action_at=%d, updated_at=%d,"
        " version=version+1 WHERE id=%s" % (
            sql_str(rid), sql_str(case_id), sql_str(question), at, sql_str(rid), SENTINEL, at,
            sql_str(case_id)))
    return rid


def inbound_path():
    """$OFFLOAD_BIN/offload-inbound; fails clearly while it does not exist."""
    p = os.path.join(env().bin, "offload-inbound")
    if not os.access(p, os.X_OK):
        raise AssertionError("offload-inbound not built yet (%s is missing)" % p)
    return p


def inbound(raw, timeout=60):
    """Pipes one message (bytes) to offload-inbound -c CONFIG; returns (exit code, stderr)."""
    e = env()
    p = subprocess.run([inbound_path(), "-c", e.config], input=raw, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def _imap_curl(args, data=None, timeout=30):
    url = stack_env("OFFLOAD_IMAP_URL")
    u = urllib.parse.urlsplit(url)
    assert u.hostname in LOOPBACK_HOSTS, "OFFLOAD_IMAP_URL is not on loopback: %r" % url
    cfg = 'user = "%s:%s"\n' % (stack_env("OFFLOAD_IMAP_USER"), stack_env("OFFLOAD_IMAP_PASSWORD"))
    with _tempfile.NamedTemporaryFile("w", suffix=".curl") as cf:
        cf.write(cfg)
        cf.flush()
        cmd = ["curl", "--noproxy", "*", "-sS", "--max-time", "20", "-K", cf.name] + args
        p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("curl %s failed (%d): %s" % (" ".join(args), p.returncode,
                                                          p.stderr.decode("utf-8", "replace")))
    return p.stdout.decode("utf-8", "replace")


def imap_append(raw):
    """Appends one message (bytes) to the stack's Dovecot INBOX over IMAP."""
    url = stack_env("OFFLOAD_IMAP_URL")
    with _tempfile.NamedTemporaryFile(suffix=".eml") as f:
        f.write(raw)
        f.flush()
        _imap_curl([url, "-T", f.name])


def imap_uids():
    """The UIDs in the stack's INBOX."""
    out = _imap_curl([stack_env("OFFLOAD_IMAP_URL"), "-X", "UID SEARCH ALL"])
    uids = []
    for line in out.splitlines():
        if line.startswith("* SEARCH"):
            uids += [int(x) for x in line.split()[2:]]
    return uids


def outbox_last():
    """The highest message number in the sink's outbox (0 when empty); cheap (no parsing)."""
    d = stack_env("OFFLOAD_SMTP_OUTBOX")
    best = 0
    for name in os.listdir(d):
        m = re.match(r"^(\d+)\.eml$", name)
        if m:
            best = max(best, int(m.group(1)))
    return best


def outbox_since(last):
    """How many messages the sink stored after number last; cheap (no parsing)."""
    d = stack_env("OFFLOAD_SMTP_OUTBOX")
    n = 0
    for name in os.listdir(d):
        m = re.match(r"^(\d+)\.eml$", name)
        if m and int(m.group(1)) > last:
            n += 1
    return n
