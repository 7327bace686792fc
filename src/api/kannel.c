/* kannel.c: Kannel's callbacks: incoming SMS and delivery reports, behind a shared secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "api/kannel.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "sms/e164.h"
#include "sms/keywords.h"
#include "store/sms.h"

/* Bounds of the decoded parameters. A concatenated SMS of 10 UCS-2 parts is 670 characters
 * (at most 2,680 bytes of UTF-8); anything much longer is not from Kannel. */
#define MAX_SECRET 256
#define MAX_ADDR 64
#define MAX_ID 64
#define MAX_TEXT (16 * 1024)
#define MAX_REPORT 1024

/* Kannel reads the body of our answer as the reply to send back to the phone; with the
 * sms-service's omit-empty an empty body sends nothing. */
static void reply_empty(struct http_request *r)
{
	http_reply_headers(r, 200, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 0\r\n");
}

/* 0 when the query's secret is the configured one; else -1 after replying 403. The two are
 * compared as SHA-256 digests in constant time, so neither the length nor any prefix of the
 * secret shows in the timing. */
static int secret_or_reply(struct http_request *r)
{
	const char *want = r->t->settings->sms.secret;
	char got[MAX_SECRET + 1];
	unsigned char a[32], b[32];

	if (!want) {
		http_reply_error(r, 403, "FORBIDDEN", "the SMS callbacks are not configured on this "
			       "server ([sms] secret_file)");
		return -1;
	}
	if (http_query_param(r->query, "secret", got, sizeof got) != 1) {
		http_reply_error(r, 403, "FORBIDDEN", "missing or wrong secret");
		return -1;
	}
	util_sha256(got, strlen(got), a);
	util_sha256(want, strlen(want), b);
	memset(got, 0, sizeof got);
	if (!util_mem_equal(a, b, sizeof a)) {
		log_warn("%s %s: wrong secret", r->method, r->path);
		http_reply_error(r, 403, "FORBIDDEN", "missing or wrong secret");
		return -1;
	}
	return 0;
}

/* Reads a required parameter into out (cap bytes): 0, or -1 after replying 400. */
static int param_or_reply(struct http_request *r, const char *name, char *out, size_t cap,
			  int required)
{
	/* A 400 is final for Kannel (it retries only failures such as a 5xx): a text holding a
	 * NUL (an 8-bit SMS) is kept, the NUL read as an invalid UTF-8 byte that
	 * sms_utf8_repair makes U+FFFD. */
	int found = strcmp(name, "text") == 0 ? http_query_param_nul(r->query, name, '\xff', out, cap)
					      : http_query_param(r->query, name, out, cap);

	if (found < 0) {
		http_reply_error(r, 400, "INVALID_REQUEST", "%s: malformed or longer than %zu bytes",
				 name, cap - 1);
		return -1;
	}
	if (!found && required) {
		http_reply_error(r, 400, "INVALID_REQUEST", "%s: is required", name);
		return -1;
	}
	return 0;
}

/* 1 when s is printable ASCII without spaces (Kannel's ids and our message ids). */
static int is_token(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s <= ' ' || *s > '~')
			return 0;
	return 1;
}

/* The sender as stored: its E.164 form when it has one (Kannel may drop the '+' of an
 * international number: 8 to 15 bare digits are taken as one), else NULL. */
static int sender_number(const char *from, char out[SMS_E164_SIZE])
{
	return sms_e164_normalise_loose(from, out);
}

/* 1 when number is this server's own sender ([sms] sender): what we send to it comes back
 * from it, so it is no counterparty (doc/api.md, SMS). */
static int own_number(struct http_request *r, const char *number)
{
	const char *sender = r->t->settings->sms.sender;
	char own[SMS_E164_SIZE];

	return sender && sms_e164_normalise_loose(sender, own) == 0 && strcmp(own, number) == 0;
}

