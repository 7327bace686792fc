"""Idempotency-Key on POST /cases (doc/api.md, "Idempotent creation")."""
import json
import threading
import uuid

from lib import expect_err, expect_ok, http, minimal_case_body, new_client_full, sql, sql_one, sql_str


def _count(client_id):
    return int(sql_one("SELECT COUNT(*) FROM cases WHERE client_id=%s" % sql_str(client_id)))


def _post(key, idem, body):
    return http("POST", "/cases", raw_body=json.dumps(body).encode(), content_type="application/json", key=key,
                headers={"Idempotency-Key": idem})


def test_idempotent_repeat_returns_same_response(ctx):
    c = new_client_full("UNLIMITED")
    idem = "order-%s" % uuid.uuid4()
    body = minimal_case_body()
    r1 = _post(c["key"], idem, body)
    d1 = expect_ok(r1, 201)
    for _ in range(3):
        r = _post(c["key"], idem, body)
        d = expect_ok(r, 201)
        assert d == d1, "repeat answered %r, first %r" % (d, d1)
    assert _count(c["clientId"]) == 1, "repeats created cases"
    ev = sql("SELECT type FROM events WHERE case_id=%s" % sql_str(d1["caseId"]))
    assert ev == [["CASE_CREATED"]], "events %r" % ev


def test_idempotency_key_reused_with_other_body(ctx):
    c = new_client_full("UNLIMITED")
    idem = "k-%s" % uuid.uuid4()
    expect_ok(_post(c["key"], idem, minimal_case_body()), 201)
    other = minimal_case_body()
    other["goal"]["objective"] = "something else"
    expect_err(_post(c["key"], idem, other), 422, "IDEMPOTENCY_KEY_REUSED")
    assert _count(c["clientId"]) == 1


def test_idempotency_keys_are_per_client(ctx):
    a = new_client_full("UNLIMITED")
    b = new_client_full("UNLIMITED")
    idem = "shared-%s" % uuid.uuid4()
    da = expect_ok(_post(a["key"], idem, minimal_case_body()), 201)
    db = expect_ok(_post(b["key"], idem, minimal_case_body()), 201)
    assert da["caseId"] != db["caseId"]
    assert _count(a["clientId"]) == 1 and _count(b["clientId"]) == 1


def test_without_key_repeats_create(ctx):
    c = new_client_full("UNLIMITED")
    for _ in range(2):
        expect_ok(http("POST", "/cases", body=minimal_case_body(), key=c["key"]), 201)
    assert _count(c["clientId"]) == 2


def test_idempotency_key_too_long(ctx):
    c = new_client_full("UNLIMITED")
    expect_err(_post(c["key"], "k" * 256, minimal_case_body()), 400, "INVALID_REQUEST")
    expect_ok(_post(c["key"], "k" * 255, minimal_case_body()), 201)


def test_idempotency_concurrent_repeats(ctx):
    c = new_client_full("UNLIMITED")
    idem = "race-%s" % uuid.uuid4()
    body = minimal_case_body()
    n = 8
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass
        try:
            results[i] = _post(c["key"], idem, body)
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ids = set()
    for r in results:
        assert hasattr(r, "status"), "request failed: %r" % r
        if r.status == 201:
            ids.add(expect_ok(r, 201)["caseId"])
        else:
            expect_err(r, 409, "IDEMPOTENCY_KEY_IN_USE")
    assert len(ids) == 1, "concurrent repeats created %d different cases" % len(ids)
    assert _count(c["clientId"]) == 1, "concurrent repeats created %d cases" % _count(c["clientId"])
