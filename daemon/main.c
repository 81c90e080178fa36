// SPDX-License-Identifier: MIT
/*
 * coapgated: command line, then one of: print help, check the configuration, or run
 * the service. Runs in the foreground and never forks (systemd Type=notify).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "config.h"
#include "log.h"
#include "options.h"
#include "parse.h"
#include "plugin.h"
#include "service.h"
#include "util.h"

#ifndef COAPGATE_VERSION
#define COAPGATE_VERSION "unknown"
#endif

struct args {
	const char *config_path;
	bool config_given;
	const char *plugin_dir;
	const char *help_plugin;
	int log_level; /* -1: from the configuration */
	bool check_config;
	bool help_config;
	struct service_options service;
	const char **only_inputs;
	size_t n_only_inputs;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: coapgated [OPTIONS]\n"
		"Read sensors through input plugins, queue every reading on disk and send\n"
		"them to 1NCE OS over CoAP/DTLS.\n\n"
		"  -c, --config FILE       configuration file (default %s)\n"
		"  -t, --check-config      check the configuration and exit (0 good, 78 bad)\n"
		"      --test              run the inputs and print readings as JSON lines\n"
		"      --count N           with --test: stop after N readings\n"
		"      --duration TIME     with --test: stop after TIME (\"10s\", \"2min\")\n"
		"      --input NAME        run only this input instance (repeatable)\n"
		"  -P, --plugin-dir DIR    load plugins from DIR instead of daemon.plugin_dir\n"
		"      --log-level LEVEL   error, warning, notice, info or debug\n"
		"      --help-plugin NAME  describe a plugin and its options\n"
		"      --help-config       describe the daemon's settings\n"
		"  -h, --help              show this help\n"
		"      --version           show the version\n",
		COAPGATE_CONFIG_FILE);
}

enum {
	ARG_TEST = 0x100,
	ARG_COUNT,
	ARG_DURATION,
	ARG_INPUT,
	ARG_LOG_LEVEL,
	ARG_HELP_PLUGIN,
	ARG_HELP_CONFIG,
	ARG_VERSION,
};

/* Returns -1 to continue, or an exit status. */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "test", no_argument, NULL, ARG_TEST },
		{ "count", required_argument, NULL, ARG_COUNT },
		{ "duration", required_argument, NULL, ARG_DURATION },
		{ "input", required_argument, NULL, ARG_INPUT },
		{ "plugin-dir", required_argument, NULL, 'P' },
		{ "log-level", required_argument, NULL, ARG_LOG_LEVEL },
		{ "help-plugin", required_argument, NULL, ARG_HELP_PLUGIN },
		{ "help-config", no_argument, NULL, ARG_HELP_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ 0 },
	};
	int64_t count;
	int c;

	while ((c = getopt_long(argc, argv, "c:tP:h", long_options, NULL)) >= 0) {
		switch (c) {
		case 'c':
			a->config_path = optarg;
			a->config_given = true;
			break;
		case 't':
			a->check_config = true;
			break;
		case ARG_TEST:
			a->service.test_mode = true;
			break;
		case ARG_COUNT:
			if (parse_int64(optarg, &count) < 0 || count <= 0) {
				fprintf(stderr,
					"coapgated: --count: \"%s\" is not a positive number\n",
					optarg);
				return EX_USAGE;
			}
			a->service.test_count = (uint64_t)count;
			break;
		case ARG_DURATION:
			if (parse_duration(optarg, &a->service.test_duration_usec) < 0 ||
			    a->service.test_duration_usec == 0) {
				fprintf(stderr,
					"coapgated: --duration: \"%s\" is not a duration such "
					"as \"10s\"\n",
					optarg);
				return EX_USAGE;
			}
			break;
		case ARG_INPUT:
			a->only_inputs =
			    xrealloc(a->only_inputs, (a->n_only_inputs + 2) * sizeof(char *));
			a->only_inputs[a->n_only_inputs++] = optarg;
			a->only_inputs[a->n_only_inputs] = NULL;
			break;
		case 'P':
			a->plugin_dir = optarg;
			break;
		case ARG_LOG_LEVEL:
			a->log_level = log_level_from_string(optarg);
			if (a->log_level < 0) {
				fprintf(stderr,
					"coapgated: --log-level: \"%s\" is not one of error, "
					"warning, notice, info, debug\n",
					optarg);
				return EX_USAGE;
			}
			break;
		case ARG_HELP_PLUGIN:
			a->help_plugin = optarg;
			break;
		case ARG_HELP_CONFIG:
			a->help_config = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case ARG_VERSION:
			printf("coapgated %s (plugin ABI %d.%d)\n", COAPGATE_VERSION, CG_ABI_MAJOR,
			       CG_ABI_MINOR);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "coapgated: unexpected argument \"%s\"\n", argv[optind]);
		return EX_USAGE;
	}
	if ((a->service.test_count || a->service.test_duration_usec) && !a->service.test_mode) {
		fprintf(stderr, "coapgated: --count and --duration go with --test\n");
		return EX_USAGE;
	}
	a->service.only_inputs = a->only_inputs;
	return -1;
}

