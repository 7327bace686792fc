"""The LLM server failing (doc/operator-guide.md, "The agent"): 5xx, timeouts, a refused key
and unusable drafts are temporary failures. The case is untouched, the event is given back
with backoff, nothing is sent, and a later pass (faketime) succeeds. The key never shows in
logs or errors.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "agent-server"))

import agentlib as al  # noqa: E402
from lib import get_case, outbox_to, sql, sql_str  # noqa: E402
from server import AgentServer  # noqa: E402

RESULT = {"signedW9Received": True, "taxId": "12-3456789", "receivedAt": None}
W9_REPLY = "Signed W-9 attached, TIN 12-3456789."


def _error(status, message):
    return {"status": status, "raw": json.dumps({"error": {"message": message, "type": "server_error"}})}


def _untouched(cid, before):
    c = get_case(cid)
    for k in ("status", "attemptCount", "updatedAt", "nextActionAt", "inputRequest", "result"):
        assert c[k] == before[k], "%s changed: %r -> %r" % (k, before[k], c[k])
    return c


def _events(cid, type_):
    return sql("SELECT state, attempts, last_error FROM events WHERE case_id=%s AND type=%s ORDER BY id"
               % (sql_str(cid), sql_str(type_)))


def test_agent_server_500_is_retried_later(ctx):
    m = al.new_marker()
    s = al.script(m, evaluate=[_error(500, "upstream overloaded"),
                               {"content": al.decision("GOAL_ACHIEVED", result=RESULT)}])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-500")
        al.send_reply(first, addr, cid, W9_REPLY)
        before = get_case(cid)
        v0 = al.version(cid)
        run = al.llm_pass(srv)
        _untouched(cid, before)
        assert al.version(cid) == v0, "the case row was written"
        ev = _events(cid, "REPLY_RECEIVED")
        assert len(ev) == 1 and ev[0][0] == "pending" and ev[0][1] == "1", ev
        assert "HTTP 500" in ev[0][2] and "upstream overloaded" in ev[0][2], ev
        assert "retrying in" in run.stderr, run.tail()
        assert [(r["outcome"], r["status"]) for r in al.calls(cid)][-1] == ("http_error", "500")

        # The backoff (about 30 s) has passed: the event comes back and succeeds.
        runs = al.llm_drain(srv, fake="+10m")
        c = get_case(cid)
        assert c["status"] == "COMPLETED", "status %s\n%s" % (c["status"], al.dump(srv, runs))
        al.no_violations(srv)
    assert _events(cid, "REPLY_RECEIVED")[0][0] == "done"


def test_agent_timeout_is_retried_later(ctx):
    m = al.new_marker()
    s = al.script(m, evaluate=[{"delay_ms": 3000, "content": al.decision("REJECTED", reason="too late")},
                               {"content": al.decision("GOAL_ACHIEVED", result=RESULT)}])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-timeout")
        al.send_reply(first, addr, cid, W9_REPLY)
        before = get_case(cid)
        al.llm_pass(srv, timeout_ms=800)
        _untouched(cid, before)
        ev = _events(cid, "REPLY_RECEIVED")
        assert ev[0][0] == "pending" and "did not answer in time" in ev[0][2], ev
        assert al.calls(cid)[-1]["outcome"] == "timeout", al.calls(cid)
        runs = al.llm_drain(srv, fake="+10m")
        c = get_case(cid)
        assert c["status"] == "COMPLETED", "status %s\n%s" % (c["status"], al.dump(srv, runs))
        al.no_violations(srv)


def test_agent_unreachable_server_is_retried_later(ctx):
    m = al.new_marker()
    s = al.script(m, evaluate=[{"content": al.decision("GOAL_ACHIEVED", result=RESULT)}])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-down")
        al.send_reply(first, addr, cid, W9_REPLY)
        before = get_case(cid)
    # The server is gone: connection refused.
    al.llm_pass(srv)
    _untouched(cid, before)
    ev = _events(cid, "REPLY_RECEIVED")
    assert ev[0][0] == "pending" and "could not be reached" in ev[0][2], ev
    assert al.calls(cid)[-1]["outcome"] == "connection_error", al.calls(cid)
    with AgentServer(s) as srv2:
        runs = al.llm_drain(srv2, fake="+10m")
        c = get_case(cid)
        assert c["status"] == "COMPLETED", "status %s\n%s" % (c["status"], al.dump(srv2, runs))
        al.no_violations(srv2)


def test_agent_key_is_never_logged(ctx):
    key = "sk-offload-e2e-SECRET-7f3a9c"
    m = al.new_marker()
    s = al.script(m, api_key=key, evaluate=[
        _error(401, "Incorrect API key provided: %s. You can find your API key at ..." % key),
        {"content": al.decision("GOAL_ACHIEVED", result=RESULT)}])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-key", api_key=key)
        al.send_reply(first, addr, cid, W9_REPLY)
        run = al.llm_pass(srv, api_key=key)
        ev = _events(cid, "REPLY_RECEIVED")
        assert ev[0][0] == "pending" and "HTTP 401" in ev[0][2], ev
        assert key not in ev[0][2] and "SECRET" not in ev[0][2], ev
        assert "SECRET" not in run.stderr, run.tail()
        runs = al.llm_drain(srv, fake="+10m", api_key=key)
        assert all("SECRET" not in r.stderr for r in runs)
        assert get_case(cid)["status"] == "COMPLETED", al.dump(srv, runs)
        al.no_violations(srv)
        assert all(r["headers"].get("authorization") == "Bearer " + key for r in srv.own())
    rows = sql("SELECT COUNT(*) FROM events WHERE last_error LIKE '%%SECRET%%' OR payload LIKE '%%SECRET%%'")
    assert rows[0][0] == "0", rows


def test_agent_outreach_waits_for_a_usable_draft(ctx):
    """503, then two unusable drafts (a header injection, an empty one): nothing is sent and
    the case stays CREATED; the next try sends the good draft."""
    m = al.new_marker()
    s = al.script(m, draft=[
        _error(503, "loading model"),
        {"content": {"subject": "W-9\r\nBcc: attacker@evil.example", "body": "Hello"}},
        {"content": {"subject": "", "body": ""}, "expect_contains": ["one line"]},
        {"content": al.OUTREACH},
    ])
    with AgentServer(s) as srv:
        import lib
        lib.worker_ready(ctx)
        addr = lib.unique_address("ag-draft")
        cid = lib.create_case(al.case_body(m, addr))
        al.llm_pass(srv)
        c = get_case(cid)
        assert c["status"] == "CREATED" and c["attemptCount"] == 0 and not outbox_to(addr), c
        al.llm_pass(srv, fake="+10m")
        c = get_case(cid)
        assert c["status"] == "CREATED" and not outbox_to(addr), c
        ev = _events(cid, "CASE_CREATED")
        assert ev[0][0] == "pending" and "no usable draft" in ev[0][2], ev
        runs = al.llm_drain(srv, fake="+2h")
        c = get_case(cid)
        al.no_violations(srv)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 1, "%s\n%s" % (c, al.dump(srv, runs))
    mails = outbox_to(addr)
    assert len(mails) == 1 and mails[0].header("Subject") == al.OUTREACH["subject"], mails
    assert mails[0].header("Bcc") is None and "attacker" not in mails[0].raw.decode("utf-8", "replace")
    assert [r["outcome"] for r in al.calls(cid)] == ["http_error", "bad_output", "bad_output", "ok"], al.calls(cid)
