/* SPDX-License-Identifier: MIT */
/*
 * The serial input's shared state: its configuration as the daemon parsed it, what
 * init() derived from it (serial.c), and what the run loop (run.c) counts and logs.
 */
#ifndef SERIAL_H
#define SERIAL_H

#include <coapgate/plugin.h>
#include <stdbool.h>
#include <stdint.h>

#include "formats.h"
#include "framer.h"
#include "port.h"

/* Filled by the daemon from the option table in serial.c. */
struct serial_conf {
	const char *device;
	int64_t baud;
	int64_t data_bits;
	int parity; /* enum port_parity */
	int64_t stop_bits;
	int flow_control; /* enum port_flow */
	bool exclusive;
	bool rs485;
	bool rs485_rts_on_send;
	int framing; /* enum framer_mode */
	const char *terminator;
	const char *terminator_hex;
	uint64_t max_frame;
	uint64_t idle_gap_usec;
	int format;		/* enum serial_format */
	struct cg_list columns; /* struct field_spec, csv */
	const char *delimiter;
	const char *pattern;
	struct cg_list fields; /* struct field_spec, regex and kv */
	const char *pair_separators;
	const char *key_separators;
	uint64_t log_interval_usec;
};

/* What became of the frames of one run, and of all runs. */
struct serial_counts {
	uint64_t frames;   /* ends of frames, empty ones not counted */
	uint64_t readings; /* taken by the daemon */
	uint64_t bad;	   /* rejected: did not parse, too long */
	uint64_t ignored;  /* parsed, no reading: another NMEA sentence */
	uint64_t cut;	   /* partial frames discarded at open or close */
	uint64_t dropped;  /* readings the daemon did not take (its queue is full) */
};

/* Reasons and previews kept for the next summary of bad frames. */
#define SERIAL_WHY_MAX	   256
#define SERIAL_PREVIEW_MAX 24 /* bytes of a frame shown in hex */

struct serial {
	struct cg_instance *inst;
	const struct serial_conf *conf;
	struct port_settings port;
	struct framer *framer;
	struct frame_format format;
	struct regex_format *regex;
	struct message msg;

	struct serial_counts run, total;
	bool absent;   /* the last open found no device; logged once */
	bool blocked;  /* waiting for room in a full queue (when_full = block) */
	bool stopping; /* asked to stop while waiting for room */

	/* Bad frames: one is logged at once, then the rest are counted until
	 * log_interval has passed, and summed up with the latest one. */
	uint64_t bad_quiet_until_usec; /* CLOCK_MONOTONIC */
	uint64_t bad_held;
	char bad_held_size[48]; /* "123 bytes", "more than 4096 bytes" */
	char bad_held_why[SERIAL_WHY_MAX];
	char bad_held_preview[4 * SERIAL_PREVIEW_MAX + 8];
};

/* run() of the plugin: open the device, read frames until stopped or unplugged. */
int serial_run(struct cg_instance *inst, void *state);

#endif
