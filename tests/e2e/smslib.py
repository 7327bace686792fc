"""smslib.py: helpers for the SMS tests (tests/e2e/test_sms*.py) against the real Kannel of a
stack started with "tests/stack/stack up DIR --sms" (tests/stack/kannel.sh).

- stack(): the Kannel settings from the stack's env, or None (with a note) when the stack has
  no Kannel; in CI (CI=true) that is a failure, since CI must run these tests.
- out_messages() / wait_out(): what reached the carrier: DIR/sms-out.log, fakesmsc's log,
  parsed (line breaks and concatenated parts joined again, UCS-2 decoded).
- inject(): one incoming SMS through fakesmsc (stack sms-inject), so it travels bearerbox →
  smsbox → sms-service get-url → nginx /kannel/incoming → offload-api.
- kannel_stop() / kannel_start(): stack sms-stop / sms-start.
- kannel_get(), incoming(), dlr(): call /kannel/incoming and /kannel/dlr directly, as Kannel
  does (no API key; the shared secret in the query), for the reports and retries fakesmsc
  cannot produce.
Standard library only; everything stays on 127.0.0.1.
"""
import http.client as httpclient
import os
import random
import re
import subprocess
import urllib.parse

import lib
import openapi_check

TIMEOUT = 30.0
GOT_RE = re.compile(r"\bGot message (\d+): <(.*)>$")
HEAD_RE = re.compile(r"^(\S+) (\S+) (text|ucs-2|data|udh) ?(.*)$", re.S)


def stack():
    """The Kannel stack's settings (a dict), or None when the stack was started without --sms:
    then the caller returns at once (a skip with a note); under CI=true that is a failure."""
    if os.environ.get("OFFLOAD_KANNEL") != "fakesmsc":
        assert os.environ.get("CI") != "true", \
            "CI must run the e2e suite on a stack with --sms (tests/stack/stack up DIR --sms)"
        print("# note: no Kannel in this stack (tests/stack/stack up DIR --sms); SMS test skipped")
        return None
    return {
        "dir": os.environ["OFFLOAD_STACK_DIR"],
        "out": os.environ["OFFLOAD_KANNEL_SMS_OUT"],
        "sender": os.environ["OFFLOAD_KANNEL_SENDER"],
        "sendsms_url": os.environ["OFFLOAD_KANNEL_SENDSMS_URL"],
        "user": os.environ["OFFLOAD_KANNEL_USER"],
        "password_file": os.environ["OFFLOAD_KANNEL_PASSWORD_FILE"],
        "secret_file": os.environ["OFFLOAD_KANNEL_SECRET_FILE"],
    }


def _read_line(path):
    with open(path, encoding="utf-8") as f:
        return f.readline().rstrip("\r\n")


def secret():
    return _read_line(os.environ["OFFLOAD_KANNEL_SECRET_FILE"])


def unique_number():
    """A fresh E.164 number in the fictional +1 555 range (one open SMS case per number)."""
    return "+1555%07d" % random.SystemRandom().randrange(10 ** 7)


def sms_case_body(number, name="Maya Chen", objective="Confirm the delivery date for PO 4471"):
    body = lib.minimal_case_body()
    body["channel"] = "SMS"
    body["counterparty"] = {"address": number, "name": name}
    body["goal"] = {"objective": objective}
    return body


# ------------------------------------------------------------------ what fakesmsc received

class OutSms:
    """One SMS as the carrier got it: sender, receiver, coding ('text' GSM-7 or 'ucs-2'),
    text (str), parts (how many SMS it took)."""

    def __init__(self, sender, receiver, coding, text, parts):
        self.sender = sender
        self.receiver = receiver
        self.coding = coding
        self.text = text
        self.parts = parts

    def __repr__(self):
        return "<sms %s -> %s %s x%d: %r>" % (self.sender, self.receiver, self.coding, self.parts, self.text[:80])


def _unquote(s):
    return urllib.parse.unquote_to_bytes(s.replace("+", " "))


