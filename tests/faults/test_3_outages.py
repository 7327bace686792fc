"""Scenario 3: the servers around the worker go away and come back (issue 6, item 3).

SMTP refusing with 451 (the sink's down-451 mode) and SMTP not running at all (the sink
stopped by pid and started again on the same port); Dovecot stopped (the pass still sends,
logs the IMAP failure, and the mail is read once Dovecot runs again with the same config);
the LLM endpoint not listening (the cases are untouched until the scripted server runs on
that port); the webhook receiver not listening (deliveries retried, then delivered exactly
once per event_id). Every pass must exit 0 with its summary line: the worker never crashes.
Later passes run under faketime past the worker's backoff (30 s, doubling) or the webhook
schedule (5 s, 300 s, ...).
"""
import http.server
import json
import os
import threading
import time

import agentlib as al
import lib
from faultlib import (case_rows, cmdline, free_port, in_list, last_uid, launch, new_cases, park_all, port_open,
                      read_pid, reply, stop_pid, tag, wait_for, worker_drain, worker_ok, write_pid)
from server import AgentServer
from webhook_receiver import Receiver

N = 5


def _events(ids, type_="CASE_CREATED"):
    return lib.sql("SELECT case_id, state, attempts, last_error FROM events WHERE type=%s AND case_id IN (%s)"
                   " ORDER BY case_id" % (lib.sql_str(type_), in_list(ids)))


def _mail_counts(addrs):
    want = {a.lower(): 0 for a in addrs}
    for m in lib.outbox_all():
        for r in m.rcpts:
            if r in want:
                want[r] += 1
    return want


def _waiting(cases, what):
    """Every case CREATED with attemptCount 0 and no mail sent to it."""
    rows = case_rows(cases)
    assert all(v == ("CREATED", 0) for v in rows.values()), "%s: cases moved: %r" % (what, rows)
    sent = {a: n for a, n in _mail_counts(cases.values()).items() if n}
    assert not sent, "%s: mail went out: %r" % (what, sent)


def _proceeded(cases, runs, what):
    rows = case_rows(cases)
    assert all(v == ("RUNNING", 1) for v in rows.values()), "%s: %r\n%s" % (what, rows, lib.worker_stderr(runs))
    counts = _mail_counts(cases.values())
    assert all(n == 1 for n in counts.values()), "%s: messages per address %r" % (what, counts)


def test_smtp_refuses_with_451_then_accepts(ctx):
    park_all()
    cases = new_cases(N, "smtp451-" + tag())
    lib.smtp_set_mode("down-451")
    try:
        r1 = worker_ok()
        _waiting(cases, "after a pass with SMTP answering 451")
        # The backoff (30 s +-20 %) has passed: tried again, refused again.
        r2 = worker_ok(fake="+5m")
        _waiting(cases, "after a second pass with SMTP answering 451")
    finally:
        lib.smtp_set_mode(None)
    ev = _events(cases)
    assert len(ev) == N and all(s == "pending" and a == "2" and "451" in (err or "") for _, s, a, err in ev), \
        "the CASE_CREATED events: %r\n%s" % (ev, r2.tail())
    assert r1.retried == N and r2.retried == N, (r1.tail(), r2.tail())
    runs = worker_drain(fake="+30m")
    _proceeded(cases, runs, "after SMTP accepted again")


def test_smtp_server_stopped_then_restarted(ctx):
    park_all()
    pid = read_pid("smtp.pid")
    argv = cmdline(pid)
    port = int(os.environ["OFFLOAD_SMTP_PORT"])
    i = argv.index("--port")
    argv[i + 1] = str(port)  # the stack lets the kernel choose (0); come back on the same port
    stop_pid(pid, "smtp-sink", timeout=20)
    try:
        assert not port_open(port), "something still listens on the SMTP port %d" % port
        cases = new_cases(N, "smtpdown-" + tag())
        run = worker_ok()
        _waiting(cases, "after a pass with no SMTP server")
        ev = _events(cases)
        assert all(s == "pending" and a == "1" and err for _, s, a, err in ev), "events: %r\n%s" % (ev, run.tail())
    finally:
        new = launch(argv, "smtp-restart.log")
        write_pid("smtp.pid", new)
        wait_for(lambda: port_open(port), 20, "the SMTP sink to listen again on port %d" % port)
    print("    while down: %s" % ev[0][3])
    runs = worker_drain(fake="+30m")
    _proceeded(cases, runs, "after the SMTP server came back")


