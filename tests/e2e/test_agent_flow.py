"""The LLM agent end to end (doc/operator-guide.md, "The agent"): offload-worker with
[agent] kind = llm against the scripted OpenAI-compatible server
(tests/agent-server/server.py), replies through offload-inbound, answers through the API.
The server checks every request (model, bearer key, json_schema name and strict shape,
persona, constraints, knowledge, the latest reply, the operator's answers) and answers from
a script per scenario.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "agent-server"))

import agentlib as al  # noqa: E402
import lib  # noqa: E402
from lib import SENTINEL, ctl_json, get_case, now_ms, outbox_to  # noqa: E402
from server import AgentServer, fenced  # noqa: E402

H = 3600000
W9_REPLY = "Hi Avery,\n\nattached is our signed W-9. Our TIN is 12-3456789.\n\nMaya"


def test_agent_w9_completes_with_a_valid_result(ctx):
    m = al.new_marker()
    result = {"signedW9Received": True, "taxId": "12-3456789", "receivedAt": None}
    s = al.script(m, evaluate=[{"content": al.decision("GOAL_ACHIEVED", result=result),
                                "expect_contains": ["our signed W-9", "12-3456789"],
                                "expect_fenced": ["Our TIN is 12-3456789."]}])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-w9")
        # The outreach is the model's draft, sent as written.
        assert first.header("Subject") == al.OUTREACH["subject"], first.header("Subject")
        assert "Could you send us a signed W-9 for Northstar Supplies?" in first.text(), first.text()
        drafts = srv.own("draft_message")
        assert len(drafts) == 1, al.dump(srv)
        assert "the first message to the counterparty" in drafts[0]["prompt"], drafts[0]["prompt"][-2000:]
        assert drafts[0]["body"]["response_format"]["json_schema"]["name"] == "draft_message"

        al.send_reply(first, addr, cid, W9_REPLY)
        runs = al.llm_drain(srv)
        c = get_case(cid)
        assert c["status"] == "COMPLETED", "status %s\n%s" % (c["status"], al.dump(srv, runs))
        assert c["resultStatus"] == "goal_achieved", c["resultStatus"]
        # The null of the optional receivedAt is dropped; the rest conforms to resultSchema.
        assert c["result"] == {"signedW9Received": True, "taxId": "12-3456789"}, c["result"]
        assert c["nextActionAt"] == SENTINEL
        al.no_violations(srv)
        evals = srv.own("evaluate_thread")
        assert len(evals) == 1, al.dump(srv)
        schema = evals[0]["body"]["response_format"]["json_schema"]["schema"]
        rs = schema["properties"]["result"]
        assert set(rs["required"]) == {"signedW9Received", "taxId", "receivedAt"}, rs
        assert rs["properties"]["receivedAt"]["type"] == ["string", "null"], rs

    # Accounting: one row per call, with the usage the server reported; case show sums them.
    rows = al.calls(cid)
    assert [(r["call"], r["outcome"], r["status"]) for r in rows] == [
        ("draft_message", "ok", "200"), ("evaluate_thread", "ok", "200")], rows
    assert all(r["model"] == al.MODEL and int(r["total"]) > 0 and int(r["latency"]) >= 0 for r in rows), rows
    shown = ctl_json("case", "show", cid, "--json")
    u = shown.get("agentUsage")
    assert u and u["calls"] == 2, shown
    assert u["totalTokens"] == sum(int(r["total"]) for r in rows), (u, rows)
    assert u["promptTokens"] + u["completionTokens"] == u["totalTokens"], u
    assert u["latencyMs"] == sum(int(r["latency"]) for r in rows), (u, rows)


def test_agent_reply_is_sent_in_the_thread(ctx):
    m = al.new_marker()
    question = "Which revision of the form do you need? We have the 2018 one."
    reply = "Hello Maya,\n\nPlease use the current revision (March 2024) of the W-9.\n\nBest regards,\nAvery"
    s = al.script(m, evaluate=[{"content": al.decision("REPLY", reply=reply),
                                "expect_contains": [question]}])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-reply")
        msgid = al.send_reply(first, addr, cid, question)
        t0 = now_ms()
        runs = al.llm_drain(srv)
        c = get_case(cid)
        al.no_violations(srv)
    assert c["status"] == "RUNNING", "status %s\n%s" % (c["status"], al.dump(srv, runs))
    assert c["attemptCount"] == 2, c["attemptCount"]
    assert t0 + 72 * H <= c["nextActionAt"] <= now_ms() + 72 * H, c["nextActionAt"]
    mails = outbox_to(addr)
    assert len(mails) == 2, mails
    second = mails[1]
    assert second.header("In-Reply-To").strip() == "<%s>" % msgid, second.header("In-Reply-To")
    assert second.header("Subject") == "Re: " + al.OUTREACH["subject"], second.header("Subject")
    assert "Please use the current revision (March 2024)" in second.text(), second.text()


def test_agent_needs_input_then_the_answer_completes(ctx):
    m = al.new_marker()
    vendor = "We only have a W-9 signed in 2023, TIN 98-7654321. Is that one acceptable?"
    question = "The vendor offers a W-9 signed in 2023. Is a 2023 form acceptable?"
    operator = "Yes, a 2023 form is acceptable; we need nothing newer."
    result = {"signedW9Received": True, "taxId": "98-7654321", "receivedAt": None}
    s = al.script(m, evaluate=[
        {"content": al.decision("NEEDS_INPUT", question=question), "expect_contains": [vendor],
         "expect_fenced": [vendor]},
        # Evaluated again with every human answer (and the question) in the prompt
        # (doc/api.md, "Lifecycle").
        {"content": al.decision("GOAL_ACHIEVED", result=result),
         "expect_contains": [vendor, operator, question]},
    ])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-input")
        al.send_reply(first, addr, cid, vendor)
        runs = al.llm_drain(srv)
        c = get_case(cid)
        assert c["status"] == "INPUT_NEEDED", "status %s\n%s" % (c["status"], al.dump(srv, runs))
        assert c["inputRequest"]["question"] == question, c["inputRequest"]
        assert c["inputRequest"]["status"] == "PENDING", c["inputRequest"]
        assert c["nextActionAt"] == SENTINEL

        al.answer(cid, operator)
        runs = al.llm_drain(srv)
        c = get_case(cid)
        assert c["status"] == "COMPLETED", "status %s\n%s" % (c["status"], al.dump(srv, runs))
        assert c["result"] == {"signedW9Received": True, "taxId": "98-7654321"}, c["result"]
        al.no_violations(srv)
        second = srv.own("evaluate_thread")[1]
        # The operator is trusted: the answer is not fenced as data; the counterparty is.
        assert not fenced(second["system"], second["user"], operator), second["user"][-3000:]
        assert fenced(second["system"], second["user"], vendor)
    assert len(outbox_to(addr)) == 1, "nothing more was sent"


def test_agent_rejected_fails_the_case(ctx):
    m = al.new_marker()
    s = al.script(m, evaluate=[{"content": al.decision(
        "REJECTED", reason="The vendor says they will not provide a W-9.")}])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-rej")
        al.send_reply(first, addr, cid, "We do not hand out tax forms. Please stop writing.")
        runs = al.llm_drain(srv)
        c = get_case(cid)
        al.no_violations(srv)
    assert c["status"] == "FAILED", "status %s\n%s" % (c["status"], al.dump(srv, runs))
    assert c["resultStatus"] == "failed_rejected", c["resultStatus"]
    assert c["failureReason"] == "The vendor says they will not provide a W-9.", c["failureReason"]
    assert c["result"] is None


def test_agent_follow_up_is_drafted_n_of_max(ctx):
    m = al.new_marker()
    follow = {"subject": "anything: the thread subject is kept",
              "body": "Hello Maya,\n\nA quick reminder about the signed W-9.\n\nAvery"}
    s = al.script(m, draft=[{"content": al.OUTREACH},
                            {"content": follow, "expect_contains": ["follow-up 1 of 3",
                                                                    "Subject: " + al.OUTREACH["subject"]]}])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-follow")
        lib.park_other_cases(cid)
        runs = al.llm_drain(srv, fake="+73h")
        c = get_case(cid)
        al.no_violations(srv)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 2, "%s %s\n%s" % (
        c["status"], c["attemptCount"], al.dump(srv, runs))
    mails = outbox_to(addr)
    assert len(mails) == 2, mails
    assert mails[1].header("Subject") == "Re: " + al.OUTREACH["subject"], mails[1].header("Subject")
    assert "A quick reminder about the signed W-9." in mails[1].text()
