// SPDX-License-Identifier: MIT
/*
 * Configuration loading; see config.h. libconfig parses the syntax, options.c applies
 * the tables; this file knows the file set, the daemon's settings table and how input
 * instances are put together.
 */
#include "config.h"

#include "credentials.h"

#include <coap3/coap.h>

#include <dirent.h>
#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "parse.h"
#include "topic.h"
#include "util.h"

static const char *const log_target_names[] = { "auto", "journal", "stderr", NULL };
static const char *const log_level_names[] = {
	"error", "warning", "notice", "info", "debug", NULL
};

#define D(member) offsetof(struct daemon_settings, member)
static const struct cg_option daemon_options[] = {
	{ "plugin_dir", CG_OPT_STRING, D(plugin_dir), COAPGATE_PLUGIN_DIR,
	  .help = "Directory that holds the input plugins (<name>.so)." },
	{ "state_dir", CG_OPT_STRING, D(state_dir), "/var/lib/coapgate",
	  .help = "Directory for the queue and the credentials (systemd StateDirectory)." },
	{ "log_target", CG_OPT_ENUM, D(log_target), "auto", .choices = log_target_names,
	  .help = "Where to log: the journal when run by systemd (auto), or always one place." },
	{ "log_level", CG_OPT_ENUM, D(log_level), "info", .choices = log_level_names,
	  .help = "Messages less important than this are not logged." },
	{ "log_rate_limit_interval", CG_OPT_DURATION, D(log_rate_limit_interval_usec), "30s", 0,
	  86400 * USEC_PER_SEC,
	  .help = "Window of the per-input log rate limit; 0 turns the limit off." },
	{ "log_rate_limit_burst", CG_OPT_INT, D(log_rate_limit_burst), "20", 0, 100000,
	  .help =
	      "Messages an input may log per window before the rest are only counted; 0: no limit." },
	{ "stop_timeout", CG_OPT_DURATION, D(stop_timeout_usec), "10s", 100 * USEC_PER_MSEC,
	  3600 * USEC_PER_SEC,
	  .help = "How long to wait for inputs to stop on shutdown before exiting anyway." },
	{ "status_interval", CG_OPT_DURATION, D(status_interval_usec), "10s", USEC_PER_SEC,
	  3600 * USEC_PER_SEC, .help = "How often the systemd STATUS= line is refreshed." },
	{ 0 },
};
#undef D

static const char *const when_full_names[] = { "drop_oldest", "drop_newest", "block", NULL };

#define Q(member) offsetof(struct queue_settings, member)
static const struct cg_option queue_options[] = {
	{ "segment_size", CG_OPT_SIZE, Q(segment_size), "16M", 1 << 20, 1LL << 30,
	  .help = "Size of one preallocated segment file." },
	{ "max_size", CG_OPT_SIZE, Q(max_size), "1G", 4 << 20, 1LL << 40,
	  .help = "Most disk space the queue may take (segments and quarantine, as allocated)." },
	{ "min_free", CG_OPT_SIZE, Q(min_free), "64M", 0, 1LL << 40,
	  .help = "Free space the queue leaves on its file system for everything else." },
	{ "commit_interval", CG_OPT_DURATION, Q(commit_interval_usec), "100ms", USEC_PER_MSEC,
	  10 * USEC_PER_SEC,
	  .help = "Readings are made durable at least this often: the most a crash can lose." },
	{ "commit_bytes", CG_OPT_SIZE, Q(commit_bytes), "256K", 64 << 10, 16 << 20,
	  .help = "A batch of this many bytes is committed without waiting for the interval." },
	{ "checkpoint_interval", CG_OPT_DURATION, Q(checkpoint_interval_usec), "1s",
	  10 * USEC_PER_MSEC, 60 * USEC_PER_SEC,
	  .help = "Acknowledgements are saved this often: what a crash may send twice." },
	{ "when_full", CG_OPT_ENUM, Q(when_full), "drop_oldest", .choices = when_full_names,
	  .help =
	      "At max_size: delete the oldest readings, refuse new ones, or make inputs wait." },
	{ "block_timeout", CG_OPT_DURATION, Q(block_timeout_usec), "1s", 0, 3600 * USEC_PER_SEC,
	  .help =
	      "With when_full = \"block\": how long an input waits before its reading is dropped." },
	{ 0 },
};
#undef Q

static const char *const psk_format_names[] = { "string", "hex", NULL };
static const char *const mid_exhaustion_names[] = { "wait", "new_session", NULL };

