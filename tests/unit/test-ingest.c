/* test-ingest.c: unit tests for inbound mail parsing (src/mail/parse.c, text.c, reports.c):
 * every fixture in tests/fixtures, the classification rules, text extraction, attachments
 * and limits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "mail/ingest.h"
#include "test.h"

#ifndef FIXTURES_DIR
#define FIXTURES_DIR "tests/fixtures"
#endif

#define CASE_ID "11111111-2222-4333-8444-555555555555"
#define OUT1 CASE_ID ".1.abc@offload.test"
#define OUT2 CASE_ID ".2.def@offload.test"
#define PDF_SHA256 "2e1d765da04c2285b32bbe194808a848cf57d3493f0bfc942c2ef76518f9852e"
#define PNG_SHA256 "10d690dbcf6829f80805669da9b640ab6d7977a2ed4f931e5c0a7d36d39aeeba"

static char *read_fixture(const char *name, size_t *len_r)
{
	const char *src = getenv("OFFLOAD_SRC");
	char *path = src && *src ? xasprintf("%s/tests/fixtures/%s", src, name)
				 : xasprintf("%s/%s", FIXTURES_DIR, name);
	FILE *f = fopen(path, "rb");
	char *data;
	size_t len;

	if (!f) {
		fprintf(stderr, "cannot open fixture %s\n", path);
		free(path);
		*len_r = 0;
		return NULL;
	}
	data = xmalloc(1024 * 1024);
	len = fread(data, 1, 1024 * 1024 - 1, f);
	data[len] = '\0';
	fclose(f);
	free(path);
	*len_r = len;
	return data;
}

/* Parses a fixture; 0 on success. The caller frees m. */
static int parse_fixture(const char *name, struct ingest_mail *m)
{
	size_t len;
	char *raw = read_fixture(name, &len);
	const char *err = NULL;
	int rc;

	if (!raw)
		return -1;
	rc = ingest_parse(raw, len, m, &err);
	if (rc < 0)
		fprintf(stderr, "%s: %s\n", name, err ? err : "?");
	free(raw);
	return rc;
}

static int parse_text(const char *text, struct ingest_mail *m)
{
	const char *err = NULL;

	return ingest_parse(text, strlen(text), m, &err);
}

static int has_addr(char **list, size_t n, const char *addr)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], addr) == 0)
			return 1;
	return 0;
}

static void test_gmail(void)
{
	struct ingest_mail m;

	test_begin("fixture gmail-reply: multipart/alternative, wrapped attribution");
	test_assert(parse_fixture("gmail-reply.eml", &m) == 0);
	test_assert_str(ingest_kind_name(m.kind), "reply");
	test_assert_str(m.message_id,
			"CAH7x1Lk2mQ9rT0vY3pZ8bN4cW6dE5fG1hJ2kL3mN4oP5qR6sT@mail.gmail.com");
	test_assert(!m.message_id_synthesised);
	test_assert_str(m.in_reply_to, OUT1);
	test_assert(m.n_references == 1 && strcmp(m.references[0], OUT1) == 0);
	test_assert_str(m.from_addr, "dana.vendor@gmail.com");
	test_assert_str(m.from_name, "Dana Vendor");
	test_assert(has_addr(m.to_addrs, m.n_to, "offload@offload.test"));
	test_assert(has_addr(m.delivered_to, m.n_delivered_to, "offload@offload.test"));
	test_assert_str(m.to_display, "Sam Sender <offload@offload.test>");
	test_assert_str(m.subject, "Re: W-9 form for Acme Supplies");
	test_assert(m.date_ms == INT64_C(1772464542000));
	test_assert_str(m.body_text, "Hi Sam,\n\nSure, I'll send the signed W-9 by Friday.\n\nDana");
	test_assert(m.quoted_text && strncmp(m.quoted_text, "On Mon, Mar 2, 2026 at 9:00", 27) == 0);
	test_assert(m.quoted_text && strstr(m.quoted_text, "wrote:\n\n> Hello Dana,"));
	test_assert(m.quoted_text && strstr(m.quoted_text, "> Sam"));
	test_assert(m.n_attachments == 0);
	test_assert(!m.original_message_id && !m.diagnostic);
	ingest_mail_free(&m);
	test_end();
}

