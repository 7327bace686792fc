"""doc/openapi.yaml and its response check (tests/e2e/openapi_check.py, run by lib.http on
every response of the suite): the check itself refuses drift, and the document names every
route of the route table (ROUTE_LIST in src/api/route_match.h)."""
import json
import os
import re
import uuid

import openapi_check
from lib import env, get

CASE_ID = str(uuid.uuid4())
ATT_ID = str(uuid.uuid4())
JSON = {"content-type": ["application/json"]}


def _case():
    return {
        "caseId": CASE_ID, "status": "RUNNING", "channel": "EMAIL", "createdAt": 1774131900000,
        "updatedAt": 1774131900001, "nextActionAt": 253402300799999, "attemptCount": 1,
        "maxAttempts": 3, "followUpDelayHours": 72,
        "goal": {"objective": "Collect a signed W-9"},
        "counterparty": {"address": "ap@northstar.example", "name": "Maya Chen"},
        "senderPersona": {"name": "Avery"}, "attachments": [], "resultStatus": None,
        "result": None, "inputRequest": None, "failureReason": None, "metadata": None,
    }


def _ok(data):
    return json.dumps({"ok": True, "data": data}).encode()


def _err(code, message="something"):
    return json.dumps({"ok": False, "error": {"code": code, "message": message}}).encode()


def _refused(method, path, status, headers, raw, why):
    try:
        openapi_check.check(method, path, status, headers, raw)
    except openapi_check.OpenAPIMismatch as e:
        return str(e)
    raise AssertionError("the OpenAPI check accepted a response it must refuse (%s): %s %s -> %s %r"
                         % (why, method, path, status, raw[:200]))


def test_openapi_check_accepts_conforming_responses(ctx):
    c = _case()
    openapi_check.check("GET", "/cases/" + CASE_ID, 200, JSON, _ok(c))
    c2 = dict(c, clientReferenceId="r", constraints=["x"], resultSchema={"type": "object"},
              conversationThread="--- ...", metadata={"a": 1}, status="INPUT_NEEDED",
              inputRequest={"id": str(uuid.uuid4()), "question": "q?", "status": "PENDING",
                            "requestedAt": 1})
    openapi_check.check("GET", "/cases/%s?includeTranscript=true" % CASE_ID, 200, JSON, _ok(c2))
    openapi_check.check("GET", "/cases?limit=1", 200, JSON, _ok({"cases": [c], "nextCursor": None}))
    openapi_check.check("POST", "/cases", 201, JSON, _ok({"caseId": CASE_ID}))
    openapi_check.check("POST", "/cases", 429, JSON, _err("USAGE_LIMIT_REACHED"))
    openapi_check.check("GET", "/cases/%2e%2e/cases", 200, JSON, _ok({"cases": [], "nextCursor": None}))
    openapi_check.check("DELETE", "/cases", 405, dict(JSON, allow=["GET, POST"]), _err("METHOD_NOT_ALLOWED"))
    openapi_check.check("GET", "/nope", 404, JSON, _err("NOT_FOUND"))
    openapi_check.check("GET", "/files/%s?expires=1&sig=x" % ATT_ID, 200,
                        {"content-type": ["image/png"], "content-disposition": ["attachment"]}, b"\x89PNG")
    # and a real one, through lib.http and its hook
    get("/healthz", key=None)


