/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 validation, shared by the daemon's reading rules and the inputs that parse
 * text from outside (the Unix socket input checks every message with it).
 */
#ifndef COAPGATE_UTF8_H
#define COAPGATE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s is valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
bool utf8_is_valid(const char *s, size_t len);

#endif
