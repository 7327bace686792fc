"""maillib.py: helpers for the mail-trust tests: the signed bounce address (src/mail/verp.c)
computed independently in Python, and a second SMTP sink that records AUTH attempts."""
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


class AuthSink:
    """tests/stack/smtp-sink.py --auth-log on a free loopback port: announces AUTH without
    STARTTLS and records every AUTH it sees."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="authsink.", dir=os.environ.get("TMPDIR", "/tmp"))
        self.auth_log = os.path.join(self.dir, "auth.log")
        self.outbox = os.path.join(self.dir, "outbox")
        port_file = os.path.join(self.dir, "port")
        script = os.path.join(env().src or os.path.join(os.path.dirname(__file__), "..", ".."),
                              "tests", "stack", "smtp-sink.py")
        self.log = open(os.path.join(self.dir, "sink.log"), "wb")
        self.proc = subprocess.Popen(["/usr/bin/python3", script, "--outbox", self.outbox, "--port", "0",
                                      "--port-file", port_file, "--auth-log", self.auth_log,
                                      "--log", os.path.join(self.dir, "sink.log")],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    self.port = int(f.read().strip())
                return
            assert self.proc.poll() is None, "the AUTH-recording sink exited %r" % self.proc.returncode
            time.sleep(0.05)
        self.stop()
        raise AssertionError("the AUTH-recording sink did not start within 20 s")

    def auth_lines(self):
        with open(self.auth_log, encoding="utf-8") as f:
            return [line for line in f if line.strip()]

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
