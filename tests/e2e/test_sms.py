"""The SMS channel end to end through real Kannel (doc/api.md and doc/operator-guide.md, SMS):
offload-worker sends through smsbox's sendsms to bearerbox and fakesmsc (the test carrier),
replies are injected through fakesmsc and reach the service through Kannel's sms-service
get-url (nginx /kannel/incoming), delivery reports come back on the dlr-url (/kannel/dlr).

Needs a stack started with "tests/stack/stack up DIR --sms" (tests/run-all does so when Kannel
is installed; in CI it must). Without it every test here returns at once with a note, and
fails under CI=true.
"""
import json
import os
import re
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "agent-server"))

import agentlib as al  # noqa: E402
import smslib as sl  # noqa: E402
from lib import (SENTINEL, create_case, ctl, ctl_json, expect_err, expect_ok, get_case, iso_ms,  # noqa: E402
                 new_client, post, sql, sql_str, worker_drain, worker_pass, worker_ready, worker_stderr)
from server import AgentServer  # noqa: E402

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _sent_case(ctx, tag="sms"):
    """An SMS case created and worked once (manual agent): (caseId, number, the SMS sent)."""
    worker_ready(ctx)
    number = sl.unique_number()
    cid = create_case(sl.sms_case_body(number))
    runs = worker_drain()
    c = get_case(cid)
    got = sl.wait_out(number)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 1 and len(got) == 1, \
        "setup (%s): %s, attemptCount %s, %r\n%s" % (tag, c["status"], c["attemptCount"], got, worker_stderr(runs))
    return cid, number, got[0]


def _stop_word_case(ctx, word):
    st = sl.stack()
    cid, number, _ = _sent_case(ctx, "stop")
    assert sl.inject(number, st["sender"], word) == 200, sl.dump_kannel()
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "FAILED", "after %r: %s\n%s\n%s" % (word, c["status"], worker_stderr(runs), sl.dump_kannel())
    return cid, number, c


# ---------------------------------------------------------------- Kannel itself

def test_sms_gateway_sendsms_reaches_fakesmsc(ctx):
    """The stack's Kannel without the service: sendsms → bearerbox → fakesmsc, as text,
    as UCS-2 and concatenated, and a wrong password refused (what the worker relies on)."""
    st = sl.stack()
    if not st:
        return
    number = sl.unique_number()
    status, body = sl.sendsms_direct(number, "Kannel check: plain GSM text")
    assert status == 202, (status, body)
    got = sl.wait_out(number)
    assert got[0].sender == st["sender"] and got[0].coding == "text", got
    assert got[0].text == "Kannel check: plain GSM text", got
    # A line break: fakesmsc logs the rest on a line of its own; smslib joins it again.
    status, body = sl.sendsms_direct(number, "two\nlines")
    assert status == 202, (status, body)
    got = sl.wait_out(number, 2)
    assert got[1].text == "two\nlines", got

    # UCS-2, one part and concatenated (Kannel splits at 67 characters).
    for i, text in enumerate(["Grüße – 你好", ("Привет мир " * 12).strip()]):
        status, body = sl.sendsms_direct(number, text, coding=2)
        assert status == 202, (status, body)
        got = sl.wait_out(number, 3 + i)
        assert got[2 + i].coding == "ucs-2" and got[2 + i].text == text, got
    assert got[2].parts == 1 and got[3].parts == 2, got  # 131 characters: 67 + 64

    # A wrong password: 403, and nothing reaches the carrier.
    status, body = sl.sendsms_direct(number, "never sent", password="wrong")
    assert status == 403 and "Authorization failed" in body, (status, body)
    assert all(m.text != "never sent" for m in sl.out_to(number))


def test_sms_gateway_inject_calls_the_get_url(ctx):
    """An SMS injected through fakesmsc makes smsbox call the sms-service get-url on the
    stack's nginx with the secret, the numbers, Kannel's message id and the text."""
    st = sl.stack()
    if not st:
        return
    number = sl.unique_number()
    text = "Café at 10, ok?"
    before = len(sl.get_url_calls())
    code = sl.inject(number, st["sender"], text)
    assert code is not None, sl.dump_kannel()
    calls = sl.get_url_calls()[before:]
    assert len(calls) >= 1, sl.dump_kannel()
    q = calls[0]
    assert q["path"] == "/kannel/incoming", q
    assert q.get("secret") == sl.secret(), "the get-url carries another secret"
    assert q.get("from") == number and q.get("to") == st["sender"], q
    assert UUID_RE.match(q.get("id", "")), q
    assert q.get("text") == text, q


