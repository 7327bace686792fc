"""Retention and erasure (doc/operator-guide.md "Retention and erasure"): offloadctl case delete
erases a case from the database and the files directory, an open case sends nothing more, the
usage of deleted cases still counts against the cap, and the worker purges old finished cases
in bounded batches ([retention] finished_days), counted on /metrics.

The search for what remains is the one an auditor would run: a mysqldump of the stack's whole
database and a byte search of every file under the files directory (raw mail included).
"""
import os
import re
import subprocess
import time
import uuid

from lib import (create_case, ctl, ctl_json, env, expect_err, expect_ok, get, get_case, http, inbound_path,
                 minimal_case_body, month_start_ms, new_client_full, now_ms, outbox_to, poll, post, running_case, smtp_set_mode,
                 sql, sql_one, sql_str, unique_address, worker_drain, worker_finish, worker_pass, worker_ready,
                 worker_start, worker_stderr)
from test_metrics import scrape, value
from test_usage import cap, insert_cases
from test_worker_inbound import _download, _pipe, _reply, _reply_with_pdf

HOOK = "http://127.0.0.1:9/hook"
DAY_MS = 86400000


def _ctl_run(*args):
    """offloadctl -c CONFIG args: (exit code, stdout, stderr), never raises."""
    e = env()
    p = subprocess.run([os.path.join(e.bin, "offloadctl"), "-c", e.config] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def _dump():
    """The whole database of the stack as mysqldump writes it (bytes)."""
    e = env()
    p = subprocess.run(["mariadb-dump", "--socket=" + e.db_socket, "-uroot", "--skip-extended-insert",
                        "--hex-blob", e.db_name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0, "mariadb-dump failed: %s" % p.stderr.decode("utf-8", "replace")
    return p.stdout


def _files_with(needles):
    """{needle: [paths]} of the files under the files directory whose bytes contain it, and
    of paths whose name contains it (grep -r, for bytes as well as text)."""
    found = {n: [] for n in needles}
    for root, dirs, files in os.walk(env().files_dir):
        for name in dirs + files:
            path = os.path.join(root, name)
            for n in needles:
                if n in path.encode():
                    found[n].append(path)
        for name in files:
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for n in needles:
                if n in data:
                    found[n].append(path)
    return {n: p for n, p in found.items() if p}


def _purged(reason):
    samples, types = scrape()
    assert types.get("offload_cases_purged_total") == "counter", "offload_cases_purged_total is not a counter"
    return value(samples, "offload_cases_purged_total", reason=reason)


def test_case_delete_erases_everything(ctx):
    inbound_path()
    worker_ready(ctx)
    tok = uuid.uuid4().hex
    s = {k: "%s-%s" % (k.upper(), tok) for k in ("goal", "name", "reply", "meta", "ref", "idem", "answer",
                                                  "result", "model")}
    addr = unique_address("erase")
    body = minimal_case_body()
    body.update({
        "goal": {"objective": "Collect the signed W-9 %s" % s["goal"]},
        "counterparty": {"address": addr, "name": "Maya %s" % s["name"]},
        "clientReferenceId": s["ref"], "metadata": {"note": s["meta"]}, "clientWebhookUrl": HOOK,
        "followUpDelayHours": 24,
    })
    cid = expect_ok(post("/cases", body, headers={"Idempotency-Key": s["idem"]}), 201)["caseId"]
    runs = worker_drain()
    mails = outbox_to(addr)
    assert len(mails) == 1 and get_case(cid)["status"] == "RUNNING", worker_stderr(runs)

    # A reply with a PDF whose bytes are unique, through the MTA pipe.
    pdf = b"%PDF-1.4\nATTBYTES-" + tok.encode() + b"\n" + os.urandom(4000) + b"\n%%EOF\n"
    raw, _ = _reply_with_pdf(mails[0], addr, cid, "Hello, %s" % s["reply"], pdf, "W9 %s.pdf" % tok[:8])
    _pipe(raw)
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "INPUT_NEEDED" and len(c["attachments"]) == 1, "%s %r\n%s" % (
        c["status"], c["attachments"], worker_stderr(runs))
    expect_ok(post("/cases/%s/input" % cid, {
        "inputRequestId": c["inputRequest"]["id"], "providedContext": s["answer"],
        "decision": {"outcome": "GOAL_ACHIEVED", "result": {"note": s["result"]}}}), 202)
    runs = worker_drain()
    c = get_case(cid)
    assert c["status"] == "COMPLETED", "%s\n%s" % (c["status"], worker_stderr(runs))
    # The manual agent of the stack makes no LLM calls: one accounting row as the LLM agent writes.
    sql("INSERT INTO agent_calls (case_id, call_name, model, latency_ms, outcome, created_at)"
        " VALUES (%s, 'evaluate_thread', %s, 12, 'ok', %d)" % (sql_str(cid), sql_str(s["model"]), now_ms()))
    att = c["attachments"][0]
    link = expect_ok(get("/cases/%s/attachments/%s" % (cid, att["attachmentId"])), 200)["downloadUrl"]
    assert _download(cid, att) == pdf, "the attachment does not download before the delete"

    needles = [v.encode() for v in s.values()] + [cid.encode()]
    binary = [pdf[:64], pdf[200:264], pdf[-80:]]
    # The searches find the case before the delete (so that finding nothing afterwards means something).
    dump = _dump()
    missing = [n for n in needles if n not in dump]
    assert not missing, "the dump lacks %r before the delete: the search would prove nothing" % missing
    # The attachment's bytes are in the database (attachment_chunks; the dump writes them in hex).
    hexed = [b.hex().upper().encode() for b in binary]
    missing = [n for n in hexed if n not in dump]
    assert not missing, "the dump lacks the attachment's bytes before the delete"
    on_disk = _files_with([s["reply"].encode(), cid.encode()] + binary)
    assert sorted(on_disk) == sorted([s["reply"].encode(), cid.encode()]), \
        "before the delete, the files hold %r (the raw copy, and no attachment file)" % sorted(on_disk)
    before = _purged("request")

    out = ctl_json("case", "delete", cid, "--json")
    assert out.get("caseId") == cid and out.get("deleted") is True, "case delete --json: %r" % out
    for k in ("messages", "attachments", "events", "webhookDeliveries", "agentCalls", "idempotencyKeys",
              "files"):
        assert isinstance(out.get(k), int), "case delete --json: %s missing in %r" % (k, out)
    assert out["messages"] >= 2 and out["attachments"] == 1 and out["agentCalls"] == 1 and \
        out["idempotencyKeys"] == 1 and out["webhookDeliveries"] >= 2 and out["files"] >= 1, \
        "case delete --json counts %r" % out

    expect_err(get("/cases/%s" % cid), 404, "CASE_NOT_FOUND")
    expect_err(get("/cases/%s/attachments/%s" % (cid, att["attachmentId"])), 404, "CASE_NOT_FOUND")
    r = http("GET", re.sub(r"^https?://[^/]+", "", link), key=None)
    expect_err(r, 404, "ATTACHMENT_NOT_FOUND")
    dump = _dump()
    left = [n.decode() for n in needles + hexed if n in dump]
    assert not left, "the database still holds %r after the delete" % left
    left = _files_with(needles + binary)
    assert not left, "the files directory still holds %r" % left
    assert _purged("request") == before + 1, "offload_cases_purged_total{reason=\"request\"} did not go up by 1"

    # Again: not found (exit 3), and the Idempotency-Key is forgotten with the case.
    rc, _, err = _ctl_run("case", "delete", cid)
    assert rc == 3 and "no case %s" % cid in err, "second delete: exit %d, %r" % (rc, err)

    # Mail that arrives later for the case attaches to nothing of it: kept unmatched, like any stray mail.
    late, msgid = _reply(mails[0], addr, cid, "One more thing LATE-%s" % tok)
    _pipe(late)
    rows = sql("SELECT case_id FROM messages WHERE message_id=%s" % sql_str(msgid.strip("<>")))
    assert rows == [[None]], "a reply to the deleted case was stored as %r" % rows
    dirs = [os.path.join(r, d) for r, ds, _ in os.walk(env().files_dir) for d in ds if cid in d]
    assert not dirs, "the late reply recreated the case's directories %r" % dirs


def test_case_delete_open_case_sends_nothing_more(ctx):
    worker_ready(ctx)
    gone, gone_addr, _ = running_case("erase-open")
    kept, kept_addr, _ = running_case("erase-kept")
    ctl("case", "delete", gone)
    expect_err(get("/cases/%s" % gone), 404, "CASE_NOT_FOUND")
    # 25 h later both follow-ups would be due: only the case that still exists gets one.
    runs = worker_drain(fake="+25h")
    assert len(outbox_to(kept_addr)) == 2, "the control case got no follow-up: the pass proves nothing\n%s" % (
        worker_stderr(runs))
    assert len(outbox_to(gone_addr)) == 1, "mail went out for the deleted case\n%s" % worker_stderr(runs)
    n = sql_one("SELECT COUNT(*) FROM events WHERE case_id=%s" % sql_str(gone))
    assert n == "0", "%s events of the deleted case" % n


def test_case_delete_waits_for_the_worker_lease(ctx):
    """A worker holding the case (between recording a message and the end of its SMTP transaction)
    keeps it until its lease ends; the delete waits for that, or gives up and deletes nothing."""
    cid = create_case(minimal_case_body())
    sql("UPDATE cases SET lease_owner='another-worker:t0', lease_until=%d WHERE id=%s" % (
        now_ms() + 3600 * 1000, sql_str(cid)))
    for wait in ("0", "1"):
        rc, out, err = _ctl_run("case", "delete", cid, "--wait", wait)
        assert rc == 1 and "worker" in err and "nothing was deleted" in err, \
            "delete --wait %s of a leased case: exit %d, %r %r" % (wait, rc, out, err)
        get_case(cid)  # still there
    # A lease that ends in 2 s: the delete waits, then deletes.
    sql("UPDATE cases SET lease_until=%d WHERE id=%s" % (now_ms() + 2000, sql_str(cid)))
    rc, out, err = _ctl_run("case", "delete", cid, "--wait", "60")
    assert rc == 0, "delete after the lease ends: exit %d, %r" % (rc, err)
    assert "waiting for the worker" in err and "case %s erased" % cid in err, "stderr %r" % err
    expect_err(get("/cases/%s" % cid), 404, "CASE_NOT_FOUND")


def test_case_delete_waits_for_a_worker_sending(ctx):
    """The delete comes while a worker is inside the SMTP transaction of the case's first message:
    it returns only after that transaction ended (the sink answers 3 s after the data), so no mail
    of the case can go out after the delete."""
    worker_ready(ctx)
    addr = unique_address("erase-busy")
    body = minimal_case_body()
    body["counterparty"] = {"address": addr, "name": "Maya Chen"}
    cid = create_case(body)
    smtp_set_mode("slow-3000")
    try:
        p, errf = worker_start()
        try:
            poll(lambda: sql_one("SELECT COUNT(*) FROM messages WHERE case_id=%s AND direction='outbound'" %
                                 sql_str(cid)) == "1", 60, what="the worker recording the case's first message")
            rc, out, err = _ctl_run("case", "delete", cid, "--wait", "120")
            sent_when_deleted = len(outbox_to(addr))
        finally:
            run = worker_finish(p, errf)
    finally:
        smtp_set_mode(None)
    assert rc == 0 and "waiting for the worker" in err, "delete during the send: exit %d, %r" % (rc, err)
    assert sent_when_deleted == 1, "the delete returned before the SMTP transaction in flight ended " \
        "(%d messages stored by then)\n%s" % (sent_when_deleted, run.tail())
    expect_err(get("/cases/%s" % cid), 404, "CASE_NOT_FOUND")
    runs = worker_drain(fake="+80h")
    assert len(outbox_to(addr)) == 1, "mail went out after the delete\n%s" % worker_stderr(runs)


def test_case_delete_usage(ctx):
    """Deleting cases gives no cap back: created ones and billable finished ones still count."""
    n = cap("SANDBOX")
    c = new_client_full("SANDBOX")
    insert_cases(c["clientId"], n - 1, max(month_start_ms(), now_ms() - 60000))
    cid = create_case(minimal_case_body(), key=c["key"])
    expect_err(post("/cases", minimal_case_body(), key=c["key"]), 429, "USAGE_LIMIT_REACHED")
    ctl("case", "delete", cid)
    expect_err(get("/cases/%s" % cid, key=c["key"]), 404, "CASE_NOT_FOUND")
    expect_err(post("/cases", minimal_case_body(), key=c["key"]), 429, "USAGE_LIMIT_REACHED")

    # Billable finished this month (created last month): n of them reach the cap; deleting one keeps it reached.
    c2 = new_client_full("SANDBOX")
    ids = insert_cases(c2["clientId"], n, month_start_ms() - 3 * DAY_MS, status="COMPLETED",
                       finished_at=max(month_start_ms(), now_ms() - 60000), result_status="goal_achieved")
    expect_err(post("/cases", minimal_case_body(), key=c2["key"]), 429, "USAGE_LIMIT_REACHED")
    ctl("case", "delete", ids[0])
    expect_err(post("/cases", minimal_case_body(), key=c2["key"]), 429, "USAGE_LIMIT_REACHED")
    # A not-billable one (BOUNCED) deleted does not count: the control that the rule is applied.
    c3 = new_client_full("SANDBOX")
    # n - 1 billable and one BOUNCED finished this month: the BOUNCED one deleted must not make n.
    ids = insert_cases(c3["clientId"], n, month_start_ms() - 3 * DAY_MS, status="COMPLETED",
                       finished_at=max(month_start_ms(), now_ms() - 60000), result_status="goal_achieved")
    sql("UPDATE cases SET status='FAILED', result_status='BOUNCED' WHERE id=%s" % sql_str(ids[0]))
    ctl("case", "delete", ids[0])
    expect_ok(post("/cases", minimal_case_body(), key=c3["key"]), 201)


def test_case_delete_bad_input(ctx):
    rc, out, err = _ctl_run("case", "delete", "--help")
    assert rc == 0 and out.startswith("usage: offloadctl case delete CASE_ID"), "--help: %d %r" % (rc, out)
    for args, want in ((("case", "delete"), 2), (("case", "delete", "not-a-uuid"), 2),
                       (("case", "delete", str(uuid.uuid4()).upper()), 2),
                       (("case", "delete", str(uuid.uuid4()), str(uuid.uuid4())), 2),
                       (("case", "delete", str(uuid.uuid4()), "--wait", "-1"), 2),
                       (("case", "delete", str(uuid.uuid4()), "--wait", "x"), 2),
                       (("case", "delete", str(uuid.uuid4())), 3),
                       (("case", "delete", str(uuid.uuid4()), "--json"), 3)):
        rc, out, err = _ctl_run(*args)
        assert rc == want, "offloadctl %s: exit %d, want %d (%r)" % (" ".join(args), rc, want, err)
        assert err.strip() and out == "", "offloadctl %s: stdout %r, stderr %r" % (" ".join(args), out, err)
    rc, out, err = _ctl_run("case", "delete", "not-a-uuid")
    assert "CASE_ID" in err and "UUID" in err, "the error does not say what a case id is: %r" % err


def test_retention_resumes_an_interrupted_erasure(ctx):
    """An erasure stopped after its case row went (a crash): the next worker pass finishes it."""
    cid = str(uuid.uuid4())
    tok = "ORPHAN-%s" % uuid.uuid4().hex
    files = env().files_dir
    for d in (os.path.join(files, cid), os.path.join(files, "raw", cid)):
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "left.bin"), "w") as f:
            f.write(tok)
    sql("INSERT INTO erasures (case_id, reason, requested_at) VALUES (%s, 'request', %d);"
        "INSERT INTO messages (case_id, direction, kind, message_id, from_addr, to_addr, subject, body_text,"
        " created_at, raw_path) VALUES (%s, 'inbound', 'reply', %s, 'a@b.example', 'c@d.example', 's', %s, %d, %s);"
        "INSERT INTO events (case_id, type, available_at, created_at) VALUES (%s, 'REPLY_RECEIVED', %d, %d)" % (
            sql_str(cid), now_ms() - 3600 * 1000, sql_str(cid), sql_str("%s@x.example" % tok), sql_str(tok),
            now_ms(), sql_str("raw/%s/left.bin" % cid), sql_str(cid), now_ms() + 3600 * 1000, now_ms()))
    run = worker_pass()
    assert re.search(r"retention: finished \d+ erasures", run.stderr), "no resumed erasure logged\n%s" % run.tail()
    for t in ("messages", "events", "erasures"):
        n = sql_one("SELECT COUNT(*) FROM %s WHERE case_id=%s" % (t, sql_str(cid)))
        assert n == "0", "%s rows of the interrupted erasure left in %s\n%s" % (n, t, run.tail())
    assert not _files_with([tok.encode(), cid.encode()]), "files of the interrupted erasure left"


PURGED_RE = re.compile(r"pass: .*?(\d+) cases purged")


def _pass_purged(run):
    m = PURGED_RE.search(run.stderr)
    assert m, "no 'N cases purged' in the pass summary:\n%s" % run.tail()
    return int(m.group(1))


def test_retention_purges_old_finished_cases_in_batches(ctx):
    worker_ready(ctx)
    c = new_client_full("UNLIMITED")
    now = now_ms()
    # 1,200 cases finished 20 days ago; controls finished 10 days ago, and open ones created long ago.
    old = insert_cases(c["clientId"], 900, now - 40 * DAY_MS, status="COMPLETED", finished_at=now - 20 * DAY_MS,
                       result_status="goal_achieved")
    old += insert_cases(c["clientId"], 300, now - 40 * DAY_MS, status="FAILED", finished_at=now - 20 * DAY_MS,
                        result_status="max_retries")
    recent = insert_cases(c["clientId"], 3, now - 40 * DAY_MS, status="COMPLETED", finished_at=now - 10 * DAY_MS,
                          result_status="goal_achieved")
    running = insert_cases(c["clientId"], 3, now - 60 * DAY_MS, status="RUNNING")
    # Rows and files hanging off one old case, to see them go with it.
    victim = old[0]
    sql("INSERT INTO messages (case_id, direction, kind, message_id, from_addr, to_addr, subject, body_text,"
        " created_at) VALUES (%s, 'outbound', 'outreach', %s, 'a@b.example', 'c@d.example', 's', 'b', %d)" % (
            sql_str(victim), sql_str("%s.1@x.example" % victim), now - 30 * DAY_MS))
    os.makedirs(os.path.join(env().files_dir, victim), exist_ok=True)
    with open(os.path.join(env().files_dir, victim, str(uuid.uuid4())), "w") as f:
        f.write("attachment of an old case")

    def mine(ids):
        return int(sql_one("SELECT COUNT(*) FROM cases WHERE id IN (%s)" % ",".join(sql_str(i) for i in ids)))

    os.environ["OFFLOAD_RETENTION_FINISHED_DAYS"] = "30"
    try:
        before = _purged("retention")
        # At the real time nothing of this client is 30 days finished.
        run = worker_pass()
        assert mine(old) == 1200, "cases finished 20 days ago were purged with finished_days = 30\n%s" % run.tail()
        purged_total = _pass_purged(run)
        # 15 days later the 1,200 are 35 days finished: one pass takes at most 500.
        run = worker_pass(fake="+15d")
        first = _pass_purged(run)
        purged_total += first
        assert first == 500 and "more remain" in run.stderr, "first pass purged %d, want the batch of 500\n%s" % (
            first, run.tail())
        assert 700 <= mine(old) < 1200, "%d old cases left after a pass of 500" % mine(old)
        passes = 1
        while mine(old) and passes < 10:
            run = worker_pass(fake="+15d")
            n = _pass_purged(run)
            assert 0 < n <= 500, "a pass purged %d cases\n%s" % (n, run.tail())
            purged_total += n
            passes += 1
        assert mine(old) == 0 and passes >= 3, "%d old cases left after %d passes" % (mine(old), passes)
        assert mine(recent) == 3 and mine(running) == 3, "cases not old enough, or not finished, were purged"
        n = sql_one("SELECT COUNT(*) FROM messages WHERE case_id=%s" % sql_str(victim))
        assert n == "0" and not _files_with([victim.encode()]), "the purged case's message or files are left"
        assert _purged("retention") == before + purged_total, \
            "offload_cases_purged_total{reason=\"retention\"} went from %d to %d, the passes purged %d" % (
                before, _purged("retention"), purged_total)
    finally:
        del os.environ["OFFLOAD_RETENTION_FINISHED_DAYS"]
    # A value out of range stops the worker before it does anything, naming the key.
    e = env()
    p = subprocess.run([os.path.join(e.bin, "offload-worker"), "-c", e.config, "--once"],
                       env=dict(os.environ, OFFLOAD_RETENTION_FINISHED_DAYS="-1"),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 1 and b"[retention] finished_days" in p.stderr, "finished_days=-1: exit %d, %r" % (
        p.returncode, p.stderr[-300:])
    # Off by default: a pass without the setting purges nothing, however old.
    run = worker_pass(fake="+30d")
    assert _pass_purged(run) == 0 and mine(recent) == 3, "a pass without finished_days purged cases"
