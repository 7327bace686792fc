"""offload-worker: the first email, follow-ups at the right times, threading, max_retries
(doc/api.md, "Lifecycle").

Each test uses its own recipient address and reads what the stack's SMTP sink stored for it.
Time moves with faketime around offload-worker.
"""
import calendar
import re
import time

from lib import (SENTINEL, create_case, get_case, iso_ms, now_ms, outbox_to, unique_address, worker_drain,
                 worker_ready, worker_stderr)

FROM_ADDR = "offload@offload.test"
H = 3600000


def _body(address, **over):
    b = {
        "channel": "EMAIL",
        "goal": {"objective": "Collect a signed W-9 \u2013 tax year 2025"},
        "counterparty": {"address": address, "name": "Maya Ch\u00e9n"},
        "senderPersona": {"name": "Zo\u00eb \u00c1very", "role": "Accounts Payable"},
    }
    b.update(over)
    return b


def _msgid_re(case_id, n):
    return re.compile(r"^<%s\.%d\.[0-9A-Za-z]+@offload\.test>$" % (re.escape(case_id), n))


def _ids(value):
    """The <...> ids in a References or In-Reply-To field."""
    return re.findall(r"<[^<>\s]+>", value or "")


def _parse_iso(s):
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,3}))?Z$", s)
    assert m, "transcript time %r is not ISO 8601 UTC" % s
    ms = int((m.group(2) or "0").ljust(3, "0"))
    return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) * 1000 + ms


def _header_block(raw):
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    return raw[:end if end >= 0 else len(raw)]


def _only_mail(addr, runs, n=1):
    mails = outbox_to(addr)
    assert len(mails) == n, "want %d message(s) to %s, the SMTP server has %d: %r\nworker stderr:\n%s" % (
        n, addr, len(mails), mails, worker_stderr(runs))
    return mails


def test_worker_first_email(ctx):
    worker_ready(ctx)
    addr = unique_address("first")
    body = _body(addr, followUpDelayHours=72, maxAttempts=3)
    cid = create_case(body)
    assert get_case(cid)["status"] == "CREATED"
    assert outbox_to(addr) == [], "a message went out before any worker pass"

    t0 = now_ms()
    runs = worker_drain()
    t1 = now_ms()
    (m,) = _only_mail(addr, runs)

    # Envelope
    assert m.meta["rcpt_tos"] == [addr], "envelope recipients %r" % m.meta["rcpt_tos"]
    # The signed bounce address of this very message (src/mail/verp.c), recomputed here
    # from the key in the database.
    from maillib import bounce_address
    assert m.meta["mail_from"] == bounce_address(cid, m.header("Message-ID").strip().strip("<>")), \
        "envelope sender %r, want bounces+<case>.<hmac>@offload.test" % m.meta["mail_from"]

    # Header fields, decoded with Python's email package (RFC 2047 for the non-ASCII names)
    hb = _header_block(m.raw)
    try:
        hb.decode("ascii")
    except UnicodeDecodeError:
        raise AssertionError("the header holds raw non-ASCII bytes (want RFC 2047): %r" % hb[:2000])
    frm = m.msg["From"].addresses
    assert len(frm) == 1, "From %r" % m.header("From")
    assert frm[0].display_name == "Zo\u00eb \u00c1very" and frm[0].addr_spec == FROM_ADDR, \
        "From decodes to %r <%s>, want the persona's name with %s" % (frm[0].display_name, frm[0].addr_spec,
                                                                      FROM_ADDR)
    to = m.msg["To"].addresses
    assert [a.addr_spec.lower() for a in to] == [addr], "To %r" % m.header("To")
    rt = m.msg["Reply-To"]
    assert rt is not None and [a.addr_spec for a in rt.addresses] == ["offload+%s@offload.test" % cid], \
        "Reply-To %r" % m.header("Reply-To")
    mid = m.header("Message-ID")
    assert mid and _msgid_re(cid, 1).match(mid.strip()), "Message-ID %r, want <%s.1.random@offload.test>" % (
        mid, cid)
    assert m.header("X-Offload-Case") == cid, "X-Offload-Case %r" % m.header("X-Offload-Case")
    assert (m.header("Auto-Submitted") or "").strip().lower() == "no", \
        "Auto-Submitted %r" % m.header("Auto-Submitted")
    assert m.msg["In-Reply-To"] is None, "the first message has In-Reply-To %r" % m.header("In-Reply-To")
    subject = m.header("Subject")
    assert subject and subject.strip(), "no Subject"
    assert m.msg["Date"] is not None, "no Date"

    # Body: text/plain, UTF-8, quoted-printable, with the objective and the counterparty's name
    assert not m.msg.is_multipart(), "want a single text/plain part, got %s" % m.msg.get_content_type()
    assert m.msg.get_content_type() == "text/plain", "Content-Type %r" % m.header("Content-Type")
    assert (m.msg.get_content_charset() or "").lower() == "utf-8", "charset %r" % m.msg.get_content_charset()
    assert (m.header("Content-Transfer-Encoding") or "").lower() == "quoted-printable", \
        "Content-Transfer-Encoding %r" % m.header("Content-Transfer-Encoding")
    text = m.text()
    for want in (body["goal"]["objective"], body["counterparty"]["name"]):
        assert want in text, "the body (decoded as its declared charset utf-8) lacks %r:\n%r\nraw:\n%r" % (
            want, text, m.raw[-600:])

    # The case
    c = get_case(cid)
    assert c["status"] == "RUNNING", "status %r\n%s" % (c["status"], worker_stderr(runs))
    assert c["attemptCount"] == 1, "attemptCount %r" % c["attemptCount"]
    assert t0 + 72 * H <= c["nextActionAt"] <= t1 + 72 * H, \
        "nextActionAt %r, want the send time + 72 h (between %d and %d)" % (c["nextActionAt"], t0 + 72 * H,
                                                                            t1 + 72 * H)
    assert c["resultStatus"] is None and c["result"] is None, "resultStatus/result %r/%r" % (
        c["resultStatus"], c["result"])
    assert t0 <= c["updatedAt"] <= t1, "updatedAt %r not within the pass [%d, %d]" % (c["updatedAt"], t0, t1)

    # The transcript
    tr = get_case(cid, query="?includeTranscript=true")["conversationThread"]
    heads = re.findall(r"^--- (\S+) (inbound|outbound) ---$", tr, re.M)
    assert len(heads) == 1 and heads[0][1] == "outbound", "transcript headings %r in:\n%s" % (heads, tr)
    assert t0 - 1000 <= _parse_iso(heads[0][0]) <= t1 + 1000, \
        "transcript time %s not within the pass (%s .. %s)" % (heads[0][0], iso_ms(t0), iso_ms(t1))
    assert subject in tr, "the transcript lacks the subject %r:\n%s" % (subject, tr)
    assert body["goal"]["objective"] in tr, "the transcript lacks the body:\n%s" % tr

    # A second pass without moving time sends nothing and changes nothing
    runs2 = worker_drain()
    _only_mail(addr, runs2)
    c2 = get_case(cid)
    assert (c2["status"], c2["attemptCount"], c2["nextActionAt"], c2["updatedAt"]) == \
        (c["status"], c["attemptCount"], c["nextActionAt"], c["updatedAt"]), \
        "a pass with nothing due changed the case: %r -> %r" % (c, c2)


