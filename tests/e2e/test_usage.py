"""Monthly plan caps on POST /cases (doc/api.md, "Plans and usage limits")."""
import threading
import uuid

from lib import (config_value, create_case, expect_err, expect_ok, get, minimal_case_body, month_start_ms,
                 new_client_full, now_ms, post, sql, sql_one, sql_str)

DEFAULT_CAPS = {"SANDBOX": 100, "PAYG": 100, "BASE_PRO": 500}


def cap(plan):
    v = config_value("plans", plan.lower())
    return int(v) if v else DEFAULT_CAPS[plan]


def insert_cases(client_id, n, created_at, status="CREATED", finished_at=None, result_status=None):
    """Inserts n cases for client_id directly (as if created earlier); returns their ids."""
    ids = [str(uuid.uuid4()) for _ in range(n)]
    rows = []
    goal = sql_str('{"objective":"seeded"}')
    cp = sql_str('{"address":"a@b.example","name":"A"}')
    sp = sql_str('{"name":"S"}')
    for cid in ids:
        rows.append("(%s, %s, NULL, %s, 'EMAIL', %d, %d, 253402300799999, 0, 0, 3, 72, 'a@b.example', %s, %s, %s, "
                    "%s, %s)" % (sql_str(cid), sql_str(client_id), sql_str(status), created_at,
                                 max(created_at, finished_at or 0), goal, cp, sp,
                                 "NULL" if result_status is None else sql_str(result_status),
                                 "NULL" if finished_at is None else "%d" % finished_at))
    for i in range(0, len(rows), 200):
        sql("INSERT INTO cases (id, client_id, client_reference_id, status, channel, created_at, updated_at, "
            "next_action_at, attempt_count, follow_ups_sent, max_attempts, follow_up_delay_hours, "
            "counterparty_address, goal, counterparty, sender_persona, result_status, finished_at) VALUES "
            + ",".join(rows[i:i + 200]))
    return ids


def _this_month_ms():
    """A time inside the current UTC month, before now."""
    return max(month_start_ms(), now_ms() - 60000)


def _count(client_id):
    return int(sql_one("SELECT COUNT(*) FROM cases WHERE client_id=%s" % sql_str(client_id)))


def test_sandbox_cap_reached(ctx):
    n = cap("SANDBOX")
    c = new_client_full("SANDBOX")
    insert_cases(c["clientId"], n - 1, _this_month_ms())
    create_case(minimal_case_body(), key=c["key"])  # now n
    r = post("/cases", minimal_case_body(), key=c["key"])
    expect_err(r, 429, "USAGE_LIMIT_REACHED")
    assert _count(c["clientId"]) == n, "a refused POST created a case"
    ev = int(sql_one("SELECT COUNT(*) FROM events e JOIN cases c ON c.id = e.case_id WHERE c.client_id=%s"
                     % sql_str(c["clientId"])))
    assert ev == 1, "%d events for the client (want only the one accepted POST)" % ev
    # reading still works at the cap
    ids = [row[0] for row in sql("SELECT id FROM cases WHERE client_id=%s LIMIT 1" % sql_str(c["clientId"]))]
    expect_ok(get("/cases/%s" % ids[0], key=c["key"]), 200)
    # other clients are not affected
    create_case(minimal_case_body())


def test_payg_and_base_pro_caps(ctx):
    for plan in ("PAYG", "BASE_PRO"):
        n = cap(plan)
        c = new_client_full(plan)
        insert_cases(c["clientId"], n - 1, _this_month_ms())
        create_case(minimal_case_body(), key=c["key"])
        expect_err(post("/cases", minimal_case_body(), key=c["key"]), 429, "USAGE_LIMIT_REACHED")


