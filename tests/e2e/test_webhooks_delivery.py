"""Webhook delivery (doc/api.md, "Webhooks"): signed POSTs of the exact stored body, retries
on the schedule at growing intervals (time moved with faketime), exactly one acknowledged
delivery per event, timeouts, redirects not followed, 410, giving up, concurrent senders.

Every delivery goes to a receiver on 127.0.0.1 started by the test; offloadctl runs with
[webhook] loopback_only = true (through the environment) so nothing can go further.
"""
import json
import os
import subprocess
import time

import lib
from webhook_receiver import Receiver, deliver, delivery_row, make_delivery, retire, sign


def _client(ctx):
    return ctx.once("webhook_client", lambda: lib.new_client_full("UNLIMITED"))


def test_delivered_once_signed_over_the_exact_body(ctx):
    client = _client(ctx)
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        d = make_delivery(client, rx.url("/ok"))
        try:
            before = int(time.time())
            st = deliver(d["caseId"])
            after = int(time.time())
            assert (st["delivered"], st["failed"], st["dead"]) == (1, 0, 0), st
            reqs = rx.received("/ok")
            assert len(reqs) == 1, reqs
            r = reqs[0]
            assert r.headers.get("content-type", "").split(";")[0] == "application/json", r.headers
            assert r.webhook_id == d["eventId"], (r.webhook_id, d["eventId"])
            assert r.timestamp.isdigit() and before - 1 <= int(r.timestamp) <= after + 1, r.timestamp
            assert r.n_signatures == 1 and r.verified_with == [0], \
                "signature %r does not verify with the client's secret" % r.signature
            want = "v1," + sign(client["webhookSecret"], r.webhook_id, r.timestamp, r.body)
            assert r.signature == want, (r.signature, want)
            assert r.body == d["body"].encode("utf-8"), "body differs from the stored bytes"
            env = r.json()
            assert set(env) == {"event_id", "event_type", "timestamp", "data"}, env
            assert env["event_id"] == d["eventId"] and env["event_type"] == "case.completed"
            assert env["data"]["caseId"] == d["caseId"] and env["data"]["status"] == "COMPLETED"
            assert "expect" not in r.headers, "no Expect: 100-continue round trip: %r" % r.headers
            row = delivery_row(d["eventId"])
            assert row["state"] == "delivered", row
            assert row["attempts"] == 1 and row["last_status_code"] == 200, row
            assert row["delivered_at"] and row["last_error"] is None, row
            assert row["last_response_body"] == '{"received":true}', row
            assert row["lease_owner"] is None and row["lease_until"] is None, row
            # Delivered is final: later passes, even much later, send nothing more.
            st = deliver(d["caseId"], offset_s=3 * 86400)
            assert st["delivered"] == 0 and len(rx.received()) == 1, (st, rx.received())
        finally:
            retire([d["caseId"]])