#define U(member) offsetof(struct uplink_settings, member)
static const struct cg_option uplink_options[] = {
	{ "enabled", CG_OPT_BOOL, U(enabled), "true",
	  .help = "Send queued readings to 1NCE OS; off keeps them in the queue." },
	{ "bootstrap_url", CG_OPT_STRING, U(bootstrap_url),
	  "coap://coap.os.1nce.com:5683/bootstrap",
	  .help = "Where the DTLS credentials come from (plain CoAP, over the SIM)." },
	{ "endpoint", CG_OPT_STRING, U(endpoint),
	  .help = "coaps:// URL to send to; default: what bootstrap returns, else "
		  "coaps://coap.os.1nce.com:5684." },
	{ "identity", CG_OPT_STRING, U(identity),
	  .help = "With psk: user-set DTLS credentials (the ICCID); bootstrap is never used." },
	{ "psk", CG_OPT_STRING, U(psk),
	  .help = "With identity: the pre-shared key set in 1NCE OS." },
	{ "psk_format", CG_OPT_ENUM, U(psk_format), "string", .choices = psk_format_names,
	  .help = "How psk is written: its ASCII bytes (string) or hex digits." },
	{ "bind_address", CG_OPT_STRING, U(bind_address),
	  .help = "Send from this local address: the SIM's, as 1NCE identifies devices by it." },
	{ "interface", CG_OPT_STRING, U(interface),
	  .help = "Send from this interface's address (e.g. wwan0), looked up at each connect." },
	{ "max_payload", CG_OPT_SIZE, U(max_payload), "1024", 64, 1024,
	  .help = "Payload bytes per CoAP message; 1NCE's safe maximum is 1024." },
	{ "linger", CG_OPT_DURATION, U(linger_usec), "1s", 0, 3600 * USEC_PER_SEC,
	  .help = "How long a reading may wait for others to fill its message." },
	{ "max_in_flight", CG_OPT_INT, U(max_in_flight), "1", 1, 16,
	  .help = "Messages awaiting an answer at once (RFC 7252 NSTART is 1)." },
	{ "lookahead", CG_OPT_INT, U(lookahead), "4096", 16, 1000000,
	  .help = "Readings read ahead of the oldest unacknowledged one, to group topics." },
	{ "sequence_numbers", CG_OPT_BOOL, U(sequence_numbers), "true",
	  .help = "Send each reading's queue sequence number, so a backend can drop duplicates." },
	{ "idle_timeout", CG_OPT_DURATION, U(idle_timeout_usec), "100s", 0, 86400 * USEC_PER_SEC,
	  .help = "Rebuild the DTLS session after this long without traffic (1NCE's NAT "
		  "forgets after 120 s); 0: never." },
	{ "handshake_failures", CG_OPT_INT, U(handshake_failures), "3", 1, 100,
	  .help = "Bootstrap again after this many DTLS handshakes failed in a row." },
	{ "bootstrap_interval", CG_OPT_DURATION, U(bootstrap_interval_usec), "1min", 0,
	  86400 * USEC_PER_SEC, .help = "At most one bootstrap per this interval." },
	{ "bootstrap_denied_backoff", CG_OPT_DURATION, U(bootstrap_denied_backoff_usec), "1h",
	  USEC_PER_SEC, 7 * 86400 * USEC_PER_SEC,
	  .help = "Wait after 1NCE refused a bootstrap (4.01: device inactive, terms not "
		  "accepted)." },
	{ "backoff_min", CG_OPT_DURATION, U(backoff_min_usec), "1s", 10 * USEC_PER_MSEC,
	  3600 * USEC_PER_SEC, .help = "First retry delay after a failure; doubles each time." },
	{ "backoff_max", CG_OPT_DURATION, U(backoff_max_usec), "5min", 10 * USEC_PER_MSEC,
	  86400 * USEC_PER_SEC, .help = "The retry delay stops doubling here." },
	{ "dead_letter_max_size", CG_OPT_SIZE, U(dead_letter_max_size), "1M", 4096, 1LL << 30,
	  .help = "Size of <state_dir>/dead-letter.jsonl before it is rotated (one old copy)." },
	{ "ack_timeout", CG_OPT_DURATION, U(ack_timeout_usec), "2s", USEC_PER_SEC,
	  60 * USEC_PER_SEC,
	  .help = "RFC 7252 ACK_TIMEOUT: the first retransmission comes after 1 to 1.5 times "
		  "this, doubling 4 times." },
	{ "mid_exhaustion", CG_OPT_ENUM, U(mid_exhaustion), "wait", .choices = mid_exhaustion_names,
	  .help = "After 65536 messages within 247 s every message ID is taken: wait, or "
		  "start a new session (a new source port)." },
	{ 0 },
};
#undef U

