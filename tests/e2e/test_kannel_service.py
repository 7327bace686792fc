"""The SMS channel's service side beyond tests/e2e/test_sms.py: the one-open-case-per-number
and opt-out rules under concurrent POST /cases (decided inside the group-committed creating
transaction), delivery reports out of order, incoming text that is not UTF-8, the
operator's view of unmatched SMS and of opt-outs. Needs a stack with --sms."""
import os
import subprocess
import threading
import uuid

import smslib as sl
from lib import (ctl_json, env, expect_err, get, http, new_client, post, sql, sql_one, sql_str,
                 worker_pass, worker_ready)


def _ctl_rc(*args):
    """offloadctl's exit status (lib.ctl raises on anything but 0)."""
    e = env()
    return subprocess.run([os.path.join(e.bin, "offloadctl"), "-c", e.config] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60).returncode


def _race(number, n, keys):
    """n concurrent POST /cases to number (keys used in turn, None: the stack's key); returns
    [(status, code)]."""
    out = [None] * n
    go = threading.Barrier(n)

    def one(i):
        body = sl.sms_case_body(number)
        go.wait()
        k = keys[i % len(keys)]
        r = post("/cases", body, **({"key": k} if k else {}))
        code = r.json["error"]["code"] if r.status != 201 else ""
        out[i] = (r.status, code)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def _open_cases(number):
    return int(sql_one("SELECT COUNT(*) FROM cases WHERE channel='SMS' AND counterparty_address=%s"
                       " AND status NOT IN ('COMPLETED','FAILED')" % sql_str(number)))


def test_kannel_concurrent_creates_for_one_number(ctx):
    """Concurrent creations for one number, from two clients (one group-committed batch or
    several): exactly one 201, every other 409 COUNTERPARTY_BUSY, one open case stored."""
    if not sl.stack():
        return
    _, key2 = new_client()
    for _ in range(3):
        number = sl.unique_number()
        got = _race(number, 24, [None, key2])
        created = [g for g in got if g[0] == 201]
        busy = [g for g in got if g == (409, "COUNTERPARTY_BUSY")]
        assert len(created) == 1 and len(busy) == 23, got
        assert _open_cases(number) == 1


def test_kannel_concurrent_creates_for_an_opted_out_number(ctx):
    """A number that opted out: every concurrent creation is 409 RECIPIENT_OPTED_OUT, none
    stored; after the operator clears it, one creation succeeds again."""
    if not sl.stack():
        return
    number = sl.unique_number()
    sl.expect_empty_200(sl.incoming(number, "+15550100000", "Stop", str(uuid.uuid4())), "STOP")
    listed = [o for o in ctl_json("sms", "optout", "list", "--json") if o["number"] == number]
    assert len(listed) == 1 and listed[0]["keyword"] == "STOP" and listed[0]["caseId"] is None, listed
    got = _race(number, 12, [None])
    assert all(g == (409, "RECIPIENT_OPTED_OUT") for g in got), got
    assert _open_cases(number) == 0
    assert _ctl_rc("sms", "optout", "clear", number[:4] + "-" + number[4:]) == 0
    assert _ctl_rc("sms", "optout", "clear", number) == 3
    assert _ctl_rc("sms", "optout", "clear", "12345") == 2
    got = _race(number, 6, [None])
    assert sorted(g[0] for g in got) == [201, 409, 409, 409, 409, 409], got


def test_kannel_delivery_reports_out_of_order(ctx):
    """delivered after rejected does not undo the failure, and Kannel's repeat of the
    rejected report queues no second event: the case is BOUNCED once."""
    if not sl.stack():
        return
    number = sl.unique_number()
    cid = post("/cases", sl.sms_case_body(number)).json["data"]["caseId"]
    worker_pass()
    msg = sql_one("SELECT message_id FROM messages WHERE case_id=%s AND direction='outbound'" % sql_str(cid))
    assert msg, "the first SMS was not recorded"
    sl.expect_empty_200(sl.dlr(msg, 16, "NACK/0x0000000b/Invalid Destination Address"), "rejected")
    sl.expect_empty_200(sl.dlr(msg, 1, ""), "delivered")
    sl.expect_empty_200(sl.dlr(msg, 16, "again"), "rejected again")
    state = sql("SELECT delivery_state, delivery_report FROM messages WHERE message_id=%s" % sql_str(msg))
    assert state == [["rejected", "NACK/0x0000000b/Invalid Destination Address"]], state
    n = int(sql_one("SELECT COUNT(*) FROM events WHERE case_id=%s AND type='BOUNCE_RECEIVED'" % sql_str(cid)))
    assert n == 1, n
    worker_pass()
    c = get("/cases/" + cid).json["data"]
    assert c["status"] == "FAILED" and c["resultStatus"] == "BOUNCED", c
    assert "Invalid Destination Address" in c["failureReason"], c
    # An unknown message id changes nothing and still answers 200 (Kannel must not retry).
    before = sl.db_fingerprint()
    sl.expect_empty_200(sl.dlr(str(uuid.uuid4()), 2, "x"), "unknown msg")
    assert sl.db_fingerprint() == before
    # A malformed type is refused.
    assert sl.dlr(msg, "two", "").status == 400


