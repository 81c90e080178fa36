/* SPDX-License-Identifier: MIT */
/*
 * nce-emulator's shared state: the parts (registry, simulated network, CoAP server,
 * output, control socket) and the counters and switches they all read. Everything runs
 * on one thread, the sd-event loop's; only the MQTT client has a thread of its own,
 * inside libmosquitto. See README.md for what the emulator promises.
 */
#ifndef NCE_EMULATOR_H
#define NCE_EMULATOR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

struct sd_event;
struct registry;
struct relay;
struct server;
struct output;
struct control;

/* 1NCE's limits (reference/1nce-coap-endpoint.txt). */
#define NCE_MAX_PAYLOAD		 1024
#define NCE_MAX_TOPIC		 253
#define NCE_MAX_QUERY		 255
#define NCE_EXCHANGE_LIFETIME_US (247ULL * 1000000ULL)
#define NCE_PSK_ROTATE_AFTER_US	 (300ULL * 1000000ULL)

/* Which requests an injected answer ("respond CODE N KIND") replaces. */
enum inject_kind {
	INJECT_ANY,
	INJECT_BOOTSTRAP,
	INJECT_DATA,
};

struct stats {
	uint64_t requests;
	uint64_t by_code[256]; /* index: the CoAP code byte, class << 5 | detail */
	uint64_t accepted;
	uint64_t duplicates;
	uint64_t injected;
	uint64_t bootstraps;
	uint64_t handshakes_started;
	uint64_t handshakes_ok;
	uint64_t handshakes_failed;
	uint64_t datagrams_in;
	uint64_t datagrams_out;
	uint64_t bytes_in;  /* UDP payload bytes from clients, dropped ones included */
	uint64_t bytes_out; /* and from the server towards them */
	uint64_t dropped_in;
	uint64_t dropped_out;
	uint64_t delayed;
	uint64_t mqtt_published;
	uint64_t mqtt_failed;
};

struct faults {
	double drop_in_pct;
	double drop_out_pct;
	uint64_t delay_us;
	uint64_t jitter_us;
	uint64_t silent_until_us; /* CLOCK_MONOTONIC; 0 = answering */
	uint64_t nat_timeout_us;  /* 0 = mappings are kept */
	uint8_t inject_code;	  /* the CoAP code byte */
	uint64_t inject_count;
	enum inject_kind inject_kind;
};

struct emulator {
	struct sd_event *event;
	struct registry *registry;
	struct relay *relay;
	struct server *server;
	struct output *output;
	struct control *control;
	struct faults faults;
	struct stats stats;
	uint64_t clock_offset_us; /* "clock +N": added to the emulator's clock */
	bool verbose;
};

/*
 * The emulator's clock in microseconds: CLOCK_MONOTONIC plus what "clock +N" added. It
 * drives the 5-minute rule and the duplicate window; the network simulation runs on
 * the real clock.
 */
uint64_t emulator_now_us(const struct emulator *emu);

/* One line on stderr, "nce-emulator: ...". emu_debug() prints only with --verbose. */
void emu_log(const char *format, ...) __attribute__((format(printf, 1, 2)));
void emu_debug(const struct emulator *emu, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Uniformly random in [0, 1) and in [0, n), from OpenSSL's generator. */
double emu_random_unit(void);
uint64_t emu_random_below(uint64_t n);

#endif
