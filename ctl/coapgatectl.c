// SPDX-License-Identifier: MIT
/*
 * coapgatectl: the command-line companion of coapgated. Commands are a table, as in
 * wireguard-tools' wg: each entry names a command, its function and one line of help.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

#ifndef COAPGATE_VERSION
#define COAPGATE_VERSION "unknown"
#endif

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	{ "queue", ctl_queue, "inspect a disk queue offline: verify, dump" },
	{ "send", ctl_send, "send readings to a running coapgated's unixsock input" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: coapgatectl COMMAND [ARGS...]\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'coapgatectl COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CTL_EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("coapgatectl %s\n", COAPGATE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "coapgatectl: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return CTL_EXIT_USAGE;
}