def test_month_boundary(ctx):
    n = cap("SANDBOX")
    c = new_client_full("SANDBOX")
    ms = month_start_ms()
    ids = insert_cases(c["clientId"], n, ms - 1)
    # last month's cases do not count
    create_case(minimal_case_body(), key=c["key"])  # this month: 1
    # the month starts at its first millisecond: n-1 old cases moved there make n this month
    moved = ids[:n - 1]
    sql("UPDATE cases SET created_at=%d, updated_at=%d WHERE id IN (%s)" % (ms, ms, ",".join(sql_str(i) for i in moved)))
    expect_err(post("/cases", minimal_case_body(), key=c["key"]), 429, "USAGE_LIMIT_REACHED")
    # one of them back to 1 ms before: n-1 this month, room for one more
    sql("UPDATE cases SET created_at=%d WHERE id=%s" % (ms - 1, sql_str(moved[0])))
    create_case(minimal_case_body(), key=c["key"])
    expect_err(post("/cases", minimal_case_body(), key=c["key"]), 429, "USAGE_LIMIT_REACHED")


def test_billable_finished_cases(ctx):
    n = cap("SANDBOX")
    c = new_client_full("SANDBOX")
    ms = month_start_ms()
    last_month = ms - 86400000 * 3
    ids = insert_cases(c["clientId"], n, last_month)
    in_list = ",".join(sql_str(i) for i in ids)
    finished = _this_month_ms()

    def set_all(status, result_status, finished_at):
        sql("UPDATE cases SET status=%s, result_status=%s, finished_at=%s WHERE id IN (%s)" % (
            sql_str(status), "NULL" if result_status is None else sql_str(result_status),
            "NULL" if finished_at is None else "%d" % finished_at, in_list))

    steps = [
        ("COMPLETED", "goal_achieved", finished, 429),
        ("COMPLETED", "goal_achieved", ms - 1, 201),  # finished last month
        ("COMPLETED", "goal_achieved", ms, 429),      # first millisecond of the month
        ("FAILED", "BOUNCED", finished, 201),
        ("FAILED", "REJECTED", finished, 201),
        ("FAILED", "COMPLAINED", finished, 201),
        ("FAILED", "max_retries", finished, 429),
        ("FAILED", "failed_rejected", finished, 429),
        ("RUNNING", None, None, 201),
        ("INPUT_NEEDED", None, None, 201),
    ]
    for status, rs, fin, want in steps:
        set_all(status, rs, fin)
        r = post("/cases", minimal_case_body(), key=c["key"])
        try:
            if want == 201:
                expect_ok(r, 201)
            else:
                expect_err(r, 429, "USAGE_LIMIT_REACHED")
        except AssertionError as e:
            raise AssertionError("%d cases %s/%s finished_at=%s: %s" % (n, status, rs, fin, e))


def test_mixed_created_and_finished_do_not_add(ctx):
    # created this month and finished this month are two separate counts, each under the cap
    n = cap("SANDBOX")
    c = new_client_full("SANDBOX")
    ms = month_start_ms()
    insert_cases(c["clientId"], n // 2, ms - 86400000, status="COMPLETED", finished_at=_this_month_ms(),
                 result_status="goal_achieved")
    insert_cases(c["clientId"], n // 2, _this_month_ms())
    expect_ok(post("/cases", minimal_case_body(), key=c["key"]), 201)


def test_unlimited_never_429(ctx):
    c = new_client_full("UNLIMITED")
    insert_cases(c["clientId"], 600, _this_month_ms())
    insert_cases(c["clientId"], 600, month_start_ms() - 86400000, status="COMPLETED",
                 finished_at=_this_month_ms(), result_status="goal_achieved")
    for _ in range(3):
        create_case(minimal_case_body(), key=c["key"])


def test_cap_holds_under_concurrency(ctx):
    n = cap("SANDBOX")
    c = new_client_full("SANDBOX")
    insert_cases(c["clientId"], n - 2, _this_month_ms())
    k = 10
    barrier = threading.Barrier(k)
    results = [None] * k

    def worker(i):
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass
        try:
            results[i] = post("/cases", minimal_case_body(), key=c["key"])
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    statuses = [getattr(r, "status", repr(r)) for r in results]
    assert statuses.count(201) == 2 and statuses.count(429) == k - 2, \
        "%d concurrent POSTs with room for 2: statuses %r" % (k, statuses)
    assert _count(c["clientId"]) == n, "client has %d cases, cap %d" % (_count(c["clientId"]), n)