def _udh_concat(udh):
    """(reference, total, sequence) from a concatenation UDH (IEI 0 or 8), or None."""
    if len(udh) < 1:
        return None
    end = 1 + udh[0]
    i = 1
    while i + 1 < end and i + 1 < len(udh):
        iei, n = udh[i], udh[i + 1]
        v = udh[i + 2:i + 2 + n]
        if iei == 0 and n == 3 and len(v) == 3:
            return v[0], v[1], v[2]
        if iei == 8 and n == 4 and len(v) == 4:
            return (v[0] << 8) | v[1], v[2], v[3]
        i += 2 + n
    return None


def _looks_ucs2(data):
    """Parts of a concatenated message do not say their coding in fakesmsc's line: GSM-7 text
    comes as UTF-8, UCS-2 as UTF-16BE. UTF-16BE of text with any Latin character or space has
    NUL bytes, which UTF-8 text never has; failing UTF-8 or holding control bytes also says
    UCS-2. (A UCS-2 text of CJK alone with no space could be misread: the tests use none.)"""
    if len(data) % 2:
        return False
    if b"\0" in data:
        return True
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return any(ord(c) < 0x20 and c != "\n" for c in s)


def out_messages():
    """Every SMS in DIR/sms-out.log, in order (tests/stack/kannel.sh documents the format)."""
    path = os.environ.get("OFFLOAD_KANNEL_SMS_OUT")
    if not path or not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8", "surrogateescape")
    msgs = []
    groups = {}  # (sender, receiver, ref) -> {"msg": OutSms, "parts": {seq: bytes}, "total": n}
    last_text = None
    for line in raw.split("\n"):
        m = GOT_RE.search(line)
        if not m:
            continue
        payload = m.group(2)
        h = HEAD_RE.match(payload)
        if not h:
            # A line break inside a "text" message: fakesmsc logged the rest as a line of its own.
            if last_text is not None:
                last_text.text += "\n" + payload
            continue
        sender, receiver, kind, data = h.groups()
        last_text = None
        if kind == "text":
            last_text = OutSms(sender, receiver, "text", data, 1)
            msgs.append(last_text)
        elif kind == "ucs-2":
            msgs.append(OutSms(sender, receiver, "ucs-2", _unquote(data).decode("utf-16-be", "replace"), 1))
        elif kind == "data":
            msgs.append(OutSms(sender, receiver, "data", _unquote(data).decode("latin-1"), 1))
        else:
            udh_q, _, data_q = data.partition(" data ")
            udh = _unquote(udh_q)
            body = _unquote(data_q)
            cc = _udh_concat(udh)
            if cc is None:
                msgs.append(OutSms(sender, receiver, "udh", body.decode("latin-1"), 1))
                continue
            ref, total, seq = cc
            key = (sender, receiver, ref)
            g = groups.get(key)
            if g is None or seq in g["parts"]:
                g = {"msg": OutSms(sender, receiver, None, "", total), "parts": {}, "total": total}
                groups[key] = g
                msgs.append(g["msg"])
            g["parts"][seq] = body
            joined = b"".join(g["parts"][k] for k in sorted(g["parts"]))
            ucs2 = all(_looks_ucs2(p) for p in g["parts"].values())
            g["msg"].coding = "ucs-2" if ucs2 else "text"
            g["msg"].text = joined.decode("utf-16-be" if ucs2 else "utf-8", "replace")
            g["msg"].parts = len(g["parts"])
            g["msg"].total = total
    return msgs


def out_to(number):
    return [m for m in out_messages() if m.receiver == number]


def wait_out(number, n=1, timeout=TIMEOUT):
    """Waits until n SMS (all their parts) reached the carrier for number; returns them."""
    def done():
        got = out_to(number)
        if len(got) >= n and all(getattr(m, "total", m.parts) == m.parts for m in got):
            return got
        return None
    try:
        return lib.poll(done, timeout, interval=0.1, what="%d SMS to %s at fakesmsc" % (n, number))
    except AssertionError as e:
        raise AssertionError("%s; got %r\n%s" % (e, out_to(number), out_tail()))


