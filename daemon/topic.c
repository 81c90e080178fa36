// SPDX-License-Identifier: MIT
/*
 * 1NCE OS topic validation; see topic.h and reference/1nce-coap-endpoint.txt.
 */
#include "topic.h"

#include <coapgate/plugin.h>
#include <stddef.h>

static bool topic_char_is_valid(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '/';
}

bool topic_is_valid(const char *topic)
{
	size_t len = 0;

	if (!topic || !*topic)
		return false;
	for (const char *p = topic; *p; p++, len++) {
		if (len >= CG_TOPIC_MAX || !topic_char_is_valid(*p))
			return false;
		if (p[0] == '/' && p[1] == '/')
			return false;
	}
	return true;
}
