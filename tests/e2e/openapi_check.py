"""openapi_check.py: checks HTTP responses against doc/openapi.yaml, so the document cannot
drift from the code.

lib.http() passes every response through checked(). A request path is first read as nginx
hands it to offload-api (percent-decoded, slashes merged, dot segments resolved), then
matched against the document's path templates:

- documented path and method: the status must be listed for the operation, the
  content-type must be one of its media types, every header the document marks required
  must be there, and a JSON body must validate against the schema (JSON Schema 2020-12,
  Debian's python3-jsonschema);
- documented path, undocumented method: 405 METHOD_NOT_ALLOWED with an Allow header that
  names exactly the documented methods (or one of nginx's own errors);
- unknown path: 404 NOT_FOUND (or one of nginx's own errors), in the error envelope.

check_webhook() does the same for the body of a webhook event (test_zy_openapi_webhooks.py
runs it on every event the suite queued). A mismatch raises OpenAPIMismatch (an AssertionError, so the test that made the request
fails and says why). Needs python3-yaml and python3-jsonschema.
"""
import copy
import json
import os
import re
import urllib.parse

import jsonschema
import yaml

SPEC_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "doc", "openapi.yaml")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# What nginx itself answers on any path (conf/nginx/offload.conf error_page targets).
NGINX_ERRORS = {
    400: {"INVALID_REQUEST"},
    413: {"PAYLOAD_TOO_LARGE"},
    414: {"INVALID_REQUEST"},
    429: {"RATE_LIMITED"},
    431: {"INVALID_REQUEST"},
    500: {"INTERNAL_ERROR"},
    501: {"INVALID_REQUEST"},
    502: {"SERVICE_UNAVAILABLE"},
    503: {"SERVICE_UNAVAILABLE"},
    504: {"GATEWAY_TIMEOUT"},
    505: {"INVALID_REQUEST"},
}


class OpenAPIMismatch(AssertionError):
    pass


# (METHOD, path template, status) of every documented response checked so far, for the
# coverage line test_zy_openapi_webhooks.py prints.
seen = set()


def nginx_path(raw_path):
    """The path as nginx passes it on (DOCUMENT_URI), or None when nginx refuses it (400)."""
    path = urllib.parse.urlsplit(raw_path).path
    path = urllib.parse.unquote(path, errors="surrogateescape")
    out = []
    for seg in re.sub("/+", "/", path).split("/")[1:]:
        if seg == ".":
            continue
        if seg == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(seg)
    trailing = path.endswith("/") or path.endswith("/.") or path.endswith("/..")
    return "/" + "/".join(out) + ("/" if trailing and out else "")


def _media_matches(documented, actual):
    if documented == "*/*":
        return True
    if documented.endswith("/*"):
        return actual.split("/")[0] == documented.split("/")[0]
    return actual == documented


