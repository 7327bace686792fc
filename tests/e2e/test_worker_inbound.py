"""Inbound mail: replies, bounces, complaints, auto-replies and attachments, through
offload-inbound (the MTA pipe) and through the worker's IMAP polling of the stack's Dovecot
(doc/api.md, "Lifecycle" and "Attachments"; doc/operator-guide.md, "Mail").

The messages are built here, shaped like real ones (Postfix DSN, ARF report, Outlook
auto-reply, a reply with quoted history and a PDF). Until offload-inbound is built these
tests fail with "offload-inbound not built yet".
"""
import base64
import email.utils
import json
import os
import re
import urllib.parse
import uuid

from lib import (LOOPBACK_HOSTS, SENTINEL, create_case, expect_ok, get, get_case, http, imap_append, imap_uids,
                 inbound, inbound_path, minimal_case_body, now_ms, outbox_to, post, running_case, sql, sql_str,
                 unique_address, worker_drain, worker_ready, worker_stderr)

HOOK = "http://127.0.0.1:9/hook"
INBOX = "offload@offload.test"


def _crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _date():
    return email.utils.formatdate(localtime=False)


def _new_id(domain="mail.northstar.example"):
    return "<%s@%s>" % (uuid.uuid4().hex, domain)


def _reply(first, addr, cid, text, msgid=None, extra_headers="", subject=None):
    """A plain reply from the counterparty to our first message, with quoted history."""
    msgid = msgid or _new_id()
    first_id = first.header("Message-ID").strip()
    subject = subject or "Re: " + first.header("Subject")
    quoted = "\n".join("> " + line for line in first.text().splitlines())
    return _crlf(
        "Return-Path: <%(addr)s>\n"
        "From: Maya Chen <%(addr)s>\n"
        "To: =?utf-8?q?Zo=C3=AB?= <offload+%(cid)s@offload.test>\n"
        "Subject: %(subject)s\n"
        "Date: %(date)s\n"
        "Message-ID: %(msgid)s\n"
        "In-Reply-To: %(first)s\n"
        "References: %(first)s\n"
        "%(extra)s"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "%(text)s\n"
        "\n"
        "On Mon, 23 Nov 2026 at 11:04, Avery <offload@offload.test> wrote:\n"
        "%(quoted)s\n" % {"addr": addr, "cid": cid, "subject": subject, "date": _date(), "msgid": msgid,
                          "first": first_id, "extra": extra_headers, "text": text, "quoted": quoted}), msgid


def _reply_with_pdf(first, addr, cid, text, pdf, filename, parent=None, refs=None):
    """A multipart/mixed reply (text and HTML alternatives, a PDF with an RFC 2231 name) to
    parent (default: first), References refs (default: parent's id)."""
    msgid = _new_id()
    parent_id = (parent or first).header("Message-ID").strip()
    refs = refs or [parent_id]
    b64 = base64.encodebytes(pdf).decode("ascii")
    fname_ascii = filename.encode("ascii", "replace").decode("ascii")
    fname_2231 = urllib.parse.quote(filename, safe="")
    raw = _crlf(
        "From: Maya Chen <%(addr)s>\n"
        "To: offload+%(cid)s@offload.test\n"
        "Subject: Re: %(subject)s\n"
        "Date: %(date)s\n"
        "Message-ID: %(msgid)s\n"
        "In-Reply-To: %(parent)s\n"
        "References: %(refs)s\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"mix-b1\"\n"
        "\n"
        "This is a multi-part message in MIME format.\n"
        "--mix-b1\n"
        "Content-Type: multipart/alternative; boundary=\"alt-b2\"\n"
        "\n"
        "--alt-b2\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        "%(text)s\n"
        "--alt-b2\n"
        "Content-Type: text/html; charset=utf-8\n"
        "\n"
        "<html><body><p>%(text)s</p></body></html>\n"
        "--alt-b2--\n"
        "\n"
        "--mix-b1\n"
        "Content-Type: application/pdf; name=\"%(fa)s\"\n"
        "Content-Disposition: attachment; filename*=utf-8''%(f2231)s\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "%(b64)s"
        "--mix-b1--\n" % {"addr": addr, "cid": cid, "subject": first.header("Subject"), "date": _date(),
                          "msgid": msgid, "parent": parent_id, "refs": "\n ".join(refs), "text": text,
                          "fa": fname_ascii, "f2231": fname_2231,
                          "b64": b64})
    return raw, msgid


