"""offloadctl as the tests use it: clients, keys, cases (offloadctl(1))."""
import os
import subprocess
import uuid

from lib import (create_case, ctl_json, env, get_case, minimal_case_body, new_client_full, new_key,
                 now_ms, sql, sql_one, sql_str)


def _run(*args):
    e = env()
    return subprocess.run([os.path.join(e.bin, "offloadctl"), "-c", e.config] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def test_client_create_and_list(ctx):
    c = new_client_full("BASE_PRO")
    assert c["webhookSecret"], "client create shows no webhook secret"
    rows = ctl_json("client", "list", "--json")
    mine = [r for r in rows if r.get("clientId") == c["clientId"]]
    assert len(mine) == 1, "new client not listed once"
    assert mine[0]["plan"] == "BASE_PRO" and mine[0]["name"].startswith("e2e-base_pro-")
    assert c["webhookSecret"] not in repr(rows), "client list shows the webhook secret"


def test_client_create_rejects_bad_plan(ctx):
    p = _run("client", "create", "--name", "x", "--plan", "GOLD", "--json")
    assert p.returncode != 0, "plan GOLD accepted: %r" % p.stdout


def test_key_list_by_client(ctx):
    c = new_client_full("UNLIMITED")
    k2_id, k2 = new_key(c["clientId"])
    rows = ctl_json("key", "list", "--client", c["clientId"], "--json")
    assert sorted(r["keyId"] for r in rows) == sorted([c["keyId"], k2_id]), "key list --client: %r" % rows
    for r in rows:
        assert r["clientId"] == c["clientId"] and r["active"] in (True, 1)
        assert c["key"] not in repr(r) and k2 not in repr(r), "key list shows a key"
        assert len(r["prefix"]) < len(c["key"])
    # the stored key is a hash, never the key
    stored = sql("SELECT HEX(key_hash) FROM api_keys WHERE id=%s" % sql_str(k2_id))
    assert stored and k2.encode().hex().upper() not in stored[0][0]


def test_case_show_and_list(ctx):
    c = new_client_full("UNLIMITED")
    cid = create_case(minimal_case_body(), key=c["key"])
    shown = ctl_json("case", "show", cid, "--json")
    api = get_case(cid, key=c["key"])
    assert shown.get("clientId") == c["clientId"]
    for k, v in api.items():
        assert shown.get(k) == v, "case show %s = %r, API says %r" % (k, shown.get(k), v)
    rows = ctl_json("case", "list", "--client", c["clientId"], "--json")
    assert [r["caseId"] for r in rows] == [cid]
    assert ctl_json("case", "list", "--client", c["clientId"], "--status", "RUNNING", "--json") == []
    p = _run("case", "show", str(uuid.uuid4()), "--json")
    assert p.returncode == 3, "case show of an unknown id: exit %d" % p.returncode


def test_key_create_deactivate_and_unknowns(ctx):
    p = _run("key", "create", "--client", str(uuid.uuid4()), "--json")
    assert p.returncode == 3, "key create for no client: exit %d" % p.returncode
    c = new_client_full("UNLIMITED")
    k2_id, _ = new_key(c["clientId"])
    out = ctl_json("key", "deactivate", k2_id, "--json")
    assert out == {"keyId": k2_id, "active": False}, out
    keys = {r["keyId"]: r for r in ctl_json("key", "list", "--client", c["clientId"], "--json")}
    assert keys[k2_id]["active"] in (False, 0) and keys[c["keyId"]]["active"] in (True, 1), keys
    first = keys[k2_id]["deactivatedAt"]
    assert isinstance(first, int) and first > 0, keys[k2_id]
    assert keys[c["keyId"]]["deactivatedAt"] is None, keys[c["keyId"]]
    # Again: still done, and the first deactivation time stays.
    assert _run("key", "deactivate", k2_id).returncode == 0
    keys = {r["keyId"]: r for r in ctl_json("key", "list", "--client", c["clientId"], "--json")}
    assert keys[k2_id]["deactivatedAt"] == first, keys[k2_id]
    assert _run("key", "deactivate", str(uuid.uuid4())).returncode == 3
    assert _run("key", "deactivate", "not-a-uuid").returncode == 2


def test_case_list_rejects_unknown_status(ctx):
    p = _run("case", "list", "--status", "SLEEPING", "--json")
    assert p.returncode == 2 and b"--status" in p.stderr, (p.returncode, p.stderr)


def test_case_nudge(ctx):
    c = new_client_full("UNLIMITED")
    cid = create_case(minimal_case_body(), key=c["key"])
    q = sql_str(cid)
    later = now_ms() + 86400 * 1000
    try:
        # A RUNNING case whose follow-up is a day away, and an event waiting for a retry.
        sql("UPDATE cases SET status = 'RUNNING', next_action_at = %d WHERE id = %s" % (later, q))
        sql("UPDATE events SET available_at = %d WHERE case_id = %s" % (later, q))
        before = now_ms()
        out = ctl_json("case", "nudge", cid, "--json")
        after = now_ms()
        assert out == {"caseId": cid, "status": "RUNNING", "followUpDueNow": True,
                       "eventsDueNow": 1}, out
        at = int(sql_one("SELECT next_action_at FROM cases WHERE id = %s" % q))
        assert before <= at <= after, (before, at, after)
        ev = int(sql_one("SELECT MAX(available_at) FROM events WHERE case_id = %s" % q))
        assert before <= ev <= after, (before, ev, after)
        # Nothing is waiting any more: a second nudge moves nothing.
        text = _run("case", "nudge", cid)
        assert text.returncode == 0 and b"(RUNNING): no follow-up scheduled to move; 0 waiting" \
            in text.stdout, text.stdout
    finally:
        # Leave nothing for a later worker pass to act on.
        sql("UPDATE events SET state = 'done' WHERE case_id = %s" % q)
        sql("UPDATE cases SET status = 'FAILED', next_action_at = 253402300799999 WHERE id = %s" % q)
    assert _run("case", "nudge", str(uuid.uuid4())).returncode == 3
    assert _run("case", "nudge", "not-a-uuid").returncode == 3


def test_rotate_secret_force(ctx):
    c = new_client_full("SANDBOX")
    first = ctl_json("client", "rotate-secret", c["clientId"], "--json")["webhookSecret"]
    second = ctl_json("client", "rotate-secret", c["clientId"], "--force", "--json")["webhookSecret"]
    assert second != first
    row = sql("SELECT webhook_secret, webhook_secret_previous FROM clients WHERE id = %s"
              % sql_str(c["clientId"]))
    assert row == [[second, first]], "after --force the previous secret is the first rotation's"
    assert _run("client", "rotate-secret", c["clientId"], "--finish", "--force").returncode == 2
    out = ctl_json("client", "rotate-secret", c["clientId"], "--finish", "--json")
    assert out == {"clientId": c["clientId"], "rotationFinished": True}, out
    assert sql_one("SELECT webhook_secret_previous IS NULL FROM clients WHERE id = %s"
                   % sql_str(c["clientId"])) == "1"


# --------------------------------------------------- the migration lock (named_leases)

def _migrate_procs(n):
    e = env()
    return [subprocess.Popen([os.path.join(e.bin, "offloadctl"), "-c", e.config, "migrate"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(n)]


def test_migrate_three_at_once(ctx):
    """offloadctl migrate's lock is a row of named_leases (GET_LOCK is not replicated by
    Galera): three runs at once all succeed, each migration is recorded once, and the lease
    is given back."""
    before = sql("SELECT version FROM schema_migrations ORDER BY version")
    procs = _migrate_procs(3)
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, "migrate exited %d: %s" % (p.returncode, e.decode(errors="replace"))
    assert sql("SELECT version FROM schema_migrations ORDER BY version") == before
    assert sql_one("SELECT COUNT(*) FROM schema_migrations") == sql_one(
        "SELECT COUNT(DISTINCT version) FROM schema_migrations")
    assert ["009_attachment_bytes.sql"] in before, before
    assert sql("SELECT owner FROM named_leases WHERE name = 'offload_migrate'") == []


def test_migrate_waits_for_an_expiring_lease(ctx):
    """A lease left by a run that died (owner gone, expiry 3 s ahead): migrate waits for the
    expiry, then takes it, succeeds and gives it back."""
    expires = now_ms() + 3000
    sql("INSERT INTO named_leases (name, owner, expires_at, taken_at) VALUES ('offload_migrate',"
        " 'deadhost:1:dead', %d, %d)" % (expires, now_ms()))
    try:
        r = _run("migrate")
        done = now_ms()
    finally:
        sql("DELETE FROM named_leases WHERE name = 'offload_migrate' AND owner = 'deadhost:1:dead'")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert done >= expires, "migrate ran while another owner's lease was still valid"
    assert sql("SELECT owner FROM named_leases WHERE name = 'offload_migrate'") == []


def test_migrate_held_lease_fails_clearly(ctx):
    """A lease another run holds for longer than migrate waits (60 s): exit 1 with a message
    naming the holder and how to clear it; nothing applied, the other's lease untouched."""
    until = now_ms() + 600000
    sql("INSERT INTO named_leases (name, owner, expires_at, taken_at) VALUES ('offload_migrate',"
        " 'otherhost:42:busy', %d, %d)" % (until, now_ms()))
    try:
        e = env()
        r = subprocess.run([os.path.join(e.bin, "offloadctl"), "-c", e.config, "migrate"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
        row = sql("SELECT owner, expires_at FROM named_leases WHERE name = 'offload_migrate'")
    finally:
        sql("DELETE FROM named_leases WHERE name = 'offload_migrate' AND owner = 'otherhost:42:busy'")
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, "migrate succeeded under another run's lease"
    assert "otherhost:42:busy" in err and "named_leases" in err, err
    assert row == [["otherhost:42:busy", str(until)]], row
