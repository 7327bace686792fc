"""The store's transaction helper against the stack's MariaDB: a real deadlock is retried,
other errors are not, a refusal rolls back (tests/store/tx-check.c)."""
import os
import subprocess

from lib import env


def test_store_tx_check(ctx):
    e = env()
    prog = os.path.join(e.bin, "tests", "store", "tx-check")
    assert os.access(prog, os.X_OK), "%s is not built (make check builds it)" % prog
    p = subprocess.run([prog], env=dict(os.environ, OFFLOAD_CONFIG=e.config), capture_output=True,
                       text=True, timeout=120)
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    assert p.returncode == 0 and last.endswith(" 0 failed"), \
        "tx-check exited %d:\n%s\n%s" % (p.returncode, p.stdout, p.stderr)
    assert not last.startswith("0 passed"), "tx-check ran no checks: %s" % last