def _bounce(first, addr, to=None):
    """A Postfix-style RFC 3464 bounce for our first message, to the envelope sender (its
    signed bounce address, where a real MTA sends it) unless to says otherwise."""
    first_id = first.header("Message-ID").strip()
    to = to or first.meta["mail_from"]
    return _crlf(
        "Return-Path: <>\n"
        "From: MAILER-DAEMON@mx.northstar.example (Mail Delivery System)\n"
        "To: %(to)s\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Date: %(date)s\n"
        "Message-ID: %(msgid)s\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status;\n"
        "\tboundary=\"4F1A2B3C4D.1774131900/mx.northstar.example\"\n"
        "\n"
        "This is a MIME-encapsulated message.\n"
        "\n"
        "--4F1A2B3C4D.1774131900/mx.northstar.example\n"
        "Content-Description: Notification\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "This is the mail system at host mx.northstar.example.\n"
        "\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n"
        "\n"
        "<%(addr)s>: host mail.northstar.example[192.0.2.25] said: 550 5.1.1\n"
        "    <%(addr)s>: Recipient address rejected: User unknown in virtual\n"
        "    mailbox table (in reply to RCPT TO command)\n"
        "\n"
        "--4F1A2B3C4D.1774131900/mx.northstar.example\n"
        "Content-Description: Delivery report\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.northstar.example\n"
        "X-Postfix-Queue-ID: 4F1A2B3C4D\n"
        "X-Postfix-Sender: rfc822; %(to)s\n"
        "Arrival-Date: %(date)s\n"
        "\n"
        "Final-Recipient: rfc822; %(addr)s\n"
        "Original-Recipient: rfc822;%(addr)s\n"
        "Action: failed\n"
        "Status: 5.1.1\n"
        "Remote-MTA: dns; mail.northstar.example\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <%(addr)s>: Recipient address rejected:\n"
        "    User unknown in virtual mailbox table\n"
        "\n"
        "--4F1A2B3C4D.1774131900/mx.northstar.example\n"
        "Content-Description: Undelivered Message Headers\n"
        "Content-Type: text/rfc822-headers\n"
        "\n"
        "Return-Path: <%(to)s>\n"
        "From: Avery <offload@offload.test>\n"
        "To: Maya Chen <%(addr)s>\n"
        "Subject: %(subject)s\n"
        "Message-Id: %(first)s\n"
        "Date: %(date)s\n"
        "\n"
        "--4F1A2B3C4D.1774131900/mx.northstar.example--\n" % {
            "date": _date(), "msgid": _new_id("mx.northstar.example"), "addr": addr,
            "subject": first.header("Subject"), "first": first_id, "to": to})


def _arf(first, addr):
    """An RFC 5965 abuse report about our first message (the whole message attached, with the
    Return-Path the receiving MTA added), sent to our feedback address."""
    original = ("Return-Path: <%s>\n" % first.meta["mail_from"] +
                first.raw.decode("utf-8", "replace").replace("\r\n", "\n"))
    return _crlf(
        "From: Mail Abuse Feedback <feedback@fbl.mailbox-provider.example>\n"
        "To: offload@offload.test\n"
        "Subject: FW: %(subject)s\n"
        "Date: %(date)s\n"
        "Message-ID: %(msgid)s\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=feedback-report;\n"
        "\tboundary=\"part1_13d.2e68ed54_boundary\"\n"
        "\n"
        "--part1_13d.2e68ed54_boundary\n"
        "Content-Type: text/plain; charset=\"US-ASCII\"\n"
        "Content-Transfer-Encoding: 7bit\n"
        "\n"
        "This is an email abuse report for an email message received from IP\n"
        "192.0.2.1 on %(date)s.\n"
        "For more information about this format please see\n"
        "https://www.rfc-editor.org/rfc/rfc5965\n"
        "\n"
        "--part1_13d.2e68ed54_boundary\n"
        "Content-Type: message/feedback-report\n"
        "\n"
        "Feedback-Type: abuse\n"
        "User-Agent: SomeGenerator/1.0\n"
        "Version: 1\n"
        "Original-Mail-From: <%(mail_from)s>\n"
        "Original-Rcpt-To: <%(addr)s>\n"
        "Arrival-Date: %(date)s\n"
        "Reported-Domain: offload.test\n"
        "Source-IP: 192.0.2.1\n"
        "\n"
        "--part1_13d.2e68ed54_boundary\n"
        "Content-Type: message/rfc822\n"
        "Content-Disposition: inline\n"
        "\n"
        "%(original)s\n"
        "--part1_13d.2e68ed54_boundary--\n" % {
            "subject": first.header("Subject"), "date": _date(), "msgid": _new_id("fbl.mailbox-provider.example"),
            "addr": addr, "original": original.rstrip("\n"), "mail_from": first.meta["mail_from"]})


