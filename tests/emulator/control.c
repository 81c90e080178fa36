// SPDX-License-Identifier: MIT
/*
 * The control interface; see control.h. Commands are a table, each with its argument
 * count, handler and help line; a handler returns NULL or the error message.
 */
#include "control.h"

#include "emulator.h"
#include "registry.h"
#include "relay.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#define MAX_ARGS    8
#define MAX_LINE    4096
#define MAX_CLIENTS 64

struct control;

struct connection {
	struct control *control;
	int fd;
	sd_event_source *source;
	char buffer[MAX_LINE];
	size_t len;
	struct connection *next;
};

struct control {
	struct emulator *emu;
	int fd;
	char *path;
	sd_event_source *source;
	struct connection *connections;
	size_t n_connections;
};

struct command {
	const char *name;
	int min_args, max_args;
	const char *(*run)(struct emulator *emu, char **argv, json_t *answer);
	const char *usage;
};

static bool parse_number(const char *text, double min, double max, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v) || v < min || v > max)
		return false;
	*ret = v;
	return true;
}

static uint64_t seconds_to_us(double s)
{
	return (uint64_t)llround(s * 1e6);
}

static struct device *device_arg(struct emulator *emu, const char *iccid)
{
	return registry_find_by_iccid(emu->registry, iccid, strlen(iccid));
}

static json_t *code_counts(const struct stats *st)
{
	json_t *o = json_object();
	char code[8];

	for (size_t i = 0; i < ARRAY_SIZE(st->by_code); i++)
		if (st->by_code[i]) {
			snprintf(code, sizeof(code), "%zu.%02zu", i >> 5, i & 0x1f);
			json_object_set_new(o, code, json_integer((json_int_t)st->by_code[i]));
		}
	return o;
}

static const char *cmd_stats(struct emulator *emu, char **argv, json_t *answer)
{
	const struct stats *st = &emu->stats;
	json_t *bootstraps = json_object(), *handshakes = json_object();

	for (size_t i = 0; i < registry_size(emu->registry); i++) {
		const struct device *d = registry_device(emu->registry, i);

		json_object_set_new(bootstraps, d->iccid, json_integer((json_int_t)d->bootstraps));
		json_object_set_new(handshakes, d->iccid, json_integer((json_int_t)d->handshakes));
	}
	json_object_update_new(
	    answer,
	    json_pack("{s:{s:I, s:o}, s:I, s:I, s:I, s:{s:I, s:o}, s:{s:I, s:I, s:I, s:o},"
		      " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I}}",
		      "requests", "total", (json_int_t)st->requests, "by_code", code_counts(st),
		      "accepted", (json_int_t)st->accepted, "duplicates",
		      (json_int_t)st->duplicates, "injected", (json_int_t)st->injected,
		      "bootstraps", "total", (json_int_t)st->bootstraps, "by_device", bootstraps,
		      "handshakes", "started", (json_int_t)st->handshakes_started, "ok",
		      (json_int_t)st->handshakes_ok, "failed", (json_int_t)st->handshakes_failed,
		      "by_device", handshakes, "datagrams", "in", (json_int_t)st->datagrams_in,
		      "out", (json_int_t)st->datagrams_out, "bytes_in", (json_int_t)st->bytes_in,
		      "bytes_out", (json_int_t)st->bytes_out, "dropped_in",
		      (json_int_t)st->dropped_in, "dropped_out", (json_int_t)st->dropped_out,
		      "delayed", (json_int_t)st->delayed, "mqtt", "published",
		      (json_int_t)st->mqtt_published, "failed", (json_int_t)st->mqtt_failed));
	return NULL;
}

static const char *cmd_reset_stats(struct emulator *emu, char **argv, json_t *answer)
{
	memset(&emu->stats, 0, sizeof(emu->stats));
	for (size_t i = 0; i < registry_size(emu->registry); i++) {
		struct device *d = registry_device(emu->registry, i);

		d->bootstraps = 0;
		d->handshakes = 0;
	}
	return NULL;
}

static const char *cmd_devices(struct emulator *emu, char **argv, json_t *answer)
{
	json_object_set_new(answer, "devices", registry_to_json(emu->registry));
	return NULL;
}

static const char *cmd_drop(struct emulator *emu, char **argv, json_t *answer)
{
	double pct;

	if (!parse_number(argv[2], 0, 100, &pct))
		return "the percentage must be a number from 0 to 100";
	if (strcmp(argv[1], "in") == 0)
		emu->faults.drop_in_pct = pct;
	else if (strcmp(argv[1], "out") == 0)
		emu->faults.drop_out_pct = pct;
	else if (strcmp(argv[1], "both") == 0)
		emu->faults.drop_in_pct = emu->faults.drop_out_pct = pct;
	else
		return "the direction must be in, out or both";
	return NULL;
}

