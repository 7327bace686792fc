"""GET /cases/{id}: ids, ownership, includeTranscript and the transcript format
(doc/api.md, "GET /cases/{caseId}")."""
import uuid

from lib import (create_case, expect_err, expect_ok, get, get_case, iso_ms, minimal_case_body, new_client_full,
                 now_ms, sql, sql_str)


def test_malformed_id_is_404(ctx):
    failures = []
    for bad in ["not-a-uuid", "..%252F..%252Fetc%252Fpasswd", "..%5C..%5Cetc%5Cpasswd", "123",
                "%27%20OR%20%271%27%3D%271", "00000000-0000-0000-0000-00000000000g",
                str(uuid.uuid4()) + "0", str(uuid.uuid4())[:-1], "%20" + str(uuid.uuid4()),
                "x" * 100, "x" * 129, "x" * 2000]:
        for suffix in ("", "?includeTranscript=true"):
            r = get("/cases/%s%s" % (bad, suffix))
            try:
                expect_err(r, 404, "CASE_NOT_FOUND")
            except AssertionError as e:
                failures.append("GET /cases/%s%s: %s" % (bad[:60], suffix, str(e)[:300]))
    assert not failures, "\n".join(failures)


def test_dot_dot_id_never_leaks(ctx):
    # "../../etc/passwd" percent-encoded. nginx decodes %2F and resolves the dot segments
    # before any location matches; the path then climbs above the root and nginx itself
    # refuses the request line, so the application never sees it. The contract asks for
    # 404 CASE_NOT_FOUND; a JSON 400 INVALID_REQUEST from nginx is the only other acceptable
    # answer (doc/api.md, "Errors": nginx's own errors answer with the envelope).
    for bad in ["..%2F..%2Fetc%2Fpasswd", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd"]:
        r = get("/cases/%s" % bad)
        try:
            if r.status == 400:
                expect_err(r, 400, "INVALID_REQUEST")
            else:
                expect_err(r, 404, "CASE_NOT_FOUND")
        except AssertionError as e:
            raise AssertionError("GET /cases/%s: %s" % (bad, e))
        assert b"root:" not in r.raw


def test_unknown_uuid_is_404(ctx):
    for _ in range(3):
        expect_err(get("/cases/%s" % uuid.uuid4()), 404, "CASE_NOT_FOUND")
    expect_err(get("/cases/%s?includeTranscript=true" % uuid.uuid4()), 404, "CASE_NOT_FOUND")


def test_other_clients_case_is_403(ctx):
    other = new_client_full("UNLIMITED")
    cid = create_case(minimal_case_body(), key=other["key"])
    expect_err(get("/cases/%s" % cid), 403, "FORBIDDEN")
    expect_ok(get("/cases/%s" % cid, key=other["key"]), 200)


def _insert_message(case_id, direction, created_at, subject, body, frm="a@x.example", to="b@y.example"):
    kind = "outreach" if direction == "outbound" else "reply"
    mid = "<%s@e2e.example>" % uuid.uuid4()
    sql("INSERT INTO messages (case_id, direction, kind, message_id, from_addr, to_addr, subject, body_text, "
        "created_at) VALUES (%s, '%s', '%s', %s, %s, %s, %s, %s, %d)" % (
            sql_str(case_id), direction, kind, sql_str(mid), sql_str(frm), sql_str(to), sql_str(subject),
            sql_str(body), created_at))


def _block(ms, direction, frm, to, subject, body):
    return "--- %s %s ---\nFrom: %s\nTo: %s\nSubject: %s\n\n%s" % (iso_ms(ms), direction, frm, to, subject, body)


def test_include_transcript_values(ctx):
    cid = create_case(minimal_case_body())
    yes = ["true", "TRUE", "True", "%20true%20", "tRuE"]
    no = ["1", "yes", "false", "", "truee", "true1", "t", "on"]
    for v in yes:
        d = get_case(cid, query="?includeTranscript=%s" % v)
        assert "conversationThread" in d, "includeTranscript=%r: no conversationThread" % v
        assert d["conversationThread"] == "", "empty thread should be \"\", got %r" % d["conversationThread"]
    for v in no:
        d = get_case(cid, query="?includeTranscript=%s" % v)
        assert "conversationThread" not in d, "includeTranscript=%r: conversationThread present" % v
    for q in ("", "?", "?includeTranscript", "?other=true"):
        d = get_case(cid, query=q)
        assert "conversationThread" not in d, "query %r: conversationThread present" % q
    # with other parameters around it
    d = get_case(cid, query="?a=b&includeTranscript=true&c=d")
    assert d.get("conversationThread") == ""


def test_transcript_format_and_order(ctx):
    cid = create_case(minimal_case_body())
    other = create_case(minimal_case_body())
    t = 1774111320000  # 2026-03-21T16:42:00.000Z
    # inserted out of order; two share a timestamp (then ordered by id)
    _insert_message(cid, "inbound", t + 3600000, "Re: W-9", "Here it is.\nBest,\nMaya",
                    frm="ap@northstar.example", to="offload+%s@mail.example" % cid)
    _insert_message(cid, "outbound", t, "W-9 request", "Hello Maya,\n\nCould you send the W-9?",
                    frm="offload@mail.example", to="ap@northstar.example")
    _insert_message(other, "outbound", t + 1, "Other case", "must not appear")
    _insert_message(cid, "outbound", t + 7200123, "Re: W-9", "Thanks! \u2014 Avery \U0001F600",
                    frm="offload@mail.example", to="ap@northstar.example")
    _insert_message(cid, "inbound", t + 7200123, "Re: Re: W-9", "You're welcome.",
                    frm="ap@northstar.example", to="offload@mail.example")
    want = "\n\n".join([
        _block(t, "outbound", "offload@mail.example", "ap@northstar.example", "W-9 request",
               "Hello Maya,\n\nCould you send the W-9?"),
        _block(t + 3600000, "inbound", "ap@northstar.example", "offload+%s@mail.example" % cid, "Re: W-9",
               "Here it is.\nBest,\nMaya"),
        _block(t + 7200123, "outbound", "offload@mail.example", "ap@northstar.example", "Re: W-9",
               "Thanks! \u2014 Avery \U0001F600"),
        _block(t + 7200123, "inbound", "ap@northstar.example", "offload@mail.example", "Re: Re: W-9",
               "You're welcome."),
    ])
    assert want.startswith("--- 2026-03-21T16:42:00.000Z outbound ---\nFrom: offload@mail.example\n")
    d = get_case(cid, query="?includeTranscript=true")
    got = d.get("conversationThread")
    assert isinstance(got, str), "conversationThread %r" % got
    assert got == want, "transcript differs.\n--- want ---\n%s\n--- got ---\n%s" % (want, got)
    assert "must not appear" not in got
    d2 = get_case(other, query="?includeTranscript=true")
    assert d2["conversationThread"] == _block(t + 1, "outbound", "a@x.example", "b@y.example", "Other case",
                                              "must not appear")
    # without the flag the case is the same minus the transcript
    plain = get_case(cid)
    assert "conversationThread" not in plain
    d.pop("conversationThread")
    assert d == plain


def test_transcript_only_for_owner(ctx):
    other = new_client_full("UNLIMITED")
    cid = create_case(minimal_case_body())
    _insert_message(cid, "outbound", now_ms(), "secret", "secret body")
    expect_err(get("/cases/%s?includeTranscript=true" % cid, key=other["key"]), 403, "FORBIDDEN")


def _set_input_needed(case_id, question="Which tax year?", requested_at=None):
    rid = str(uuid.uuid4())
    requested_at = requested_at or now_ms()
    sql("INSERT INTO input_requests (id, case_id, question, status, requested_at) VALUES (%s, %s, %s, 'PENDING', %d);"
        "UPDATE cases SET status='INPUT_NEEDED', input_request_id=%s WHERE id=%s" % (
            sql_str(rid), sql_str(case_id), sql_str(question), requested_at, sql_str(rid), sql_str(case_id)))
    return rid, requested_at


def test_pending_input_request_shown(ctx):
    cid = create_case(minimal_case_body())
    q = "Which tax year? \u00e9\n(2025 or 2026)"
    rid, at = _set_input_needed(cid, q)
    d = get_case(cid)
    assert d["status"] == "INPUT_NEEDED"
    assert d["inputRequest"] == {"id": rid, "question": q, "status": "PENDING", "requestedAt": at}, \
        "inputRequest %r" % d["inputRequest"]