static void test_outlook(void)
{
	struct ingest_mail m;

	test_begin("fixture outlook-reply: HTML only, Original Message history, inline image");
	test_assert(parse_fixture("outlook-reply.eml", &m) == 0);
	test_assert_str(ingest_kind_name(m.kind), "reply");
	test_assert_str(m.message_id, "DM6PR11MB41070A1B2C3D4E5F6A7B8C9DA0B1C2D3@DM6PR11MB4107"
				      ".namprd11.prod.outlook.com");
	test_assert_str(m.in_reply_to, OUT2);
	test_assert(m.n_references == 2);
	test_assert(m.n_references == 2 && strcmp(m.references[0], OUT1) == 0 &&
		    strcmp(m.references[1], OUT2) == 0);
	test_assert_str(m.from_addr, "lee.chen@contoso.example");
	test_assert_str(m.from_name, "Lee Chen");
	test_assert(has_addr(m.cc_addrs, m.n_cc, "ap@contoso.example"));
	test_assert_str(m.subject, "RE: W-9 form for Acme Supplies");
	/* windows-1252 0x96 is an en dash; &nbsp; a space; entities decoded; script and
	 * style dropped; the empty spacer paragraphs become one blank line. */
	test_assert_str(m.body_text,
			"Hi Sam,\n\nThe W-9 is signed & on its way. Our tax ID is on page 1 \u2013 "
			"let me know if you need anything else.\n\nBest regards,\nLee Chen\n"
			"<Contoso Ltd> \u2022 Accounts Payable \u2022 Caf\u00e9");
	test_assert(m.quoted_text &&
		    strncmp(m.quoted_text, "-----Original Message-----\nFrom: Sam Sender", 43) == 0);
	test_assert(m.quoted_text && strstr(m.quoted_text, "Just following up"));
	test_assert(!strstr(m.body_text, "never shown") &&
		    !(m.quoted_text && strstr(m.quoted_text, "never shown")));
	test_assert(!strstr(m.body_text, "MsoNormal") && !strstr(m.body_text, "RE: W-9 form"));
	test_assert(m.n_attachments == 1);
	if (m.n_attachments == 1) {
		test_assert_str(m.attachments[0].name, "image001.png");
		test_assert_str(m.attachments[0].content_type, "image/png");
		test_assert(m.attachments[0].size == 69);
		test_assert_str(m.attachments[0].sha256, PNG_SHA256);
		test_assert(memcmp(m.attachments[0].data, "\x89PNG\r\n\x1a\n", 8) == 0);
	}
	ingest_mail_free(&m);
	test_end();
}

static void test_applemail(void)
{
	struct ingest_mail m;

	test_begin("fixture applemail-reply: RFC 2047 names and subject, RFC 2231 PDF name");
	test_assert(parse_fixture("applemail-reply.eml", &m) == 0);
	test_assert_str(ingest_kind_name(m.kind), "reply");
	test_assert_str(m.message_id, "8F2D1C3B-4A5E-4F60-9B71-2C3D4E5F6A7B@example.fr");
	test_assert_str(m.in_reply_to, OUT1);
	test_assert_str(m.from_addr, "renee.francois@example.fr");
	test_assert_str(m.from_name, "Ren\u00e9e Fran\u00e7ois");
	test_assert_str(m.to_display, "Sam S\u00e9nder <offload@offload.test>");
	/* Two encoded words: the space between them is not part of the subject. */
	test_assert_str(m.subject, "Re: Formulaire W-9 sign\u00e9 \u2014 merci \u2714");
	test_assert_str(m.body_text,
			"Bonjour Sam,\n\nVoici le formulaire sign\u00e9.\n\nBien cordialement,\n"
			"Ren\u00e9e");
	test_assert(m.quoted_text &&
		    strncmp(m.quoted_text, "> On 2 Mar 2026, at 15:00, Sam Sender", 37) == 0);
	test_assert(m.n_attachments == 1);
	if (m.n_attachments == 1) {
		test_assert_str(m.attachments[0].name, "W-9 sign\u00e9.pdf");
		test_assert_str(m.attachments[0].content_type, "application/pdf");
		test_assert(m.attachments[0].size == 598);
		test_assert_str(m.attachments[0].sha256, PDF_SHA256);
		test_assert(memcmp(m.attachments[0].data, "%PDF-1.4", 8) == 0);
	}
	ingest_mail_free(&m);
	test_end();
}

