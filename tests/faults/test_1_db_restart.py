"""Scenario 1: MariaDB restarted while wrk drives POST /cases (issue 6, item 3).

wrk (Debian's) runs 16 connections for 12 s with a Lua script whose response() hook writes
every status and body to a file per thread. Three seconds in, a root session takes LOCK
TABLES cases WRITE until both batches the group committer lets run at once (src/api/
committer.c) wait inside their transactions, the other POSTs queued behind them (so the
restart always hits transactions in flight, not only idle connections), then mariadbd gets
SIGTERM; once it is gone it stays down for a second and is started again from its own argv
(/proc/PID/cmdline). Meanwhile a thread polls /healthz.

Asserted: every response wrk got is a well-formed envelope, 201 with a caseId, 503
SERVICE_UNAVAILABLE (the database could not serve) or 500 INTERNAL_ERROR (never 502/504 from
nginx, which would mean offload-api died or hung); wrk saw
no socket error and no timeout (its --timeout is the deadline); every caseId answered 201 is
in the database afterwards; offload-api is the same process (pid) and answers /healthz 200
within DB_TO_API_S of MariaDB answering again; from SETTLE_S later on every answer is 201
(every thread of offload-api has recovered, not only the one /healthz happened to reach),
and so are sequential /healthz and POST /cases requests after the run.
"""
import collections
import glob
import json
import os
import re
import subprocess
import threading
import time

import lib
from faultlib import (alive, cmdline, db_answers, healthz, in_list, launch, read_pid, stack_path, stop_pid,
                      wait_for, write_pid)

DURATION_S = 12
FAULT_AT_S = 3
OUTAGE_S = 1.0
WRK_TIMEOUT_S = 10     # a request unanswered this long counts as a hang (wrk "timeout" error)
DB_TO_API_S = 5        # offload-api must serve within this long after MariaDB answers again
SETTLE_S = 2           # ... and answer nothing but 201 from this long after that on

LUA = r"""
-- tests/faults: POST /cases with a minimal valid body; every answer goes to a file per thread
-- as "unix-seconds TAB status TAB body" (CR/LF in the body replaced by spaces).
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end
function init(args)
  out = io.open(args[1] .. "." .. tid, "w")
  wrk.method = "POST"
  wrk.headers["content-type"] = "application/json"
  wrk.headers["x-api-key"] = args[2]
  wrk.body = args[3]
end
function response(status, headers, body)
  out:write(os.time(), "\t", status, "\t", (body:gsub("[\r\n]", " ")), "\n")
  out:flush()
end
"""


def _check_envelope(status, body):
    """None when (status, body) is a well-formed 201, 500 or 503 envelope, else why not."""
    try:
        b = json.loads(body)
    except ValueError:
        return "not JSON"
    if status == 201:
        if not (isinstance(b, dict) and set(b) == {"ok", "data"} and b["ok"] is True
                and isinstance(b["data"], dict) and set(b["data"]) == {"caseId"}
                and lib.UUID4_RE.match(b["data"]["caseId"] or "")):
            return "bad 201 envelope"
        return None
    if status in (500, 503):
        code = "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE"
        if not (isinstance(b, dict) and set(b) == {"ok", "error"} and b["ok"] is False
                and isinstance(b["error"], dict) and set(b["error"]) == {"code", "message"}
                and b["error"]["code"] == code and b["error"]["message"].strip()):
            return "bad %d envelope" % status
        return None
    return "status %d" % status


def _api_log_hint():
    """The most frequent error line of api.log, with its count."""
    c = collections.Counter()
    try:
        with open(stack_path("api.log"), errors="replace") as f:
            for line in f:
                if "error" in line or "warning" in line:
                    c[line.strip()] += 1
    except OSError:
        return "unreadable"
    return "; ".join("%d x %r" % (n, l) for l, n in c.most_common(2))


def _waiting_inserts():
    """How many of offload-api's sessions wait for the lock on cases (inside a transaction)."""
    rows = lib.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='offload'"
                   " AND STATE LIKE 'Waiting for table%' AND INFO LIKE 'INSERT INTO cases%'")
    return int(rows[0][0])