static int help_plugin(const struct args *a)
{
	const char *dir = a->plugin_dir ? a->plugin_dir : COAPGATE_PLUGIN_DIR;
	struct config *config = NULL;
	struct plugin_registry *reg;
	const struct plugin *p;
	char why[1024];
	int r;

	/* An explicit -c names the plugin directory through daemon.plugin_dir. */
	if (!a->plugin_dir && a->config_given) {
		if (config_load(a->config_path, NULL, &config) < 0)
			return EX_CONFIG;
		dir = config->settings.daemon.plugin_dir;
	}
	reg = plugin_registry_new(dir);
	r = plugin_registry_get(reg, a->help_plugin, &p, why, sizeof(why));
	if (r < 0) {
		log_error("cannot use plugin \"%s\": %s", a->help_plugin, why);
		plugin_registry_free(reg);
		config_free(config);
		return EXIT_FAILURE;
	}
	printf("%s %s (ABI %u.%u, %s)\n%s\n\n", p->desc.name,
	       p->desc.version ? p->desc.version : "", p->desc.abi_major, p->desc.abi_minor,
	       p->path, p->desc.description ? p->desc.description : "");
	printf("Options of every input instance:\n");
	config_print_input_help(stdout);
	printf("\nOptions of plugin \"%s\":\n", p->desc.name);
	if (p->desc.options && p->desc.options->key)
		options_print_help(stdout, p->desc.options, 4);
	else
		printf("    (none)\n");
	plugin_registry_free(reg);
	config_free(config);
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	struct args a = { .config_path = COAPGATE_CONFIG_FILE, .log_level = -1 };
	struct config *config = NULL;
	int r;

	log_setup(LOG_TARGET_AUTO);
	r = parse_args(argc, argv, &a);
	if (r >= 0)
		goto out;
	if (a.log_level >= 0)
		log_set_max_level(a.log_level);

	if (a.help_config) {
		config_print_help(stdout);
		r = EXIT_SUCCESS;
		goto out;
	}
	if (a.help_plugin) {
		r = help_plugin(&a);
		goto out;
	}

	if (config_load(a.config_path, a.plugin_dir, &config) < 0) {
		r = EX_CONFIG;
		goto out;
	}
	log_setup(config->settings.daemon.log_target);
	if (a.log_level < 0)
		log_set_max_level(config_log_level(config));

	a.service.check_only = a.check_config;
	r = service_run(config, &a.service);
	if (a.check_config && r == EXIT_SUCCESS)
		printf("%s: configuration is valid (%zu input%s)\n", a.config_path,
		       config->n_inputs, config->n_inputs == 1 ? "" : "s");
out:
	config_free(config);
	free(a.only_inputs);
	return r;
}
