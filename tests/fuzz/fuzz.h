/* fuzz.h: checks shared by the libFuzzer targets; a failed check is a crash libFuzzer keeps. */
#ifndef OFFLOAD_FUZZ_H
#define OFFLOAD_FUZZ_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* Not assert(): it must hold under NDEBUG too. */
#define fuzz_check(expr) \
	do { \
		if (!(expr)) { \
			fprintf(stderr, "fuzz check failed: %s:%d: %s\n", __FILE__, __LINE__, \
				#expr); \
			abort(); \
		} \
	} while (0)

/* Text that may reach a mail header: no CR, LF, NUL or other C0 control, no DEL. */
static inline void fuzz_check_header_safe(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		fuzz_check(c >= 0x20 && c != 0x7f);
	}
}

/* RFC 3629 UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static inline int fuzz_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i], lo = 0x80, hi = 0xbf;
		size_t n;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c == 0xe0)
			n = 2, lo = 0xa0;
		else if (c == 0xed)
			n = 2, hi = 0x9f;
		else if (c >= 0xe1 && c <= 0xef)
			n = 2;
		else if (c == 0xf0)
			n = 3, lo = 0x90;
		else if (c >= 0xf1 && c <= 0xf3)
			n = 3;
		else if (c == 0xf4)
			n = 3, hi = 0x8f;
		else
			return 0;
		if (len - i - 1 < n || s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t k = 2; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
		i += n + 1;
	}
	return 1;
}

#endif
