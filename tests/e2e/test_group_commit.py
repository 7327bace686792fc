"""POST /cases group commit (issue 10 item 3): concurrent POSTs of one process share one
transaction, each answered after its own rows committed; caps, Idempotency-Keys and a bad
row in a batch stay exact."""
import json
import os
import platform
import subprocess
import threading
import time
import uuid

from lib import (config_value, env, expect_err, expect_ok, http, minimal_case_body, month_start_ms, new_client_full,
                 now_ms, sql, sql_one, sql_str)

FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())


def _count(client_id):
    return int(sql_one("SELECT COUNT(*) FROM cases WHERE client_id=%s" % sql_str(client_id)))


def _events(client_id):
    return int(sql_one("SELECT COUNT(*) FROM events e JOIN cases c ON c.id = e.case_id"
                       " WHERE c.client_id=%s AND e.type='CASE_CREATED'" % sql_str(client_id)))


def _commits():
    return int(sql("SHOW GLOBAL STATUS LIKE 'Com_commit'")[0][1])


def _wait(value, want, what, deadline_s=60):
    """Polls value() until want(value) holds; fails naming the last value at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        v = value()
        if want(v):
            return
        assert time.monotonic() < end, "timed out waiting for %s (last seen: %r)" % (what, v)
        time.sleep(0.02)


def _seed(client_id, n):
    """n cases of client_id created this month (as if by earlier requests)."""
    created = max(month_start_ms(), now_ms() - 60000)
    rows = ",".join(
        "(%s, %s, 'CREATED', 'EMAIL', %d, %d, 3, 72, 'a@b.example', '{\"objective\":\"seeded\"}',"
        " '{\"address\":\"a@b.example\",\"name\":\"A\"}', '{\"name\":\"S\"}')"
        % (sql_str(str(uuid.uuid4())), sql_str(client_id), created, created) for _ in range(n))
    sql("INSERT INTO cases (id, client_id, status, channel, created_at, updated_at, max_attempts,"
        " follow_up_delay_hours, counterparty_address, goal, counterparty, sender_persona) VALUES " + rows)


def _post(key, body, idem=None):
    headers = {"Idempotency-Key": idem} if idem else None
    return http("POST", "/cases", raw_body=json.dumps(body).encode(), content_type="application/json", key=key,
                headers=headers)


def _concurrently(calls):
    """Runs each call in its own thread, released together; returns their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i):
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass
        try:
            results[i] = calls[i]()
        except Exception as e:  # reported by the caller's assertion
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