static const char *cmd_delay(struct emulator *emu, char **argv, json_t *answer)
{
	double ms, jitter_ms = 0;

	if (!parse_number(argv[1], 0, 600000, &ms) ||
	    (argv[2] && !parse_number(argv[2], 0, 600000, &jitter_ms)))
		return "the delay and jitter are milliseconds from 0 to 600000";
	emu->faults.delay_us = seconds_to_us(ms / 1000);
	emu->faults.jitter_us = seconds_to_us(jitter_ms / 1000);
	relay_faults_changed(emu->relay);
	return NULL;
}

static const char *cmd_silence(struct emulator *emu, char **argv, json_t *answer)
{
	double s;

	if (!parse_number(argv[1], 0, 86400, &s))
		return "the duration is seconds from 0 to 86400";
	emu->faults.silent_until_us = s > 0 ? now_monotonic_usec() + seconds_to_us(s) : 0;
	return NULL;
}

static const char *cmd_respond(struct emulator *emu, char **argv, json_t *answer)
{
	unsigned class, detail;
	double n;
	char end;

	if (sscanf(argv[1], "%1u.%2u%c", &class, &detail, &end) != 2 || class < 2 || class > 5 ||
	    detail > 31)
		return "the code is CLASS.DETAIL, e.g. 5.03, with a class from 2 to 5";
	if (!parse_number(argv[2], 0, 1e9, &n) || n != floor(n))
		return "the count is a whole number";
	if (!argv[3] || strcmp(argv[3], "any") == 0)
		emu->faults.inject_kind = INJECT_ANY;
	else if (strcmp(argv[3], "bootstrap") == 0)
		emu->faults.inject_kind = INJECT_BOOTSTRAP;
	else if (strcmp(argv[3], "data") == 0)
		emu->faults.inject_kind = INJECT_DATA;
	else
		return "the kind is bootstrap, data or any";
	emu->faults.inject_code = (uint8_t)(class << 5 | detail);
	emu->faults.inject_count = (uint64_t)n;
	return NULL;
}

static const char *cmd_rotate(struct emulator *emu, char **argv, json_t *answer)
{
	struct device *d = device_arg(emu, argv[1]);

	if (!d)
		return "no such device";
	registry_rotate(d);
	json_object_set_new(answer, "psk", json_string(d->psk_text));
	return NULL;
}

static const char *cmd_psk(struct emulator *emu, char **argv, json_t *answer)
{
	struct device *d = device_arg(emu, argv[1]);
	const char *error;

	if (!d)
		return "no such device";
	if (registry_set_user_psk(d, argv[2], argv[3], &error) < 0)
		return error;
	return NULL;
}

static const char *set_active(struct emulator *emu, const char *iccid, bool active)
{
	struct device *d = device_arg(emu, iccid);

	if (!d)
		return "no such device";
	d->active = active;
	return NULL;
}

static const char *cmd_activate(struct emulator *emu, char **argv, json_t *answer)
{
	return set_active(emu, argv[1], true);
}

static const char *cmd_deactivate(struct emulator *emu, char **argv, json_t *answer)
{
	return set_active(emu, argv[1], false);
}

static const char *cmd_clock(struct emulator *emu, char **argv, json_t *answer)
{
	double s;

	if (argv[1]) {
		if (argv[1][0] != '+' || !parse_number(argv[1] + 1, 0, 1e9, &s))
			return "the clock only moves forward: clock +SECONDS";
		emu->clock_offset_us += seconds_to_us(s);
	}
	json_object_set_new(answer, "offset", json_real((double)emu->clock_offset_us / 1e6));
	return NULL;
}

static const char *cmd_nat_timeout(struct emulator *emu, char **argv, json_t *answer)
{
	double s;

	if (!parse_number(argv[1], 0, 86400, &s))
		return "the timeout is seconds from 0 to 86400";
	emu->faults.nat_timeout_us = seconds_to_us(s);
	return NULL;
}

static const char *cmd_forget(struct emulator *emu, char **argv, json_t *answer)
{
	relay_forget_all(emu->relay);
	return NULL;
}

static const char *cmd_help(struct emulator *emu, char **argv, json_t *answer);

static const struct command commands[] = {
	{ "stats", 0, 0, cmd_stats, "stats" },
	{ "reset-stats", 0, 0, cmd_reset_stats, "reset-stats" },
	{ "devices", 0, 0, cmd_devices, "devices" },
	{ "drop", 2, 2, cmd_drop, "drop in|out|both PCT" },
	{ "delay", 1, 2, cmd_delay, "delay MS [JITTER_MS]" },
	{ "silence", 1, 1, cmd_silence, "silence SECONDS" },
	{ "respond", 2, 3, cmd_respond, "respond CODE N [bootstrap|data|any]" },
	{ "rotate", 1, 1, cmd_rotate, "rotate ICCID" },
	{ "psk", 3, 3, cmd_psk, "psk ICCID string|hex KEY" },
	{ "activate", 1, 1, cmd_activate, "activate ICCID" },
	{ "deactivate", 1, 1, cmd_deactivate, "deactivate ICCID" },
	{ "clock", 0, 1, cmd_clock, "clock [+SECONDS]" },
	{ "nat-timeout", 1, 1, cmd_nat_timeout, "nat-timeout SECONDS" },
	{ "forget", 0, 0, cmd_forget, "forget" },
	{ "help", 0, 0, cmd_help, "help" },
};

