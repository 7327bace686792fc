/* files.c: signed attachment downloads. The bytes are in the database (attachment_chunks) and
 * stream from here, so any API host serves any attachment (doc/operator-guide.md, "Scaling
 * out"); an attachment stored before sql/009 is a file that nginx sends after
 * X-Accel-Redirect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/files.h"
#include "api/http.h"
#include "common/links.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "store/attachments.h"

/* The internal nginx location that aliases the files directory. */
#define FILES_INTERNAL_PREFIX "/_offload_files/"

int files_key_or_reply(struct http_request *r)
{
	struct api_thread *t = r->t;
	const char *err = NULL;
	int found;

	if (t->files_key_len)
		return 0;
	found = store_files_signing_key(t->db, t->files_key, sizeof t->files_key, &t->files_key_len,
					&err);
	if (found < 0) {
		http_reply_db_error(r, err);
		return -1;
	}
	if (found == 0) {
		http_reply_internal(r, "settings.files_signing_key is missing; run offloadctl migrate");
		return -1;
	}
	return 0;
}

/* Storage paths are written by the ingest code; refuse anything that could leave the
 * files directory or break the header, whatever the database says. */
static int safe_storage_path(const char *p)
{
	if (!*p || *p == '/' || strstr(p, "..") || strlen(p) > 400)
		return 0;
	for (; *p; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == '/'))
			return 0;
	}
	return 1;
}

/* A header value we pass on: printable ASCII only. */
static int safe_header_value(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || (unsigned char)*v >= 0x7f)
			return 0;
	return 1;
}

/* Content-Disposition with an ASCII fallback and the RFC 8187 UTF-8 form. */
static void disposition(const char *name, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";

	buf_puts(out, "Content-Disposition: attachment; filename=\"");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		char c = (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' && *p != '%') ? (char)*p : '_';

		buf_append(out, &c, 1);
	}
	buf_puts(out, "\"; filename*=UTF-8''");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '.' || *p == '-' || *p == '_') {
			buf_append(out, p, 1);
		} else {
			char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			buf_append(out, esc, 3);
		}
	}
	buf_puts(out, "\r\n");
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" → Unix seconds; -1 when v is not such a date. */
static int64_t parse_http_date(const char *v)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof tm);
	end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end)
		return -1;
	return (int64_t)timegm(&tm);
}

/* 1 when the If-Match / If-None-Match list v names etag (or is "*"); weak: W/ tags count. */
static int etag_listed(const char *v, const char *etag, int weak)
{
	size_t elen = strlen(etag);

	while (*v) {
		const char *end;
		size_t n;

		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		if (!*v)
			break;
		if (*v == '*')
			return 1;
		end = v;
		if (end[0] == 'W' && end[1] == '/') {
			if (!weak) {
				end = strchr(v, ',');
				if (!end)
					break;
				v = end;
				continue;
			}
			v += 2;
		}
		end = strchr(v, ',');
		n = end ? (size_t)(end - v) : strlen(v);
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n == elen && memcmp(v, etag, n) == 0)
			return 1;
		if (!end)
			break;
		v = end;
	}
	return 0;
}

/*
 * The conditional headers nginx answers for a file, for bytes from the database (RFC 9110
 * section 13.2.2 order): 412 for a failed If-Match or If-Unmodified-Since, 304 for a
 * matching If-None-Match or an unchanged If-Modified-Since, else 200.
 */
static int precondition(struct http_request *r, const char *etag, int64_t mtime_s)
{
	const char *im = http_header(r, "HTTP_IF_MATCH");
	const char *ius = http_header(r, "HTTP_IF_UNMODIFIED_SINCE");
	const char *inm = http_header(r, "HTTP_IF_NONE_MATCH");
	const char *ims = http_header(r, "HTTP_IF_MODIFIED_SINCE");
	int64_t t;

	if (im) {
		if (!etag_listed(im, etag, 0))
			return 412;
	} else if (ius && (t = parse_http_date(ius)) >= 0 && mtime_s > t) {
		return 412;
	}
	if (inm) {
		if (etag_listed(inm, etag, 1))
			return 304;
	} else if (ims && (t = parse_http_date(ims)) >= 0 && mtime_s <= t) {
		return 304;
	}
	return 200;
}