# ---------------------------------------------------------------- creating

def test_sms_create_normalises_and_checks_the_number(ctx):
    if not sl.stack():
        return
    number = sl.unique_number()
    spaced = "%s %s-%s.%s" % (number[:2], number[2:5], number[5:8], number[8:])
    cid = create_case(sl.sms_case_body(spaced))
    c = get_case(cid)
    assert c["channel"] == "SMS", c["channel"]
    assert c["counterparty"]["address"] == number, c["counterparty"]
    # Only spaces, dashes and dots are removed (doc/api.md): parentheses, letters, a missing
    # "+", too few or too many digits are refused, naming the field.
    for bad in ["5550102000", "+1234567", "+1234567890123456", "+1555abc0000", "", "+", "++15550102000",
                "+1 (555) 010-2000", "+1555010\n2000", "+1555010200０", "tel:+15550102000"]:
        r = post("/cases", sl.sms_case_body(bad))
        expect_err(r, 400, "INVALID_REQUEST", msg_contains="counterparty.address")
    # An email address is not a number.
    expect_err(post("/cases", sl.sms_case_body("ap@northstar.example")), 400, "INVALID_REQUEST",
               msg_contains="counterparty.address")
    sql("UPDATE cases SET status='COMPLETED', next_action_at=%d WHERE id=%s" % (SENTINEL, sql_str(cid)))


def test_sms_one_open_case_per_number(ctx):
    if not sl.stack():
        return
    number = sl.unique_number()
    cid = create_case(sl.sms_case_body(number))
    first = get_case(cid)
    # The same number written differently is the same number.
    r = post("/cases", sl.sms_case_body(number[:2] + " " + number[2:]))
    msg = expect_err(r, 409, "COUNTERPARTY_BUSY")
    assert cid not in msg, "the 409 names the open case's id: %r" % msg
    created = first["createdAt"]
    assert iso_ms(created)[:19] in msg or str(created) in msg, \
        "the 409 should name the open case's creation time (%s): %r" % (iso_ms(created), msg)
    # Another client gets the same answer and learns nothing about the case.
    _, key = new_client()
    msg2 = expect_err(post("/cases", sl.sms_case_body(number), key=key), 409, "COUNTERPARTY_BUSY")
    assert cid not in msg2, msg2
    # An email case to anyone is not affected.
    body = sl.sms_case_body(number)
    body["channel"] = "EMAIL"
    body["counterparty"]["address"] = "ap-%s@example.com" % uuid.uuid4().hex[:8]
    create_case(body)
    # Once the case is over, the number is free again.
    sql("UPDATE cases SET status='COMPLETED', next_action_at=%d, version=version+1 WHERE id=%s" % (
        SENTINEL, sql_str(cid)))
    cid2 = create_case(sl.sms_case_body(number))
    assert cid2 != cid
    sql("UPDATE cases SET status='COMPLETED', next_action_at=%d, version=version+1 WHERE id=%s" % (
        SENTINEL, sql_str(cid2)))


# ---------------------------------------------------------------- sending and replies

