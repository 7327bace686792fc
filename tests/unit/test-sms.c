/* test-sms.c: SMS segment arithmetic (GSM-7, extension table, UCS-2) and E.164 numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "sms/config.h"
#include "sms/e164.h"
#include "sms/keywords.h"
#include "sms/segments.h"
#include "test.h"

/* n copies of the UTF-8 string unit, malloc'd. */
static char *rep(const char *unit, size_t n)
{
	size_t ul = strlen(unit), i;
	char *s = malloc(ul * n + 1);

	if (!s)
		abort();
	for (i = 0; i < n; i++)
		memcpy(s + i * ul, unit, ul);
	s[ul * n] = '\0';
	return s;
}

/* Counts prefix + n*unit + suffix; returns segments or -1 on error. */
static long count3(const char *prefix, const char *unit, size_t n, const char *suffix,
		   struct sms_count *r)
{
	char *body = rep(unit, n);
	size_t len = strlen(prefix) + strlen(body) + strlen(suffix);
	char *s = malloc(len + 1);
	const char *err = NULL;
	long rc;

	if (!s)
		abort();
	strcpy(s, prefix);
	strcat(s, body);
	strcat(s, suffix);
	rc = sms_segments_count(s, len, r, &err) < 0 ? -1 : (long)r->segments;
	free(body);
	free(s);
	return rc;
}

static long count(const char *unit, size_t n, struct sms_count *r)
{
	return count3("", unit, n, "", r);
}

static void test_gsm_boundaries(void)
{
	struct sms_count r;

	test_begin("segments: GSM-7 160 is one segment, 161 two, 306 two, 307 three");
	test_assert(count("a", 0, &r) == 1 && r.units == 0 && r.coding == SMS_CODING_GSM7);
	test_assert(count("a", 1, &r) == 1 && r.units == 1);
	test_assert(count("a", 160, &r) == 1 && r.units == 160 && r.coding == SMS_CODING_GSM7);
	test_assert(count("a", 161, &r) == 2 && r.units == 161);
	test_assert(count("a", 306, &r) == 2);
	test_assert(count("a", 307, &r) == 3);
	test_assert(count("a", 459, &r) == 3);
	test_assert(count("a", 460, &r) == 4);
	test_end();
}

static void test_gsm_alphabet(void)
{
	struct sms_count r;
	const char *err = NULL;
	/* Every character of the basic table outside ASCII letters and digits. */
	static const char basic[] = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./:;<=>?¡"
				    "ÄÖÑÜ§¿äöñüà";

	test_begin("segments: the whole GSM-7 basic table is GSM-7, one septet each");
	test_assert(sms_segments_count(basic, strlen(basic), &r, &err) == 0);
	test_assert(r.coding == SMS_CODING_GSM7);
	test_assert(r.units == 65);
	test_end();

	test_begin("segments: extension characters count 2 septets");
	test_assert(sms_segments_count("€", strlen("€"), &r, &err) == 0);
	test_assert(r.coding == SMS_CODING_GSM7 && r.units == 2 && r.segments == 1);
	test_assert(sms_segments_count("[]{}\\^~|\f", 9, &r, &err) == 0);
	test_assert(r.coding == SMS_CODING_GSM7 && r.units == 18);
	/* 80 euro signs: 160 septets, one segment; 81: two. */
	test_assert(count("€", 80, &r) == 1 && r.units == 160 && r.coding == SMS_CODING_GSM7);
	test_assert(count("€", 81, &r) == 2 && r.units == 162);
	/* 159 letters and a euro: 161 septets. */
	test_assert(count3("", "a", 159, "€", &r) == 2 && r.units == 161);
	test_end();

	test_begin("segments: an escape sequence is never cut across two parts");
	/* 152 letters, a euro, 152 letters: 306 septets, but the euro does not fit part one's
	 * last septet, so part one ends at 152, part two holds the euro and 151 letters, and
	 * the last letter opens part three. */
	{
		char *tail = rep("a", 152);

		test_assert(count3("", "a", 152, "€", &r) == 1 && r.units == 154);
		test_assert(count3(tail, "€", 1, tail, &r) == 3 && r.units == 306);
		/* The same 306 septets with the euro first pack into two parts. */
		test_assert(count3("€", "a", 304, "", &r) == 2 && r.units == 306);
		free(tail);
	}
	test_end();

	test_begin("segments: a character outside GSM-7 makes the text UCS-2");
	test_assert(count3("", "a", 10, "`", &r) == 1 && r.coding == SMS_CODING_UCS2);
	test_assert(r.units == 11);
	test_assert(count3("", "a", 10, "\t", &r) == 1 && r.coding == SMS_CODING_UCS2);
	test_assert(count3("", "a", 10, "ç", &r) == 1 && r.coding == SMS_CODING_UCS2);
	/* A euro sign in a UCS-2 text is one unit, not two. */
	test_assert(count3("€", "a", 68, "ж", &r) == 1 && r.units == 70);
	test_end();
}

