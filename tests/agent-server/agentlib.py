"""agentlib.py: helpers for the LLM agent's end-to-end tests (tests/e2e/test_agent_*.py).

A scenario starts the scripted server (server.py) in-process on a free loopback port, runs
offload-worker passes with the llm agent pointed at it, drives replies through
offload-inbound (or, while that is not built, by SQL rows shaped like the ones it writes)
and answers through the API. Every request the worker makes is checked by the server.
"""
import email.utils
import json
import os
import subprocess
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import lib  # noqa: E402
from server import AgentServer  # noqa: E402

MODEL = "m"
API_KEY = "test"

W9_SCHEMA = {
    "type": "object",
    "properties": {
        "signedW9Received": {"type": "boolean"},
        "taxId": {"type": "string"},
        "receivedAt": {"type": "string"},
    },
    "required": ["signedW9Received", "taxId"],
}

OUTREACH = {"subject": "Signed W-9 for Example Corp",
            "body": "Hello Maya,\n\nCould you send us a signed W-9 for Northstar Supplies? We need it "
                    "for AP onboarding.\n\nBest regards,\nAvery\nAccounts Payable, Example Corp"}


def decision(kind, reply=None, question=None, result=None, reason=None):
    """An evaluate_thread answer in the strict shape."""
    return {"decision": kind, "reply": reply, "inputQuestion": question, "result": result, "reason": reason}


def new_marker():
    return "ref-" + uuid.uuid4().hex[:12]


def script(marker, draft=None, evaluate=None, **extra):
    """A server script for one case: its marker, the usual checks, and the steps."""
    s = {
        "model": MODEL, "api_key": API_KEY, "marker": marker,
        # Every call sees persona, constraints and knowledge (doc/operator-guide.md,
        # "The agent").
        "contains": ["Avery", "Accounts Payable", "friendly, concise", "Email only",
                     "Never mention payment terms", "Northstar Supplies", "AP onboarding",
                     "Collect a signed W-9 from the vendor", "Maya Chen"],
        "evaluate_contains": ["signedW9Received", "taxId"],
        "draft_message": draft if draft is not None else [{"content": OUTREACH}],
        "evaluate_thread": evaluate or [],
    }
    s.update(extra)
    return s


def case_body(marker, addr, schema=True):
    body = lib.valid_case_body()
    body["counterparty"] = {"address": addr, "name": "Maya Chen", "company": "Northstar Supplies"}
    body["goal"] = {"objective": "Collect a signed W-9 from the vendor",
                    "knowledge": {"vendorName": "Northstar Supplies", "reason": "AP onboarding",
                                  "caseRef": marker}}
    body["constraints"] = ["Email only", "Never mention payment terms"]
    body["followUpDelayHours"] = 72
    body.pop("clientWebhookUrl", None)
    if schema:
        body["resultSchema"] = W9_SCHEMA
    else:
        body.pop("resultSchema", None)
    return body


def prompts_dir():
    src = lib.env().src or os.path.abspath(os.path.join(HERE, "..", ".."))
    return os.path.join(src, "src", "agent", "prompts")


