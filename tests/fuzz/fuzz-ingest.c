/* fuzz-ingest.c: libFuzzer target: one inbound mail (arbitrary bytes) through ingest_parse
 * (GMime parse, classification incl. DSN/ARF recognition, text and attachment extraction),
 * checking the promises of ingest.h. Matching and storing need the database and are
 * covered end to end instead. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "common/log.h"
#include "mail/ingest.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz-ingest");
	log_set_level(LOG_LEVEL_ERROR);
	g_mime_init();
	return 0;
}

static void check_utf8(const char *s)
{
	if (s)
		fuzz_check(fuzz_utf8_valid((const unsigned char *)s, strlen(s)));
}

/* Message ids: printable ASCII, no <>. */
static void check_id(const char *s)
{
	if (!s)
		return;
	fuzz_check(*s != '\0');
	for (const char *p = s; *p; p++)
		fuzz_check(*p > 0x20 && *p < 0x7f && *p != '<' && *p != '>');
}

static void check_strs(char **v, size_t n)
{
	fuzz_check(n == 0 || v != NULL);
	for (size_t i = 0; i < n; i++) {
		fuzz_check(v[i] != NULL);
		check_utf8(v[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ingest_mail m;
	const char *err = NULL;

	if (ingest_parse((const char *)data, size, &m, &err) < 0) {
		fuzz_check(err != NULL);
		ingest_mail_free(&m); /* harmless, says ingest.h */
		return 0;
	}
	fuzz_check(m.message_id != NULL);
	check_id(m.message_id);
	check_id(m.in_reply_to);
	for (size_t i = 0; i < m.n_references; i++)
		check_id(m.references[i]);
	fuzz_check(m.from_addr != NULL && m.subject != NULL && m.body_text != NULL &&
		   m.to_display != NULL);
	check_utf8(m.from_addr);
	check_utf8(m.from_name);
	check_utf8(m.subject);
	check_utf8(m.to_display);
	check_utf8(m.body_text);
	check_utf8(m.quoted_text);
	check_utf8(m.diagnostic);
	check_utf8(m.report_recipient);
	check_utf8(m.report_status);
	check_utf8(m.feedback_type);
	check_id(m.original_message_id);
	check_strs(m.to_addrs, m.n_to);
	check_strs(m.cc_addrs, m.n_cc);
	check_strs(m.delivered_to, m.n_delivered_to);
	fuzz_check(strlen(m.body_text) <= INGEST_MAX_TEXT);
	fuzz_check(!m.quoted_text || strlen(m.quoted_text) <= INGEST_MAX_TEXT);
	fuzz_check(m.kind >= INGEST_KIND_REPLY && m.kind <= INGEST_KIND_ARF);
	fuzz_check(ingest_kind_name(m.kind) != NULL);
	fuzz_check(m.n_attachments <= INGEST_MAX_ATTACHMENTS);
	fuzz_check(m.n_attachments == 0 || m.attachments != NULL);
	for (size_t i = 0; i < m.n_attachments; i++) {
		const struct ingest_attachment *a = &m.attachments[i];
		size_t len;

		/* A safe file name: UTF-8, no path, no control characters, at most 255 bytes. */
		fuzz_check(a->name != NULL && a->content_type != NULL);
		len = strlen(a->name);
		fuzz_check(len > 0 && len <= 255);
		check_utf8(a->name);
		fuzz_check(strchr(a->name, '/') == NULL && strchr(a->name, '\\') == NULL);
		fuzz_check(strcmp(a->name, ".") != 0 && strcmp(a->name, "..") != 0);
		for (size_t k = 0; k < len; k++) {
			unsigned char c = (unsigned char)a->name[k];

			fuzz_check(c >= 0x20 && c != 0x7f);
			/* C1 controls (U+0080..U+009F) are dropped too */
			fuzz_check(!(c == 0xc2 && k + 1 < len &&
				     (unsigned char)a->name[k + 1] <= 0x9f));
		}
		fuzz_check(strchr(a->content_type, '/') != NULL);
		for (const char *p = a->content_type; *p; p++)
			fuzz_check(*p > 0x20 && *p < 0x7f && !(*p >= 'A' && *p <= 'Z'));
		fuzz_check(a->size == 0 || a->data != NULL);
		fuzz_check(strlen(a->sha256) == 64);
	}
	ingest_mail_free(&m);
	return 0;
}
