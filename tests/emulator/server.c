// SPDX-License-Identifier: MIT
/*
 * The CoAP server; see server.h. Each request becomes a struct answer first, so that the
 * duplicate cache can replay exactly what was sent, then it is written into libcoap's
 * response.
 */
#include "server.h"

#include "dedup.h"
#include "emulator.h"
#include "output.h"
#include "registry.h"
#include "relay.h"
#include "util.h"

#include <arpa/inet.h>
#include <coap3/coap.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#define CODE(class, detail) ((uint8_t)((class) << 5 | (detail)))
#define CONTENT_FORMAT_JSON 50

enum request_kind {
	REQUEST_BOOTSTRAP,
	REQUEST_DATA,
};

struct server {
	struct emulator *emu;
	coap_context_t *ctx;
	sd_event_source *source;
	struct sockaddr_storage internal[2]; /* [0] plain, [1] DTLS */
	socklen_t internal_len[2];
	struct dedup *dedup;
	char *advertised_url;
	struct session_key *session_keys;
};

/*
 * A DTLS session's handshake: the key it was given (to notice a rotation since), and
 * whether it completed or its failure was counted. A wrong key gives no alert (DTLS
 * drops records it cannot decrypt), so a failure is counted when the session ends
 * without having connected, or on an alert, whichever comes first.
 */
struct session_key {
	unsigned psk_epoch;
	bool has_key;
	bool connected;
	bool failure_counted;
	/* Owned by the server: libcoap does not always report a session's end. */
	struct session_key *prev, *next;
};

/*
 * libcoap 4.3.1 has no user data on a context, and the event handler gets none: the one
 * server of this process is reached through here.
 */
static struct server *the_server;

static const char *status_text(uint8_t code)
{
	switch (code) {
	case CODE(4, 0):
		return "Bad Request";
	case CODE(4, 1):
		return "Unauthorized";
	case CODE(4, 2):
		return "Bad Option";
	case CODE(4, 4):
		return "Not Found";
	case CODE(4, 13):
		return "Request Entity Too Large";
	case CODE(5, 0):
		return "Internal Server Error";
	case CODE(5, 3):
		return "Service Unavailable";
	default:
		return "Error";
	}
}

/* An error answer with 1NCE's body shape: {"statusText": ..., "errors": [...]}. */
static struct answer error_answer(uint8_t code, const char *message)
{
	json_t *body = json_pack("{s:s, s:[{s:s}]}", "statusText", status_text(code), "errors",
				 "message", message);
	struct answer a = { .code = code,
			    .json = true,
			    .body = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) };

	json_decref(body);
	return a;
}

static void format_code(uint8_t code, char *buf, size_t size)
{
	snprintf(buf, size, "%u.%02u", code >> 5, code & 0x1f);
}

/* The client's real address (through the relay) as text and port. */
static void address_text(const struct sockaddr *sa, char *buf, size_t size, uint16_t *ret_port)
{
	if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, size);
		*ret_port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, size);
		*ret_port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	}
}

static bool topic_char_allowed(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '/';
}

/*
 * The t query option, checked against 1NCE's rules. This is deliberately not the
 * daemon's topic.c: the emulator is the test oracle and keeps its own reading of the
 * documentation. Returns NULL when valid (*ret_topic: NULL if there is no t, else
 * malloc'ed), or the reason for a 4.00.
 */
