"""Attachments: metadata in the case, GET /cases/{id}/attachments/{aid}, signed /files/ links
(doc/api.md, "Attachments")."""
import calendar
import hashlib
import os
import time
import urllib.parse
import uuid

from lib import (ISO_MS_RE, create_case, env, expect_err, expect_ok, find_config_key, get, get_case, http,
                 minimal_case_body, new_client_full, now_ms, sign_link, sql, sql_str)


def store_bytes(aid, data):
    """The bytes of attachment aid as ingest stores them: rows of attachment_chunks of 256 KiB
    (src/store/attachments.h), written in pieces small enough for one mariadb argument."""
    chunk, piece = 256 * 1024, 32 * 1024
    for seq, off in enumerate(range(0, len(data), chunk)):
        part = data[off:off + chunk]
        sql("INSERT INTO attachment_chunks (attachment_id, seq, data) VALUES (%s, %d, X'%s')"
            % (sql_str(aid), seq, part[:piece].hex()))
        for p in range(piece, len(part), piece):
            sql("UPDATE attachment_chunks SET data = CONCAT(data, X'%s') WHERE attachment_id = %s AND seq = %d"
                % (part[p:p + piece].hex(), sql_str(aid), seq))


def _add_attachment(case_id, data, name="W-9 signed.pdf", ctype="application/pdf", received_at=None,
                    legacy_file=False):
    """An attachment row of case_id with its bytes in the database, as ingest stores them;
    legacy_file: a file of [files] dir instead, as stored before sql/009."""
    aid = str(uuid.uuid4())
    rel = ""
    if legacy_file:
        rel = "%s/%s" % (case_id, aid)
        e = env()
        d = os.path.join(e.files_dir, case_id)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        path = os.path.join(e.files_dir, rel)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
    else:
        store_bytes(aid, data)
    received_at = received_at or now_ms()
    mid = "<%s@mail.northstar.example>" % uuid.uuid4()
    inbox = "offload+%s@mail.example" % case_id[:8]
    sql("INSERT INTO attachments (id, case_id, name, size, content_type, sha256, storage_path, message_id, "
        "inbox_id, received_at) VALUES (%s, %s, %s, %d, %s, %s, %s, %s, %s, %d)" % (
            sql_str(aid), sql_str(case_id), sql_str(name), len(data), sql_str(ctype),
            sql_str(hashlib.sha256(data).hexdigest()), sql_str(rel), sql_str(mid), sql_str(inbox), received_at))
    # What ingest does in the same transaction (sql/008_attachment_count.sql).
    sql("UPDATE cases SET attachment_count = attachment_count + 1 WHERE id = %s" % sql_str(case_id))
    return {"attachmentId": aid, "name": name, "size": len(data), "type": ctype, "messageId": mid,
            "inboxId": inbox, "receivedAt": received_at}


def _fixture(ctx):
    def make():
        cid = create_case(minimal_case_body())
        data = bytes(range(256)) * 40 + b"%PDF-1.4\r\n\x00end"
        a1 = _add_attachment(cid, data, received_at=now_ms() - 1000)
        a2 = _add_attachment(cid, "caf\u00e9 \u2615\n".encode() * 3, name="Zo\u00eb \u5c71\u7530.txt",
                             ctype="text/plain")
        return {"caseId": cid, "a1": a1, "a2": a2, "data1": data, "data2": "caf\u00e9 \u2615\n".encode() * 3}
    return ctx.once("attachments", make)


def _iso_to_ms(s):
    assert ISO_MS_RE.match(s), "expiresAt %r is not ISO 8601 UTC with milliseconds" % s
    t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) * 1000 + int(s[20:23])


def _local_path(url):
    """The path+query of a download URL, to be fetched from the stack's loopback address."""
    u = urllib.parse.urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


def _meta(cid, aid, key=None):
    kw = {} if key is None else {"key": key}
    return get("/cases/%s/attachments/%s" % (cid, aid), **kw)


def test_case_lists_attachments(ctx):
    f = _fixture(ctx)
    d = get_case(f["caseId"])
    atts = d["attachments"]
    assert isinstance(atts, list) and len(atts) == 2, "attachments %r" % atts
    by_id = {a.get("attachmentId"): a for a in atts}
    for k in ("a1", "a2"):
        want = f[k]
        got = by_id.get(want["attachmentId"])
        assert got == want, "attachment metadata %r, want %r" % (got, want)
    # oldest received first
    assert [a["attachmentId"] for a in atts] == [f["a1"]["attachmentId"], f["a2"]["attachmentId"]], \
        "attachments not ordered by receivedAt"


