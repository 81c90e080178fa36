// SPDX-License-Identifier: MIT
/*
 * UTF-8 validation; see utf8.h.
 */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* Most text is ASCII: skip it eight bytes at a time before decoding byte by byte. The
 * Unix socket input checks every message, so this is on its hot path. */
static const unsigned char *skip_ascii(const unsigned char *p, const unsigned char *end)
{
	while (end - p >= 8) {
		uint64_t word;

		memcpy(&word, p, sizeof(word));
		if (word & 0x8080808080808080ULL)
			break;
		p += 8;
	}
	while (p < end && *p < 0x80)
		p++;
	return p;
}

bool utf8_is_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while ((p = skip_ascii(p, end)) < end) {
		uint32_t cp;
		size_t n;

		if ((*p & 0xe0) == 0xc0) {
			n = 1;
			cp = *p & 0x1f;
		} else if ((*p & 0xf0) == 0xe0) {
			n = 2;
			cp = *p & 0x0f;
		} else if ((*p & 0xf8) == 0xf0) {
			n = 3;
			cp = *p & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) <= n)
			return false;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		/* Reject overlong forms, UTF-16 surrogates and values past Unicode. */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		p += n + 1;
	}
	return true;
}