def test_sms_sent_answered_and_completed_through_input(ctx):
    """Manual agent: the first SMS reaches the carrier from the configured sender; a reply
    injected through fakesmsc pauses the case for the operator; the operator's REPLY text goes
    out as written (UCS-2: it has a dash outside GSM-7); the next reply and GOAL_ACHIEVED
    complete the case."""
    st = sl.stack()
    if not st:
        return
    cid, number, first = _sent_case(ctx, "manual")
    assert first.sender == st["sender"], first
    assert first.text.strip() and "Subject" not in first.text, first
    assert first.parts <= 3, first
    c = get_case(cid)
    assert c["nextActionAt"] != SENTINEL

    reply = "Hi, delivery is planned for March 3rd."
    assert sl.inject(number, st["sender"], reply) == 200, sl.dump_kannel()
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "INPUT_NEEDED", "%s\n%s" % (c["status"], worker_stderr(runs))
    assert reply in c["inputRequest"]["question"], c["inputRequest"]
    text = "Thanks \u2014 could you confirm the time window too?"
    expect_ok(post("/cases/%s/input" % cid, {"inputRequestId": c["inputRequest"]["id"], "providedContext": "ok",
                                              "decision": {"outcome": "REPLY", "reply": text}}), 202)
    runs = worker_drain()
    got = sl.wait_out(number, 2)
    assert got[1].text == text and got[1].coding == "ucs-2" and got[1].sender == st["sender"], got
    c = get_case(cid)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 2, "%s\n%s" % (c, worker_stderr(runs))

    assert sl.inject(number, st["sender"], "Between 9 and 11.") == 200, sl.dump_kannel()
    worker_drain()
    c = get_case(cid)
    assert c["status"] == "INPUT_NEEDED", c["status"]
    result = {"deliveryDate": "March 3rd", "window": "9-11"}
    expect_ok(post("/cases/%s/input" % cid, {"inputRequestId": c["inputRequest"]["id"], "providedContext": "done",
                                              "decision": {"outcome": "GOAL_ACHIEVED", "result": result}}), 202)
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "COMPLETED" and c["resultStatus"] == "goal_achieved", "%s\n%s" % (c, worker_stderr(runs))
    assert c["result"] == result, c["result"]
    assert len(sl.out_to(number)) == 2, sl.out_to(number)
    # The transcript shows the SMS messages, without subject.
    shown = ctl("case", "show", cid, "--transcript")
    assert reply in shown and text in shown and first.text.strip() in shown, shown[-3000:]
    assert "\n--- " in shown and "Subject:" not in shown[shown.index("\n--- "):], shown[-3000:]


def _sms_script(marker, draft, evaluate=None, **extra):
    s = {"model": al.MODEL, "api_key": al.API_KEY, "marker": marker, "contains": ["Avery"],
         "draft_message": draft, "evaluate_thread": evaluate or []}
    s.update(extra)
    return s


def _sms_llm_body(marker, number):
    body = sl.sms_case_body(number)
    body["goal"] = {"objective": "Confirm the delivery date for PO 4471", "knowledge": {"caseRef": marker}}
    body["resultSchema"] = {"type": "object", "properties": {"deliveryDate": {"type": "string"}},
                            "required": ["deliveryDate"]}
    return body


def test_sms_llm_agent_reply_and_goal(ctx):
    """LLM agent: its draft is the SMS; the injected reply reaches evaluate_thread; its REPLY
    (with GSM-7 extension characters) is sent; the next reply achieves the goal."""
    st = sl.stack()
    if not st:
        return
    m = al.new_marker()
    outreach = "Hi Maya, this is Avery from Example Corp. When will PO 4471 be delivered?"
    answer = "Thanks! Is the price still EUR 5 [5\u20ac] per unit?"
    s = _sms_script(m, [{"content": {"subject": "PO 4471", "body": outreach}}], [
        {"content": al.decision("REPLY", reply=answer), "expect_contains": ["It ships on the 3rd"]},
        {"content": al.decision("GOAL_ACHIEVED", result={"deliveryDate": "the 3rd"}),
         "expect_contains": ["Yes, same price"]},
    ])
    worker_ready(ctx)
    number = sl.unique_number()
    with AgentServer(s) as srv:
        cid = create_case(_sms_llm_body(m, number))
        runs = al.llm_drain(srv)
        got = sl.wait_out(number)
        assert got[0].text == outreach and got[0].coding == "text" and got[0].sender == st["sender"], \
            "%r\n%s" % (got, al.dump(srv, runs))
        assert sl.inject(number, st["sender"], "It ships on the 3rd") == 200, sl.dump_kannel()
        runs = al.llm_drain(srv)
        got = sl.wait_out(number, 2)
        assert got[1].text == answer and got[1].coding == "text", "%r\n%s" % (got, al.dump(srv, runs))
        assert sl.inject(number, st["sender"], "Yes, same price") == 200, sl.dump_kannel()
        runs = al.llm_drain(srv)
        c = get_case(cid)
        al.no_violations(srv)
    assert c["status"] == "COMPLETED" and c["result"] == {"deliveryDate": "the 3rd"}, "%s\n%s" % (
        c, al.dump(srv, runs))


