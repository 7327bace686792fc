"""GET /metrics (doc/api.md, "GET /healthz and GET /metrics"): Prometheus text format 0.0.4
through nginx on 127.0.0.1 without a key; counters move with requests; the database gauges
agree with the tables."""
import re
import uuid

import lib

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(r"^(%s)(\{(?:%s)(?:,(?:%s))*\})? (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$"
                       % (NAME, LABEL, LABEL))
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
HELP_RE = re.compile(r"^# HELP (%s) .+$" % NAME)
TYPE_RE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)


def scrape():
    """GET /metrics; checks the status, content type and that every line parses. Returns
    {(name, frozenset(labels.items())): float} and {family: type}."""
    r = lib.get("/metrics", key=None)
    assert r.status == 200, r
    ct = r.header("content-type", "")
    assert ct.startswith("text/plain; version=0.0.4"), ct
    text = r.raw.decode("utf-8")
    assert text.endswith("\n"), "the exposition must end with a newline"
    samples, types = {}, {}
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            assert HELP_RE.match(line), "bad HELP line: %r" % line
            continue
        if line.startswith("#"):
            m = TYPE_RE.match(line)
            assert m, "bad TYPE line: %r" % line
            assert m.group(1) not in types, "family %s typed twice" % m.group(1)
            types[m.group(1)] = m.group(2)
            continue
        m = SAMPLE_RE.match(line)
        assert m, "line does not parse as name{labels} value: %r" % line
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, "sample %s before its # TYPE line" % name
        labels = frozenset(LABEL_RE.findall(m.group(2) or ""))
        key = (name, labels)
        assert key not in samples, "duplicate sample %r" % (key,)
        samples[key] = float(m.group(3))
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_format_and_no_key_needed(ctx):
    samples, types = scrape()
    assert types.get("offload_http_requests_total") == "counter", types
    assert types.get("offload_http_request_duration_seconds") == "histogram", types
    for g in ("offload_cases", "offload_events_due", "offload_webhook_deliveries",
              "offload_webhook_deliveries_due", "offload_database_up"):
        assert types.get(g) == "gauge", (g, types)
    assert value(samples, "offload_database_up") == 1.0
    for st in ("CREATED", "RUNNING", "INPUT_NEEDED", "COMPLETED", "FAILED"):
        assert ("offload_cases", frozenset({("status", st)})) in samples, st
    for st in ("pending", "delivered", "dead"):
        assert ("offload_webhook_deliveries", frozenset({("state", st)})) in samples, st


def test_request_counters_and_histogram_move(ctx):
    route = dict(method="GET", route="/cases/*", status="404")
    before, _ = scrape()
    for _ in range(3):
        lib.expect_err(lib.get("/cases/%s" % uuid.uuid4()), 404, "CASE_NOT_FOUND")
    lib.expect_err(lib.post("/cases", {"channel": "EMAIL"}), 400, "INVALID_REQUEST")
    lib.expect_err(lib.get("/no-such-route"), 404, "NOT_FOUND")
    after, _ = scrape()
    assert value(after, "offload_http_requests_total", **route) == \
        value(before, "offload_http_requests_total", **route) + 3, (before, after)
    assert value(after, "offload_http_requests_total", method="POST", route="/cases", status="400") >= \
        value(before, "offload_http_requests_total", method="POST", route="/cases", status="400") + 1
    assert value(after, "offload_http_requests_total", method="GET", route="(unmatched)", status="404") >= \
        value(before, "offload_http_requests_total", method="GET", route="(unmatched)", status="404") + 1
    # The scrape itself is counted (seen by the next scrape).
    assert value(after, "offload_http_requests_total", method="GET", route="/metrics", status="200") >= 1
    # Histogram: cumulative buckets, +Inf = _count = the counter, a positive _sum.
    count = value(after, "offload_http_request_duration_seconds_count", **route)
    assert count == value(after, "offload_http_requests_total", **route), count
    assert value(after, "offload_http_request_duration_seconds_sum", **route) > 0
    buckets = sorted(
        (float("inf") if dict(k[1])["le"] == "+Inf" else float(dict(k[1])["le"]), v)
        for k, v in after.items()
        if k[0] == "offload_http_request_duration_seconds_bucket"
        and {x: y for x, y in k[1] if x != "le"} == route)
    assert len(buckets) >= 2 and buckets[-1][0] == float("inf"), buckets
    assert all(buckets[i][1] <= buckets[i + 1][1] for i in range(len(buckets) - 1)), buckets
    assert buckets[-1][1] == count, (buckets, count)


def test_database_gauges_match_the_tables(ctx):
    lib.create_case(lib.minimal_case_body())
    samples, _ = scrape()
    for status, n in lib.sql("SELECT status, COUNT(*) FROM cases GROUP BY status"):
        assert value(samples, "offload_cases", status=status) == int(n), (status, n)
    for state, n in lib.sql("SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state"):
        assert value(samples, "offload_webhook_deliveries", state=state) == int(n), (state, n)
    now = lib.now_ms()
    due = int(lib.sql_one("SELECT COUNT(*) FROM events WHERE state = 'pending' AND available_at <= %d"
                          % now))
    # The case just created queued a CASE_CREATED event, due at once.
    assert 1 <= value(samples, "offload_events_due") <= due, (samples.get(("offload_events_due", frozenset())), due)
    assert value(samples, "offload_events_due_age_seconds") >= 0


def test_metrics_method_not_allowed(ctx):
    r = lib.post("/metrics", {})
    lib.expect_err(r, 405, "METHOD_NOT_ALLOWED")
    assert r.header("allow") == "GET", r.headers


def test_agent_token_counters_match_the_accounting_table(ctx):
    if not lib.sql("SHOW TABLES LIKE 'agent_calls'"):
        return  # a schema without the agent's accounting table: nothing to count
    cid = lib.create_case(lib.minimal_case_body())
    now = lib.now_ms()
    for name, p, c, outcome in (("draft_message", 120, 30, "ok"), ("draft_message", 80, 0, "http_error"),
                                ("evaluate_thread", 500, 42, "ok")):
        lib.sql("INSERT INTO agent_calls (case_id, call_name, model, prompt_tokens, completion_tokens,"
                " total_tokens, latency_ms, http_status, outcome, created_at) VALUES"
                " ('%s', '%s', 'test-model', %d, %d, %d, 5, 200, '%s', %d)" % (cid, name, p, c, p + c, outcome, now))
    samples, types = scrape()
    assert types.get("offload_agent_tokens_total") == "counter", types
    assert types.get("offload_agent_calls_total") == "counter", types
    for name, p, c in lib.sql("SELECT call_name, SUM(prompt_tokens), SUM(completion_tokens) FROM agent_calls"
                              " GROUP BY call_name"):
        assert value(samples, "offload_agent_tokens_total", call=name, kind="prompt") == int(p), (name, p)
        assert value(samples, "offload_agent_tokens_total", call=name, kind="completion") == int(c), (name, c)
    for name, outcome, n in lib.sql("SELECT call_name, outcome, COUNT(*) FROM agent_calls"
                                    " GROUP BY call_name, outcome"):
        assert value(samples, "offload_agent_calls_total", call=name, outcome=outcome) == int(n), (name, outcome)
    lib.sql("UPDATE events SET state = 'done' WHERE case_id = '%s'" % cid)