void kannel_incoming(struct http_request *r)
{
	char from[MAX_ADDR + 1], to[MAX_ADDR + 1], id[MAX_ID + 1], number[SMS_E164_SIZE];
	char *text = NULL, *clean = NULL, *from_clean = NULL, *to_clean = NULL;
	char case_id[37];
	struct store_sms_incoming in;
	const char *err = NULL, *keyword = NULL;
	int64_t row = 0;
	int repaired = 0, dummy;

	if (secret_or_reply(r) < 0)
		return;
	text = xmalloc(MAX_TEXT + 1);
	if (param_or_reply(r, "from", from, sizeof from, 1) < 0 ||
	    param_or_reply(r, "to", to, sizeof to, 0) < 0 ||
	    param_or_reply(r, "id", id, sizeof id, 1) < 0 ||
	    param_or_reply(r, "text", text, MAX_TEXT + 1, 0) < 0)
		goto out;
	if (!is_token(id)) {
		http_reply_error(r, 400, "INVALID_REQUEST", "id: must be Kannel's message id");
		goto out;
	}
	clean = sms_utf8_repair(text, strlen(text), &repaired);
	from_clean = sms_utf8_repair(from, strlen(from), &dummy);
	to_clean = sms_utf8_repair(to, strlen(to), &dummy);
	memset(&in, 0, sizeof in);
	in.kannel_id = id;
	in.to = to_clean;
	in.text = clean;
	in.now_ms = r->now_ms;
	if (sender_number(from, number) == 0 && !own_number(r, number)) {
		in.from = number;
		switch (sms_keyword_parse(clean, strlen(clean), &keyword)) {
		case SMS_KEYWORD_STOP:
			in.intent = STORE_SMS_STOP;
			break;
		case SMS_KEYWORD_START:
			in.intent = STORE_SMS_START;
			break;
		default:
			in.intent = STORE_SMS_TEXT;
		}
		in.keyword = keyword;
	} else {
		/* An alphanumeric or national sender, or our own number, cannot be any case's
		 * counterparty: kept unmatched for the operator, keywords and all. */
		in.from = from_clean;
		in.unmatchable = 1;
	}
	if (repaired)
		log_warn("incoming SMS %s: the text was not valid UTF-8; stored with U+FFFD", id);
	switch (store_sms_incoming_store(r->t->db, &in, case_id, &row, &err)) {
	case STORE_SMS_STORED:
		log_info("incoming SMS %s from %s: %s%s%s", id, in.from,
			 case_id[0] ? "case " : "unmatched", case_id,
			 in.intent == STORE_SMS_STOP ? " (opt-out)" :
			 in.intent == STORE_SMS_START ? " (opt-in)" : "");
		reply_empty(r);
		break;
	case STORE_SMS_DUPLICATE:
		log_info("incoming SMS %s: stored before, Kannel's repeat ignored", id);
		reply_empty(r);
		break;
	case STORE_SMS_REFUSED:
		log_error("incoming SMS %s: refused by the database: %s", id, err);
		http_reply_error(r, 400, "INVALID_REQUEST", "the message cannot be stored");
		break;
	default:
		http_reply_db_error(r, err ? err : "storing an incoming SMS");
	}
out:
	free(text);
	free(clean);
	free(from_clean);
	free(to_clean);
}

void kannel_dlr(struct http_request *r)
{
	char msg[MAX_ID + 1], type_s[16], report[MAX_REPORT + 1];
	char *clean = NULL;
	int64_t type;
	int dummy, found;

	if (secret_or_reply(r) < 0)
		return;
	if (param_or_reply(r, "msg", msg, sizeof msg, 1) < 0 ||
	    param_or_reply(r, "type", type_s, sizeof type_s, 1) < 0 ||
	    param_or_reply(r, "reply", report, sizeof report, 0) < 0)
		return;
	if (!is_token(msg)) {
		http_reply_error(r, 400, "INVALID_REQUEST", "msg: must be one of our message ids");
		return;
	}
	if (util_parse_int64(type_s, &type) < 0 || type < 0 || type > 255) {
		http_reply_error(r, 400, "INVALID_REQUEST", "type: must be Kannel's DLR type (%%d)");
		return;
	}
	clean = sms_utf8_repair(report, strlen(report), &dummy);
	found = store_sms_dlr_record(r->t->db, msg, (int)type, clean, r->now_ms);
	if (found < 0) {
		http_reply_db_error(r, "recording a delivery report");
	} else {
		if (found == 0)
			log_warn("delivery report type %lld for %s: no such outbound SMS; ignored",
				 (long long)type, msg);
		else
			log_info("delivery report type %lld for SMS %s%s%s", (long long)type, msg,
				 *clean ? ": " : "", clean);
		reply_empty(r);
	}
	free(clean);
}