def test_sms_ucs2_draft_beyond_max_segments_is_unusable(ctx):
    """[sms] max_segments = 3 in the stack: UCS-2 fits 3 × 67 = 201 characters. A 202-character
    draft is unusable (nothing sent, the event retried); the same kind of draft at exactly
    201 characters is sent, in three parts."""
    st = sl.stack()
    if not st:
        return
    m = al.new_marker()
    unit = "Привет мир "  # 11 characters outside GSM-7
    fits = (unit * 19)[:200] + "!"
    assert len(fits) == 201
    too_long = fits[:-1] + "!!"
    assert len(too_long) == 202
    # Two too long in a row: the agent's own second try (with the correction) fails too, so
    # the first pass sends nothing; every later draft fits.
    s = _sms_script(m, [{"content": {"subject": "PO 4471", "body": too_long}},
                        {"content": {"subject": "PO 4471", "body": too_long}}],
                    after={"draft_message": {"content": {"subject": "PO 4471", "body": fits}}})
    worker_ready(ctx)
    number = sl.unique_number()
    with AgentServer(s) as srv:
        cid = create_case(_sms_llm_body(m, number))
        run = al.llm_pass(srv)
        c = get_case(cid)
        assert c["status"] == "CREATED" and c["attemptCount"] == 0, "%s\n%s" % (c, run.tail())
        assert not sl.out_to(number), sl.out_to(number)
        ev = sql("SELECT state, last_error FROM events WHERE case_id=%s AND type='CASE_CREATED'" % sql_str(cid))
        assert ev and ev[0][0] == "pending" and "segment" in (ev[0][1] or ""), ev
        assert srv.own("draft_message"), al.dump(srv, [run])
        # The next try gets a draft that fits (the retry waits its backoff).
        runs = []
        for fake in ("+10m", "+30m", "+2h"):
            runs += al.llm_drain(srv, fake=fake)
            if get_case(cid)["attemptCount"] >= 1:
                break
        c = get_case(cid)
        al.no_violations(srv)
    got = sl.wait_out(number)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 1, "%s\n%s" % (c, al.dump(srv, runs))
    assert len(got) == 1 and got[0].coding == "ucs-2" and got[0].parts == 3 and got[0].text == fits, got


# ---------------------------------------------------------------- opt-out

def test_sms_stop_fails_the_case_and_blocks_the_number(ctx):
    st = sl.stack()
    if not st:
        return
    cid, number, c = _stop_word_case(ctx, " Stop ")
    assert c["resultStatus"] == "failed_rejected", c
    assert c["failureReason"] == "recipient opted out by SMS", c["failureReason"]
    assert len(sl.out_to(number)) == 1, "something was sent after STOP: %r" % sl.out_to(number)
    msg = expect_err(post("/cases", sl.sms_case_body(number)), 409, "RECIPIENT_OPTED_OUT")
    assert number in msg or "opted out" in msg, msg
    listed = ctl_json("sms", "optout", "list", "--json")
    assert number in json.dumps(listed), listed
    assert number in ctl("sms", "optout", "list"), "the text listing lacks %s" % number
    # START lifts it.
    assert sl.inject(number, st["sender"], "START") == 200, sl.dump_kannel()
    worker_drain()
    assert number not in json.dumps(ctl_json("sms", "optout", "list", "--json"))
    cid2 = create_case(sl.sms_case_body(number))
    worker_drain()
    assert len(sl.wait_out(number, 2)) == 2
    # A reply now belongs to the new, open case; the failed one stays as it was.
    assert sl.inject(number, st["sender"], "Yes, I can help now") == 200, sl.dump_kannel()
    worker_drain()
    c2 = get_case(cid2)
    assert c2["status"] == "INPUT_NEEDED" and "Yes, I can help now" in c2["inputRequest"]["question"], c2
    assert get_case(cid)["status"] == "FAILED"
    sql("UPDATE cases SET status='COMPLETED', next_action_at=%d, version=version+1 WHERE id=%s" % (
        SENTINEL, sql_str(cid2)))


def test_sms_optout_clear_by_the_operator(ctx):
    if not sl.stack():
        return
    _, number, c = _stop_word_case(ctx, "unsubscribe")
    assert c["resultStatus"] == "failed_rejected", c
    expect_err(post("/cases", sl.sms_case_body(number)), 409, "RECIPIENT_OPTED_OUT")
    ctl("sms", "optout", "clear", number)
    assert number not in json.dumps(ctl_json("sms", "optout", "list", "--json"))
    cid = create_case(sl.sms_case_body(number))
    sql("UPDATE cases SET status='COMPLETED', next_action_at=%d, version=version+1 WHERE id=%s" % (
        SENTINEL, sql_str(cid)))


