"""Mail that can be trusted (issue 12): credentials only over TLS, and delivery/feedback
reports believed only at a signed bounce address (src/mail/tls.c, src/mail/verp.c).

Each test here fails on the code before the change: the worker used CURLUSESSL_TRY (a server
without STARTTLS got the password in clear) and a report quoting one of our Message-IDs
failed the case whoever sent it.
"""
import os
import re
import subprocess

from lib import (SENTINEL, create_case, get_case, minimal_case_body, running_case, sql, sql_str, unique_address,
                 worker_cmd, worker_drain, worker_env, worker_ready, worker_stderr)
from maillib import BOUNCE_RE, AuthSink, bounce_address
from test_worker_inbound import _arf, _bounce, _pipe, _reply


def _events(cid):
    return sql("SELECT type, state, attempts, last_error FROM events WHERE case_id=%s ORDER BY id" % sql_str(cid))


def _inbound_rows(cid_or_null, msgid):
    return sql("SELECT IFNULL(case_id, 'NULL'), kind FROM messages WHERE direction='inbound' AND message_id=%s"
               % sql_str(msgid.strip("<>")))


def _msgid_of(raw):
    m = re.search(rb"^Message-ID: (<[^>\r\n]+>)", raw, re.M | re.I)
    assert m, "no Message-ID in the test message"
    return m.group(1).decode()


