"""The worker over a real mail stack (issue 12): Postfix submission with STARTTLS and SASL
through Dovecot, the certificate checked against the stack's own CA, delivery over LMTP into
Dovecot, replies read over IMAPS, and Postfix's own RFC 3464 bounce piped into
offload-inbound at the signed bounce address.

Needs a stack started with "tests/stack/stack up DIR --mail postfix" (tests/run-all does so
when Postfix is installed; in CI it must be). Without it every test here fails in CI and
passes with a note elsewhere.
"""
import email
import email.policy
import email.utils
import os
import re
import smtplib
import subprocess
import time
import uuid

from lib import (SENTINEL, create_case, expect_ok, get_case, minimal_case_body, post, sql, sql_str, worker_env,
                 worker_ready)
from maillib import bounce_address

TIMEOUT = 60


def _stack():
    """The postfix stack's settings, or None when this stack has none (fails in CI)."""
    if os.environ.get("OFFLOAD_MAIL_STACK") != "postfix":
        assert os.environ.get("CI") != "true", "CI must run the e2e suite on a stack with --mail postfix"
        print("# note: no Postfix stack (tests/stack/stack up DIR --mail postfix); skipped")
        return None
    return {
        "config": os.environ["OFFLOAD_POSTFIX_CONFIG"],
        "smtp_port": int(os.environ["OFFLOAD_POSTFIX_SMTP_PORT"]),
        "dir": os.environ["OFFLOAD_STACK_DIR"],
        "postfix": os.environ["OFFLOAD_POSTFIX_DIR"],
    }


def _pf_drain(st, fake=None, max_passes=20):
    """Worker passes with the Postfix config until nothing is left to claim; stderr of all."""
    from lib import faketime_prefix
    out = []
    for _ in range(max_passes):
        cmd = [os.path.join(os.environ["OFFLOAD_BIN"], "offload-worker"), "-c", st["config"], "--once"]
        if fake:
            cmd = faketime_prefix(fake) + cmd
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=180, env=worker_env())
        err = p.stderr.decode("utf-8", "replace")
        out.append(err)
        assert p.returncode == 0, "worker (postfix config) exited %d:\n%s" % (p.returncode, err[-3000:])
        if "work remains" not in err:
            return "\n".join(out)
    raise AssertionError("the worker still had work after %d passes" % max_passes)


def _mailbox(st, user):
    """Messages delivered (by Dovecot LMTP) to DIR/mail/USER/Maildir, oldest first."""
    found = []
    for sub in ("new", "cur"):
        d = os.path.join(st["dir"], "mail", user, "Maildir", sub)
        if os.path.isdir(d):
            for name in os.listdir(d):
                with open(os.path.join(d, name), "rb") as f:
                    found.append(f.read())
    msgs = [email.message_from_bytes(raw, policy=email.policy.compat32) for raw in found]
    return sorted(msgs, key=lambda m: email.utils.parsedate_to_datetime(m["Date"]).timestamp() if m["Date"] else 0)


def _wait_mail(st, user, pred, what):
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        got = [m for m in _mailbox(st, user) if pred(m)]
        if got:
            return got
        time.sleep(0.1)
    log = open(os.path.join(st["postfix"], "maillog"), encoding="utf-8", errors="replace").read()[-4000:]
    raise AssertionError("no %s in %s's mailbox within %ds; Postfix log:\n%s" % (what, user, TIMEOUT, log))


def _case_mail(st, user, cid, n):
    return _wait_mail(st, user, lambda m: (m["X-Offload-Case"] or "").strip() == cid, "message of case %s" % cid) \
        if n == 1 else _wait_for_count(st, user, cid, n)


def _wait_for_count(st, user, cid, n):
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        got = [m for m in _mailbox(st, user) if (m["X-Offload-Case"] or "").strip() == cid]
        if len(got) >= n:
            return got
        time.sleep(0.1)
    raise AssertionError("fewer than %d messages of case %s reached %s" % (n, cid, user))


def _send_from_world(st, frm, to, subject, text, in_reply_to=None, refs=None):
    """A counterparty's mail, through Postfix's port-25 service (no authentication)."""
    msg = email.message.EmailMessage()
    msg["From"] = "Maya Chen <%s>" % frm
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=False)
    msgid = "<%s@mail.northstar.test>" % uuid.uuid4().hex
    msg["Message-ID"] = msgid
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = " ".join(refs or [in_reply_to])
    msg.set_content(text)
    with smtplib.SMTP("127.0.0.1", st["smtp_port"], timeout=30) as s:
        s.sendmail(frm, [to], msg.as_bytes())
    return msgid


def _wait_inbound(cid, kind, n=1):
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        got = sql("SELECT COUNT(*) FROM messages WHERE direction='inbound' AND case_id=%s AND kind=%s"
                  % (sql_str(cid), sql_str(kind)))[0][0]
        if int(got) >= n:
            return
        time.sleep(0.1)
    raise AssertionError("no inbound %s for case %s within %ds" % (kind, cid, TIMEOUT))


def _maillog(st):
    with open(os.path.join(st["postfix"], "maillog"), encoding="utf-8", errors="replace") as f:
        return f.read()