def test_sms_stop_inside_a_sentence_is_a_reply(ctx):
    """Only the whole text is a STOP word: "please don't stop" is an ordinary reply."""
    st = sl.stack()
    if not st:
        return
    cid, number, _ = _sent_case(ctx, "notstop")
    assert sl.inject(number, st["sender"], "please don't stop") == 200, sl.dump_kannel()
    worker_drain()
    c = get_case(cid)
    assert c["status"] == "INPUT_NEEDED", c["status"]
    assert number not in json.dumps(ctl_json("sms", "optout", "list", "--json"))
    sql("UPDATE cases SET status='COMPLETED', next_action_at=%d, version=version+1 WHERE id=%s" % (
        SENTINEL, sql_str(cid)))


# ---------------------------------------------------------------- delivery reports

def test_sms_rejected_delivery_report_bounces(ctx):
    """fakesmsc reports every SMS delivered (type 1, Kannel's own dlr-url call); a rejected (16)
    or undelivered (2) report, made here as Kannel would call the dlr-url, fails the case
    BOUNCED with the report's text."""
    if not sl.stack():
        return
    for dlr_type, text in ((16, "SMSC rejected: NACK/0x0000000b/Invalid Destination Address"),
                           (2, "undelivered: absent subscriber")):
        cid, number, _ = _sent_case(ctx, "dlr%d" % dlr_type)
        ref = sl.wait(lambda: sl.message_ref(cid), "Kannel's delivered report for case %s" % cid)
        assert any(q.get("type") == "1" for q in sl.dlr_calls(ref)), sl.dlr_calls(ref)
        # Kannel's "delivered" is recorded on the message.
        sl.wait(lambda: any("delivered" in (v or "") for row in sql(
            "SELECT * FROM messages WHERE case_id=%s AND direction='outbound'" % sql_str(cid)) for v in row),
            "the delivered report recorded on case %s's message" % cid)
        r = sl.dlr(ref, dlr_type, text)
        sl.expect_empty_200(r, "/kannel/dlr type %d" % dlr_type)
        runs = worker_drain()
        c = get_case(cid)
        assert c["status"] == "FAILED" and c["resultStatus"] == "BOUNCED", "%s\n%s" % (c, worker_stderr(runs))
        assert text in (c["failureReason"] or ""), c["failureReason"]


def test_sms_kannel_endpoints_refuse_a_wrong_secret(ctx):
    st = sl.stack()
    if not st:
        return
    cid, number, _ = _sent_case(ctx, "secret")
    ref = sl.wait(lambda: sl.message_ref(cid), "Kannel's delivered report for case %s" % cid)
    before = sl.db_fingerprint()
    kid = str(uuid.uuid4())
    wrong = "0" * len(sl.secret())
    for s in (wrong, "", False, sl.secret()[:-1], sl.secret() + "0", sl.secret().upper()):
        sl.expect_forbidden(sl.incoming(number, st["sender"], "STOP", kid, secret_=s), "incoming secret %r" % (s,))
        sl.expect_forbidden(sl.dlr(ref, 16, "rejected", secret_=s), "dlr secret %r" % (s,))
    assert sl.db_fingerprint() == before, "a refused call changed something"
    worker_drain()
    c = get_case(cid)
    assert c["status"] == "RUNNING", c["status"]
    assert number not in json.dumps(ctl_json("sms", "optout", "list", "--json"))
    sql("UPDATE cases SET status='COMPLETED', next_action_at=%d, version=version+1 WHERE id=%s" % (
        SENTINEL, sql_str(cid)))


def test_sms_reply_from_an_unknown_number_is_kept_unmatched(ctx):
    """An SMS from a number with no open SMS case, through Kannel: stored without a case."""
    st = sl.stack()
    if not st:
        return
    stranger = sl.unique_number()
    text = "Wrong number? %s" % uuid.uuid4().hex[:8]
    assert sl.inject(stranger, st["sender"], text) == 200, sl.dump_kannel()
    rows = sql("SELECT case_id, direction FROM messages WHERE body_text=%s" % sql_str(text))
    assert rows == [[None, "inbound"]], rows
    worker_drain()
    assert not sl.out_to(stranger), "something was sent to an unknown number: %r" % sl.out_to(stranger)


