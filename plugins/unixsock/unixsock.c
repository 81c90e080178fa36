// SPDX-License-Identifier: MIT
/*
 * unixsock: readings from local programs over a Unix socket, as JSON lines or InfluxDB
 * line protocol; README.md is the user's manual. This file is the plugin's face to the
 * daemon: options, init, run, destroy.
 */
#include <coapgate/plugin.h>

#include <errno.h>
#include <grp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "unixsock.h"

static const char *const kind_names[] = { "stream", "datagram", NULL };
static const char *const format_names[] = { "json", "influx", NULL };
static const char *const precision_names[] = { "ns", "us", "ms", "s", NULL };

#define C(member) offsetof(struct unixsock_conf, member)

static const struct cg_option unixsock_options[] = {
	{ .key = "path",
	  .type = CG_OPT_STRING,
	  .offset = C(path),
	  .default_value = "/run/coapgate/ingest.sock",
	  .help = "The socket file; its directory must exist." },
	{ .key = "mode",
	  .type = CG_OPT_ENUM,
	  .offset = C(kind),
	  .default_value = "stream",
	  .choices = kind_names,
	  .help = "stream: clients connect and send lines; datagram: one message per datagram." },
	{ .key = "format",
	  .type = CG_OPT_ENUM,
	  .offset = C(format),
	  .default_value = "json",
	  .choices = format_names,
	  .help = "json: JSON lines; influx: InfluxDB line protocol." },
	{ .key = "ack",
	  .type = CG_OPT_BOOL,
	  .offset = C(ack),
	  .default_value = "false",
	  .help = "Stream mode: answer \"ok <n>\" once a client's readings are durable." },
	{ .key = "socket_mode",
	  .type = CG_OPT_STRING,
	  .offset = C(socket_mode),
	  .default_value = "0660",
	  .help = "Permissions of the socket file, in octal." },
	{ .key = "group",
	  .type = CG_OPT_STRING,
	  .offset = C(group),
	  .default_value = "",
	  .help = "Group of the socket file, a name or a number; \"\": the daemon's." },
	{ .key = "max_message",
	  .type = CG_OPT_SIZE,
	  .offset = C(max_message),
	  .default_value = "64K",
	  .min = 256,
	  .max = 16 << 20,
	  .help = "Longest message in bytes, without its newline; longer ones are rejected." },
	{ .key = "max_clients",
	  .type = CG_OPT_INT,
	  .offset = C(max_clients),
	  .default_value = "64",
	  .min = 1,
	  .max = 4096,
	  .help = "Stream connections served at once; one more is told so and closed." },
	{ .key = "precision",
	  .type = CG_OPT_ENUM,
	  .offset = C(precision),
	  .default_value = "ns",
	  .choices = precision_names,
	  .help = "Unit of line protocol timestamps." },
	{ 0 },
};

static int parse_file_mode(struct cg_instance *inst, const char *text, mode_t *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 8);
	if (errno || end == text || *end || v > 07777 || text[0] == '-') {
		cg_log_error(inst, "socket_mode \"%s\" is not an octal mode like \"0660\"", text);
		return -EINVAL;
	}
	*ret = (mode_t)v;
	return 0;
}

/* A group name or number, looked up now so that `coapgated -t` reports a typo. */
static int parse_group(struct cg_instance *inst, const char *text, gid_t *ret)
{
	struct group grp, *found = NULL;
	char buf[4096], *end;
	unsigned long v;
	int r;

	*ret = (gid_t)-1;
	if (!text[0])
		return 0;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (!errno && end != text && !*end && text[0] != '-' && v < (gid_t)-1) {
		*ret = (gid_t)v;
		return 0;
	}
	r = getgrnam_r(text, &grp, buf, sizeof(buf), &found);
	if (r != 0 || !found) {
		cg_log_error(inst, "group \"%s\" does not exist", text);
		return -EINVAL;
	}
	*ret = found->gr_gid;
	return 0;
}

static int unixsock_init(struct cg_instance *inst, const void *conf, void **ret_state)
{
	const struct unixsock_conf *c = conf;
	struct sockaddr_un sa;
	struct unixsock *u;
	mode_t mode;
	gid_t gid;
	int r;

	if (c->path[0] != '/') {
		cg_log_error(inst, "path \"%s\" must be absolute", c->path);
		return -EINVAL;
	}
	/* The socket is bound as "<path>.<pid>.tmp" first (listener.c). */
	if (strlen(c->path) + 16 >= sizeof(sa.sun_path)) {
		cg_log_error(inst, "path \"%s\" is too long for a Unix socket (at most %zu bytes)",
			     c->path, sizeof(sa.sun_path) - 17);
		return -EINVAL;
	}
	if (c->ack && c->kind == SOCKET_DATAGRAM) {
		cg_log_error(inst,
			     "ack = true needs mode = \"stream\": datagram senders get no answers");
		return -EINVAL;
	}
	r = parse_file_mode(inst, c->socket_mode, &mode);
	if (r < 0)
		return r;
	r = parse_group(inst, c->group, &gid);
	if (r < 0)
		return r;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	*u = (struct unixsock){ .inst = inst, .conf = c, .file_mode = mode, .gid = gid };
	*ret_state = u;
	return 0;
}

static int unixsock_run(struct cg_instance *inst, void *state)
{
	struct unixsock *u = state;

	(void)inst;
	return u->conf->kind == SOCKET_STREAM ? stream_run(u) : dgram_run(u);
}

static void unixsock_destroy(void *state)
{
	free(state);
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,
	.name = "unixsock",
	.version = "1.0",
	.description =
	    "Readings from local programs over a Unix socket: JSON lines or line protocol.",
	.options = unixsock_options,
	.conf_size = sizeof(struct unixsock_conf),
	.init = unixsock_init,
	.run = unixsock_run,
	.destroy = unixsock_destroy,
};
