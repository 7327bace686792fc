/* keywords.h: the opt-out and opt-in words of an incoming SMS (doc/api.md, SMS). */
#ifndef OFFLOAD_SMS_KEYWORDS_H
#define OFFLOAD_SMS_KEYWORDS_H

#include <stddef.h>

enum sms_keyword {
	SMS_KEYWORD_NONE,  /* any other text */
	SMS_KEYWORD_STOP,  /* STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT */
	SMS_KEYWORD_START, /* START, UNSTOP */
};

/*
 * What the whole text (len bytes), trimmed of ASCII whitespace and compared without ASCII
 * case, says: one of the keywords, or NONE ("stop please" is NONE). On a keyword
 * *canonical_r is its upper-case spelling (static), else NULL.
 */
enum sms_keyword sms_keyword_parse(const char *text, size_t len, const char **canonical_r);

/*
 * A copy of the len bytes at s in which every byte that does not begin a valid UTF-8
 * sequence (and NUL) is replaced by U+FFFD, so that it can be stored as text. malloc'd;
 * *repaired_r is set when something was replaced.
 */
char *sms_utf8_repair(const char *s, size_t len, int *repaired_r);

#endif
