"""Send windows (doc/api.md "Send windows"; issue 15 item 1): every message the worker sends
waits for the case's window, read in counterparty.timezone (else [worker] timezone), and
nextActionAt says when it will go.

The worker runs under libfaketime with the clock set to chosen instants (TZ=UTC), all in the
past of the stack's real clock: nothing other test files left is due then, so each pass works
only the cases of this file, whose events are made due at those instants by SQL. Each test
retires its cases at the end (no schedule, no pending event) so that later real-time passes
leave them alone.
"""
import calendar
import subprocess
import time
import uuid

from lib import (SENTINEL, WorkerRun, create_case, expect_err, expect_ok, faketime_prefix, get,
                 get_case, minimal_case_body, outbox_to, pause_case_for_input, post, sql, sql_str,
                 unique_address, worker_cmd, worker_env, worker_ready)

H = 3600000
WEEKDAYS = ["MON", "TUE", "WED", "THU", "FRI"]


def utc(y, mo, d, h, mi=0, s=0):
    """Unix ms of a UTC wall-clock time."""
    return calendar.timegm((y, mo, d, h, mi, s)) * 1000


def iso(ms):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms // 1000))


def pass_at(ms, extra_env=None, check=True):
    """One worker pass with the clock starting at ms (it runs on from there)."""
    stamp = time.strftime("@%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000))
    cmd = faketime_prefix(stamp) + ["TZ=UTC"] + worker_cmd()
    e = worker_env()
    e.update(extra_env or {})
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=180, env=e)
    run = WorkerRun(cmd, p.returncode, p.stderr.decode("utf-8", "replace"))
    if check:
        assert run.rc == 0 and run.events is not None, "pass at %s exited %d:\n%s" % (
            iso(ms), run.rc, run.tail())
    return run


def new_case(tag, window=None, zone=None, delay_h=72, cases=None):
    """Creates a case to tag-<random>@example.com; returns (caseId, address)."""
    addr = unique_address(tag)
    body = minimal_case_body()
    body["counterparty"] = {"address": addr, "name": "Maya Chen"}
    if zone:
        body["counterparty"]["timezone"] = zone
    if window is not None:
        body["sendWindow"] = window
    body["followUpDelayHours"] = delay_h
    cid = create_case(body)
    if cases is not None:
        cases.append(cid)
    return cid, addr


def due_at(cid, ms):
    """Makes the case's pending events due at ms."""
    sql("UPDATE events SET available_at = %d WHERE case_id = %s AND state = 'pending'" % (ms, sql_str(cid)))


def retire(ids):
    """Nothing of these cases is left due for the passes of later test files."""
    if not ids:
        return
    in_list = ",".join(sql_str(c) for c in ids)
    sql("UPDATE events SET state = 'done', lease_owner = NULL, lease_until = NULL"
        " WHERE case_id IN (%s) AND state = 'pending'" % in_list)
    sql("UPDATE cases SET next_action_at = %d, lease_owner = NULL, lease_until = NULL"
        " WHERE id IN (%s)" % (SENTINEL, in_list))


def expect_next(cid, want, run, what):
    c = get_case(cid)
    assert c["nextActionAt"] == want, "%s: nextActionAt %s (%s), want %s (%s)\nworker stderr:\n%s" % (
        what, c["nextActionAt"], iso(c["nextActionAt"]) if c["nextActionAt"] < SENTINEL else "never",
        want, iso(want), run.tail())
    return c


def expect_mails(addr, n, run, what):
    mails = outbox_to(addr)
    assert len(mails) == n, "%s: %d messages to %s, want %d\nworker stderr:\n%s" % (
        what, len(mails), addr, n, run.tail())
    return mails


