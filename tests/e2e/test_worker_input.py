"""offload-worker: the operator's answer, with and without a decision
(doc/api.md, "POST /cases/{caseId}/input" and "Lifecycle").

The case is first really worked (RUNNING, one message sent), then paused by SQL as the worker
would pause it (INPUT_NEEDED, a PENDING request, no schedule), answered through the API, and
the next pass must apply the answer.
"""
import re

from lib import (SENTINEL, create_case, expect_ok, get_case, minimal_case_body, now_ms, outbox_to,
                 pause_case_for_input, post, sql, sql_one, sql_str, unique_address, worker_drain, worker_ready,
                 worker_stderr)

H = 3600000


def _running_case(tag, **over):
    """A case worked once: returns (caseId, address, the GET after the first pass, first mail)."""
    addr = unique_address(tag)
    body = minimal_case_body()
    body["counterparty"] = {"address": addr, "name": "Maya Chen"}
    body["followUpDelayHours"] = 48
    body.update(over)
    cid = create_case(body)
    runs = worker_drain()
    c = get_case(cid)
    mails = outbox_to(addr)
    assert c["status"] == "RUNNING" and len(mails) == 1, "setup: %s, %d mails\n%s" % (
        c["status"], len(mails), worker_stderr(runs))
    return cid, addr, c, mails[0]


def _answer(cid, rid, decision=None, text="Operator's answer."):
    body = {"inputRequestId": rid, "providedContext": text}
    if decision is not None:
        body["decision"] = decision
    expect_ok(post("/cases/%s/input" % cid, body), 202)


def _last_sent_at(cid):
    return int(sql_one("SELECT MAX(sent_at) FROM messages WHERE case_id=%s AND direction='outbound'"
                       " AND send_state='sent'" % sql_str(cid)))


def test_worker_input_goal_achieved(ctx):
    worker_ready(ctx)
    cid, addr, before, _ = _running_case("in-goal")
    rid = pause_case_for_input(cid)
    result = {"signedW9Received": True, "receivedAt": "2026-03-21", "note": "caf\u00e9 \u2615"}
    _answer(cid, rid, {"outcome": "GOAL_ACHIEVED", "result": result})
    t0 = now_ms()
    runs = worker_drain()
    t1 = now_ms()
    c = get_case(cid)
    assert c["status"] == "COMPLETED", "status %r\n%s" % (c["status"], worker_stderr(runs))
    assert c["resultStatus"] == "goal_achieved", "resultStatus %r" % c["resultStatus"]
    assert c["result"] == result, "result %r, want %r" % (c["result"], result)
    assert c["failureReason"] is None, "failureReason %r" % c["failureReason"]
    assert c["nextActionAt"] == SENTINEL, "nextActionAt %r" % c["nextActionAt"]
    assert c["attemptCount"] == 1, "attemptCount %r" % c["attemptCount"]
    assert t0 <= c["updatedAt"] <= t1, "updatedAt %r not within the pass" % c["updatedAt"]
    assert c["inputRequest"]["id"] == rid and c["inputRequest"]["status"] == "RESOLVED", \
        "inputRequest %r" % c["inputRequest"]
    assert len(outbox_to(addr)) == 1, "a message was sent on completion"
    # Final: nothing more happens
    worker_drain(fake="+100h")
    c2 = get_case(cid)
    assert c2["status"] == "COMPLETED" and len(outbox_to(addr)) == 1


def test_worker_input_rejected(ctx):
    worker_ready(ctx)
    cid, addr, _, _ = _running_case("in-rej")
    rid = pause_case_for_input(cid)
    reason = "The vendor will not sign a W-9 (\u00e9tranger)."
    _answer(cid, rid, {"outcome": "REJECTED", "reason": reason})
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "FAILED", "status %r\n%s" % (c["status"], worker_stderr(runs))
    assert c["resultStatus"] == "failed_rejected", "resultStatus %r" % c["resultStatus"]
    assert c["failureReason"] == reason, "failureReason %r, want %r" % (c["failureReason"], reason)
    assert c["result"] is None, "result %r" % c["result"]
    assert c["nextActionAt"] == SENTINEL, "nextActionAt %r" % c["nextActionAt"]
    assert len(outbox_to(addr)) == 1