def _ooo(first, addr, cid):
    """An Outlook-style out-of-office reply (RFC 3834 Auto-Submitted: auto-replied)."""
    return _reply(first, addr, cid, "I am out of the office until Monday with limited access to email.",
                  subject="Automatic reply: " + first.header("Subject"),
                  extra_headers="Auto-Submitted: auto-replied\nX-Auto-Response-Suppress: All\n"
                                "Precedence: auto_reply\n")


def _pipe(raw, want=0):
    rc, err = inbound(raw)
    assert rc == want, "offload-inbound exited %d, want %d; stderr:\n%s" % (rc, want, err)
    return err


def _webhook_rows(cid):
    return sql("SELECT event_type, body, state FROM webhook_deliveries WHERE case_id=%s ORDER BY id" % sql_str(cid))


def _transcript(cid):
    return get_case(cid, query="?includeTranscript=true")["conversationThread"]


def _download(case_id, att):
    d = expect_ok(get("/cases/%s/attachments/%s" % (case_id, att["attachmentId"])), 200)
    url = d["downloadUrl"]
    u = urllib.parse.urlsplit(url)
    assert u.hostname in LOOPBACK_HOSTS, "downloadUrl %r is not on the stack's loopback address" % url
    r = http("GET", u.path + ("?" + u.query if u.query else ""), key=None)
    assert r.status == 200, "GET %s: HTTP %s %r" % (url, r.status, r.raw[:300])
    return r.raw


def _check_fetched(cid, runs):
    """After a pass: the message appended to the IMAP INBOX is stored for the case."""
    n = sql("SELECT COUNT(*) FROM messages WHERE direction='inbound' AND case_id=%s" % sql_str(cid))[0][0]
    assert n != "0", "offload-worker did not fetch the reply from the stack's IMAP INBOX (no inbound " \
        "message for the case after a pass with [mail] imap_url set)\n%s" % worker_stderr(runs)


def _check_input_needed(cid, token, runs):
    c = get_case(cid)
    assert c["status"] == "INPUT_NEEDED", "status %r after the reply, want INPUT_NEEDED\n%s" % (
        c["status"], worker_stderr(runs))
    ir = c["inputRequest"]
    assert isinstance(ir, dict) and ir.get("status") == "PENDING", "inputRequest %r" % ir
    assert set(ir) == {"id", "question", "status", "requestedAt"}, "inputRequest keys %r" % sorted(ir)
    assert token in ir["question"], "the question does not quote the reply (%r):\n%s" % (token, ir["question"])
    assert isinstance(ir["requestedAt"], int)
    assert c["nextActionAt"] == SENTINEL, "nextActionAt %r, want the sentinel while waiting" % c["nextActionAt"]
    return c


# ----------------------------------------------------------------------------- tests

