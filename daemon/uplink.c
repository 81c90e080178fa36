// SPDX-License-Identifier: MIT
/*
 * The uplink; see uplink.h. Everything happens on the main loop: libcoap's handlers
 * only record what happened (they must not release sessions or call back into
 * libcoap), and pump() acts on it after coap_io_process() returns.
 */
#include "uplink.h"

#include "config.h"
#include "credentials.h"
#include "deadletter.h"
#include "log.h"
#include "outbox.h"
#include "queue.h"
#include "ratelimit.h"
#include "resolve.h"
#include "util.h"

#include <arpa/inet.h>
#include <coap3/coap.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#define MAX_FLIGHTS	16
#define TOKEN_MAX	8
#define READS_PER_ROUND 4096
/* CoAP header, the longest token, the Uri-Query option's header and the payload marker. */
#define PDU_OVERHEAD (4 + TOKEN_MAX + 3 + 1)
/*
 * RFC 7252 §4.4 and 1NCE OS: a message ID is not reused towards the same endpoint within
 * EXCHANGE_LIFETIME, or the server takes the new message for a retransmission, answers
 * it again and drops it. The uplink numbers its messages itself and remembers, per
 * bucket of MID_BUCKET messages, when the bucket started.
 */
#define EXCHANGE_LIFETIME_USEC (247 * USEC_PER_SEC)
#define HANDSHAKE_TIMEOUT_USEC (35 * USEC_PER_SEC)
/*
 * libcoap's retransmissions run on a timerfd inside its epoll set, and 4.3.1 does not
 * always re-arm it (seen under loss: a message never retransmitted, no NACK). While
 * anything awaits an answer the uplink gives libcoap a turn at least this often, and
 * gives up on a message unanswered after MAX_TRANSMIT_WAIT (93 s) plus a margin.
 */
#define LIBCOAP_TICK_USEC   (200 * USEC_PER_MSEC)
#define FLIGHT_TIMEOUT_USEC (100 * USEC_PER_SEC)
#define MID_SPACE	    65536
#define MID_BUCKET	    1024
#define MID_BUCKETS	    (MID_SPACE / MID_BUCKET)

enum uplink_state {
	STATE_NEED_CREDENTIALS,
	STATE_BOOTSTRAPPING,
	STATE_RESOLVING,
	STATE_CONNECTING,
	STATE_READY,
	STATE_BACKOFF,
};

static const char *const state_names[] = {
	[STATE_NEED_CREDENTIALS] = "credentials",
	[STATE_BOOTSTRAPPING] = "bootstrapping",
	[STATE_RESOLVING] = "resolving",
	[STATE_CONNECTING] = "connecting",
	[STATE_READY] = "ready",
	[STATE_BACKOFF] = "backoff",
};

/* A message sent and not yet answered. */
struct flight {
	bool used;
	struct outbox_message m;
	uint8_t token[TOKEN_MAX];
	size_t token_len;
	coap_mid_t mid;
	uint64_t sent_us;
};

struct uplink {
	const struct uplink_settings *cfg;
	const char *state_dir;
	struct queue *queue;
	struct queue_reader *reader;
	sd_event *event;
	sd_event_source *coap_source, *durable_source, *timer;
	struct resolve_query *query;
	coap_context_t *ctx;
	struct outbox *outbox;

	enum uplink_state state;
	struct credentials cred;
	bool have_cred;

	/* The data session and what is known about it. */
	coap_session_t *session;
	bool session_connected;
	bool session_broken; /* rebuild it (handlers only set this) */
	uint64_t last_activity_us;
	uint64_t session_started_us;
	struct flight flights[MAX_FLIGHTS];
	size_t n_flights;
	uint16_t next_mid;
	uint64_t session_messages;	     /* new messages sent on this session */
	uint64_t mid_bucket_us[MID_BUCKETS]; /* when each bucket's first message went */

	/* Bootstrap. */
	bool resolving_bootstrap; /* what the pending lookup is for */
	char resolving_host[256];
	coap_session_t *bootstrap_session;
	uint8_t bootstrap_token[TOKEN_MAX];
	size_t bootstrap_token_len;
	bool bootstrap_wanted;
	bool bootstrap_done; /* answered or failed: release the session */
	uint64_t last_bootstrap_us;
	unsigned handshake_failures;

	/* Backoff after a failure: the delay doubles up to backoff_max, with jitter. */
	uint64_t backoff_until_us;
	uint64_t backoff_us;

	/* pump() sent or released something that libcoap has not seen yet. */
	bool coap_dirty;

	/* What STATUS= and the logs report. */
	char last_answer[16];
	uint64_t delivered;
	uint64_t dead_lettered;
	/* A stream of refused messages logs 10 lines a minute, then a count. */
	struct ratelimit dead_letter_log;
	uint64_t bootstraps;
};

/*
 * libcoap 4.3.1 has no user data on a context and the event handler gets none; a
 * session's app data is set, but the NACK of a half-made session may come first.
 */
static struct uplink *the_uplink;

static void pump(struct uplink *u);
static void run(struct uplink *u);