static void test_postfix_bounce(void)
{
	struct ingest_mail m;

	test_begin("fixture postfix-bounce: RFC 3464, Action failed, original attached");
	test_assert(parse_fixture("postfix-bounce.eml", &m) == 0);
	/* Auto-Submitted is set too, but a delivery report is a report first. */
	test_assert_str(ingest_kind_name(m.kind), "dsn");
	test_assert_str(m.message_id, "20260302140005.5C2D61C0F80@mx.offload.test");
	test_assert(!m.in_reply_to && m.n_references == 0);
	test_assert_str(m.from_addr, "MAILER-DAEMON@mx.offload.test");
	test_assert_str(m.subject, "Undelivered Mail Returned to Sender");
	test_assert_str(m.original_message_id, OUT1);
	test_assert_str(m.report_recipient, "nobody@example.net");
	test_assert_str(m.report_status, "5.1.1");
	test_assert_str(m.diagnostic,
			"nobody@example.net: status 5.1.1: smtp; 550 5.1.1 <nobody@example.net>: "
			"Recipient address rejected: User unknown in virtual mailbox table");
	test_assert(strncmp(m.body_text, "This is the mail system at host mx.offload.test.", 48) == 0);
	test_assert(m.n_attachments == 0); /* the returned message is not an attachment */
	ingest_mail_free(&m);
	test_end();
}

static void test_exchange_ndr(void)
{
	struct ingest_mail m;

	test_begin("fixture exchange-ndr: RFC 3464 with text/rfc822-headers");
	test_assert(parse_fixture("exchange-ndr.eml", &m) == 0);
	test_assert_str(ingest_kind_name(m.kind), "dsn");
	test_assert_str(m.from_addr, "postmaster@contoso.example");
	test_assert_str(m.subject, "Undeliverable: W-9 form for Acme Supplies");
	test_assert_str(m.in_reply_to, OUT2);
	test_assert_str(m.original_message_id, OUT2);
	test_assert_str(m.report_recipient, "ap-old@contoso.example");
	test_assert_str(m.report_status, "5.1.10");
	test_assert(m.diagnostic && strstr(m.diagnostic, "550 5.1.10 RESOLVER.ADR.RecipientNotFound"));
	test_assert(m.diagnostic && strstr(m.diagnostic, "Recipient not found by SMTP address lookup"));
	/* The plain alternative of the human-readable part is the body. */
	test_assert(strncmp(m.body_text, "Your message to ap-old@contoso.example couldn't be"
				       " delivered.", 60) == 0);
	test_assert(m.n_attachments == 0);
	ingest_mail_free(&m);
	test_end();
}

static void test_dsn_delayed(void)
{
	struct ingest_mail m;

	test_begin("fixture dsn-delayed: Action delayed is not a bounce");
	test_assert(parse_fixture("dsn-delayed.eml", &m) == 0);
	test_assert_str(ingest_kind_name(m.kind), "dsn_other");
	test_assert_str(m.original_message_id, OUT1);
	test_assert_str(m.report_recipient, "slow@example.org");
	test_assert_str(m.report_status, "4.4.1");
	test_assert(m.diagnostic && strstr(m.diagnostic, "action delayed"));
	ingest_mail_free(&m);
	test_end();
}

static void test_arf(void)
{
	struct ingest_mail m;

	test_begin("fixture arf-abuse: RFC 5965 feedback report");
	test_assert(parse_fixture("arf-abuse.eml", &m) == 0);
	test_assert_str(ingest_kind_name(m.kind), "arf");
	test_assert_str(m.feedback_type, "abuse");
	test_assert_str(m.original_message_id, OUT1);
	test_assert_str(m.message_id, "fbl.20260305190211.77812@fbl.example.com");
	test_assert(m.diagnostic && strncmp(m.diagnostic, "Feedback-Type: abuse; User-Agent: "
							  "SomeGenerator/1.0", 51) == 0);
	test_assert(m.diagnostic && strstr(m.diagnostic, "Original-Rcpt-To: <user@example.com>"));
	test_assert(strncmp(m.body_text, "This is an email abuse report", 29) == 0);
	test_assert(m.n_attachments == 0);
	ingest_mail_free(&m);
	test_end();
}