def test_send_window_tokyo_follow_up_waits_for_nine(ctx):
    """A follow-up that falls due at 03:00 Tokyo time goes at 09:00: its due time is moved when
    it is computed (nextActionAt shows 09:00, a pass at 03:00 finds nothing due), and one that
    comes due at 03:00 anyway (scheduled before the window applied) is held until 09:00."""
    worker_ready(ctx)
    cases = []
    window = {"days": WEEKDAYS, "start": "09:00", "end": "17:00"}
    try:
        # Monday 2026-11-16 10:00 JST (01:00 UTC): inside the window; 17 h later is 03:00.
        t1, a1 = new_case("sw-tokyo", window, "Asia/Tokyo", delay_h=17, cases=cases)
        t2, a2 = new_case("sw-tokyo-late", window, "Asia/Tokyo", delay_h=17, cases=cases)
        for cid in cases:
            due_at(cid, utc(2026, 11, 16, 1))
        run = pass_at(utc(2026, 11, 16, 1, 0, 5))
        expect_mails(a1, 1, run, "outreach at Monday 10:00 JST")
        expect_mails(a2, 1, run, "outreach at Monday 10:00 JST")
        tue9 = utc(2026, 11, 17, 0)  # Tuesday 09:00 JST
        c = expect_next(t1, tue9, run, "follow-up due Tuesday 03:00 JST")
        assert c["status"] == "RUNNING" and c["attemptCount"] == 1, c

        # The second case's follow-up comes due at 03:00 all the same.
        sql("UPDATE cases SET next_action_at = %d WHERE id = %s" % (utc(2026, 11, 16, 18), sql_str(t2)))
        run = pass_at(utc(2026, 11, 16, 18, 0, 5))  # Tuesday 03:00:05 JST
        expect_mails(a1, 1, run, "a pass at Tuesday 03:00 JST")
        expect_mails(a2, 1, run, "a pass at Tuesday 03:00 JST (the follow-up due then is held)")
        expect_next(t1, tue9, run, "after the 03:00 pass")
        c2 = expect_next(t2, tue9, run, "the follow-up held at 03:00")
        assert c2["attemptCount"] == 1 and c2["status"] == "RUNNING", c2
        assert "held until 2026-11-17T00:00:00.000Z" in run.stderr, run.tail()
        ev = sql("SELECT available_at, attempts FROM events WHERE case_id = %s AND type = 'FOLLOW_UP_DUE'"
                 " AND state = 'pending'" % sql_str(t2))
        assert ev == [[str(tue9), "0"]], "the held follow-up's event: %r (want due at %d, no attempt)" % (
            ev, tue9)

        run = pass_at(tue9 + 2000)  # Tuesday 09:00:02 JST
        m1 = expect_mails(a1, 2, run, "at Tuesday 09:00 JST")
        m2 = expect_mails(a2, 2, run, "at Tuesday 09:00 JST")
        for m in (m1[1], m2[1]):
            assert m.header("In-Reply-To"), "the follow-up is not in the thread: %r" % m
        c = expect_next(t1, utc(2026, 11, 18, 0), run, "the next follow-up (Wednesday 02:00 -> 09:00 JST)")
        assert c["attemptCount"] == 2, c
        assert get_case(t2)["attemptCount"] == 2
    finally:
        retire(cases)


def test_send_window_friday_evening_waits_for_monday(ctx):
    """Friday 17:30 in Berlin: the first message waits for Monday 09:00, and so does an
    operator's reply decided on a Friday evening."""
    worker_ready(ctx)
    cases = []
    try:
        cid, addr = new_case("sw-friday", {"days": WEEKDAYS, "start": "09:00", "end": "17:00"},
                             "Europe/Berlin", cases=cases)
        due_at(cid, utc(2026, 11, 20, 16, 30))  # Friday 17:30 CET
        run = pass_at(utc(2026, 11, 20, 16, 30, 5))
        expect_mails(addr, 0, run, "Friday 17:30 CET")
        mon9 = utc(2026, 11, 23, 8)  # Monday 09:00 CET
        c = expect_next(cid, mon9, run, "the outreach held on Friday evening")
        assert c["status"] == "CREATED" and c["attemptCount"] == 0, c
        assert c["updatedAt"] >= utc(2026, 11, 20, 16, 30) and c["updatedAt"] < mon9, c
        run = pass_at(utc(2026, 11, 21, 11))  # Saturday noon: nothing is due
        expect_mails(addr, 0, run, "Saturday noon")
        run = pass_at(mon9 + 2000)
        expect_mails(addr, 1, run, "Monday 09:00 CET")
        c = get_case(cid)
        assert c["status"] == "RUNNING" and c["attemptCount"] == 1, c

        # The operator answers with a reply that the worker sees on the next Friday at 17:30.
        rid = pause_case_for_input(cid)
        text = "Here is the W-9 form again, the signature goes on line 5."
        expect_ok(post("/cases/%s/input" % cid, {"inputRequestId": rid, "providedContext": "ok",
                                                 "decision": {"outcome": "REPLY", "reply": text}}), 202)
        due_at(cid, utc(2026, 11, 27, 16, 30))
        run = pass_at(utc(2026, 11, 27, 16, 30, 5))
        expect_mails(addr, 1, run, "the reply decided on Friday 17:30 CET")
        mon9b = utc(2026, 11, 30, 8)
        c = expect_next(cid, mon9b, run, "the reply held until Monday")
        assert c["status"] == "INPUT_NEEDED" and c["inputRequest"]["status"] == "RESOLVED", c
        run = pass_at(mon9b + 2000)
        mails = expect_mails(addr, 2, run, "Monday 09:00 CET, the reply")
        assert text in mails[1].text(), mails[1].text()
        c = get_case(cid)
        assert c["status"] == "RUNNING" and c["attemptCount"] == 2, c
    finally:
        retire(cases)


