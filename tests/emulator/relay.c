// SPDX-License-Identifier: MIT
/*
 * The simulated network; see relay.h. Flows are kept in a list: the emulator serves a
 * handful of devices, and the list is bounded (MAX_FLOWS, least recently used evicted).
 */
#include "relay.h"

#include "emulator.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#define MAX_FLOWS    4096
#define MAX_DATAGRAM 65536
/* Datagrams held for "delay": bounded so a long delay at a high rate cannot eat memory. */
#define MAX_PENDING 100000

struct listener {
	struct relay *relay;
	int fd;
	sd_event_source *source;
	struct sockaddr_storage internal;
	socklen_t internal_len;
	struct listener *next;
};

struct flow {
	struct listener *listener;
	struct sockaddr_storage client;
	socklen_t client_len;
	int fd;				       /* connected to the listener's internal address */
	struct sockaddr_storage internal_peer; /* fd's own address, as libcoap sees it */
	sd_event_source *source;
	uint64_t last_active_us;
	struct flow *next;
};

/* A datagram held back by "delay", in due-time order. */
struct pending {
	uint64_t due_us;
	struct flow *flow;
	bool towards_client;
	size_t len;
	struct pending *next;
	uint8_t data[];
};

struct relay {
	struct emulator *emu;
	struct listener *listeners;
	struct flow *flows;
	size_t n_flows;
	struct pending *pending;
	size_t n_pending;
	sd_event_source *delay_timer;
	uint8_t buffer[MAX_DATAGRAM];
};

static bool sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

static void pending_drop_flow(struct relay *relay, const struct flow *flow)
{
	for (struct pending **p = &relay->pending; *p;) {
		if ((*p)->flow == flow) {
			struct pending *gone = *p;

			*p = gone->next;
			free(gone);
			relay->n_pending--;
		} else {
			p = &(*p)->next;
		}
	}
}

static void flow_free(struct relay *relay, struct flow *flow)
{
	for (struct flow **f = &relay->flows; *f; f = &(*f)->next)
		if (*f == flow) {
			*f = flow->next;
			break;
		}
	relay->n_flows--;
	pending_drop_flow(relay, flow);
	sd_event_source_disable_unref(flow->source);
	safe_close(flow->fd);
	free(flow);
}

static bool lost(double pct)
{
	return pct > 0 && emu_random_unit() * 100.0 < pct;
}

static bool is_silent(const struct relay *relay)
{
	return relay->emu->faults.silent_until_us > now_monotonic_usec();
}

static void deliver(struct flow *flow, bool towards_client, const uint8_t *data, size_t len)
{
	/* A full socket buffer or a closed endpoint loses the datagram, as UDP does. */
	if (towards_client)
		(void)sendto(flow->listener->fd, data, len, MSG_DONTWAIT,
			     (struct sockaddr *)&flow->client, flow->client_len);
	else
		(void)send(flow->fd, data, len, MSG_DONTWAIT);
}

static int arm_delay_timer(struct relay *relay)
{
	if (!relay->pending)
		return sd_event_source_set_enabled(relay->delay_timer, SD_EVENT_OFF);
	sd_event_source_set_time(relay->delay_timer, relay->pending->due_us);
	return sd_event_source_set_enabled(relay->delay_timer, SD_EVENT_ONESHOT);
}

static int on_delay_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct relay *relay = userdata;
	uint64_t now = now_monotonic_usec();

	while (relay->pending && relay->pending->due_us <= now) {
		struct pending *p = relay->pending;

		relay->pending = p->next;
		relay->n_pending--;
		deliver(p->flow, p->towards_client, p->data, p->len);
		free(p);
	}
	return arm_delay_timer(relay);
}

static void hold(struct relay *relay, struct flow *flow, bool towards_client, const uint8_t *data,
		 size_t len)
{
	const struct faults *f = &relay->emu->faults;
	struct pending *p, **at;

	if (relay->n_pending >= MAX_PENDING) {
		if (towards_client)
			relay->emu->stats.dropped_out++;
		else
			relay->emu->stats.dropped_in++;
		return;
	}
	p = xmalloc(sizeof(*p) + len);
	p->due_us = now_monotonic_usec() + f->delay_us +
		    (f->jitter_us ? emu_random_below(f->jitter_us + 1) : 0);
	p->flow = flow;
	p->towards_client = towards_client;
	p->len = len;
	memcpy(p->data, data, len);
	for (at = &relay->pending; *at && (*at)->due_us <= p->due_us; at = &(*at)->next)
		;
	p->next = *at;
	*at = p;
	relay->n_pending++;
	relay->emu->stats.delayed++;
	arm_delay_timer(relay);
}