static int put_bytes(void *arg, const void *data, size_t len)
{
	struct http_request *r = arg;

	return FCGX_PutStr(data, (int)len, r->t->req.out) == (int)len ? 0 : -1;
}

/* Streams the bytes of a, stored in the database, with the headers of a static file. */
static void send_from_database(struct http_request *r, const struct store_attachment *a,
			       const char *type)
{
	char etag[72], date[64];
	time_t mtime = (time_t)(a->received_at / 1000);
	struct tm tm;
	struct buf hdr;
	const char *err = NULL;
	int st, rc;

	snprintf(etag, sizeof etag, "\"%.64s\"", a->sha256);
	gmtime_r(&mtime, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	st = precondition(r, etag, (int64_t)mtime);
	if (st == 412) {
		http_reply_error(r, 412, "INVALID_REQUEST", "a precondition of the request does not hold");
		return;
	}
	buf_init(&hdr, 8192);
	buf_printf(&hdr, "ETag: %s\r\nLast-Modified: %s\r\nCache-Control: private, no-store\r\n"
		   "X-Content-Type-Options: nosniff\r\n"
		   "Content-Security-Policy: default-src 'none'; sandbox\r\n", etag, date);
	if (st == 304) {
		http_reply_headers(r, 304, hdr.data);
		buf_free(&hdr);
		return;
	}
	/* Accept-Ranges and the Content-Length let nginx answer Range requests
	 * (fastcgi_force_ranges in the shipped snippet). */
	buf_printf(&hdr, "Content-Type: %s\r\nContent-Length: %lld\r\nAccept-Ranges: bytes\r\n",
		   type, (long long)a->size);
	disposition(a->name, &hdr);
	http_reply_headers(r, 200, hdr.data);
	buf_free(&hdr);
	rc = store_attachment_bytes_stream(r->t->db, a->id, a->size, put_bytes, r, &err);
	if (rc == -1)
		/* The headers are gone: nginx sees the body end short of its Content-Length and
		 * drops the connection, so the client cannot take it for the whole file. */
		log_error("download of attachment %s broke off: %s", a->id, err);
	else if (rc == -2)
		log_info("download of attachment %s: the client went away", a->id);
}

void files_download(struct http_request *r)
{
	char expires[32], sig[64];
	struct store_attachment *a = xmalloc(sizeof *a);
	struct buf hdr;
	const char *type, *err = NULL;
	enum links_check check;
	int found;

	buf_init(&hdr, 8192);
	if (!util_uuid_canonical(r->params[0]) ||
	    http_query_param(r->query, "expires", expires, sizeof expires) != 1 ||
	    http_query_param(r->query, "sig", sig, sizeof sig) != 1) {
		http_reply_error(r, 403, "FORBIDDEN", "invalid download link");
		goto out;
	}
	if (files_key_or_reply(r) < 0)
		goto out;
	check = links_verify(r->t->files_key, r->t->files_key_len, r->params[0], expires, sig,
			     r->now_ms / 1000);
	if (check == LINKS_BAD) {
		http_reply_error(r, 403, "FORBIDDEN", "invalid download link");
		goto out;
	}
	if (check == LINKS_EXPIRED) {
		http_reply_error(r, 410, "LINK_EXPIRED",
				 "this download link has expired; ask the API for a new one");
		goto out;
	}
	found = store_attachment_get(r->t->db, r->params[0], a, &err);
	if (found < 0) {
		http_reply_db_error(r, err);
		goto out;
	}
	if (found == 0) {
		http_reply_error(r, 404, "ATTACHMENT_NOT_FOUND", "no attachment with this id");
		goto out;
	}
	type = safe_header_value(a->content_type) ? a->content_type : "application/octet-stream";
	log_debug("download of attachment %s", r->params[0]);
	if (!a->storage_path[0]) {
		send_from_database(r, a, type);
		goto out;
	}
	if (!safe_storage_path(a->storage_path)) {
		http_reply_internal(r, "attachment has an unsafe storage path");
		goto out;
	}
	buf_printf(&hdr, "X-Accel-Redirect: " FILES_INTERNAL_PREFIX "%s\r\nContent-Type: %s\r\n"
		   "Cache-Control: private, no-store\r\nX-Content-Type-Options: nosniff\r\n",
		   a->storage_path, type);
	disposition(a->name, &hdr);
	http_reply_headers(r, 200, hdr.data);
out:
	free(a);
	buf_free(&hdr);
}