def test_send_window_spring_forward_los_angeles(ctx):
    """Sunday 2026-03-08 in Los Angeles has no 02:30 (02:00 PST becomes 03:00 PDT): a window
    starting at 02:30 opens at 03:00 PDT, 10:00 UTC."""
    worker_ready(ctx)
    cases = []
    try:
        cid, addr = new_case("sw-spring", {"days": ["SUN"], "start": "02:30", "end": "05:00"},
                             "America/Los_Angeles", cases=cases)
        due_at(cid, utc(2026, 3, 8, 9))  # 01:00 PST
        run = pass_at(utc(2026, 3, 8, 9, 0, 5))
        expect_mails(addr, 0, run, "01:00 PST")
        expect_next(cid, utc(2026, 3, 8, 10), run, "a 02:30 start on the spring-forward day")
        run = pass_at(utc(2026, 3, 8, 9, 59, 50))  # 01:59:50 PST
        expect_mails(addr, 0, run, "01:59:50 PST")
        run = pass_at(utc(2026, 3, 8, 10, 0, 2))  # 03:00:02 PDT
        expect_mails(addr, 1, run, "03:00 PDT")
        assert get_case(cid)["status"] == "RUNNING"
    finally:
        retire(cases)


def test_send_window_fall_back_los_angeles(ctx):
    """Sunday 2026-11-01 in Los Angeles has 01:00-02:00 twice (PDT, then PST). A start in the
    repeated hour means its first occurrence, and so does an end: the window is open once."""
    worker_ready(ctx)
    cases = []
    try:
        first, a_first = new_case("sw-fall-start", {"days": ["SUN"], "start": "01:30", "end": "03:00"},
                                  "America/Los_Angeles", cases=cases)
        early, a_early = new_case("sw-fall-in", {"days": ["SUN"], "start": "00:00", "end": "01:30"},
                                  "America/Los_Angeles", cases=cases)
        late, a_late = new_case("sw-fall-out", {"days": ["SUN"], "start": "00:00", "end": "01:30"},
                                "America/Los_Angeles", cases=cases)
        due_at(first, utc(2026, 11, 1, 7, 30))  # 00:30 PDT
        due_at(early, utc(2026, 11, 1, 8, 10))  # 01:10 PDT, the first pass of the hour
        due_at(late, utc(2026, 11, 1, 9, 10))   # 01:10 PST, the second
        run = pass_at(utc(2026, 11, 1, 7, 30, 5))
        expect_mails(a_first, 0, run, "00:30 PDT")
        expect_next(first, utc(2026, 11, 1, 8, 30), run, "a 01:30 start: its first occurrence (PDT)")
        run = pass_at(utc(2026, 11, 1, 8, 10, 5))
        expect_mails(a_early, 1, run, "01:10 PDT, inside 00:00-01:30")
        run = pass_at(utc(2026, 11, 1, 8, 30, 2))
        expect_mails(a_first, 1, run, "01:30 PDT")
        run = pass_at(utc(2026, 11, 1, 9, 10, 5))
        expect_mails(a_late, 0, run, "01:10 PST, after the window closed at 01:30 PDT")
        expect_next(late, utc(2026, 11, 8, 8), run, "the next Sunday 00:00 PST")
    finally:
        retire(cases)


