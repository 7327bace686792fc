"""offload-worker: webhook outbox rows written with terminal transitions (doc/api.md,
"Lifecycle" and "Webhooks").

Delivery is not tested here: the URL is http://127.0.0.1:9/hook (the discard port on
loopback), so nothing can ever leave the machine.
"""
import json

from lib import (create_case, env, expect_ok, get_case, minimal_case_body, now_ms, pause_case_for_input, post, sql,
                 sql_str, unique_address, worker_drain, worker_ready, worker_stderr)

HOOK = "http://127.0.0.1:9/hook"
BASE_KEYS = {"caseId", "status", "channel", "attemptCount", "attachments"}
TERMINAL_KEYS = {"resultStatus", "result", "failureReason"}
INPUT_KEYS = {"inputRequest", "inputRequestId", "inputRequestStatus", "inputRequestedAt"}


def _body(addr, **over):
    b = minimal_case_body()
    b["counterparty"] = {"address": addr, "name": "Maya Chen"}
    b["clientWebhookUrl"] = HOOK
    b.update(over)
    return b


def _rows(cid):
    rows = sql("SELECT event_id, client_id, event_type, url, body, state, attempts, next_attempt_at, created_at"
               " FROM webhook_deliveries WHERE case_id=%s ORDER BY id" % sql_str(cid))
    keys = ("event_id", "client_id", "event_type", "url", "body", "state", "attempts", "next_attempt_at",
            "created_at")
    return [dict(zip(keys, r)) for r in rows]


def _check_terminal(cid, event_type, t0, t1, given):
    """Checks the one outbox row of the case against GET /cases/{id}; returns the data."""
    c = get_case(cid)
    rows = _rows(cid)
    assert len(rows) == 1, "want one webhook_deliveries row (%s), got %r" % (event_type, rows)
    r = rows[0]
    us = event_type.replace(".", "_")
    assert r["event_id"] == "evt_%s_%s_%d" % (cid, us, c["updatedAt"]), \
        "event_id %r, want evt_<caseId>_%s_<updatedAt %d>" % (r["event_id"], us, c["updatedAt"])
    assert r["event_type"] == event_type, "event_type %r" % r["event_type"]
    assert r["state"] == "pending", "state %r, want pending (no delivery yet)" % r["state"]
    assert r["url"] == HOOK, "url %r" % r["url"]
    assert r["client_id"] == env().client_id, "client_id %r" % r["client_id"]
    assert t0 <= int(r["created_at"]) <= t1, "created_at %r not within the pass" % r["created_at"]
    body = json.loads(r["body"])
    assert isinstance(body, dict) and set(body) == {"event_id", "event_type", "timestamp", "data"}, \
        "body keys %r" % (sorted(body) if isinstance(body, dict) else body)
    assert body["event_id"] == r["event_id"] and body["event_type"] == event_type, "body %r" % body
    assert isinstance(body["timestamp"], int) and t0 <= body["timestamp"] <= t1, \
        "timestamp %r, want Unix ms of the transition (%d..%d)" % (body["timestamp"], t0, t1)
    data = body["data"]
    assert isinstance(data, dict), "data %r" % data
    want_keys = BASE_KEYS | TERMINAL_KEYS | set(given)
    missing = want_keys - set(data)
    assert not missing, "data lacks %s: %r" % (sorted(missing), data)
    for k in ("clientReferenceId", "metadata"):
        if k not in given:
            assert k not in data, "data has %s although the case was created without it: %r" % (k, data)
    bad = (INPUT_KEYS | {"clientWebhookUrl"}) & set(data)
    assert not bad, "a terminal event's data has %s: %r" % (sorted(bad), data)
    for k in want_keys:
        assert data[k] == c[k], "data.%s is %r, GET says %r" % (k, data[k], c[k])
    return data


def test_worker_webhook_on_rejected(ctx):
    worker_ready(ctx)
    addr = unique_address("reject-hook")
    meta = {"source": "e2e", "n": 7, "nested": {"ok": True}}
    cid = create_case(_body(addr, clientReferenceId="ref-\u00e9-1", metadata=meta))
    t0 = now_ms()
    runs = worker_drain()
    t1 = now_ms()
    c = get_case(cid)
    assert c["status"] == "FAILED", "status %r\n%s" % (c["status"], worker_stderr(runs))
    data = _check_terminal(cid, "case.failed", t0, t1, {"clientReferenceId", "metadata"})
    assert data["status"] == "FAILED" and data["resultStatus"] == "REJECTED" and data["channel"] == "EMAIL"
    assert data["metadata"] == meta and data["clientReferenceId"] == "ref-\u00e9-1", "data %r" % data
    assert data["attachments"] == [] and data["result"] is None, "data %r" % data


def test_worker_webhook_on_completed(ctx):
    worker_ready(ctx)
    addr = unique_address("hook-done")
    meta = {"batch": "2026-03"}
    cid = create_case(_body(addr, metadata=meta))
    runs = worker_drain()
    assert get_case(cid)["status"] == "RUNNING", worker_stderr(runs)
    assert _rows(cid) == [], "a webhook row for the move to RUNNING: %r" % _rows(cid)
    rid = pause_case_for_input(cid)
    result = {"signedW9Received": True}
    expect_ok(post("/cases/%s/input" % cid, {"inputRequestId": rid, "providedContext": "done",
                                             "decision": {"outcome": "GOAL_ACHIEVED", "result": result}}), 202)
    t0 = now_ms()
    runs = worker_drain()
    t1 = now_ms()
    assert get_case(cid)["status"] == "COMPLETED", worker_stderr(runs)
    data = _check_terminal(cid, "case.completed", t0, t1, {"metadata"})
    assert data["result"] == result and data["resultStatus"] == "goal_achieved", "data %r" % data
    assert data["failureReason"] is None and data["attemptCount"] == 1, "data %r" % data


def test_worker_webhook_on_max_retries(ctx):
    worker_ready(ctx)
    addr = unique_address("hook-max")
    cid = create_case(_body(addr, maxAttempts=0, followUpDelayHours=1, clientReferenceId="r-max"))
    runs = worker_drain()
    assert get_case(cid)["status"] == "RUNNING", worker_stderr(runs)
    assert _rows(cid) == [], "a webhook row for the move to RUNNING: %r" % _rows(cid)
    t0 = now_ms()
    runs = worker_drain(fake="+65m")
    t1 = now_ms() + 65 * 60000
    assert get_case(cid)["status"] == "FAILED", worker_stderr(runs)
    # The pass ran 65 minutes ahead: its times are the faked ones.
    data = _check_terminal(cid, "case.failed", t0 + 65 * 60000 - 5000, t1 + 5000, {"clientReferenceId"})
    assert data["resultStatus"] == "max_retries", "data %r" % data


def test_worker_no_webhook_without_url(ctx):
    worker_ready(ctx)
    addr = unique_address("reject-nohook")
    b = _body(addr)
    del b["clientWebhookUrl"]
    cid = create_case(b)
    runs = worker_drain()
    assert get_case(cid)["status"] == "FAILED", worker_stderr(runs)
    assert _rows(cid) == [], "webhook rows for a case without clientWebhookUrl: %r" % _rows(cid)
