"""POST /cases/{id}/input: answering an operator question
(doc/api.md, "POST /cases/{caseId}/input")."""
import json
import threading
import uuid

from lib import (create_case, expect_err, expect_ok, get_case, http, minimal_case_body, new_client_full, now_ms,
                 post, sql, sql_one, sql_str)

INVALID = "INVALID_REQUEST"


def set_input_needed(case_id, question="Which tax year should the W-9 cover?"):
    """Puts the case in INPUT_NEEDED with a fresh PENDING request (as the worker would); returns its id."""
    rid = str(uuid.uuid4())
    at = now_ms()
    sql("INSERT INTO input_requests (id, case_id, question, status, requested_at) VALUES (%s, %s, %s, 'PENDING', %d);"
        "UPDATE cases SET status='INPUT_NEEDED', input_request_id=%s WHERE id=%s" % (
            sql_str(rid), sql_str(case_id), sql_str(question), at, sql_str(rid), sql_str(case_id)))
    return rid, at


def answer(case_id, rid, text="Tax year 2025.", key=None, decision=None):
    body = {"inputRequestId": rid, "providedContext": text}
    if decision is not None:
        body["decision"] = decision
    kw = {} if key is None else {"key": key}
    return post("/cases/%s/input" % case_id, body, **kw)


def _events(case_id, type_):
    return sql("SELECT state FROM events WHERE case_id=%s AND type=%s ORDER BY id" % (sql_str(case_id),
                                                                                   sql_str(type_)))


def test_input_accepted(ctx):
    cid = create_case(minimal_case_body())
    q = "Which tax year should the W-9 cover?"
    rid, at = set_input_needed(cid, q)
    t0 = now_ms()
    r = answer(cid, rid, text="  \n Tax year 2025, legal name \u00ab Northstar \u00bb.\t ")
    t1 = now_ms()
    d = expect_ok(r, 202)
    assert d == {"caseId": cid, "inputRequestId": rid, "accepted": True}, "202 data %r" % d
    c = get_case(cid)
    assert c["status"] == "INPUT_NEEDED", "status %r" % c["status"]
    assert c["inputRequest"] == {"id": rid, "question": q, "status": "RESOLVED", "requestedAt": at}, \
        "inputRequest %r" % c["inputRequest"]
    row = sql("SELECT status, answer, resolved_at FROM input_requests WHERE id=%s" % sql_str(rid))
    assert len(row) == 1
    status, ans, resolved_at = row[0]
    assert status == "RESOLVED", "input_requests.status %r" % status
    assert ans == "Tax year 2025, legal name \u00ab Northstar \u00bb.", "answer stored as %r (not trimmed?)" % ans
    assert resolved_at is not None and t0 - 5000 <= int(resolved_at) <= t1 + 5000, "resolved_at %r" % resolved_at
    ev = _events(cid, "INPUT_PROVIDED")
    assert ev == [["pending"]], "INPUT_PROVIDED events %r" % ev


def test_input_without_content_type(ctx):
    cid = create_case(minimal_case_body())
    rid, _ = set_input_needed(cid)
    raw = json.dumps({"inputRequestId": rid, "providedContext": "2025"}).encode()
    d = expect_ok(http("POST", "/cases/%s/input" % cid, raw_body=raw), 202)
    assert d == {"caseId": cid, "inputRequestId": rid, "accepted": True}


def test_input_with_each_decision(ctx):
    decisions = [
        {"outcome": "GOAL_ACHIEVED", "result": {"signedW9Received": True}},
        {"outcome": "GOAL_ACHIEVED", "result": {}},
        {"outcome": "REPLY", "reply": "Thanks, please send it by Friday."},
        {"outcome": "REJECTED", "reason": "Vendor refuses."},
        {"outcome": "WAIT"},
    ]
    for dec in decisions:
        cid = create_case(minimal_case_body())
        rid, _ = set_input_needed(cid)
        r = answer(cid, rid, decision=dec)
        try:
            d = expect_ok(r, 202)
        except AssertionError as e:
            raise AssertionError("decision %r: %s" % (dec, e))
        assert d == {"caseId": cid, "inputRequestId": rid, "accepted": True}
        stored = sql_one("SELECT decision FROM input_requests WHERE id=%s" % sql_str(rid))
        assert stored is not None, "decision %r not stored" % dec
        sd = json.loads(stored)
        assert sd.get("outcome") == dec["outcome"], "stored decision %r for %r" % (sd, dec)
        for k in ("result", "reply", "reason"):
            if k in dec:
                assert sd.get(k) == dec[k], "stored decision %r for %r" % (sd, dec)
        assert _events(cid, "INPUT_PROVIDED") == [["pending"]]
        assert get_case(cid)["inputRequest"]["status"] == "RESOLVED"