/* Apply silence, loss and delay to one datagram, then send it on. */
static void forward(struct relay *relay, struct flow *flow, bool towards_client,
		    const uint8_t *data, size_t len)
{
	const struct faults *f = &relay->emu->faults;
	struct stats *st = &relay->emu->stats;

	if (is_silent(relay) || lost(towards_client ? f->drop_out_pct : f->drop_in_pct)) {
		if (towards_client)
			st->dropped_out++;
		else
			st->dropped_in++;
		return;
	}
	flow->last_active_us = now_monotonic_usec();
	if (f->delay_us || f->jitter_us)
		hold(relay, flow, towards_client, data, len);
	else
		deliver(flow, towards_client, data, len);
}

static bool flow_expired(const struct relay *relay, const struct flow *flow)
{
	uint64_t timeout = relay->emu->faults.nat_timeout_us;

	return timeout && now_monotonic_usec() - flow->last_active_us >= timeout;
}

static int on_flow_readable(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct flow *flow = userdata;
	struct relay *relay = flow->listener->relay;

	for (;;) {
		ssize_t n = recv(fd, relay->buffer, sizeof(relay->buffer), MSG_DONTWAIT);

		if (n < 0) {
			/* ECONNREFUSED comes back from an ICMP error; nothing to do. */
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR || errno == ECONNREFUSED)
				continue;
			return 0;
		}
		relay->emu->stats.datagrams_out++;
		relay->emu->stats.bytes_out += (uint64_t)n;
		/* Past the NAT timeout the mapping is gone: the answer finds no way back. */
		if (flow_expired(relay, flow)) {
			relay->emu->stats.dropped_out++;
			continue;
		}
		forward(relay, flow, true, relay->buffer, (size_t)n);
	}
}

static void evict_least_recent(struct relay *relay)
{
	struct flow *oldest = relay->flows;

	for (struct flow *f = relay->flows; f; f = f->next)
		if (f->last_active_us < oldest->last_active_us)
			oldest = f;
	if (oldest)
		flow_free(relay, oldest);
}

