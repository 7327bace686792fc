"""Scenario 2: offload-worker killed with SIGKILL at random points over many passes.

N cases (maxAttempts 5, followUpDelayHours 1) are worked over ROUNDS rounds of simulated time
(faketime): round r starts at +r*2h, so every case owes exactly one message per round (the
outreach, then one follow-up per round). In each round KILLS passes are SIGKILLed at a random
point: a random delay after the start (start-up, the IMAP poll, the claim), or once a random
number of messages, up to half of what the round still owes, has reached the SMTP sink, plus
up to 20 ms. The sink answers normally, or stores and then holds the 250 for 20 ms, or waits
20 ms before storing. Each pass runs 6 minutes of simulated time after the previous one, so
the killed pass's 300 s leases have expired; passes without a kill then finish the round.
After round 0, REPLIES of the counterparties reply into the IMAP mailbox, so the IMAP poll
and the ingest get killed too (those cases go to INPUT_NEEDED with the manual agent and owe
nothing more). The worker is started without the faketime wrapper (libfaketime preloaded
directly): the wrapper forks, and a SIGKILL to it would leave the worker running.

Asserted: no case lost or stuck: every case ends RUNNING with attemptCount == ROUNDS (the
replied ones INPUT_NEEDED with attemptCount 1, one inbound row, one REPLY_RECEIVED event and
one PENDING input request); each case has exactly one outbound row per message, all sent;
its events are all done; the SMTP sink got exactly the recorded Message-IDs (no message with
a new Message-ID). A Message-ID stored k times is k-1 duplicates: each of those copies was
stored during a pass that was then killed and was in flight (send_state 'sending') right
after that kill, i.e. in the window between the SMTP server's acceptance and the worker's
commit; at most [worker] concurrency of them per kill (one per thread).

FAULTS_SEED=N repeats a run's random choices (the seed is printed).
"""
import collections
import os
import random
import sys
import time

import lib
from faultlib import (case_rows, in_list, last_uid, message_ids, new_cases, park_all, reply, tag, worker_drain,
                      worker_start_direct)

N = 100
ROUNDS = 4
KILLS = 5
REPLIES = 20
ROUND_S = 2 * 3600
STEP_S = 360          # past the 300 s lease of the stack's config
SETTLE_S = 0.2        # after a kill, for the sink to finish what it was receiving


def _fake(offset_s):
    return "+%ds" % offset_s if offset_s else None


def _in_flight(ids):
    """The Message-IDs of outbound messages recorded but not known to be sent."""
    return set(r[0].strip("<>") for r in lib.sql(
        "SELECT message_id FROM messages WHERE direction='outbound' AND send_state='sending'"
        " AND case_id IN (%s)" % in_list(ids)))


def _mine(addrs):
    """The sink's messages to these addresses: {address: [OutMail]}."""
    want = set(a.lower() for a in addrs)
    out = collections.defaultdict(list)
    for m in lib.outbox_all():
        for r in m.rcpts:
            if r in want:
                out[r].append(m)
    return out


