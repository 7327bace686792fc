"""The LLM agent's bad output (doc/operator-guide.md, "The agent"): results that do not
conform to resultSchema, answers that are not JSON of the evaluate_thread shape, refusals
and truncation. Each is retried once; then the case asks its operator, honestly, and is
never COMPLETED with a result that does not conform. The operator's own GOAL_ACHIEVED is
held to the schema too.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "agent-server"))

import agentlib as al  # noqa: E402
from lib import get_case, outbox_to  # noqa: E402
from server import AgentServer  # noqa: E402

W9_REPLY = "Hello, the signed W-9 is attached. Regards, Maya"


def _outcomes(cid, call="evaluate_thread"):
    return [r["outcome"] for r in al.calls(cid) if r["call"] == call]


def test_agent_invalid_result_is_repaired_on_the_second_try(ctx):
    m = al.new_marker()
    bad = {"signedW9Received": True, "taxId": None, "receivedAt": None}
    good = {"signedW9Received": True, "taxId": "55-1234567", "receivedAt": "2026-03-21"}
    s = al.script(m, evaluate=[
        {"content": al.decision("GOAL_ACHIEVED", result=bad)},
        # The second request carries the first answer and the validation errors.
        {"content": al.decision("GOAL_ACHIEVED", result=good),
         "expect_contains": ["result.taxId: must be a string (got null)", "\"taxId\": null"]},
    ])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-repair")
        al.send_reply(first, addr, cid, W9_REPLY + " TIN 55-1234567.")
        runs = al.llm_drain(srv)
        c = get_case(cid)
        al.no_violations(srv)
        second = srv.own("evaluate_thread")[1]
    assert c["status"] == "COMPLETED", "status %s\n%s" % (c["status"], al.dump(srv, runs))
    assert c["result"] == good, c["result"]
    roles = [x["role"] for x in second["body"]["messages"]]
    assert roles == ["system", "user", "assistant", "user"], roles
    assert _outcomes(cid) == ["result_mismatch", "ok"], al.calls(cid)


def test_agent_invalid_result_twice_asks_for_the_missing_field(ctx):
    m = al.new_marker()
    bad = {"signedW9Received": True}
    s = al.script(m, evaluate=[{"content": al.decision("GOAL_ACHIEVED", result=bad)},
                               {"content": al.decision("GOAL_ACHIEVED", result=bad),
                                "expect_contains": ["result.taxId: is required"]}])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-invalid2")
        al.send_reply(first, addr, cid, W9_REPLY)
        runs = al.llm_drain(srv)
        c = get_case(cid)
        al.no_violations(srv)
    assert c["status"] == "INPUT_NEEDED", "status %s\n%s" % (c["status"], al.dump(srv, runs))
    q = c["inputRequest"]["question"]
    assert "result.taxId: is required" in q, q
    assert W9_REPLY in q, "the question quotes the latest message: %r" % q
    assert c["result"] is None and c["resultStatus"] is None, c
    assert _outcomes(cid) == ["result_mismatch", "result_mismatch"], al.calls(cid)


def test_agent_garbage_twice_becomes_needs_input(ctx):
    m = al.new_marker()
    s = al.script(m, evaluate=[
        {"content": "Sure! The W-9 arrived, so I would say the goal is achieved."},
        {"content": {"decision": "DONE", "reply": None, "inputQuestion": None, "result": None, "reason": None},
         "expect_contains": ["not valid JSON"]},
    ])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-garbage")
        al.send_reply(first, addr, cid, W9_REPLY)
        runs = al.llm_drain(srv)
        c = get_case(cid)
        al.no_violations(srv)
    assert c["status"] == "INPUT_NEEDED", "status %s\n%s" % (c["status"], al.dump(srv, runs))
    q = c["inputRequest"]["question"]
    assert q.startswith("The agent could not decide: "), q
    assert "DONE" in q and "is not one of GOAL_ACHIEVED" in q, q
    assert c["result"] is None
    assert _outcomes(cid) == ["bad_output", "bad_output"], al.calls(cid)
    assert len(outbox_to(addr)) == 1, "nothing was sent"


def test_agent_bad_shapes_are_retried_once(ctx):
    """An empty REPLY, then NEEDS_INPUT without a question: two bad answers."""
    m = al.new_marker()
    s = al.script(m, evaluate=[
        {"content": al.decision("REPLY", reply="   ")},
        {"content": al.decision("NEEDS_INPUT", question=None), "expect_contains": ["reply text was empty"]},
    ])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-shape")
        al.send_reply(first, addr, cid, W9_REPLY)
        al.llm_drain(srv)
        c = get_case(cid)
        al.no_violations(srv)
    assert c["status"] == "INPUT_NEEDED", c["status"]
    assert "NEEDS_INPUT but there was no inputQuestion" in c["inputRequest"]["question"], c["inputRequest"]
    assert len(outbox_to(addr)) == 1, "an empty reply is never sent"


def test_agent_refusal_and_truncation_are_bad_output(ctx):
    m = al.new_marker()
    s = al.script(m, evaluate=[
        {"content": None, "refusal": "I can't help with that request."},
        {"content": "{\"decision\": \"REP", "finish_reason": "length"},
    ])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-refuse")
        al.send_reply(first, addr, cid, W9_REPLY)
        al.llm_drain(srv)
        c = get_case(cid)
        al.no_violations(srv)
    assert c["status"] == "INPUT_NEEDED", c["status"]
    assert "cut off" in c["inputRequest"]["question"], c["inputRequest"]
    assert _outcomes(cid) == ["refused", "truncated"], al.calls(cid)


def test_agent_garbage_once_then_a_good_answer(ctx):
    m = al.new_marker()
    reply = "Hello Maya,\n\nThank you! Could you also confirm the legal name on the form?\n\nAvery"
    s = al.script(m, evaluate=[{"content": "not json at all"},
                               {"content": al.decision("REPLY", reply=reply),
                                "expect_contains": ["not valid JSON"]}])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-garbage1")
        al.send_reply(first, addr, cid, W9_REPLY)
        al.llm_drain(srv)
        c = get_case(cid)
        al.no_violations(srv)
    assert c["status"] == "RUNNING" and c["attemptCount"] == 2, (c["status"], c["attemptCount"])
    mails = outbox_to(addr)
    assert len(mails) == 2 and "confirm the legal name" in mails[1].text(), mails


def test_agent_operator_result_must_conform_too(ctx):
    """doc/api.md, "Lifecycle", for the operator's decision: a non-conforming result is not
    a completion."""
    m = al.new_marker()
    s = al.script(m, evaluate=[{"content": al.decision("NEEDS_INPUT", question="Is the attached form right?")}])
    with AgentServer(s) as srv:
        cid, addr, first = al.started_case(ctx, srv, m, "ag-oper")
        al.send_reply(first, addr, cid, W9_REPLY)
        al.llm_drain(srv)
        rid1 = al.answer(cid, "It is right.", {"outcome": "GOAL_ACHIEVED", "result": {"signedW9Received": True}})
        runs = al.llm_drain(srv)
        c = get_case(cid)
        assert c["status"] == "INPUT_NEEDED", "status %s\n%s" % (c["status"], al.dump(srv, runs))
        assert c["inputRequest"]["id"] != rid1 and c["inputRequest"]["status"] == "PENDING", c["inputRequest"]
        assert "result.taxId: is required" in c["inputRequest"]["question"], c["inputRequest"]
        assert c["result"] is None
        good = {"signedW9Received": True, "taxId": "12-3456789"}
        al.answer(cid, "Here it is.", {"outcome": "GOAL_ACHIEVED", "result": good})
        al.llm_drain(srv)
        c = get_case(cid)
        # The operator decided: the model was asked once only, for the reply.
        assert len(srv.own("evaluate_thread")) == 1, al.dump(srv)
        al.no_violations(srv)
    assert c["status"] == "COMPLETED" and c["result"] == good, c