class Spec:
    def __init__(self, path=SPEC_FILE):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.defs = self._rewrite(self.doc.get("components", {}).get("schemas", {}))
        self.routes = []
        for template, item in self.doc["paths"].items():
            rx = "^" + re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(template)) + "$"
            self.routes.append((re.compile(rx), template, item))
        self._validators = {}

    def _rewrite(self, schema):
        """A copy with #/components/schemas/X references turned into #/$defs/X."""
        if isinstance(schema, dict):
            out = {}
            for k, v in schema.items():
                if k == "$ref" and isinstance(v, str) and v.startswith("#/components/schemas/"):
                    out[k] = "#/$defs/" + v[len("#/components/schemas/"):]
                else:
                    out[k] = self._rewrite(v)
            return out
        if isinstance(schema, list):
            return [self._rewrite(v) for v in schema]
        return schema

    def resolve(self, obj):
        """Follows a local $ref (responses, parameters) to the object it names."""
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj and not obj["$ref"].startswith("#/components/schemas/"):
            node = self.doc
            for part in obj["$ref"].lstrip("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            obj = node
            seen += 1
            if seen > 20:
                raise OpenAPIMismatch("$ref loop at %r" % obj)
        return obj

    def validator(self, key, schema):
        v = self._validators.get(key)
        if v is None:
            root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": self.defs}
            root.update(self._rewrite(copy.deepcopy(schema)))
            jsonschema.Draft202012Validator.check_schema(root)
            v = jsonschema.Draft202012Validator(root)
            self._validators[key] = v
        return v

    def error_validator(self, codes):
        """The error envelope with code in codes (for answers the document cannot list)."""
        schema = {"allOf": [{"$ref": "#/components/schemas/ErrorEnvelope"},
                            {"properties": {"error": {"properties": {"code": {"enum": sorted(codes)}}}}}]}
        return self.validator(("error",) + tuple(sorted(codes)), schema)

    def match(self, path):
        for rx, template, item in self.routes:
            if rx.match(path):
                return template, item
        return None, None


_spec = None


def spec():
    global _spec
    if _spec is None:
        _spec = Spec()
    return _spec


def _header(headers, name):
    v = headers.get(name.lower())
    return v[0] if v else None


def _fail(what, method, path, status, raw, detail=""):
    body = raw[:400] if isinstance(raw, (bytes, bytearray)) else raw
    raise OpenAPIMismatch("doc/openapi.yaml: %s %s -> HTTP %s: %s%s\n  body: %r" % (
        method, path, status, what, ("\n  " + detail) if detail else "", body))


def _validate(v, data, method, path, status, raw, where):
    errors = sorted(v.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        loc = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        _fail("body does not match %s" % where, method, path, status, raw,
              "at %s: %s" % (loc, e.message[:600]))


def _json_body(method, path, status, headers, raw):
    ct = (_header(headers, "content-type") or "").split(";")[0].strip().lower()
    if ct != "application/json":
        _fail("content-type is %r, want application/json" % ct, method, path, status, raw)
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        _fail("body is not JSON (%s)" % e, method, path, status, raw)


def check(method, path, status, headers, raw, sp=None):
    """Checks one response; headers maps lower-case names to lists of values. Raises
    OpenAPIMismatch when the document does not allow it."""
    sp = sp or spec()
    method = method.upper()
    real = nginx_path(path)
    template, item = sp.match(real) if real is not None else (None, None)
    no_body = method == "HEAD" or status in (204, 304)

    if template is None:
        codes = set(NGINX_ERRORS.get(status, ()))
        if status == 404:
            codes.add("NOT_FOUND")
        if not codes:
            _fail("not a status an unknown path may get (404 NOT_FOUND or an nginx error)",
                  method, path, status, raw)
        if not no_body:
            data = _json_body(method, path, status, headers, raw)
            _validate(sp.error_validator(codes), data, method, path, status, raw,
                      "the error envelope with code %s" % "/".join(sorted(codes)))
        return

    op = item.get(method.lower())
    if op is None:
        documented = {m.upper() for m in item if m in METHODS}
        if status == 405:
            allow = _header(headers, "allow")
            if allow is None:
                _fail("405 without an Allow header", method, path, status, raw)
            got = {m.strip().upper() for m in allow.split(",") if m.strip()} - {"HEAD", "OPTIONS"}
            if got != documented:
                _fail("Allow: %s, but %s documents %s" % (allow, template, ", ".join(sorted(documented))),
                      method, path, status, raw)
            codes = {"METHOD_NOT_ALLOWED"}
        elif status in NGINX_ERRORS:
            codes = NGINX_ERRORS[status]
        else:
            _fail("%s is not documented for %s, so the answer must be 405 METHOD_NOT_ALLOWED"
                  % (method, template), method, path, status, raw)
        if not no_body:
            data = _json_body(method, path, status, headers, raw)
            _validate(sp.error_validator(codes), data, method, path, status, raw,
                      "the error envelope with code %s" % "/".join(sorted(codes)))
        return

    responses = op.get("responses", {})
    resp = responses.get(str(status))
    if resp is None:
        _fail("status %s is not documented for %s %s (documented: %s)" % (
            status, method, template, ", ".join(sorted(responses))), method, path, status, raw)
    resp = sp.resolve(resp)
    seen.add((method, template, str(status)))
    for name, h in (resp.get("headers") or {}).items():
        h = sp.resolve(h)
        if h.get("required") and _header(headers, name) is None:
            _fail("required header %s is missing" % name, method, path, status, raw)
    content = resp.get("content") or {}
    if not content:
        if raw and not no_body:
            _fail("documented without a body, but one came", method, path, status, raw)
        return
    ct = (_header(headers, "content-type") or "").split(";")[0].strip().lower()
    media = next((m for m in content if _media_matches(m.lower(), ct)), None)
    if media is None:
        _fail("content-type %r is not one of %s" % (ct, ", ".join(content)), method, path, status, raw)
    if no_body or media.lower() != "application/json":
        return
    data = _json_body(method, path, status, headers, raw)
    schema = content[media].get("schema")
    if schema is not None:
        _validate(sp.validator((template, method, status, media), schema), data, method, path,
                  status, raw, "%s %s %s" % (method, template, status))


def check_webhook(body, sp=None):
    """Checks the body (bytes or str) of a webhook event against the document's webhooks."""
    sp = sp or spec()
    raw = body.encode("utf-8") if isinstance(body, str) else body
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        _fail("webhook body is not JSON (%s)" % e, "POST", "(webhook)", "-", raw)
    for name, item in sp.doc.get("webhooks", {}).items():
        schema = item["post"]["requestBody"]["content"]["application/json"]["schema"]
        _validate(sp.validator(("webhook", name), schema), data, "POST", "(webhook %s)" % name, "-",
                  raw, "webhooks.%s" % name)


def checked(method, path, response):
    """lib.http's hook: checks a lib.Response and returns it."""
    check(method, path, response.status, response.headers, response.raw)
    return response