def worker_env(srv, timeout_ms=None, api_key=None):
    """lib.worker_env() plus the llm agent pointed at srv (never in os.environ, so other
    test files' workers keep the manual agent)."""
    e = lib.worker_env()
    e.update({
        "OFFLOAD_AGENT_KIND": "llm",
        "OFFLOAD_AGENT_BASE_URL": srv.url,
        "OFFLOAD_AGENT_API_KEY": api_key or API_KEY,
        "OFFLOAD_AGENT_MODEL": MODEL,
        "OFFLOAD_AGENT_PROMPTS_DIR": prompts_dir(),
        "OFFLOAD_AGENT_TIMEOUT_MS": str(timeout_ms or 20000),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    e.pop("OFFLOAD_AGENT_API_KEY_FILE", None)
    return e


def llm_pass(srv, fake=None, timeout_ms=None, check=True, api_key=None):
    """One offload-worker pass with the llm agent; returns a lib.WorkerRun."""
    cmd = lib.worker_cmd(fake)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=lib.WORKER_TIMEOUT, env=worker_env(srv, timeout_ms, api_key))
    run = lib.WorkerRun(cmd, p.returncode, p.stderr.decode("utf-8", "replace"))
    if check:
        assert run.rc == 0, "offload-worker (llm) exited %d:\n%s" % (run.rc, run.tail())
        assert run.events is not None, "offload-worker (llm) printed no summary:\n%s" % run.tail()
    return run


def llm_drain(srv, fake=None, timeout_ms=None, max_passes=20, api_key=None):
    runs = []
    for _ in range(max_passes):
        run = llm_pass(srv, fake=fake, timeout_ms=timeout_ms, api_key=api_key)
        runs.append(run)
        if not run.work_remains:
            return runs
    raise AssertionError("the worker still had work after %d passes:\n%s" % (max_passes, runs[-1].tail()))


def no_violations(srv):
    v = srv.violations()
    assert not v, "the scripted server saw bad requests: %s" % v


def started_case(ctx, srv, marker, tag, schema=True, api_key=None):
    """Creates a case and works it once with the llm agent: (caseId, address, first mail)."""
    lib.worker_ready(ctx)
    addr = lib.unique_address(tag)
    cid = lib.create_case(case_body(marker, addr, schema))
    runs = llm_drain(srv, api_key=api_key)
    c = lib.get_case(cid)
    mails = lib.outbox_to(addr)
    assert c["status"] == "RUNNING" and len(mails) == 1, "setup: %s, %d mails\n%s\nviolations %s" % (
        c["status"], len(mails), lib.worker_stderr(runs), srv.violations())
    return cid, addr, mails[0]


def _crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def reply_raw(first, addr, cid, text, msgid):
    first_id = first.header("Message-ID").strip()
    quoted = "\n".join("> " + line for line in first.text().splitlines())
    return _crlf(
        "Return-Path: <%(addr)s>\n"
        "From: Maya Chen <%(addr)s>\n"
        "To: <offload+%(cid)s@offload.test>\n"
        "Subject: Re: %(subject)s\n"
        "Date: %(date)s\n"
        "Message-ID: %(msgid)s\n"
        "In-Reply-To: %(first)s\n"
        "References: %(first)s\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "%(text)s\n"
        "\n"
        "On Mon, 23 Nov 2026 at 11:04, Avery <offload@offload.test> wrote:\n"
        "%(quoted)s\n" % {"addr": addr, "cid": cid, "subject": first.header("Subject"),
                          "date": email.utils.formatdate(), "msgid": msgid, "first": first_id,
                          "text": text, "quoted": quoted})


def inbound_available():
    return os.access(os.path.join(lib.env().bin, "offload-inbound"), os.X_OK) and \
        bool(os.environ.get("OFFLOAD_SMTP_OUTBOX"))


def send_reply(first, addr, cid, text):
    """The counterparty replies to our first message: through offload-inbound when it is
    built, else as the rows it would write. Returns the reply's Message-ID (no brackets)."""
    msgid = "%s@mail.northstar.example" % uuid.uuid4().hex
    if inbound_available():
        rc, err = lib.inbound(reply_raw(first, addr, cid, text, "<%s>" % msgid))
        assert rc == 0, "offload-inbound exited %d: %s" % (rc, err)
    else:
        at = lib.now_ms()
        first_id = first.header("Message-ID").strip().strip("<>")
        lib.sql(
            "INSERT INTO messages (case_id, direction, kind, message_id, in_reply_to, references_ids, from_addr,"
            " to_addr, subject, body_text, created_at) VALUES (%s, 'inbound', 'reply', %s, %s, %s, %s, %s, %s, %s, %d);"
            "INSERT INTO events (case_id, type, payload, state, available_at, created_at) VALUES (%s,"
            " 'REPLY_RECEIVED', JSON_OBJECT('messageRowId', LAST_INSERT_ID()), 'pending', %d, %d)" % (
                lib.sql_str(cid), lib.sql_str(msgid), lib.sql_str(first_id), lib.sql_str(first_id),
                lib.sql_str("Maya Chen <%s>" % addr), lib.sql_str("offload+%s@offload.test" % cid),
                lib.sql_str("Re: " + first.header("Subject")), lib.sql_str(text), at, lib.sql_str(cid), at, at))
    n = lib.sql_one("SELECT COUNT(*) FROM events WHERE case_id=%s AND type='REPLY_RECEIVED'" % lib.sql_str(cid))
    assert int(n) >= 1, "the reply to case %s made no REPLY_RECEIVED event" % cid
    return msgid


def answer(cid, text, decision_=None):
    """Answers the case's pending input request through the API; returns the request id."""
    c = lib.get_case(cid)
    assert c["status"] == "INPUT_NEEDED" and c["inputRequest"], "case %s is %s" % (cid, c["status"])
    rid = c["inputRequest"]["id"]
    body = {"inputRequestId": rid, "providedContext": text}
    if decision_ is not None:
        body["decision"] = decision_
    lib.expect_ok(lib.post("/cases/%s/input" % cid, body), 202)
    return rid


def calls(cid):
    """The agent_calls rows of a case: dicts, oldest first."""
    rows = lib.sql("SELECT call_name, model, prompt_tokens, completion_tokens, total_tokens, latency_ms,"
                   " http_status, outcome FROM agent_calls WHERE case_id=%s ORDER BY id" % lib.sql_str(cid))
    keys = ("call", "model", "prompt", "completion", "total", "latency", "status", "outcome")
    return [dict(zip(keys, r)) for r in rows]


def pending_events(cid):
    return lib.sql("SELECT type, attempts, last_error FROM events WHERE case_id=%s AND state='pending'"
                   % lib.sql_str(cid))


def version(cid):
    return int(lib.sql_one("SELECT version FROM cases WHERE id=%s" % lib.sql_str(cid)))


def dump(srv, runs=None):
    """Context for a failure message."""
    out = ["violations: %r" % srv.violations()]
    for r in srv.requests[-6:]:
        out.append("request %s %s foreign=%s step=%s" % (r.get("n"), r.get("name"), r.get("foreign"), r.get("step")))
    if runs:
        out.append(lib.worker_stderr(runs))
    return "\n".join(out)


def as_json(text):
    return json.loads(text)