class ClientLock:
    """Holds the row lock of a client in a session of its own, as a slow transaction would:
    POST /cases for a capped client waits for it inside the committing transaction."""

    def __init__(self, client_id):
        e = env()
        self.p = subprocess.Popen(["mariadb", "--socket=" + e.db_socket, "-uroot", e.db_name, "-N", "-B",
                                   "--unbuffered"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.p.stdin.write("START TRANSACTION;\nSELECT id FROM clients WHERE id=%s FOR UPDATE;\n"
                           "SELECT 'locked';\n" % sql_str(client_id))
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            assert line, "the locking session ended: %s" % self.p.stderr.read()
            if line.strip() == "locked":
                break

    def release(self):
        if self.p.poll() is None:
            self.p.stdin.write("ROLLBACK;\n")
            self.p.stdin.close()
            self.p.wait(timeout=30)


def _lock_waiters():
    return int(sql_one("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state='LOCK WAIT'"))


def _api_threads_in_futex():
    """How many threads of offload-api sleep in futex(): with every thread busy on a POST,
    those are the requests queued in the committer."""
    e = env()
    with open(os.environ.get("OFFLOAD_API_PID_FILE") or os.path.join(e.stack_dir, "api.pid")) as f:
        pid = int(f.read().strip())
    n = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/syscall" % (pid, tid)) as f:
                first = f.read().split()[0]
        except (OSError, IndexError):
            continue
        if first.isdigit() and int(first) == FUTEX:
            n += 1
    return n


def _api_threads():
    return int(config_value("api", "threads") or 8)


def _one_batch(client, bodies, keys):
    """Sends bodies[0] alone and lets it block on the client's row lock (it leads), then the
    others, which queue behind it; releases the lock and returns (responses, commits): the
    first leads a batch of one, the others share the next transaction."""
    lock = ClientLock(client["clientId"])
    first = [None]
    t = None
    try:
        before = _commits()

        def lead():
            first[0] = _post(client["key"], bodies[0], keys[0])

        t = threading.Thread(target=lead)
        t.start()
        _wait(_lock_waiters, lambda v: v == 1, "the first POST to wait for the client row")
        rest = []
        threads = []
        for i in range(1, len(bodies)):
            rest.append(None)

            def follow(i=i):
                rest[i - 1] = _post(client["key"], bodies[i], keys[i])

            threads.append(threading.Thread(target=follow))
            threads[-1].start()
        if FUTEX is not None:
            _wait(_api_threads_in_futex, lambda v: v >= len(bodies) - 1, "the other POSTs to queue")
        if any(keys[1:]):
            _wait(lambda: int(sql_one("SELECT COUNT(*) FROM idempotency_keys WHERE client_id=%s"
                                      % sql_str(client["clientId"]))),
                  lambda v: v >= len([k for k in keys if k]), "the Idempotency-Keys to be reserved")
    finally:
        lock.release()
    t.join(timeout=60)
    for th in threads:
        th.join(timeout=60)
    return [first[0]] + rest, _commits() - before


def test_cap_exact_under_50_concurrent_posts(ctx):
    """The issue's test: 10 cases under the cap, 50 concurrent POSTs: exactly 10 are 201, the
    rest 429, and the database holds exactly 10 more cases, each with its event."""
    c = new_client_full("SANDBOX")
    cap = int(config_value("plans", "sandbox") or 100)
    _seed(c["clientId"], cap - 10)
    results = _concurrently([lambda: _post(c["key"], minimal_case_body())] * 50)
    statuses = [getattr(r, "status", repr(r)) for r in results]
    assert statuses.count(201) == 10 and statuses.count(429) == 40, \
        "50 concurrent POSTs with room for 10: %r" % sorted(statuses, key=str)
    for r in results:
        if r.status == 429:
            expect_err(r, 429, "USAGE_LIMIT_REACHED")
    ids = {expect_ok(r, 201)["caseId"] for r in results if r.status == 201}
    assert len(ids) == 10
    assert _count(c["clientId"]) == cap, "the client has %d cases, cap %d" % (_count(c["clientId"]), cap)
    assert _events(c["clientId"]) == 10, "%d CASE_CREATED events, want 10" % _events(c["clientId"])
    found = sql("SELECT COUNT(*) FROM cases WHERE id IN (%s)" % ",".join(sql_str(i) for i in ids))
    assert int(found[0][0]) == 10, "a 201 names a case that is not stored"


def test_concurrent_posts_share_one_commit(ctx):
    n = min(_api_threads(), 6)
    assert n >= 3, "the stack runs %d API threads; batching needs at least 3" % n
    c = new_client_full("SANDBOX")
    bodies = []
    for i in range(n):
        b = minimal_case_body()
        b["clientReferenceId"] = "batch-%d" % i
        bodies.append(b)
    responses, commits = _one_batch(c, bodies, [None] * n)
    ids = [expect_ok(r, 201)["caseId"] for r in responses]
    assert len(set(ids)) == n
    assert commits == 2, "%d POSTs (one leading alone, %d queued behind it) made %d commits, want 2" % (
        n, n - 1, commits)
    for i, cid in enumerate(ids):
        got = expect_ok(http("GET", "/cases/%s" % cid, key=c["key"]), 200)
        assert got["clientReferenceId"] == "batch-%d" % i, "case %d holds another request's body: %r" % (i, got)
    assert _events(c["clientId"]) == n


def test_batch_with_idempotency_keys_replays_each_own_case(ctx):
    n = min(_api_threads(), 6)
    c = new_client_full("SANDBOX")
    keys = ["gc-%d-%s" % (i, uuid.uuid4()) for i in range(n)]
    bodies = []
    for i in range(n):
        b = minimal_case_body()
        b["goal"]["objective"] = "objective %d" % i
        bodies.append(b)
    responses, _ = _one_batch(c, bodies, keys)
    ids = [expect_ok(r, 201)["caseId"] for r in responses]
    for i in range(n):
        again = expect_ok(_post(c["key"], bodies[i], keys[i]), 201)
        assert again["caseId"] == ids[i], "key %d replayed %r, created %r" % (i, again["caseId"], ids[i])
        expect_err(_post(c["key"], bodies[(i + 1) % n], keys[i]), 422, "IDEMPOTENCY_KEY_REUSED")
    states = sql("SELECT state, response_status FROM idempotency_keys WHERE client_id=%s" % sql_str(c["clientId"]))
    assert states == [["done", "201"]] * n, "idempotency rows %r" % states
    assert _count(c["clientId"]) == n


def test_cap_in_a_batch_refuses_the_later_ones(ctx):
    n = min(_api_threads(), 6)
    c = new_client_full("SANDBOX")
    cap = int(config_value("plans", "sandbox") or 100)
    _seed(c["clientId"], cap - 2)   # room for the leader and one of the batch behind it
    keys = ["cap-%d-%s" % (i, uuid.uuid4()) for i in range(n)]
    responses, _ = _one_batch(c, [minimal_case_body() for _ in range(n)], keys)
    statuses = [r.status for r in responses]
    assert statuses[0] == 201 and statuses.count(201) == 2 and statuses.count(429) == n - 2, statuses
    assert _count(c["clientId"]) == cap
    # a refused request's key is forgotten: the client may retry it (and is refused again)
    left = sql("SELECT idem_key FROM idempotency_keys WHERE client_id=%s" % sql_str(c["clientId"]))
    assert sorted(r[0] for r in left) == sorted(keys[i] for i in range(n) if statuses[i] == 201), left


def test_one_bad_row_fails_alone(ctx):
    """A row the database refuses fails its own request only: the batch is tried again one
    case at a time. A trigger makes the bad row (valid requests never make one)."""
    n = min(_api_threads(), 6)
    c = new_client_full("SANDBOX")
    trigger = "e2e_poison_%s" % uuid.uuid4().hex[:8]
    # The poisoned row breaks the table's CHECK (JSON_VALID(goal)), as a bad row would.
    sql("CREATE TRIGGER %s BEFORE INSERT ON cases FOR EACH ROW"
        " SET NEW.goal = IF(NEW.client_reference_id = 'poison', 'not json', NEW.goal)" % trigger)
    try:
        bodies, keys = [], []
        for i in range(n):
            b = minimal_case_body()
            b["clientReferenceId"] = "poison" if i == 1 else "good-%d" % i
            bodies.append(b)
            keys.append("poison-%d-%s" % (i, uuid.uuid4()))
        responses, _ = _one_batch(c, bodies, keys)
    finally:
        sql("DROP TRIGGER IF EXISTS %s" % trigger)
    expect_err(responses[1], 500, "INTERNAL_ERROR")
    for i, r in enumerate(responses):
        if i != 1:
            expect_ok(r, 201)
    refs = sorted(r[0] for r in sql("SELECT client_reference_id FROM cases WHERE client_id=%s"
                                    % sql_str(c["clientId"])))
    assert refs == sorted("good-%d" % i for i in range(n) if i != 1), refs
    assert _events(c["clientId"]) == n - 1
    # the failed request's key was given back: a retry (without the poison) creates the case
    left = int(sql_one("SELECT COUNT(*) FROM idempotency_keys WHERE client_id=%s AND idem_key=%s"
                       % (sql_str(c["clientId"]), sql_str(keys[1]))))
    assert left == 0, "the failed request's Idempotency-Key is still reserved"
    expect_ok(_post(c["key"], bodies[1], keys[1]), 201)


def test_lone_post_commits_at_once(ctx):
    """No timer: one request alone is one transaction, answered without waiting for company."""
    c = new_client_full("UNLIMITED")
    before = _commits()
    t0 = time.monotonic()
    expect_ok(_post(c["key"], minimal_case_body()), 201)
    took = time.monotonic() - t0
    assert _commits() - before == 1
    assert took < 2.0, "a lone POST took %.2f s" % took