static void test_autoreplies(void)
{
	struct ingest_mail m;

	test_begin("fixture ooo-autoreply: Auto-Submitted auto-replied");
	test_assert(parse_fixture("ooo-autoreply.eml", &m) == 0);
	test_assert_str(ingest_kind_name(m.kind), "auto_reply");
	test_assert_str(m.in_reply_to, OUT1);
	test_assert(strncmp(m.body_text, "I am out of the office", 22) == 0);
	ingest_mail_free(&m);
	test_end();

	test_begin("fixture exchange-oof: Exchange markers with an auto subject");
	test_assert(parse_fixture("exchange-oof.eml", &m) == 0);
	test_assert_str(ingest_kind_name(m.kind), "auto_reply");
	test_assert_str(m.in_reply_to, OUT2);
	test_assert_str(m.subject, "Automatic reply: W-9 form for Acme Supplies");
	test_assert_str(m.body_text, "I'm out of the office until March 9. I will reply to your "
				     "message when I return.");
	ingest_mail_free(&m);
	test_end();
}

static void test_plus_address(void)
{
	struct ingest_mail m;

	test_begin("fixture plus-address: no threading headers");
	test_assert(parse_fixture("plus-address.eml", &m) == 0);
	test_assert_str(ingest_kind_name(m.kind), "reply");
	test_assert(!m.in_reply_to && m.n_references == 0);
	test_assert(has_addr(m.to_addrs, m.n_to, "offload+" CASE_ID "@offload.test"));
	test_assert(has_addr(m.delivered_to, m.n_delivered_to, "offload+" CASE_ID "@offload.test"));
	test_assert_str(m.from_name, "Pat O'Neil");
	test_assert(m.quoted_text == NULL);
	test_assert(strncmp(m.body_text, "Hello,\n\nI lost the earlier thread", 33) == 0);
	ingest_mail_free(&m);
	test_end();
}

static void test_not_mail(void)
{
	struct ingest_mail m;
	const char *err = NULL;
	unsigned char junk[4096];
	uint32_t x = 2463534242u;

	test_begin("malformed input fails cleanly");
	{
		size_t len;
		char *raw = read_fixture("malformed.eml", &len);

		test_assert(raw && len > 0);
		test_assert(raw && ingest_parse(raw, len, &m, &err) == -1 && err);
		free(raw);
	}
	test_assert(ingest_parse("", 0, &m, &err) == -1 && err);
	test_assert(ingest_parse(NULL, 0, &m, &err) == -1);
	test_assert(parse_text("just a line of text\n", &m) == -1);
	test_assert(parse_text("\n\nbody only\n", &m) == -1);
	test_assert(parse_text("Subject: no sender\nTo: a@b.example\n\nbody\n", &m) == -1);
	test_assert(parse_text("From:\nSubject: empty from\n\nbody\n", &m) == -1);
	ingest_mail_free(&m); /* harmless after a failure */
	test_end();

	test_begin("random bytes never crash the parser");
	for (int round = 0; round < 50; round++) {
		int rc;

		for (size_t i = 0; i < sizeof junk; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			junk[i] = (unsigned char)x;
		}
		if (round % 2) /* half of them with a plausible header in front */
			memcpy(junk, "From: a@b.example\nContent-Type: multipart/mixed; boundary=\"\x01\"\n\n", 62);
		rc = ingest_parse((const char *)junk, sizeof junk, &m, &err);
		test_assert(rc == 0 || rc == -1);
		if (rc == 0) {
			test_assert(g_utf8_validate(m.body_text, -1, NULL));
			test_assert(g_utf8_validate(m.subject, -1, NULL));
		}
		ingest_mail_free(&m);
	}
	test_end();
}

static void test_missing_message_id(void)
{
	static const char raw[] = "From: Ann <ann@example.com>\nTo: offload@offload.test\n"
				  "Subject: hello\n\nNo Message-ID here.\n";
	struct ingest_mail m;
	unsigned char digest[32];
	char hex[65], want[128];

	test_begin("a missing Message-ID is synthesised from the SHA-256 of the message");
	util_sha256(raw, sizeof raw - 1, digest);
	util_hex(digest, sizeof digest, hex);
	snprintf(want, sizeof want, "missing-%s@offload.invalid", hex);
	test_assert(parse_text(raw, &m) == 0);
	test_assert_str(m.message_id, want);
	test_assert(m.message_id_synthesised);
	test_assert_str(m.body_text, "No Message-ID here.");
	test_assert(m.date_ms == 0);
	ingest_mail_free(&m);
	test_end();
}

