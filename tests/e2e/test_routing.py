"""Route matching, methods, /healthz and authentication (doc/api.md, "Routes" and
"Authentication")."""
import threading
import time
import uuid

from lib import expect_err, expect_ok, get, http, post, create_case, ctl_json, ctl, new_client_full, now_ms, sql, \
    minimal_case_body, valid_case_body, get_case, new_key, sql_one, sql_str


def _allow(r):
    v = r.header("allow")
    assert v is not None, "405 without an Allow header (HTTP %s, %r)" % (r.status, r.raw[:200])
    return {m.strip().upper() for m in v.split(",") if m.strip()}


def test_healthz_without_key(ctx):
    r = get("/healthz", key=None)
    data = expect_ok(r, 200)
    assert data == {"database": "ok"}, "healthz data: %r" % data
    # a key does not hurt
    assert expect_ok(get("/healthz"), 200) == {"database": "ok"}


def test_unknown_path_404_without_key(ctx):
    u = str(uuid.uuid4())
    for method, path in [("GET", "/"), ("GET", "/nope"), ("GET", "/casesx"), ("POST", "/foo"),
                         ("GET", "/cases/%s/bogus" % u), ("GET", "/cases/%s/attachments" % u),
                         ("POST", "/cases/%s/input/x" % u), ("DELETE", "/v1/cases"),
                         ("GET", "/healthz/x")]:
        r = http(method, path, key=None)
        expect_err(r, 404, "NOT_FOUND")


def test_unknown_path_404_with_key(ctx):
    for method, path in [("GET", "/nope"), ("POST", "/cases/a/b/c/d"), ("GET", "/cases/x/input/y")]:
        expect_err(http(method, path), 404, "NOT_FOUND")
        expect_err(http(method, path, key="wrong-key"), 404, "NOT_FOUND")


def test_wrong_method_405_with_allow(ctx):
    u = str(uuid.uuid4())
    cases = [
        ("PUT", "/cases", {"GET", "POST"}),
        ("DELETE", "/cases", {"GET", "POST"}),
        ("PATCH", "/cases", {"GET", "POST"}),
        ("DELETE", "/cases/%s" % u, {"GET"}),
        ("POST", "/cases/%s" % u, {"GET"}),
        ("PUT", "/cases/%s" % u, {"GET"}),
        ("GET", "/cases/%s/input" % u, {"POST"}),
        ("DELETE", "/cases/%s/input" % u, {"POST"}),
        ("POST", "/cases/%s/attachments/%s" % (u, uuid.uuid4()), {"GET"}),
        ("POST", "/healthz", {"GET"}),
    ]
    for key in (None, "not-a-key", ctx.env.api_key):
        for method, path, allow in cases:
            r = http(method, path, key=key)
            expect_err(r, 405, "METHOD_NOT_ALLOWED")
            got = _allow(r) - {"HEAD", "OPTIONS"}
            assert got == allow, "%s %s: Allow %r, want %r" % (method, path, r.header("allow"), allow)


def test_query_string_does_not_change_route(ctx):
    cid = create_case(minimal_case_body())
    data = expect_ok(get("/cases/%s?foo=bar&x=" % cid), 200)
    assert data["caseId"] == cid


def _routes(case_id):
    a = str(uuid.uuid4())
    return [
        ("POST", "/cases", valid_case_body()),
        ("GET", "/cases/%s" % case_id, None),
        ("GET", "/cases/%s?includeTranscript=true" % case_id, None),
        ("GET", "/cases/%s/attachments/%s" % (case_id, a), None),
        ("POST", "/cases/%s/input" % case_id, {"inputRequestId": a, "providedContext": "x"}),
    ]


def test_missing_key_401(ctx):
    cid = create_case(minimal_case_body())
    for method, path, body in _routes(cid):
        expect_err(http(method, path, body=body, key=None), 401, "UNAUTHORIZED")


def test_unknown_key_401(ctx):
    cid = create_case(minimal_case_body())
    k = ctx.env.api_key
    altered = k[:-1] + ("A" if k[-1] != "A" else "B")
    for bad in ["", "nope", altered, k + "x", k[:8], "' OR '1'='1", "x" * 300]:
        for method, path, body in _routes(cid):
            r = http(method, path, body=body, key=bad)
            expect_err(r, 401, "UNAUTHORIZED")


