"""offloadctl for webhooks: list, show, redeliver, deliver, client rotate-secret (two signatures
while a rotation is in progress), idempotency purge, and --help of each."""
import os
import subprocess

import lib
from webhook_receiver import Receiver, deliver, delivery_row, make_delivery, retire, sign


def _run(*args):
    e = lib.env()
    p = subprocess.run([os.path.join(e.bin, "offloadctl"), "-c", e.config] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


def test_help_of_each_command(ctx):
    for cmd in (["webhook", "list"], ["webhook", "show"], ["webhook", "redeliver"],
                ["webhook", "deliver"], ["client", "rotate-secret"], ["idempotency", "purge"]):
        rc, out, err = _run(*(cmd + ["--help"]))
        assert rc == 0, (cmd, rc, err)
        assert out.startswith("usage: offloadctl " + " ".join(cmd)), (cmd, out)
    rc, out, _ = _run("--help")
    for words in ("webhook list", "webhook redeliver", "webhook deliver", "rotate-secret"):
        assert words in out, (words, out)


def test_list_show_and_filters(ctx):
    client = ctx.once("webhook_ctl_client", lambda: lib.new_client_full("UNLIMITED"))
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        rx.behave("/bad", status=500)
        good = make_delivery(client, rx.url("/good"))
        bad = make_delivery(client, rx.url("/bad"))
        try:
            deliver(good["caseId"])
            deliver(bad["caseId"])
            lib.sql("UPDATE webhook_deliveries SET state = 'dead' WHERE event_id = %s"
                    % lib.sql_str(bad["eventId"]))
            rows = lib.ctl_json("--json", "webhook", "list", "--case", good["caseId"])
            assert [r["eventId"] for r in rows] == [good["eventId"]], rows
            r = rows[0]
            assert r["state"] == "delivered" and r["attempts"] == 1 and r["lastStatusCode"] == 200, r
            assert r["caseId"] == good["caseId"] and r["clientId"] == client["clientId"], r
            assert r["url"] == rx.url("/good") and r["eventType"] == "case.completed", r
            assert r["nextAttemptAt"] is None and isinstance(r["deliveredAt"], int), r
            assert "body" not in r, r
            dead = lib.ctl_json("--json", "webhook", "list", "--dead", "--limit", "10000")
            ids = [x["eventId"] for x in dead]
            assert bad["eventId"] in ids and good["eventId"] not in ids, ids
            assert all(x["state"] == "dead" for x in dead), dead
            row = [x for x in dead if x["eventId"] == bad["eventId"]][0]
            assert row["lastStatusCode"] == 500 and row["lastError"] == "HTTP 500", row
            out = lib.ctl("webhook", "list", "--case", bad["caseId"])
            assert out.splitlines()[0].split()[:2] == ["EVENT", "ID"], out
            assert bad["eventId"] in out and "dead" in out and "HTTP 500" in out, out
            shown = lib.ctl_json("--json", "webhook", "show", good["eventId"])
            assert shown["body"] == good["body"], shown
            rc, _, err = _run("webhook", "show", "evt_nope")
            assert rc == 3, (rc, err)
            rc, _, err = _run("webhook", "list", "--state", "bogus")
            assert rc == 2, (rc, err)
            rc, _, err = _run("webhook", "list", "--dead", "--state", "pending")
            assert rc == 2, (rc, err)
        finally:
            retire([good["caseId"], bad["caseId"]])


def test_redeliver_dead_and_delivered(ctx):
    client = ctx.once("webhook_ctl_client", lambda: lib.new_client_full("UNLIMITED"))
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        rx.behave("/later", status=410)
        d = make_delivery(client, rx.url("/later"))
        try:
            st = deliver(d["caseId"])
            assert st["dead"] == 1, st
            # The operator fixes the receiver, then redelivers.
            rx.behave("/later", status=200)
            out = lib.ctl_json("--json", "webhook", "redeliver", d["eventId"])
            assert out == {"eventId": d["eventId"], "state": "pending",
                           "nextAttemptAt": out["nextAttemptAt"], "attemptsReset": True}, out
            row = delivery_row(d["eventId"])
            assert row["state"] == "pending" and row["attempts"] == 0, row
            assert row["next_attempt_at"] <= lib.now_ms(), row
            st = deliver(d["caseId"])
            assert st["delivered"] == 1, st
            row = delivery_row(d["eventId"])
            assert row["state"] == "delivered" and row["attempts"] == 1, row
            reqs = rx.received("/later")
            assert len(reqs) == 2 and reqs[0].webhook_id == reqs[1].webhook_id == d["eventId"], reqs
            # Redelivering a delivered event sends it again (same webhook-id); attempts kept.
            lib.ctl("webhook", "redeliver", d["eventId"], "--keep-attempts")
            row = delivery_row(d["eventId"])
            assert row["state"] == "pending" and row["attempts"] == 1, row
            assert row["delivered_at"] is None, row
            assert deliver(d["caseId"])["delivered"] == 1
            assert delivery_row(d["eventId"])["attempts"] == 2
            rc, _, err = _run("webhook", "redeliver", "evt_does_not_exist")
            assert rc == 3, (rc, err)
            rc, _, err = _run("webhook", "redeliver")
            assert rc == 2, (rc, err)
        finally:
            retire([d["caseId"]])


def test_rotate_secret_signs_with_both_until_finished(ctx):
    client = lib.new_client_full("UNLIMITED")
    old = client["webhookSecret"]
    out = lib.ctl_json("--json", "client", "rotate-secret", client["clientId"])
    new = out["webhookSecret"]
    assert out["clientId"] == client["clientId"] and new.startswith("whsec_") and new != old, out
    assert lib.sql_one("SELECT webhook_secret_previous FROM clients WHERE id = '%s'"
                       % client["clientId"]) == old
    # A second rotation would lose the old secret: refused unless --force.
    rc, _, err = _run("client", "rotate-secret", client["clientId"])
    assert rc == 1 and "in progress" in err, (rc, err)
    with Receiver(secrets=[old, new]) as rx:
        d1 = make_delivery(client, rx.url("/rot"))
        d2 = None
        try:
            assert deliver(d1["caseId"])["delivered"] == 1
            r = rx.received("/rot")[0]
            assert r.n_signatures == 2, r.signature
            assert r.verified_with == [0, 1], "both secrets must verify: %r" % r.signature
            # The current (new) secret's signature comes first.
            first = r.signature.split(" ")[0]
            assert first == "v1," + sign(new, r.webhook_id, r.timestamp, r.body), r.signature
            rc, out_text, err = _run("client", "rotate-secret", client["clientId"], "--finish")
            assert rc == 0 and "forgotten" in out_text, (rc, out_text, err)
            assert lib.sql_one("SELECT webhook_secret_previous IS NULL FROM clients WHERE id = '%s'"
                               % client["clientId"]) == "1"
            d2 = make_delivery(client, rx.url("/rot2"))
            assert deliver(d2["caseId"])["delivered"] == 1
            r2 = rx.received("/rot2")[0]
            assert r2.n_signatures == 1 and r2.verified_with == [1], r2.signature
        finally:
            retire([d1["caseId"], d2["caseId"] if d2 else None])
    rc, _, _ = _run("client", "rotate-secret", "00000000-0000-4000-8000-000000000000")
    assert rc == 3
    rc, _, _ = _run("client", "rotate-secret", "not-a-uuid")
    assert rc == 2


def test_idempotency_purge(ctx):
    cid = lib.env().client_id
    now = lib.now_ms()
    day = 24 * 3600 * 1000
    keys = {"purge-old-%d" % now: now - day - 60000, "purge-edge-%d" % now: now - day - 1,
            "purge-fresh-%d" % now: now - day + 60000}
    for k, created in keys.items():
        lib.sql("INSERT INTO idempotency_keys (client_id, idem_key, request_hash, state,"
                " response_status, response_body, created_at) VALUES (%s, %s, UNHEX(SHA2('x', 256)),"
                " 'done', 201, '{}', %d)" % (lib.sql_str(cid), lib.sql_str(k), created))
    out = lib.ctl_json("--json", "idempotency", "purge")
    assert out["purged"] >= 2, out
    left = [r[0] for r in lib.sql("SELECT idem_key FROM idempotency_keys WHERE idem_key LIKE 'purge-%%-%d'"
                                  % now)]
    assert left == ["purge-fresh-%d" % now], left
    lib.sql("DELETE FROM idempotency_keys WHERE idem_key = 'purge-fresh-%d'" % now)