def out_tail(n=15):
    path = os.environ.get("OFFLOAD_KANNEL_SMS_OUT", "")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "sms-out.log:\n" + "".join(f.readlines()[-n:])
    except OSError:
        return "(no %s)" % path


# --------------------------------------------------------------------- driving Kannel

def _stack_cmd(*args, timeout=120):
    e = lib.env()
    script = os.path.join(e.src or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."),
                          "tests", "stack", "stack")
    p = subprocess.run([script] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, "stack %s failed (%d): %s" % (" ".join(args[:1]), p.returncode, out[-3000:])
    return out


def inject(sender, receiver, text):
    """One incoming SMS through fakesmsc; returns the HTTP status the get-url answered
    (int, or None when smsbox logged none)."""
    out = _stack_cmd("sms-inject", os.environ["OFFLOAD_STACK_DIR"], sender, receiver, text)
    m = re.search(r"the get-url answered (-?\d+)", out)
    return int(m.group(1)) if m else None


def kannel_stop():
    _stack_cmd("sms-stop", os.environ["OFFLOAD_STACK_DIR"])


def kannel_start():
    _stack_cmd("sms-start", os.environ["OFFLOAD_STACK_DIR"])


def sendsms_direct(to, text, coding=0, password=None):
    """A sendsms request made by the test itself (not the service), as the worker makes it:
    (HTTP status, body)."""
    st = stack()
    q = urllib.parse.urlencode({"username": st["user"],
                                "password": password if password is not None else _read_line(st["password_file"]),
                                "from": st["sender"], "to": to, "text": text,
                                "charset": "UTF-8", "coding": str(coding)})
    u = urllib.parse.urlsplit(st["sendsms_url"])
    assert u.hostname in lib.LOOPBACK_HOSTS, u
    conn = httpclient.HTTPConnection(u.hostname, u.port, timeout=lib.HTTP_TIMEOUT)
    try:
        conn.request("GET", u.path + "?" + q)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


# ------------------------------------------------------- Kannel's calls to the service

def _documented(path):
    p = openapi_check.nginx_path(path)
    return p is not None and any(rx.match(p) for rx, _, _ in openapi_check.spec().routes)


def kannel_get(path, params):
    """GET path?params through the stack's nginx, as Kannel calls it: no API key. Returns a
    lib.Response. Checked against doc/openapi.yaml when the document describes the path
    (these are not client routes, so it need not)."""
    e = lib.env()
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    full = path + ("?" + query if query else "")
    conn = httpclient.HTTPConnection(e.host, e.port, timeout=lib.HTTP_TIMEOUT)
    try:
        conn.request("GET", e.prefix + full)
        resp = conn.getresponse()
        raw = resp.read()
        hs = {}
        for k, v in resp.getheaders():
            hs.setdefault(k.lower(), []).append(v)
    finally:
        conn.close()
    r = lib.Response(resp.status, hs, raw)
    if _documented(path):
        openapi_check.check("GET", full, r.status, r.headers, r.raw)
    return r


def incoming(sender, receiver, text, kid, secret_=None):
    """/kannel/incoming as smsbox's get-url calls it (secret=S&from=%p&to=%P&id=%I&text=%a)."""
    params = []
    if secret_ is not False:
        params.append(("secret", secret() if secret_ is None else secret_))
    params += [("from", sender), ("to", receiver), ("id", kid), ("text", text)]
    return kannel_get("/kannel/incoming", params)


def dlr(message_id, dlr_type, reply="", secret_=None):
    """/kannel/dlr as Kannel calls the dlr-url (secret=S&msg=ID&type=%d&reply=%A)."""
    params = []
    if secret_ is not False:
        params.append(("secret", secret() if secret_ is None else secret_))
    params += [("msg", str(message_id)), ("type", str(dlr_type)), ("reply", reply)]
    return kannel_get("/kannel/dlr", params)


def expect_empty_200(r, what):
    assert r.status == 200 and r.raw == b"", "%s: want 200 with an empty body, got %s %r" % (
        what, r.status, r.raw[:300])


def expect_forbidden(r, what):
    assert r.status == 403, "%s: want 403, got %s %r" % (what, r.status, r.raw[:300])
    b = r.json
    assert isinstance(b, dict) and b.get("ok") is False and isinstance(b.get("error"), dict) and \
        b["error"].get("code") == "FORBIDDEN", "%s: want the FORBIDDEN error envelope, got %r" % (what, r.raw[:300])


# ---------------------------------------------------------------- the service's rows

def outbound_ids(case_id):
    """The service's outbound message ids of a case (messages.id), oldest first."""
    return [r[0] for r in lib.sql("SELECT id FROM messages WHERE case_id=%s AND direction='outbound' ORDER BY id"
                                  % lib.sql_str(case_id))]


def inbound_count(text):
    """How many inbound messages carry exactly this text (any case, matched or not)."""
    return int(lib.sql_one("SELECT COUNT(*) FROM messages WHERE direction='inbound' AND body_text=%s"
                           % lib.sql_str(text)))


def db_fingerprint():
    """A cheap summary of what the endpoints may change, to prove a refused call changed
    nothing: counts and the latest version of the cases and messages tables."""
    return lib.sql("SELECT (SELECT COUNT(*) FROM messages), (SELECT COALESCE(MAX(id),0) FROM messages),"
                   " (SELECT COALESCE(SUM(version),0) FROM cases), (SELECT COUNT(*) FROM events)")[0]


def dump_kannel(n=20):
    d = os.environ.get("OFFLOAD_STACK_DIR", "")
    out = [out_tail(n)]
    for name in ("smsbox-access.log", "kannel-access.log"):
        try:
            with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
                lines = f.readlines()[-n:]
            # smsbox's access log shows the get-url with the secret in it: hide it.
            out.append("%s:\n%s" % (name, re.sub(r"secret=[0-9a-f]+", "secret=…", "".join(lines))))
        except OSError:
            pass
    return "\n".join(out)


def wait(fn, what, timeout=TIMEOUT):
    return lib.poll(fn, timeout, interval=0.1, what=what)


# ------------------------------------------------------- what smsbox fetched (its debug log)

FETCH_RE = re.compile(r"Parsing URL `(http://[^`']*)':")


def _fetched():
    """Every URL smsbox fetched, in order, as dicts: path plus the query's parameters."""
    path = os.path.join(os.environ.get("OFFLOAD_STACK_DIR", ""), "smsbox.log")
    try:
        with open(path, "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    out = []
    for m in FETCH_RE.finditer(raw):
        u = urllib.parse.urlsplit(m.group(1))
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        q["path"] = u.path
        out.append(q)
    return out


def get_url_calls():
    """smsbox's calls of the sms-service get-url (/kannel/incoming), oldest first."""
    return [q for q in _fetched() if q["path"] == "/kannel/incoming"]


def dlr_calls(msg=None):
    """smsbox's calls of the dlr-url (/kannel/dlr), oldest first; only those for msg if given."""
    return [q for q in _fetched() if q["path"] == "/kannel/dlr" and (msg is None or q.get("msg") == msg)]


def message_ref(case_id):
    """The "msg" value the service put in the dlr-url of the case's outbound SMS, as Kannel's
    delivered report (fakesmsc sends one for every SMS) called it back; None until then. It
    is whichever of the outbound row's id or Message-ID the service chose (doc/api.md does
    not say which)."""
    seen = {q.get("msg") for q in dlr_calls()}
    rows = lib.sql("SELECT id, message_id FROM messages WHERE case_id=%s AND direction='outbound' ORDER BY id"
                   % lib.sql_str(case_id))
    for rid, mid in rows:
        for v in (rid, mid):
            if v in seen:
                return v
    return None