def _deliver_to_maildir(raw):
    """Delivers one message into the stack's maildir the way an MTA's local delivery does
    (tmp/, then a rename into new/), owned by the mail user."""
    md = os.environ["OFFLOAD_MAILDIR"]
    st = os.stat(md)
    name = "%d.M%dP%d.faults" % (int(time.time()), int(time.time() * 1e6) % 1000000, os.getpid())
    tmp = os.path.join(md, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(raw)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.rename(tmp, os.path.join(md, "new", name))


def _imap_ok():
    try:
        lib.imap_uids()
        return True
    except AssertionError:
        return False


def test_imap_server_down_then_back(ctx):
    park_all()
    # Two cases with their first message out; their counterparties will reply.
    waiting = new_cases(2, "imapdown-" + tag())
    worker_drain()
    assert all(v == ("RUNNING", 1) for v in case_rows(waiting).values()), case_rows(waiting)
    (ca, addr_a), (cb, addr_b) = sorted(waiting.items())
    raw_a, mid_a = reply(lib.outbox_to(addr_a)[0], addr_a, ca, "Reply A, appended before the outage.")
    raw_b, mid_b = reply(lib.outbox_to(addr_b)[0], addr_b, cb, "Reply B, delivered during the outage.")
    lib.imap_append(raw_a)
    uid0 = last_uid()

    pid = read_pid("dovecot.pid")
    argv = cmdline(pid)
    port = int(os.environ["OFFLOAD_IMAP_PORT"])
    stop_pid(pid, "dovecot", timeout=30)
    try:
        wait_for(lambda: not port_open(port), 10, "the IMAP port to close")
        _deliver_to_maildir(raw_b)
        fresh = new_cases(2, "imapdown-out-" + tag())
        runs = [worker_ok(), worker_ok(fake="+1m")]
        text = "\n".join(r.stderr for r in runs)
        assert "IMAP poll stopped" in text, "the IMAP failure was not logged:\n%s" % lib.worker_stderr(runs)
        _proceeded(fresh, runs, "outbound while IMAP is down")
        assert last_uid() == uid0, "the last UID moved while IMAP was down: %d -> %d" % (uid0, last_uid())
        assert all(v == ("RUNNING", 1) for v in case_rows(waiting).values()), case_rows(waiting)
        n = lib.sql_one("SELECT COUNT(*) FROM messages WHERE direction='inbound' AND case_id IN (%s)" %
                        in_list(waiting))
        assert n == "0", "%s inbound rows while IMAP was down" % n
    finally:
        new = launch(argv, "dovecot-restart.log")
        write_pid("dovecot.pid", new)
        wait_for(_imap_ok, 30, "Dovecot to accept the IMAP login again")
    print("    while down: %s" % [l for l in text.splitlines() if "IMAP poll stopped" in l][0][:200])
    runs = worker_drain(fake="+2m")
    rows = case_rows(waiting)
    assert all(v == ("INPUT_NEEDED", 1) for v in rows.values()), "%r\n%s" % (rows, lib.worker_stderr(runs))
    got = sorted(r[0].strip("<>") for r in lib.sql(
        "SELECT message_id FROM messages WHERE direction='inbound' AND case_id IN (%s)" % in_list(waiting)))
    assert got == sorted([mid_a, mid_b]), "inbound rows %r, want %r" % (got, sorted([mid_a, mid_b]))
    assert last_uid() >= uid0 + 1, "the last UID did not move after Dovecot came back"


class _Endpoint:
    """What agentlib.worker_env needs of a server: its URL."""

    def __init__(self, port):
        self.url = "http://127.0.0.1:%d/v1" % port


def test_llm_endpoint_down_then_up(ctx):
    park_all()
    port = free_port()
    marker = al.new_marker()
    script = al.script(marker, draft=[], after={"draft_message": {"content": al.OUTREACH}})
    cases = {}
    for i in range(3):
        addr = "llmdown-%s-%d@example.com" % (tag(), i)
        cases[lib.create_case(al.case_body(marker, addr))] = addr
    before = {cid: lib.get_case(cid) for cid in cases}
    down = _Endpoint(port)
    runs = [worker_ok(env=al.worker_env(down)), worker_ok(fake="+5m", env=al.worker_env(down))]
    for cid, b in before.items():
        c = lib.get_case(cid)
        for k in ("status", "attemptCount", "updatedAt", "nextActionAt"):
            assert c[k] == b[k], "case %s: %s changed while the LLM was down: %r -> %r" % (cid, k, b[k], c[k])
    _waiting(cases, "while the LLM endpoint is down")
    ev = _events(cases)
    assert all(s == "pending" and a == "2" and "could not be reached" in (err or "") for _, s, a, err in ev), \
        "events: %r\n%s" % (ev, lib.worker_stderr(runs))
    outcomes = set(r["outcome"] for cid in cases for r in al.calls(cid))
    assert outcomes == {"connection_error"}, "agent_calls outcomes %r" % outcomes
    with AgentServer(script, port=port) as srv:
        runs = worker_drain(fake="+30m", env=al.worker_env(srv))
        al.no_violations(srv)
        _proceeded(cases, runs, "after the LLM endpoint came up")
        subjects = set(m.header("Subject") for m in lib.outbox_all() if m.rcpts and m.rcpts[0] in cases.values())
        assert subjects == {al.OUTREACH["subject"]}, "subjects %r" % subjects
        assert len(srv.own("draft_message")) == len(cases), "draft requests: %d" % len(srv.own("draft_message"))


def _receiver_on(port, secrets):
    """A tests/e2e webhook_receiver.Receiver listening on the given port."""
    rx = Receiver(secrets=secrets)
    handler = rx._server.RequestHandlerClass
    rx._server.server_close()
    rx._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    rx._server.daemon_threads = True
    rx.port = port
    rx._thread = threading.Thread(target=rx._server.serve_forever, daemon=True)
    return rx


def _deliveries(ids):
    return {r[0]: r[1:] for r in lib.sql(
        "SELECT event_id, state, attempts, last_error, body FROM webhook_deliveries WHERE case_id IN (%s)"
        % in_list(ids))}


def test_webhook_receiver_down_then_back(ctx):
    park_all()
    port = free_port()
    url = "http://127.0.0.1:%d/hook" % port
    # The sink refuses reject...@ with 550: each case fails (REJECTED) and emits case.failed.
    cases = new_cases(3, "reject-hook-" + tag(), clientWebhookUrl=url)
    runs = [worker_ok(), worker_ok(fake="+1m")]
    rows = case_rows(cases)
    assert all(v[0] == "FAILED" for v in rows.values()), "%r\n%s" % (rows, lib.worker_stderr(runs))
    d = _deliveries(cases)
    assert len(d) == len(cases), "want one delivery per case: %r" % d
    assert all(s == "pending" and a == "2" and err for s, a, err, _ in d.values()), \
        "deliveries while the receiver is down: %r" % {k: v[:3] for k, v in d.items()}
    print("    while down: %s" % list(d.values())[0][2][:200])
    secret = os.environ["OFFLOAD_WEBHOOK_SECRET"]
    with _receiver_on(port, [secret]) as rx:
        runs = [worker_ok(fake="+2h"), worker_ok(fake="+1d"), worker_ok(fake="+3d")]
        got = rx.received()
        d = _deliveries(cases)
        assert all(v[0] == "delivered" and v[1] == "3" for v in d.values()), \
            "deliveries after the receiver came back: %r\n%s" % ({k: v[:3] for k, v in d.items()},
                                                                 lib.worker_stderr(runs))
        by_id = {}
        for r in got:
            by_id.setdefault(r.webhook_id, []).append(r)
        assert sorted(by_id) == sorted(d), "event ids received %r, stored %r" % (sorted(by_id), sorted(d))
        for eid, reqs in by_id.items():
            assert len(reqs) == 1, "event %s received %d times" % (eid, len(reqs))
            r = reqs[0]
            assert r.verified and r.status == 200 and r.answered, "event %s: %r" % (eid, r)
            assert r.body == d[eid][3].encode("utf-8"), "event %s: the body differs from the stored one" % eid
            assert json.loads(r.body)["data"]["status"] == "FAILED"