static void test_auto_rules(void)
{
	struct ingest_mail m;

	test_begin("auto-reply rules");
	test_assert(parse_text("From: a@x.example\nAuto-Submitted: no\nSubject: Re: hi\n\nok\n", &m) == 0);
	test_assert(m.kind == INGEST_KIND_REPLY);
	ingest_mail_free(&m);
	test_assert(parse_text("From: a@x.example\nAuto-Submitted: auto-generated\n\nok\n", &m) == 0);
	test_assert(m.kind == INGEST_KIND_AUTO_REPLY);
	ingest_mail_free(&m);
	test_assert(parse_text("From: a@x.example\nPrecedence: list\n\nok\n", &m) == 0);
	test_assert(m.kind == INGEST_KIND_AUTO_REPLY);
	ingest_mail_free(&m);
	test_assert(parse_text("From: a@x.example\nPrecedence: first-class\n\nok\n", &m) == 0);
	test_assert(m.kind == INGEST_KIND_REPLY);
	ingest_mail_free(&m);
	test_assert(parse_text("From: a@x.example\nX-Autoreply: yes\n\nok\n", &m) == 0);
	test_assert(m.kind == INGEST_KIND_AUTO_REPLY);
	ingest_mail_free(&m);
	test_assert(parse_text("From: a@x.example\nX-Autorespond: on\n\nok\n", &m) == 0);
	test_assert(m.kind == INGEST_KIND_AUTO_REPLY);
	ingest_mail_free(&m);
	/* X-Auto-Response-Suppress alone is a request to others, not a marker. */
	test_assert(parse_text("From: a@x.example\nX-Auto-Response-Suppress: All\n"
			       "Subject: RE: W-9\n\nHere it is.\n", &m) == 0);
	test_assert(m.kind == INGEST_KIND_REPLY);
	ingest_mail_free(&m);
	test_assert(parse_text("From: a@x.example\nX-Auto-Response-Suppress: All\n"
			       "Subject: Out of Office: W-9\n\naway\n", &m) == 0);
	test_assert(m.kind == INGEST_KIND_AUTO_REPLY);
	ingest_mail_free(&m);
	/* A read receipt (RFC 8098) is machine-made too. */
	test_assert(parse_text("From: a@x.example\nContent-Type: multipart/report; "
			       "report-type=disposition-notification; boundary=b\n\n--b\n"
			       "Content-Type: text/plain\n\nRead.\n--b--\n", &m) == 0);
	test_assert(m.kind == INGEST_KIND_AUTO_REPLY);
	ingest_mail_free(&m);
	/* A report without a per-recipient block is not a bounce. */
	test_assert(parse_text("From: a@x.example\nContent-Type: multipart/report; "
			       "report-type=delivery-status; boundary=b\n\n--b\n"
			       "Content-Type: text/plain\n\nhm\n--b\n"
			       "Content-Type: message/delivery-status\n\nReporting-MTA: dns; x\n"
			       "--b--\n", &m) == 0);
	test_assert(m.kind == INGEST_KIND_DSN_OTHER);
	ingest_mail_free(&m);
	test_end();
}

static void test_html(void)
{
	static const char raw[] =
		"From: a@x.example\nContent-Type: text/html; charset=utf-8\n\n"
		"<html><head><title>T</title><style>p{x}</style></head><body>"
		"<p>caf&eacute; &#150; &#x263A; &#9999999999; &bogus; a &lt; b &amp;&amp; c</p>"
		"<ul><li>one</li><li>two</li></ul>"
		"<table><tr><td>A</td><td>B</td></tr></table>"
		"<pre>  keep   this\n  spacing</pre>"
		"<p>1 < 2 and <b>bold</b>&nbsp;&nbsp;x<br/>next<!-- hidden --></p>"
		"<script>var x = '</p>';</script>tail</body></html>";
	struct ingest_mail m;

	test_begin("HTML-only bodies become text");
	test_assert(parse_text(raw, &m) == 0);
	test_assert_str(m.body_text,
			"caf\u00e9 \u2013 \u263a \ufffd &bogus; a < b && c\n- one\n- two\nA B\n"
			"  keep   this\n  spacing\n1 < 2 and bold  x\nnext\ntail");
	ingest_mail_free(&m);
	test_end();
}

