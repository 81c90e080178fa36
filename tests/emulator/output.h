/* SPDX-License-Identifier: MIT */
/*
 * Where accepted messages go: one JSON line each in the sink file, shaped like 1NCE's
 * Cloud Integrator TELEMETRY_DATA event, and the same JSON published to an MQTT broker
 * on ICCID/TOPIC (README.md, "Output"). Both are optional.
 */
#ifndef NCE_OUTPUT_H
#define NCE_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct emulator;
struct device;
struct output;

/* One accepted message and where it came from. */
struct message {
	const struct device *device;
	const char *client_ip;
	uint16_t client_port;
	const char *topic; /* NULL when the request had no t */
	const uint8_t *payload;
	size_t payload_len;
	uint16_t mid;
	bool dtls;
	const char *path; /* "/" or "/data" */
};

/*
 * Open the sink (appending; NULL for none) and connect to the MQTT broker
 * ("HOST[:PORT]"; NULL for none). Returns 0 or -errno after logging why.
 */
int output_new(struct emulator *emu, const char *sink_path, const char *mqtt,
	       struct output **ret_output);
void output_free(struct output *output);

/* Write and publish one message; failures are counted and logged, never fatal. */
void output_message(struct output *output, const struct message *m);

#endif