def test_input_validation(ctx):
    cid = create_case(minimal_case_body())
    rid, _ = set_input_needed(cid)
    bad = [
        {"providedContext": "x"},
        {"inputRequestId": rid},
        {"inputRequestId": "", "providedContext": "x"},
        {"inputRequestId": "   ", "providedContext": "x"},
        {"inputRequestId": rid, "providedContext": ""},
        {"inputRequestId": rid, "providedContext": " \t\n "},
        {"inputRequestId": 5, "providedContext": "x"},
        {"inputRequestId": rid, "providedContext": 5},
        {"inputRequestId": rid, "providedContext": None},
        {"inputRequestId": rid, "providedContext": ["x"]},
        {"inputRequestId": rid, "providedContext": {"a": "b"}},
        {"inputRequestId": rid, "providedContext": "x", "decision": "GOAL_ACHIEVED"},
        {"inputRequestId": rid, "providedContext": "x", "decision": []},
        {"inputRequestId": rid, "providedContext": "x", "decision": {}},
        {"inputRequestId": rid, "providedContext": "x", "decision": {"outcome": "BOGUS"}},
        {"inputRequestId": rid, "providedContext": "x", "decision": {"outcome": "goal_achieved", "result": {}}},
        {"inputRequestId": rid, "providedContext": "x", "decision": {"outcome": "NEEDS_INPUT"}},
        {"inputRequestId": rid, "providedContext": "x", "decision": {"outcome": 1}},
        {"inputRequestId": rid, "providedContext": "x", "decision": {"outcome": "GOAL_ACHIEVED"}},
        {"inputRequestId": rid, "providedContext": "x", "decision": {"outcome": "GOAL_ACHIEVED", "result": "yes"}},
        {"inputRequestId": rid, "providedContext": "x", "decision": {"outcome": "GOAL_ACHIEVED", "result": [1]}},
        {"inputRequestId": rid, "providedContext": "x", "decision": {"outcome": "GOAL_ACHIEVED", "result": None}},
        {"inputRequestId": rid, "providedContext": "x", "decision": {"outcome": "REPLY"}},
        {"inputRequestId": rid, "providedContext": "x", "decision": {"outcome": "REPLY", "reply": 5}},
        {"inputRequestId": rid, "providedContext": "x", "decision": {"outcome": "REPLY", "reply": None}},
    ]
    for b in bad:
        r = post("/cases/%s/input" % cid, b)
        try:
            expect_err(r, 400, INVALID)
        except AssertionError as e:
            raise AssertionError("body %r: %s" % (b, e))
    # none of that touched the request
    row = sql("SELECT status, answer, resolved_at FROM input_requests WHERE id=%s" % sql_str(rid))
    assert row == [["PENDING", None, None]], "request after refused answers: %r" % row
    assert _events(cid, "INPUT_PROVIDED") == []
    # and a good answer still goes through
    expect_ok(answer(cid, rid), 202)


def test_input_field_messages_name_the_field(ctx):
    cid = create_case(minimal_case_body())
    rid, _ = set_input_needed(cid)
    expect_err(post("/cases/%s/input" % cid, {"providedContext": "x"}), 400, INVALID,
               msg_contains="inputRequestId")
    expect_err(post("/cases/%s/input" % cid, {"inputRequestId": rid, "providedContext": "  "}), 400, INVALID,
               msg_contains="providedContext")
    expect_err(post("/cases/%s/input" % cid, {"inputRequestId": rid, "providedContext": "x",
                                              "decision": {"outcome": "BOGUS"}}), 400, INVALID,
               msg_contains="decision")


def test_input_case_not_waiting(ctx):
    cid = create_case(minimal_case_body())
    expect_err(answer(cid, str(uuid.uuid4())), 409, "CASE_NOT_WAITING_FOR_INPUT")
    # a pending request exists, but the case is RUNNING (or final): still not waiting
    rid, _ = set_input_needed(cid)
    for st in ("RUNNING", "COMPLETED", "FAILED", "CREATED"):
        sql("UPDATE cases SET status='%s' WHERE id=%s" % (st, sql_str(cid)))
        expect_err(answer(cid, rid), 409, "CASE_NOT_WAITING_FOR_INPUT")
    assert sql_one("SELECT status FROM input_requests WHERE id=%s" % sql_str(rid)) == "PENDING"


