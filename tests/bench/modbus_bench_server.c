// SPDX-License-Identifier: MIT
/*
 * modbus_bench_server: a Modbus TCP server in C (libmodbus) for
 * tests/bench/modbus_bench.py, next to pymodbus: when the plugin polls a server that
 * answers in microseconds, the benchmark measures the plugin, not the server.
 *
 *   modbus_bench_server [PORT]
 *
 * Listens on 127.0.0.1:PORT (0 or none: a free port) and prints "ready PORT". Every
 * address of every table exists (65536 registers, 65536 bits, set to a pattern), so any
 * request with a valid count is answered. One client at a time; when it goes, the next
 * is accepted. On SIGTERM or SIGINT it prints "requests N" (the requests answered)
 * and exits. Not a test and not part of the product.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

int main(int argc, char **argv)
{
	uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	unsigned long long requests = 0;
	modbus_mapping_t *map;
	struct sigaction act;
	modbus_t *ctx;
	int listener;

	ctx = modbus_new_tcp("127.0.0.1", argc > 1 ? atoi(argv[1]) : 0);
	map = modbus_mapping_new(65536, 65536, 65536, 65536);
	if (!ctx || !map) {
		fprintf(stderr, "modbus_bench_server: %s\n", modbus_strerror(errno));
		return 1;
	}
	for (int i = 0; i < 65536; i++) {
		map->tab_registers[i] = (uint16_t)(i * 7919);
		map->tab_input_registers[i] = (uint16_t)(i * 104729);
		map->tab_bits[i] = (uint8_t)(i % 3 == 0);
		map->tab_input_bits[i] = (uint8_t)(i % 5 == 0);
	}
	listener = modbus_tcp_listen(ctx, 1);
	if (listener < 0 || getsockname(listener, (struct sockaddr *)&sa, &len) < 0) {
		fprintf(stderr, "modbus_bench_server: cannot listen: %s\n", modbus_strerror(errno));
		return 1;
	}
	/* No SA_RESTART: a signal ends the blocking accept() or recv() at once. */
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal;
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	printf("ready %u\n", ntohs(sa.sin_port));
	fflush(stdout);

	while (!stopping) {
		if (modbus_tcp_accept(ctx, &listener) < 0)
			continue;
		while (!stopping) {
			int n = modbus_receive(ctx, query);

			if (n < 0)
				break;
			if (n > 0 && modbus_reply(ctx, query, n, map) >= 0)
				requests++;
		}
		modbus_close(ctx);
	}
	printf("requests %llu\n", requests);
	close(listener);
	modbus_mapping_free(map);
	modbus_free(ctx);
	return 0;
}
