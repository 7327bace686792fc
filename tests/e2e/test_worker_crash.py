"""kill -9 of offload-worker in the middle of a pass; the next passes finish the work
(doc/operator-guide.md, "The worker timer"; issue 3 item 9).

The design records each outbound message (with its Message-ID) before the SMTP transaction and
re-sends that same message when the event comes back after the lease. So a kill can cost a
duplicate only for a message the SMTP server had already stored when the worker died, and the
duplicate carries the same Message-ID. The SMTP sink's modes make the kill land where wanted:
  slow-MS  the sink waits before storing: a kill during the wait leaves nothing stored;
  hold-MS  the sink stores, then waits before answering 250: a kill during the wait leaves a
           message the worker never saw accepted (the window the design cannot close).
"""
import collections
import sys
import time

from lib import (config_value, create_case, get_case, minimal_case_body, outbox_all, outbox_last, outbox_since, poll,
                 smtp_set_mode, sql,
                 unique_address, worker_drain, worker_finish, worker_ready, worker_start, worker_stderr)

N = 50


def _mine(addrs):
    mine = set(a.lower() for a in addrs.values())
    by_addr = collections.defaultdict(list)
    for m in outbox_all():
        for r in m.rcpts:
            if r in mine:
                by_addr[r].append(m)
    return by_addr


def _crash(ctx, tag, mode, kill_delay=0.0):
    """Creates N cases, runs a worker with the sink in mode, kills it with SIGKILL kill_delay
    seconds after 5 of the messages are stored, then passes at +6 min (past the 300 s lease)
    until every case is RUNNING. Returns a summary dict; asserts what holds in every mode."""
    worker_ready(ctx)
    prefix = unique_address(tag).split("@")[0]
    addrs = {}
    for i in range(N):
        addr = "%s-%02d@example.com" % (prefix, i)
        b = minimal_case_body()
        b["counterparty"] = {"address": addr, "name": "Maya Chen"}
        addrs[create_case(b)] = addr
    in_list = ",".join("'%s'" % c for c in addrs)
    concurrency = int(config_value("worker", "concurrency") or "4")

    smtp_set_mode(mode)
    try:
        last = outbox_last()
        p, errf = worker_start()
        try:
            # A cheap poll (a directory listing): at full speed the pass takes a few 100 ms.
            poll(lambda: outbox_since(last) >= 5 or p.poll() is not None, 60, interval=0.002,
                 what="5 messages in the outbox")
            if kill_delay:
                # Positions the kill inside the sink's delay (the threads send in step).
                deadline = time.monotonic() + kill_delay
                poll(lambda: time.monotonic() >= deadline or p.poll() is not None, kill_delay + 5,
                     interval=0.005, what="the kill time")
        finally:
            p.kill()  # SIGKILL
        killed = worker_finish(p, errf)
    finally:
        smtp_set_mode(None)
    stored_at_kill = sum(len(v) for v in _mine(addrs).values())
    assert killed.rc == -9, "the worker was not killed mid-pass (it exited %d after %d messages):\n%s" % (
        killed.rc, stored_at_kill, killed.tail())
    assert stored_at_kill < N, "the kill came after the whole pass (%d messages)" % stored_at_kill
    # What the worker had recorded but not seen accepted when it died: the in-flight cases.
    in_flight = set(r[0] for r in sql(
        "SELECT case_id FROM messages WHERE direction='outbound' AND send_state='sending' AND case_id IN (%s)"
        % in_list))
    running_at_kill = int(sql("SELECT COUNT(*) FROM cases WHERE status='RUNNING' AND id IN (%s)" % in_list)[0][0])

    runs = []
    for _ in range(5):
        runs += worker_drain(fake="+6m")
        left = sql("SELECT COUNT(*) FROM cases WHERE status<>'RUNNING' AND id IN (%s)" % in_list)[0][0]
        if left == "0":
            break

    by_addr = _mine(addrs)
    problems, dup_cases, other_dups = [], [], []
    for cid, addr in sorted(addrs.items()):
        got = by_addr.get(addr.lower(), [])
        c = get_case(cid)
        if c["status"] != "RUNNING" or c["attemptCount"] != 1:
            problems.append("%s: %s, attemptCount %r, %d messages" % (cid, c["status"], c["attemptCount"],
                                                                      len(got)))
        if len(got) == 0:
            problems.append("%s: no message" % cid)
        elif len(got) == 2:
            dup_cases.append(cid)
            ids = [m.header("Message-ID") for m in got]
            if ids[0] != ids[1]:
                problems.append("%s: the duplicate has another Message-ID (%r): the recorded message was "
                                "not reused" % (cid, ids))
            if cid not in in_flight:
                other_dups.append(cid)
        elif len(got) > 2:
            problems.append("%s: %d messages" % (cid, len(got)))
    rows = sql("SELECT case_id, COUNT(*), SUM(send_state='sent') FROM messages WHERE direction='outbound'"
               " AND case_id IN (%s) GROUP BY case_id" % in_list)
    bad_rows = [r for r in rows if r[1] != "1" or r[2] != "1"]
    summary = {"mode": mode, "stored_at_kill": stored_at_kill, "running_at_kill": running_at_kill,
               "in_flight": len(in_flight), "duplicates": len(dup_cases), "concurrency": concurrency}
    print("    crash (%s): killed after %d of %d messages stored (%d cases committed RUNNING), %d in flight; "
          "duplicates afterwards: %d" % (mode, stored_at_kill, N, running_at_kill, len(in_flight),
                                          len(dup_cases)))
    sys.stdout.flush()
    assert not problems, "after the crash and %d passes:\n%s\nworker stderr (last passes):\n%s" % (
        len(runs), "\n".join(problems[:20]), worker_stderr(runs))
    assert not other_dups, "duplicates for cases that were not in flight at the kill: %r" % other_dups
    assert len(dup_cases) <= concurrency, "%d duplicates with %d threads" % (len(dup_cases), concurrency)
    assert len(rows) == N and not bad_rows, "outbound rows per case (want one, sent): %r" % bad_rows[:10]
    return summary


def test_worker_crash_before_the_server_accepts(ctx):
    """Killed while the server still holds the data unanswered (between recording the message
    and the end of the SMTP transaction): the retry sends each message exactly once."""
    # The threads send in step: 5 stored means a round just ended; 150 ms later the commits of
    # that round are done and the next round sits in the sink's 300 ms wait.
    s = _crash(ctx, "crash-slow", "slow-300", kill_delay=0.15)
    assert s["in_flight"] >= 1, "no message was in flight at the kill: %r" % s
    assert s["duplicates"] == 0, "duplicates although no message had been accepted at the kill: %r" % s


def test_worker_crash_after_the_server_stored(ctx):
    """Killed after the server stored the message but before the 250 reached the worker: the
    retry sends the same message again (same Message-ID), at most once per case in flight."""
    s = _crash(ctx, "crash-hold", "hold-400")
    assert s["in_flight"] >= 1, "no message was in flight at the kill: %r" % s


def test_worker_crash_at_full_speed(ctx):
    """Killed at an arbitrary point of a fast pass (no sink delay): whatever the kill hits, every
    case ends RUNNING once, with at most one duplicate per case in flight."""
    _crash(ctx, "crash-fast", None)