def test_unknown_key_401_no_case_created(ctx):
    q = "SELECT COUNT(*) FROM cases WHERE client_id=%s" % sql_str(ctx.env.client_id)
    before = int(sql_one(q))
    expect_err(post("/cases", valid_case_body(), key="nope"), 401, "UNAUTHORIZED")
    expect_err(post("/cases", valid_case_body(), key=None), 401, "UNAUTHORIZED")
    after = int(sql_one(q))
    assert after == before, "a rejected request created a case (%d -> %d)" % (before, after)


def test_auth_checked_before_body(ctx):
    for key in (None, "nope"):
        code = "UNAUTHORIZED"
        expect_err(http("POST", "/cases", raw_body=b"not json", key=key), 401, code)
        expect_err(http("POST", "/cases", raw_body=b"{}", key=key, content_type="text/plain"), 401, code)
        expect_err(http("POST", "/cases", raw_body=b"", key=key), 401, code)
        expect_err(http("POST", "/cases/%s/input" % uuid.uuid4(), raw_body=b"[", key=key), 401, code)


# doc/api.md, "Authentication": a deactivated key is refused within 1 s (offload-api may
# remember a key's state for at most that long). Deadlines are taken after offloadctl
# returned, so after the commit.
KEY_STALE_S = 1.0


def _refused_by(method, path, body, key, deadline):
    """Polls until the request is refused with 403; fails when a request sent after deadline
    (time.monotonic()) is still served. Before the deadline it may be served as usual."""
    while True:
        sent = time.monotonic()
        r = http(method, path, body=body, key=key)
        if r.status == 403:
            expect_err(r, 403, "FORBIDDEN")
            return sent
        assert sent < deadline, "%s %s: HTTP %s %.0f ms after the deactivation deadline" % (
            method, path, r.status, (sent - deadline) * 1000)
        assert r.status != 401 and r.status < 500, "%s %s: HTTP %s %r" % (method, path, r.status, r.raw[:200])
        time.sleep(0.02)  # poll interval, not an assertion


def test_deactivated_key_403_other_key_works(ctx):
    c = new_client_full("UNLIMITED")
    k1_id, k1 = c["keyId"], c["key"]
    k2_id, k2 = new_key(c["clientId"])
    assert k2 != k1 and k2_id != k1_id
    cid = create_case(valid_case_body(), key=k1)
    # both keys see the case: it belongs to the client
    assert get_case(cid, key=k2)["caseId"] == cid
    ctl("key", "deactivate", k1_id)
    deadline = time.monotonic() + KEY_STALE_S
    keys = {k["keyId"]: k for k in ctl_json("key", "list", "--json")}
    assert k1_id in keys and k2_id in keys, "key list lacks the new keys"
    assert keys[k1_id]["active"] in (False, 0), "deactivated key listed as %r" % keys[k1_id]
    assert keys[k2_id]["active"] in (True, 1), "other key listed as %r" % keys[k2_id]
    assert keys[k1_id]["clientId"] == c["clientId"]
    assert "key" not in keys[k1_id], "key list shows the secret key"
    assert k1.startswith(keys[k1_id]["prefix"]), "prefix %r is not a prefix of the key" % keys[k1_id]["prefix"]
    # Refused within 1 s (a process may remember the key that long), then on every route.
    for method, path, body in _routes(cid):
        _refused_by(method, path, body, k1, deadline)
    for method, path, body in _routes(cid):
        expect_err(http(method, path, body=body, key=k1), 403, "FORBIDDEN")
    # the other key of the same client still works and sees the same case
    data = get_case(cid, key=k2)
    assert data["caseId"] == cid and data["status"] == "CREATED"
    cid2 = create_case(minimal_case_body(), key=k2)
    assert get_case(cid2, key=k2)["caseId"] == cid2
    # a case created with k2 is visible to a new key of the same client too
    _, k3 = new_key(c["clientId"])
    assert get_case(cid2, key=k3)["caseId"] == cid2
    assert get_case(cid, key=k3)["caseId"] == cid


def test_other_client_forbidden(ctx):
    c = new_client_full("UNLIMITED")
    cid = create_case(minimal_case_body())  # the stack's client
    expect_err(get("/cases/%s" % cid, key=c["key"]), 403, "FORBIDDEN")
    expect_err(get("/cases/%s?includeTranscript=true" % cid, key=c["key"]), 403, "FORBIDDEN")
    mine = create_case(minimal_case_body(), key=c["key"])
    expect_err(get("/cases/%s" % mine), 403, "FORBIDDEN")


