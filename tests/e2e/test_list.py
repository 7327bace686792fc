"""GET /cases: listing a client's cases with filters and cursor paging (doc/api.md,
"Listing and polling")."""
import urllib.parse

from lib import (create_case, expect_err, expect_ok, get, get_case, minimal_case_body, new_client_full, now_ms,
                 sql, sql_str)


def _fixture(ctx):
    def make():
        c = new_client_full("UNLIMITED")
        base = now_ms() - 600000
        ids = []
        for i in range(5):
            b = minimal_case_body()
            b["clientReferenceId"] = "list-ref-%d" % i
            cid = create_case(b, key=c["key"])
            ids.append(cid)
            # distinct, known updatedAt values: case i is i seconds newer than base
            sql("UPDATE cases SET updated_at=%d WHERE id=%s" % (base + i * 1000, sql_str(cid)))
        sql("UPDATE cases SET status='RUNNING' WHERE id=%s" % sql_str(ids[1]))
        sql("UPDATE cases SET status='COMPLETED', result_status='goal_achieved', result='{}' WHERE id=%s"
            % sql_str(ids[3]))
        # another client's case must never show up
        create_case(minimal_case_body())
        return {"client": c, "ids": ids, "base": base}
    return ctx.once("list", make)


def _list(key, query=""):
    data = expect_ok(get("/cases" + query, key=key), 200)
    assert set(data) == {"cases", "nextCursor"}, "list data keys %r" % sorted(data)
    assert isinstance(data["cases"], list)
    assert data["nextCursor"] is None or isinstance(data["nextCursor"], str)
    return data


def test_list_own_cases_newest_first(ctx):
    f = _fixture(ctx)
    key = f["client"]["key"]
    data = _list(key)
    got = [c["caseId"] for c in data["cases"]]
    assert got == list(reversed(f["ids"])), "order %r, want newest updatedAt first" % got
    assert data["nextCursor"] is None
    for c in data["cases"]:
        assert "conversationThread" not in c and "clientWebhookUrl" not in c
        assert c == get_case(c["caseId"], key=key), "list item differs from GET /cases/{id}"


def test_list_paging_with_cursor(ctx):
    f = _fixture(ctx)
    key = f["client"]["key"]
    seen = []
    cursor = None
    for _ in range(10):
        q = "?limit=2" + ("&cursor=" + urllib.parse.quote(cursor, safe="") if cursor else "")
        data = _list(key, q)
        assert len(data["cases"]) <= 2
        seen += [c["caseId"] for c in data["cases"]]
        # a case created meanwhile is newer than every page already read: it must not
        # disturb the pages still to come
        if len(seen) == 2:
            create_case(minimal_case_body(), key=key)
        cursor = data["nextCursor"]
        if cursor is None:
            break
    else:
        raise AssertionError("cursor paging did not end after 10 pages")
    assert seen == list(reversed(f["ids"])), "paged ids %r" % seen
    assert len(set(seen)) == len(seen), "duplicates across pages"


def test_list_filters(ctx):
    f = _fixture(ctx)
    key = f["client"]["key"]
    ids = f["ids"]

    def listed(q):
        return [c["caseId"] for c in _list(key, q)["cases"] if c["caseId"] in ids]

    assert listed("?status=RUNNING") == [ids[1]]
    assert listed("?status=COMPLETED") == [ids[3]]
    assert listed("?status=RUNNING,COMPLETED") == [ids[3], ids[1]]
    assert listed("?status=RUNNING&status=COMPLETED") == [ids[3], ids[1]]
    assert listed("?clientReferenceId=list-ref-2") == [ids[2]]
    assert listed("?clientReferenceId=nope") == []
    since = f["base"] + 2500  # between case 2 and case 3
    assert listed("?updatedSince=%d" % since) == [ids[4], ids[3]]
    assert listed("?status=COMPLETED&updatedSince=%d" % since) == [ids[3]]


def test_list_bad_queries(ctx):
    f = _fixture(ctx)
    key = f["client"]["key"]
    for q in ("?limit=0", "?limit=201", "?limit=abc", "?limit=-1", "?cursor=not-a-cursor",
              "?updatedSince=yesterday"):
        expect_err(get("/cases" + q, key=key), 400, "INVALID_REQUEST")
    expect_ok(get("/cases?limit=200", key=key), 200)
    expect_ok(get("/cases?limit=1", key=key), 200)


def test_list_needs_key(ctx):
    expect_err(get("/cases", key=None), 401, "UNAUTHORIZED")
    expect_err(get("/cases", key="nope"), 401, "UNAUTHORIZED")


def test_list_paging_250_cases_while_inserting(ctx):
    """Issue 7: page through 250 cases (limit 50) while new cases are created between pages:
    every one of the 250 is seen exactly once, in order, and nothing of another client."""
    c = new_client_full("UNLIMITED")
    key = c["key"]
    base = now_ms() - 3600000
    ids = [create_case(minimal_case_body(), key=key) for _ in range(250)]
    # distinct updatedAt values, some equal pairs to exercise the id tie-break
    for i, cid in enumerate(ids):
        sql("UPDATE cases SET updated_at=%d WHERE id=%s" % (base + (i // 2) * 1000, sql_str(cid)))
    create_case(minimal_case_body())  # another client's
    seen, cursor, new = [], None, []
    for _ in range(20):
        q = "?limit=50" + ("&cursor=" + urllib.parse.quote(cursor, safe="") if cursor else "")
        data = _list(key, q)
        seen += [x["caseId"] for x in data["cases"]]
        new.append(create_case(minimal_case_body(), key=key))
        cursor = data["nextCursor"]
        if cursor is None:
            break
    else:
        raise AssertionError("paging did not end after 20 pages")
    old = [x for x in seen if x not in new]
    assert len(old) == 250 and set(old) == set(ids), "saw %d of the 250" % len(set(old) & set(ids))
    assert len(seen) == len(set(seen)), "a case appeared on two pages"
    want = sorted(ids, key=lambda x: (ids.index(x) // 2, x), reverse=True)
    assert old == want, "order differs from (updatedAt, caseId) descending"
