/* segments.c: SMS segment arithmetic (GSM 03.38 default alphabet and UCS-2). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sms/segments.h"

/* Characters of the GSM 03.38 basic table outside printable ASCII. */
static const uint32_t gsm_basic_other[] = {
	0x000A, 0x000D, 0x00A1, 0x00A3, 0x00A4, 0x00A5, 0x00A7, 0x00BF, 0x00C4, 0x00C5,
	0x00C6, 0x00C7, 0x00C9, 0x00D1, 0x00D6, 0x00D8, 0x00DC, 0x00DF, 0x00E0, 0x00E4,
	0x00E5, 0x00E6, 0x00E8, 0x00E9, 0x00EC, 0x00F1, 0x00F2, 0x00F6, 0x00F8, 0x00F9,
	0x00FC, 0x0393, 0x0394, 0x0398, 0x039B, 0x039E, 0x03A0, 0x03A3, 0x03A6, 0x03A8,
	0x03A9,
};

/* The extension table: each is sent as escape (0x1B) + character, 2 septets. */
static const uint32_t gsm_extension[] = {
	0x000C, '^', '{', '}', '\\', '[', '~', ']', '|', 0x20AC,
};

/* Septets for code point c in GSM-7: 1, 2 (extension), or 0 when it has none. */
static int gsm_septets(uint32_t c)
{
	size_t i;

	for (i = 0; i < sizeof gsm_extension / sizeof gsm_extension[0]; i++)
		if (gsm_extension[i] == c)
			return 2;
	/* Printable ASCII is in the basic table except the backtick (and the extension
	 * characters, handled above). */
	if (c >= 0x20 && c <= 0x7E)
		return c == '`' ? 0 : 1;
	for (i = 0; i < sizeof gsm_basic_other / sizeof gsm_basic_other[0]; i++)
		if (gsm_basic_other[i] == c)
			return 1;
	return 0;
}

/* Decodes one code point at s[*pos] (len bytes in all), advancing *pos.
 * Returns the code point, or -1 on invalid UTF-8. */
static int32_t utf8_next(const unsigned char *s, size_t len, size_t *pos)
{
	size_t i = *pos, n, k;
	uint32_t c = s[i], min;

	if (c < 0x80) {
		n = 0;
		min = 0;
	} else if ((c & 0xE0) == 0xC0) {
		n = 1;
		c &= 0x1F;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 2;
		c &= 0x0F;
		min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		n = 3;
		c &= 0x07;
		min = 0x10000;
	} else {
		return -1;
	}
	if (n > len - i - 1)
		return -1;
	for (k = 1; k <= n; k++) {
		if ((s[i + k] & 0xC0) != 0x80)
			return -1;
		c = (c << 6) | (s[i + k] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return -1;
	*pos = i + n + 1;
	return (int32_t)c;
}

/* Packs items of width 1 or 2 into parts of cap units, never splitting a 2-wide item. */
struct packer {
	size_t cap;   /* units per part */
	size_t parts; /* parts started */
	size_t used;  /* units in the current part */
};

static void pack(struct packer *p, int width)
{
	if (p->parts == 0 || p->used + (size_t)width > p->cap) {
		p->parts++;
		p->used = 0;
	}
	p->used += (size_t)width;
}

int sms_segments_count(const char *utf8, size_t len, struct sms_count *r, const char **error_r)
{
	const unsigned char *s = (const unsigned char *)utf8;
	struct packer gsm = { SMS_GSM7_MULTI, 0, 0 }, ucs = { SMS_UCS2_MULTI, 0, 0 };
	size_t pos = 0, septets = 0, units = 0;
	int is_gsm = 1;

	while (pos < len) {
		int32_t c = utf8_next(s, len, &pos);
		int w;

		if (c < 0) {
			*error_r = "not valid UTF-8";
			return -1;
		}
		if (c == 0) {
			*error_r = "contains a NUL character";
			return -1;
		}
		w = c > 0xFFFF ? 2 : 1;
		units += (size_t)w;
		pack(&ucs, w);
		if (is_gsm) {
			int sw = gsm_septets((uint32_t)c);

			if (sw == 0) {
				is_gsm = 0;
			} else {
				septets += (size_t)sw;
				pack(&gsm, sw);
			}
		}
	}
	if (is_gsm) {
		r->coding = SMS_CODING_GSM7;
		r->units = septets;
		r->segments = septets <= SMS_GSM7_SINGLE ? 1 : gsm.parts;
	} else {
		r->coding = SMS_CODING_UCS2;
		r->units = units;
		r->segments = units <= SMS_UCS2_SINGLE ? 1 : ucs.parts;
	}
	return 0;
}

int sms_text_fits(const char *text, long long max_segments, const char *limit_name,
		  enum sms_coding *coding_r, char *why, size_t cap)
{
	struct sms_count n;
	const char *err;

	if (!text || !*text) {
		snprintf(why, cap, "the text is empty");
		return 0;
	}
	if (sms_segments_count(text, strlen(text), &n, &err) < 0) {
		snprintf(why, cap, "the text is %s", err);
		return 0;
	}
	if (coding_r)
		*coding_r = n.coding;
	if ((long long)n.segments <= max_segments)
		return 1;
	snprintf(why, cap,
		 "the text takes %zu SMS segments (%s, %zu %s); at most %lld are allowed%s%s%s",
		 n.segments, n.coding == SMS_CODING_GSM7 ? "GSM-7" : "UCS-2", n.units,
		 n.coding == SMS_CODING_GSM7 ? "septets" : "UTF-16 units", max_segments,
		 limit_name ? " (" : "", limit_name ? limit_name : "", limit_name ? ")" : "");
	return 0;
}