def test_inbound_reply_needs_input(ctx):
    inbound_path()
    worker_ready(ctx)
    cid, addr, first = running_case("in-reply", clientWebhookUrl=HOOK, clientReferenceId="ref-in-1")
    token = "Reply-%s: the signed W-9 is attached to my next mail, caf\u00e9." % uuid.uuid4().hex[:8]
    raw, msgid = _reply(first, addr, cid, "Hi Avery,\n\n" + token + "\n\nMaya")
    _pipe(raw)
    runs = worker_drain()
    c = _check_input_needed(cid, token, runs)
    assert c["attemptCount"] == 1, "attemptCount %r" % c["attemptCount"]
    assert len(outbox_to(addr)) == 1, "the manual agent answered by itself"
    tr = _transcript(cid)
    heads = re.findall(r"^--- \S+ (inbound|outbound) ---$", tr, re.M)
    assert heads == ["outbound", "inbound"], "transcript headings %r:\n%s" % (heads, tr)
    assert token in tr, "the transcript lacks the reply:\n%s" % tr
    # The webhook for INPUT_NEEDED
    rows = [r for r in _webhook_rows(cid) if r[0] == "case.input_needed"]
    assert len(rows) == 1, "webhook rows %r" % _webhook_rows(cid)
    body = json.loads(rows[0][1])
    assert body["event_id"] == "evt_%s_case_input_needed_%d" % (cid, c["updatedAt"]), "event_id %r" % body["event_id"]
    data = body["data"]
    for k in ("caseId", "status", "channel", "attemptCount", "attachments", "clientReferenceId", "inputRequest"):
        assert data.get(k) == c[k], "data.%s %r, GET %r" % (k, data.get(k), c[k])
    assert data.get("inputRequestId") == c["inputRequest"]["id"], "data %r" % data
    assert data.get("inputRequestStatus") == "PENDING", "data %r" % data
    assert data.get("inputRequestedAt") == c["inputRequest"]["requestedAt"], "data %r" % data
    assert "resultStatus" not in data and "result" not in data, "input_needed data has terminal fields: %r" % data

    # The operator completes it
    expect_ok(post("/cases/%s/input" % cid, {"inputRequestId": c["inputRequest"]["id"], "providedContext": "ok",
                                             "decision": {"outcome": "GOAL_ACHIEVED",
                                                          "result": {"signedW9Received": True}}}), 202)
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "COMPLETED" and c["result"] == {"signedW9Received": True}, "%s %r\n%s" % (
        c["status"], c["result"], worker_stderr(runs))


def test_inbound_same_message_twice(ctx):
    inbound_path()
    worker_ready(ctx)
    cid, addr, first = running_case("in-dup")
    raw, msgid = _reply(first, addr, cid, "Twice-delivered reply %s." % uuid.uuid4().hex[:8])
    _pipe(raw)
    _pipe(raw)
    bare = msgid.strip("<>")
    n = sql("SELECT COUNT(*) FROM messages WHERE direction='inbound' AND message_id IN (%s, %s)" % (
        sql_str(bare), sql_str(msgid)))[0][0]
    assert n == "1", "the message is stored %s times" % n
    ev = sql("SELECT COUNT(*) FROM events WHERE case_id=%s AND type='REPLY_RECEIVED'" % sql_str(cid))[0][0]
    assert ev == "1", "%s REPLY_RECEIVED events" % ev
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "INPUT_NEEDED", "status %r\n%s" % (c["status"], worker_stderr(runs))
    tr = _transcript(cid)
    assert len(re.findall(r"^--- \S+ inbound ---$", tr, re.M)) == 1, "transcript:\n%s" % tr


def test_inbound_bounce(ctx):
    inbound_path()
    worker_ready(ctx)
    cid, addr, first = running_case("in-bounce", clientWebhookUrl=HOOK)
    _pipe(_bounce(first, addr))
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "FAILED" and c["resultStatus"] == "BOUNCED", "%s %r, want FAILED BOUNCED\n%s" % (
        c["status"], c["resultStatus"], worker_stderr(runs))
    assert "5.1.1" in (c["failureReason"] or ""), "failureReason %r lacks the diagnostic" % c["failureReason"]
    assert c["nextActionAt"] == SENTINEL
    assert [r[0] for r in _webhook_rows(cid)] == ["case.failed"], "webhook rows %r" % _webhook_rows(cid)
    # Final: the follow-up never goes out
    worker_drain(fake="+30h")
    assert len(outbox_to(addr)) == 1 and get_case(cid)["status"] == "FAILED"


def test_inbound_complaint(ctx):
    inbound_path()
    worker_ready(ctx)
    cid, addr, first = running_case("in-arf")
    _pipe(_arf(first, addr))
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "FAILED" and c["resultStatus"] == "COMPLAINED", "%s %r, want FAILED COMPLAINED\n%s" % (
        c["status"], c["resultStatus"], worker_stderr(runs))
    assert "abuse" in (c["failureReason"] or "").lower(), "failureReason %r" % c["failureReason"]


