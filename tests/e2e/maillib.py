"""maillib.py: helpers for the mail-trust tests: the signed bounce address (src/mail/verp.c)
computed independently in Python, and extra SMTP sinks (one that records AUTH attempts)."""
import hashlib
import hmac
import os
import re
import subprocess
import tempfile
import time

from lib import env, sql_one

BOUNCE_RE = re.compile(r"^bounces\+([0-9a-f]{32})\.([0-9a-f]{16})@offload\.test$")


def bounce_tag_key():
    return bytes.fromhex(sql_one("SELECT HEX(value) FROM settings WHERE name='bounce_tag_key'"))


def bounce_address(case_id, message_id, local="bounces", domain="offload.test"):
    """The envelope sender the worker must use for message_id (no <>) of case_id."""
    data = ("offload-bounce-tag-v1\n%s\n%s" % (case_id, message_id)).encode()
    mac = hmac.new(bounce_tag_key(), data, hashlib.sha256).hexdigest()[:16]
    return "%s+%s.%s@%s" % (local, case_id.replace("-", ""), mac, domain)


class Sink:
    """Another tests/stack/smtp-sink.py, on a free loopback port in its own directory (e.g. a
    client's own SMTP server). With auth_log, it announces AUTH without STARTTLS and records
    every AUTH it sees in self.auth_log."""

    def __init__(self, prefix="sink.", auth_log=False, what="the extra SMTP sink"):
        self.dir = tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("TMPDIR", "/tmp"))
        self.outbox = os.path.join(self.dir, "outbox")
        self.auth_log = os.path.join(self.dir, "auth.log") if auth_log else None
        port_file = os.path.join(self.dir, "port")
        script = os.path.join(env().src or os.path.join(os.path.dirname(__file__), "..", ".."),
                              "tests", "stack", "smtp-sink.py")
        args = ["/usr/bin/python3", script, "--outbox", self.outbox, "--port", "0",
                "--port-file", port_file, "--log", os.path.join(self.dir, "sink.log")]
        if self.auth_log:
            args += ["--auth-log", self.auth_log]
        self.log = open(os.path.join(self.dir, "sink.out"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    self.port = int(f.read().strip())
                self.url = "smtp://127.0.0.1:%d" % self.port
                return
            assert self.proc.poll() is None, "%s exited %r" % (what, self.proc.returncode)
            time.sleep(0.05)
        self.stop()
        raise AssertionError("%s did not start within 20 s" % what)

    def stored(self):
        return sorted(n for n in os.listdir(self.outbox) if n.endswith(".eml")) if os.path.isdir(self.outbox) else []

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class AuthSink(Sink):
    """A Sink that announces AUTH without STARTTLS and records every AUTH it sees."""

    def __init__(self):
        super().__init__("authsink.", auth_log=True, what="the AUTH-recording sink")

    def auth_lines(self):
        with open(self.auth_log, encoding="utf-8") as f:
            return [line for line in f if line.strip()]
