/* keywords.c: STOP/START words of incoming SMS, and making incoming text storable. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "sms/keywords.h"
#include "sms/segments.h"

static const char *const stop_words[] = { "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END",
					  "QUIT" };
static const char *const start_words[] = { "START", "UNSTOP" };

static const char *find(const char *const *words, size_t n, const char *t, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(words[i]) == len && strncasecmp(words[i], t, len) == 0)
			return words[i];
	return NULL;
}

enum sms_keyword sms_keyword_parse(const char *text, size_t len, const char **canonical_r)
{
	const char *t, *w;
	size_t tlen;

	util_trim(text, len, &t, &tlen);
	*canonical_r = NULL;
	if ((w = find(stop_words, sizeof stop_words / sizeof stop_words[0], t, tlen))) {
		*canonical_r = w;
		return SMS_KEYWORD_STOP;
	}
	if ((w = find(start_words, sizeof start_words / sizeof start_words[0], t, tlen))) {
		*canonical_r = w;
		return SMS_KEYWORD_START;
	}
	return SMS_KEYWORD_NONE;
}

char *sms_utf8_repair(const char *s, size_t len, int *repaired_r)
{
	/* Each input byte becomes at most 3 output bytes (U+FFFD). */
	char *out = xmalloc(len * 3 + 1);
	size_t o = 0, i = 0;

	*repaired_r = 0;
	while (i < len) {
		struct sms_count c;
		const char *err;
		size_t n = 1;
		unsigned char b = (unsigned char)s[i];

		if (b >= 0xF0)
			n = 4;
		else if (b >= 0xE0)
			n = 3;
		else if (b >= 0xC0)
			n = 2;
		if (n <= len - i && b != 0 && sms_segments_count(s + i, n, &c, &err) == 0) {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
			continue;
		}
		memcpy(out + o, "\xEF\xBF\xBD", 3);
		o += 3;
		i++;
		*repaired_r = 1;
	}
	out[o] = '\0';
	return out;
}
