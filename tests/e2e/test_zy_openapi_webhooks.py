"""Webhook events against doc/openapi.yaml (webhooks.caseEvent): every event body in the
outbox, as src/store/outbox.c wrote it. Named to run after the worker tests, so that the
events of all their flows (completed, failed, input needed) are checked too; and which of
the document's responses the suite's requests produced."""
import json

import openapi_check
from lib import (create_case, expect_ok, get_case, minimal_case_body, pause_case_for_input, post, sql,
                 sql_str, unique_address, worker_drain, worker_ready, worker_stderr)


def test_openapi_webhook_bodies_match_the_document(ctx):
    worker_ready(ctx)
    # One event of this test's own, so the check never runs on an empty outbox.
    body = minimal_case_body()
    body["counterparty"] = {"address": unique_address("oas"), "name": "Maya Chen"}
    body["clientWebhookUrl"] = "http://127.0.0.1:9/openapi-hook"
    body["clientReferenceId"] = "openapi-webhook"
    body["metadata"] = {"check": "openapi"}
    cid = create_case(body)
    worker_drain()
    rid = pause_case_for_input(cid)
    expect_ok(post("/cases/%s/input" % cid, {"inputRequestId": rid, "providedContext": "No.",
                                             "decision": {"outcome": "REJECTED", "reason": "not needed"}}), 202)
    runs = worker_drain()
    assert get_case(cid)["status"] == "FAILED", "setup: the case did not fail\n%s" % worker_stderr(runs)
    own = sql("SELECT body FROM webhook_deliveries WHERE case_id = %s" % sql_str(cid))
    assert len(own) == 1, "want one event for case %s, got %d" % (cid, len(own))
    event = json.loads(own[0][0])
    assert event["event_type"] == "case.failed" and event["data"]["failureReason"] == "not needed", event

    rows = sql("SELECT event_id, body FROM webhook_deliveries")
    types = set()
    for event_id, text in rows:
        openapi_check.check_webhook(text)
        types.add(json.loads(text)["event_type"])
    print("# checked %d webhook events (%s)" % (len(rows), ", ".join(sorted(types))))


def test_openapi_responses_exercised(ctx):
    """Says which documented responses the suite's requests produced (information only: many
    are nginx's or the database's failures, which the suite does not provoke)."""
    doc = set()
    for template, item in openapi_check.spec().doc["paths"].items():
        for m, op in item.items():
            if m in openapi_check.METHODS:
                doc |= {(m.upper(), template, s) for s in op["responses"]}
    seen = openapi_check.seen & doc
    print("# doc/openapi.yaml: the suite checked %d of its %d documented responses" % (len(seen), len(doc)))
    for m, t, s in sorted(doc - seen):
        if s not in ("413", "429", "500", "502", "503", "504") and not (s == "400" and m == "GET"):
            print("#   not exercised: %s %s %s" % (m, t, s))
