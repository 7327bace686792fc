"""Two offload-worker processes at once over 200 due cases: each case is advanced exactly once
(doc/operator-guide.md, "The worker timer"; issue 3 item 10)."""
import collections
import re
import sys

from lib import (create_case, get_case, minimal_case_body, outbox_all, outbox_count, sql, unique_address,
                 worker_finish, worker_ready, worker_start)

N = 200


def test_worker_two_workers_at_once(ctx):
    worker_ready(ctx)
    tag = unique_address("cc").split("@")[0]
    addrs = {}
    for i in range(N):
        addr = "%s-%03d@example.com" % (tag, i)
        b = minimal_case_body()
        b["counterparty"] = {"address": addr, "name": "Maya Chen %d" % i}
        addrs[create_case(b)] = addr
    before = outbox_count()

    procs = [worker_start(), worker_start()]
    runs = [worker_finish(p, f) for p, f in procs]
    for i, r in enumerate(runs):
        assert r.rc == 0 and r.events is not None, "worker %d: exit %d\n%s" % (i + 1, r.rc, r.tail())
    print("    workers: %s" % ", ".join("%d events / %d sent" % (r.events, r.sent) for r in runs))
    sys.stdout.flush()

    mine = set(a.lower() for a in addrs.values())
    by_addr = collections.defaultdict(list)
    for m in outbox_all():
        for r in m.rcpts:
            if r in mine:
                by_addr[r].append(m)
    total = sum(len(v) for v in by_addr.values())
    problems = []
    for cid, addr in sorted(addrs.items()):
        got = by_addr.get(addr.lower(), [])
        if len(got) != 1:
            problems.append("%s (%s): %d messages" % (cid, addr, len(got)))
            continue
        if got[0].header("X-Offload-Case") != cid:
            problems.append("%s: X-Offload-Case %r" % (cid, got[0].header("X-Offload-Case")))
        c = get_case(cid)
        if c["status"] != "RUNNING" or c["attemptCount"] != 1:
            problems.append("%s: %s, attemptCount %r" % (cid, c["status"], c["attemptCount"]))
    ids = [m.header("Message-ID") for v in by_addr.values() for m in v]
    dups = [k for k, n in collections.Counter(ids).items() if n > 1]
    assert total == N and not problems and not dups, \
        "%d messages for %d cases (outbox grew by %d); problems:\n%s\nMessage-IDs sent twice: %r\n" \
        "worker 1:\n%s\nworker 2:\n%s" % (total, N, outbox_count() - before, "\n".join(problems[:20]), dups[:10],
                                           runs[0].tail(15), runs[1].tail(15))
    for mid in ids:
        assert re.match(r"^<[0-9a-f-]{36}\.1\.", mid or ""), "Message-ID %r" % mid

    # The database agrees: one outbound row per case, sent; every CASE_CREATED event done once.
    in_list = ",".join("'%s'" % c for c in addrs)
    rows = sql("SELECT case_id, COUNT(*), SUM(send_state='sent') FROM messages WHERE direction='outbound'"
               " AND case_id IN (%s) GROUP BY case_id" % in_list)
    bad = [r for r in rows if r[1] != "1" or r[2] != "1"]
    assert len(rows) == N and not bad, "outbound rows per case: %d cases, odd: %r" % (len(rows), bad[:10])
    ev = sql("SELECT state, COUNT(*) FROM events WHERE type='CASE_CREATED' AND case_id IN (%s) GROUP BY state"
             % in_list)
    assert ev == [["done", str(N)]], "CASE_CREATED events by state: %r" % ev