static void ulog(int level, const char *code, const char *topic, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* A log line with COAP_CODE= and COAPGATE_TOPIC= when they apply. */
static void ulog(int level, const char *code, const char *topic, const char *format, ...)
{
	char code_field[32], topic_field[300];
	const char *fields[3] = { NULL, NULL, NULL };
	size_t n = 0;
	va_list ap;

	if (code) {
		snprintf(code_field, sizeof(code_field), "COAP_CODE=%s", code);
		fields[n++] = code_field;
	}
	if (topic) {
		snprintf(topic_field, sizeof(topic_field), "COAPGATE_TOPIC=%s", topic);
		fields[n++] = topic_field;
	}
	va_start(ap, format);
	log_internalv(level, 0, __FILE__, __LINE__, "uplink", NULL, n ? fields : NULL, format, ap);
	va_end(ap);
}

static void set_state(struct uplink *u, enum uplink_state state)
{
	if (u->state == state)
		return;
	log_debug("uplink: %s -> %s", state_names[u->state], state_names[state]);
	u->state = state;
}

static void format_code(uint8_t code, char *buf, size_t size)
{
	snprintf(buf, size, "%u.%02u", code >> 5, code & 0x1f);
}

/* ---- backoff ---- */

static void backoff(struct uplink *u, const char *why)
{
	uint64_t base = u->backoff_us ? MIN(u->backoff_us * 2, u->cfg->backoff_max_usec)
				      : u->cfg->backoff_min_usec;
	/* Jitter: wait between half and all of the delay, so gateways do not march in step. */
	uint64_t delay = base / 2 + (uint64_t)((double)(base / 2) * drand48());

	u->backoff_us = base;
	u->backoff_until_us = now_monotonic_usec() + delay;
	set_state(u, STATE_BACKOFF);
	log_warning("uplink: %s; retrying in %.1f s", why, (double)delay / 1e6);
}

static void backoff_reset(struct uplink *u)
{
	u->backoff_us = 0;
	u->backoff_until_us = 0;
}

/* ---- sessions ---- */

/* Every message in flight goes back to pending: it is sent again later. */
static void retry_flights(struct uplink *u)
{
	for (size_t i = 0; i < MAX_FLIGHTS; i++) {
		struct flight *f = &u->flights[i];

		if (!f->used)
			continue;
		outbox_message_retry(u->outbox, &f->m);
		outbox_message_free(&f->m);
		f->used = false;
	}
	u->n_flights = 0;
}

static void release_session(struct uplink *u)
{
	coap_session_t *s = u->session;

	retry_flights(u);
	/* Cleared first: releasing may call the NACK handler for queued messages. */
	u->session = NULL;
	u->session_connected = false;
	u->session_broken = false;
	if (s) {
		coap_session_release(s);
		u->coap_dirty = true;
	}
}

static void release_bootstrap_session(struct uplink *u)
{
	coap_session_t *s = u->bootstrap_session;

	u->bootstrap_session = NULL;
	u->bootstrap_done = false;
	if (s)
		coap_session_release(s);
}

/* The local address to send from: bind_address, or interface's current address. */
static int local_address(const struct uplink *u, int family, coap_address_t *ret)
{
	struct ifaddrs *ifs, *i;
	int r = -EADDRNOTAVAIL;

	coap_address_init(ret);
	if (u->cfg->bind_address) {
		if (inet_pton(AF_INET, u->cfg->bind_address, &ret->addr.sin.sin_addr) == 1) {
			ret->addr.sin.sin_family = AF_INET;
			ret->size = sizeof(struct sockaddr_in);
			return family == AF_INET ? 0 : -EAFNOSUPPORT;
		}
		if (inet_pton(AF_INET6, u->cfg->bind_address, &ret->addr.sin6.sin6_addr) != 1)
			return -EINVAL;
		ret->addr.sin6.sin6_family = AF_INET6;
		ret->size = sizeof(struct sockaddr_in6);
		return family == AF_INET6 ? 0 : -EAFNOSUPPORT;
	}
	if (getifaddrs(&ifs) < 0)
		return -errno;
	for (i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != family ||
		    strcmp(i->ifa_name, u->cfg->interface) != 0)
			continue;
		memcpy(&ret->addr, i->ifa_addr,
		       family == AF_INET ? sizeof(struct sockaddr_in)
					 : sizeof(struct sockaddr_in6));
		ret->size =
		    family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
		ret->addr.sin.sin_port = 0;
		r = 0;
		break;
	}
	freeifaddrs(ifs);
	return r;
}

/* ---- answers from libcoap ---- */

static struct flight *flight_by_token(struct uplink *u, const coap_bin_const_t *token)
{
	for (size_t i = 0; i < MAX_FLIGHTS; i++) {
		struct flight *f = &u->flights[i];

		if (f->used && f->token_len == token->length &&
		    memcmp(f->token, token->s, token->length) == 0)
			return f;
	}
	return NULL;
}

static void flight_end(struct uplink *u, struct flight *f, bool done)
{
	if (done)
		outbox_message_done(u->outbox, &f->m);
	else
		outbox_message_retry(u->outbox, &f->m);
	outbox_message_free(&f->m);
	f->used = false;
	u->n_flights--;
}