static void test_ucs2(void)
{
	struct sms_count r;

	test_begin("segments: UCS-2 70 is one segment, 71 two, 134 two, 135 three");
	test_assert(count("ж", 70, &r) == 1 && r.units == 70 && r.coding == SMS_CODING_UCS2);
	test_assert(count("ж", 71, &r) == 2 && r.units == 71);
	test_assert(count("ж", 134, &r) == 2);
	test_assert(count("ж", 135, &r) == 3);
	test_end();

	test_begin("segments: an emoji switches to UCS-2 and counts 2 units");
	test_assert(count3("hello ", "\xF0\x9F\x98\x80", 1, "", &r) == 1);
	test_assert(r.coding == SMS_CODING_UCS2 && r.units == 8);
	test_assert(count("\xF0\x9F\x98\x80", 35, &r) == 1 && r.units == 70);
	test_assert(count("\xF0\x9F\x98\x80", 36, &r) == 2 && r.units == 72);
	test_end();

	test_begin("segments: a surrogate pair is never cut across two parts");
	/* 66 units, an emoji, 66 units: 134 units = 2*67, but the emoji opens part two and
	 * the last unit part three. */
	{
		char *tail = rep("ж", 66);

		test_assert(count3(tail, "\xF0\x9F\x98\x80", 1, tail, &r) == 3 && r.units == 134);
		test_assert(count3("\xF0\x9F\x98\x80", "ж", 132, "", &r) == 2 && r.units == 134);
		free(tail);
	}
	test_end();
}

static void test_invalid_utf8(void)
{
	static const char *const bad[] = {
		"\xC3",             /* truncated */
		"a\x80",            /* lone continuation */
		"\xC0\xAF",         /* overlong '/' */
		"\xE0\x80\xAF",     /* overlong */
		"\xED\xA0\x80",     /* UTF-16 surrogate */
		"\xF4\x90\x80\x80", /* past U+10FFFF */
		"\xFF",
		"\xE2\x82",         /* truncated euro */
	};
	struct sms_count r;
	const char *err;
	size_t i;

	test_begin("segments: invalid UTF-8 and NUL are refused");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = NULL;
		test_assert(sms_segments_count(bad[i], strlen(bad[i]), &r, &err) == -1);
		test_assert(err != NULL);
	}
	err = NULL;
	test_assert(sms_segments_count("a\0b", 3, &r, &err) == -1 && err != NULL);
	test_end();
}