static const char *cmd_help(struct emulator *emu, char **argv, json_t *answer)
{
	json_t *list = json_array();

	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		json_array_append_new(list, json_string(commands[i].usage));
	json_object_set_new(answer, "commands", list);
	return NULL;
}

json_t *control_execute(struct emulator *emu, const char *line)
{
	char *copy = xstrdup(line), *save = NULL, *argv[MAX_ARGS + 1] = { 0 };
	json_t *answer = json_object();
	const char *error = "unknown command; try \"help\"";
	int argc = 0;

	for (char *tok = strtok_r(copy, " \t\r\n", &save); tok && argc <= MAX_ARGS;
	     tok = strtok_r(NULL, " \t\r\n", &save))
		argv[argc++] = tok;
	argv[MAX_ARGS] = NULL;
	if (argc == 0)
		error = "empty command";
	for (size_t i = 0; argc > 0 && i < ARRAY_SIZE(commands); i++) {
		const struct command *c = &commands[i];

		if (strcmp(argv[0], c->name) != 0)
			continue;
		if (argc - 1 < c->min_args || argc - 1 > c->max_args)
			error = c->usage;
		else
			error = c->run(emu, argv, answer);
		break;
	}
	if (error) {
		json_object_clear(answer);
		json_object_set_new(answer, "error", json_string(error));
	}
	json_object_set_new(answer, "ok", json_boolean(!error));
	emu_debug(emu, "control: %s -> %s", argv[0] ? argv[0] : "", error ? error : "ok");
	free(copy);
	return answer;
}

static void connection_free(struct connection *c)
{
	struct control *control = c->control;

	for (struct connection **p = &control->connections; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	control->n_connections--;
	sd_event_source_disable_unref(c->source);
	safe_close(c->fd);
	free(c);
}

static bool reply(struct connection *c, const char *line)
{
	json_t *answer = control_execute(c->control->emu, line);
	char *text = json_dumps(answer, JSON_COMPACT);
	char *out = xasprintf("%s\n", text);
	size_t len = strlen(out), done = 0;
	bool ok = true;

	/* Answers are small; a client that does not read them is dropped. */
	while (done < len) {
		ssize_t n = send(c->fd, out + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ok = false;
			break;
		}
		done += (size_t)n;
	}
	free(out);
	free(text);
	json_decref(answer);
	return ok;
}

static int on_connection_readable(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct connection *c = userdata;
	ssize_t n = recv(fd, c->buffer + c->len, sizeof(c->buffer) - c->len, MSG_DONTWAIT);
	char *nl;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		connection_free(c);
		return 0;
	}
	c->len += (size_t)n;
	while ((nl = memchr(c->buffer, '\n', c->len))) {
		size_t line_len = (size_t)(nl - c->buffer) + 1;

		*nl = '\0';
		if (!reply(c, c->buffer)) {
			connection_free(c);
			return 0;
		}
		memmove(c->buffer, c->buffer + line_len, c->len - line_len);
		c->len -= line_len;
	}
	if (c->len == sizeof(c->buffer)) {
		(void)send(fd, "{\"ok\":false,\"error\":\"line too long\"}\n", 37, MSG_NOSIGNAL);
		connection_free(c);
	}
	return 0;
}

static int on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct control *control = userdata;
	struct connection *c;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (cfd < 0)
		return 0;
	if (control->n_connections >= MAX_CLIENTS) {
		safe_close(cfd);
		return 0;
	}
	c = xcalloc(1, sizeof(*c));
	c->control = control;
	c->fd = cfd;
	if (sd_event_add_io(control->emu->event, &c->source, cfd, EPOLLIN, on_connection_readable,
			    c) < 0) {
		safe_close(cfd);
		free(c);
		return 0;
	}
	c->next = control->connections;
	control->connections = c;
	control->n_connections++;
	return 0;
}

int control_new(struct emulator *emu, const char *path, struct control **ret_control)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct control *control;
	int fd, r;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)unlink(path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 16) < 0) {
		r = -errno;
		safe_close(fd);
		return r;
	}
	control = xcalloc(1, sizeof(*control));
	control->emu = emu;
	control->fd = fd;
	control->path = xstrdup(path);
	r = sd_event_add_io(emu->event, &control->source, fd, EPOLLIN, on_accept, control);
	if (r < 0) {
		control_free(control);
		return r;
	}
	*ret_control = control;
	return 0;
}

void control_free(struct control *control)
{
	if (!control)
		return;
	while (control->connections)
		connection_free(control->connections);
	sd_event_source_disable_unref(control->source);
	safe_close(control->fd);
	(void)unlink(control->path);
	free(control->path);
	free(control);
}