def test_sms_same_kannel_id_is_stored_once(ctx):
    """Kannel retries a get-url with the same %I: stored once, matched or unmatched."""
    st = sl.stack()
    if not st:
        return
    # Unmatched: no case for this number.
    stranger = sl.unique_number()
    text = "who is this? %s" % uuid.uuid4().hex[:8]
    kid = str(uuid.uuid4())
    for _ in range(2):
        sl.expect_empty_200(sl.incoming(stranger, st["sender"], text, kid), "incoming")
    assert sl.inbound_count(text) == 1, sl.inbound_count(text)
    # Matched to an open case: one reply, one pause.
    cid, number, _ = _sent_case(ctx, "dup")
    text2 = "Delivered Tuesday %s" % uuid.uuid4().hex[:8]
    kid2 = str(uuid.uuid4())
    for _ in range(3):
        sl.expect_empty_200(sl.incoming(number, st["sender"], text2, kid2), "incoming")
    assert sl.inbound_count(text2) == 1, sl.inbound_count(text2)
    worker_drain()
    c = get_case(cid)
    assert c["status"] == "INPUT_NEEDED", c["status"]
    n = sql("SELECT COUNT(*) FROM input_requests WHERE case_id=%s" % sql_str(cid))[0][0]
    assert n == "1", n
    sql("UPDATE cases SET status='COMPLETED', next_action_at=%d, version=version+1 WHERE id=%s" % (
        SENTINEL, sql_str(cid)))


# ---------------------------------------------------------------- Kannel failing

def test_sms_kannel_down_is_retried_and_sent_once(ctx):
    if not sl.stack():
        return
    worker_ready(ctx)
    number = sl.unique_number()
    cid = create_case(sl.sms_case_body(number))
    sl.kannel_stop()
    try:
        run = worker_pass()
        c = get_case(cid)
        assert c["status"] == "CREATED" and c["attemptCount"] == 0, "%s\n%s" % (c, run.tail())
        assert run.sent == 0 and run.retried >= 1, run.tail()
        ev = sql("SELECT state, last_error FROM events WHERE case_id=%s AND type='CASE_CREATED'" % sql_str(cid))
        assert ev and ev[0][0] == "pending" and ev[0][1], ev
        c = get_case(cid)
        assert c["attemptCount"] == 0, c
    finally:
        sl.kannel_start()
    assert not sl.out_to(number), sl.out_to(number)
    runs = worker_drain(fake="+10m")
    got = sl.wait_out(number)
    c = get_case(cid)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 1, "%s\n%s" % (c, worker_stderr(runs))
    worker_drain(fake="+20m")
    assert len(sl.out_to(number)) == 1 and len(got) == 1, sl.out_to(number)
    sql("UPDATE cases SET status='COMPLETED', next_action_at=%d, version=version+1 WHERE id=%s" % (
        SENTINEL, sql_str(cid)))


def test_sms_kannel_refusal_fails_the_case_rejected(ctx):
    """A 4xx from sendsms is permanent: the worker with a wrong sendsms password gets Kannel's
    403 "Authorization failed for sendsms" and fails the case REJECTED with that text."""
    if not sl.stack():
        return
    worker_ready(ctx)
    number = sl.unique_number()
    cid = create_case(sl.sms_case_body(number))
    bad = os.path.join(os.environ["OFFLOAD_STACK_DIR"], "tmp", "sms-wrong-%s.password" % uuid.uuid4().hex[:8])
    with open(bad, "w") as f:
        f.write("not-the-password\n")
    os.chmod(bad, 0o600)
    os.environ["OFFLOAD_SMS_PASSWORD_FILE"] = bad
    try:
        runs = worker_drain()
    finally:
        del os.environ["OFFLOAD_SMS_PASSWORD_FILE"]
        os.unlink(bad)
    c = get_case(cid)
    assert c["status"] == "FAILED" and c["resultStatus"] == "REJECTED", "%s\n%s" % (c, worker_stderr(runs))
    assert "Authorization failed" in (c["failureReason"] or ""), c["failureReason"]
    assert c["nextActionAt"] == SENTINEL and c["result"] is None, c
    assert not sl.out_to(number), sl.out_to(number)