static const char *check_topic(const coap_pdu_t *request, char **ret_topic)
{
	coap_opt_filter_t filter;
	coap_opt_iterator_t it;
	coap_opt_t *opt;
	const uint8_t *topic = NULL;
	size_t topic_len = 0;
	int n_topics = 0;

	*ret_topic = NULL;
	coap_option_filter_clear(&filter);
	coap_option_filter_set(&filter, COAP_OPTION_URI_QUERY);
	coap_option_iterator_init(request, &it, &filter);
	while ((opt = coap_option_next(&it))) {
		const uint8_t *v = coap_opt_value(opt);
		size_t len = coap_opt_length(opt);

		/* A bare "t" is a t option with an empty topic. */
		if (!(len >= 1 && v[0] == 't' && (len == 1 || v[1] == '=')))
			continue;
		if (len > NCE_MAX_QUERY)
			return "the t option is longer than 255 characters";
		n_topics++;
		topic = len > 2 ? v + 2 : NULL;
		topic_len = len > 2 ? len - 2 : 0;
	}
	if (n_topics == 0)
		return NULL;
	if (n_topics > 1)
		return "more than one t option";
	if (topic_len == 0)
		return "the topic is empty";
	if (topic_len > NCE_MAX_TOPIC)
		return "the topic is longer than 253 characters";
	for (size_t i = 0; i < topic_len; i++) {
		if (!topic_char_allowed((char)topic[i]))
			return "the topic has a character other than A-Z, a-z, 0-9, _ and /";
		if (topic[i] == '/' && i + 1 < topic_len && topic[i + 1] == '/')
			return "the topic has two slashes in a row";
	}
	*ret_topic = xmalloc(topic_len + 1);
	memcpy(*ret_topic, topic, topic_len);
	(*ret_topic)[topic_len] = '\0';
	return NULL;
}

static struct answer answer_bootstrap(struct server *server, coap_session_t *session,
				      const struct sockaddr *client)
{
	struct device *d;
	struct answer a = { .code = CODE(2, 5) };

	if (coap_session_get_proto(session) == COAP_PROTO_DTLS)
		return error_answer(CODE(4, 4), "bootstrap is served on plain CoAP only");
	d = client ? registry_find_by_address(server->emu->registry, client) : NULL;
	if (!d)
		return error_answer(CODE(4, 1), "no device is registered for this address");
	if (!d->active)
		return error_answer(CODE(4, 1), "the device is not active");
	if (registry_bootstrap(d, emulator_now_us(server->emu)))
		emu_debug(server->emu, "device %s: new PSK", d->iccid);
	server->emu->stats.bootstraps++;
	a.body = xasprintf("%s,%s,%s", d->iccid, d->psk_text, server->advertised_url);
	return a;
}

/* The device a data request comes from, or the reason for a 4.01. */
static const char *identify(struct server *server, coap_session_t *session,
			    const struct sockaddr *client, struct device **ret_device)
{
	struct registry *registry = server->emu->registry;
	const coap_bin_const_t *identity;
	const struct session_key *key;
	struct device *d;

	if (!client)
		return "no device is registered for this address";
	if (coap_session_get_proto(session) != COAP_PROTO_DTLS) {
		d = registry_find_by_address(registry, client);
		if (!d)
			return "no device is registered for this address";
	} else {
		identity = coap_session_get_psk_identity(session);
		d = identity ? registry_find_by_iccid(registry, (const char *)identity->s,
						      identity->length)
			     : NULL;
		if (!d)
			return "no device has this PSK identity";
		if (registry_find_by_address(registry, client) != d)
			return "the device does not send from this address";
		key = coap_session_get_app_data(session);
		if (!key || !key->has_key || key->psk_epoch != d->psk_epoch)
			return "the session's PSK has been replaced";
	}
	if (!d->active)
		return "the device is not active";
	*ret_device = d;
	return NULL;
}

static struct answer answer_data(struct server *server, coap_session_t *session,
				 const coap_pdu_t *request, const struct sockaddr *client,
				 const char *path)
{
	struct answer a = { .code = CODE(2, 4) };
	coap_opt_iterator_t it;
	struct device *d = NULL;
	const uint8_t *data = NULL;
	const char *reason;
	char *topic;
	size_t len = 0;
	char ip[INET6_ADDRSTRLEN];
	uint16_t port;

	if (coap_check_option(request, COAP_OPTION_BLOCK1, &it))
		return error_answer(CODE(4, 2), "block-wise transfer is not supported");
	reason = identify(server, session, client, &d);
	if (reason)
		return error_answer(CODE(4, 1), reason);
	reason = check_topic(request, &topic);
	if (reason)
		return error_answer(CODE(4, 0), reason);
	coap_get_data(request, &len, &data);
	if (len > NCE_MAX_PAYLOAD) {
		free(topic);
		return error_answer(CODE(4, 13), "the payload is larger than 1024 bytes");
	}

	address_text(client, ip, sizeof(ip), &port);
	output_message(
	    server->emu->output,
	    &(struct message){ .device = d,
			       .client_ip = ip,
			       .client_port = port,
			       .topic = topic,
			       .payload = data,
			       .payload_len = len,
			       .mid = (uint16_t)coap_pdu_get_mid(request),
			       .dtls = coap_session_get_proto(session) == COAP_PROTO_DTLS,
			       .path = path });
	server->emu->stats.accepted++;
	free(topic);
	return a;
}