def test_attachment_metadata_and_signed_link(ctx):
    f = _fixture(ctx)
    a = f["a1"]
    t0 = int(time.time())
    d = expect_ok(_meta(f["caseId"], a["attachmentId"]), 200)
    t1 = int(time.time())
    want_keys = set(a) | {"downloadUrl", "expiresAt"}
    assert set(d) == want_keys, "keys %r, want %r" % (sorted(d), sorted(want_keys))
    for k, v in a.items():
        assert d[k] == v, "%s: %r, want %r" % (k, d[k], v)
    url = d["downloadUrl"]
    u = urllib.parse.urlsplit(url)
    assert u.scheme in ("http", "https") and u.netloc, "downloadUrl %r is not absolute" % url
    assert u.path.endswith("/files/%s" % a["attachmentId"]), "downloadUrl path %r" % u.path
    base = find_config_key("public_base_url")
    if base:
        assert url.startswith(base[1].rstrip("/") + "/files/%s?" % a["attachmentId"]), \
            "downloadUrl %r does not start with public_base_url %r" % (url, base[1])
    q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
    assert set(q) == {"expires", "sig"} and len(q["expires"]) == 1 and len(q["sig"]) == 1, "query %r" % u.query
    assert u.query.startswith("expires="), "query should be expires=…&sig=…: %r" % u.query
    expires = int(q["expires"][0])
    assert t0 + 3600 - 5 <= expires <= t1 + 3600 + 5, "expires %d, want about now+3600 (%d)" % (expires, t0 + 3600)
    exp_ms = _iso_to_ms(d["expiresAt"])
    assert abs(exp_ms - expires * 1000) < 1000, "expiresAt %s does not match expires=%d" % (d["expiresAt"], expires)
    sig = q["sig"][0]
    assert "=" not in sig and len(sig) == 43, "sig %r is not unpadded base64url of 32 bytes" % sig
    assert sig == sign_link(a["attachmentId"], expires), "sig does not match HMAC-SHA256 over /files/{id}\\n{expires}"


def test_download_without_key(ctx):
    f = _fixture(ctx)
    for k, data in (("a1", f["data1"]), ("a2", f["data2"])):
        a = f[k]
        d = expect_ok(_meta(f["caseId"], a["attachmentId"]), 200)
        r = http("GET", _local_path(d["downloadUrl"]), key=None)
        assert r.status == 200, "download: HTTP %s %r" % (r.status, r.raw[:300])
        assert r.raw == data, "downloaded %d bytes, want %d (content differs)" % (len(r.raw), len(data))
        ct = r.header("content-type", "")
        assert ct.split(";")[0].strip().lower() == a["type"], "content-type %r, want %r" % (ct, a["type"])
        assert "x-accel-redirect" not in r.headers, "X-Accel-Redirect leaked to the client"
        # the same link works twice, and with a key too
        r2 = http("GET", _local_path(d["downloadUrl"]))
        assert r2.status == 200 and r2.raw == data


def _flip(s):
    c = s[-2]
    return s[:-2] + ("A" if c != "A" else "B") + s[-1]


def test_altered_links_403(ctx):
    f = _fixture(ctx)
    a1, a2 = f["a1"]["attachmentId"], f["a2"]["attachmentId"]
    d = expect_ok(_meta(f["caseId"], a1), 200)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(d["downloadUrl"]).query)
    exp, sig = q["expires"][0], q["sig"][0]
    e2 = int(exp)
    bad = [
        "/files/%s?expires=%s&sig=%s" % (a1, exp, _flip(sig)),
        "/files/%s?expires=%s&sig=%s" % (a1, exp, sig[:-1]),
        "/files/%s?expires=%s&sig=%s" % (a1, exp, sig + "A"),
        "/files/%s?expires=%s&sig=%s" % (a1, exp, sig.upper() if sig.upper() != sig else sig.lower()),
        "/files/%s?expires=%d&sig=%s" % (a1, e2 + 1, sig),
        "/files/%s?expires=%d&sig=%s" % (a1, e2 + 86400 * 365, sig),
        "/files/%s?expires=%d&sig=%s" % (a1, e2 - 1, sig),
        "/files/%s?expires=%s&sig=%s" % (a1, exp + "x", sig),
        "/files/%s?expires=&sig=%s" % (a1, sig),
        "/files/%s?sig=%s" % (a1, sig),
        "/files/%s?expires=%s" % (a1, exp),
        "/files/%s?expires=%s&sig=" % (a1, exp),
        "/files/%s" % a1,
        "/files/%s?expires=%s&sig=%s" % (a2, exp, sig),  # another attachment's id
        "/files/%s?expires=%s&sig=%s" % (uuid.uuid4(), exp, sig),
    ]
    for path in bad:
        r = http("GET", path, key=None)
        try:
            expect_err(r, 403, "FORBIDDEN")
            assert r.raw != f["data1"]
        except AssertionError as e:
            raise AssertionError("GET %s: %s" % (path, e))


