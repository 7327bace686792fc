"""faultlib.py: helpers of the fault tests (tests/faults/test_*.py).

The stack's own helpers come from tests/e2e/lib.py (HTTP, SQL, worker runs, the SMTP sink's
outbox, IMAP); this adds what breaking and mending the stack needs: stopping a server by its
pid and starting it again from the argv it ran with, parking the work earlier tests left so
that every test starts from a quiet queue, polling with deadlines, and the mail the tests
feed in. Only 127.0.0.1 is ever contacted.
"""
import base64
import email.utils
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "agent-server"))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import lib  # noqa: E402


class Skip(Exception):
    """Raised by a test that cannot run on this machine (the runner prints SKIP)."""


# ------------------------------------------------------------------------- processes

def stack_path(name):
    return os.path.join(lib.env().stack_dir, name)


def read_pid(name):
    """The pid in the stack's pid file name (e.g. "mariadbd.pid")."""
    with open(stack_path(name)) as f:
        return int(f.read().split()[0])


def write_pid(name, pid):
    tmp = stack_path(name + ".tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % pid)
    os.rename(tmp, stack_path(name))


def alive(pid):
    """True while the process exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return [a.decode("utf-8", "surrogateescape") for a in f.read().split(b"\0") if a]


def wait_for(fn, timeout, what, interval=0.05):
    """Calls fn() until it returns a true value (returned); AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("%s did not happen within %.0f s" % (what, timeout))
        time.sleep(interval)


def stop_pid(pid, what, timeout=30.0):
    """SIGTERM to one of this stack's processes (its argv must name the stack directory),
    then waits until it is gone. Returns the seconds it took."""
    argv = " ".join(cmdline(pid))
    assert lib.env().stack_dir + "/" in argv, "pid %d (%s) is not this stack's %s" % (pid, argv, what)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), timeout, "%s (pid %d) to exit after SIGTERM" % (what, pid))
    return time.monotonic() - t0


