// SPDX-License-Identifier: MIT
/*
 * nce-emulator: a local stand-in for the 1NCE OS CoAP endpoint (README.md). main()
 * parses the command line, builds the parts in order (registry, output, CoAP server,
 * relay listeners, control socket), says it is ready, and runs the sd-event loop until
 * SIGTERM or SIGINT.
 */
#include "control.h"
#include "emulator.h"
#include "output.h"
#include "registry.h"
#include "relay.h"
#include "server.h"
#include "util.h"

#include <coap3/coap.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#define EXIT_USAGE  64
#define EXIT_CONFIG 78
#define MAX_EXEC    32

struct options {
	const char *registry;
	const char *coap_listen;
	const char *coaps_listen;
	const char *advertise;
	const char *sink;
	const char *mqtt;
	const char *control;
	const char *exec[MAX_EXEC];
	size_t n_exec;
	const char *coap_log;
	char *shorthands[2];
};

uint64_t emulator_now_us(const struct emulator *emu)
{
	return now_monotonic_usec() + emu->clock_offset_us;
}

static void vlog(const char *format, va_list ap) __attribute__((format(printf, 1, 0)));

static void vlog(const char *format, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), format, ap);
	fprintf(stderr, "nce-emulator: %s\n", line);
}

void emu_log(const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	vlog(format, ap);
	va_end(ap);
}

void emu_debug(const struct emulator *emu, const char *format, ...)
{
	va_list ap;

	if (!emu->verbose)
		return;
	va_start(ap, format);
	vlog(format, ap);
	va_end(ap);
}

static uint64_t random_u64(void)
{
	uint64_t v;

	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1) {
		emu_log("OpenSSL's random generator failed, aborting");
		abort();
	}
	return v;
}

double emu_random_unit(void)
{
	return (double)(random_u64() >> 11) * 0x1.0p-53;
}

uint64_t emu_random_below(uint64_t n)
{
	/* The modulo bias is below 2^-40 for every n the emulator uses. */
	return n ? random_u64() % n : 0;
}

static void usage(FILE *out)
{
	fputs("Usage: nce-emulator -r REGISTRY [options]\n"
	      "A local stand-in for the 1NCE OS CoAP endpoint (tests/emulator/README.md).\n\n"
	      "  -r, --registry FILE    device registry (libconfig)\n"
	      "      --coap ADDR:PORT   plain CoAP listener [127.0.0.1:5683]\n"
	      "      --coaps ADDR:PORT  CoAP over DTLS-PSK listener [127.0.0.1:5684]\n"
	      "      --advertise URL    coaps URL handed out by bootstrap\n"
	      "      --sink FILE        append accepted messages as JSON lines\n"
	      "      --mqtt HOST[:PORT] publish accepted messages to this broker\n"
	      "      --control PATH     control socket (Unix stream)\n"
	      "  -x, --exec COMMAND     run a control command at start (repeatable)\n"
	      "      --drop PCT         same as -x 'drop both PCT'\n"
	      "      --delay MS         same as -x 'delay MS'\n"
	      "  -v, --verbose          log every request on stderr\n"
	      "      --coap-log LEVEL   libcoap's log level [warn]\n"
	      "  -h, --help             this text\n",
	      out);
}