/* "respond CODE N KIND": the next matching requests get CODE and nothing else happens. */
static bool take_injected(struct faults *f, enum request_kind kind, struct answer *ret)
{
	if (!f->inject_count)
		return false;
	if ((f->inject_kind == INJECT_BOOTSTRAP && kind != REQUEST_BOOTSTRAP) ||
	    (f->inject_kind == INJECT_DATA && kind != REQUEST_DATA))
		return false;
	f->inject_count--;
	if (f->inject_code >= CODE(4, 0))
		*ret = error_answer(f->inject_code, "injected by the emulator's control interface");
	else
		*ret = (struct answer){ .code = f->inject_code };
	return true;
}

static void apply(coap_pdu_t *response, const struct answer *a)
{
	uint8_t buf[4];

	coap_pdu_set_code(response, a->code);
	if (!a->body)
		return;
	if (a->json)
		coap_add_option(response, COAP_OPTION_CONTENT_FORMAT,
				coap_encode_var_safe(buf, sizeof(buf), CONTENT_FORMAT_JSON), buf);
	coap_add_data(response, strlen(a->body), (const uint8_t *)a->body);
}

static void handle(enum request_kind kind, const char *path, coap_session_t *session,
		   const coap_pdu_t *request, coap_pdu_t *response)
{
	struct server *server = the_server;
	struct emulator *emu = server->emu;
	const struct sockaddr *client =
	    relay_client_address(emu->relay, &coap_session_get_addr_remote(session)->addr.sa);
	bool dtls = coap_session_get_proto(session) == COAP_PROTO_DTLS;
	bool confirmable = coap_pdu_get_type(request) == COAP_MESSAGE_CON;
	uint16_t mid = (uint16_t)coap_pdu_get_mid(request);
	uint64_t now = emulator_now_us(emu);
	const struct answer *seen;
	struct answer a;
	char code[8];

	if (confirmable && client && (seen = dedup_find(server->dedup, dtls, client, mid, now))) {
		emu->stats.duplicates++;
		emu_debug(emu, "duplicate MID %u: answering again", mid);
		apply(response, seen);
		return;
	}

	if (take_injected(&emu->faults, kind, &a))
		emu->stats.injected++;
	else if (kind == REQUEST_BOOTSTRAP)
		a = answer_bootstrap(server, session, client);
	else
		a = answer_data(server, session, request, client, path);

	emu->stats.requests++;
	emu->stats.by_code[a.code]++;
	format_code(a.code, code, sizeof(code));
	emu_debug(emu, "%s %s %s MID %u -> %s%s%s", dtls ? "coaps" : "coap",
		  kind == REQUEST_BOOTSTRAP ? "GET" : "POST", path, mid, code, a.body ? " " : "",
		  a.body ? a.body : "");
	if (confirmable && client)
		dedup_remember(server->dedup, dtls, client, mid, now, &a);
	apply(response, &a);
	free(a.body);
}

static void on_bootstrap(coap_resource_t *resource, coap_session_t *session,
			 const coap_pdu_t *request, const coap_string_t *query,
			 coap_pdu_t *response)
{
	handle(REQUEST_BOOTSTRAP, "/bootstrap", session, request, response);
}