static void test_text_rules(void)
{
	struct ingest_mail m;

	test_begin("quoted history rules");
	/* Interleaved answers: nothing precedes the first quote, so nothing is split off. */
	test_assert(parse_text("From: a@x.example\n\n> Can you sign?\nYes.\n> By Friday?\nSure.\n",
			       &m) == 0);
	test_assert_str(m.body_text, "> Can you sign?\nYes.\n> By Friday?\nSure.");
	test_assert(m.quoted_text == NULL);
	ingest_mail_free(&m);
	/* Outlook's plain header block under a rule of underscores. */
	test_assert(parse_text("From: a@x.example\n\nDone.\n\n________________________________\n"
			       "From: Sam <s@offload.test>\nSent: Monday, March 2, 2026 9:00 AM\n"
			       "To: a@x.example\nSubject: W-9\n\nPlease sign.\n", &m) == 0);
	test_assert_str(m.body_text, "Done.");
	test_assert(m.quoted_text && strncmp(m.quoted_text, "________", 8) == 0);
	ingest_mail_free(&m);
	/* "On … wrote:" in German, and CRLF line ends. */
	test_assert(parse_text("From: a@x.example\r\n\r\nJa.\r\n\r\nAm Mo., 2. M\xc3\xa4rz 2026 um "
			       "09:00 Uhr schrieb Sam <s@offload.test>:\r\n> Bitte.\r\n", &m) == 0);
	test_assert_str(m.body_text, "Ja.");
	test_assert(m.quoted_text && strncmp(m.quoted_text, "Am Mo.", 6) == 0);
	ingest_mail_free(&m);
	/* "On" without "wrote:" is just text. */
	test_assert(parse_text("From: a@x.example\n\nOn Monday we meet:\nbring the form.\n", &m) == 0);
	test_assert_str(m.body_text, "On Monday we meet:\nbring the form.");
	test_assert(m.quoted_text == NULL);
	ingest_mail_free(&m);
	/* Undeclared 8-bit text is read as Windows-1252, not dropped. */
	test_assert(parse_text("From: a@x.example\nSubject: caf\xe9\n\nna\xefve \x96 ok\n", &m) == 0);
	test_assert_str(m.body_text, "na\u00efve \u2013 ok");
	test_assert(g_utf8_validate(m.subject, -1, NULL));
	ingest_mail_free(&m);
	test_end();
}

static void test_attachment_names(void)
{
	static const char raw[] =
		"From: a@x.example\nContent-Type: multipart/mixed; boundary=b\n\n"
		"--b\nContent-Type: text/plain\n\nsee attached\n"
		"--b\nContent-Type: application/octet-stream\n"
		"Content-Disposition: attachment; filename=\"../../etc/passwd\"\n\nroot\n"
		"--b\nContent-Type: application/pdf\n"
		"Content-Disposition: attachment; filename=\"C:\\\\Users\\\\ann\\\\doc.pdf\"\n\n%PDF\n"
		"--b\nContent-Type: TEXT/CSV\nContent-Disposition: attachment; filename=\"a\x01\x1f"
		"b.csv\"\n\nx,y\n"
		"--b\nContent-Type: image/gif\nContent-Disposition: attachment; filename=\"..\"\n\nGIF\n"
		"--b\nContent-Type: image/png\nContent-ID: <noname@x>\n\nPNG\n"
		"--b\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n"
		"From: b@y.example\nSubject: fwd\n\ninner\n"
		"--b--\n";
	struct ingest_mail m;
	char *long_raw;
	char name[400];

	test_begin("attachment names are made safe; every non-text part is kept");
	test_assert(parse_text(raw, &m) == 0);
	test_assert_str(m.body_text, "see attached");
	test_assert(m.n_attachments == 6);
	if (m.n_attachments == 6) {
		test_assert_str(m.attachments[0].name, "passwd");
		test_assert(m.attachments[0].size == 4 && memcmp(m.attachments[0].data, "root", 4) == 0);
		test_assert_str(m.attachments[1].name, "doc.pdf");
		test_assert_str(m.attachments[2].name, "ab.csv");
		test_assert_str(m.attachments[2].content_type, "text/csv");
		test_assert_str(m.attachments[3].name, "attachment");
		test_assert_str(m.attachments[4].name, "attachment");
		test_assert_str(m.attachments[4].content_type, "image/png");
		test_assert_str(m.attachments[5].name, "message.eml");
		test_assert_str(m.attachments[5].content_type, "message/rfc822");
		test_assert(strstr((const char *)m.attachments[5].data, "inner") != NULL);
	}
	ingest_mail_free(&m);

	/* A name longer than 255 bytes is cut at a character boundary. */
	memset(name, 0, sizeof name);
	for (size_t i = 0; i + 2 < 300; i += 2)
		memcpy(name + i, "\xc3\xa9", 2);
	long_raw = xasprintf("From: a@x.example\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
			     "Content-Type: application/pdf; name=\"%s.pdf\"\n"
			     "Content-Disposition: attachment\n\nx\n--b--\n", name);
	test_assert(parse_text(long_raw, &m) == 0);
	test_assert(m.n_attachments == 1);
	if (m.n_attachments == 1) {
		test_assert(strlen(m.attachments[0].name) <= 255);
		test_assert(strlen(m.attachments[0].name) >= 250);
		test_assert(g_utf8_validate(m.attachments[0].name, -1, NULL));
	}
	ingest_mail_free(&m);
	free(long_raw);
	test_end();
}