def test_internal_locations_not_reachable(ctx):
    # nginx's internal file location is reachable only through X-Accel-Redirect.
    cid = create_case(minimal_case_body())
    for path in ("/_offload_files/%s/%s" % (cid, uuid.uuid4()), "/_offload_files/", "/_offload_error/404",
                 "/_offload_error/413"):
        r = http("GET", path, key=None)
        assert r.status == 404, "GET %s: HTTP %s %r" % (path, r.status, r.raw[:200])
        expect_err(r, 404, "NOT_FOUND")


def test_key_deactivated_while_hot_refused_within_1s(ctx):
    """A key in use by several connections at once (so remembered by offload-api) is refused
    by every request sent more than 1 s after offloadctl deactivated it, and never served
    again after its first refusal."""
    c = new_client_full("UNLIMITED")
    key_id, key = c["keyId"], c["key"]
    cid = create_case(minimal_case_body(), key=key)
    stop = threading.Event()
    late = []          # (ms after the deadline, status) of requests served too late
    refused_then_served = []

    def hammer(deadline_box):
        refused = False
        while not stop.is_set():
            sent = time.monotonic()
            r = get("/cases/%s" % cid, key=key)
            if r.status == 403:
                refused = True
            elif r.status == 200:
                if refused:
                    refused_then_served.append(r.status)
                if deadline_box and sent > deadline_box[0]:
                    late.append(((sent - deadline_box[0]) * 1000, r.status))
            else:
                late.append((0, r.status))

    deadline_box = []
    threads = [threading.Thread(target=hammer, args=(deadline_box,)) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        # Served while active, by several threads of offload-api.
        expect_ok(get("/cases/%s" % cid, key=key), 200)
        ctl("key", "deactivate", key_id)
        deadline_box.append(time.monotonic() + KEY_STALE_S)
        _refused_by("GET", "/cases/%s" % cid, None, key, deadline_box[0])
        # Keep hammering a little past the deadline: every request must now be refused.
        end = deadline_box[0] + 0.3
        while time.monotonic() < end:
            expect_err(get("/cases/%s" % cid, key=key), 403, "FORBIDDEN")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not late, "served after the 1 s deadline (ms late, status): %r" % late[:5]
    assert not refused_then_served, "a connection was served again after a 403"


def _com_select():
    return int(sql_one("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
                       " WHERE VARIABLE_NAME = 'COM_SELECT'"))


def test_key_lookups_are_remembered(ctx):
    """GET /cases/{id} with a key already seen makes one SELECT (the case), not two: the key's
    state comes from offload-api's cache (at most 1 s old)."""
    cid = create_case(minimal_case_body())
    expect_ok(get("/cases/%s" % cid), 200)
    n = 60
    before = _com_select()
    for _ in range(n):
        expect_ok(get("/cases/%s" % cid), 200)
    after = _com_select()
    # One SELECT per GET, the reading of the counter itself, and a key lookup each time an
    # entry expires (once a second) or a thread connects for the first time.
    extra = after - before - n
    assert extra < n // 3, "%d SELECTs for %d GETs: the key is looked up every time" % (after - before, n)


def test_key_forgotten_when_the_database_connection_is_new(ctx):
    """doc/operator-guide.md, "API hosts and workers": a key's state is never remembered
    across a restart of the database. A restart drops every connection; here the key is
    deactivated and offload-api's connections are killed in one go (as a restart would), and
    the very next request is refused, without waiting for the 1 s expiry of the remembered
    state."""
    c = new_client_full("UNLIMITED")
    key_id, key = c["keyId"], c["key"]
    cid = create_case(minimal_case_body(), key=key)
    for _ in range(5):  # remembered by offload-api now
        expect_ok(get("/cases/%s" % cid, key=key), 200)
    t0 = time.monotonic()
    sql("UPDATE api_keys SET active = 0, deactivated_at = %d WHERE id = %s" % (now_ms(), sql_str(key_id)))
    for (conn,) in sql("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'offload'"):
        try:
            sql("KILL CONNECTION %d" % int(conn))
        except AssertionError:
            pass  # gone already
    r = get("/cases/%s" % cid, key=key)
    elapsed = time.monotonic() - t0
    if elapsed < KEY_STALE_S:
        expect_err(r, 403, "FORBIDDEN")
    # The API recovered its connections and the key stays refused.
    expect_err(get("/cases/%s" % cid, key=key), 403, "FORBIDDEN")
    expect_ok(get("/healthz", key=None), 200)