static void on_post_root(coap_resource_t *resource, coap_session_t *session,
			 const coap_pdu_t *request, const coap_string_t *query,
			 coap_pdu_t *response)
{
	handle(REQUEST_DATA, "/", session, request, response);
}

static void on_post_data(coap_resource_t *resource, coap_session_t *session,
			 const coap_pdu_t *request, const coap_string_t *query,
			 coap_pdu_t *response)
{
	handle(REQUEST_DATA, "/data", session, request, response);
}

/* The PSK for the identity a DTLS client presents: the device's, by ICCID. */
static const coap_bin_const_t *on_psk_identity(coap_bin_const_t *identity, coap_session_t *session,
					       void *arg)
{
	static coap_bin_const_t key;
	struct server *server = arg;
	struct device *d = registry_find_by_iccid(server->emu->registry, (const char *)identity->s,
						  identity->length);
	struct session_key *sk = coap_session_get_app_data(session);

	server->emu->stats.handshakes_started++;
	if (!sk) {
		sk = xcalloc(1, sizeof(*sk));
		sk->next = server->session_keys;
		if (sk->next)
			sk->next->prev = sk;
		server->session_keys = sk;
		coap_session_set_app_data(session, sk);
	}
	sk->has_key = d && d->psk_len;
	if (!sk->has_key) {
		emu_debug(server->emu, "DTLS identity \"%.*s\": no key, refusing",
			  (int)identity->length, (const char *)identity->s);
		return NULL;
	}
	sk->psk_epoch = d->psk_epoch;
	/* libcoap copies the key into the session before this returns. */
	key.s = d->psk;
	key.length = d->psk_len;
	return &key;
}

static void session_key_free(struct server *server, struct session_key *sk)
{
	if (sk->prev)
		sk->prev->next = sk->next;
	else
		server->session_keys = sk->next;
	if (sk->next)
		sk->next->prev = sk->prev;
	free(sk);
}

/* Count a handshake that started and did not finish, once. */
static void count_failure(struct server *server, coap_session_t *session)
{
	struct session_key *sk = coap_session_get_app_data(session);

	if (!sk || sk->connected || sk->failure_counted)
		return;
	sk->failure_counted = true;
	server->emu->stats.handshakes_failed++;
	emu_debug(server->emu, "DTLS handshake failed");
}

static int on_event(coap_session_t *session, coap_event_t event)
{
	struct server *server = the_server;
	const coap_bin_const_t *identity;
	struct session_key *sk = coap_session_get_app_data(session);
	struct device *d;

	switch (event) {
	case COAP_EVENT_DTLS_CONNECTED:
		if (sk)
			sk->connected = true;
		server->emu->stats.handshakes_ok++;
		identity = coap_session_get_psk_identity(session);
		d = identity ? registry_find_by_iccid(server->emu->registry,
						      (const char *)identity->s, identity->length)
			     : NULL;
		if (d)
			d->handshakes++;
		emu_debug(server->emu, "DTLS handshake done, identity \"%.*s\"",
			  identity ? (int)identity->length : 0,
			  identity ? (const char *)identity->s : "");
		break;
	case COAP_EVENT_DTLS_ERROR:
	case COAP_EVENT_DTLS_CLOSED:
		count_failure(server, session);
		break;
	case COAP_EVENT_SERVER_SESSION_DEL:
		count_failure(server, session);
		if (sk) {
			session_key_free(server, sk);
			coap_session_set_app_data(session, NULL);
		}
		break;
	default:
		break;
	}
	return 0;
}

static int on_coap_readable(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct server *server = userdata;

	/* Also runs libcoap's timers: its epoll set holds a timerfd for them. */
	coap_io_process(server->ctx, COAP_IO_NO_WAIT);
	return 0;
}

static void add_resource(coap_context_t *ctx, const char *path, coap_request_t method,
			 coap_method_handler_t handler)
{
	coap_resource_t *r = coap_resource_init(path ? coap_make_str_const(path) : NULL, 0);

	coap_register_handler(r, method, handler);
	coap_add_resource(ctx, r);
}

