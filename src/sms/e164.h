/* e164.h: telephone numbers in E.164 form ("+" and 8 to 15 digits), as SMS cases store them. */
#ifndef OFFLOAD_SMS_E164_H
#define OFFLOAD_SMS_E164_H

#include <stddef.h>

/* The longest stored form: '+', 15 digits, NUL. */
#define SMS_E164_SIZE 17
/* Inputs longer than this are refused before looking at them. */
#define SMS_E164_INPUT_MAX 64

/*
 * Normalises the number in (len bytes): spaces, dashes and dots are removed, and what is
 * left must be '+' followed by 8 to 15 ASCII digits, the first not 0 (a country code).
 * Returns 0 with the stored form in out, or -1 with *error_r (static text, to follow the
 * field's name) and out empty.
 */
int sms_e164_normalise(const char *in, size_t len, char out[SMS_E164_SIZE],
		       const char **error_r);

/*
 * As sms_e164_normalise, and a number without its '+' (8 to 15 bare digits, as Kannel
 * may report an international sender) is taken as one. 0 with out set, -1.
 */
int sms_e164_normalise_loose(const char *in, char out[SMS_E164_SIZE]);

#endif