static const struct cg_option settings_table[] = {
	{ "daemon", CG_OPT_GROUP, offsetof(struct config_settings, daemon), .sub = daemon_options,
	  .help = "Settings of the daemon process itself." },
	{ "queue", CG_OPT_GROUP, offsetof(struct config_settings, queue), .sub = queue_options,
	  .help = "The disk queue under <state_dir>/queue." },
	{ "uplink", CG_OPT_GROUP, offsetof(struct config_settings, uplink), .sub = uplink_options,
	  .help = "Sending readings to 1NCE OS over CoAP/DTLS." },
	{ 0 },
};

#define I(member) offsetof(struct input_config, member)
static const struct cg_option input_options[] = {
	{ "name", CG_OPT_STRING, I(name), .flags = CG_OPT_REQUIRED,
	  .help = "Unique name of the instance, used in logs: 1 to 64 of A-Z a-z 0-9 _ . -" },
	{ "plugin", CG_OPT_STRING, I(plugin_name), .flags = CG_OPT_REQUIRED,
	  .help = "The plugin to run (the file <plugin_dir>/<plugin>.so)." },
	{ "topic", CG_OPT_STRING, I(topic),
	  .help = "1NCE OS topic of the instance's readings; default: the name." },
	{ "enabled", CG_OPT_BOOL, I(enabled), "true",
	  .help = "A disabled instance is checked but not started." },
	{ "restart_backoff_min", CG_OPT_DURATION, I(restart_backoff_min_usec), "1s",
	  10 * USEC_PER_MSEC, 3600 * USEC_PER_SEC,
	  .help = "Delay before the first restart of a failed run; doubles each time." },
	{ "restart_backoff_max", CG_OPT_DURATION, I(restart_backoff_max_usec), "5min",
	  10 * USEC_PER_MSEC, 86400 * USEC_PER_SEC,
	  .help = "The restart delay stops doubling here." },
	{ "restart_backoff_reset", CG_OPT_DURATION, I(restart_backoff_reset_usec), "1min",
	  10 * USEC_PER_MSEC, 86400 * USEC_PER_SEC,
	  .help = "A run that lasted this long was healthy: the delay starts over." },
	{ 0 },
};
#undef I

int config_log_level(const struct config *c)
{
	return LOG_ERR + c->settings.daemon.log_level;
}

void config_print_help(FILE *f)
{
	options_print_help(f, settings_table, 0);
}

void config_print_input_help(FILE *f)
{
	options_print_help(f, input_options, 4);
}

static const char **table_keys(const struct cg_option *table)
{
	size_t n = 0;
	const char **keys;

	while (table && table[n].key)
		n++;
	keys = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		keys[i] = table[i].key;
	return keys;
}

/* The names of group's members that table does not declare. */
static const char **keys_not_in(const config_setting_t *group, const struct cg_option *table)
{
	const char **keys = xcalloc((size_t)config_setting_length(group) + 1, sizeof(char *));
	size_t n = 0;

	for (int i = 0; i < config_setting_length(group); i++) {
		const char *name = config_setting_name(config_setting_get_elem(group, (unsigned)i));
		bool known = false;

		for (const struct cg_option *o = table; o->key; o++)
			known |= strcmp(o->key, name) == 0;
		if (!known)
			keys[n++] = name;
	}
	return keys;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The main file, then <dir of path>/conf.d/<name>.conf in name order. */
static int list_files(const char *path, char ***ret_files, size_t *ret_n)
{
	const char *slash = strrchr(path, '/');
	char *dir, **files;
	size_t n = 1;
	DIR *d;

	files = xcalloc(1, sizeof(char *));
	files[0] = xstrdup(path);
	if (slash)
		dir = xasprintf("%.*s/conf.d", (int)(slash - path), path);
	else
		dir = xstrdup("conf.d");
	d = opendir(dir);
	if (!d && errno != ENOENT) {
		int r = log_error_errno(errno, "cannot read \"%s\": %m", dir);

		free(dir);
		free(files[0]);
		free(files);
		return r;
	}
	for (struct dirent *de; d && (de = readdir(d));) {
		size_t len = strlen(de->d_name);

		/* Skip hidden files and editor backups: only *.conf counts. */
		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".conf") != 0)
			continue;
		files = xrealloc(files, (n + 1) * sizeof(char *));
		files[n++] = xasprintf("%s/%s", dir, de->d_name);
	}
	if (d)
		closedir(d);
	free(dir);
	qsort(files + 1, n - 1, sizeof(char *), compare_strings);
	*ret_files = files;
	*ret_n = n;
	return 0;
}