static void dead_letter(struct uplink *u, struct flight *f, const char *code, const char *reason)
{
	struct deadletter_entry e = { .topic = f->m.topic,
				      .code = code,
				      .reason = reason,
				      .payload = f->m.payload,
				      .payload_len = f->m.payload_len,
				      .first_seq = f->m.first_seq,
				      .last_seq = f->m.last_seq,
				      .n_readings = f->m.n_readings };
	int r = deadletter_append(u->state_dir, u->cfg->dead_letter_max_size, &e);
	unsigned long suppressed;

	u->dead_lettered += f->m.n_readings;
	if (r < 0)
		log_error_errno(r,
				"uplink: cannot write the dead-letter file in \"%s\": %m; the "
				"%zu readings of seq %" PRIu64 "..%" PRIu64 " are dropped",
				u->state_dir, f->m.n_readings, f->m.first_seq, f->m.last_seq);
	if (ratelimit_test(&u->dead_letter_log, now_monotonic_usec(), &suppressed)) {
		if (suppressed)
			log_warning("uplink: %lu more refused messages were not logged",
				    suppressed);
		ulog(LOG_WARNING, code, f->m.topic,
		     "uplink: 1NCE OS refused %zu readings (seq %" PRIu64 "..%" PRIu64
		     ") with %s%s%s; kept in dead-letter.jsonl, later readings go on",
		     f->m.n_readings, f->m.first_seq, f->m.last_seq, code, reason ? ": " : "",
		     reason ? reason : "");
	}
	flight_end(u, f, true);
}

static void on_bootstrap_answer(struct uplink *u, const coap_pdu_t *received)
{
	uint8_t code = (uint8_t)coap_pdu_get_code(received);
	const uint8_t *data = NULL;
	struct credentials c;
	const char *why;
	char code_text[8];
	size_t len = 0;
	int r;

	u->bootstrap_done = true;
	format_code(code, code_text, sizeof(code_text));
	coap_get_data(received, &len, &data);
	if (code == COAP_RESPONSE_CODE(401)) {
		ulog(LOG_ERR, code_text, NULL,
		     "uplink: 1NCE OS refused the bootstrap (4.01: the SIM is not active, or the "
		     "account has not accepted the terms of use): %.*s; trying again in %.0f s",
		     (int)MIN(len, 300), data ? (const char *)data : "",
		     (double)u->cfg->bootstrap_denied_backoff_usec / 1e6);
		u->backoff_us = u->cfg->bootstrap_denied_backoff_usec;
		u->backoff_until_us = now_monotonic_usec() + u->cfg->bootstrap_denied_backoff_usec;
		set_state(u, STATE_BACKOFF);
		return;
	}
	if (code != COAP_RESPONSE_CODE(205)) {
		ulog(LOG_WARNING, code_text, NULL, "uplink: bootstrap answered %s", code_text);
		backoff(u, "bootstrap failed");
		return;
	}
	r = credentials_parse_bootstrap((const char *)data, len, UPLINK_DEFAULT_ENDPOINT, &c, &why);
	if (r < 0) {
		log_error("uplink: the bootstrap answer is unusable: %s", why);
		backoff(u, "bootstrap failed");
		return;
	}
	c.obtained_ms = now_realtime_ms();
	r = credentials_save(u->state_dir, &c);
	if (r < 0)
		log_warning_errno(r,
				  "uplink: cannot save the credentials in \"%s\": %m; they "
				  "last until the daemon stops",
				  u->state_dir);
	/* The PSK itself is never logged. */
	ulog(LOG_NOTICE, code_text, NULL, "uplink: bootstrapped: identity \"%s\", endpoint \"%s\"",
	     c.identity, c.endpoint);
	u->cred = c;
	u->have_cred = true;
	u->bootstrap_wanted = false;
	u->handshake_failures = 0;
	backoff_reset(u);
	/* libcoap 4.3.1 would re-handshake an old session with the old key. */
	release_session(u);
	set_state(u, STATE_NEED_CREDENTIALS);
}

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent,
				   const coap_pdu_t *received, const coap_mid_t mid)
{
	struct uplink *u = the_uplink;
	uint8_t code = (uint8_t)coap_pdu_get_code(received);
	coap_bin_const_t token = coap_pdu_get_token(received);
	const uint8_t *data = NULL;
	struct flight *f;
	char code_text[8], reason[256];
	size_t len = 0;

	if (!u)
		return COAP_RESPONSE_OK;
	if (session == u->bootstrap_session) {
		if (token.length == u->bootstrap_token_len &&
		    memcmp(token.s, u->bootstrap_token, token.length) == 0 && !u->bootstrap_done)
			on_bootstrap_answer(u, received);
		return COAP_RESPONSE_OK;
	}
	if (session != u->session || !(f = flight_by_token(u, &token)))
		return COAP_RESPONSE_OK;

	u->last_activity_us = now_monotonic_usec();
	format_code(code, code_text, sizeof(code_text));
	snprintf(u->last_answer, sizeof(u->last_answer), "%s", code_text);
	coap_get_data(received, &len, &data);
	snprintf(reason, sizeof(reason), "%.*s", (int)MIN(len, sizeof(reason) - 1),
		 data ? (const char *)data : "");

	if (code >> 5 == 2) {
		u->delivered += f->m.n_readings;
		backoff_reset(u);
		flight_end(u, f, true);
	} else if (code == COAP_RESPONSE_CODE(401)) {
		ulog(LOG_WARNING, code_text, f->m.topic, "uplink: 1NCE OS answered 4.01 (%s)%s",
		     reason,
		     u->cred.origin == CREDENTIALS_BOOTSTRAP ? ": bootstrapping again"
							     : " to the configured credentials");
		flight_end(u, f, false);
		u->bootstrap_wanted = true;
		u->session_broken = true;
		/* Bootstrap is rate-limited anyway; with user-set credentials this wait is
		 * all that keeps a refused device from retrying in a tight loop. */
		backoff(u, "unauthorized");
	} else if (code >> 5 == 4) {
		dead_letter(u, f, code_text, len ? reason : NULL);
	} else {
		ulog(LOG_WARNING, code_text, f->m.topic, "uplink: 1NCE OS answered %s%s%s",
		     code_text, len ? ": " : "", reason);
		flight_end(u, f, false);
		u->session_broken = true;
		backoff(u, "the server failed");
	}
	return COAP_RESPONSE_OK;
}