static void test_e164(void)
{
	char out[SMS_E164_SIZE];
	const char *err;
	static const char *const bad[] = {
		"", "+", "15551234567", "+1555123", "+1234567890123456", "+1 (555) 123-4567",
		"+1555123456a", "++15551234567", "+1555+1234567", "tel:+15551234567",
		"+1555\n1234567", "+1555_1234567", " ", "+１５５５１２３４５６７",
		/* No country code starts with 0: "+00..." is a dialling prefix typed after
		 * the '+', and would never match the sender Kannel reports. */
		"+0015551234567", "+00000000", "+0 555 123 4567",
	};
	size_t i;

	test_begin("e164: spaces, dashes and dots are removed");
	test_assert(sms_e164_normalise("+1 555-123.4567", 15, out, &err) == 0);
	test_assert_str(out, "+15551234567");
	test_assert(sms_e164_normalise(" +44 20 7946 0958 ", 18, out, &err) == 0);
	test_assert_str(out, "+442079460958");
	test_end();

	test_begin("e164: 8 and 15 digits are the bounds");
	test_assert(sms_e164_normalise("+12345678", 9, out, &err) == 0);
	test_assert_str(out, "+12345678");
	test_assert(sms_e164_normalise("+123456789012345", 16, out, &err) == 0);
	test_assert_str(out, "+123456789012345");
	test_assert(sms_e164_normalise("+1234567", 8, out, &err) == -1);
	test_end();

	test_begin("e164: anything else is refused with a message");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = NULL;
		out[0] = 'x';
		if (sms_e164_normalise(bad[i], strlen(bad[i]), out, &err) != -1 || !err ||
		    out[0] != '\0') {
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
			test_assert(0);
		}
	}
	/* Long runs of separators are refused by length before they are looked at. */
	{
		char *s = rep(" ", 60), *t = malloc(80);

		snprintf(t, 80, "+15551234567%s", s);
		test_assert(sms_e164_normalise(t, strlen(t), out, &err) == -1);
		free(s);
		free(t);
	}
	test_end();
}

static void test_keywords(void)
{
	const char *w;
	static const char *const stops[] = { "STOP", "stop", " Stop\n", "STOPALL", "unsubscribe",
					     "Cancel", "end", "QUIT", "\t quit \r\n" };
	static const char *const others[] = { "", "stop please", "STOP!", "S TOP", "stopp",
					      "please stop", "ST\xC3\x96P", "END." };
	size_t i;

	test_begin("keywords: the whole text, trimmed and without case, is a STOP word");
	for (i = 0; i < sizeof stops / sizeof stops[0]; i++) {
		if (sms_keyword_parse(stops[i], strlen(stops[i]), &w) != SMS_KEYWORD_STOP || !w) {
			fprintf(stderr, "not STOP: \"%s\"\n", stops[i]);
			test_assert(0);
		}
	}
	test_assert(sms_keyword_parse(" stopall ", 9, &w) == SMS_KEYWORD_STOP);
	test_assert_str(w, "STOPALL");
	test_end();

	test_begin("keywords: START and UNSTOP lift; anything else is a message");
	test_assert(sms_keyword_parse("start", 5, &w) == SMS_KEYWORD_START);
	test_assert_str(w, "START");
	test_assert(sms_keyword_parse(" UnStop\n", 8, &w) == SMS_KEYWORD_START);
	test_assert_str(w, "UNSTOP");
	for (i = 0; i < sizeof others / sizeof others[0]; i++) {
		if (sms_keyword_parse(others[i], strlen(others[i]), &w) != SMS_KEYWORD_NONE || w) {
			fprintf(stderr, "a keyword: \"%s\"\n", others[i]);
			test_assert(0);
		}
	}
	test_end();
}