static struct flow *flow_new(struct relay *relay, struct listener *listener,
			     const struct sockaddr *client, socklen_t client_len)
{
	struct flow *flow;
	socklen_t len;
	int fd, r;

	if (relay->n_flows >= MAX_FLOWS)
		evict_least_recent(relay);
	fd = socket(listener->internal.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (connect(fd, (struct sockaddr *)&listener->internal, listener->internal_len) < 0) {
		safe_close(fd);
		return NULL;
	}
	flow = xcalloc(1, sizeof(*flow));
	flow->listener = listener;
	flow->fd = fd;
	memcpy(&flow->client, client, client_len);
	flow->client_len = client_len;
	flow->last_active_us = now_monotonic_usec();
	len = sizeof(flow->internal_peer);
	r = getsockname(fd, (struct sockaddr *)&flow->internal_peer, &len);
	if (r == 0)
		r = sd_event_add_io(relay->emu->event, &flow->source, fd, EPOLLIN, on_flow_readable,
				    flow);
	if (r < 0) {
		safe_close(fd);
		free(flow);
		return NULL;
	}
	flow->next = relay->flows;
	relay->flows = flow;
	relay->n_flows++;
	return flow;
}

static struct flow *flow_find(struct relay *relay, const struct listener *listener,
			      const struct sockaddr *client)
{
	for (struct flow *f = relay->flows; f; f = f->next)
		if (f->listener == listener &&
		    sockaddr_equal((struct sockaddr *)&f->client, client))
			return f;
	return NULL;
}

static int on_listener_readable(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct listener *listener = userdata;
	struct relay *relay = listener->relay;

	for (;;) {
		struct sockaddr_storage client;
		socklen_t client_len = sizeof(client);
		struct flow *flow;
		ssize_t n = recvfrom(fd, relay->buffer, sizeof(relay->buffer), MSG_DONTWAIT,
				     (struct sockaddr *)&client, &client_len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		relay->emu->stats.datagrams_in++;
		relay->emu->stats.bytes_in += (uint64_t)n;
		flow = flow_find(relay, listener, (struct sockaddr *)&client);
		if (flow && flow_expired(relay, flow)) {
			flow_free(relay, flow);
			flow = NULL;
		}
		if (!flow)
			flow = flow_new(relay, listener, (struct sockaddr *)&client, client_len);
		if (!flow) {
			relay->emu->stats.dropped_in++;
			continue;
		}
		forward(relay, flow, false, relay->buffer, (size_t)n);
	}
}

/* "ADDR:PORT" or "[ADDR]:PORT" into an address; -EINVAL if it is neither. */
static int parse_listen(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *res;
	char host[256];
	const char *port;
	size_t host_len;

	if (text[0] == '[') {
		const char *end = strchr(text, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		host_len = (size_t)(end - text - 1);
		memcpy(host, text + 1, MIN(host_len, sizeof(host) - 1));
		port = end + 2;
	} else {
		const char *colon = strrchr(text, ':');

		if (!colon)
			return -EINVAL;
		host_len = (size_t)(colon - text);
		memcpy(host, text, MIN(host_len, sizeof(host) - 1));
		port = colon + 1;
	}
	if (host_len == 0 || host_len >= sizeof(host) || !*port)
		return -EINVAL;
	host[host_len] = '\0';
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -EINVAL;
	memcpy(ret, res->ai_addr, res->ai_addrlen);
	*ret_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int relay_add_listener(struct relay *relay, const char *listen, const struct sockaddr *internal,
		       socklen_t internal_len, char *ret_bound, size_t bound_size)
{
	struct sockaddr_storage addr;
	socklen_t len;
	struct listener *l;
	char host[INET6_ADDRSTRLEN];
	uint16_t port;
	int fd, r;

	r = parse_listen(listen, &addr, &len);
	if (r < 0)
		return r;
	fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, len) < 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
		r = -errno;
		safe_close(fd);
		return r;
	}
	l = xcalloc(1, sizeof(*l));
	l->relay = relay;
	l->fd = fd;
	memcpy(&l->internal, internal, internal_len);
	l->internal_len = internal_len;
	r = sd_event_add_io(relay->emu->event, &l->source, fd, EPOLLIN, on_listener_readable, l);
	if (r < 0) {
		safe_close(fd);
		free(l);
		return r;
	}
	l->next = relay->listeners;
	relay->listeners = l;

	if (addr.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addr)->sin6_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
		snprintf(ret_bound, bound_size, "[%s]:%u", host, port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&addr)->sin_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
		snprintf(ret_bound, bound_size, "%s:%u", host, port);
	}
	return 0;
}

const struct sockaddr *relay_client_address(const struct relay *relay,
					    const struct sockaddr *internal_peer)
{
	for (const struct flow *f = relay->flows; f; f = f->next)
		if (sockaddr_equal((const struct sockaddr *)&f->internal_peer, internal_peer))
			return (const struct sockaddr *)&f->client;
	return NULL;
}

void relay_forget_all(struct relay *relay)
{
	while (relay->flows)
		flow_free(relay, relay->flows);
}

void relay_faults_changed(struct relay *relay)
{
	arm_delay_timer(relay);
}

int relay_new(struct emulator *emu, struct relay **ret_relay)
{
	struct relay *relay = xcalloc(1, sizeof(*relay));
	int r;

	relay->emu = emu;
	/* Accuracy 1 us: sd-event's default of 250 ms would swamp a "delay 300". */
	r = sd_event_add_time(emu->event, &relay->delay_timer, CLOCK_MONOTONIC, 0, 1,
			      on_delay_timer, relay);
	if (r < 0) {
		free(relay);
		return r;
	}
	sd_event_source_set_enabled(relay->delay_timer, SD_EVENT_OFF);
	*ret_relay = relay;
	return 0;
}

void relay_free(struct relay *relay)
{
	if (!relay)
		return;
	relay_forget_all(relay);
	while (relay->listeners) {
		struct listener *l = relay->listeners;

		relay->listeners = l->next;
		sd_event_source_disable_unref(l->source);
		safe_close(l->fd);
		free(l);
	}
	sd_event_source_disable_unref(relay->delay_timer);
	free(relay);
}
