/* SPDX-License-Identifier: MIT */
/*
 * A reading as one JSON object, the form `coapgated --test` prints (and later
 * `coapgatectl queue dump`):
 *
 *   {"input":"health","topic":"health","ts":1732480000123,
 *    "fields":{"load1":0.25,"mem_available":123456,"ok":true,"s":"text"}}
 *
 * f64 fields are JSON numbers, except NaN and the infinities, which JSON cannot
 * express: they are the strings "NaN", "Infinity" and "-Infinity".
 */
#ifndef COAPGATE_READING_JSON_H
#define COAPGATE_READING_JSON_H

#include <coapgate/plugin.h>

/* A malloc()ed compact JSON text without newline. */
char *reading_to_json(const char *input, const struct cg_reading *r);

#endif