def test_worker_input_reply(ctx):
    worker_ready(ctx)
    cid, addr, before, first = _running_case("in-reply")
    first_id = first.header("Message-ID").strip()
    rid = pause_case_for_input(cid)
    text = "Thanks, Maya. Please send the signed form by Friday \u2013 a scan is fine.\n\nAvery"
    _answer(cid, rid, {"outcome": "REPLY", "reply": text})
    t0 = now_ms()
    runs = worker_drain()
    t1 = now_ms()
    c = get_case(cid)
    assert c["status"] == "RUNNING", "status %r\n%s" % (c["status"], worker_stderr(runs))
    assert c["attemptCount"] == before["attemptCount"] + 1, "attemptCount %r, want %d" % (
        c["attemptCount"], before["attemptCount"] + 1)
    assert t0 + 48 * H <= c["nextActionAt"] <= t1 + 48 * H, "nextActionAt %r, want the reply's send time + 48 h" % (
        c["nextActionAt"])
    mails = outbox_to(addr)
    assert len(mails) == 2, "want the reply as a second message, got %r" % mails
    m = mails[1]
    got = m.text()
    assert got.rstrip() == text.rstrip(), "the reply's body is %r, want the operator's text %r" % (got, text)
    assert (m.header("In-Reply-To") or "").strip() == first_id, "In-Reply-To %r, want %r" % (
        m.header("In-Reply-To"), first_id)
    assert first_id in re.findall(r"<[^<>\s]+>", m.header("References") or ""), "References %r" % (
        m.header("References"))
    assert m.header("Subject") == "Re: " + first.header("Subject"), "Subject %r" % m.header("Subject")
    assert re.match(r"^<%s\.2\.[0-9A-Za-z]+@offload\.test>$" % re.escape(cid), (m.header("Message-ID") or "").strip()), \
        "Message-ID %r" % m.header("Message-ID")
    assert m.header("X-Offload-Case") == cid
    tr = get_case(cid, query="?includeTranscript=true")["conversationThread"]
    assert len(re.findall(r"^--- \S+ outbound ---$", tr, re.M)) == 2, "transcript:\n%s" % tr
    assert "Please send the signed form by Friday" in tr, "the transcript lacks the reply:\n%s" % tr


def test_worker_input_wait(ctx):
    worker_ready(ctx)
    cid, addr, before, _ = _running_case("in-wait")
    sent_at = _last_sent_at(cid)
    assert before["nextActionAt"] == sent_at + 48 * H, "setup: nextActionAt %r, sent_at %r" % (
        before["nextActionAt"], sent_at)
    rid = pause_case_for_input(cid)
    assert get_case(cid)["nextActionAt"] == SENTINEL
    _answer(cid, rid, {"outcome": "WAIT"})
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "RUNNING", "status %r\n%s" % (c["status"], worker_stderr(runs))
    assert c["nextActionAt"] == sent_at + 48 * H, \
        "nextActionAt %r, want the schedule restored: last outbound sent_at %d + 48 h = %d" % (
            c["nextActionAt"], sent_at, sent_at + 48 * H)
    assert c["attemptCount"] == 1 and len(outbox_to(addr)) == 1, "WAIT sent something"
    assert c["resultStatus"] is None
    # The schedule works again: the follow-up goes out when due
    runs = worker_drain(fake="+49h")
    assert len(outbox_to(addr)) == 2, "no follow-up after WAIT\n%s" % worker_stderr(runs)
    assert get_case(cid)["attemptCount"] == 2


def test_worker_input_without_decision(ctx):
    worker_ready(ctx)
    cid, addr, before, _ = _running_case("in-none")
    sent_at = _last_sent_at(cid)
    rid = pause_case_for_input(cid)
    _answer(cid, rid, None, text="Tax year 2025 is the right one.")
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "RUNNING", "status %r (the manual agent resumes the schedule)\n%s" % (
        c["status"], worker_stderr(runs))
    assert c["nextActionAt"] == sent_at + 48 * H, "nextActionAt %r, want the restored schedule %d" % (
        c["nextActionAt"], sent_at + 48 * H)
    assert c["attemptCount"] == 1 and len(outbox_to(addr)) == 1
    assert c["inputRequest"]["status"] == "RESOLVED"
    ev = sql("SELECT state FROM events WHERE case_id=%s AND type='INPUT_PROVIDED'" % sql_str(cid))
    assert ev == [["done"]], "INPUT_PROVIDED events %r" % ev
