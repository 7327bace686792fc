"""offload-worker: due follow-ups become events even when more are due than [worker]
follow_up_batch and the oldest ones cannot be sent (doc/api.md, "Lifecycle"; issue 10 item 4).

The follow-up scan reads at most follow_up_batch due cases per call. A case whose FOLLOW_UP_DUE
event is already pending (here: waiting for a retry because the SMTP server answers 451) must
not take a place in that batch again, or the oldest such cases would fill every read and the
cases due after them would never get their follow-up.
"""
import os

from lib import (SENTINEL, create_case, minimal_case_body, smtp_set_mode, sql, unique_address, worker_drain,
                 worker_pass, worker_ready, worker_stderr)

N = 6
BATCH = 2


def test_worker_follow_up_backlog_larger_than_the_batch(ctx):
    worker_ready(ctx)
    tag = unique_address("fub").split("@")[0]
    ids = []
    for i in range(N):
        b = minimal_case_body()
        b["counterparty"] = {"address": "%s-%d@example.com" % (tag, i), "name": "Maya Chen"}
        ids.append(create_case(b))
    worker_drain()
    in_list = ",".join("'%s'" % c for c in ids)
    running = sql("SELECT COUNT(*) FROM cases WHERE status = 'RUNNING' AND id IN (%s)" % in_list)[0][0]
    assert running == str(N), "after the outreach: %s of %d RUNNING" % (running, N)
    # Due long ago, in this order, before anything else in the database.
    for i, cid in enumerate(ids):
        sql("UPDATE cases SET next_action_at = %d WHERE id = '%s'" % (1000 + i, cid))

    old_batch = os.environ.get("OFFLOAD_WORKER_FOLLOW_UP_BATCH")
    os.environ["OFFLOAD_WORKER_FOLLOW_UP_BATCH"] = str(BATCH)
    smtp_set_mode("down-451")
    runs = []
    try:
        # Each pass turns BATCH due cases into events; their sends fail with 451, so their
        # events wait for a retry and the cases stay due.
        for _ in range(N // BATCH):
            runs.append(worker_pass())
        rows = sql("SELECT case_id, COUNT(*), SUM(state = 'pending') FROM events"
                   " WHERE type = 'FOLLOW_UP_DUE' AND case_id IN (%s) GROUP BY case_id" % in_list)
        per_case = {r[0]: (int(r[1]), int(r[2])) for r in rows}
        missing = [i for i, c in enumerate(ids) if c not in per_case]
        doubled = [i for i, c in enumerate(ids) if per_case.get(c, (0, 0))[0] > 1]
        assert not missing and not doubled, \
            "after %d passes with follow_up_batch %d: cases without a FOLLOW_UP_DUE event (by age): %r, " \
            "with more than one: %r\nworker stderr:\n%s" % (len(runs), BATCH, missing, doubled,
                                                            worker_stderr(runs))
        attempts = sql("SELECT COUNT(*) FROM messages WHERE direction = 'outbound' AND kind = 'follow_up'"
                       " AND case_id IN (%s) AND send_state = 'sending' AND send_error LIKE '%%451 %%'"
                       % in_list)[0][0]
        assert attempts == str(N), "follow-ups tried and refused with 451: %s of %d" % (attempts, N)
    finally:
        smtp_set_mode(None)
        if old_batch is None:
            del os.environ["OFFLOAD_WORKER_FOLLOW_UP_BATCH"]
        else:
            os.environ["OFFLOAD_WORKER_FOLLOW_UP_BATCH"] = old_batch
        # Nothing of this test is left due for the tests after it.
        sql("UPDATE events SET state = 'done', lease_owner = NULL, lease_until = NULL"
            " WHERE case_id IN (%s) AND state = 'pending'" % in_list)
        sql("UPDATE cases SET next_action_at = %d, lease_owner = NULL, lease_until = NULL"
            " WHERE id IN (%s)" % (SENTINEL, in_list))