def test_worker_follow_up_at_the_right_time(ctx):
    worker_ready(ctx)
    addr = unique_address("follow")
    cid = create_case(_body(addr, followUpDelayHours=72, maxAttempts=3))
    runs = worker_drain()
    (first,) = _only_mail(addr, runs)
    first_id = first.header("Message-ID").strip()
    first_subject = first.header("Subject")

    # Not yet due at +71 h
    runs = worker_drain(fake="+71h")
    _only_mail(addr, runs)
    assert get_case(cid)["attemptCount"] == 1

    # Due at +73 h: a follow-up in the same thread
    t0 = now_ms()
    runs = worker_drain(fake="+73h")
    t1 = now_ms()
    first2, second = _only_mail(addr, runs, 2)
    assert first2.path == first.path
    assert second.header("Subject") == "Re: " + first_subject, \
        "follow-up Subject %r, want %r" % (second.header("Subject"), "Re: " + first_subject)
    assert (second.header("In-Reply-To") or "").strip() == first_id, \
        "follow-up In-Reply-To %r, want %r" % (second.header("In-Reply-To"), first_id)
    assert first_id in _ids(second.header("References")), \
        "follow-up References %r lacks %r" % (second.header("References"), first_id)
    mid = (second.header("Message-ID") or "").strip()
    assert _msgid_re(cid, 2).match(mid), "follow-up Message-ID %r, want <%s.2.random@offload.test>" % (mid, cid)
    assert second.header("X-Offload-Case") == cid
    assert [a.addr_spec for a in second.msg["Reply-To"].addresses] == ["offload+%s@offload.test" % cid]
    assert "Collect a signed W-9" in second.text(), "follow-up body %r" % second.text()

    c = get_case(cid)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 2, "after the follow-up: %s, attemptCount %r" % (
        c["status"], c["attemptCount"])
    lo, hi = t0 + 73 * H + 72 * H, t1 + 73 * H + 72 * H
    assert lo - 5000 <= c["nextActionAt"] <= hi + 5000, \
        "nextActionAt %r, want the follow-up's (faked) send time + 72 h, about %d" % (c["nextActionAt"], lo)
    tr = get_case(cid, query="?includeTranscript=true")["conversationThread"]
    assert len(re.findall(r"^--- \S+ outbound ---$", tr, re.M)) == 2, "transcript:\n%s" % tr