def test_mail_no_password_without_starttls(ctx):
    """[mail] smtp_user set, the server announces AUTH but no STARTTLS: the worker sends no
    AUTH at all, sends nothing, keeps the case CREATED (the event is retried) and says why
    in one line."""
    worker_ready(ctx)
    sink = AuthSink()
    try:
        addr = unique_address("tls-only")
        body = minimal_case_body()
        body["counterparty"] = {"address": addr, "name": "Maya Chen"}
        cid = create_case(body)
        e = worker_env()
        e["OFFLOAD_MAIL_SMTP_URL"] = "smtp://127.0.0.1:%d" % sink.port
        e["OFFLOAD_MAIL_SMTP_USER"] = "offload"
        e["OFFLOAD_MAIL_SMTP_PASSWORD"] = "s3cret-never-in-clear"
        p = subprocess.run(worker_cmd(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=180, env=e)
        err = p.stderr.decode("utf-8", "replace")
        assert p.returncode == 0, "worker exited %d:\n%s" % (p.returncode, err[-3000:])
        assert sink.auth_lines() == [], "the sink without STARTTLS saw AUTH: %r" % sink.auth_lines()
        assert sink.stored() == [], "a message was sent over the plaintext connection"
        c = get_case(cid)
        assert c["status"] == "CREATED" and c["attemptCount"] == 0, "%s %r" % (c["status"], c["attemptCount"])
        ev = _events(cid)
        assert len(ev) == 1 and ev[0][1] == "pending" and "STARTTLS" in (ev[0][3] or ""), \
            "CASE_CREATED event %r, want pending with a last_error naming STARTTLS" % (ev,)
        lines = [line for line in err.splitlines() if cid in line and "STARTTLS" in line]
        assert len(lines) == 1, "want one log line about the missing STARTTLS for %s, got:\n%s" % (cid, err[-3000:])
        assert "s3cret" not in err
    finally:
        sink.stop()


def test_mail_envelope_sender_is_signed(ctx):
    """Every message goes out from bounces+<case>.<hmac>@domain, valid for that message."""
    worker_ready(ctx)
    cid, addr, first = running_case("verp-env")
    m = BOUNCE_RE.match(first.meta["mail_from"])
    assert m and m.group(1) == cid.replace("-", ""), "envelope sender %r" % first.meta["mail_from"]
    assert first.meta["mail_from"] == bounce_address(cid, first.header("Message-ID").strip().strip("<>"))


def test_mail_forged_reports_are_unmatched(ctx):
    """Reports that quote our Message-ID but were not sent to a valid tag of that case are
    stored unmatched and change nothing; the real bounce (to the tag) fails the case."""
    worker_ready(ctx)
    cid, addr, first = running_case("verp-forged")
    other_cid, other_addr, other_first = running_case("verp-other")
    tag_addr = first.meta["mail_from"]
    local, domain = tag_addr.split("@")
    flipped = local[:-1] + ("0" if local[-1] != "0" else "1") + "@" + domain
    forgeries = [
        ("no tag, to the inbox", _bounce(first, addr, to="offload@offload.test")),
        ("a tag with a wrong MAC", _bounce(first, addr, to=flipped)),
        ("another case's valid tag", _bounce(first, addr, to=other_first.meta["mail_from"])),
        ("complaint with no tag anywhere", _arf_untagged(first, addr)),
    ]
    for what, raw in forgeries:
        err = _pipe(raw)
        rows = _inbound_rows(None, _msgid_of(raw))
        if what == "another case's valid tag":
            # A valid tag names its own case, whatever Message-ID the report quotes.
            assert rows and rows[0][0] == other_cid, "%s: stored as %r" % (what, rows)
        else:
            assert rows and rows[0][0] in (None, "NULL"), "%s: stored as %r, want unmatched" % (what, rows)
            assert "valid bounce tag" in err or "not valid" in err, "%s: no warning logged:\n%s" % (what, err)
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "RUNNING" and c["resultStatus"] is None, \
        "a forged report changed the case: %s %r\n%s" % (c["status"], c["resultStatus"], worker_stderr(runs))
    # The genuine bounce, to the signed address the message was sent from.
    _pipe(_bounce(first, addr))
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "FAILED" and c["resultStatus"] == "BOUNCED", "%s %r\n%s" % (
        c["status"], c["resultStatus"], worker_stderr(runs))
    assert c["nextActionAt"] == SENTINEL


def _arf_untagged(first, addr):
    """An abuse report that quotes our message's headers (Message-ID included) but none of the
    envelope: what someone who saw the mail's body and headers could write."""
    raw = _arf(first, addr).decode("utf-8")
    raw = raw.replace(first.meta["mail_from"], "offload@offload.test")
    return raw.encode("utf-8")


AUTHSERV = "mx.offload.test"


def _pipe_authres(raw):
    """offload-inbound with [mail] authserv_id = mx.offload.test; returns its stderr."""
    from lib import env, inbound_path
    e = dict(os.environ)
    e["OFFLOAD_MAIL_AUTHSERV_ID"] = AUTHSERV
    p = subprocess.run([inbound_path(), "-c", env().config], input=raw, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, env=e)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, "offload-inbound exited %d:\n%s" % (p.returncode, err)
    return err


def test_mail_authres_gate(ctx):
    """With [mail] authserv_id set, a reply attaches only when the topmost Authentication-Results
    of that id says dmarc=pass or dkim=pass for the counterparty's domain: a forged passing
    field below a failing one, or no field at all, leaves the reply unmatched."""
    worker_ready(ctx)
    cid, addr, first = running_case("authres")
    domain = addr.split("@")[1]
    forged_below, id1 = _reply(first, addr, cid, "Here is the W-9 (forged).", extra_headers=(
        "Authentication-Results: %s; dmarc=fail (p=reject) header.from=%s\n"
        "Received: from attacker.example by mx.offload.test\n"
        "Authentication-Results: %s; dmarc=pass header.from=%s;\n dkim=pass header.d=%s\n"
        % (AUTHSERV, domain, AUTHSERV, domain, domain)))
    no_field, id2 = _reply(first, addr, cid, "Here is the W-9 (no results).")
    other_domain, id3 = _reply(first, addr, cid, "Here is the W-9 (signed elsewhere).", extra_headers=(
        "Authentication-Results: %s; dkim=pass header.d=bulkmailer.example; dmarc=none\n" % AUTHSERV))
    for raw, msgid in ((forged_below, id1), (no_field, id2), (other_domain, id3)):
        err = _pipe_authres(raw)
        rows = sql("SELECT case_id FROM messages WHERE direction='inbound' AND message_id=%s"
                   % sql_str(msgid.strip("<>")))
        assert rows and rows[0][0] in (None, "NULL"), "%s: stored as %r, want unmatched\n%s" % (msgid, rows, err)
        assert "Authentication-Results" in err, "no warning logged:\n%s" % err
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "RUNNING", "an unauthenticated reply reached the case: %s\n%s" % (
        c["status"], worker_stderr(runs))
    good, id4 = _reply(first, addr, cid, "Here is the W-9, signed.", extra_headers=(
        "Authentication-Results: %s;\n dkim=pass (2048-bit key) header.d=%s header.s=s1;\n"
        " spf=pass smtp.mailfrom=%s\n" % (AUTHSERV, domain, addr)))
    _pipe_authres(good)
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "INPUT_NEEDED" and "signed" in c["inputRequest"]["question"], \
        "the authenticated reply did not reach the case: %s\n%s" % (c["status"], worker_stderr(runs))