def test_mail_postfix_journey(ctx):
    """CREATED -> first message through submission (STARTTLS + AUTH) -> Dovecot -> a follow-up
    -> the counterparty's reply through Postfix into the service mailbox, read over IMAPS ->
    INPUT_NEEDED -> the operator's REPLY goes out in the thread -> another reply -> the
    operator's GOAL_ACHIEVED -> COMPLETED."""
    st = _stack()
    if not st:
        return
    worker_ready(ctx)
    addr = "maya@northstar.test"
    body = minimal_case_body()
    body.update({"counterparty": {"address": addr, "name": "Maya Chen", "company": "Northstar"},
                 "followUpDelayHours": 24, "maxAttempts": 3})
    cid = create_case(body)
    err = _pf_drain(st)
    c = get_case(cid)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 1, "%s %r\n%s" % (c["status"], c["attemptCount"],
                                                                                err[-3000:])
    (m1,) = _case_mail(st, "maya", cid, 1)
    id1 = m1["Message-ID"].strip()
    # Dovecot's LMTP records the envelope sender: the signed bounce address of this message.
    assert m1["Return-Path"].strip("<> ") == bounce_address(cid, id1.strip("<>")), \
        "Return-Path %r" % m1["Return-Path"]
    log = _maillog(st)
    assert re.search(r"postfix/submission/smtpd\[\d+\]: \w+: client=localhost\[127\.0\.0\.1\], sasl_method=\w+, "
                     r"sasl_username=offload", log), "no authenticated submission in the Postfix log"
    assert re.search(r"postfix/submission/smtpd\[\d+\]: disconnect from \S+ ehlo=2 starttls=1 auth=1", log), \
        "the submission did not go EHLO, STARTTLS, EHLO, AUTH"

    # A follow-up at +25h, in the thread.
    _pf_drain(st, fake="+25h")
    m1, m2 = _case_mail(st, "maya", cid, 2)[:2]
    assert (m2["In-Reply-To"] or "").strip() == id1, "In-Reply-To %r" % m2["In-Reply-To"]
    assert get_case(cid)["attemptCount"] == 2

    # The counterparty answers, to the plus address in Reply-To, through Postfix.
    reply_to = m1["Reply-To"].strip("<> ")
    assert reply_to == "offload+%s@offload.test" % cid, "Reply-To %r" % m1["Reply-To"]
    _send_from_world(st, addr, reply_to, "Re: " + m1["Subject"], "Which tax year do you need? Maya",
                     in_reply_to=m2["Message-ID"].strip(), refs=[id1, m2["Message-ID"].strip()])
    _wait_mail(st, "service", lambda m: "Which tax year" in m.get_payload(decode=False), "the reply")
    err = _pf_drain(st, fake="+26h")
    c = get_case(cid)
    assert c["status"] == "INPUT_NEEDED" and "Which tax year" in c["inputRequest"]["question"], \
        "%s %r (the reply was not read over IMAPS?)\n%s" % (c["status"], c["inputRequest"], err[-3000:])
    assert c["nextActionAt"] == SENTINEL

    expect_ok(post("/cases/%s/input" % cid, {"inputRequestId": c["inputRequest"]["id"],
                                             "providedContext": "2026",
                                             "decision": {"outcome": "REPLY", "reply": "The 2026 tax year, please."}}),
              202)
    _pf_drain(st, fake="+26h")
    mails = _case_mail(st, "maya", cid, 3)
    assert "2026 tax year" in mails[2].get_payload(decode=True).decode("utf-8", "replace")
    assert get_case(cid)["status"] == "RUNNING"

    _send_from_world(st, addr, reply_to, "Re: " + m1["Subject"], "Signed W-9 for 2026 sent by post. Maya",
                     in_reply_to=mails[2]["Message-ID"].strip())
    _wait_mail(st, "service", lambda m: "sent by post" in m.get_payload(decode=False), "the second reply")
    _pf_drain(st, fake="+27h")
    c = get_case(cid)
    assert c["status"] == "INPUT_NEEDED", c["status"]
    expect_ok(post("/cases/%s/input" % cid, {"inputRequestId": c["inputRequest"]["id"], "providedContext": "ok",
                                             "decision": {"outcome": "GOAL_ACHIEVED", "result": {"w9": True}}}), 202)
    _pf_drain(st, fake="+27h")
    c = get_case(cid)
    assert c["status"] == "COMPLETED" and c["result"] == {"w9": True}, "%s %r" % (c["status"], c["result"])


def test_mail_postfix_real_bounce(ctx):
    """An unknown local recipient: Postfix accepts the submission, Dovecot's LMTP refuses the
    user, Postfix writes a real RFC 3464 bounce to the signed bounce address, the pipe hands
    it to offload-inbound, and the case ends BOUNCED."""
    st = _stack()
    if not st:
        return
    worker_ready(ctx)
    addr = "nobody-%s@northstar.test" % uuid.uuid4().hex[:8]
    body = minimal_case_body()
    body["counterparty"] = {"address": addr, "name": "Nobody"}
    cid = create_case(body)
    err = _pf_drain(st)
    assert get_case(cid)["status"] == "RUNNING", err[-3000:]
    _wait_inbound(cid, "dsn")
    rows = sql("SELECT kind FROM messages WHERE direction='inbound' AND case_id=%s" % sql_str(cid))
    assert [list(r) for r in rows] == [["dsn"]], "inbound rows %r" % rows
    err = _pf_drain(st)
    c = get_case(cid)
    assert c["status"] == "FAILED" and c["resultStatus"] == "BOUNCED", "%s %r\n%s" % (
        c["status"], c["resultStatus"], err[-3000:])
    assert "5.1.1" in (c["failureReason"] or ""), "failureReason %r" % c["failureReason"]
    assert re.search(r"postfix/pipe\[\d+\]: \w+: to=<bounces\+%s\.[0-9a-f]{16}@offload\.test>, relay=offload-pipe"
                     % cid.replace("-", ""), _maillog(st)), "the bounce did not go through the pipe"
