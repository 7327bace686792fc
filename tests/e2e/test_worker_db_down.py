"""A worker pass while the database cannot be reached: it fails (exit 1) and its summary
names the database and the server it tried, once, instead of "budget spent"."""
import os
import subprocess

from lib import env, worker_cmd, worker_env


def test_worker_pass_names_the_unreachable_database(ctx):
    e = env()
    bad = os.path.join(e.stack_dir or "/tmp", "no-such-mariadb.sock")
    run_env = dict(worker_env(), OFFLOAD_DATABASE_SOCKET=bad)
    p = subprocess.run(worker_cmd(None, ()), stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                       env=run_env)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 1, "exit %d, stderr:\n%s" % (p.returncode, err)
    summary = [l for l in err.splitlines() if "pass:" in l]
    assert len(summary) == 1, "one summary line expected:\n%s" % err
    assert "(database unavailable: cannot connect to MariaDB at %s" % bad in summary[0], summary[0]
    assert "budget spent" not in summary[0], summary[0]
    # The event threads fail alike; their error is logged once, not once per thread.
    threads = [l for l in err.splitlines() if "error: cannot connect" in l]
    assert len(threads) <= 3, "the connection error was logged %d times:\n%s" % (len(threads), err)