static void test_utf8_repair(void)
{
	int repaired;
	char *s;

	test_begin("utf8 repair: valid text is kept, bad bytes become U+FFFD");
	s = sms_utf8_repair("h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 12, &repaired);
	test_assert_str(s, "h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
	test_assert(repaired == 0);
	free(s);
	s = sms_utf8_repair("a\xFF" "b\xC3", 4, &repaired);
	test_assert_str(s, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
	test_assert(repaired == 1);
	free(s);
	/* Latin-1 "caf\xE9" (what a misconfigured gateway might pass on). */
	s = sms_utf8_repair("caf\xE9", 4, &repaired);
	test_assert_str(s, "caf\xEF\xBF\xBD");
	free(s);
	s = sms_utf8_repair("", 0, &repaired);
	test_assert_str(s, "");
	free(s);
	test_end();
}

/* Loads [sms] from text; returns sms_config_load's result and leaves *c to be freed. The
 * error text may belong to the cfg, freed here: *err points to a copy. */
static int load(const char *text, struct sms_config *c, const char **err)
{
	static char copy[512];
	struct cfg *cfg = cfg_parse(text, strlen(text), "test", err);
	int rc;

	if (!cfg)
		return -2;
	rc = sms_config_load(cfg, c, err);
	if (rc < 0) {
		snprintf(copy, sizeof copy, "%s", *err);
		*err = copy;
	}
	cfg_free(&cfg);
	return rc;
}

static void test_config(void)
{
	struct sms_config c;
	const char *err = NULL;

	test_begin("config: no sendsms_url, no SMS transport; defaults");
	test_assert(load("[sms]\n", &c, &err) == 0);
	test_assert(c.enabled == 0 && c.max_segments == 3 && c.timeout_ms == 10000 && !c.secret);
	sms_config_free(&c);
	test_end();

	test_begin("config: a complete [sms] section");
	test_assert(load("[sms]\nsendsms_url = http://127.0.0.1:13013/cgi-bin/sendsms\n"
			 "username = u\npassword = p\nsender = +15550100\n"
			 "callback_base = http://127.0.0.1:8080/\nsecret = abc-123_x.y~z-0123\n"
			 "max_segments = 10\ntimeout_ms = 500\n", &c, &err) == 0);
	test_assert(c.enabled == 1 && c.max_segments == 10 && c.timeout_ms == 500);
	test_assert_str(c.callback_base, "http://127.0.0.1:8080");
	test_assert_str(c.password, "p");
	test_assert_str(c.secret, "abc-123_x.y~z-0123");
	sms_config_free(&c);
	test_end();

	test_begin("config: bad values name the key");
	err = NULL;
	test_assert(load("[sms]\nmax_segments = 11\n", &c, &err) == -1 && err &&
		    strstr(err, "max_segments"));
	err = NULL;
	test_assert(load("[sms]\nmax_segments = 0\n", &c, &err) == -1 && err);
	err = NULL;
	test_assert(load("[sms]\nsendsms_url = http://h/s\ncallback_base = http://x\n"
			 "secret = 0123456789abcdef\n", &c, &err) == -1 && err && strstr(err, "sender"));
	err = NULL;
	test_assert(load("[sms]\nsendsms_url = http://h/s\nsender = 1\nsecret = 0123456789abcdef\n", &c,
			 &err) == -1 && err && strstr(err, "callback_base"));
	err = NULL;
	test_assert(load("[sms]\nsendsms_url = ftp://h/s\nsender = 1\ncallback_base = http://x\n"
			 "secret = 0123456789abcdef\n", &c, &err) == -1 && err && strstr(err, "sendsms_url"));
	err = NULL;
	test_assert(load("[sms]\nsendsms_url = http://h/s\nsender = 1\ncallback_base = http://x\n",
			 &c, &err) == -1 && err && strstr(err, "secret"));
	err = NULL;
	test_assert(load("[sms]\nsecret = a%41b\n", &c, &err) == -1 && err && strstr(err, "secret"));
	/* A placeholder left in place, or a secret short enough to guess (the callbacks are not
	 * rate-limited), is refused: at least 16 characters. */
	err = NULL;
	test_assert(load("[sms]\nsecret = SECRET\n", &c, &err) == -1 && err &&
		    strstr(err, "secret") && strstr(err, "16"));
	err = NULL;
	test_assert(load("[sms]\nsecret = 0123456789abcde\n", &c, &err) == -1 && err);
	test_assert(load("[sms]\nsecret = 0123456789abcdef\n", &c, &err) == 0);
	sms_config_free(&c);
	err = NULL;
	test_assert(load("[sms]\nsendsms_url = http://h/s\nsender = 1\ncallback_base = http://x\n"
			 "secret = 0123456789abcdef\npassword_file = /nonexistent/sms.password\n", &c, &err) == -1 &&
		    err && strstr(err, "password_file"));
	test_end();
}

int main(void)
{
	test_gsm_boundaries();
	test_gsm_alphabet();
	test_ucs2();
	test_invalid_utf8();
	test_e164();
	test_keywords();
	test_utf8_repair();
	test_config();
	return test_done();
}