def test_inbound_auto_reply_is_not_a_reply(ctx):
    inbound_path()
    worker_ready(ctx)
    cid, addr, first = running_case("in-ooo")
    before = get_case(cid)
    raw, _ = _ooo(first, addr, cid)
    _pipe(raw)
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "RUNNING", "status %r after an auto-reply\n%s" % (c["status"], worker_stderr(runs))
    assert c["inputRequest"] is None, "inputRequest %r" % c["inputRequest"]
    assert c["nextActionAt"] == before["nextActionAt"], "the auto-reply moved the schedule: %r -> %r" % (
        before["nextActionAt"], c["nextActionAt"])
    tr = _transcript(cid)
    assert "out of the office until Monday" in tr, "the auto-reply is not in the transcript:\n%s" % tr
    # The follow-up still goes out: nobody really answered
    runs = worker_drain(fake="+25h")
    assert len(outbox_to(addr)) == 2, "no follow-up after an auto-reply\n%s" % worker_stderr(runs)
    assert get_case(cid)["attemptCount"] == 2


def test_inbound_not_a_mail(ctx):
    inbound_path()
    for raw in (b"", b"this is not an email message\n", b"\r\n\r\njust a body\r\n"):
        rc, err = inbound(raw)
        assert rc == 65, "offload-inbound on %r exited %d, want 65; stderr:\n%s" % (raw, rc, err)


def test_inbound_unmatched_is_kept(ctx):
    inbound_path()
    msgid = _new_id("elsewhere.example")
    raw = _crlf("From: Someone <someone@elsewhere.example>\nTo: offload@offload.test\nSubject: hello\n"
                "Date: %s\nMessage-ID: %s\n\nNot about any case.\n" % (_date(), msgid))
    _pipe(raw)
    rows = sql("SELECT case_id FROM messages WHERE direction='inbound' AND message_id IN (%s, %s)" % (
        sql_str(msgid.strip("<>")), sql_str(msgid)))
    assert rows == [[None]], "the unmatched message is stored as %r, want one row without a case" % rows


def test_inbound_pdf_through_the_pipe(ctx):
    inbound_path()
    worker_ready(ctx)
    cid, addr, first = running_case("in-pdf")
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + os.urandom(5000) + b"\n%%EOF\n"
    name = "Formulaire W-9 sign\u00e9.pdf"
    raw, msgid = _reply_with_pdf(first, addr, cid, "Here is the signed form.", pdf, name)
    t0 = now_ms()
    _pipe(raw)
    t1 = now_ms()
    c = get_case(cid)
    atts = c["attachments"]
    assert len(atts) == 1, "attachments %r" % atts
    a = atts[0]
    assert a["name"] == name and a["size"] == len(pdf) and a["type"] == "application/pdf", "attachment %r" % a
    assert a["messageId"].strip("<>") == msgid.strip("<>"), "messageId %r, want %r" % (a["messageId"], msgid)
    assert a["inboxId"] in (INBOX, "offload+%s@offload.test" % cid), "inboxId %r" % a["inboxId"]
    assert t0 - 1000 <= a["receivedAt"] <= t1 + 1000, "receivedAt %r" % a["receivedAt"]
    got = _download(cid, a)
    assert got == pdf, "the download differs: %d bytes, want %d" % (len(got), len(pdf))
    runs = worker_drain()
    _check_input_needed(cid, "Here is the signed form.", runs)


def test_imap_reply(ctx):
    inbound_path()
    worker_ready(ctx)
    cid, addr, first = running_case("imap-reply")
    token = "IMAP-%s please call me." % uuid.uuid4().hex[:8]
    raw, msgid = _reply(first, addr, cid, token)
    uids_before = set(imap_uids())
    imap_append(raw)
    assert len(set(imap_uids()) - uids_before) == 1, "the IMAP append did not land"
    runs = worker_drain()
    _check_fetched(cid, runs)
    _check_input_needed(cid, token, runs)
    n = sql("SELECT COUNT(*) FROM messages WHERE direction='inbound' AND case_id=%s" % sql_str(cid))[0][0]
    assert n == "1", "%s inbound rows" % n
    # A second pass does not ingest it again
    again = worker_drain()
    n = sql("SELECT COUNT(*) FROM messages WHERE direction='inbound' AND case_id=%s" % sql_str(cid))[0][0]
    assert n == "1", "%s inbound rows after another pass" % n
    bare = msgid.strip("<>")
    if bare in "\n".join(r.stderr for r in runs):
        assert bare not in "\n".join(r.stderr for r in again), \
            "the second pass handled the message again:\n%s" % worker_stderr(again)
    ev = sql("SELECT COUNT(*) FROM events WHERE case_id=%s AND type='REPLY_RECEIVED'" % sql_str(cid))[0][0]
    assert ev == "1", "%s REPLY_RECEIVED events" % ev