static const char *nack_name(coap_nack_reason_t reason)
{
	switch (reason) {
	case COAP_NACK_TOO_MANY_RETRIES:
		return "no answer after every retransmission";
	case COAP_NACK_NOT_DELIVERABLE:
		return "not deliverable";
	case COAP_NACK_RST:
		return "reset by the server";
	case COAP_NACK_TLS_FAILED:
		return "the DTLS handshake failed";
	case COAP_NACK_ICMP_ISSUE:
		return "ICMP error";
	default:
		return "failed";
	}
}

static void handshake_failed(struct uplink *u, const char *why)
{
	u->handshake_failures++;
	if (u->handshake_failures >= (unsigned)u->cfg->handshake_failures &&
	    u->cred.origin == CREDENTIALS_BOOTSTRAP) {
		log_warning("uplink: %u DTLS handshakes failed in a row (%s): bootstrapping again",
			    u->handshake_failures, why);
		u->bootstrap_wanted = true;
	}
}

static void on_nack(coap_session_t *session, const coap_pdu_t *sent,
		    const coap_nack_reason_t reason, const coap_mid_t mid)
{
	struct uplink *u = the_uplink;

	if (!u)
		return;
	if (session == u->bootstrap_session && u->bootstrap_session && !u->bootstrap_done) {
		u->bootstrap_done = true;
		log_warning("uplink: bootstrap: %s", nack_name(reason));
		backoff(u, "bootstrap failed");
		return;
	}
	if (session != u->session || u->session_broken)
		return;
	if (reason == COAP_NACK_TLS_FAILED && !u->session_connected)
		handshake_failed(u, nack_name(reason));
	u->session_broken = true;
	backoff(u, nack_name(reason));
}

static int on_event(coap_session_t *session, coap_event_t event)
{
	struct uplink *u = the_uplink;

	if (!u || session != u->session)
		return 0;
	switch (event) {
	case COAP_EVENT_DTLS_CONNECTED:
		u->session_connected = true;
		u->handshake_failures = 0;
		u->last_activity_us = now_monotonic_usec();
		set_state(u, STATE_READY);
		log_info("uplink: DTLS session to \"%s\" established", u->cred.endpoint);
		break;
	case COAP_EVENT_DTLS_ERROR:
	case COAP_EVENT_DTLS_CLOSED:
		if (u->session_broken)
			break;
		if (!u->session_connected)
			handshake_failed(u,
					 event == COAP_EVENT_DTLS_ERROR ? "DTLS alert" : "closed");
		u->session_broken = true;
		backoff(u, event == COAP_EVENT_DTLS_ERROR ? "DTLS error" : "DTLS session closed");
		break;
	default:
		break;
	}
	return 0;
}

/* ---- resolving and connecting ---- */

static int start_session(struct uplink *u, const struct addrinfo *ai);

struct url {
	char host[256];
	char port[8];
	char path[256];
};

/* A coap:// or coaps:// URL (the config checks which one is allowed where). */
static int parse_url(const char *text, struct url *ret)
{
	coap_uri_t uri;

	if (coap_split_uri((const uint8_t *)text, strlen(text), &uri) < 0 ||
	    (uri.scheme != COAP_URI_SCHEME_COAPS && uri.scheme != COAP_URI_SCHEME_COAP) ||
	    uri.host.length == 0 || uri.host.length >= sizeof(ret->host) ||
	    uri.path.length >= sizeof(ret->path))
		return -EINVAL;
	memcpy(ret->host, uri.host.s, uri.host.length);
	ret->host[uri.host.length] = '\0';
	snprintf(ret->port, sizeof(ret->port), "%u", uri.port);
	/* An empty path has no pointer at all. */
	if (uri.path.length)
		memcpy(ret->path, uri.path.s, uri.path.length);
	ret->path[uri.path.length] = '\0';
	return 0;
}

