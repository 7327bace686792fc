/* fuzz-sms.c: libFuzzer target: the text an SMS gateway hands the service (arbitrary bytes)
 * through the SMS parsers — segment counting, UTF-8 repair, the STOP/START words, E.164
 * numbers — and the [worker] send_window syntax, checking what each promises in its
 * header (src/sms/segments.h, keywords.h, e164.h, src/common/sendwindow.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/sendwindow.h"
#include "fuzz.h"
#include "sms/e164.h"
#include "sms/keywords.h"
#include "sms/segments.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz-sms");
	log_set_level(LOG_LEVEL_ERROR);
	return 0;
}

/* A counted text: at least one segment, one segment while it fits one, and never fewer
 * segments than its units need at the concatenated size (a part may end one unit short,
 * never longer). */
static void check_count(const struct sms_count *n)
{
	size_t single = n->coding == SMS_CODING_GSM7 ? SMS_GSM7_SINGLE : SMS_UCS2_SINGLE;
	size_t multi = n->coding == SMS_CODING_GSM7 ? SMS_GSM7_MULTI : SMS_UCS2_MULTI;

	fuzz_check(n->coding == SMS_CODING_GSM7 || n->coding == SMS_CODING_UCS2);
	fuzz_check(n->segments >= 1);
	if (n->units <= single)
		fuzz_check(n->segments == 1);
	else
		fuzz_check(n->segments >= (n->units + multi - 1) / multi &&
			   n->segments <= n->units);
}

static void check_segments(const char *s, size_t len)
{
	struct sms_count n;
	const char *err = NULL;
	int repaired = -1;
	char *fixed;

	if (sms_segments_count(s, len, &n, &err) == 0) {
		/* Counted: it was valid UTF-8 without NUL, which repair leaves as it is. */
		check_count(&n);
		fuzz_check(memchr(s, '\0', len) == NULL);
		fixed = sms_utf8_repair(s, len, &repaired);
		fuzz_check(fixed && !repaired && strlen(fixed) == len && memcmp(fixed, s, len) == 0);
		free(fixed);
		return;
	}
	fuzz_check(err && *err);
	/* Refused: repair makes a text that counts. */
	fixed = sms_utf8_repair(s, len, &repaired);
	fuzz_check(fixed != NULL);
	fuzz_check(fuzz_utf8_valid((const unsigned char *)fixed, strlen(fixed)));
	fuzz_check(sms_segments_count(fixed, strlen(fixed), &n, &err) == 0);
	check_count(&n);
	free(fixed);
}

static void check_keyword(const char *s, size_t len)
{
	const char *canonical = (const char *)1;
	enum sms_keyword k = sms_keyword_parse(s, len, &canonical);

	if (k == SMS_KEYWORD_NONE) {
		fuzz_check(canonical == NULL);
		return;
	}
	fuzz_check(k == SMS_KEYWORD_STOP || k == SMS_KEYWORD_START);
	fuzz_check(canonical && *canonical);
	/* The word is the whole trimmed text: it is no longer than the input. */
	fuzz_check(strlen(canonical) <= len);
}

static void check_number(const char *s, size_t len)
{
	char out[SMS_E164_SIZE], again[SMS_E164_SIZE];
	const char *err = NULL;
	size_t n;

	if (sms_e164_normalise(s, len, out, &err) < 0) {
		fuzz_check(err && *err);
		return;
	}
	n = strlen(out);
	fuzz_check(n >= 9 && n <= 16 && out[0] == '+' && out[1] != '0');
	for (size_t i = 1; i < n; i++)
		fuzz_check(out[i] >= '0' && out[i] <= '9');
	/* The stored form is its own normal form. */
	fuzz_check(sms_e164_normalise(out, n, again, &err) == 0 && strcmp(again, out) == 0);
	fuzz_check(sms_e164_normalise_loose(out, again) == 0 && strcmp(again, out) == 0);
}

static void check_window(const char *s, size_t len)
{
	char spec[SEND_WINDOW_MAX_TEXT + 1], buf[128];
	struct send_window w, w2;
	const char *err = NULL;
	int r;

	if (len > SEND_WINDOW_MAX_TEXT || memchr(s, '\0', len))
		return;
	memcpy(spec, s, len);
	spec[len] = '\0';
	r = send_window_parse_spec(spec, &w, &err);
	if (r < 0) {
		fuzz_check(err && *err);
		return;
	}
	if (r == 0)
		return;
	fuzz_check(w.days != 0 && (w.days & ~0x7fu) == 0);
	fuzz_check(w.start_min >= 0 && w.start_min < w.end_min && w.end_min <= 1439);
	fuzz_check(send_window_open_at(&w, __builtin_ctz(w.days), w.start_min));
	fuzz_check(!send_window_open_at(&w, __builtin_ctz(w.days), w.end_min));
	/* What the log prints reads back as the same window. */
	send_window_format(&w, buf, sizeof buf);
	fuzz_check(send_window_parse_spec(buf, &w2, &err) == 1);
	fuzz_check(w2.days == w.days && w2.start_min == w.start_min && w2.end_min == w.end_min);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;

	check_segments(s, size);
	check_keyword(s, size);
	check_number(s, size);
	check_window(s, size);
	return 0;
}