def test_worker_max_attempts_zero(ctx):
    worker_ready(ctx)
    addr = unique_address("max0")
    cid = create_case(_body(addr, followUpDelayHours=1, maxAttempts=0))
    runs = worker_drain()
    _only_mail(addr, runs)
    c = get_case(cid)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 1, "%s %r" % (c["status"], c["attemptCount"])

    runs = worker_drain(fake="+50m")
    _only_mail(addr, runs)
    assert get_case(cid)["status"] == "RUNNING", "failed before its follow-up was due"

    runs = worker_drain(fake="+65m")
    _only_mail(addr, runs)
    c = get_case(cid)
    assert c["status"] == "FAILED", "status %r, want FAILED at the first due follow-up\n%s" % (
        c["status"], worker_stderr(runs))
    assert c["resultStatus"] == "max_retries", "resultStatus %r" % c["resultStatus"]
    assert c["attemptCount"] == 1, "attemptCount %r" % c["attemptCount"]
    assert c["nextActionAt"] == SENTINEL, "nextActionAt %r, want the sentinel" % c["nextActionAt"]
    assert c["result"] is None, "result %r" % c["result"]


def test_worker_max_attempts_two(ctx):
    worker_ready(ctx)
    addr = unique_address("max2")
    cid = create_case(_body(addr, followUpDelayHours=1, maxAttempts=2))
    runs = worker_drain()
    (m1,) = _only_mail(addr, runs)

    runs = worker_drain(fake="+65m")
    m1b, m2 = _only_mail(addr, runs, 2)
    assert get_case(cid)["attemptCount"] == 2

    runs = worker_drain(fake="+130m")
    _, _, m3 = _only_mail(addr, runs, 3)
    c = get_case(cid)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 3, "%s %r" % (c["status"], c["attemptCount"])

    ids = [m.header("Message-ID").strip() for m in (m1, m2, m3)]
    for i, mid in enumerate(ids):
        assert _msgid_re(cid, i + 1).match(mid), "message %d Message-ID %r" % (i + 1, mid)
    assert len(set(ids)) == 3, "Message-IDs repeat: %r" % ids
    subj = m1.header("Subject")
    assert m2.header("Subject") == m3.header("Subject") == "Re: " + subj, \
        "subjects %r %r %r" % (subj, m2.header("Subject"), m3.header("Subject"))
    assert (m3.header("In-Reply-To") or "").strip() == ids[1], \
        "the second follow-up's In-Reply-To %r, want the previous message %r" % (m3.header("In-Reply-To"), ids[1])
    refs = _ids(m3.header("References"))
    assert ids[0] in refs and ids[1] in refs, "the second follow-up's References %r, want %r and %r" % (
        m3.header("References"), ids[0], ids[1])

    runs = worker_drain(fake="+195m")
    _only_mail(addr, runs, 3)
    c = get_case(cid)
    assert c["status"] == "FAILED" and c["resultStatus"] == "max_retries", \
        "after maxAttempts follow-ups and one more delay: %s %r\n%s" % (c["status"], c["resultStatus"],
                                                                        worker_stderr(runs))
    assert c["attemptCount"] == 3, "attemptCount %r" % c["attemptCount"]
    assert c["nextActionAt"] == SENTINEL, "nextActionAt %r" % c["nextActionAt"]

    # Final: later passes send nothing more
    runs = worker_drain(fake="+400m")
    _only_mail(addr, runs, 3)
    assert get_case(cid)["status"] == "FAILED"


def test_worker_body_charset(ctx):
    """The body is declared UTF-8: it must be UTF-8 whatever characters it holds (Latin-1 only,
    beyond Latin-1, ASCII only)."""
    worker_ready(ctx)
    variants = [
        ("latin1", "R\u00e9cup\u00e9rer le W-9 sign\u00e9", "Ma\u00eft\u00e9 M\u00fcller", "Zo\u00eb"),
        ("cjk", "W-9 \u3092\u96c6\u3081\u308b", "\u5c71\u7530 \u592a\u90ce", "\u4f50\u85e4"),
        ("ascii", "Collect a signed W-9", "Maya Chen", "Avery"),
    ]
    cases = []
    for tag, objective, name, persona in variants:
        addr = unique_address("cs-" + tag)
        body = _body(addr)
        body["goal"]["objective"] = objective
        body["counterparty"]["name"] = name
        body["senderPersona"]["name"] = persona
        cases.append((tag, addr, body, create_case(body)))
    runs = worker_drain()
    problems = []
    for tag, addr, body, cid in cases:
        (m,) = _only_mail(addr, runs)
        part = m.msg.get_body(preferencelist=("plain",))
        payload = part.get_payload(decode=True)
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            problems.append("%s: body declared %r is not UTF-8: %r" % (tag, part.get_content_charset(), payload[:300]))
            continue
        for want in (body["goal"]["objective"], body["counterparty"]["name"]):
            if want not in text:
                problems.append("%s: body lacks %r: %r" % (tag, want, text[:300]))
        frm = m.msg["From"].addresses[0].display_name
        if frm != body["senderPersona"]["name"]:
            problems.append("%s: From display name %r, want %r" % (tag, frm, body["senderPersona"]["name"]))
        try:
            _header_block(m.raw).decode("ascii")
        except UnicodeDecodeError:
            problems.append("%s: raw non-ASCII in the header" % tag)
    assert not problems, "\n".join(problems)