def test_send_window_none_sends_as_before(ctx):
    """No sendWindow and no [worker] send_window: a Sunday 03:00 in the counterparty's zone
    makes no difference, and the follow-up is exactly followUpDelayHours later."""
    worker_ready(ctx)
    cases = []
    try:
        cid, addr = new_case("sw-none", None, "Asia/Tokyo", delay_h=72, cases=cases)
        due_at(cid, utc(2026, 11, 21, 18))  # Sunday 03:00 JST
        run = pass_at(utc(2026, 11, 21, 18, 0, 5), {"OFFLOAD_WORKER_SEND_WINDOW": ""})
        expect_mails(addr, 1, run, "no window")
        c = get_case(cid)
        assert "sendWindow" not in c, c
        assert c["status"] == "RUNNING" and c["nextActionAt"] - c["updatedAt"] == 72 * H, c
        assert "held" not in run.stderr, run.tail()
    finally:
        retire(cases)


def test_send_window_server_default(ctx):
    """[worker] send_window applies to cases without their own, in counterparty.timezone, else
    in [worker] timezone; a case's own window wins."""
    worker_ready(ctx)
    cases = []
    conf = {"OFFLOAD_WORKER_SEND_WINDOW": "MON-FRI 09:00-17:00", "OFFLOAD_WORKER_TIMEZONE": "Asia/Tokyo"}
    try:
        plain, a_plain = new_case("sw-def", cases=cases)
        nyc, a_nyc = new_case("sw-def-nyc", None, "America/New_York", cases=cases)
        own, a_own = new_case("sw-def-own", {"days": ["SAT", "SUN"], "start": "10:00", "end": "18:00"},
                              cases=cases)
        for cid in cases:
            due_at(cid, utc(2026, 11, 21, 3))  # Saturday 12:00 JST, Friday 22:00 EST
        run = pass_at(utc(2026, 11, 21, 3, 0, 5), conf)
        expect_mails(a_plain, 0, run, "the server's window, in [worker] timezone")
        expect_next(plain, utc(2026, 11, 23, 0), run, "Monday 09:00 JST")
        expect_mails(a_nyc, 0, run, "the server's window, in counterparty.timezone")
        expect_next(nyc, utc(2026, 11, 23, 14), run, "Monday 09:00 EST")
        expect_mails(a_own, 1, run, "the case's own weekend window")
        assert "2 held for their send window" in run.stderr, run.tail()
        # Each goes at its own opening.
        run = pass_at(utc(2026, 11, 23, 0, 0, 2), conf)
        expect_mails(a_plain, 1, run, "Monday 09:00 JST")
        expect_mails(a_nyc, 0, run, "Monday 09:00 JST is Sunday 19:00 in New York")
        run = pass_at(utc(2026, 11, 23, 14, 0, 2), conf)
        expect_mails(a_nyc, 1, run, "Monday 09:00 EST")
    finally:
        retire(cases)