def test_expired_link_410(ctx):
    f = _fixture(ctx)
    aid = f["a1"]["attachmentId"]
    for expires in (int(time.time()) - 10, int(time.time()) - 86400 * 30, 1):
        path = "/files/%s?expires=%d&sig=%s" % (aid, expires, sign_link(aid, expires))
        r = http("GET", path, key=None)
        expect_err(r, 410, "LINK_EXPIRED")
        assert f["data1"] not in r.raw


def test_forged_link_with_real_key_works(ctx):
    # Checks the signing formula from the other side: a link we sign ourselves is served.
    f = _fixture(ctx)
    aid = f["a2"]["attachmentId"]
    expires = int(time.time()) + 120
    r = http("GET", "/files/%s?expires=%d&sig=%s" % (aid, expires, sign_link(aid, expires)), key=None)
    assert r.status == 200 and r.raw == f["data2"], "HTTP %s %r" % (r.status, r.raw[:200])


def test_attachment_errors(ctx):
    f = _fixture(ctx)
    cid = f["caseId"]
    expect_err(_meta(cid, uuid.uuid4()), 404, "ATTACHMENT_NOT_FOUND")
    expect_err(_meta(cid, "not-a-uuid"), 404, "ATTACHMENT_NOT_FOUND")
    # an attachment of another case of the same client
    other_case = create_case(minimal_case_body())
    expect_err(_meta(other_case, f["a1"]["attachmentId"]), 404, "ATTACHMENT_NOT_FOUND")
    # unknown case
    expect_err(_meta(uuid.uuid4(), f["a1"]["attachmentId"]), 404, "CASE_NOT_FOUND")
    expect_err(_meta("not-a-uuid", f["a1"]["attachmentId"]), 404, "CASE_NOT_FOUND")
    # another client's case: forbidden, whatever the attachment
    other = new_client_full("UNLIMITED")
    expect_err(_meta(cid, f["a1"]["attachmentId"], key=other["key"]), 403, "FORBIDDEN")
    expect_err(_meta(cid, uuid.uuid4(), key=other["key"]), 403, "FORBIDDEN")
    # without a key
    r = get("/cases/%s/attachments/%s" % (cid, f["a1"]["attachmentId"]), key=None)
    expect_err(r, 401, "UNAUTHORIZED")


def test_attachment_of_other_client_in_own_case_path(ctx):
    # The other client's own attachment, asked for through a case of ours: not found.
    f = _fixture(ctx)
    other = new_client_full("UNLIMITED")
    ocid = create_case(minimal_case_body(), key=other["key"])
    oa = _add_attachment(ocid, b"other client's secret")
    expect_err(_meta(f["caseId"], oa["attachmentId"]), 404, "ATTACHMENT_NOT_FOUND")
    d = expect_ok(_meta(ocid, oa["attachmentId"], key=other["key"]), 200)
    assert d["attachmentId"] == oa["attachmentId"]


def _link(cid, aid):
    return _local_path(expect_ok(_meta(cid, aid), 200)["downloadUrl"])