def _due_offset_s(row):
    """A faketime offset (seconds) that makes the delivery's next attempt due."""
    return max(1, (row["next_attempt_at"] - lib.now_ms()) // 1000 + 2)


def test_retries_at_growing_intervals_then_exactly_one_success(ctx):
    client = _client(ctx)
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        rx.behave("/flaky", fail_first=3, fail_status=500, body=b"temporarily broken")
        d = make_delivery(client, rx.url("/flaky"))
        try:
            gaps = []
            offset = 0
            for attempt in (1, 2, 3):
                st = deliver(d["caseId"], offset_s=offset)
                assert (st["delivered"], st["failed"], st["dead"]) == (0, 1, 0), (attempt, st)
                reqs = rx.received("/flaky")
                assert len(reqs) == attempt, (attempt, reqs)
                row = delivery_row(d["eventId"])
                assert row["state"] == "pending" and row["attempts"] == attempt, row
                assert row["last_status_code"] == 500 and row["last_error"] == "HTTP 500", row
                assert row["last_response_body"] == "temporarily broken", row
                sent_ms = int(reqs[-1].timestamp) * 1000
                gaps.append(row["next_attempt_at"] - sent_ms)
                # Not due yet: a pass at the same (possibly faked) time sends nothing.
                st = deliver(d["caseId"], offset_s=offset)
                assert st["failed"] == 0 and len(rx.received("/flaky")) == attempt, st
                offset = _due_offset_s(row)
            # Schedule 5 s, 300 s, 1800 s, each ±10 % (plus the second the timestamp rounds off).
            for gap, base in zip(gaps, (5000, 300000, 1800000)):
                assert base * 0.9 - 1000 <= gap <= base * 1.1 + 1000, (gaps, base)
            assert gaps[0] < gaps[1] < gaps[2], gaps
            st = deliver(d["caseId"], offset_s=offset)
            assert (st["delivered"], st["failed"], st["dead"]) == (1, 0, 0), st
            reqs = rx.received("/flaky")
            assert len(reqs) == 4, reqs
            assert [r.status for r in reqs] == [500, 500, 500, 200], reqs
            assert all(r.webhook_id == d["eventId"] for r in reqs), "webhook-id must stay the same"
            stamps = [int(r.timestamp) for r in reqs]
            assert stamps == sorted(stamps) and len(set(stamps)) == 4, \
                "webhook-timestamp must be fresh on every attempt: %r" % stamps
            assert all(r.verified_with == [0] for r in reqs), reqs
            assert all(r.body == d["body"].encode() for r in reqs), "the body must never change"
            row = delivery_row(d["eventId"])
            assert row["state"] == "delivered" and row["attempts"] == 4, row
            assert row["last_error"] is None and row["last_status_code"] == 200, row
            # Nothing after the acknowledgement, even days later.
            deliver(d["caseId"], offset_s=offset + 5 * 86400)
            ok = [r for r in rx.received() if r.webhook_id == d["eventId"] and 200 <= r.status < 300]
            assert len(ok) == 1 and len(rx.received()) == 4, rx.received()
        finally:
            retire([d["caseId"]])


def test_schedule_used_up_means_dead(ctx):
    client = _client(ctx)
    env = {"OFFLOAD_WEBHOOK_RETRY_SCHEDULE_S": "1,2"}
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        rx.behave("/down", status=503)
        d = make_delivery(client, rx.url("/down"))
        try:
            st = deliver(d["caseId"], env=env)
            assert st["failed"] == 1, st
            st = deliver(d["caseId"], env=env, offset_s=5)
            assert st["failed"] == 1, st
            st = deliver(d["caseId"], env=env, offset_s=15)
            assert (st["delivered"], st["failed"], st["dead"]) == (0, 0, 1), st
            row = delivery_row(d["eventId"])
            assert row["state"] == "dead" and row["attempts"] == 3, row
            assert row["last_status_code"] == 503, row
            assert "HTTP 503" in row["last_error"] and "gave up after 3 attempts" in row["last_error"], row
            st = deliver(d["caseId"], env=env, offset_s=86400)
            assert st["dead"] == 0 and len(rx.received()) == 3, (st, rx.received())
        finally:
            retire([d["caseId"]])


def test_timeout_is_a_failed_attempt(ctx):
    client = _client(ctx)
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        rx.behave("/slow", sleep=4.0)
        d = make_delivery(client, rx.url("/slow"))
        try:
            t0 = time.monotonic()
            st = deliver(d["caseId"], env={"OFFLOAD_WEBHOOK_TIMEOUT_S": "1"})
            took = time.monotonic() - t0
            assert (st["delivered"], st["failed"], st["dead"]) == (0, 1, 0), st
            assert took < 3.5, "the 1 s timeout was not applied (took %.1f s)" % took
            assert len(rx.received("/slow")) == 1
            row = delivery_row(d["eventId"])
            assert row["state"] == "pending" and row["attempts"] == 1, row
            assert row["last_status_code"] is None, row
            assert "timed out" in row["last_error"], row
            assert row["next_attempt_at"] > lib.now_ms(), row
        finally:
            retire([d["caseId"]])


def test_redirect_is_not_followed(ctx):
    client = _client(ctx)
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        for status in (301, 302, 307, 308):
            rx.behave("/moved%d" % status, status=status, location=rx.url("/target"))
        cases = []
        try:
            for status in (301, 302, 307, 308):
                d = make_delivery(client, rx.url("/moved%d" % status))
                cases.append(d["caseId"])
                st = deliver(d["caseId"])
                assert (st["delivered"], st["failed"], st["dead"]) == (0, 1, 0), (status, st)
                row = delivery_row(d["eventId"])
                assert row["state"] == "pending" and row["last_status_code"] == status, row
                assert "redirect" in row["last_error"], row
            assert rx.received("/target") == [], "a redirect was followed: %r" % rx.received("/target")
        finally:
            retire(cases)


def test_gone_410_stops_retries(ctx):
    client = _client(ctx)
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        rx.behave("/gone", status=410)
        d = make_delivery(client, rx.url("/gone"), event_type="case.failed")
        try:
            st = deliver(d["caseId"])
            assert (st["delivered"], st["failed"], st["dead"]) == (0, 0, 1), st
            row = delivery_row(d["eventId"])
            assert row["state"] == "dead" and row["last_status_code"] == 410, row
            assert "410" in row["last_error"], row
            assert rx.received("/gone")[0].json()["event_type"] == "case.failed"
        finally:
            retire([d["caseId"]])


def test_any_2xx_is_success_and_the_response_kept_is_capped(ctx):
    client = _client(ctx)
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        rx.behave("/202", status=202, body=b"x" * 5000)
        rx.behave("/204", status=204, body=b"")
        rx.behave("/bin", status=500, body=b"\xff\xfe bad utf-8 \x00 nul " + "é".encode() * 700)
        cases = []
        try:
            for path, want in (("/202", "delivered"), ("/204", "delivered"), ("/bin", "pending")):
                d = make_delivery(client, rx.url(path))
                cases.append(d["caseId"])
                deliver(d["caseId"])
                row = delivery_row(d["eventId"])
                assert row["state"] == want, (path, row)
                if path == "/202":
                    assert row["last_response_body"] == "x" * 1024, len(row["last_response_body"] or "")
                if path == "/bin":
                    body = row["last_response_body"]
                    assert body.startswith("?? bad utf-8 ? nul é"), body[:40]
                    assert len(body.encode("utf-8")) <= 1024, len(body.encode("utf-8"))
        finally:
            retire(cases)


def test_concurrent_senders_deliver_each_event_exactly_once(ctx):
    """Three offloadctl processes at once over ten due deliveries of one case: SKIP LOCKED and
    the leases give every event_id exactly one request."""
    client = _client(ctx)
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        rx.behave("/many", sleep=0.2)
        d = make_delivery(client, rx.url("/many"))
        try:
            now = lib.now_ms()
            ids = [d["eventId"]]
            for i in range(9):
                eid = "evt_%s_case_input_needed_%d" % (d["caseId"], now + i + 1)
                ids.append(eid)
                lib.sql("INSERT INTO webhook_deliveries (event_id, client_id, case_id, event_type,"
                        " url, body, state, attempts, next_attempt_at, created_at) SELECT %s,"
                        " client_id, case_id, 'case.input_needed', url, body, 'pending', 0, %d, %d"
                        " FROM webhook_deliveries WHERE event_id = %s" % (
                            lib.sql_str(eid), now, now, lib.sql_str(d["eventId"])))
            e = lib.env()
            penv = dict(os.environ, OFFLOAD_WEBHOOK_ALLOW_PRIVATE="true",
                        OFFLOAD_WEBHOOK_LOOPBACK_ONLY="true", OFFLOAD_WEBHOOK_BATCH="2")
            cmd = [os.path.join(e.bin, "offloadctl"), "-c", e.config, "--json", "webhook",
                   "deliver", "--once", "--case", d["caseId"]]
            procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=penv)
                     for _ in range(3)]
            total = 0
            for p in procs:
                out, err = p.communicate(timeout=120)
                assert p.returncode == 0, err
                total += json.loads(out)["delivered"]
            assert total == 10, total
            got = sorted(r.webhook_id for r in rx.received("/many"))
            assert got == sorted(ids), "each event exactly once: %r" % got
            states = lib.sql("SELECT state, COUNT(*) FROM webhook_deliveries WHERE case_id = '%s'"
                             " GROUP BY state" % d["caseId"])
            assert states == [["delivered", "10"]], states
        finally:
            retire([d["caseId"]])


def test_unknown_client_secret_problems_are_retried_not_sent_unsigned(ctx):
    """A malformed secret is the operator's to fix: the delivery fails (retried later) and
    nothing unsigned is sent."""
    c = lib.new_client_full("UNLIMITED")
    with Receiver(secrets=[c["webhookSecret"]]) as rx:
        d = make_delivery(c, rx.url("/nosecret"))
        try:
            lib.sql("UPDATE clients SET webhook_secret = 'whsec_!!!' WHERE id = '%s'" % c["clientId"])
            st = deliver(d["caseId"])
            assert st["failed"] == 1, st
            assert rx.received() == [], rx.received()
            row = delivery_row(d["eventId"])
            assert row["state"] == "pending" and "secret" in row["last_error"], row
        finally:
            retire([d["caseId"]])
