/* files.c: signed attachment downloads; nginx streams the bytes after X-Accel-Redirect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	if (!safe_storage_path(a->storage_path)) {
		http_reply_internal(r, "attachment has an unsafe storage path");
		goto out;
	}
	type = safe_header_value(a->content_type) ? a->content_type : "application/octet-stream";
	buf_printf(&hdr, "X-Accel-Redirect: " FILES_INTERNAL_PREFIX "%s\r\nContent-Type: %s\r\n"
		   "Cache-Control: private, no-store\r\nX-Content-Type-Options: nosniff\r\n",
		   a->storage_path, type);
	disposition(a->name, &hdr);
	log_debug("download of attachment %s", r->params[0]);
	http_reply_headers(r, 200, hdr.data);
out:
	free(a);
	buf_free(&hdr);
}