static void on_resolved(int status, const struct addrinfo *ai, void *userdata)
{
	struct uplink *u = userdata;
	int r;

	u->query = NULL;
	if (status != 0 || !ai) {
		char why[400];

		snprintf(why, sizeof(why), "cannot resolve \"%s\": %s", u->resolving_host,
			 status == 0 ? "no address" : gai_strerror(status));
		backoff(u, why);
		run(u);
		return;
	}
	r = start_session(u, ai);
	if (r < 0) {
		log_error_errno(r, "uplink: cannot open a CoAP session: %m");
		backoff(u, "no session");
	}
	run(u);
}

/* Look up the host of the bootstrap URL or of the endpoint, afresh each time: 1NCE's
 * names have two addresses that may change. */
static int resolve(struct uplink *u, const char *url, bool bootstrap)
{
	struct url p;
	int r;

	r = parse_url(url, &p);
	if (r < 0) {
		log_error("uplink: \"%s\" is not a CoAP URL", url);
		return r;
	}
	r = resolve_start(u->event, p.host, p.port, on_resolved, u, &u->query);
	if (r < 0)
		return r;
	u->resolving_bootstrap = bootstrap;
	snprintf(u->resolving_host, sizeof(u->resolving_host), "%s", p.host);
	set_state(u, STATE_RESOLVING);
	return 0;
}

static coap_pdu_t *new_request(coap_session_t *session, coap_pdu_code_t code, uint8_t *token,
			       size_t *token_len)
{
	coap_pdu_t *pdu = coap_new_pdu(COAP_MESSAGE_CON, code, session);

	if (!pdu)
		return NULL;
	coap_session_new_token(session, token_len, token);
	if (!coap_add_token(pdu, *token_len, token)) {
		coap_delete_pdu(pdu);
		return NULL;
	}
	return pdu;
}

static int send_bootstrap(struct uplink *u)
{
	struct url p;
	coap_pdu_t *pdu;
	const char *seg, *end;

	parse_url(u->cfg->bootstrap_url, &p);
	pdu = new_request(u->bootstrap_session, COAP_REQUEST_CODE_GET, u->bootstrap_token,
			  &u->bootstrap_token_len);
	if (!pdu)
		return -ENOMEM;
	for (seg = p.path; *seg; seg = *end ? end + 1 : end) {
		end = strchrnul(seg, '/');
		if (end > seg)
			coap_add_option(pdu, COAP_OPTION_URI_PATH, (size_t)(end - seg),
					(const uint8_t *)seg);
	}
	if (coap_send(u->bootstrap_session, pdu) == COAP_INVALID_MID)
		return -EIO;
	u->coap_dirty = true;
	return 0;
}

/* RFC 7252's ACK_TIMEOUT from the configuration (libcoap keeps it in thousandths). */
static void set_ack_timeout(const struct uplink *u, coap_session_t *session)
{
	uint64_t ms = u->cfg->ack_timeout_usec / USEC_PER_MSEC;
	coap_fixed_point_t t = { .integer_part = (uint16_t)(ms / 1000),
				 .fractional_part = (uint16_t)(ms % 1000) };

	coap_session_set_ack_timeout(session, t);
}

/* A new session is a new endpoint (a new source port): its message IDs start afresh. */
static void mids_reset(struct uplink *u)
{
	u->next_mid = (uint16_t)lrand48();
	u->session_messages = 0;
	memset(u->mid_bucket_us, 0, sizeof(u->mid_bucket_us));
}

/*
 * When the next new message may be sent without reusing a message ID of this session
 * within EXCHANGE_LIFETIME: 0 for now. Message k reuses the ID of message k - 65536,
 * which was sent before the bucket after its own started.
 */
static uint64_t mid_free_at(const struct uplink *u)
{
	uint64_t k = u->session_messages;

	if (k < MID_SPACE)
		return 0;
	return u->mid_bucket_us[(k / MID_BUCKET + 1) % MID_BUCKETS] + EXCHANGE_LIFETIME_USEC;
}

static uint16_t mid_take(struct uplink *u)
{
	uint64_t k = u->session_messages++;

	if (k % MID_BUCKET == 0)
		u->mid_bucket_us[(k / MID_BUCKET) % MID_BUCKETS] = now_monotonic_usec();
	return u->next_mid++;
}

/* endpoint = "coap://...": plain CoAP, as 1NCE also offers; no DTLS, no credentials. */
static bool endpoint_is_plain(const struct uplink *u)
{
	return u->cfg->endpoint && strncmp(u->cfg->endpoint, "coap://", 7) == 0;
}