def _killed_pass(offset_s, rng, remaining):
    """Starts a pass at offset_s with the sink in a random mode and SIGKILLs it at a random
    point. Returns (how, killed, {mode, start_ms, kill_ms})."""
    mode = rng.choice([None, None, "hold-20", "slow-20"])
    lib.smtp_set_mode(mode)
    pass_base = lib.outbox_last()
    t_start = time.time()
    p, errf = worker_start_direct(offset_s)
    try:
        if remaining >= 2 and rng.random() >= 0.25:
            target = rng.randint(1, max(1, remaining // 2))
            jitter = rng.uniform(0.0, 0.02)
            how = "after %d of %d messages +%.0f ms" % (target, remaining, jitter * 1000)
            deadline = time.monotonic() + 60
            while lib.outbox_since(pass_base) < target and p.poll() is None:
                assert time.monotonic() < deadline, "the pass sent fewer than %d messages in 60 s" % target
                time.sleep(0.002)
        else:
            jitter = rng.uniform(0.0, 0.15)
            how = "after %.0f ms" % (jitter * 1000)
        end = time.monotonic() + jitter
        while time.monotonic() < end and p.poll() is None:
            time.sleep(0.001)
    finally:
        if p.poll() is None:
            p.kill()
        t_kill = time.time()
        lib.smtp_set_mode(None)
    run = lib.worker_finish(p, errf)
    if run.rc not in (0, -9):
        raise AssertionError("a pass exited %d before its kill:\n%s" % (run.rc, run.tail()))
    return "%s (sink %s)" % (how, mode or "normal"), run.rc == -9, {
        "mode": mode or "normal", "start_ms": t_start * 1000, "kill_ms": t_kill * 1000}


def test_worker_killed_at_random_points(ctx):
    seed = int(os.environ.get("FAULTS_SEED") or random.SystemRandom().randrange(1 << 30))
    rng = random.Random(seed)
    print("    seed %d (FAULTS_SEED=%d repeats the random choices; where a kill lands still varies with "
          "timing)" % (seed, seed))
    sys.stdout.flush()
    park_all()
    concurrency = int(lib.config_value("worker", "concurrency") or "4")
    cases = new_cases(N, "kill-" + tag(), maxAttempts=5, followUpDelayHours=1)
    ids = list(cases)
    replied = set(rng.sample(ids, REPLIES))
    reply_ids = {}
    kill_log = []         # per kill: mode, start_ms, kill_ms, in_flight (Message-IDs just after it)
    kills = 0
    completed = 0
    log = []
    t0 = time.monotonic()

    for r in range(ROUNDS):
        base = r * ROUND_S
        round_base = lib.outbox_last()
        owed = N if r == 0 else N - REPLIES
        for k in range(KILLS):
            # The messages the round still owes (duplicates make this an underestimate).
            sent = lib.outbox_since(round_base)
            how, killed, info = _killed_pass(base + k * STEP_S, rng, max(0, owed - sent))
            if killed:
                kills += 1
                # Whatever the sink was still receiving when the connection died is either
                # stored by now or never will be.
                time.sleep(SETTLE_S)
                info["in_flight"] = _in_flight(ids)
                kill_log.append(info)
            else:
                completed += 1
            log.append("round %d pass %d (+%ds): %s, %s" % (r, k, base + k * STEP_S, how,
                                                           "killed" if killed else "finished first"))
        # Leases of the last killed pass have expired 6 minutes later; finish the round.
        runs = worker_drain(fake=_fake(base + KILLS * STEP_S))
        if r == 0:
            # Replies from REPLIES counterparties, read over IMAP at the start of the next
            # round's (killed) passes.
            by_addr = _mine(cases[c] for c in replied)
            for cid in sorted(replied):
                mails = by_addr[cases[cid].lower()]
                assert mails, "case %s has no first message after round 0:\n%s" % (cid, lib.worker_stderr(runs))
                raw, msgid = reply(mails[0], cases[cid], cid, "I will look for the form, please wait.")
                lib.imap_append(raw)
                reply_ids[cid] = msgid
    took = time.monotonic() - t0

    # The cases.
    rows = case_rows(ids)
    problems = []
    for cid in ids:
        want = ("INPUT_NEEDED", 1) if cid in replied else ("RUNNING", ROUNDS)
        if rows.get(cid) != want:
            problems.append("%s: %r, want %r" % (cid, rows.get(cid), want))
    out_rows = collections.defaultdict(list)
    for cid, mid, state in lib.sql("SELECT case_id, message_id, send_state FROM messages WHERE direction="
                                   "'outbound' AND case_id IN (%s)" % in_list(ids)):
        out_rows[cid].append((mid.strip("<>"), state))
    for cid in ids:
        want = 1 if cid in replied else ROUNDS
        got = out_rows.get(cid, [])
        if len(got) != want or any(s != "sent" for _, s in got):
            problems.append("%s: outbound rows %r, want %d sent" % (cid, got, want))
    ev = lib.sql("SELECT state, COUNT(*) FROM events WHERE case_id IN (%s) GROUP BY state" % in_list(ids))
    if any(s != "done" for s, _ in ev):
        problems.append("events not done: %r" % ev)
    inbound = collections.Counter(r[0] for r in lib.sql(
        "SELECT case_id FROM messages WHERE direction='inbound' AND case_id IN (%s)" % in_list(ids)))
    replies_ev = collections.Counter(r[0] for r in lib.sql(
        "SELECT case_id FROM events WHERE type='REPLY_RECEIVED' AND case_id IN (%s)" % in_list(ids)))
    requests = collections.Counter(r[0] for r in lib.sql(
        "SELECT case_id FROM input_requests WHERE status='PENDING' AND case_id IN (%s)" % in_list(ids)))
    for cid in replied:
        if (inbound[cid], replies_ev[cid], requests[cid]) != (1, 1, 1):
            problems.append("%s (replied): %d inbound rows, %d REPLY_RECEIVED, %d pending input requests" % (
                cid, inbound[cid], replies_ev[cid], requests[cid]))
    stray = set(inbound) - replied
    if stray:
        problems.append("inbound rows for cases that got no reply: %r" % sorted(stray)[:5])

    # The sink: exactly the recorded Message-IDs. A Message-ID sent k times left k-1 copies
    # the worker never saw committed: each must have been stored during a pass that was then
    # killed, and be among the messages in flight (send_state 'sending') right after that kill.
    by_addr = _mine(cases.values())
    duplicates = []
    outside = []
    per_kill = collections.Counter()
    for cid, addr in cases.items():
        mails = by_addr.get(addr.lower(), [])
        got = collections.defaultdict(list)
        for mid, m in zip(message_ids(mails), mails):
            got[mid].append(m)
        recorded = set(m for m, _ in out_rows.get(cid, []))
        if set(got) != recorded:
            problems.append("%s: the sink got Message-IDs %r, the database recorded %r" % (
                cid, sorted(got), sorted(recorded)))
        for mid, copies in got.items():
            copies.sort(key=lambda m: (m.meta["received_at"], m.n))
            for m in copies[:-1]:
                duplicates.append((cid, mid))
                at = m.meta["received_at"]
                k = [i for i, kl in enumerate(kill_log)
                     if kl["start_ms"] <= at <= kl["kill_ms"] + SETTLE_S * 1000 and mid in kl["in_flight"]]
                if k:
                    per_kill[k[0]] += 1
                else:
                    outside.append((cid, mid, m.n))
    in_flight_total = sum(len(kl["in_flight"]) for kl in kill_log)
    summary = ("%d passes killed, %d finished before their kill, %d rounds of %d cases in %.0f s; "
               "%d duplicates (same Message-ID), %d messages in flight summed over the kills, "
               "most duplicates after one kill: %d" % (
                   kills, completed, ROUNDS, N, took, len(duplicates), in_flight_total,
                   max(per_kill.values() or [0])))
    print("    " + summary)
    by_mode = collections.Counter(kl["mode"] for kl in kill_log)
    dup_mode = collections.Counter()
    for k, n in per_kill.items():
        dup_mode[kill_log[k]["mode"]] += n
    print("    duplicates by the sink's mode at the kill: %s" % ", ".join(
        "%s %d after %d kills" % (m, dup_mode[m], by_mode[m]) for m in sorted(by_mode)))
    print("    IMAP last UID %d; %d replies" % (last_uid(), len(reply_ids)))
    sys.stdout.flush()
    for line in log:
        print("    " + line)
    assert not problems, "%d problems:\n%s" % (len(problems), "\n".join(problems[:20]))
    assert not outside, "duplicate copies (case, Message-ID, sink file number) stored outside a killed " \
        "pass or not in flight after its kill: %r" % outside[:10]
    assert max(per_kill.values() or [0]) <= concurrency, "more duplicates after one kill than threads: %r" % per_kill
    assert kills >= ROUNDS * KILLS // 2, "only %d of %d passes were killed mid-pass" % (kills, ROUNDS * KILLS)
    return "%d kills, %d duplicates (all in the acceptance-to-commit window)" % (kills, len(duplicates))
