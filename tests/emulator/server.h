/* SPDX-License-Identifier: MIT */
/*
 * The CoAP side of the emulator, on libcoap's server API: one context with an internal
 * plain CoAP endpoint and an internal DTLS-PSK endpoint (the relay in front of them is
 * what clients talk to), the /bootstrap, / and /data resources, and the rules of
 * README.md ("What it answers"). Its epoll fd runs on the sd-event loop.
 */
#ifndef NCE_SERVER_H
#define NCE_SERVER_H

#include <sys/socket.h>

struct emulator;
struct server;

/*
 * Create the context and both endpoints on 127.0.0.1 with free ports, and hook them to
 * the event loop. Returns 0 or -errno after logging why.
 */
int server_new(struct emulator *emu, struct server **ret_server);
void server_free(struct server *server);

/* Where the relay sends datagrams for the plain (dtls = 0) or DTLS endpoint. */
void server_internal_address(const struct server *server, int dtls,
			     const struct sockaddr **ret_addr, socklen_t *ret_len);

/* The coaps URL bootstrap hands out; copied. */
void server_set_advertised_url(struct server *server, const char *url);

#endif