static int start_session(struct uplink *u, const struct addrinfo *ai)
{
	coap_address_t server, local;
	coap_session_t *s;
	bool bind = u->cfg->bind_address || u->cfg->interface;
	int r;

	if (bind) {
		r = local_address(u, ai->ai_family, &local);
		if (r < 0) {
			log_error_errno(r, "uplink: no local address to send from (%s \"%s\"): %m",
					u->cfg->bind_address ? "bind_address" : "interface",
					u->cfg->bind_address ? u->cfg->bind_address
							     : u->cfg->interface);
			return r;
		}
	}
	coap_address_init(&server);
	memcpy(&server.addr, ai->ai_addr, ai->ai_addrlen);
	server.size = ai->ai_addrlen;

	if (u->resolving_bootstrap) {
		u->bootstrap_session =
		    coap_new_client_session(u->ctx, bind ? &local : NULL, &server, COAP_PROTO_UDP);
		if (!u->bootstrap_session)
			return -EADDRNOTAVAIL;
		set_ack_timeout(u, u->bootstrap_session);
		set_state(u, STATE_BOOTSTRAPPING);
		u->bootstraps++;
		u->last_bootstrap_us = now_monotonic_usec();
		log_info("uplink: bootstrapping from \"%s\"", u->cfg->bootstrap_url);
		return send_bootstrap(u);
	}

	mids_reset(u);
	u->session_started_us = now_monotonic_usec();
	if (endpoint_is_plain(u)) {
		s = coap_new_client_session(u->ctx, bind ? &local : NULL, &server, COAP_PROTO_UDP);
	} else {
		coap_dtls_cpsk_t psk = {
			.version = COAP_DTLS_CPSK_SETUP_VERSION,
			.psk_info = { .identity = { strlen(u->cred.identity),
						    (const uint8_t *)u->cred.identity },
				      .key = { u->cred.psk_len, u->cred.psk } },
		};

		s = coap_new_client_session_psk2(u->ctx, bind ? &local : NULL, &server,
						 COAP_PROTO_DTLS, &psk);
	}
	if (!s)
		return -EADDRNOTAVAIL;
	u->session = s;
	coap_session_set_app_data(s, u);
	/* Our window is max_in_flight; libcoap would otherwise hold all but one back. */
	coap_session_set_nstart(s, (uint16_t)u->cfg->max_in_flight);
	set_ack_timeout(u, s);
	/* Plain CoAP has no handshake; DTLS starts its own with the first request (sent
	 * from pump()). */
	u->session_connected = endpoint_is_plain(u);
	u->session_broken = false;
	u->last_activity_us = now_monotonic_usec();
	set_state(u, u->session_connected ? STATE_READY : STATE_CONNECTING);
	return 0;
}

/* ---- sending ---- */

static size_t budget_for_topic(const char *topic, void *arg)
{
	struct uplink *u = arg;
	size_t query = 2 + strlen(topic) + (strlen(topic) + 2 >= 13 ? 1 : 0);
	size_t pdu = coap_session_max_pdu_size(u->session);
	size_t room = pdu > PDU_OVERHEAD + query ? pdu - PDU_OVERHEAD - query : 0;

	return MIN((size_t)u->cfg->max_payload, room);
}

static struct flight *free_flight(struct uplink *u)
{
	for (size_t i = 0; i < MAX_FLIGHTS; i++)
		if (!u->flights[i].used)
			return &u->flights[i];
	return NULL;
}

static void send_message(struct uplink *u, struct outbox_message *m)
{
	struct flight *f = free_flight(u);
	char query[2 + CG_TOPIC_MAX + 1];
	coap_pdu_t *pdu;

	f->used = true;
	f->m = *m;
	u->n_flights++;
	if (m->payload_len > budget_for_topic(m->topic, u)) {
		/* One reading larger than any message can be: 1NCE would refuse it. */
		dead_letter(u, f, "too-large", "a single reading exceeds the payload budget");
		return;
	}
	snprintf(query, sizeof(query), "t=%s", m->topic);
	pdu = new_request(u->session, COAP_REQUEST_CODE_POST, f->token, &f->token_len);
	if (!pdu ||
	    !coap_add_option(pdu, COAP_OPTION_URI_QUERY, strlen(query), (const uint8_t *)query) ||
	    !coap_add_data(pdu, m->payload_len, (const uint8_t *)m->payload)) {
		if (pdu)
			coap_delete_pdu(pdu);
		flight_end(u, f, false);
		u->session_broken = true;
		backoff(u, "cannot build a CoAP message");
		return;
	}
	coap_pdu_set_mid(pdu, mid_take(u));
	f->sent_us = now_monotonic_usec();
	f->mid = coap_send(u->session, pdu);
	if (f->mid == COAP_INVALID_MID) {
		flight_end(u, f, false);
		u->session_broken = true;
		backoff(u, "cannot send");
		return;
	}
	u->last_activity_us = now_monotonic_usec();
	u->coap_dirty = true;
}

/* Read what the window has room for. */
static void fill_outbox(struct uplink *u)
{
	uint64_t now = now_monotonic_usec();

	for (int i = 0; i < READS_PER_ROUND && !outbox_is_full(u->outbox); i++) {
		struct cg_reading r;
		uint64_t seq;
		int k = queue_read(u->reader, &seq, &r);

		if (k <= 0) {
			if (k < 0)
				log_error_errno(k, "uplink: cannot read the queue: %m");
			break;
		}
		outbox_push(u->outbox, seq, &r, now);
	}
}

