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
    """The batches waiting for the client row: connections running the committer's row lock
    (a prepared statement, so its text shows the '?'). Not INNODB_TRX: MariaDB refreshes that
    table only when it was left unread for 100 ms, so a poll keeps reading stale rows."""
    return int(sql_one("SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                       " WHERE INFO = 'SELECT id FROM clients WHERE id = ? FOR UPDATE'"))


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
    """Holds the client's row lock while the POSTs of bodies arrive one after the other: the
    first ones lead a batch each and wait for the lock (a process runs at most two batches at
    once), the others queue behind them. Then releases the lock. Returns (responses, commits,
    leaders): the leaders commit alone, and the queued POSTs share one more transaction."""
    n = len(bodies)
    lock = ClientLock(client["clientId"])
    responses = [None] * n
    threads = []
    try:
        before = _commits()
        for i in range(n):
            def send(i=i):
                responses[i] = _post(client["key"], bodies[i], keys[i])

            threads.append(threading.Thread(target=send))
            threads[-1].start()
            if i == 0:
                _wait(_lock_waiters, lambda v: v == 1, "the first POST to wait for the client row")
            elif FUTEX is not None:
                # one at a time, so that they arrive in order: each is then either a leader
                # waiting for the row or queued in the committer
                _wait(lambda: (_lock_waiters(), _api_threads_in_futex()), lambda v, i=i: v[0] + v[1] >= i + 1,
                      "POST %d to lead or queue" % i)
        leaders = _lock_waiters()
        if any(keys):
            _wait(lambda: int(sql_one("SELECT COUNT(*) FROM idempotency_keys WHERE client_id=%s"
                                      % sql_str(client["clientId"]))),
                  lambda v: v >= len([k for k in keys if k]), "the Idempotency-Keys to be reserved")
    finally:
        lock.release()
    for th in threads:
        th.join(timeout=60)
    return responses, _commits() - before, leaders


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
    assert n >= 4, "the stack runs %d API threads; two leaders and a shared batch need 4" % n
    c = new_client_full("SANDBOX")
    bodies = []
    for i in range(n):
        b = minimal_case_body()
        b["clientReferenceId"] = "batch-%d" % i
        bodies.append(b)
    responses, commits, leaders = _one_batch(c, bodies, [None] * n)
    ids = [expect_ok(r, 201)["caseId"] for r in responses]
    assert len(set(ids)) == n
    assert n - leaders >= 2, "%d POSTs, %d of them leading: too few queued to share a commit" % (n, leaders)
    assert commits == leaders + 1, "%d POSTs (%d leading alone, %d queued behind) made %d commits, want %d" % (
        n, leaders, n - leaders, commits, leaders + 1)
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
    responses, _, _ = _one_batch(c, bodies, keys)
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
    keys = ["cap-%d-%s" % (i, uuid.uuid4()) for i in range(n)]
    # room for the leaders and one of the batch queued behind them
    leaders = 2 if n >= 4 else 1
    _seed(c["clientId"], cap - leaders - 1)
    responses, _, seen = _one_batch(c, [minimal_case_body() for _ in range(n)], keys)
    assert seen == leaders, "%d leaders, want %d" % (seen, leaders)
    statuses = [r.status for r in responses]
    assert statuses[:leaders] == [201] * leaders, statuses
    assert statuses.count(201) == leaders + 1 and statuses.count(429) == n - leaders - 1, statuses
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
            b["clientReferenceId"] = "poison" if i == n - 1 else "good-%d" % i
            bodies.append(b)
            keys.append("poison-%d-%s" % (i, uuid.uuid4()))
        responses, _, leaders = _one_batch(c, bodies, keys)
    finally:
        sql("DROP TRIGGER IF EXISTS %s" % trigger)
    assert n - leaders >= 2, "the poisoned POST must share its batch with another"
    expect_err(responses[n - 1], 500, "INTERNAL_ERROR")
    for r in responses[:n - 1]:
        expect_ok(r, 201)
    refs = sorted(r[0] for r in sql("SELECT client_reference_id FROM cases WHERE client_id=%s"
                                    % sql_str(c["clientId"])))
    assert refs == sorted("good-%d" % i for i in range(n - 1)), refs
    assert _events(c["clientId"]) == n - 1
    # the failed request's key was given back: a retry (without the poison) creates the case
    left = int(sql_one("SELECT COUNT(*) FROM idempotency_keys WHERE client_id=%s AND idem_key=%s"
                       % (sql_str(c["clientId"]), sql_str(keys[n - 1]))))
    assert left == 0, "the failed request's Idempotency-Key is still reserved"
    expect_ok(_post(c["key"], bodies[n - 1], keys[n - 1]), 201)


def test_lone_post_commits_at_once(ctx):
    """No timer: one request alone is one transaction, answered without waiting for company."""
    c = new_client_full("UNLIMITED")
    before = _commits()
    t0 = time.monotonic()
    expect_ok(_post(c["key"], minimal_case_body()), 201)
    took = time.monotonic() - t0
    assert _commits() - before == 1
    assert took < 2.0, "a lone POST took %.2f s" % took


def test_idempotency_key_characters(ctx):
    """doc/api.md, "Idempotent creation": 1 to 255 characters (not bytes) of UTF-8 without
    control characters; anything else is 400 naming the header, never 500."""
    c = new_client_full("UNLIMITED")
    body = minimal_case_body()
    for bad in (b"k\xffk", b"k\xc3", b"a\tb", b"a\xc2\x85b", ("\u00e9" * 256).encode()):
        r = http("POST", "/cases", raw_body=json.dumps(body).encode(), content_type="application/json",
                 key=c["key"], headers={"Idempotency-Key": bad})
        msg = expect_err(r, 400, "INVALID_REQUEST")
        assert msg.startswith("idempotency-key"), "key %r: %r" % (bad, msg)
    key = ("\u00e9" * 253 + "-" + uuid.uuid4().hex[:1]).encode()  # 255 characters, 508 bytes
    first = expect_ok(http("POST", "/cases", raw_body=json.dumps(body).encode(), content_type="application/json",
                           key=c["key"], headers={"Idempotency-Key": key}), 201)
    again = expect_ok(http("POST", "/cases", raw_body=json.dumps(body).encode(), content_type="application/json",
                           key=c["key"], headers={"Idempotency-Key": key}), 201)
    assert again["caseId"] == first["caseId"]
    assert _count(c["clientId"]) == 1