def test_download_from_database_headers_range_and_preconditions(ctx):
    """Bytes in the database stream from offload-api (any API host serves them) with what
    nginx gave a file: Content-Length, a strong ETag (the SHA-256), Last-Modified (received),
    Content-Disposition, nosniff; Range is 206 (nginx, fastcgi_force_ranges), a Range past
    the end 416; If-Match / If-Unmodified-Since that fail are 412 in the envelope; If-None-Match
    (listed, weak or *) and If-Modified-Since not older than the file are 304 without a body."""
    cid = create_case(minimal_case_body())
    data = os.urandom(600 * 1024 + 17)  # three chunks, the last one short
    a = _add_attachment(cid, data, name="scan 2.pdf", received_at=now_ms() - 5000)
    path = _link(cid, a["attachmentId"])
    etag = '"%s"' % hashlib.sha256(data).hexdigest()
    r = http("GET", path, key=None)
    assert r.status == 200 and r.raw == data, "HTTP %s, %d bytes (want %d)" % (r.status, len(r.raw), len(data))
    assert r.header("content-length") == str(len(data)), r.headers
    assert r.header("etag") == etag, "ETag %r, want %r" % (r.header("etag"), etag)
    lm = r.header("last-modified")
    assert lm and calendar.timegm(time.strptime(lm, "%a, %d %b %Y %H:%M:%S GMT")) == a["receivedAt"] // 1000, lm
    assert r.header("x-content-type-options") == "nosniff"
    assert r.header("content-disposition", "").startswith('attachment; filename="scan 2.pdf"'), r.headers
    assert "x-accel-redirect" not in r.headers
    # Ranges across chunk boundaries
    for first, last in ((0, 7), (256 * 1024 - 3, 256 * 1024 + 5), (len(data) - 10, len(data) - 1)):
        r = http("GET", path, key=None, headers={"Range": "bytes=%d-%d" % (first, last)})
        assert r.status == 206 and r.raw == data[first:last + 1], "Range %d-%d: HTTP %s, %d bytes" % (
            first, last, r.status, len(r.raw))
        assert r.header("content-range") == "bytes %d-%d/%d" % (first, last, len(data)), r.headers
    r = http("GET", path, key=None, headers={"Range": "bytes=%d-" % (len(data) + 10)})
    expect_err(r, 416, "INVALID_REQUEST")
    assert r.header("content-range") == "bytes */%d" % len(data), r.headers
    # If-Range with another ETag: the whole file
    r = http("GET", path, key=None, headers={"Range": "bytes=0-7", "If-Range": '"other"'})
    assert r.status == 200 and r.raw == data, r.status
    for h in ({"If-Match": '"not-this"'}, {"If-Match": "W/" + etag},
              {"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}):
        expect_err(http("GET", path, key=None, headers=h), 412, "INVALID_REQUEST")
    for h in ({"If-Match": etag}, {"If-Match": '"x", %s' % etag}, {"If-Match": "*"},
              {"If-Unmodified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}, {"If-None-Match": '"other"'},
              {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}, {"If-Modified-Since": "not a date"}):
        r = http("GET", path, key=None, headers=h)
        assert r.status == 200 and r.raw == data, "%r: HTTP %s" % (h, r.status)
    for h in ({"If-None-Match": "*"}, {"If-None-Match": etag}, {"If-None-Match": '"x" , W/%s' % etag},
              {"If-Modified-Since": lm}, {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}):
        r = http("GET", path, key=None, headers=h)
        assert r.status == 304 and r.raw == b"", "%r: HTTP %s %r" % (h, r.status, r.raw[:100])
        assert r.header("etag") == etag
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    r = http("GET", path, key=None, headers={"If-None-Match": '"other"', "If-Modified-Since": lm})
    assert r.status == 200 and r.raw == data


def test_download_empty_attachment_from_database(ctx):
    cid = create_case(minimal_case_body())
    a = _add_attachment(cid, b"", name="empty.txt", ctype="text/plain")
    r = http("GET", _link(cid, a["attachmentId"]), key=None)
    assert r.status == 200 and r.raw == b"" and r.header("content-length") == "0", (r.status, r.headers)


def test_download_legacy_file_attachment(ctx):
    """An attachment stored before sql/009 (a file of [files] dir, storage_path set) is still
    served, by nginx after X-Accel-Redirect."""
    cid = create_case(minimal_case_body())
    data = b"%PDF-1.4 stored before 009\n" * 30
    a = _add_attachment(cid, data, legacy_file=True)
    r = http("GET", _link(cid, a["attachmentId"]), key=None)
    assert r.status == 200 and r.raw == data, (r.status, r.raw[:100])
    assert "x-accel-redirect" not in r.headers


def test_download_missing_chunk_is_never_a_whole_file(ctx):
    """A chunk missing from the database (damage): the client never receives a response
    that looks complete: an error, or a body cut short of its Content-Length."""
    cid = create_case(minimal_case_body())
    data = os.urandom(300 * 1024)
    a = _add_attachment(cid, data)
    sql("DELETE FROM attachment_chunks WHERE attachment_id = %s AND seq = 1" % sql_str(a["attachmentId"]))
    try:
        r = http("GET", _link(cid, a["attachmentId"]), key=None)
    except Exception as e:  # the connection closed short of Content-Length
        return "cut short: %s" % type(e).__name__
    assert not (r.status == 200 and len(r.raw) == len(data)), "a damaged attachment was served whole"
    assert r.raw != data