static void arm_timer(struct uplink *u, uint64_t when_us)
{
	if (when_us == UINT64_MAX) {
		sd_event_source_set_enabled(u->timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(u->timer, when_us);
	sd_event_source_set_enabled(u->timer, SD_EVENT_ONESHOT);
}

static bool bootstrap_allowed(const struct uplink *u, uint64_t now, uint64_t *ret_when)
{
	if (u->bootstraps == 0 || now >= u->last_bootstrap_us + u->cfg->bootstrap_interval_usec)
		return true;
	*ret_when = u->last_bootstrap_us + u->cfg->bootstrap_interval_usec;
	return false;
}

/* Send what is due while the window of messages in flight has room. */
static void send_ready(struct uplink *u, uint64_t now, uint64_t *wake)
{
	while (u->n_flights < (size_t)u->cfg->max_in_flight && !u->session_broken) {
		struct outbox_message m;
		uint64_t when = mid_free_at(u);

		if (when > now) {
			/* 65536 messages in under 247 s: the message IDs are used up. */
			if (u->cfg->mid_exhaustion == MID_EXHAUSTION_NEW_SESSION) {
				if (u->n_flights == 0) {
					log_info("uplink: this session's message IDs are used up "
						 "for %.0f s: starting a new session",
						 (double)(when - now) / 1e6);
					u->session_broken = true;
				}
			} else {
				*wake = MIN(*wake, when);
			}
			return;
		}
		if (!outbox_next_message(u->outbox, budget_for_topic, u, u->cfg->sequence_numbers,
					 now, u->cfg->linger_usec, &m, &when)) {
			*wake = MIN(*wake, when);
			return;
		}
		send_message(u, &m);
	}
}

/* Act on whatever changed: the one place that moves the state machine. */
static void pump(struct uplink *u)
{
	uint64_t now = now_monotonic_usec(), wake = UINT64_MAX, seq;
	int r;

	if (u->bootstrap_done)
		release_bootstrap_session(u);
	if (u->session_broken)
		release_session(u);

	/* Readings are read ahead after sending (below); here only to start from empty. */
	if (outbox_count(u->outbox) == 0)
		fill_outbox(u);
	seq = outbox_pop_done(u->outbox);
	if (seq)
		queue_ack(u->queue, seq);

	if (u->query || u->bootstrap_session)
		goto out;
	if (u->state == STATE_BACKOFF) {
		if (now < u->backoff_until_us) {
			wake = u->backoff_until_us;
			goto out;
		}
		set_state(u, u->session ? STATE_READY : STATE_NEED_CREDENTIALS);
	}

	if (u->bootstrap_wanted && u->cred.origin == CREDENTIALS_BOOTSTRAP) {
		release_session(u);
		u->have_cred = false;
	}
	if (!u->have_cred) {
		if (!bootstrap_allowed(u, now, &wake))
			goto out;
		r = resolve(u, u->cfg->bootstrap_url, true);
		if (r < 0)
			backoff(u, "cannot resolve the bootstrap host");
		goto out;
	}

	/* 1NCE's NAT forgets an idle UDP mapping after 120 s; DTLS without a connection
	 * ID cannot survive that, so an idle session is rebuilt rather than found dead. */
	if (u->session && u->n_flights == 0 && u->cfg->idle_timeout_usec &&
	    now - u->last_activity_us > u->cfg->idle_timeout_usec && outbox_pending(u->outbox)) {
		log_info("uplink: the session was idle for %.0f s: rebuilding it",
			 (double)(now - u->last_activity_us) / 1e6);
		release_session(u);
	}
	if (!u->session) {
		if (!outbox_pending(u->outbox))
			goto out;
		r = resolve(u, u->cfg->endpoint ? u->cfg->endpoint : u->cred.endpoint, false);
		if (r < 0)
			backoff(u, "cannot resolve the endpoint");
		goto out;
	}

	/* libcoap gives up on a handshake after its fifth retransmission timeout, which
	 * takes 31 s, or far longer when the server's retransmissions keep resetting its
	 * timer: past HANDSHAKE_TIMEOUT_USEC the uplink counts the handshake as failed. */
	if (!u->session_connected && now - u->session_started_us > HANDSHAKE_TIMEOUT_USEC) {
		handshake_failed(u, "no handshake after 35 s");
		u->session_broken = true;
		backoff(u, "the DTLS handshake did not complete");
		wake = now;
		goto out;
	}
	if (!u->session_connected)
		wake = MIN(wake, u->session_started_us + HANDSHAKE_TIMEOUT_USEC + USEC_PER_MSEC);
	for (size_t i = 0; i < MAX_FLIGHTS; i++)
		if (u->flights[i].used && now - u->flights[i].sent_us > FLIGHT_TIMEOUT_USEC) {
			u->session_broken = true;
			backoff(u, "no answer to a message for 100 s");
			wake = now;
			goto out;
		}

	/* Send before reading ahead: the encoding of the next readings then overlaps the
	 * server's work on what was just sent. */
	send_ready(u, now, &wake);
	fill_outbox(u);
	send_ready(u, now, &wake);
	if (u->session_broken)
		wake = now;
out:
	if (u->n_flights || u->bootstrap_session || (u->session && !u->session_connected))
		wake = MIN(wake, now + LIBCOAP_TICK_USEC);
	arm_timer(u, wake);
}

/* ---- event sources ---- */

/*
 * libcoap's turn, then ours, until neither has anything left: a request sent from
 * pump() must go through coap_io_process() before the loop sleeps, or libcoap's timerfd
 * is not armed for its retransmission.
 */
static void run(struct uplink *u)
{
	for (int round = 0; round < 8; round++) {
		coap_io_process(u->ctx, COAP_IO_NO_WAIT);
		u->coap_dirty = false;
		pump(u);
		if (!u->coap_dirty)
			break;
	}
}

static int on_coap(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	run(userdata);
	return 0;
}

static int on_durable(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct uplink *u = userdata;
	uint64_t v;

	/* Only resets the eventfd; a failed read means it was already reset. */
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug_errno(-errno, "uplink: reading the queue's eventfd: %m");
	run(u);
	return 0;
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
	run(userdata);
	return 0;
}

/* Credentials: the user's from the configuration, else the stored ones, else none. */
static void load_credentials(struct uplink *u)
{
	const struct uplink_settings *cfg = u->cfg;
	const char *why;
	int r;

	if (endpoint_is_plain(u)) {
		u->cred.origin = CREDENTIALS_USER;
		u->have_cred = true;
		log_warning("uplink: sending over plain CoAP to \"%s\": not encrypted",
			    cfg->endpoint);
		return;
	}
	if (cfg->identity) {
		u->cred.origin = CREDENTIALS_USER;
		if (credentials_set(&u->cred, cfg->identity, cfg->psk, cfg->psk_format == 1,
				    cfg->endpoint ? cfg->endpoint : UPLINK_DEFAULT_ENDPOINT,
				    &why) == 0)
			u->have_cred = true;
		return;
	}
	r = credentials_load(u->state_dir, &u->cred);
	if (r == 0) {
		u->have_cred = true;
		log_info("uplink: using the stored credentials of identity \"%s\"",
			 u->cred.identity);
	} else if (r == -ENOENT) {
		log_info("uplink: no credentials yet: bootstrapping");
	} else {
		log_warning_errno(r,
				  "uplink: the stored credentials in \"%s\" are unusable (%m): "
				  "bootstrapping",
				  u->state_dir);
	}
}

int uplink_new(sd_event *event, const struct uplink_settings *settings, const char *state_dir,
	       struct queue *q, struct uplink **ret_uplink)
{
	struct uplink *u = xcalloc(1, sizeof(*u));
	int r;

	u->cfg = settings;
	u->state_dir = state_dir;
	u->queue = q;
	u->event = sd_event_ref(event);
	u->outbox = outbox_new((size_t)settings->lookahead);
	snprintf(u->last_answer, sizeof(u->last_answer), "none");
	ratelimit_init(&u->dead_letter_log, 60 * USEC_PER_SEC, 10);
	srand48((long)now_monotonic_usec() ^ (long)getpid());
	load_credentials(u);

	coap_startup();
	u->ctx = coap_new_context(NULL);
	if (!u->ctx) {
		r = -ENOMEM;
		goto fail;
	}
	the_uplink = u;
	coap_register_response_handler(u->ctx, on_response);
	coap_register_nack_handler(u->ctx, on_nack);
	coap_register_event_handler(u->ctx, on_event);

	r = queue_reader_new(q, &u->reader);
	if (r >= 0)
		r = sd_event_add_io(event, &u->coap_source, coap_context_get_coap_fd(u->ctx),
				    EPOLLIN, on_coap, u);
	if (r >= 0)
		r = sd_event_add_io(event, &u->durable_source, queue_durable_fd(q), EPOLLIN,
				    on_durable, u);
	if (r >= 0)
		r = sd_event_add_time(event, &u->timer, CLOCK_MONOTONIC, 0, USEC_PER_MSEC, on_timer,
				      u);
	if (r < 0)
		goto fail;
	run(u);
	*ret_uplink = u;
	return 0;
fail:
	log_error_errno(r, "uplink: cannot start: %m");
	uplink_free(u);
	return r;
}

void uplink_free(struct uplink *u)
{
	if (!u)
		return;
	sd_event_source_disable_unref(u->timer);
	sd_event_source_disable_unref(u->durable_source);
	sd_event_source_disable_unref(u->coap_source);
	resolve_cancel(u->query);
	if (u->ctx) {
		release_session(u);
		release_bootstrap_session(u);
		coap_free_context(u->ctx);
	}
	if (the_uplink == u)
		the_uplink = NULL;
	queue_reader_free(u->reader);
	outbox_free(u->outbox);
	ratelimit_done(&u->dead_letter_log);
	sd_event_unref(u->event);
	free(u);
}

void uplink_status(const struct uplink *u, char *buf, size_t size)
{
	int64_t oldest = outbox_oldest_timestamp_ms(u->outbox);

	snprintf(buf, size, "uplink: %s, last answer %s, delivered %" PRIu64, state_names[u->state],
		 u->last_answer, u->delivered);
	if (u->dead_lettered) {
		size_t n = strlen(buf);

		snprintf(buf + n, size - n, ", dead-lettered %" PRIu64, u->dead_lettered);
	}
	if (oldest) {
		size_t n = strlen(buf);

		snprintf(buf + n, size - n, ", oldest unsent %.0f s",
			 (double)(now_realtime_ms() - oldest) / 1e3);
	}
}
