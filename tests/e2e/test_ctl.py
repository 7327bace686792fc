"""offloadctl as the tests use it: clients, keys, cases (DESIGN "offloadctl")."""
import os
import subprocess
import uuid

from lib import create_case, ctl_json, env, get_case, minimal_case_body, new_client_full, new_key, sql, sql_str


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
