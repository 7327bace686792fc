"""offload-api as a process: it survives a MariaDB restart and stops cleanly on SIGTERM.

Runs last (file name) because it stops and starts parts of the stack.
"""
import os
import signal
import subprocess
import time

from lib import create_case, env, expect_err, expect_ok, get, get_case, minimal_case_body, post

DEADLINE_S = 60


def _pid_of(path):
    with open(path) as f:
        return int(f.read().strip())


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _wait(cond, what, deadline_s=DEADLINE_S):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def _healthz_status():
    try:
        return get("/healthz", key=None).status
    except OSError:
        return None


def test_api_survives_database_restart(ctx):
    """A MariaDB restart: requests during the outage get a well-formed 500/503 quickly, and
    afterwards offload-api serves again without being restarted itself."""
    e = env()
    db_pid = _pid_of(os.path.join(e.stack_dir, "mariadbd.pid"))
    api_pid = _pid_of(os.environ.get("OFFLOAD_API_PID_FILE") or os.path.join(e.stack_dir, "api.pid"))
    with open("/proc/%d/cmdline" % db_pid, "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    before = create_case(minimal_case_body())

    os.kill(db_pid, signal.SIGTERM)
    _wait(lambda: not _alive(db_pid), "mariadbd to stop")
    # While the database is down: clean errors, no hang, no crash of offload-api.
    expect_err(get("/healthz", key=None), 503, "SERVICE_UNAVAILABLE")
    expect_err(post("/cases", minimal_case_body()), 503, "SERVICE_UNAVAILABLE")
    # doc/api.md, "Errors": a database that cannot serve is 503 SERVICE_UNAVAILABLE, not a 500.
    r = get("/cases/" + before)
    expect_err(r, 503, "SERVICE_UNAVAILABLE")
    assert "SQL" not in r.json["error"]["message"] and "/" not in r.json["error"]["message"], \
        "503 message leaks details: %r" % r.json["error"]["message"]
    expect_err(get("/cases/%s/attachments/%s" % (before, before)), 503, "SERVICE_UNAVAILABLE")
    assert _alive(api_pid), "offload-api died while the database was down"

    log = open(os.path.join(e.stack_dir, "mariadb-restart.log"), "ab")
    subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    _wait(lambda: _healthz_status() == 200, "/healthz to answer 200 after the restart")
    assert _alive(api_pid) and _pid_of(os.path.join(e.stack_dir, "api.pid")) == api_pid, \
        "offload-api was restarted; it should have reconnected by itself"
    # Every thread reconnects: more requests than threads, all fine.
    for _ in range(16):
        assert get_case(before)["caseId"] == before
    after = create_case(minimal_case_body())
    assert get_case(after)["status"] == "CREATED"


def test_api_stops_cleanly_on_sigterm(ctx):
    """SIGTERM: offload-api finishes, exits 0 promptly (every thread leaves accept()), and the
    stack brings it back for whatever runs next."""
    e = env()
    api_pid = _pid_of(os.path.join(e.stack_dir, "api.pid"))
    expect_ok(get("/healthz", key=None), 200)
    os.kill(api_pid, signal.SIGTERM)
    _wait(lambda: not _alive(api_pid), "offload-api to exit after SIGTERM", 15)
    with open(os.path.join(e.stack_dir, "api.log"), errors="replace") as f:
        log = f.read()
    assert "finishing requests in progress" in log, "no shutdown line in api.log"
    r = subprocess.run(["bash", os.path.join(e.src, "tests/stack/stack"), "restart-api", e.stack_dir],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert r.returncode == 0, "stack restart-api failed: %s" % r.stdout.decode(errors="replace")[-2000:]
    _wait(lambda: _healthz_status() == 200, "/healthz after restarting offload-api")
