"""The store against the stack's MariaDB: the transaction helper (a real deadlock is retried,
other errors are not, a refusal rolls back: tests/store/tx-check.c); attachment bytes and
named leases (tests/store/attachments-check.c)."""
import os
import subprocess

from lib import env


def _run_check(name):
    e = env()
    prog = os.path.join(e.bin, "tests", "store", name)
    assert os.access(prog, os.X_OK), "%s is not built (make check builds it)" % prog
    p = subprocess.run([prog], env=dict(os.environ, OFFLOAD_CONFIG=e.config), capture_output=True,
                       text=True, timeout=120)
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    assert p.returncode == 0 and last.endswith(" 0 failed"), \
        "%s exited %d:\n%s\n%s" % (name, p.returncode, p.stdout, p.stderr)
    assert not last.startswith("0 passed"), "%s ran no checks: %s" % (name, last)


def test_store_tx_check(ctx):
    _run_check("tx-check")


def test_store_attachments_check(ctx):
    _run_check("attachments-check")