def test_kannel_incoming_unmatched_and_not_utf8(ctx):
    """A text from a number with no open case is kept unmatched and listed by offloadctl
    sms unmatched; bytes that are not UTF-8 are stored as U+FFFD, not refused; an
    alphanumeric sender is kept unmatched too."""
    if not sl.stack():
        return
    number = sl.unique_number()
    kid = str(uuid.uuid4())
    r = http("GET", "/kannel/incoming?secret=%s&from=%s&to=%%2B15550100000&id=%s&text=caf%%E9%%20ok"
             % (sl.secret(), number.replace("+", "%2B"), kid), key=None)
    sl.expect_empty_200(r, "latin-1 text")
    row = sql("SELECT case_id, body_text, channel FROM messages WHERE kannel_id=%s" % sql_str(kid))
    assert row == [[None, "caf\ufffd ok", "SMS"]], row
    kid2 = str(uuid.uuid4())
    sl.expect_empty_200(sl.incoming("ACME", "+15550100000", "STOP", kid2), "alphanumeric sender")
    listed = ctl_json("sms", "unmatched", "--limit", "50", "--json")
    ids = [m["kannelId"] for m in listed]
    assert kid in ids and kid2 in ids, listed
    assert not [o for o in ctl_json("sms", "optout", "list", "--json") if o["number"] == "ACME"]
    # The same ids again: stored once.
    sl.expect_empty_200(sl.incoming("ACME", "+15550100000", "STOP", kid2), "repeat")
    assert int(sql_one("SELECT COUNT(*) FROM messages WHERE kannel_id=%s" % sql_str(kid2))) == 1


def test_kannel_routes_methods_and_missing_fields(ctx):
    """The callbacks are GET only (405 with Allow), a missing id or from is 400, a secret is
    checked before anything else."""
    if not sl.stack():
        return
    r = http("POST", "/kannel/incoming", body={}, key=None)
    assert r.status == 405 and r.headers.get("allow") == ["GET"], (r.status, r.headers)
    r = http("GET", "/kannel/incoming?secret=%s&from=%%2B15551234567&text=x" % sl.secret(), key=None)
    expect_err(r, 400, "INVALID_REQUEST", msg_prefix="id:")
    r = http("GET", "/kannel/incoming?secret=%s&id=abc&text=x" % sl.secret(), key=None)
    expect_err(r, 400, "INVALID_REQUEST", msg_prefix="from:")
    sl.expect_forbidden(http("GET", "/kannel/incoming?id=abc&text=x", key=None), "no secret")
    sl.expect_forbidden(http("GET", "/kannel/dlr?secret=%s0&msg=a&type=1" % sl.secret(), key=None),
                        "a longer secret")


def test_kannel_crash_window_a_delivery_report_stops_the_resend(ctx):
    """The state a worker killed between Kannel's 202 and its commit leaves: the SMS row
    recorded ('sending') and the event given back. Made here without a kill: Kannel is down
    for the first try, so the row is recorded and the event retried. When a delivery report
    names the row before the retry (Kannel did take it), the retry sends nothing and counts
    the message as sent; without one, the retry sends the same row once."""
    if not sl.stack():
        return
    worker_ready(ctx)
    reported, silent = sl.unique_number(), sl.unique_number()
    cids = {n: post("/cases", sl.sms_case_body(n)).json["data"]["caseId"] for n in (reported, silent)}
    sl.kannel_stop()
    try:
        worker_pass()
    finally:
        sl.kannel_start()
    rows = {}
    for n, cid in cids.items():
        r = sql("SELECT id, message_id, send_state FROM messages WHERE case_id=%s AND direction='outbound'"
                % sql_str(cid))
        assert len(r) == 1 and r[0][2] == "sending", r
        rows[n] = r[0]
    sl.expect_empty_200(sl.dlr(rows[reported][1], 1, ""), "delivered before the retry")
    for cid in cids.values():
        ctl_json("case", "nudge", cid, "--json")
    worker_pass()
    got = sl.wait_out(silent)
    assert len(got) == 1, got
    assert not sl.out_to(reported), sl.out_to(reported)
    for n, cid in cids.items():
        c = get("/cases/" + cid).json["data"]
        assert c["status"] == "RUNNING" and c["attemptCount"] == 1, c
        r = sql("SELECT id, send_state FROM messages WHERE case_id=%s AND direction='outbound'" % sql_str(cid))
        assert r == [[rows[n][0], "sent"]], r