static int read_file(const char *path, config_t *cf)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? xasprintf("%.*s", (int)(slash - path), path) : xstrdup(".");

	config_init(cf);
	/* Relative @include paths are relative to the including file. */
	config_set_include_dir(cf, dir);
	free(dir);
	/* config_read_file(), not config_read(): only then does libconfig record the file
	 * name that every FILE:LINE message needs. */
	if (config_read_file(cf, path) == CONFIG_TRUE)
		return 0;
	if (config_error_type(cf) == CONFIG_ERR_FILE_IO)
		return log_error_errno(errno, "cannot read configuration \"%s\": %m", path);
	log_error("%s:%d: %s", config_error_file(cf) ? config_error_file(cf) : path,
		  config_error_line(cf), config_error_text(cf));
	return -EINVAL;
}

static bool input_name_is_valid(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= 64 &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") ==
		   n;
}

static void input_config_free(struct input_config *in)
{
	if (in->plugin)
		options_free(in->plugin->desc.options, in->plugin_conf);
	free(in->plugin_conf);
	options_origins_free(&in->plugin_conf_origins);
	options_free(input_options, in);
	free(in->file);
}

/* The plugin's keys must not shadow the instance keys, or one key would mean two things. */
static int check_plugin_keys(const struct plugin *p, char *why, size_t why_size)
{
	for (const struct cg_option *o = p->desc.options; o && o->key; o++)
		for (const struct cg_option *c = input_options; c->key; c++)
			if (strcmp(o->key, c->key) == 0) {
				snprintf(why, why_size,
					 "%s: option \"%s\" is reserved for every input instance",
					 p->path, o->key);
				return -EINVAL;
			}
	return 0;
}

static int parse_input(struct config *c, const config_setting_t *group, struct input_config *in)
{
	const config_setting_t *plugin_setting = config_setting_get_member(group, "plugin");
	const char *file = config_setting_source_file(group);
	const char **other_keys = NULL, **common_keys = NULL;
	const char *name = NULL;
	char *context = NULL;
	char why[1024];
	int r;

	memset(in, 0, sizeof(*in));
	in->file = xstrdup(file ? file : c->path);
	in->line = config_setting_source_line(group);
	options_set_defaults(input_options, in);

	config_setting_lookup_string(group, "name", &name);
	context = name ? xasprintf("input \"%s\": ", name) : xstrdup("input: ");
	common_keys = table_keys(input_options);

	/* Which plugin decides which keys are valid, so it comes first. */
	if (plugin_setting && config_setting_type(plugin_setting) == CONFIG_TYPE_STRING) {
		const char *plugin_name = config_setting_get_string(plugin_setting);

		r = plugin_registry_get(c->plugins, plugin_name, &in->plugin, why, sizeof(why));
		if (r >= 0)
			r = check_plugin_keys(in->plugin, why, sizeof(why));
		if (r < 0) {
			options_error(plugin_setting, "%scannot use plugin \"%s\": %s", context,
				      plugin_name, why);
			in->plugin = NULL;
		}
	}
	r = 0;
	if (in->plugin) {
		const struct cg_plugin *d = &in->plugin->desc;

		in->plugin_conf = xcalloc(1, d->conf_size ? d->conf_size : 1);
		options_set_defaults(d->options, in->plugin_conf);
		r = options_parse_group(d->options, group, in->plugin_conf, common_keys, true,
					context, &in->plugin_conf_origins);
	}
	/* Keys that are not common ones are the plugin's business: the pass above has
	 * reported those it does not know, and without a usable plugin nobody can judge. */
	other_keys = keys_not_in(group, input_options);
	if (options_parse_group(input_options, group, in, other_keys, true, context, NULL) < 0 ||
	    !in->plugin)
		r = -EINVAL;
	if (in->name && !input_name_is_valid(in->name))
		r = options_error(config_setting_get_member(group, "name"),
				  "%sthe name must be 1 to 64 of A-Z a-z 0-9 _ . -", context);
	if (in->name && !in->topic) {
		if (topic_is_valid(in->name))
			in->topic = xstrdup(in->name);
		else
			r = options_error(group,
					  "%sthe name is not a valid topic, so set \"topic\" "
					  "(A-Z a-z 0-9 _ / without \"//\", at most %d bytes)",
					  context, CG_TOPIC_MAX);
	} else if (in->topic && !topic_is_valid(in->topic)) {
		r = options_error(config_setting_get_member(group, "topic"),
				  "%soption \"topic\": \"%s\" is not a valid 1NCE OS topic "
				  "(A-Z a-z 0-9 _ / without \"//\", at most %d bytes)",
				  context, in->topic, CG_TOPIC_MAX);
	}
	if (in->restart_backoff_max_usec < in->restart_backoff_min_usec)
		r = options_error(
		    group, "%srestart_backoff_max is smaller than restart_backoff_min", context);
	free(other_keys);
	free(common_keys);
	free(context);
	return r;
}

