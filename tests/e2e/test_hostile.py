"""Hostile input, end to end through nginx (issue 6, item 4). One test per row of the table in
doc/hostile-input.md: the input, the response it must get, and what must (not) be stored or
sent afterwards.

Two tests were written before src/ had the behaviour (the sender rule for forged replies, an
objective starting with a line break); both landed in 23bd6b4.
"""
import base64
import email
import email.policy
import email.utils
import hashlib
import json
import os
import re
import socket
import subprocess
import time
import urllib.parse
import uuid

from lib import (LOOPBACK_HOSTS, WorkerRun, attachment_bytes, create_case, env, expect_err, expect_ok, get, get_case, http, imap_uids,
                 inbound, inbound_path, minimal_case_body, new_client, outbox_to, pause_case_for_input, post, sql,
                 sql_one, sql_str, stack_env, unique_address, valid_case_body, worker_cmd, worker_drain, worker_env,
                 worker_ready, worker_stderr)

INVALID = "INVALID_REQUEST"
INBOX = "offload@offload.test"
ATTACKER = "attacker.example"

# The six fields that reach a mail header (To/From display names, the To address, and the
# signature fields that a model or template may place next to them).
HEADER_FIELDS = [("counterparty", "name"), ("counterparty", "address"), ("counterparty", "company"),
                 ("senderPersona", "name"), ("senderPersona", "role"), ("senderPersona", "company")]


# --------------------------------------------------------------------------- helpers

def _raw_post(path, raw, content_type="application/json", key=True, headers=None):
    kw = {}
    if key is not True:
        kw["key"] = key
    return http("POST", path, raw_body=raw, content_type=content_type, headers=headers, **kw)


def _count_cases():
    return int(sql_one("SELECT COUNT(*) FROM cases"))


def _set(body, path, value):
    obj = body
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value
    return body


def _field(path):
    return ".".join(path)


def _healthy():
    r = get("/healthz", key=None)
    assert r.status == 200, "offload-api is not healthy after hostile input: %r" % r


def _raw_http(data, timeout=20.0):
    """Sends bytes as they are to nginx and returns (status, body bytes) of the answer."""
    e = env()
    assert e.host in LOOPBACK_HOSTS and not e.prefix, "base URL %r" % e.base_url
    s = socket.create_connection((e.host, e.port), timeout=timeout)
    try:
        # No half-close: a client that has shut its side down may get nginx's HTML 413
        # (nginx cannot run the error_page redirect then).
        s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    resp = b"".join(chunks)
    m = re.match(rb"HTTP/1\.[01] (\d{3})", resp)
    assert m, "no HTTP status line in %r" % resp[:200]
    return int(m.group(1)), resp.split(b"\r\n\r\n", 1)[-1]


def _json_envelope_error(body, code):
    j = json.loads(body.decode("utf-8"))
    assert j.get("ok") is False and j["error"]["code"] == code, "body %r" % body[:300]


def _crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _started_case(tag, key=None, address=None, name="Maya Chen"):
    """A case worked once: (caseId, address, first outbound mail as lib.OutMail)."""
    addr = address or unique_address(tag)
    body = minimal_case_body()
    body["counterparty"] = {"address": addr, "name": name}
    cid = create_case(body) if key is None else create_case(body, key=key)
    runs = worker_drain()
    mails = outbox_to(addr)
    c = get_case(cid) if key is None else get_case(cid, key=key)
    assert c["status"] == "RUNNING" and len(mails) == 1, "setup: %s, %d mails\n%s" % (
        c["status"], len(mails), worker_stderr(runs))
    return cid, addr, mails[0]


def _reply_mail(first, from_addr, text, to=INBOX, attachments=(), msgid=None, in_reply_to=True):
    """A reply to our first message; attachments: (filename header value, bytes, type)."""
    msgid = msgid or "<%s@%s>" % (uuid.uuid4().hex, from_addr.split("@", 1)[1])
    parent = first.header("Message-ID").strip()
    threading = ("In-Reply-To: %s\nReferences: %s\n" % (parent, parent)) if in_reply_to else ""
    head = ("From: Someone <%s>\nTo: %s\nSubject: Re: %s\nDate: %s\nMessage-ID: %s\n%sMIME-Version: 1.0\n" % (
        from_addr, to, first.header("Subject"), email.utils.formatdate(), msgid, threading))
    if not attachments:
        return _crlf(head + "Content-Type: text/plain; charset=utf-8\n\n%s\n" % text), msgid
    parts = ["--hb\nContent-Type: text/plain; charset=utf-8\n\n%s\n" % text]
    for disp, data, ctype in attachments:
        parts.append("--hb\nContent-Type: %s\nContent-Disposition: attachment; %s\n"
                     "Content-Transfer-Encoding: base64\n\n%s" % (
                         ctype, disp, base64.encodebytes(data).decode("ascii")))
    return _crlf(head + 'Content-Type: multipart/mixed; boundary="hb"\n\n' + "".join(parts) + "--hb--\n"), msgid


def _pipe(raw):
    rc, err = inbound(raw, timeout=120)
    assert rc == 0, "offload-inbound exited %d; stderr:\n%s" % (rc, err)
    return err


def _download(case_id, att, key=None):
    kw = {} if key is None else {"key": key}
    d = expect_ok(get("/cases/%s/attachments/%s" % (case_id, att["attachmentId"]), **kw), 200)
    u = urllib.parse.urlsplit(d["downloadUrl"])
    assert u.hostname in LOOPBACK_HOSTS, "downloadUrl %r" % d["downloadUrl"]
    r = http("GET", u.path + ("?" + u.query if u.query else ""), key=None)
    assert r.status == 200, "GET %s: HTTP %s %r" % (d["downloadUrl"], r.status, r.raw[:300])
    return r