def test_openapi_check_refuses_drift(ctx):
    """Every kind of drift the check exists for fails it."""
    path = "/cases/" + CASE_ID
    c = _case()
    rows = [
        ("GET", path, 200, JSON, _ok({k: v for k, v in c.items() if k != "nextActionAt"}),
         "a required field is missing"),
        ("GET", path, 200, JSON, _ok(dict(c, clientWebhookUrl="https://x.example/")),
         "a field the document does not have (clientWebhookUrl must never be shown)"),
        ("GET", path, 200, JSON, _ok(dict(c, attemptCount="1")), "a string for an integer"),
        ("GET", path, 200, JSON, _ok(dict(c, status="DONE")), "a status outside the enum"),
        ("GET", path, 200, JSON, _ok(dict(c, nextActionAt=None)), "null instead of the sentinel"),
        ("GET", path, 200, JSON, _ok(dict(c, caseId=CASE_ID.upper())), "an uppercase UUID"),
        ("GET", path, 200, JSON, _ok(dict(c, goal={"objective": "x", "extra": 1})),
         "an unknown field in a nested object"),
        ("GET", path, 200, JSON, json.dumps({"ok": True, "data": c, "extra": 1}).encode(),
         "an extra member in the success envelope"),
        ("GET", path, 200, JSON, json.dumps({"ok": 1, "data": c}).encode(), "ok is not true"),
        ("GET", "/cases", 200, JSON, _ok({"cases": [dict(c, conversationThread="t")], "nextCursor": None}),
         "a listed case with a transcript"),
        ("GET", "/cases", 200, JSON, _ok({"cases": []}), "no nextCursor"),
        ("GET", path, 404, JSON, _err("NOT_FOUND"), "the wrong error code for the status"),
        ("GET", path, 404, JSON, json.dumps({"ok": False, "error": {"code": "CASE_NOT_FOUND"}}).encode(),
         "an error without a message"),
        ("GET", path, 404, JSON, json.dumps({"ok": False, "error": {"code": "CASE_NOT_FOUND", "message": "m",
                                                                      "sql": "SELECT"}}).encode(),
         "an extra member in the error"),
        ("GET", path, 418, JSON, _err("INVALID_REQUEST"), "an undocumented status"),
        ("GET", "/healthz", 201, JSON, _ok({"database": "ok"}), "an undocumented success status"),
        ("GET", path, 404, {"content-type": ["text/html"]}, b"<html>404</html>", "HTML instead of JSON"),
        ("GET", path, 404, JSON, b"not json", "a body that is not JSON"),
        ("DELETE", path, 405, JSON, _err("METHOD_NOT_ALLOWED"), "405 without Allow"),
        ("DELETE", path, 405, dict(JSON, allow=["GET, POST"]), _err("METHOD_NOT_ALLOWED"),
         "Allow names a method the path does not have"),
        ("DELETE", path, 404, JSON, _err("CASE_NOT_FOUND"), "an undocumented method that is not 405"),
        ("GET", "/nope", 200, JSON, _ok({}), "an unknown path that succeeds"),
        ("GET", "/nope", 404, {"content-type": ["text/html"]}, b"<html></html>", "an nginx HTML page"),
        ("POST", "/cases", 201, JSON, _ok({"caseId": CASE_ID, "status": "CREATED"}),
         "an extra field in the 201"),
        ("POST", "/cases", 429, JSON, _err("RATE_LIMITED"), "RATE_LIMITED is allowed, but here a header is not"),
        ("GET", "/cases/%s/attachments/%s" % (CASE_ID, ATT_ID), 200, JSON,
         _ok({"attachmentId": ATT_ID, "name": "a.pdf", "size": 1, "type": "application/pdf",
              "messageId": "<m@x>", "inboxId": "in@x", "receivedAt": 1,
              "downloadUrl": "http://localhost/files/%s?expires=1&sig=abc" % ATT_ID,
              "expiresAt": 1774131900000}),
         "expiresAt in Unix ms instead of ISO 8601"),
        ("GET", "/files/%s?expires=1&sig=x" % ATT_ID, 200, {"content-type": ["image/png"]}, b"\x89PNG",
         "a download without Content-Disposition"),
        ("GET", "/metrics", 200, JSON, b"{}", "JSON where text/plain is documented"),
    ]
    for method, p, status, headers, raw, why in rows:
        if why.startswith("RATE_LIMITED is allowed"):
            # The 429 of POST /cases may be either code; only GET routes require Retry-After.
            openapi_check.check(method, p, status, headers, raw)
            _refused("GET", "/cases", 429, JSON, _err("RATE_LIMITED"), "429 RATE_LIMITED without Retry-After")
            continue
        _refused(method, p, status, headers, raw, why)

    event = {"event_id": "evt_%s_case_failed_1" % CASE_ID, "event_type": "case.failed", "timestamp": 1,
             "data": {"caseId": CASE_ID, "status": "FAILED", "channel": "EMAIL", "attemptCount": 1,
                      "attachments": [], "resultStatus": "BOUNCED", "result": None, "failureReason": "550"}}
    openapi_check.check_webhook(json.dumps(event))
    for bad, why in [(dict(event, event_type="case.created"), "an unknown event type"),
                     (dict(event, data={k: v for k, v in event["data"].items() if k != "caseId"}),
                      "data without caseId"),
                     (dict(event, data=dict(event["data"], clientWebhookUrl="https://x.example/")),
                      "data with a field the document does not have"),
                     (dict(event, timestamp="1"), "a string timestamp")]:
        try:
            openapi_check.check_webhook(json.dumps(bad))
        except openapi_check.OpenAPIMismatch:
            continue
        raise AssertionError("the OpenAPI check accepted a webhook body it must refuse (%s)" % why)