static int parse_inputs(struct config *c, const config_setting_t *list)
{
	int r = 0;

	if (!config_setting_is_list(list) &&
	    !(config_setting_is_array(list) && config_setting_length(list) == 0))
		return options_error(list, "\"inputs\" must be a list of groups: ( { ... }, ... )");
	for (int i = 0; i < config_setting_length(list); i++) {
		const config_setting_t *group = config_setting_get_elem(list, (unsigned)i);
		struct input_config *in;

		if (!config_setting_is_group(group)) {
			r = options_error(group, "inputs[%d]: expected a group { ... }", i);
			continue;
		}
		c->inputs = xrealloc(c->inputs, (c->n_inputs + 1) * sizeof(*c->inputs));
		in = &c->inputs[c->n_inputs++];
		if (parse_input(c, group, in) < 0)
			r = -EINVAL;
		for (size_t j = 0; in->name && j + 1 < c->n_inputs; j++)
			if (c->inputs[j].name && strcmp(c->inputs[j].name, in->name) == 0)
				r = options_error(group,
						  "input \"%s\": the name is already used at %s:%u",
						  in->name, c->inputs[j].file, c->inputs[j].line);
	}
	return r;
}

/* The queue's sizes must fit each other; the message points at the queue group. */
static int check_queue_settings(const struct queue_settings *q, config_t *files,
				const bool *readable, size_t n)
{
	const config_setting_t *where = NULL;

	for (size_t i = 0; i < n; i++)
		if (readable[i] && config_lookup(&files[i], "queue"))
			where = config_lookup(&files[i], "queue");
	if (q->segment_size < 16 * q->commit_bytes) {
		if (where)
			return options_error(where, "queue.segment_size must be at least 16 times "
						    "queue.commit_bytes");
		log_error("queue.segment_size must be at least 16 times queue.commit_bytes");
		return -EINVAL;
	}
	if (q->max_size < 4 * q->segment_size) {
		if (where)
			return options_error(where, "queue.max_size must hold at least 4 segments "
						    "(queue.segment_size)");
		log_error("queue.max_size must hold at least 4 segments");
		return -EINVAL;
	}
	return 0;
}

/* Report a problem with the uplink group, at the last file that has one. */
static int uplink_error(config_t *files, const bool *readable, size_t n, const char *what)
{
	const config_setting_t *where = NULL;

	for (size_t i = 0; i < n; i++)
		if (readable[i] && config_lookup(&files[i], "uplink"))
			where = config_lookup(&files[i], "uplink");
	if (where)
		return options_error(where, "uplink: %s", what);
	log_error("uplink: %s", what);
	return -EINVAL;
}

/* A URL the uplink can use: coap:// (or coaps:// where allowed), a host, a valid port,
 * as libcoap parses it. */
static bool url_is_valid(const char *url, bool coaps_allowed)
{
	coap_uri_t uri;

	if (coap_split_uri((const uint8_t *)url, strlen(url), &uri) < 0 || uri.host.length == 0 ||
	    uri.port == 0)
		return false;
	return uri.scheme == COAP_URI_SCHEME_COAP ||
	       (coaps_allowed && uri.scheme == COAP_URI_SCHEME_COAPS);
}

/* Settings that only make sense together, and the user's credentials, checked now
 * rather than when the uplink first uses them. */