def launch(argv, log_name):
    """Starts argv detached (own session, stdin /dev/null, output appended to the stack's
    log_name, no other descriptor inherited); returns its pid."""
    log = open(stack_path(log_name), "ab")
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
                             start_new_session=True)
    finally:
        log.close()
    return p.pid


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now (connections are refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def db_answers():
    p = subprocess.run(["mariadb", "--no-defaults", "--socket=" + lib.env().db_socket, "-uroot",
                        "--connect-timeout=2", "-N", "-e", "SELECT 1"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
    return p.returncode == 0


def healthz():
    try:
        return lib.get("/healthz", key=None).status
    except OSError:
        return None


# --------------------------------------------------------------------- queue hygiene

def park_all():
    """Makes every case and delivery earlier tests left inert: pending events done, open
    cases without a schedule, pending webhook deliveries dead. A test then sees only its
    own cases move, whatever time (faketime) it runs its passes at."""
    now = lib.now_ms()
    lib.sql("UPDATE events SET state='done', done_at=%d, lease_owner=NULL, lease_until=NULL"
            " WHERE state='pending';"
            "UPDATE cases SET next_action_at=%d, lease_owner=NULL, lease_until=NULL"
            " WHERE status IN ('CREATED','RUNNING');"
            "UPDATE webhook_deliveries SET state='dead', last_error='parked by the fault tests'"
            " WHERE state='pending'" % (now, lib.SENTINEL))


def in_list(ids):
    """A SQL list of ids (UUIDs are quoted as they are: short, so long lists stay within one
    argument of the mariadb command line)."""
    return ",".join("'%s'" % i if lib.UUID4_RE.match(i) else lib.sql_str(i) for i in ids) or "''"


def case_rows(ids):
    """{caseId: (status, attempt_count)} from the database."""
    return {r[0]: (r[1], int(r[2])) for r in lib.sql(
        "SELECT id, status, attempt_count FROM cases WHERE id IN (%s)" % in_list(ids))}


def new_cases(n, prefix, **over):
    """Creates n cases through the API, each to its own address prefix-NN@example.com;
    returns {caseId: address}."""
    out = {}
    for i in range(n):
        addr = "%s-%03d@example.com" % (prefix, i)
        b = lib.minimal_case_body()
        b["counterparty"] = {"address": addr, "name": "Maya Chen"}
        b.update(over)
        out[lib.create_case(b)] = addr
    return out


def tag():
    return uuid.uuid4().hex[:10]


def worker_env(**extra):
    e = lib.worker_env()
    e.update({k: str(v) for k, v in extra.items()})
    return e


def libfaketime():
    """The path of libfaketime.so.1 (Debian's faketime package)."""
    import glob
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    assert found, "libfaketime.so.1 not found (apt-get install faketime)"
    return found[0]


def worker_start_direct(offset_s=0, env=None):
    """Starts one pass whose pid is offload-worker itself, so that a SIGKILL hits it: the
    faketime wrapper forks and waits, and killing it would leave the worker running. Time
    is moved by preloading libfaketime with FAKETIME="+Ns". Returns (Popen, stderr file)."""
    import tempfile
    e = dict(env or lib.worker_env())
    if offset_s:
        e["LD_PRELOAD"] = libfaketime()
        e["FAKETIME"] = "+%ds" % offset_s
    cmd = [os.path.join(lib.env().bin, "offload-worker"), "-c", lib.env().config, "--once"]
    errf = tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf, env=e)
    p.cmd = cmd + (["(FAKETIME=%s)" % e["FAKETIME"]] if offset_s else [])
    return p, errf


def worker_run(fake=None, env=None, timeout=lib.WORKER_TIMEOUT):
    """One pass (not checked); returns a lib.WorkerRun."""
    cmd = lib.worker_cmd(fake)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env or lib.worker_env())
    return lib.WorkerRun(cmd, p.returncode, p.stderr.decode("utf-8", "replace"))


def worker_ok(fake=None, env=None):
    """One pass that must exit 0 with its summary line (the worker did not crash)."""
    run = worker_run(fake, env)
    assert run.rc == 0 and run.events is not None, "offload-worker %s exited %d:\n%s" % (
        fake or "", run.rc, run.tail())
    return run


def worker_drain(fake=None, env=None, max_passes=30):
    runs = []
    for _ in range(max_passes):
        runs.append(worker_ok(fake, env))
        if not runs[-1].work_remains:
            return runs
    raise AssertionError("work remained after %d passes:\n%s" % (max_passes, runs[-1].tail()))


# ------------------------------------------------------------------------ mail in

def _crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def reply(first, addr, cid, text, attachment=None, filename="W-9 signed.pdf"):
    """A reply from the counterparty to our message first (a lib.OutMail): (raw bytes, its
    Message-ID without brackets). With attachment (bytes): multipart/mixed with a PDF."""
    msgid = "%s@mail.northstar.example" % uuid.uuid4().hex
    head = ("From: Maya Chen <%(addr)s>\n"
            "To: offload+%(cid)s@offload.test\n"
            "Subject: Re: %(subject)s\n"
            "Date: %(date)s\n"
            "Message-ID: <%(msgid)s>\n"
            "In-Reply-To: %(first)s\n"
            "References: %(first)s\n"
            "MIME-Version: 1.0\n") % {
        "addr": addr, "cid": cid, "subject": first.header("Subject"), "date": email.utils.formatdate(),
        "msgid": msgid, "first": first.header("Message-ID").strip()}
    if attachment is None:
        body = ("Content-Type: text/plain; charset=utf-8\n"
                "Content-Transfer-Encoding: 8bit\n"
                "\n%s\n" % text)
    else:
        b64 = base64.encodebytes(attachment).decode("ascii")
        body = ("Content-Type: multipart/mixed; boundary=\"mix-b1\"\n"
                "\n"
                "--mix-b1\n"
                "Content-Type: text/plain; charset=utf-8\n"
                "\n%s\n"
                "--mix-b1\n"
                "Content-Type: application/pdf; name=\"%s\"\n"
                "Content-Disposition: attachment; filename=\"%s\"\n"
                "Content-Transfer-Encoding: base64\n"
                "\n%s"
                "--mix-b1--\n" % (text, filename, filename, b64))
    return _crlf(head + body), msgid


def fake_pdf(size):
    return b"%PDF-1.4\n" + os.urandom(size) + b"\n%%EOF\n"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def inbound(raw, env=None, timeout=60):
    """Pipes one message to offload-inbound; returns (exit status, stderr)."""
    p = subprocess.run([lib.inbound_path(), "-c", lib.env().config], input=raw, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=env)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def last_uid():
    rows = lib.sql("SELECT last_uid FROM mailbox_state")
    return max([int(r[0]) for r in rows] or [0])


def message_ids(mails):
    return [re.sub(r"\s+", "", m.header("Message-ID") or "").strip("<>") for m in mails]
