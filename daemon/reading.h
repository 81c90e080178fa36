/* SPDX-License-Identifier: MIT */
/*
 * The rules every reading obeys before the daemon accepts it (see plugin.h for the
 * limits), and the sink interface through which accepted readings leave the input
 * threads: the --test printer now, the disk queue later.
 */
#ifndef COAPGATE_READING_H
#define COAPGATE_READING_H

#include <coapgate/plugin.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Check a reading as a plugin handed it over. topic may be NULL (the instance's topic
 * applies) and timestamp_ms 0 (now). Returns 0, or -EINVAL with the first problem in
 * why. Pure; no logging.
 */
int reading_validate(const struct cg_reading *r, char *why, size_t why_size);

/* True for a valid field name: 1..CG_FIELD_NAME_MAX of [A-Za-z0-9_.-]. */
bool reading_field_name_is_valid(const char *name);

/*
 * Where accepted readings go. emit() is called from input threads, concurrently, with
 * a validated reading whose timestamp and topic are filled in; it copies what it
 * keeps and sets *ret_token (increasing per reading). wait_durable() waits until the
 * reading of a token is durable: 0, -ETIMEDOUT, -ECANCELED when the sink closes, or
 * -ENOSPC when a reading with a token in (after, token] was lost instead.
 * Both return a negative errno that the host API passes back to the plugin.
 */
struct sink {
	int (*emit)(void *userdata, const char *input, const struct cg_reading *r,
		    uint64_t *ret_token);
	int (*wait_durable)(void *userdata, uint64_t after, uint64_t token, uint64_t timeout_usec);
	void *userdata;
};

#endif
