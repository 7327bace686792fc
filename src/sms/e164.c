/* e164.c: E.164 normalisation and check for SMS counterparties (doc/api.md, SMS). */
#include <stdio.h>
#include <string.h>

#include "sms/e164.h"

int sms_e164_normalise(const char *in, size_t len, char out[SMS_E164_SIZE],
		       const char **error_r)
{
	size_t i, n = 0;

	out[0] = '\0';
	if (len > SMS_E164_INPUT_MAX)
		goto bad;
	for (i = 0; i < len; i++) {
		char c = in[i];

		if (c == ' ' || c == '-' || c == '.')
			continue;
		if (n == 0 ? c != '+' : (c < '0' || c > '9'))
			goto bad;
		/* The country code comes first and none starts with 0 (doc/api.md, SMS):
		 * "+00 44 ..." is a dialling prefix typed after the '+'. */
		if (n == 1 && c == '0')
			goto bad;
		if (n == SMS_E164_SIZE - 1)
			goto bad;
		out[n++] = c;
	}
	if (n < 1 + 8)
		goto bad;
	out[n] = '\0';
	return 0;
bad:
	out[0] = '\0';
	*error_r = "must be a phone number in E.164 form: '+' and 8 to 15 digits";
	return -1;
}

int sms_e164_normalise_loose(const char *in, char out[SMS_E164_SIZE])
{
	const char *err;
	char plus[SMS_E164_INPUT_MAX + 2];

	if (sms_e164_normalise(in, strlen(in), out, &err) == 0)
		return 0;
	snprintf(plus, sizeof plus, "+%s", in);
	return sms_e164_normalise(plus, strlen(plus), out, &err);
}
