/* segments.h: how many SMS segments a text takes, and in which coding (GSM-7 or UCS-2). */
#ifndef OFFLOAD_SMS_SEGMENTS_H
#define OFFLOAD_SMS_SEGMENTS_H

#include <stddef.h>

/* The value of Kannel's sendsms "coding" parameter for each encoding. */
enum sms_coding {
	SMS_CODING_GSM7 = 0, /* GSM 03.38 default alphabet, 7-bit septets */
	SMS_CODING_UCS2 = 2, /* UCS-2 (UTF-16 code units, two octets each) */
};

/* Per-segment capacity in septets (GSM-7) or UTF-16 units (UCS-2). */
#define SMS_GSM7_SINGLE 160 /* one message */
#define SMS_GSM7_MULTI 153  /* each part of a concatenated message (6-octet UDH) */
#define SMS_UCS2_SINGLE 70
#define SMS_UCS2_MULTI 67

struct sms_count {
	enum sms_coding coding; /* GSM-7 when every character is in the GSM-7 tables */
	size_t units;           /* septets (extension characters count 2) or UTF-16 units */
	size_t segments;        /* 1 for the empty text */
};

/*
 * Counts the text utf8 of len bytes as an SMS: GSM-7 when every character is in the GSM
 * 03.38 basic table or its extension table (the extension characters, form feed and
 * `^ { } \ [ ~ ] | €`, take 2 septets: escape + character), else UCS-2 (characters outside
 * the Basic Multilingual Plane are a surrogate pair: 2 units). A text that fits one
 * segment (160 septets / 70 units) is 1 segment; a longer one is cut into parts of 153
 * septets / 67 units, and, as handsets and SMSCs do, an escape sequence or a surrogate
 * pair is never cut in two: a part that cannot hold the whole pair ends one short.
 * Returns 0 with *r filled, or -1 with *error_r (static text) when utf8 is not valid UTF-8
 * (overlong forms, surrogates, code points past U+10FFFF, truncated sequences, NUL).
 */
int sms_segments_count(const char *utf8, size_t len, struct sms_count *r, const char **error_r);

/*
 * 1 when the NUL-terminated text is not empty, counts (sms_segments_count) and takes at
 * most max_segments segments; else 0 with why (cap bytes) saying which, naming the coding
 * and the count ("...; at most 2 are allowed", then " (limit_name)" when not NULL).
 * *coding_r, when coding_r is not NULL, is set whenever the text could be counted.
 */
int sms_text_fits(const char *text, long long max_segments, const char *limit_name,
		  enum sms_coding *coding_r, char *why, size_t cap);

#endif
