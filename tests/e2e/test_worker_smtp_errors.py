"""offload-worker: permanent and temporary SMTP failures (doc/api.md, "Lifecycle").

The stack's SMTP sink answers 550 at RCPT for reject...@, 451 for tempfail...@, and 451 for
every RCPT while its mode file holds "down-451".
"""
from lib import (SENTINEL, create_case, get_case, minimal_case_body, outbox_to, smtp_log_count, smtp_set_mode,
                 sql, sql_str, unique_address, worker_drain, worker_ready, worker_stderr)


def _body(addr, **over):
    b = minimal_case_body()
    b["counterparty"] = {"address": addr, "name": "Maya Chen"}
    b.update(over)
    return b


def _created_events(cid):
    return sql("SELECT state, attempts, last_error FROM events WHERE case_id=%s AND type='CASE_CREATED'"
               % sql_str(cid))


def test_worker_recipient_rejected(ctx):
    worker_ready(ctx)
    addr = unique_address("reject")
    cid = create_case(_body(addr))
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "FAILED", "status %r, want FAILED after a 550 at RCPT\n%s" % (
        c["status"], worker_stderr(runs))
    assert c["resultStatus"] == "REJECTED", "resultStatus %r" % c["resultStatus"]
    assert isinstance(c["failureReason"], str) and "550" in c["failureReason"], \
        "failureReason %r, want the server's reply (550 ...)" % c["failureReason"]
    assert c["nextActionAt"] == SENTINEL, "nextActionAt %r" % c["nextActionAt"]
    assert c["result"] is None
    assert outbox_to(addr) == [], "the SMTP server stored a message for a refused recipient"
    assert smtp_log_count("RCPT %s: 550" % addr) == 1, \
        "the worker tried the refused recipient %d times" % smtp_log_count("RCPT %s: 550" % addr)
    ev = _created_events(cid)
    assert [e[0] for e in ev] == ["done"], "CASE_CREATED events %r" % ev

    # Final: a later pass does not try again
    worker_drain(fake="+2h")
    assert smtp_log_count("RCPT %s: 550" % addr) == 1
    assert get_case(cid)["status"] == "FAILED"


def test_worker_recipient_tempfail(ctx):
    worker_ready(ctx)
    addr = unique_address("tempfail")
    cid = create_case(_body(addr))
    needle = "RCPT %s: 451" % addr
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "CREATED" and c["attemptCount"] == 0, \
        "after a 451 at RCPT: %s, attemptCount %r (want CREATED, 0)\n%s" % (c["status"], c["attemptCount"],
                                                                            worker_stderr(runs))
    assert c["resultStatus"] is None and c["failureReason"] is None, "%r %r" % (c["resultStatus"],
                                                                                c["failureReason"])
    assert outbox_to(addr) == []
    assert smtp_log_count(needle) == 1, "tries after one pass: %d" % smtp_log_count(needle)
    ev = _created_events(cid)
    assert len(ev) == 1 and ev[0][0] == "pending", "CASE_CREATED event %r, want pending (retried later)" % ev
    assert "451" in (ev[0][2] or ""), "the event's last_error %r does not say 451" % ev[0][2]

    # Not at once: a second pass right away leaves it to its backoff
    worker_drain()
    assert smtp_log_count(needle) == 1, "retried without backoff (%d tries)" % smtp_log_count(needle)

    # Later it is tried again, and still never counts as an attempt
    runs = worker_drain(fake="+1h")
    assert smtp_log_count(needle) == 2, "tries after a pass at +1h: %d, want 2\n%s" % (
        smtp_log_count(needle), worker_stderr(runs))
    c = get_case(cid)
    assert c["status"] == "CREATED" and c["attemptCount"] == 0, "%s %r" % (c["status"], c["attemptCount"])
    assert outbox_to(addr) == []


def test_worker_server_down_then_up(ctx):
    worker_ready(ctx)
    addr = unique_address("down")
    cid = create_case(_body(addr))
    smtp_set_mode("down-451")
    try:
        runs = worker_drain()
        c = get_case(cid)
        assert c["status"] == "CREATED" and c["attemptCount"] == 0, \
            "while the server answers 451: %s, attemptCount %r\n%s" % (c["status"], c["attemptCount"],
                                                                       worker_stderr(runs))
        assert outbox_to(addr) == []
        assert smtp_log_count("RCPT %s: 451 (mode down-451)" % addr) >= 1, "the worker did not try"
    finally:
        smtp_set_mode(None)
    # The retry backoff is 30 s doubling, +-20 %: ten minutes later it is due again.
    runs = worker_drain(fake="+10m")
    c = get_case(cid)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 1, \
        "after the server is back: %s, attemptCount %r\n%s" % (c["status"], c["attemptCount"],
                                                               worker_stderr(runs))
    mails = outbox_to(addr)
    assert len(mails) == 1, "want exactly one message, got %r" % mails
    ev = _created_events(cid)
    assert [e[0] for e in ev] == ["done"], "CASE_CREATED events %r" % ev