# ------------------------------------------------------------------- request bodies

def test_hostile_oversized_bodies(ctx):
    """Bodies over 256 KiB: 413 PAYLOAD_TOO_LARGE (nginx, JSON envelope) on both POST routes,
    with a Content-Length, chunked, or a Content-Length nobody could send; nothing stored."""
    before = _count_cases()
    cid = create_case(minimal_case_body())
    before += 1
    big = json.dumps(dict(minimal_case_body(), padding="x" * (256 * 1024))).encode()
    for path in ("/cases", "/cases/%s/input" % cid):
        for raw in (big, b"{" + b" " * (10 * 1024 * 1024) + b"}"):
            r = _raw_post(path, raw)
            expect_err(r, 413, "PAYLOAD_TOO_LARGE")
        # without a key too: the size is refused before anything else looks at the request
        r = _raw_post(path, big, key=None)
        assert r.status in (401, 413), "no key, big body: %r" % r
        # chunked, no Content-Length: nginx counts as it reads
        chunk = b"x" * (64 * 1024)
        data = (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: %s\r\ncontent-type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % (
                    path.encode(), ctx.env.api_key.encode()))
        data += (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 5 + b"0\r\n\r\n"
        status, body = _raw_http(data)
        assert status == 413, "chunked 320 KiB to %s: HTTP %s %r" % (path, status, body[:200])
        _json_envelope_error(body, "PAYLOAD_TOO_LARGE")
        # a Content-Length far past any limit (and past 2^63) with no body behind it
        for cl in (b"10737418240", b"99999999999999999999999"):
            status, body = _raw_http(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: %s\r\n"
                                     b"content-type: application/json\r\nContent-Length: %s\r\n"
                                     b"Connection: close\r\n\r\n{}" % (path.encode(), ctx.env.api_key.encode(), cl))
            assert status in (400, 413), "Content-Length %s: HTTP %s %r" % (cl, status, body[:200])
            _json_envelope_error(body, "PAYLOAD_TOO_LARGE" if status == 413 else INVALID)
        status, body = _raw_http(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: %s\r\n"
                                 b"content-type: application/json\r\nContent-Length: -1\r\n"
                                 b"Connection: close\r\n\r\n{}" % (path.encode(), ctx.env.api_key.encode()))
        assert status == 400, "Content-Length -1: HTTP %s %r" % (status, body[:200])
        _json_envelope_error(body, INVALID)
    assert _count_cases() == before, "an oversized body created a case"
    _healthy()


def test_hostile_fields_over_their_caps(ctx):
    """Bodies under 256 KiB whose fields are over their own caps: 400 naming the field."""
    rows = [
        (("goal", "objective"), "o" * 10001),
        (("counterparty", "name"), "n" * 201),
        (("counterparty", "address"), "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "example"),
        (("senderPersona", "name"), "p" * 201),
        (("clientReferenceId",), "r" * 256),
        (("constraints",), ["c"] * 51),
        (("constraints",), ["c" * 2001]),
        (("counterparty", "customData"), {"k%d" % i: "v" for i in range(101)}),
        (("metadata",), {"blob": "m" * 16400}),
        (("clientWebhookUrl",), "https://h.example/" + "u" * 2048),
    ]
    before = _count_cases()
    for path, value in rows:
        b = _set(valid_case_body(), path, value)
        expect_err(post("/cases", b), 400, INVALID, msg_prefix=_field(path))
    assert _count_cases() == before


def _deep_metadata(levels):
    inner = "{}"
    for _ in range(levels - 2):
        inner = '{"a":%s}' % inner
    b = minimal_case_body()
    b["metadata"] = "@@"
    return json.dumps(b).replace('"@@"', inner).encode()


def test_hostile_deep_nesting(ctx):
    """Nesting past 32 levels: 400 "body: nested too deeply" at once (no recursion blow-up),
    on both POST routes and inside resultSchema and decision.result."""
    cid = create_case(minimal_case_body())
    bodies = [
        _deep_metadata(33),
        b"[" * 100000 + b"]" * 100000,
        b'{"a":' * 50000 + b"1" + b"}" * 50000,
        b'{"a":' * 200000,  # unterminated
    ]
    b = minimal_case_body()
    b["resultSchema"] = "@@"
    bodies.append(json.dumps(b).replace('"@@"', '{"items":' * 40 + "{}" + "}" * 40).encode())
    for path in ("/cases", "/cases/%s/input" % cid):
        for raw in bodies:
            t0 = time.monotonic()
            r = _raw_post(path, raw)
            took = time.monotonic() - t0
            assert r.status in (400, 413), "%s nesting %r...: %r" % (path, raw[:40], r)
            if r.status == 400:
                expect_err(r, 400, INVALID, msg_prefix="body:")
            else:
                expect_err(r, 413, "PAYLOAD_TOO_LARGE")
            assert took < 5, "%s took %.1fs to refuse deep nesting" % (path, took)
    rid = pause_case_for_input(cid)
    decision = '{"outcome":"GOAL_ACHIEVED","result":%s}' % ('{"a":' * 40 + "1" + "}" * 40)
    raw = ('{"inputRequestId":"%s","providedContext":"x","decision":%s}' % (rid, decision)).encode()
    expect_err(_raw_post("/cases/%s/input" % cid, raw), 400, INVALID, msg_prefix="body:")
    _healthy()


def test_hostile_invalid_utf8(ctx):
    """Invalid UTF-8 anywhere in a body: 400 "body: not valid UTF-8". Escaped lone surrogates
    (valid JSON text) are stored as U+FFFD, so nothing invalid is ever stored or sent."""
    good = json.dumps(minimal_case_body()).encode()
    bad = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80",
           b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xe5\xb1", b"\x80", b"\xc3"]
    before = _count_cases()
    cid = create_case(minimal_case_body())
    before += 1
    for seq in bad:
        for raw in (good.replace(b"Maya Chen", b"Maya " + seq + b" Chen"),
                    good.replace(b'"channel"', b'"chan' + seq + b'nel"'),
                    good[:-1] + b', "metadata": {"k' + seq + b'": 1}}'):
            expect_err(_raw_post("/cases", raw), 400, INVALID, msg_prefix="body:")
        raw = b'{"inputRequestId":"x","providedContext":"' + seq + b'"}'
        expect_err(_raw_post("/cases/%s/input" % cid, raw), 400, INVALID, msg_prefix="body:")
    assert _count_cases() == before
    for esc in ("\\ud800", "\\udfff", "\\ud83dx"):
        raw = good.replace(b'"Maya Chen"', b'"Maya ' + esc.encode() + b'"')
        new = expect_ok(_raw_post("/cases", raw), 201)["caseId"]
        r = get("/cases/%s" % new)
        r.raw.decode("utf-8")  # the response is valid UTF-8
        name = r.json["data"]["counterparty"]["name"]
        assert "\ufffd" in name and not any(0xd800 <= ord(ch) <= 0xdfff for ch in name), \
            "escaped lone surrogate %s read back as %r" % (esc, name)


def test_hostile_nul_bytes(ctx):
    """NUL: a raw 0x00 byte anywhere is not JSON (400 "body: ..."); an escaped \\u0000 in any
    string value or member name is 400 naming the field (or "body:" for member names)."""
    good = json.dumps(valid_case_body()).encode()
    cid = create_case(minimal_case_body())
    before = _count_cases()
    for raw in (good.replace(b"Maya Chen", b"Maya\x00Chen"), good + b"\x00", b"\x00" + good,
                good.replace(b'"channel"', b'"chan\x00nel"')):
        expect_err(_raw_post("/cases", raw), 400, INVALID, msg_prefix="body:")
    expect_err(_raw_post("/cases/%s/input" % cid, b'{"inputRequestId":"a\x00","providedContext":"b"}'),
               400, INVALID, msg_prefix="body:")
    paths = [("goal", "objective"), ("clientReferenceId",), ("senderPersona", "tone")] + HEADER_FIELDS
    for path in paths:
        b = _set(valid_case_body(), path, "abc\u0000def")
        expect_err(post("/cases", b), 400, INVALID, msg_prefix=_field(path))
    for b in (_set(valid_case_body(), ("metadata",), {"k\u0000": "v"}),
              _set(valid_case_body(), ("counterparty", "customData"), {"k\u0000x": "v"})):
        expect_err(post("/cases", b), 400, INVALID)
    for body in ({"inputRequestId": "a\u0000b", "providedContext": "c"},
                 {"inputRequestId": "a", "providedContext": "c\u0000"}):
        expect_err(post("/cases/%s/input" % cid, body), 400, INVALID)
    assert _count_cases() == before


def test_hostile_numbers(ctx):
    """maxAttempts (0..20) and followUpDelayHours (1..8760): anything but a JSON integer in
    range is 400 naming the field: floats (even 3.0 and 1e2), strings, booleans, huge and
    out-of-range values. null means absent (the default); -0 is the integer 0."""
    good = json.dumps(minimal_case_body()).encode()[:-1]
    refused = {
        "maxAttempts": ["-1", "21", "3.0", "3.5", "1e2", "3e0", '"3"', "true", "[3]", "{}",
                        "9223372036854775808", "-9223372036854775809", "1e400", "-0.0", "2147483651"],
        "followUpDelayHours": ["0", "8761", "72.0", "1.5e3", '"72"', "false", "-72", "4294967368",
                               "18446744073709551688", "1E2"],
    }
    before = _count_cases()
    for field, values in refused.items():
        for v in values:
            raw = good + (', "%s": %s}' % (field, v)).encode()
            r = _raw_post("/cases", raw)
            try:
                expect_err(r, 400, INVALID, msg_prefix=field)
            except AssertionError as e:
                raise AssertionError("%s = %s: %s" % (field, v, e))
    assert _count_cases() == before
    accepted = [("maxAttempts", "0", 0), ("maxAttempts", "20", 20), ("maxAttempts", "-0", 0),
                ("maxAttempts", "null", 3), ("followUpDelayHours", "1", 1), ("followUpDelayHours", "8760", 8760),
                ("followUpDelayHours", "null", 72)]
    for field, v, want in accepted:
        cid = expect_ok(_raw_post("/cases", good + (', "%s": %s}' % (field, v)).encode()), 201)["caseId"]
        got = get_case(cid)[field]
        assert got == want, "%s = %s read back %r, want %r" % (field, v, got, want)


def test_hostile_duplicate_keys(ctx):
    """Duplicate member names: the last one wins (json-c), for validation and storage alike,
    so a value that was not validated can never be stored."""
    good = json.dumps(minimal_case_body())
    cid = expect_ok(_raw_post("/cases", ('{"channel":"SMS",' + good[1:]).encode()), 201)["caseId"]
    assert get_case(cid)["channel"] == "EMAIL"
    # The last "channel" (SMS) is validated: refused for want of an SMS transport, or, on a
    # stack with one (--sms), because the email address is not a phone number.
    expect_err(_raw_post("/cases", (good[:-1] + ', "channel":"SMS"}').encode()), 400, INVALID,
               msg_prefix="counterparty.address" if os.environ.get("OFFLOAD_KANNEL") else "channel")
    evil = '"address": "evil@%s\\r\\nBcc: x@%s"' % (ATTACKER, ATTACKER)
    raw = good.replace('"address": "ap@northstar.example"', evil + ', "address": "ap@northstar.example"')
    cid = expect_ok(_raw_post("/cases", raw.encode()), 201)["caseId"]
    c = get_case(cid)
    assert c["counterparty"]["address"] == "ap@northstar.example", c["counterparty"]
    assert sql_one("SELECT counterparty_address FROM cases WHERE id=%s" % sql_str(cid)) == "ap@northstar.example"
    raw = good.replace('"address": "ap@northstar.example"', '"address": "ap@northstar.example", ' + evil)
    expect_err(_raw_post("/cases", raw.encode()), 400, INVALID, msg_prefix="counterparty.address")
    raw = good[:-1] + ', "maxAttempts": 5, "maxAttempts": 7}'
    assert get_case(expect_ok(_raw_post("/cases", raw.encode()), 201)["caseId"])["maxAttempts"] == 7
    raw = good[:-1] + ', "maxAttempts": 7, "maxAttempts": 99}'
    expect_err(_raw_post("/cases", raw.encode()), 400, INVALID, msg_prefix="maxAttempts")


# ------------------------------------------------------------------ mail headers

CRLF_VALUES = ["x\r\nBcc: bcc@%s" % ATTACKER, "x\nBcc: bcc@%s" % ATTACKER, "x\rBcc: bcc@%s" % ATTACKER,
               "x\r\n\r\nbody", "x\r\n\tfolded", "x\tTab", "\r\n", "x\x0b", "x\x0c", "x\x1b[31m", "x\x7f"]


def test_hostile_crlf_in_header_fields(ctx):
    """CR, LF, CRLF (with an injected Bcc or a blank line), folding whitespace and any other
    control character in each of the six fields that reach a mail header: 400 naming the
    field, nothing stored."""
    before = _count_cases()
    failures = []
    for path in HEADER_FIELDS:
        for v in CRLF_VALUES:
            if path[1] == "address":
                v = "ap@northstar.example" + v[1:] if v.startswith("x") else v
            r = post("/cases", _set(valid_case_body(), path, v))
            ok = (r.status == 400 and r.json and r.json["error"]["code"] == INVALID
                  and r.json["error"]["message"].startswith(_field(path)))
            if not ok:
                failures.append("%s = %r: %r" % (_field(path), v, r))
    assert not failures, "header injection not refused:\n" + "\n".join(failures)
    assert _count_cases() == before


LOOKALIKES = [
    'Evil" <evil@%s>, Bcc: bcc@%s' % (ATTACKER, ATTACKER),
    "=?utf-8?q?a=0D=0ABcc:_bcc@%s?=" % ATTACKER,
    "Maya\u0085Bcc: bcc@%s" % ATTACKER,           # C1 NEL
    "Maya\u2028Bcc: bcc@%s" % ATTACKER,           # Unicode line separator
    "a;b,c:d<bcc@%s>f(g)h\\i\"" % ATTACKER,
    "%%0d%%0aBcc: bcc@%s" % ATTACKER,            # percent-encoding is just text
]


def _parsed(mail):
    """The headers as sent, undecoded (compat32): what an MTA and a strict parser see."""
    return email.message_from_bytes(mail.raw, policy=email.policy.compat32)


def _addresses(msg, name):
    values = msg.get_all(name) or []
    return [a for _, a in email.utils.getaddresses(values)]


def test_hostile_header_lookalikes_are_sent_safely(ctx):
    """Text that is legal but looks like header syntax (quotes and a second address, an
    encoded-word spelling CRLF, U+0085, U+2028, specials, %0d%0a) in all six header fields,
    and an objective whose second line is "Bcc: ...": 201, and the one mail sent goes to the
    counterparty alone, with one To address, our From address and no Bcc or Cc."""
    worker_ready(ctx)
    cases = []
    for i, v in enumerate(LOOKALIKES):
        addr = unique_address("hx%d" % i)
        b = valid_case_body()
        b["clientWebhookUrl"] = "http://127.0.0.1:9/hook"
        b["counterparty"].update({"address": addr, "name": v, "company": v})
        b["senderPersona"].update({"name": v, "role": v, "company": v})
        b["goal"]["objective"] = "W-9 please\r\nBcc: bcc@%s\r\n\r\n%s" % (ATTACKER, v)
        cases.append((create_case(b), addr, v))
    runs = worker_drain()
    for cid, addr, v in cases:
        mails = outbox_to(addr)
        assert len(mails) == 1, "%r: %d mails to %s\n%s" % (v, len(mails), addr, worker_stderr(runs))
        m = mails[0]
        assert m.rcpts == [addr], "%r: envelope recipients %r" % (v, m.rcpts)
        p = _parsed(m)
        for h in ("Bcc", "Cc", "Resent-To", "Resent-Bcc"):
            assert p[h] is None, "%r: the mail has a %s header: %r" % (v, h, p[h])
        assert len(p.get_all("To")) == 1 and len(p.get_all("From")) == 1, "%r: To/From repeated" % v
        to = _addresses(p, "To")
        assert [a.lower() for a in to] == [addr], "%r: To %r parses as %r" % (v, p["To"], to)
        frm = _addresses(p, "From")
        assert frm == [INBOX], "%r: From %r parses as %r" % (v, p["From"], frm)
        assert p["Subject"] == "W-9 please", "%r: Subject %r" % (v, p["Subject"])
        for name in ("To", "From", "Reply-To", "Sender"):
            for a in _addresses(p, name):
                assert ATTACKER not in a, "%r: %s carries the address %r" % (v, name, a)
        raw_head = m.raw.split(b"\r\n\r\n", 1)[0]
        assert not re.search(rb"(?im)^(bcc|cc):", raw_head), "%r: raw headers:\n%s" % (v, raw_head.decode())


def test_hostile_objective_starting_with_a_line_break(ctx):
    """An objective whose first line is empty ("\\r\\nBcc: ...") is accepted (201), and the
    first mail still goes out (subject: the first non-empty line), with no Bcc header. Before
    23bd6b4 the manual agent's subject was the empty first line, the worker refused its own
    draft ("the draft was empty or malformed") and retried it for days: the case stayed
    CREATED."""
    worker_ready(ctx)
    addr = unique_address("hxnl")
    b = minimal_case_body()
    b["counterparty"]["address"] = addr
    b["goal"]["objective"] = "\r\nBcc: bcc@%s\r\nPlease send the signed W-9." % ATTACKER
    cid = create_case(b)
    runs = worker_drain()
    mails = outbox_to(addr)
    status = get_case(cid)["status"]
    ev = sql("SELECT state, last_error FROM events WHERE case_id=%s AND type='CASE_CREATED'" % sql_str(cid))
    assert len(mails) == 1 and status == "RUNNING", \
        "objective starting with CRLF: %d mails, status %s, event %r\n%s" % (
            len(mails), status, ev, worker_stderr(runs))
    p = _parsed(mails[0])
    assert p["Bcc"] is None and mails[0].rcpts == [addr]
    assert p["Subject"] and "\r" not in p["Subject"] and "\n" not in p["Subject"]


# ------------------------------------------------------------------ SQL metacharacters

SQL_NASTY = ["'; DROP TABLE cases; --", "\" OR \"1\"=\"1", "\\'; SELECT SLEEP(5); -- \\",
             "' UNION SELECT api_key FROM api_keys --", "%_%", "`id`", "\\N", "0x27", "'||'",
             "/*!50000 select*/ 1", "\u02bc OR 1=1 --", "$1 ? :name @v"]


def test_hostile_sql_metacharacters_in_every_string_field(ctx):
    """SQL metacharacters in every string field of a case: 201, and GET returns each value
    byte for byte (the database stores exactly what was sent); the list filter on
    clientReferenceId finds exactly that case."""
    cid_vals = []
    for i, nasty in enumerate(SQL_NASTY):
        b = valid_case_body()
        b["clientReferenceId"] = "ref-%d-%s-%s" % (i, uuid.uuid4().hex[:6], nasty)
        b["goal"] = {"objective": "obj " + nasty, "knowledge": {"k " + nasty: nasty, "list": [nasty]}}
        b["counterparty"].update({"name": "n " + nasty, "company": "c " + nasty,
                                  "customData": {"key " + nasty: "val " + nasty}})
        b["senderPersona"] = {"name": "p " + nasty, "role": "r " + nasty, "company": "pc " + nasty,
                              "tone": "t " + nasty}
        b["constraints"] = [nasty, "c2 " + nasty]
        b["resultSchema"] = {"type": "object", "description": nasty,
                             "properties": {nasty: {"type": "string", "enum": [nasty]}}}
        b["metadata"] = {nasty: nasty, "n": [nasty, {"x": nasty}]}
        b["clientWebhookUrl"] = "https://hooks.example.com/x?q=" + urllib.parse.quote(nasty, safe="")
        cid = create_case(b)
        cid_vals.append((cid, b))
    # knowledge as a string, and an address with the atext specials SQL cares about
    b = valid_case_body()
    del b["clientReferenceId"]
    b["goal"]["knowledge"] = SQL_NASTY[0]
    b["counterparty"]["address"] = "o'brien+%_`x`@northstar.example"
    cid_vals.append((create_case(b), b))
    for cid, b in cid_vals:
        d = get_case(cid)
        for k in ("goal", "counterparty", "senderPersona", "constraints", "resultSchema", "metadata"):
            assert d[k] == b[k], "%s read back %r, sent %r" % (k, d[k], b[k])
        if "clientReferenceId" in b:
            assert d["clientReferenceId"] == b["clientReferenceId"]
            q = urllib.parse.quote(b["clientReferenceId"], safe="")
            lst = expect_ok(get("/cases?clientReferenceId=%s" % q), 200)["cases"]
            assert [c["caseId"] for c in lst] == [cid], "list by clientReferenceId %r: %r" % (
                b["clientReferenceId"], [c["caseId"] for c in lst])
        assert "clientWebhookUrl" not in d
        stored = sql_one("SELECT client_webhook_url FROM cases WHERE id=%s" % sql_str(cid))
        assert stored == b.get("clientWebhookUrl"), "clientWebhookUrl stored %r" % stored
    assert int(sql_one("SELECT COUNT(*) FROM cases WHERE id IN (%s)" % ",".join(
        sql_str(c) for c, _ in cid_vals))) == len(cid_vals)


def test_hostile_sql_metacharacters_in_input_and_queries(ctx):
    """SQL metacharacters in the input route (a nasty inputRequestId is a plain mismatch, 409;
    a nasty providedContext is stored exactly) and in every query parameter of GET /cases
    (400 for values outside the vocabulary, an empty page for a reference nobody used)."""
    cid = create_case(minimal_case_body())
    rid = pause_case_for_input(cid)
    for nasty in SQL_NASTY[:4]:
        expect_err(post("/cases/%s/input" % cid, {"inputRequestId": nasty, "providedContext": "x"}),
                   409, "INPUT_REQUEST_MISMATCH")
    answer = " ".join(SQL_NASTY)
    expect_ok(post("/cases/%s/input" % cid, {"inputRequestId": rid, "providedContext": answer}), 202)
    stored = sql_one("SELECT answer FROM input_requests WHERE id=%s" % sql_str(rid))
    assert stored == answer, "answer stored as %r" % stored
    for nasty in SQL_NASTY:
        q = urllib.parse.quote(nasty, safe="")
        d = expect_ok(get("/cases?clientReferenceId=%s" % q), 200)
        assert all(c.get("clientReferenceId") == nasty for c in d["cases"]), d
        for param in ("status", "updatedSince", "limit", "cursor"):
            expect_err(get("/cases?%s=%s" % (param, q)), 400, INVALID, msg_prefix=param)
    _healthy()


# ------------------------------------------------------------------ paths and names

def test_hostile_path_traversal_in_ids(ctx):
    """Traversal, encodings, NUL, SQL and oversize in the ids of every route with an id:
    a JSON 400 (nginx refuses paths above the root) or 404/403 from the application, never
    200 with something else's content, never 500."""
    cid = create_case(minimal_case_body())
    other_cid = create_case(minimal_case_body(), key=new_client()[1])
    aid = str(uuid.uuid4())
    ids = ["..", "../..", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..%5c..%5cwin.ini",
           "%c0%ae%c0%ae%c0%af", "%252e%252e%252f", cid + "%00", cid + "%2500", cid + "%0d%0aX-Injected:%201",
           "%27%20OR%20%271%27%3D%271", cid + "%3BDROP", "a" * 5000, "%00", "~root"]
    checks = []
    for i in ids:
        checks += [("GET", "/cases/%s" % i, None), ("GET", "/cases/%s/attachments/%s" % (cid, i), None),
                   ("GET", "/cases/%s/attachments/%s" % (i, aid), None),
                   ("POST", "/cases/%s/input" % i, {"inputRequestId": "x", "providedContext": "y"}),
                   ("GET", "/files/%s?e=9999999999999&s=AAAA" % i, "nokey")]
    checks += [("GET", "/cases/%s" % other_cid, None), ("GET", "/_offload_files/%s" % cid, None),
               ("GET", "/_offload_files/../offload.conf", None), ("GET", "/files/", "nokey")]
    failures = []
    for method, path, body in checks:
        kw = {"key": None} if body == "nokey" else {}
        r = http(method, path, body=body if isinstance(body, dict) else None, **kw)
        ok = r.status in (400, 403, 404, 405) and isinstance(r.json, dict) and r.json.get("ok") is False
        if r.status == 403 and path.endswith(other_cid):
            ok = ok and r.json["error"]["code"] == "FORBIDDEN"
        if not ok or b"root:" in r.raw or b"[database]" in r.raw:
            failures.append("%s %s: %r" % (method, path[:90], r))
        if r.header("X-Injected") is not None:
            failures.append("%s %s: header injected" % (method, path[:90]))
    assert not failures, "\n".join(failures)
    _healthy()


ATT_NAMES = [
    ('filename="../../../../etc/passwd"', "passwd"),
    ('filename="..\\\\..\\\\boot.ini"', "boot.ini"),
    ('filename="/var/lib/offload/files/x"', "x"),
    ("filename*=utf-8''..%2F..%2Foffload.conf", "offload.conf"),
    ("filename*=utf-8''%2E%2E", "attachment"),
    ('filename="..."', "attachment"),
    ('filename=".."', "attachment"),
    ("filename*=utf-8''a%0D%0AX-Evil%3A%201.pdf", "aX-Evil: 1.pdf"),
    ("filename*=utf-8''%00.pdf", "attachment"),  # the name ends at the NUL
    ('filename="=?utf-8?b?Li4vLi4vZXZpbC5leGU=?="', "evil.exe"),
    ('filename="' + "n" * 300 + '.pdf"', "n" * 255),
]


def test_hostile_attachment_names(ctx):
    """Path traversal and control characters in attachment names of an inbound reply: each
    name is reduced to a safe base name (table in doc/hostile-input.md), the bytes are stored
    in the database (attachment_chunks), no file is made from a name, and they download as
    sent."""
    inbound_path()
    worker_ready(ctx)
    cid, addr, first = _started_case("hxatt")
    atts = [(disp, ("payload %d " % i).encode() + os.urandom(64), "application/octet-stream")
            for i, (disp, _) in enumerate(ATT_NAMES)]
    files_dir = ctx.env.files_dir
    parent = os.path.dirname(os.path.abspath(files_dir))
    before_parent = set(os.listdir(parent))
    raw, msgid = _reply_mail(first, addr, "Files attached.", attachments=atts)
    _pipe(raw)
    got = get_case(cid)["attachments"]
    assert len(got) == len(ATT_NAMES), "attachments %r" % got
    by_sha = {}
    for a in got:
        row = sql("SELECT storage_path, size, sha256 FROM attachments WHERE id=%s" % sql_str(a["attachmentId"]))[0]
        by_sha[row[2]] = (a, row)
    for (disp, want), (_, data, _) in zip(ATT_NAMES, atts):
        assert hashlib.sha256(data).hexdigest() in by_sha, "%s: no attachment with these bytes" % disp
        a, row = by_sha[hashlib.sha256(data).hexdigest()]
        assert a["name"] == want, "%s: name %r, want %r" % (disp, a["name"], want)
        assert row[0] == "", "%s: storage_path %r (the bytes belong in the database)" % (disp, row[0])
        assert attachment_bytes(a["attachmentId"]) == data, "%s: bytes in the database differ" % disp
        assert int(row[1]) == len(data) and row[2] == hashlib.sha256(data).hexdigest()
        r = _download(cid, a)
        assert r.raw == data, "%s: the download differs" % disp
        cd = r.header("content-disposition", "")
        assert "\r" not in cd and "\n" not in cd and "/" not in cd.split("filename", 1)[-1], \
            "%s: Content-Disposition %r" % (disp, cd)
    assert set(os.listdir(parent)) == before_parent, "files appeared next to the files directory: %r" % (
        set(os.listdir(parent)) - before_parent)
    for root, dirs, files in os.walk(files_dir):
        for n in files + dirs:
            assert ".." not in n.split(os.sep) and "passwd" != n and "offload.conf" != n, \
                "a file named from the mail: %s" % os.path.join(root, n)
            assert n not in {a["attachmentId"] for a in got}, "an attachment file: %s" % os.path.join(root, n)


# ------------------------------------------------------------------ big and many mails

def test_hostile_10mb_attachment(ctx):
    """A 10 MiB attachment (a 14.3 MB mail in base64) through offload-inbound: stored for the
    case with the right size and sha256, in the database byte for byte (40 chunks of 256 KiB),
    and downloadable."""
    inbound_path()
    worker_ready(ctx)
    cid, addr, first = _started_case("hxbig")
    data = os.urandom(10 * 1024 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    raw, msgid = _reply_mail(first, addr, "The scan, 10 MB.",
                             attachments=[('filename="scan.pdf"', data, "application/pdf")])
    assert len(raw) > 13 * 1000 * 1000
    print("    # 10 MiB attachment: the mail is %d bytes" % len(raw))
    t0 = time.monotonic()
    _pipe(raw)
    took = time.monotonic() - t0
    atts = get_case(cid)["attachments"]
    assert len(atts) == 1, "attachments %r" % atts
    a = atts[0]
    assert a["size"] == len(data) and a["name"] == "scan.pdf" and a["type"] == "application/pdf", a
    row = sql("SELECT sha256, size, storage_path FROM attachments WHERE id=%s" % sql_str(a["attachmentId"]))[0]
    assert row[0] == digest and int(row[1]) == len(data), "stored sha256/size %r" % row
    assert row[2] == "", "storage_path %r: the bytes belong in the database" % row[2]
    assert int(sql("SELECT COUNT(*) FROM attachment_chunks WHERE attachment_id=%s" % sql_str(a["attachmentId"]))[0][0]) == 40
    assert hashlib.sha256(attachment_bytes(a["attachmentId"])).hexdigest() == digest, "the bytes in the database differ"
    r = _download(cid, a)
    assert len(r.raw) == len(data) and hashlib.sha256(r.raw).hexdigest() == digest, "the download differs"
    assert took < 60, "offload-inbound took %.1fs for a 14 MB mail" % took


BOMB = 1000
BOMB_BATCH = 300
FETCHED_RE = re.compile(r"mail: (\d+) fetched, (\d+) matched, (\d+) unmatched, (\d+) duplicates, (\d+) malformed")


def _bomb_pass():
    e = worker_env()
    e["OFFLOAD_MAIL_IMAP_BATCH"] = str(BOMB_BATCH)
    cmd = worker_cmd()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=600, env=e)
    return WorkerRun(cmd, p.returncode, p.stderr.decode("utf-8", "replace"))


def test_hostile_mail_bomb_1000_messages_in_one_imap_poll(ctx):
    """1,000 messages land in the IMAP INBOX at once (995 strangers' mails, 5 replies to one
    case): the worker takes at most [mail] imap_batch per pass, never crashes, and after a
    few passes every message is stored exactly once (the replies for their case), with
    nothing left behind and nothing read twice."""
    worker_ready(ctx)
    cid, addr, first = _started_case("hxbomb")
    tag = uuid.uuid4().hex[:10]
    d = os.path.join(stack_env("OFFLOAD_STACK_DIR"), "tmp", "bomb-" + tag)
    os.makedirs(d)
    ids = []
    reply_ids = []
    for i in range(BOMB):
        if i % 200 == 7:
            raw, msgid = _reply_mail(first, addr, "reply %d" % i, msgid="<bomb-%s-%d@northstar.example>" % (tag, i))
            reply_ids.append(msgid.strip("<>"))
        else:
            msgid = "<bomb-%s-%d@spam.%s>" % (tag, i, ATTACKER)
            raw = _crlf("From: Spammer %d <s%d@spam.%s>\nTo: %s\nSubject: Offer %d\nDate: %s\n"
                        "Message-ID: %s\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
                        "Buy now %d.\n" % (i, i, ATTACKER, INBOX, i, email.utils.formatdate(), msgid, i))
        ids.append(msgid.strip("<>"))
        with open(os.path.join(d, "%04d.eml" % i), "wb") as f:
            f.write(raw)
    # One curl, one IMAP connection, 1,000 APPENDs.
    url = stack_env("OFFLOAD_IMAP_URL")
    assert urllib.parse.urlsplit(url).hostname in LOOPBACK_HOSTS
    cfg = os.path.join(d, "curl.cfg")
    with open(cfg, "w") as f:
        for i in range(BOMB):
            if i:
                f.write("next\n")
            f.write('user = "%s:%s"\nurl = "%s"\nupload-file = "%s"\n' % (
                stack_env("OFFLOAD_IMAP_USER"), stack_env("OFFLOAD_IMAP_PASSWORD"), url,
                os.path.join(d, "%04d.eml" % i)))
    uids_before = len(imap_uids())
    p = subprocess.run(["curl", "--noproxy", "*", "-sS", "--max-time", "600", "-K", cfg],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=660)
    assert p.returncode == 0, "curl APPEND: %s" % p.stderr.decode("utf-8", "replace")[-500:]
    assert len(imap_uids()) - uids_before == BOMB, "the INBOX did not get %d messages" % BOMB
    runs = []
    fetched = []
    for _ in range(BOMB // BOMB_BATCH + 10):
        run = _bomb_pass()
        runs.append(run)
        assert run.rc == 0, "the worker exited %d during the bomb:\n%s" % (run.rc, run.tail())
        m = [FETCHED_RE.search(line) for line in run.stderr.splitlines()]
        m = [x for x in m if x]
        n = int(m[-1].group(1)) if m else 0
        fetched.append(n)
        assert n <= BOMB_BATCH, "one pass fetched %d messages, over imap_batch %d" % (n, BOMB_BATCH)
        if n == 0 and not run.work_remains:
            break
    print("    # mail bomb: messages fetched per pass %r (imap_batch %d)" % (fetched, BOMB_BATCH))
    assert sum(fetched) >= BOMB, "fetched %r in all, want %d\n%s" % (fetched, BOMB, worker_stderr(runs))
    assert max(fetched) == BOMB_BATCH, "no pass used its full batch: %r" % fetched
    rows = sql("SELECT message_id, COUNT(*), MIN(case_id), MAX(case_id) FROM messages "
               "WHERE direction='inbound' AND message_id LIKE 'bomb-%s-%%' GROUP BY message_id" % tag)
    got = {r[0]: r for r in rows}
    missing = [i for i in ids if i not in got]
    assert not missing, "%d of %d bomb messages not stored, e.g. %r" % (len(missing), BOMB, missing[:3])
    twice = [r for r in rows if r[1] != "1"]
    assert not twice, "stored more than once: %r" % twice[:3]
    for rid in reply_ids:
        assert got[rid][2] == cid, "reply %s stored for case %r, want %s" % (rid, got[rid][2], cid)
    strangers = [r for r in rows if r[0] not in reply_ids and r[2] is not None]
    assert not strangers, "a stranger's mail was attached to a case: %r" % strangers[:3]
    ev = sql_one("SELECT COUNT(*) FROM events WHERE case_id=%s AND type='REPLY_RECEIVED'" % sql_str(cid))
    assert int(ev) == len(reply_ids), "%s REPLY_RECEIVED events, want %d" % (ev, len(reply_ids))
    # Nothing is read again.
    again = _bomb_pass()
    assert again.rc == 0
    m = [FETCHED_RE.search(line) for line in again.stderr.splitlines()]
    assert not any(x and int(x.group(1)) > 0 for x in m), "a pass after the bomb fetched again:\n%s" % again.tail()


# ------------------------------------------------------------------ forged replies

def test_hostile_reply_from_the_counterparty_domain_attaches(ctx):
    """The sender rule's other side: a reply whose In-Reply-To names our message and
    whose From is the counterparty's address, or another address at its domain (a colleague
    answering), attaches to the case."""
    inbound_path()
    worker_ready(ctx)
    cid, addr, first = _started_case("hxsame")
    domain = addr.split("@", 1)[1]
    for frm in (addr, addr.upper(), "colleague-%s@%s" % (uuid.uuid4().hex[:6], domain)):
        raw, msgid = _reply_mail(first, frm, "From %s." % frm)
        _pipe(raw)
        row = sql("SELECT case_id FROM messages WHERE message_id=%s" % sql_str(msgid.strip("<>")))
        assert row and row[0][0] == cid, "reply from %s stored for %r, want %s" % (frm, row, cid)


def test_hostile_forged_reply_naming_another_clients_case(ctx):
    """The sender rule (src/mail/match.c ingest_sender_matches_case, since 23bd6b4; see
    doc/hostile-input.md): a reply that names another client's case (its In-Reply-To /
    References carry that case's Message-ID, or its To is that case's plus address) attaches
    to that case only when its From address is the case's counterparty address or at the
    same domain. Otherwise it is stored unmatched (no case, no event, no attachment for the case). Before 23bd6b4 ingest
    matched on the Message-ID or plus address alone, whoever the sender was."""
    inbound_path()
    worker_ready(ctx)
    _, key_a = new_client()
    _, key_b = new_client()
    cid_a, addr_a, first_a = _started_case("hxvictim", key=key_a)
    # client B's vendor sits at another domain than case A's counterparty (example.com):
    # same-domain colleagues may answer for a case, other correspondents may not
    cid_b, addr_b, first_b = _started_case("hxmallory", key=key_b,
                                           address=unique_address("hxmallory").replace(
                                               "@example.com", "@vendor-b.example"))
    forgeries = []
    # 1. a stranger replies to case A's message
    raw, msgid = _reply_mail(first_a, "mallory@%s" % ATTACKER, "Forged: the W-9 is attached.",
                             attachments=[('filename="w9.pdf"', b"%PDF-1.4 forged", "application/pdf")])
    forgeries.append(("stranger, In-Reply-To of case A", raw, msgid))
    # 2. client B's counterparty (a real correspondent of ours) names case A's message
    raw, msgid = _reply_mail(first_a, addr_b, "Forged by another client's vendor.")
    forgeries.append(("client B's counterparty, In-Reply-To of case A", raw, msgid))
    # 3. a stranger writes to case A's plus address without any threading header
    raw, msgid = _reply_mail(first_a, "mallory@%s" % ATTACKER, "Forged via the plus address.",
                             to="offload+%s@offload.test" % cid_a, in_reply_to=False)
    forgeries.append(("stranger, plus address of case A", raw, msgid))
    # 4. a look-alike domain
    dom = addr_a.split("@", 1)[1]
    raw, msgid = _reply_mail(first_a, "ap@%s.%s" % (dom, ATTACKER), "Look-alike domain.")
    forgeries.append(("look-alike domain", raw, msgid))
    events_before = sql_one("SELECT COUNT(*) FROM events WHERE case_id=%s" % sql_str(cid_a))
    failures = []
    for what, raw, msgid in forgeries:
        _pipe(raw)
        row = sql("SELECT case_id FROM messages WHERE direction='inbound' AND message_id=%s" % sql_str(
            msgid.strip("<>")))
        assert row, "%s: not stored at all" % what
        if row[0][0] is not None:
            failures.append("%s: attached to case %s (want: stored unmatched)" % (what, row[0][0]))
    atts = get_case(cid_a, key=key_a)["attachments"]
    if atts:
        failures.append("case A got the forged attachment: %r" % atts)
    events_after = sql_one("SELECT COUNT(*) FROM events WHERE case_id=%s" % sql_str(cid_a))
    if events_after != events_before:
        failures.append("case A got %s new events" % (int(events_after) - int(events_before)))
    assert not failures, "forged replies attached to another client's case:\n" + "\n".join(failures)