static int parse_options(int argc, char **argv, struct options *o, bool *ret_verbose)
{
	enum {
		OPT_COAP = 256,
		OPT_COAPS,
		OPT_ADVERTISE,
		OPT_SINK,
		OPT_MQTT,
		OPT_CONTROL,
		OPT_DROP,
		OPT_DELAY,
		OPT_COAP_LOG
	};
	static const struct option longopts[] = {
		{ "registry", required_argument, NULL, 'r' },
		{ "coap", required_argument, NULL, OPT_COAP },
		{ "coaps", required_argument, NULL, OPT_COAPS },
		{ "advertise", required_argument, NULL, OPT_ADVERTISE },
		{ "sink", required_argument, NULL, OPT_SINK },
		{ "mqtt", required_argument, NULL, OPT_MQTT },
		{ "control", required_argument, NULL, OPT_CONTROL },
		{ "exec", required_argument, NULL, 'x' },
		{ "drop", required_argument, NULL, OPT_DROP },
		{ "delay", required_argument, NULL, OPT_DELAY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "coap-log", required_argument, NULL, OPT_COAP_LOG },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct options){ .coap_listen = "127.0.0.1:5683",
			       .coaps_listen = "127.0.0.1:5684",
			       .coap_log = "warn" };
	while ((c = getopt_long(argc, argv, "r:x:vh", longopts, NULL)) != -1) {
		char *shorthand = NULL;

		switch (c) {
		case 'r':
			o->registry = optarg;
			break;
		case OPT_COAP:
			o->coap_listen = optarg;
			break;
		case OPT_COAPS:
			o->coaps_listen = optarg;
			break;
		case OPT_ADVERTISE:
			o->advertise = optarg;
			break;
		case OPT_SINK:
			o->sink = optarg;
			break;
		case OPT_MQTT:
			o->mqtt = optarg;
			break;
		case OPT_CONTROL:
			o->control = optarg;
			break;
		case OPT_COAP_LOG:
			o->coap_log = optarg;
			break;
		case 'v':
			*ret_verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		case OPT_DROP:
			shorthand = o->shorthands[0] = xasprintf("drop both %s", optarg);
			break;
		case OPT_DELAY:
			shorthand = o->shorthands[1] = xasprintf("delay %s", optarg);
			break;
		case 'x':
			shorthand = optarg;
			break;
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (shorthand) {
			if (o->n_exec == MAX_EXEC) {
				emu_log("at most %d commands at start", MAX_EXEC);
				return -EINVAL;
			}
			o->exec[o->n_exec++] = shorthand;
		}
	}
	if (optind < argc || !o->registry) {
		emu_log(optind < argc ? "unexpected argument \"%s\""
				      : "a registry is needed (-r FILE)%s",
			optind < argc ? argv[optind] : "");
		return -EINVAL;
	}
	return 0;
}

static int set_coap_log(const char *name)
{
	static const char *const levels[] = { "emerg", "alert",	 "crit", "err",
					      "warn",  "notice", "info", "debug" };

	for (size_t i = 0; i < ARRAY_SIZE(levels); i++)
		if (strcmp(name, levels[i]) == 0) {
			coap_set_log_level((coap_log_t)i);
			coap_dtls_set_log_level((int)i);
			return 0;
		}
	emu_log("--coap-log \"%s\" is not one of emerg, alert, crit, err, warn, notice, info, "
		"debug",
		name);
	return -EINVAL;
}

static int run_exec(struct emulator *emu, const struct options *o)
{
	for (size_t i = 0; i < o->n_exec; i++) {
		json_t *answer = control_execute(emu, o->exec[i]);
		bool ok = json_is_true(json_object_get(answer, "ok"));

		if (!ok)
			emu_log("-x \"%s\": %s", o->exec[i],
				json_string_value(json_object_get(answer, "error")));
		json_decref(answer);
		if (!ok)
			return -EINVAL;
	}
	return 0;
}

static int on_signal(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata)
{
	return sd_event_exit(sd_event_source_get_event(source), EXIT_SUCCESS);
}

/* Bind the public listeners in front of libcoap's internal endpoints. */
static int open_listeners(struct emulator *emu, const struct options *o, char *coap_bound,
			  char *coaps_bound, size_t size)
{
	const char *listen[2] = { o->coap_listen, o->coaps_listen };
	char *bound[2] = { coap_bound, coaps_bound };

	for (int dtls = 0; dtls < 2; dtls++) {
		const struct sockaddr *internal;
		socklen_t len;
		int r;

		server_internal_address(emu->server, dtls, &internal, &len);
		r = relay_add_listener(emu->relay, listen[dtls], internal, len, bound[dtls], size);
		if (r < 0) {
			emu_log("cannot listen on \"%s\": %s", listen[dtls], strerror(-r));
			return r;
		}
	}
	return 0;
}

static int setup(struct emulator *emu, const struct options *o)
{
	char coap_bound[80], coaps_bound[80];
	char *url;
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	r = sd_event_new(&emu->event);
	if (r >= 0)
		r = sd_event_add_signal(emu->event, NULL, SIGTERM, on_signal, NULL);
	if (r >= 0)
		r = sd_event_add_signal(emu->event, NULL, SIGINT, on_signal, NULL);
	if (r >= 0)
		r = relay_new(emu, &emu->relay);
	if (r < 0) {
		emu_log("cannot set up the event loop: %s", strerror(-r));
		return r;
	}

	r = output_new(emu, o->sink, o->mqtt, &emu->output);
	if (r >= 0)
		r = server_new(emu, &emu->server);
	if (r >= 0)
		r = open_listeners(emu, o, coap_bound, coaps_bound, sizeof(coap_bound));
	if (r < 0)
		return r;
	url = o->advertise ? xstrdup(o->advertise) : xasprintf("coaps://%s", coaps_bound);
	server_set_advertised_url(emu->server, url);
	free(url);

	r = run_exec(emu, o);
	if (r < 0)
		return r;
	if (o->control) {
		r = control_new(emu, o->control, &emu->control);
		if (r < 0) {
			emu_log("cannot listen on the control socket \"%s\": %s", o->control,
				strerror(-r));
			return r;
		}
	}
	emu_log("ready coap=%s coaps=%s control=%s", coap_bound, coaps_bound,
		o->control ? o->control : "-");
	sd_notify(false, "READY=1");
	return 0;
}

int main(int argc, char **argv)
{
	struct emulator emu = { 0 };
	struct options o;
	int r, status;

	if (parse_options(argc, argv, &o, &emu.verbose) < 0)
		return EXIT_USAGE;
	coap_startup();
	if (set_coap_log(o.coap_log) < 0)
		return EXIT_USAGE;
	r = registry_load(o.registry, &emu.registry);
	if (r < 0) {
		status = r == -EINVAL ? EXIT_CONFIG : EXIT_FAILURE;
		goto out;
	}

	r = setup(&emu, &o);
	if (r == -EINVAL)
		status = EXIT_USAGE;
	else if (r < 0)
		status = EXIT_FAILURE;
	else
		status = sd_event_loop(emu.event) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

	control_free(emu.control);
	relay_free(emu.relay);
	server_free(emu.server);
	output_free(emu.output);
	registry_free(emu.registry);
	sd_event_unref(emu.event);
out:
	coap_cleanup();
	free(o.shorthands[0]);
	free(o.shorthands[1]);
	return status;
}