# Batches of POST /cases the group committer runs at once (COMMITTER_LEADERS in
# src/api/committer.c); every other POST waits for them in the committer's queue.
COMMITTER_LEADERS = 2


def _park_in_transactions():
    """Takes LOCK TABLES cases WRITE in a root session and waits until every batch the group
    committer may run at once sits inside its transaction, blocked on the INSERT, with the
    other POSTs queued behind them: the restart then hits transactions in flight, not only
    idle connections (which thread is where at the moment of a bare SIGTERM is luck).
    Returns the locking client (Popen)."""
    threads = min(COMMITTER_LEADERS, int(lib.config_value("api", "threads") or "32"))
    p = subprocess.Popen(["mariadb", "--no-defaults", "--socket=" + lib.env().db_socket, "-uroot",
                          lib.env().db_name], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    p.stdin.write(b"LOCK TABLES cases WRITE;\nSELECT SLEEP(60);\n")
    p.stdin.flush()
    try:
        wait_for(lambda: _waiting_inserts() >= threads, 10,
                 "%d group-commit batches to wait inside their transactions" % threads, interval=0.02)
    except AssertionError:
        p.kill()
        p.wait()
        raise
    return p


def _heal_api():
    """When some offload-api threads still fail after the test, restarts offload-api (stack
    restart-api) so that the later scenarios test what they are about."""
    if all(healthz() == 200 for _ in range(12)):
        return
    r = subprocess.run(["bash", os.path.join(lib.env().src, "tests", "stack", "stack"), "restart-api",
                        lib.env().stack_dir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    print("    (offload-api still failed after the test: restarted it for the next scenarios: %s)" %
          r.stdout.decode("utf-8", "replace").strip().splitlines()[-1:])


def test_db_restart_under_post_load(ctx):
    try:
        return _db_restart_under_post_load()
    finally:
        _heal_api()


def _db_restart_under_post_load():
    e = lib.env()
    work = stack_path("faults-db")
    os.makedirs(work, exist_ok=True)
    for f in glob.glob(os.path.join(work, "answers.*")):
        os.unlink(f)
    with open(os.path.join(work, "post.lua"), "w") as f:
        f.write(LUA)
    api_pid = read_pid("api.pid")
    db_pid = read_pid("mariadbd.pid")
    argv = cmdline(db_pid)
    assert argv and os.path.basename(argv[0]).startswith("mariadbd"), "mariadbd.pid names %r" % argv
    body = json.dumps(lib.minimal_case_body(), separators=(",", ":"))

    # /healthz every 100 ms, for the timeline.
    health = []
    stop_poll = threading.Event()

    def poll_health():
        while not stop_poll.is_set():
            health.append((time.time(), healthz()))
            stop_poll.wait(0.1)

    poller = threading.Thread(target=poll_health, daemon=True)
    poller.start()
    wrk = subprocess.Popen(["wrk", "-t2", "-c16", "-d%ds" % DURATION_S, "--timeout", "%ds" % WRK_TIMEOUT_S,
                            "--latency", "-s", os.path.join(work, "post.lua"), e.base_url + "/cases", "--",
                            os.path.join(work, "answers"), e.api_key, body],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(FAULT_AT_S)
        parked = _park_in_transactions()
        t_term = time.time()
        try:
            stop_s = stop_pid(db_pid, "mariadbd", timeout=60)
        finally:
            parked.kill()
            parked.wait()
        t_down = time.time()
        time.sleep(OUTAGE_S)
        new_pid = launch(argv, "mariadb-restart.log")
        write_pid("mariadbd.pid", new_pid)
        wait_for(db_answers, 60, "MariaDB to answer after the restart", interval=0.05)
        t_db = time.time()
        try:
            wait_for(lambda: healthz() == 200, DB_TO_API_S, "offload-api (pid %d, not restarted) answering "
                     "/healthz 200 after MariaDB came back" % api_pid, interval=0.02)
        except AssertionError as ex:
            raise AssertionError("%s; offload-api alive: %s; api.log: %s" % (ex, alive(api_pid), _api_log_hint()))
        t_api = time.time()
        out, _ = wrk.communicate(timeout=DURATION_S + WRK_TIMEOUT_S + 30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
        stop_poll.set()
        poller.join(5)
    out = out.decode("utf-8", "replace")
    assert wrk.returncode == 0, "wrk exited %d:\n%s" % (wrk.returncode, out)

    # wrk's own view: total, no socket errors (connect/read/write/timeout).
    m = re.search(r"(\d+) requests in", out)
    assert m, "no request count in wrk's output:\n%s" % out
    total = int(m.group(1))
    assert "Socket errors" not in out, "wrk saw socket errors (a timeout is a hang past %d s):\n%s" % (
        WRK_TIMEOUT_S, out)
    max_latency = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out)

    statuses = collections.Counter()
    bad = []
    ids = set()
    after_api = 0
    late_500 = 0
    for path in sorted(glob.glob(os.path.join(work, "answers.*"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t", 2)
                if len(parts) != 3:
                    bad.append(("unparsable line", line[:200]))
                    continue
                at, status, body = int(parts[0]), int(parts[1]), parts[2]
                statuses[status] += 1
                if status in (500, 503) and at >= int(t_api) + 1 + SETTLE_S:
                    late_500 += 1
                why = _check_envelope(status, body)
                if why:
                    bad.append((why, status, body[:300]))
                elif status == 201:
                    ids.add(json.loads(body)["data"]["caseId"])
                    if at >= int(t_api) + 1:
                        after_api += 1
    seen = sum(statuses.values())
    summary = "%d requests (%s), wrk max latency %s; mariadbd stopped in %.1f s, down %.1f s, " \
              "offload-api answered %.2f s after MariaDB" % (
                  total, ", ".join("%d: %d" % kv for kv in sorted(statuses.items())),
                  max_latency.group(1) if max_latency else "?", stop_s, t_db - t_down, t_api - t_db)
    print("    " + summary)
    assert not bad, "%d malformed or unexpected answers, e.g. %r\n%s" % (len(bad), bad[:5], summary)
    assert seen == total, "wrk counted %d requests but the hook saw %d answers" % (total, seen)
    assert statuses[500] + statuses[503] > 0, "no request failed: the restart did not happen under load? %s" % \
        summary
    assert statuses[201] > 0 and after_api > 0, "no 201 after offload-api came back: %s" % summary

    # Every 201 is a stored case.
    stored = set()
    id_list = sorted(ids)
    for i in range(0, len(id_list), 1000):
        chunk = id_list[i:i + 1000]
        stored |= set(r[0] for r in lib.sql("SELECT id FROM cases WHERE id IN (%s)" % in_list(chunk)))
    missing = ids - stored
    assert not missing, "%d of %d caseIds answered 201 are not in the database, e.g. %r" % (
        len(missing), len(ids), sorted(missing)[:5])

    # The same offload-api process, still serving.
    assert alive(api_pid) and read_pid("api.pid") == api_pid, "offload-api was restarted or died"
    downtime = [t for t, s in health if s != 200]
    print("    /healthz: %d of %d polls not 200, from %.1f s to %.1f s after SIGTERM; %d caseIds checked" % (
        len(downtime), len(health), (min(downtime) - t_term) if downtime else 0.0,
        (max(downtime) - t_term) if downtime else 0.0, len(ids)))
    assert late_500 == 0, "%d answers were still 500/503 more than %d s after /healthz answered 200 again (some " \
        "offload-api threads did not recover; see api.log): %s" % (late_500, SETTLE_S, summary)
    # Sequential requests, several per thread of offload-api: every thread has reconnected.
    after = collections.Counter()
    for _ in range(6):
        after["healthz %s" % healthz()] += 1
        r = lib.post("/cases", lib.minimal_case_body())
        after["POST %d" % r.status] += 1
        if r.status == 201:
            ids.add(lib.expect_ok(r, 201)["caseId"])
    assert set(after) == {"healthz 200", "POST 201"}, "after the restart, sequential requests got %s: " \
        "some offload-api threads never recovered (api.log: %s)" % (dict(after), _api_log_hint())
    return "%d x 201, %d x 503, %d x 500, no 502/hang; API back %.2f s after DB" % (
        statuses[201], statuses[503], statuses[500], t_api - t_db)