def test_worker_journey(ctx):
    """Issue 3 "Done when": CREATED -> RUNNING -> follow-ups at the right times -> a reply with a
    PDF over IMAP -> INPUT_NEEDED -> the operator's GOAL_ACHIEVED -> COMPLETED, the attachment
    downloadable through its signed link."""
    inbound_path()
    worker_ready(ctx)
    addr = unique_address("journey")
    body = minimal_case_body()
    body.update({
        "counterparty": {"address": addr, "name": "Maya Chen", "company": "Northstar Supplies"},
        "senderPersona": {"name": "Avery", "role": "Accounts Payable", "company": "Example Corp"},
        "followUpDelayHours": 24, "maxAttempts": 3, "clientWebhookUrl": HOOK,
        "resultSchema": {"type": "object", "properties": {"signedW9Received": {"type": "boolean"}},
                         "required": ["signedW9Received"]},
    })
    cid = create_case(body)
    assert get_case(cid)["status"] == "CREATED"

    runs = worker_drain()
    mails = outbox_to(addr)
    assert len(mails) == 1 and get_case(cid)["status"] == "RUNNING", worker_stderr(runs)
    m1 = mails[0]
    id1 = m1.header("Message-ID").strip()
    assert m1.msg["In-Reply-To"] is None and m1.header("X-Offload-Case") == cid

    for fake, want in (("+23h", 1), ("+25h", 2), ("+48h", 2), ("+50h", 3)):
        runs = worker_drain(fake=fake)
        got = outbox_to(addr)
        assert len(got) == want, "at %s: %d messages, want %d\n%s" % (fake, len(got), want, worker_stderr(runs))
    m2, m3 = got[1], got[2]
    id2, id3 = m2.header("Message-ID").strip(), m3.header("Message-ID").strip()
    assert (m2.header("In-Reply-To") or "").strip() == id1 and (m3.header("In-Reply-To") or "").strip() == id2, \
        "In-Reply-To %r, %r" % (m2.header("In-Reply-To"), m3.header("In-Reply-To"))
    refs3 = re.findall(r"<[^<>\s]+>", m3.header("References") or "")
    assert id1 in refs3 and id2 in refs3, "References of the third message %r" % refs3
    c = get_case(cid)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 3, "%s %r" % (c["status"], c["attemptCount"])

    pdf = b"%PDF-1.7\n" + os.urandom(20000) + b"\n%%EOF\n"
    raw, msgid = _reply_with_pdf(m1, addr, cid, "Hello Avery, the signed W-9 is attached. Maya", pdf,
                                 "W-9 signed.pdf", parent=m3, refs=[id1, id2, id3])
    imap_append(raw)
    runs = worker_drain(fake="+51h")
    _check_fetched(cid, runs)
    c = _check_input_needed(cid, "the signed W-9 is attached", runs)
    assert len(outbox_to(addr)) == 3
    atts = c["attachments"]
    assert len(atts) == 1 and atts[0]["name"] == "W-9 signed.pdf" and atts[0]["size"] == len(pdf), \
        "attachments %r" % atts

    result = {"signedW9Received": True}
    expect_ok(post("/cases/%s/input" % cid, {"inputRequestId": c["inputRequest"]["id"],
                                             "providedContext": "Checked the form.",
                                             "decision": {"outcome": "GOAL_ACHIEVED", "result": result}}), 202)
    runs = worker_drain(fake="+51h")
    c = get_case(cid)
    assert c["status"] == "COMPLETED" and c["resultStatus"] == "goal_achieved" and c["result"] == result, \
        "%s %r %r\n%s" % (c["status"], c["resultStatus"], c["result"], worker_stderr(runs))
    assert _download(cid, c["attachments"][0]) == pdf, "the downloaded attachment differs"
    assert [r[0] for r in _webhook_rows(cid)] == ["case.input_needed", "case.completed"], \
        "webhook rows %r" % [r[0] for r in _webhook_rows(cid)]
    tr = _transcript(cid)
    heads = re.findall(r"^--- \S+ (inbound|outbound) ---$", tr, re.M)
    assert heads == ["outbound"] * 3 + ["inbound"], "transcript headings %r" % heads

    # Final: nothing more goes out
    worker_drain(fake="+200h")
    assert len(outbox_to(addr)) == 3 and get_case(cid)["status"] == "COMPLETED"