static void test_attachment_cap(void)
{
	struct buf b;
	struct ingest_mail m;
	const char *err = NULL;

	test_begin("at most 100 attachments are kept; the rest are counted");
	buf_init(&b, 1024 * 1024);
	buf_puts(&b, "From: a@x.example\nMessage-ID: <many@x.example>\n"
		     "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
		     "105 files\n");
	for (int i = 0; i < 105; i++)
		buf_printf(&b, "--b\nContent-Type: text/plain\nContent-Disposition: attachment; "
			       "filename=\"f%03d.txt\"\n\nfile %d\n", i, i);
	buf_puts(&b, "--b--\n");
	test_assert(ingest_parse(b.data, b.len, &m, &err) == 0);
	test_assert(m.n_attachments == INGEST_MAX_ATTACHMENTS);
	test_assert(m.n_attachments_dropped == 5);
	test_assert_str(m.body_text, "105 files");
	if (m.n_attachments == INGEST_MAX_ATTACHMENTS) {
		test_assert_str(m.attachments[0].name, "f000.txt");
		test_assert_str(m.attachments[99].name, "f099.txt");
		test_assert(m.attachments[99].size == 7 &&
			    memcmp(m.attachments[99].data, "file 99", 7) == 0);
	}
	ingest_mail_free(&m);
	buf_free(&b);
	test_end();
}

static void test_deep_nesting(void)
{
	struct buf b;
	struct ingest_mail m;
	const char *err = NULL;
	int rc;

	test_begin("deeply nested multiparts do not crash");
	buf_init(&b, 8 * 1024 * 1024);
	buf_puts(&b, "From: a@x.example\nContent-Type: multipart/mixed; boundary=b0\n\n");
	for (int i = 1; i < 5000; i++)
		buf_printf(&b, "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", i - 1, i);
	buf_puts(&b, "--b4999\nContent-Type: text/plain\n\ndeep\n");
	rc = ingest_parse(b.data, b.len, &m, &err);
	test_assert(rc == 0);
	ingest_mail_free(&m);
	buf_free(&b);
	test_end();
}

static void test_names(void)
{
	test_begin("kind and result names");
	test_assert_str(ingest_kind_name(INGEST_KIND_REPLY), "reply");
	test_assert_str(ingest_kind_name(INGEST_KIND_AUTO_REPLY), "auto_reply");
	test_assert_str(ingest_kind_name(INGEST_KIND_DSN), "dsn");
	test_assert_str(ingest_kind_name(INGEST_KIND_DSN_OTHER), "dsn_other");
	test_assert_str(ingest_kind_name(INGEST_KIND_ARF), "arf");
	test_assert_str(ingest_result_name(INGEST_STORED), "stored");
	test_assert_str(ingest_result_name(INGEST_UNMATCHED), "unmatched");
	test_assert_str(ingest_result_name(INGEST_DUPLICATE), "duplicate");
	test_assert_str(ingest_result_name(INGEST_MALFORMED), "malformed");
	test_assert_str(ingest_result_name(INGEST_TEMPFAIL), "tempfail");
	test_end();
}

int main(void)
{
	g_mime_init();
	test_gmail();
	test_outlook();
	test_applemail();
	test_postfix_bounce();
	test_exchange_ndr();
	test_dsn_delayed();
	test_arf();
	test_autoreplies();
	test_plus_address();
	test_not_mail();
	test_missing_message_id();
	test_auto_rules();
	test_html();
	test_text_rules();
	test_attachment_names();
	test_attachment_cap();
	test_deep_nesting();
	test_names();
	g_mime_shutdown();
	return test_done();
}