def test_openapi_documents_every_route(ctx):
    """The route table (ROUTE_LIST in src/api/route_match.h) and the paths of doc/openapi.yaml
    are the same set."""
    src = env().src or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(src, "src", "api", "route_match.h"), encoding="utf-8") as f:
        text = f.read()
    table = set()
    for method, pattern in re.findall(r'\bX\(\s*"([A-Z]+)",\s*"(/[^"]*)",', text):
        table.add((method, re.sub(r"\*", "{}", pattern)))
    assert table, "no route table (X(\"METHOD\", \"/path\", ...) lines) found in src/api/route_match.h"
    doc = set()
    for template, item in openapi_check.spec().doc["paths"].items():
        for m in item:
            if m in openapi_check.METHODS:
                doc.add((m.upper(), re.sub(r"\{[^}]+\}", "{}", template)))
    assert table == doc, "route_match.h and doc/openapi.yaml differ: only in route_match.h %s; only in the document %s" % (
        sorted(table - doc), sorted(doc - table))


def _doc_error_pairs():
    """(status, code) pairs the document allows, from every operation's error responses, plus
    the two the response check itself knows (unknown path, undocumented method)."""
    sp = openapi_check.spec()
    schemas = sp.doc["components"]["schemas"]
    pairs = {(404, "NOT_FOUND"), (405, "METHOD_NOT_ALLOWED")}
    for item in sp.doc["paths"].values():
        for m, op in item.items():
            if m not in openapi_check.METHODS:
                continue
            for status, resp in op["responses"].items():
                media = sp.resolve(resp).get("content", {}).get("application/json")
                if not media or not status.startswith(("4", "5")):
                    continue
                schema = media["schema"]
                if "$ref" in schema:
                    schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
                code = schema["allOf"][1]["properties"]["error"]["properties"]["code"]
                for c in code.get("enum", [code.get("const")]):
                    pairs.add((int(status), c))
    return pairs


def test_openapi_documents_every_error_code(ctx):
    """Every (status, code) that src/ or the nginx snippet can answer is allowed by the document
    for that status somewhere, every code of the document's ErrorCode is answered by something,
    and doc/api.md names every code."""
    src = env().src or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    produced = set()
    for root, _, files in os.walk(os.path.join(src, "src")):
        for name in files:
            if name.endswith(".c"):
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    text = f.read()
                for status, code in re.findall(
                        r'http_reply_error(?:_headers)?\(\s*&?r,\s*([0-9]+),\s*(?:\w+,\s*)?"([A-Z_]+)"', text):
                    produced.add((int(status), code))
                if "http_reply_internal(" in text:
                    produced.add((500, "INTERNAL_ERROR"))
    assert len(produced) >= 10, "found only %r in src/: has http_reply_error changed? update this test" % produced
    with open(os.path.join(src, "conf", "nginx", "offload.conf"), encoding="utf-8") as f:
        nginx = set((int(s), c) for s, c in re.findall(r"return ([0-9]+) '\{\"ok\":false,\"error\":\{\"code\":\"([A-Z_]+)\"",
                                                     f.read()))
    assert nginx, "no JSON error pages found in conf/nginx/offload.conf"
    documented = _doc_error_pairs()
    missing = sorted((produced | nginx) - documented)
    assert not missing, "answered by src/ or nginx but not in doc/openapi.yaml: %s" % missing
    enum = set(openapi_check.spec().doc["components"]["schemas"]["ErrorCode"]["enum"])
    unused = sorted(enum - {c for _, c in produced | nginx})
    assert not unused, "ErrorCode values nothing answers (remove them, or the code lost them): %s" % unused
    assert {c for _, c in documented} <= enum, "codes outside ErrorCode: %s" % sorted({c for _, c in documented} - enum)
    with open(os.path.join(src, "doc", "api.md"), encoding="utf-8") as f:
        api_md = f.read()
    absent = sorted(c for c in enum if "`%s`" % c not in api_md)
    assert not absent, "doc/api.md does not name these error codes: %s" % absent