def test_imap_mailbox_lease_keeps_other_workers_out(ctx):
    """The per-mailbox lock of IMAP polling is a row of named_leases (GET_LOCK is not
    replicated by Galera). While another worker holds the mailbox's lease, a pass does not
    read the mailbox; once that lease has expired (its worker died), the next pass takes it
    over and ingests the message, once; the lease is given back after the pass."""
    import hashlib
    inbound_path()
    worker_ready(ctx)
    worker_drain()  # the mailbox's state row exists after a pass
    keys = [r[0] for r in sql("SELECT mailbox FROM mailbox_state")]
    assert keys, "no mailbox_state row after a pass"
    names = ["offload-imap-" + hashlib.sha256(k.encode()).hexdigest()[:40] for k in keys if not k.startswith("sha256:")]
    assert names, keys
    cid, addr, first = running_case("imap-lease")
    token = "LEASE-%s call me." % uuid.uuid4().hex[:8]
    raw, msgid = _reply(first, addr, cid, token)
    for n in names:
        sql("INSERT INTO named_leases (name, owner, expires_at, taken_at) VALUES (%s, 'otherhost:7:poll', %d, %d)"
            " ON DUPLICATE KEY UPDATE owner = VALUES(owner), expires_at = VALUES(expires_at)"
            % (sql_str(n), now_ms() + 600000, now_ms()))
    try:
        imap_append(raw)
        worker_drain()
        inbound = "SELECT COUNT(*) FROM messages WHERE direction='inbound' AND case_id=%s" % sql_str(cid)
        assert sql(inbound)[0][0] == "0", "a pass read the mailbox while another worker held its lease"
        for n in names:
            sql("UPDATE named_leases SET expires_at = %d WHERE name = %s" % (now_ms() - 1, sql_str(n)))
        runs = worker_drain()
        _check_fetched(cid, runs)
        assert sql(inbound)[0][0] == "1"
        # The polled mailbox's lease was taken over and given back (mailbox_state may name
        # other mailboxes, polled by nobody now: their stale rows stay as they were).
        left = sql("SELECT name, owner FROM named_leases WHERE name IN (%s)" % ", ".join(sql_str(n) for n in names))
        assert len(left) < len(names), "no lease was taken over: %r" % left
        assert all(o == "otherhost:7:poll" for _, o in left), "a lease left behind after the pass: %r" % left
    finally:
        sql("DELETE FROM named_leases WHERE owner = 'otherhost:7:poll'")


def test_imap_two_passes_at_once_read_each_message_once(ctx):
    """Two worker passes started together over 12 new messages in the mailbox: the lease
    lets one of them read the mailbox at a time, so between them every message is fetched
    once (no pass finds a duplicate), each stored once."""
    import re
    from lib import worker_finish, worker_start
    inbound_path()
    worker_ready(ctx)
    worker_drain()
    cases = [running_case("imap-two-%d" % i) for i in range(12)]
    for cid, addr, first in cases:
        imap_append(_reply(first, addr, cid, "Two passes %s." % uuid.uuid4().hex[:6])[0])
    procs = [worker_start(), worker_start()]
    runs = [worker_finish(p, f) for p, f in procs]
    fetched = duplicates = 0
    for r in runs:
        assert r.rc == 0, "worker exited %d\n%s" % (r.rc, r.tail())
        for m in re.finditer(r"mail: (\d+) fetched, \d+ matched, \d+ unmatched, (\d+) duplicates", r.stderr):
            fetched += int(m.group(1))
            duplicates += int(m.group(2))
    assert duplicates == 0, "a pass fetched messages the other had stored:\n%s" % worker_stderr(runs)
    assert fetched == len(cases), "%d messages fetched by the two passes, want %d\n%s" % (
        fetched, len(cases), worker_stderr(runs))
    for cid, _, _ in cases:
        n = sql("SELECT COUNT(*) FROM messages WHERE direction='inbound' AND case_id=%s" % sql_str(cid))[0][0]
        assert n == "1", "%s: %s inbound rows" % (cid, n)