def test_send_window_bad_worker_configuration(ctx):
    """offload-worker refuses to run with a send_window or timezone it cannot read, naming the
    key (exit 1, nothing done)."""
    for env, needle in (({"OFFLOAD_WORKER_SEND_WINDOW": "weekdays 9-5"}, "[worker] send_window: must be"),
                        ({"OFFLOAD_WORKER_SEND_WINDOW": "MON-FRI 17:00-09:00"}, "[worker] send_window: must be"),
                        ({"OFFLOAD_WORKER_TIMEZONE": "Mars/Olympus_Mons"},
                         "[worker] timezone: Mars/Olympus_Mons is not a zone")):
        e = worker_env()
        e.update(env)
        p = subprocess.run(worker_cmd(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60, env=e)
        err = p.stderr.decode("utf-8", "replace")
        assert p.returncode == 1 and needle in err and "pass:" not in err, (env, p.returncode, err)


def test_send_window_validation(ctx):
    """POST /cases refuses a bad sendWindow naming the field; a good one is returned as given by
    GET /cases/{id} and GET /cases."""
    base = minimal_case_body()
    good = {"days": ["FRI", "MON"], "start": "08:30", "end": "17:45"}
    bad = (
        ("MON-FRI 09:00-17:00", "sendWindow: must be an object"),
        ({"start": "09:00", "end": "17:00"}, "sendWindow.days: is required"),
        ({"days": [], "start": "09:00", "end": "17:00"}, "sendWindow.days: must be a non-empty array"),
        ({"days": ["MON", "Tue"], "start": "09:00", "end": "17:00"}, "sendWindow.days[1]: must be one of MON"),
        ({"days": ["MON", "MON"], "start": "09:00", "end": "17:00"}, "sendWindow.days[1]: MON is listed twice"),
        ({"days": ["MON"], "start": "9:00", "end": "17:00"}, "sendWindow.start: must be HH:MM"),
        ({"days": ["MON"], "start": "09:00", "end": "24:00"}, "sendWindow.end: must be HH:MM"),
        ({"days": ["MON"], "start": "09:00"}, "sendWindow.end: is required"),
        ({"days": ["MON"], "start": "17:00", "end": "09:00"}, "sendWindow.end: must be later than sendWindow.start"),
        ({"days": ["MON"], "start": "09:00", "end": "09:00"}, "sendWindow.end: must be later than sendWindow.start"),
    )
    for value, msg in bad:
        body = dict(base, sendWindow=value)
        expect_err(post("/cases", body), 400, "INVALID_REQUEST", msg_prefix=msg)
    body = dict(base, sendWindow=dict(good, note="ignored"), clientReferenceId="sw-" + uuid.uuid4().hex)
    cid = create_case(body)
    c = get_case(cid)
    assert c["sendWindow"] == good, c.get("sendWindow")
    listed = expect_ok(get("/cases?clientReferenceId=%s" % body["clientReferenceId"]))["cases"]
    assert [x["caseId"] for x in listed] == [cid] and listed[0]["sendWindow"] == good, listed
    # null is absent, like every optional member.
    cid2 = create_case(dict(base, sendWindow=None))
    assert "sendWindow" not in get_case(cid2)
    retire([cid, cid2])


def test_send_window_sent_before_a_crash_is_not_held(ctx):
    """A message the SMTP server accepted just before the worker died (the commit never
    happened) is only bookkeeping when its event comes back: a closed window does not hold
    it, and nothing is sent twice."""
    worker_ready(ctx)
    cases = []
    try:
        cid, addr = new_case("sw-crash", {"days": ["MON"], "start": "09:00", "end": "10:00"}, "UTC",
                             cases=cases)
        due_at(cid, utc(2026, 11, 16, 9))
        run = pass_at(utc(2026, 11, 16, 9, 0, 5))
        expect_mails(addr, 1, run, "Monday 09:00 UTC")
        # As if the worker had died between the SMTP server's 250 and its commit: the message
        # is recorded as sent, the case and the event are as they were before the step.
        sql("UPDATE cases SET status = 'CREATED', attempt_count = 0, version = version + 1,"
            " next_action_at = %d WHERE id = %s" % (SENTINEL, sql_str(cid)))
        sql("UPDATE events SET state = 'pending', attempts = 1, available_at = %d, done_at = NULL"
            " WHERE case_id = %s AND type = 'CASE_CREATED'" % (utc(2026, 11, 16, 11), sql_str(cid)))
        run = pass_at(utc(2026, 11, 16, 11, 0, 5))  # outside the window
        expect_mails(addr, 1, run, "the retry of an event whose message went out")
        c = get_case(cid)
        assert c["status"] == "RUNNING" and c["attemptCount"] == 1, "%r\n%s" % (c, run.tail())
        assert "held" not in run.stderr, run.tail()
        # The next follow-up is still inside the window: Monday 09:00 a week on.
        assert c["nextActionAt"] == utc(2026, 11, 23, 9), c["nextActionAt"]
    finally:
        retire(cases)


def test_send_window_unknown_counterparty_zone_falls_back(ctx):
    """A counterparty.timezone the tz database no longer knows (the API checked it when the
    case was created) is read as [worker] timezone, with a warning; nothing is lost."""
    worker_ready(ctx)
    cases = []
    try:
        cid, addr = new_case("sw-lostzone", {"days": WEEKDAYS, "start": "09:00", "end": "17:00"},
                             "Asia/Tokyo", cases=cases)
        sql("UPDATE cases SET counterparty = JSON_SET(counterparty, '$.timezone', 'Mars/Olympus_Mons')"
            " WHERE id = %s" % sql_str(cid))
        due_at(cid, utc(2026, 11, 21, 3))  # Saturday; Friday 22:00 in New York
        run = pass_at(utc(2026, 11, 21, 3, 0, 5), {"OFFLOAD_WORKER_TIMEZONE": "America/New_York"})
        expect_mails(addr, 0, run, "a window read in [worker] timezone")
        expect_next(cid, utc(2026, 11, 23, 14), run, "Monday 09:00 in New York")
        assert "counterparty.timezone Mars/Olympus_Mons is not in the tz database" in run.stderr, run.tail()
    finally:
        retire(cases)