/* The port libcoap bound: 4.3.1 offers it only inside coap_endpoint_str(). */
static int endpoint_address(const coap_endpoint_t *ep, struct sockaddr_storage *ret,
			    socklen_t *ret_len)
{
	const char *text = coap_endpoint_str(ep);
	const char *colon = strchr(text, ':');
	struct sockaddr_in *in = (struct sockaddr_in *)ret;
	unsigned long port = colon ? strtoul(colon + 1, NULL, 10) : 0;

	if (port == 0 || port > 65535)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*ret_len = sizeof(*in);
	return 0;
}

static int add_endpoint(struct server *server, coap_proto_t proto, int index)
{
	coap_address_t listen;
	coap_endpoint_t *ep;

	coap_address_init(&listen);
	listen.addr.sin.sin_family = AF_INET;
	listen.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listen.addr.sin.sin_port = 0;
	ep = coap_new_endpoint(server->ctx, &listen, proto);
	if (!ep)
		return -EADDRNOTAVAIL;
	return endpoint_address(ep, &server->internal[index], &server->internal_len[index]);
}

int server_new(struct emulator *emu, struct server **ret_server)
{
	struct server *server;
	coap_dtls_spsk_t psk = {
		.version = COAP_DTLS_SPSK_SETUP_VERSION,
		.validate_id_call_back = on_psk_identity,
		/* No identity hint: the Node.js client of 1NCE's example cannot take one. */
		.psk_info = { .hint = { 0, NULL }, .key = { 0, NULL } },
	};
	int r;

	if (!coap_dtls_is_supported()) {
		emu_log("libcoap was built without DTLS support");
		return -ENOTSUP;
	}
	server = xcalloc(1, sizeof(*server));
	server->emu = emu;
	server->dedup = dedup_new();
	server->advertised_url = xstrdup("");
	server->ctx = coap_new_context(NULL);
	psk.id_call_back_arg = server;
	if (!server->ctx || !coap_context_set_psk2(server->ctx, &psk)) {
		emu_log("cannot set up libcoap's context");
		server_free(server);
		return -ENOMEM;
	}
	the_server = server;
	coap_register_event_handler(server->ctx, on_event);
	add_resource(server->ctx, "bootstrap", COAP_REQUEST_GET, on_bootstrap);
	add_resource(server->ctx, NULL, COAP_REQUEST_POST, on_post_root);
	add_resource(server->ctx, "data", COAP_REQUEST_POST, on_post_data);

	r = add_endpoint(server, COAP_PROTO_UDP, 0);
	if (r == 0)
		r = add_endpoint(server, COAP_PROTO_DTLS, 1);
	if (r == 0)
		r = sd_event_add_io(emu->event, &server->source,
				    coap_context_get_coap_fd(server->ctx), EPOLLIN,
				    on_coap_readable, server);
	if (r < 0) {
		emu_log("cannot open libcoap's internal endpoints: %s", strerror(-r));
		server_free(server);
		return r;
	}
	/* Arm libcoap's timerfd once; from then on each processing round re-arms it. */
	coap_io_process(server->ctx, COAP_IO_NO_WAIT);
	*ret_server = server;
	return 0;
}

void server_free(struct server *server)
{
	if (!server)
		return;
	sd_event_source_disable_unref(server->source);
	if (server->ctx)
		coap_free_context(server->ctx);
	while (server->session_keys)
		session_key_free(server, server->session_keys);
	dedup_free(server->dedup);
	free(server->advertised_url);
	if (the_server == server)
		the_server = NULL;
	free(server);
}

void server_internal_address(const struct server *server, int dtls,
			     const struct sockaddr **ret_addr, socklen_t *ret_len)
{
	*ret_addr = (const struct sockaddr *)&server->internal[dtls ? 1 : 0];
	*ret_len = server->internal_len[dtls ? 1 : 0];
}

void server_set_advertised_url(struct server *server, const char *url)
{
	free(server->advertised_url);
	server->advertised_url = xstrdup(url);
}
