// SPDX-License-Identifier: MIT
/*
 * The sink file and the MQTT publisher; see output.h. libmosquitto runs its network
 * loop in a thread of its own; mosquitto_publish() is safe to call from ours.
 */
#include "output.h"

#include "emulator.h"
#include "registry.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <mosquitto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MQTT_DEFAULT_PORT 1883
#define MQTT_KEEPALIVE_S  30

struct output {
	struct emulator *emu;
	FILE *sink;
	struct mosquitto *mqtt;
};

static char *base64(const uint8_t *data, size_t len)
{
	char *text = xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)text, data, (int)len);
	return text;
}

/* An event id like 1NCE's: "1-" seconds in hex "-" 24 random hex digits. */
static void event_id(char *buf, size_t size)
{
	snprintf(buf, size, "1-%08llx-%012" PRIx64 "%012" PRIx64, (unsigned long long)time(NULL),
		 emu_random_below(1ULL << 48), emu_random_below(1ULL << 48));
}

static char *event_json(const struct message *m)
{
	char id[64], received[32];
	char *value = base64(m->payload, m->payload_len);
	json_t *device, *payload, *event;
	char *text;

	event_id(id, sizeof(id));
	snprintf(received, sizeof(received), "%" PRId64, now_realtime_ms());
	device = json_pack("{s:s, s:s}", "iccid", m->device->iccid, "ip", m->client_ip);
	if (m->device->imsi)
		json_object_set_new(device, "imsi", json_string(m->device->imsi));
	payload =
	    json_pack("{s:s, s:s, s:s}", "type", "STRING", "encoding", "base64", "value", value);
	if (m->topic)
		json_object_set_new(payload, "topic", json_string(m->topic));
	event =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:{s:i, s:b, s:s, s:i}}", "id", id,
		      "type", "TELEMETRY_DATA", "version", "1.0.0", "source", "COAP", "received",
		      received, "device", device, "payload", payload, "coap", "mid", (int)m->mid,
		      "dtls", m->dtls, "path", m->path, "port", (int)m->client_port);
	text = json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(event);
	free(value);
	return text;
}

static void publish(struct output *output, const struct message *m, const char *json)
{
	char *topic =
	    m->topic ? xasprintf("%s/%s", m->device->iccid, m->topic) : xstrdup(m->device->iccid);
	int r = mosquitto_publish(output->mqtt, NULL, topic, (int)strlen(json), json, 1, false);

	if (r == MOSQ_ERR_SUCCESS) {
		output->emu->stats.mqtt_published++;
	} else {
		output->emu->stats.mqtt_failed++;
		emu_log("mqtt: cannot publish to \"%s\": %s", topic, mosquitto_strerror(r));
	}
	free(topic);
}

void output_message(struct output *output, const struct message *m)
{
	char *json;

	if (!output->sink && !output->mqtt)
		return;
	json = event_json(m);
	/* One write per line and a flush, so a reader never sees half a line. */
	if (output->sink && (fprintf(output->sink, "%s\n", json) < 0 || fflush(output->sink)))
		emu_log("sink: cannot write: %m");
	if (output->mqtt)
		publish(output, m, json);
	free(json);
}

static int mqtt_connect(struct output *output, const char *target)
{
	char host[256];
	const char *colon = strrchr(target, ':');
	int port = MQTT_DEFAULT_PORT, r;
	size_t n = colon ? (size_t)(colon - target) : strlen(target);

	if (n == 0 || n >= sizeof(host) || (colon && (port = atoi(colon + 1)) <= 0)) {
		emu_log("--mqtt \"%s\" is not HOST[:PORT]", target);
		return -EINVAL;
	}
	memcpy(host, target, n);
	host[n] = '\0';

	mosquitto_lib_init();
	output->mqtt = mosquitto_new(NULL, true, NULL);
	if (!output->mqtt)
		return -ENOMEM;
	/* The loop thread reconnects after a broker restart, backing off up to 10 s. */
	mosquitto_reconnect_delay_set(output->mqtt, 1, 10, true);
	r = mosquitto_connect(output->mqtt, host, port, MQTT_KEEPALIVE_S);
	if (r == MOSQ_ERR_SUCCESS)
		r = mosquitto_loop_start(output->mqtt);
	if (r != MOSQ_ERR_SUCCESS) {
		emu_log("mqtt: cannot connect to %s:%d: %s", host, port,
			r == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(r));
		return -ECONNREFUSED;
	}
	return 0;
}

int output_new(struct emulator *emu, const char *sink_path, const char *mqtt,
	       struct output **ret_output)
{
	struct output *output = xcalloc(1, sizeof(*output));
	int r;

	output->emu = emu;
	if (sink_path) {
		output->sink = fopen(sink_path, "ae");
		if (!output->sink) {
			r = -errno;
			emu_log("cannot open the sink \"%s\": %m", sink_path);
			output_free(output);
			return r;
		}
	}
	if (mqtt) {
		r = mqtt_connect(output, mqtt);
		if (r < 0) {
			output_free(output);
			return r;
		}
	}
	*ret_output = output;
	return 0;
}

void output_free(struct output *output)
{
	if (!output)
		return;
	if (output->sink)
		fclose(output->sink);
	if (output->mqtt) {
		mosquitto_disconnect(output->mqtt);
		mosquitto_loop_stop(output->mqtt, false);
		mosquitto_destroy(output->mqtt);
		mosquitto_lib_cleanup();
	}
	free(output);
}