def test_input_answer_twice(ctx):
    cid = create_case(minimal_case_body())
    rid, _ = set_input_needed(cid)
    expect_ok(answer(cid, rid, text="first"), 202)
    expect_err(answer(cid, rid, text="second"), 409, "INPUT_REQUEST_NOT_PENDING")
    assert sql_one("SELECT answer FROM input_requests WHERE id=%s" % sql_str(rid)) == "first"
    assert _events(cid, "INPUT_PROVIDED") == [["pending"]]


def test_input_mismatch(ctx):
    cid = create_case(minimal_case_body())
    rid, _ = set_input_needed(cid)
    expect_err(answer(cid, str(uuid.uuid4())), 409, "INPUT_REQUEST_MISMATCH")
    expect_err(answer(cid, "not-a-uuid"), 409, "INPUT_REQUEST_MISMATCH")
    # a request of another case of the same client
    cid2 = create_case(minimal_case_body())
    rid2, _ = set_input_needed(cid2)
    expect_err(answer(cid, rid2), 409, "INPUT_REQUEST_MISMATCH")
    # the first request answered, a second one pending: the old id is stale
    expect_ok(answer(cid, rid), 202)
    rid_new, _ = set_input_needed(cid, "And the legal name?")
    expect_err(answer(cid, rid), 409, "INPUT_REQUEST_MISMATCH")
    assert get_case(cid)["inputRequest"]["id"] == rid_new
    assert get_case(cid)["inputRequest"]["status"] == "PENDING"
    d = expect_ok(answer(cid, "  %s  " % rid_new), 202)
    assert d["inputRequestId"] == rid_new, "inputRequestId not trimmed in the answer: %r" % d
    assert sql_one("SELECT status FROM input_requests WHERE id=%s" % sql_str(rid2)) == "PENDING"


def test_input_unknown_case_and_other_client(ctx):
    expect_err(answer(str(uuid.uuid4()), str(uuid.uuid4())), 404, "CASE_NOT_FOUND")
    expect_err(answer("not-a-uuid", str(uuid.uuid4())), 404, "CASE_NOT_FOUND")
    cid = create_case(minimal_case_body())
    rid, _ = set_input_needed(cid)
    other = new_client_full("UNLIMITED")
    expect_err(answer(cid, rid, key=other["key"]), 403, "FORBIDDEN")
    assert sql_one("SELECT status FROM input_requests WHERE id=%s" % sql_str(rid)) == "PENDING"
    expect_ok(answer(cid, rid), 202)


def _race(n_threads, rounds=20):
    cid = create_case(minimal_case_body())
    problems = []
    for rnd in range(rounds):
        rid, _ = set_input_needed(cid, "round %d" % rnd)
        barrier = threading.Barrier(n_threads)
        results = [None] * n_threads

        def worker(i):
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
            try:
                results[i] = answer(cid, rid, text="answer %d from %d" % (rnd, i))
            except Exception as e:  # recorded, checked below
                results[i] = e

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        statuses = []
        for r in results:
            if not hasattr(r, "status"):
                problems.append("round %d: request failed: %r" % (rnd, r))
                continue
            statuses.append(r.status)
            if r.status == 202:
                expect_ok(r, 202)
            else:
                try:
                    expect_err(r, 409, "INPUT_REQUEST_NOT_PENDING")
                except AssertionError as e:
                    problems.append("round %d: %s" % (rnd, e))
        if statuses.count(202) != 1:
            problems.append("round %d: %d answers got 202 (statuses %r)" % (rnd, statuses.count(202), statuses))
        ans = sql_one("SELECT answer FROM input_requests WHERE id=%s" % sql_str(rid))
        if not (ans or "").startswith("answer %d from " % rnd):
            problems.append("round %d: stored answer %r" % (rnd, ans))
    n_events = len(_events(cid, "INPUT_PROVIDED"))
    if n_events != rounds:
        problems.append("%d INPUT_PROVIDED events for %d rounds" % (n_events, rounds))
    assert not problems, "\n".join(problems[:20])


def test_input_race_two_answers(ctx):
    _race(2)


def test_input_race_eight_answers(ctx):
    _race(8)