static int check_uplink_settings(const struct uplink_settings *u, config_t *files,
				 const bool *readable, size_t n)
{
	struct credentials cred = { 0 };
	struct in6_addr a6;
	struct in_addr a4;
	const char *why;

	if (!u->identity != !u->psk)
		return uplink_error(files, readable, n, "identity and psk go together");
	if (u->endpoint && !url_is_valid(u->endpoint, true))
		return uplink_error(
		    files, readable, n,
		    "endpoint must be a coaps://HOST[:PORT] (or plain coap://) URL");
	if (u->endpoint && strncmp(u->endpoint, "coap://", 7) == 0 && u->identity)
		return uplink_error(files, readable, n,
				    "identity and psk are for a coaps:// endpoint");
	if (u->identity &&
	    credentials_set(&cred, u->identity, u->psk, u->psk_format == 1,
			    u->endpoint ? u->endpoint : UPLINK_DEFAULT_ENDPOINT, &why) < 0)
		return uplink_error(files, readable, n, why);
	if (!url_is_valid(u->bootstrap_url, false))
		return uplink_error(files, readable, n,
				    "bootstrap_url must be a coap://HOST[:PORT]/PATH URL");
	if (u->bind_address && u->interface)
		return uplink_error(files, readable, n,
				    "bind_address and interface are alternatives; set one");
	if (u->bind_address && inet_pton(AF_INET, u->bind_address, &a4) != 1 &&
	    inet_pton(AF_INET6, u->bind_address, &a6) != 1)
		return uplink_error(files, readable, n, "bind_address is not an IP address");
	return 0;
}

/* True when a file could not be read or sets daemon.plugin_dir to something unusable:
 * then every plugin lookup would fail and only add noise to the real error. */
static bool plugin_dir_is_doubtful(const config_t *files, const bool *readable, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const config_setting_t *s;

		if (!readable[i])
			return true;
		s = config_lookup((config_t *)&files[i], "daemon.plugin_dir");
		if (s && config_setting_type(s) != CONFIG_TYPE_STRING)
			return true;
	}
	return false;
}

int config_load(const char *path, const char *plugin_dir, struct config **ret)
{
	static const char *const skip_inputs[] = { "inputs", NULL };
	struct config *c = xcalloc(1, sizeof(*c));
	config_t *files = NULL;
	char **paths = NULL;
	size_t n = 0, n_read = 0;
	bool *readable = NULL;
	int r;

	c->path = xstrdup(path);
	options_set_defaults(settings_table, &c->settings);
	r = list_files(path, &paths, &n);
	if (r < 0)
		goto out;
	files = xcalloc(n, sizeof(config_t));

	/* Read every file first: settings (plugin_dir above all) may come from any of them.
	 * A file with a syntax error is not looked into: its settings would be half read. */
	readable = xcalloc(n, sizeof(bool));
	for (; n_read < n; n_read++) {
		int rr = read_file(paths[n_read], &files[n_read]);

		readable[n_read] = rr >= 0;
		/* Keep the first error that says more than "invalid" (-ENOENT...). */
		if (rr < 0 && (r == 0 || (r == -EINVAL && rr != -EINVAL)))
			r = rr;
	}
	for (size_t i = 0; i < n; i++)
		if (readable[i] &&
		    options_parse_group(settings_table, config_root_setting(&files[i]),
					&c->settings, skip_inputs, false, "", NULL) < 0 &&
		    r == 0)
			r = -EINVAL;
	if (check_queue_settings(&c->settings.queue, files, readable, n) < 0 && r == 0)
		r = -EINVAL;
	if (check_uplink_settings(&c->settings.uplink, files, readable, n) < 0 && r == 0)
		r = -EINVAL;
	/* Report the inputs' problems too, unless the plugin directory itself is in doubt. */
	if (r < 0 && plugin_dir_is_doubtful(files, readable, n))
		goto out;

	if (plugin_dir) {
		free(c->settings.daemon.plugin_dir);
		c->settings.daemon.plugin_dir = xstrdup(plugin_dir);
	}
	c->plugins = plugin_registry_new(c->settings.daemon.plugin_dir);
	for (size_t i = 0; i < n; i++) {
		const config_setting_t *list =
		    readable[i] ? config_lookup(&files[i], "inputs") : NULL;

		if (list && parse_inputs(c, list) < 0 && r == 0)
			r = -EINVAL;
	}
out:
	/* The parsed files are only needed while the tables are applied. */
	for (size_t i = 0; i < n_read; i++)
		config_destroy(&files[i]);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(files);
	free(paths);
	free(readable);
	if (r < 0) {
		config_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_inputs; i++)
		input_config_free(&c->inputs[i]);
	free(c->inputs);
	options_free(settings_table, &c->settings);
	plugin_registry_free(c->plugins);
	free(c->path);
	free(c);
}
