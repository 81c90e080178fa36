/* SPDX-License-Identifier: MIT */
/*
 * The daemon's configuration: the main file in libconfig syntax plus conf.d/<name>.conf
 * beside it, read in that order (conf.d files sorted by name). Settings given again in
 * a later file replace earlier ones; `inputs` lists of all files are concatenated.
 *
 * Every daemon setting is declared in one option table (config.c), every input
 * instance is parsed against the common instance table plus its plugin's own table.
 * Errors are logged as "FILE:LINE: what is wrong".
 *
 * Not here: acting on settings (main.c, service.c) or running inputs (input.c).
 */
#ifndef COAPGATE_CONFIG_H
#define COAPGATE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "options.h"
#include "plugin.h"

#ifndef COAPGATE_PLUGIN_DIR
#define COAPGATE_PLUGIN_DIR "/usr/lib/coapgate/plugins"
#endif
#ifndef COAPGATE_CONFIG_FILE
#define COAPGATE_CONFIG_FILE "/etc/coapgate/coapgate.conf"
#endif

struct daemon_settings {
	char *plugin_dir;
	char *state_dir;
	int log_target; /* enum log_target */
	int log_level;	/* index into error..debug; see config_log_level() */
	uint64_t log_rate_limit_interval_usec;
	int64_t log_rate_limit_burst;
	uint64_t stop_timeout_usec;
	uint64_t status_interval_usec;
};

struct queue_settings {
	uint64_t segment_size;
	uint64_t max_size;
	uint64_t min_free;
	uint64_t commit_interval_usec;
	uint64_t commit_bytes;
	uint64_t checkpoint_interval_usec;
	int when_full; /* enum queue_when_full */
	uint64_t block_timeout_usec;
};

#define UPLINK_DEFAULT_ENDPOINT "coaps://coap.os.1nce.com:5684"

struct uplink_settings {
	bool enabled;
	char *bootstrap_url;
	char *endpoint; /* NULL: from bootstrap, else the default coaps endpoint */
	char *identity; /* with psk: user-set credentials, no bootstrap */
	char *psk;
	int psk_format; /* 0 string, 1 hex */
	char *bind_address;
	char *interface;
	uint64_t max_payload;
	uint64_t linger_usec;
	int64_t max_in_flight;
	int64_t lookahead;
	bool sequence_numbers;
	uint64_t idle_timeout_usec;
	int64_t handshake_failures;
	uint64_t bootstrap_interval_usec;
	uint64_t bootstrap_denied_backoff_usec;
	uint64_t backoff_min_usec;
	uint64_t backoff_max_usec;
	uint64_t dead_letter_max_size;
	int mid_exhaustion; /* enum mid_exhaustion */
	uint64_t ack_timeout_usec;
};

enum mid_exhaustion {
	MID_EXHAUSTION_WAIT,
	MID_EXHAUSTION_NEW_SESSION,
};

/* Everything outside `inputs`, one member per top-level group. */
struct config_settings {
	struct daemon_settings daemon;
	struct queue_settings queue;
	struct uplink_settings uplink;
};

struct input_config {
	char *name;
	char *plugin_name;
	char *topic; /* after loading: never NULL (defaults to name) */
	bool enabled;
	uint64_t restart_backoff_min_usec;
	uint64_t restart_backoff_max_usec;
	uint64_t restart_backoff_reset_usec;

	const struct plugin *plugin;		    /* owned by the config's registry */
	void *plugin_conf;			    /* filled from the plugin's option table */
	struct options_origins plugin_conf_origins; /* where each of its values was set */

	char *file; /* where the instance is defined */
	unsigned line;
};

struct config {
	char *path;
	struct config_settings settings;
	struct input_config *inputs;
	size_t n_inputs;
	struct plugin_registry *plugins;
};

/*
 * Load path and its conf.d. plugin_dir, when not NULL, overrides daemon.plugin_dir.
 * Returns 0 and a new config, -EINVAL for an invalid configuration (each problem
 * logged as FILE:LINE), or another negative errno (logged) when a file cannot be read.
 */
int config_load(const char *path, const char *plugin_dir, struct config **ret);
void config_free(struct config *c);

/* The syslog level chosen by daemon.log_level. */
int config_log_level(const struct config *c);

/* Print the daemon's settings table and the common input options, for --help-config. */
void config_print_help(FILE *f);

/* The keys every input instance has besides its plugin's options. */
void config_print_input_help(FILE *f);

#endif
