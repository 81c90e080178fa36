/* SPDX-License-Identifier: MIT */
/*
 * Name lookups that do not block the main loop: getaddrinfo() runs in a short-lived
 * thread of its own and the answer is delivered on the sd-event loop. (systemd's
 * sd-resolve does this but is not part of libsystemd's public API on Debian.)
 */
#ifndef COAPGATE_RESOLVE_H
#define COAPGATE_RESOLVE_H

#include <netdb.h>

struct sd_event;
struct resolve_query;

/*
 * Called on the loop with getaddrinfo()'s status (0 or an EAI_* code) and the
 * addresses (NULL on failure), which are freed after the call returns.
 */
typedef void (*resolve_callback_t)(int status, const struct addrinfo *ai, void *userdata);

/*
 * Look up host and port (a number) for UDP. Returns 0 and the query in *ret_query, or
 * -errno. The callback runs once, unless the query is cancelled first.
 */
int resolve_start(struct sd_event *event, const char *host, const char *port,
		  resolve_callback_t callback, void *userdata, struct resolve_query **ret_query);

/* Forget the query: its callback will not run. NULL is a no-op. */
void resolve_cancel(struct resolve_query *q);

#endif
