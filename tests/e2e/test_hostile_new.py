"""Hostile input against the SMS channel, sender identities and erasure (doc/hostile-input.md,
"SMS, sender identities and erasure"). One test per finding.
"""
import json
import os
import re
import socket
import subprocess
import tempfile
import time

from lib import env, nginx_start, nginx_stop

JSON_CT = "application/json"


# --------------------------------------------------------------------------- helpers

class _OwnNginx:
    """An nginx of our own around the shipped snippet (conf/nginx/offload.conf) with an
    access log, its upstream a socket nobody listens on (so every FastCGI request is nginx's
    502), listening on 127.0.0.1 only. Used as a context manager."""

    def __init__(self):
        e = env()
        self.src = e.src or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        self.work = tempfile.mkdtemp(prefix="offload-ngx-")
        self.access_log = os.path.join(self.work, "access.log")
        self.port = None

    def __enter__(self):
        w = self.work
        with open(os.path.join(self.src, "conf", "nginx", "offload.conf"), encoding="utf-8") as f:
            snippet = f.read().replace("/run/offload/api.sock", w + "/nobody.sock")
        with open(os.path.join(w, "offload.conf"), "w", encoding="utf-8") as f:
            f.write(snippet)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        os.makedirs(os.path.join(w, "tmp"))
        conf = """%(user)s
worker_processes 1;
pid %(w)s/nginx.pid;
error_log %(w)s/error.log warn;
events { worker_connections 64; }
http {
    access_log %(w)s/access.log;
    client_body_temp_path %(w)s/tmp; fastcgi_temp_path %(w)s/tmp; proxy_temp_path %(w)s/tmp;
    uwsgi_temp_path %(w)s/tmp; scgi_temp_path %(w)s/tmp;
    upstream offload_api { server unix:%(w)s/nobody.sock; }
    limit_req_zone $http_x_api_key zone=offload_perkey:10m rate=100r/s;
    limit_req_zone $binary_remote_addr zone=offload_perip:10m rate=100r/s;
    server {
        listen 127.0.0.1:%(port)d default_server;
        include %(w)s/offload.conf;
    }
}
""" % {"user": "user root;" if os.geteuid() == 0 else "", "w": w, "port": self.port}
        with open(os.path.join(w, "nginx.conf"), "w") as f:
            f.write(conf)
        nginx_start(w)
        return self

    def get(self, target, source="127.0.0.1"):
        """GET target (bytes) from the source address; (status, content-type, body)."""
        s = socket.socket()
        s.settimeout(20)
        s.bind((source, 0))
        s.connect(("127.0.0.1", self.port))
        try:
            s.sendall(b"GET " + target + b" HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        finally:
            s.close()
        head, _, body = out.partition(b"\r\n\r\n")
        ct = ""
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.decode("latin-1").partition(":")
            if k.strip().lower() == "content-type":
                ct = v.strip()
        return int(re.match(rb"HTTP/1\.[01] (\d{3})", head).group(1)), ct, body

    def __exit__(self, *exc):
        nginx_stop(self.work)


def _envelope(what, got, status, code, bad):
    st, ct, body = got
    try:
        j = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        j = None
    if st != status or ct != JSON_CT or not (isinstance(j, dict) and j.get("ok") is False
                                             and j["error"]["code"] == code):
        bad.append("%s: %d %s %r (want %d %s)" % (what, st, ct, body[:160], status, code))


# --------------------------------------------------------------------------- SMS callbacks

def test_hostile_kannel_secret_not_in_nginx_access_log(ctx):
    """The Kannel callbacks carry the shared secret in the query string, so the shipped
    snippet keeps /kannel/ out of nginx's access log. Requests nginx answers itself went to
    the server's error pages (/_offload_error/...), whose location logs: a smsbox on an
    address not yet allowed (403), offload-api down or restarting (502), and a request line
    over nginx's 8 KiB (414: a long UCS-2 text) wrote the secret into the access log. Both must still answer the JSON envelope with
    their status, and leave no secret in the access log."""
    secret = b"s3cr3t-" + os.urandom(8).hex().encode()
    with _OwnNginx() as ngx:
        bad = []
        _envelope("a denied address", ngx.get(b"/kannel/incoming?secret=" + secret + b"&from=%2B15550100001&id=1",
                                              source="127.0.0.2"), 403, "FORBIDDEN", bad)
        _envelope("offload-api not running", ngx.get(b"/kannel/dlr?secret=" + secret + b"&msg=a&type=1"),
                  502, "SERVICE_UNAVAILABLE", bad)
        # A get-url over nginx's 8 KiB request line (a long UCS-2 text): nginx's 414 comes
        # before any location is chosen, from the server's error page.
        _envelope("a request line over 8 KiB", ngx.get(b"/kannel/incoming?secret=" + secret + b"&from=1&id=2&text="
                                                     + b"%E4%BD%A0" * 1000), 414, "INVALID_REQUEST", bad)
        # A request nginx logs as usual, so the test sees that the log is written at all.
        ngx.get(b"/healthz?marker=" + secret[::-1])
        deadline = time.monotonic() + 5
        logged = b""
        while time.monotonic() < deadline and secret[::-1] not in logged:
            time.sleep(0.05)
            with open(ngx.access_log, "rb") as f:
                logged = f.read()
        assert secret[::-1] in logged, "the access log is not written: %r" % logged[-300:]
        assert secret not in logged, "the Kannel secret is in nginx's access log:\n%s" % logged.decode(errors="replace")
        assert not bad, "\n  ".join(bad)


def test_hostile_kannel_incoming_text_with_nul_is_kept(ctx):
    """A 400 is final for Kannel (it tries a get-url again only after a failure such as a 5xx):
    an incoming SMS refused with 400 is lost.
    Text that is not valid UTF-8 is stored with U+FFFD (doc/api.md, SMS); a NUL byte in the
    text (an 8-bit data SMS passed through %a) was refused with 400 instead. It is kept the
    same way now, the NUL as U+FFFD; a NUL in the secret, the sender or the id stays a 400."""
    import smslib
    if smslib.stack() is None:
        return
    number = smslib.unique_number()
    kid = "hostile-nul-" + os.urandom(6).hex()
    word = os.urandom(4).hex()
    r = smslib.incoming(number, "+15550100000", "Deliver\x00 Friday " + word, kid)
    smslib.expect_empty_200(r, "an incoming SMS with a NUL in its text")
    assert smslib.inbound_count("Deliver\ufffd Friday " + word) == 1
    r = smslib.incoming(number, "+15550100000", "again " + word, kid + "\x00x")
    assert r.status == 400 and r.json["error"]["code"] == "INVALID_REQUEST", (r.status, r.raw)
    r = smslib.incoming(number + "\x00", "+15550100000", "again " + word, kid + "y")
    assert r.status == 400 and r.json["error"]["code"] == "INVALID_REQUEST", (r.status, r.raw)
    assert smslib.inbound_count("again " + word) == 0


# --------------------------------------------------------------------------- sender identities

def test_hostile_identity_set_with_open_cases_keeps_their_replies(ctx):
    """An operator gives a client its own reply domain while the client has open cases (the
    usual order: a client starts on the server's addresses, then gets its own). The
    counterparty of an open case answers the message it has, whose Reply-To is the
    server's inbox+<caseId>@ address: that reply belongs to the case (it names the case,
    threads to the case's own message, and no other client's domain is involved), and
    must not be kept unmatched for the operator while the case waits forever."""
    import test_sender_identity as si
    from lib import new_client_full, outbox_to, worker_drain, worker_ready
    worker_ready(ctx)
    a = new_client_full("UNLIMITED")
    cid, addr = si._case(a, "ident-late")
    cids = [cid]
    try:
        worker_drain()
        mails = outbox_to(addr)
        assert len(mails) == 1, "%d first messages" % len(mails)
        first_id = mails[0].header("Message-ID").strip()
        reply_to = si._addr(mails[0].header("Reply-To"))
        assert reply_to.endswith("@" + si.SERVER_DOMAIN) and cid in reply_to, reply_to
        si._ctl_json("client", "set", a["clientId"], "--from-address", "ap@late.example",
                     "--reply-domain", si._domain("late"))
        for what, irt in (("threaded", first_id), ("by the plus address alone", None)):
            raw, msgid = si._reply_raw(addr, reply_to, irt)
            rc, err = si.inbound(raw)
            assert rc == 0, "%s: offload-inbound exit %d: %s" % (what, rc, err)
            assert si._stored_case(msgid) == cid, "%s: the reply to the case's own address went to %s\n%s" % (
                what, si._stored_case(msgid), err)
        # Still refused: threaded to this case but addressed to another case's server
        # address (another client's, without an identity of its own).
        other, other_addr = si._case(new_client_full("UNLIMITED"), "ident-late-other")
        cids.append(other)
        raw, msgid = si._reply_raw(addr, "offload+%s@%s" % (other, si.SERVER_DOMAIN), first_id)
        rc, err = si.inbound(raw)
        assert rc == 0 and si._stored_case(msgid) == "-", "another case's address: stored for %s\n%s" % (
            si._stored_case(msgid), err)
    finally:
        si._finish(cids)
        si._ctl("client", "set", a["clientId"], "--clear-sender")


# --------------------------------------------------------------------------- probes that hold

def test_hostile_sms_numbers(ctx):
    """counterparty.address of an SMS case (doc/api.md, SMS): '+' and 8 to 15 ASCII digits,
    country code first; spaces, dashes and dots removed. Unicode digits (fullwidth, Arabic-
    Indic), a fullwidth plus, NUL, CR/LF, tabs, parentheses, 7 and 16 digits, no '+', a
    leading 0 are 400 naming the field; 8 and 15 digits and separators are taken, the stored
    form bare. Validation is the API's, but SMS cases exist only where an SMS transport is
    configured (the stack's --sms)."""
    import smslib
    if smslib.stack() is None:
        return
    from lib import expect_err, expect_ok, get_case, post
    base = smslib.unique_number()[5:]  # 7 random digits
    bad = ["+1555\uff10\uff11\uff12" + base[3:], "\uff0b1555" + base, "+1555\u0660" + base[1:],
           "+1555\u0000" + base, "+1555\r\n" + base, "+1555\t" + base, "+1 (555) " + base, "+1234567",
           "+1234567890123456", "1555" + base, "+0044" + base, "+0" + base + "1", "++1555" + base,
           "+1555" + base + "\u200b", " " * 70 + "+1555" + base, "tel:+1555" + base]
    for addr in bad:
        r = post("/cases", smslib.sms_case_body(addr))
        expect_err(r, 400, "INVALID_REQUEST")
        assert r.json["error"]["message"].startswith("counterparty.address: "), (addr, r.json)
    cids = []
    try:
        for sent, stored in (("+1 555-" + base[:3] + "." + base[3:], "+1555" + base),
                             ("+4" + base[:7], "+4" + base[:7]), ("+49" + base + "00000", "+49" + base + "00000")):
            cid = expect_ok(post("/cases", smslib.sms_case_body(sent)), 201)["caseId"]
            cids.append(cid)
            assert get_case(cid)["counterparty"]["address"] == stored, (sent, get_case(cid)["counterparty"])
    finally:
        for cid in cids:
            from lib import sql, sql_str
            sql("UPDATE cases SET status = 'FAILED', next_action_at = 253402300799999 WHERE id = %s" % sql_str(cid))


def test_hostile_kannel_callback_parameters(ctx):
    """/kannel/incoming and /kannel/dlr with hostile parameters, from an allowed address:
    a secret that is empty, one byte short or long, in capitals, over 256 bytes, repeated
    with the wrong one first, is 403 and changes nothing; the right one percent-encoded
    counts (it is the same value). Missing, overlong or malformed ids, a DLR type out of
    range, signed, fractional or too long are 400 naming the parameter; a DLR for an id we
    never sent is 200 (Kannel must not retry it) and changes nothing; a repeated incoming
    id is stored once; invalid UTF-8 and 6 kB of text are stored; other methods are 405.
    (nginx refuses a request line over 8 KiB with 414 before offload-api's 16 KiB cap on
    the text is reached: about 13 UCS-2 parts of CJK text, more than phones send as SMS.)"""
    import smslib
    from lib import env, http
    st = smslib.stack()
    if not st:
        return
    sec = smslib.secret()
    number = smslib.unique_number()
    before = smslib.db_fingerprint()

    def call(path, query):
        return smslib.kannel_get(path, query)

    for s in ("", sec[:-1], sec + "0", sec.upper() if sec.upper() != sec else sec + "X", "x" * 300):
        q = [("secret", s), ("from", number), ("id", "h1"), ("text", "hi")]
        smslib.expect_forbidden(call("/kannel/incoming", q), "secret %r" % s[:20])
    smslib.expect_forbidden(call("/kannel/dlr", [("secret", "wrong"), ("secret", sec), ("msg", "1"), ("type", "1")]),
                            "the wrong secret first")
    bad = [("/kannel/incoming", [("from", number), ("text", "no id")], "id"),
           ("/kannel/incoming", [("id", "h2"), ("text", "no from")], "from"),
           ("/kannel/incoming", [("from", number), ("id", "a b"), ("text", "x")], "id"),
           ("/kannel/incoming", [("from", number), ("id", "i" * 65), ("text", "x")], "id"),
           ("/kannel/incoming", [("from", "+" + "1" * 70), ("id", "h3"), ("text", "x")], "from"),
           ("/kannel/dlr", [("type", "1")], "msg")]
    for t in ("-1", "256", "1.5", "1e3", "+1", " 1", "0x1", "9" * 20, ""):
        bad.append(("/kannel/dlr", [("msg", "1"), ("type", t)], "type"))
    for path, params, name in bad:
        r = call(path, [("secret", sec)] + params)
        assert r.status == 400 and r.json["error"]["code"] == "INVALID_REQUEST" and \
            r.json["error"]["message"].startswith(name + ":"), (path, params, r.status, r.raw[:200])
    smslib.expect_empty_200(call("/kannel/dlr", [("secret", sec), ("msg", "no-such-message-" + number),
                                                 ("type", "2"), ("reply", "x")]), "a DLR for an unknown id")
    for m in ("POST", "PUT", "DELETE", "HEAD"):
        r = http(m, "/kannel/incoming?secret=%s&from=%%2B1555&id=m&text=x" % sec, key=None)
        assert r.status == 405, (m, r.status, r.raw[:200])
    assert smslib.db_fingerprint() == before, "a refused call changed something"
    encoded = "".join("%%%02X" % ord(c) for c in sec)
    kid = "hostile-pe-" + number[1:]
    e = env()
    import http.client as hc
    for _ in range(2):  # Kannel's repeat: stored once
        conn = hc.HTTPConnection(e.host, e.port, timeout=30)
        conn.request("GET", "/kannel/incoming?secret=%s&from=%s&id=%s&text=%s" % (
            encoded, number.replace("+", "%2B"), kid, "%FF%FEhello%C0%80" + "a" * 6000))
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b"", resp.status
        conn.close()
    from lib import sql_one, sql_str
    assert sql_one("SELECT COUNT(*) FROM messages WHERE kannel_id = %s" % sql_str(kid)) == "1"
    text = sql_one("SELECT body_text FROM messages WHERE kannel_id = %s" % sql_str(kid))
    assert text.startswith("\ufffd\ufffdhello\ufffd\ufffd") and text.endswith("a" * 6000), text[:40]


def test_hostile_sms_case_to_the_servers_own_number(ctx):
    """An SMS case whose counterparty is the server's own sender number ([sms] sender): the
    carrier hands what we send to that number back as an incoming SMS from it, which would
    attach to the case as the counterparty's reply, be answered, come back again: a loop
    that bills every turn, started by any client. (Email has its guard: our own Message-ID
    coming back is dropped.) The number is refused like any unusable one, in every spelling,
    and an incoming SMS from it attaches to no case."""
    import smslib
    from lib import expect_err, post, sql_one, sql_str
    st = smslib.stack()
    if not st:
        return
    own = st["sender"]
    spaced = own[:2] + " " + own[2:5] + "-" + own[5:8] + "." + own[8:]
    for addr in (own, spaced):
        r = post("/cases", smslib.sms_case_body(addr))
        expect_err(r, 400, "INVALID_REQUEST")
        assert r.json["error"]["message"].startswith("counterparty.address: "), r.json
    kid = "hostile-own-" + os.urandom(6).hex()
    smslib.expect_empty_200(smslib.incoming(own[1:], own, "STOP", kid), "an SMS from our own number")
    assert sql_one("SELECT IFNULL(case_id, '-') FROM messages WHERE kannel_id = %s" % sql_str(kid)) == "-"
    assert sql_one("SELECT COUNT(*) FROM sms_optouts WHERE number = %s" % sql_str(own)) == "0", \
        "our own number opted itself out"


# --------------------------------------------------------------------------- erasure

def test_hostile_sms_reply_racing_a_case_delete_leaves_nothing(ctx):
    """An incoming SMS for an open SMS case while the operator erases the case: the reply
    reads the case, and its INSERT is held (here by another session's uncommitted row with
    the same Kannel id, in real life by nothing more than timing) while the erasure runs.
    Once it commits, no message of the erased case may remain in the database (doc/api.md:
    nothing of an erased case's content remains), and the later reply is stored unmatched
    or not at all."""
    import threading
    import smslib
    from lib import ctl, env, sql_one, sql_str
    st = smslib.stack()
    if not st:
        return
    number = smslib.unique_number()
    from lib import expect_ok, post
    cid = expect_ok(post("/cases", smslib.sms_case_body(number)), 201)["caseId"]
    kid = "hostile-race-" + os.urandom(6).hex()
    word = "RACE-" + os.urandom(4).hex()
    e = env()
    import lib
    http_timeout, lib.HTTP_TIMEOUT = lib.HTTP_TIMEOUT, 120.0
    holder = subprocess.Popen(["mariadb", "--socket=" + e.db_socket, "-uroot", e.db_name, "-N", "-B", "--unbuffered"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = {}
    try:
        holder.stdin.write(("SET autocommit=0; BEGIN; INSERT INTO messages (case_id, direction, kind, message_id,"
                            " from_addr, to_addr, subject, body_text, created_at, channel, kannel_id) VALUES"
                            " (NULL, 'inbound', 'reply', 'hold.%s', 'x', 'y', '', 'hold', 0, 'SMS', %s);"
                            " SELECT 'held';\n" % (kid, sql_str(kid))).encode())
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == b"held"

        def reply():
            t0 = time.monotonic()
            try:
                results["reply"] = smslib.incoming(number, st["sender"], "Delivery Friday " + word, kid)
            except Exception as exc:  # noqa: BLE001 (reported below)
                results["reply"] = exc
            results["reply_s"] = time.monotonic() - t0

        def delete():
            t0 = time.monotonic()
            try:
                results["delete"] = ctl("case", "delete", cid, "--wait", "60")
            except AssertionError as exc:
                results["delete"] = exc
            results["delete_s"] = time.monotonic() - t0
        t1 = threading.Thread(target=reply)
        t1.start()
        # The reply is waiting on the held row once its INSERT shows in the lock waits.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sql_one(
                "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'") == "0":
            time.sleep(0.05)
        t2 = threading.Thread(target=delete)
        t2.start()
        t2.join(3)  # the delete either finishes now (the bug) or waits for the reply
        holder.stdin.write(b"ROLLBACK;\n")
        holder.stdin.flush()
        t1.join(60)
        t2.join(90)
    finally:
        try:
            holder.stdin.close()
        except OSError:
            pass
        holder.wait(30)
        lib.HTTP_TIMEOUT = http_timeout
    assert not isinstance(results.get("delete"), Exception), results
    r = results.get("reply")
    assert r is not None and not isinstance(r, Exception) and r.status in (200, 400), results
    left = sql_one("SELECT COUNT(*) FROM messages WHERE case_id = %s" % sql_str(cid))
    assert left == "0", "%s message(s) of the erased case remain: %r" % (
        left, sql_one("SELECT body_text FROM messages WHERE case_id = %s LIMIT 1" % sql_str(cid)))
    assert sql_one("SELECT COUNT(*) FROM events WHERE case_id = %s" % sql_str(cid)) == "0", \
        "events of the erased case remain"
