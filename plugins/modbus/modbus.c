// SPDX-License-Identifier: MIT
/*
 * modbus: readings from Modbus TCP and RTU slaves, polled with libmodbus; README.md
 * is the user's manual. This file is the plugin's face to the daemon: the option
 * tables, init, run, destroy. points.c checks the configuration, plan.c plans the
 * requests, decode.c turns answers into fields, poll.c runs the bus, bus.c is the
 * only caller of libmodbus.
 */
#include <coapgate/plugin.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "modbus_conf.h"
#include "points.h"
#include "poll.h"

static const char *const transport_names[] = { "tcp", "rtu", NULL };
static const char *const parity_names[] = { "even", "none", "odd", NULL };
static const char *const rts_names[] = { "none", "up", "down", NULL };

#define P(member) offsetof(struct modbus_point_conf, member)

static const struct cg_option point_options[] = {
	{ .key = "name",
	  .type = CG_OPT_STRING,
	  .offset = P(name),
	  .flags = CG_OPT_REQUIRED,
	  .help = "The value's field name in the reading (1 to 64 of A-Z a-z 0-9 and _ . -)." },
	{ .key = "kind",
	  .type = CG_OPT_ENUM,
	  .offset = P(kind),
	  .choices = point_kind_names,
	  .flags = CG_OPT_REQUIRED,
	  .help = "The table: holding or input registers, coils or discrete inputs." },
	{ .key = "address",
	  .type = CG_OPT_INT,
	  .offset = P(address),
	  .min = 0,
	  .max = 65535,
	  .flags = CG_OPT_REQUIRED,
	  .help = "The protocol address, counted from 0: register 40001 of a 1-based map "
		  "is holding address 0." },
	{ .key = "type",
	  .type = CG_OPT_ENUM,
	  .offset = P(type),
	  .choices = point_type_names,
	  .flags = CG_OPT_REQUIRED,
	  .help = "How to read the value: coils and discrete inputs are bool; registers hold "
		  "numbers, bool (not 0), a bit, or a string." },
	{ .key = "order",
	  .type = CG_OPT_ENUM,
	  .offset = P(order),
	  .default_value = "ABCD",
	  .choices = point_order_names,
	  .help = "Byte order on the wire, A the most significant byte: ABCD is big-endian at "
		  "any width; AB/BA for 16 bits and strings, 4 letters for 32, 8 for 64 bits." },
	{ .key = "bit",
	  .type = CG_OPT_INT,
	  .offset = P(bit),
	  .default_value = "-1",
	  .help = "For type bit: which bit of the register, 0 (least significant) to 15; -1: "
		  "none." },
	{ .key = "length",
	  .type = CG_OPT_INT,
	  .offset = P(length),
	  .min = 1,
	  .max = MODBUS_REQUEST_MAX_REGISTERS,
	  .help = "For type string: its registers, two characters each." },
	{ .key = "scale",
	  .type = CG_OPT_FLOAT,
	  .offset = P(scale),
	  .default_value = "1.0",
	  .help = "Multiply the value by this; other than 1 makes the field a float." },
	{ .key = "offset",
	  .type = CG_OPT_FLOAT,
	  .offset = P(offset),
	  .default_value = "0.0",
	  .help = "Then add this; other than 0 makes the field a float." },
	{ 0 },
};

#undef P
#define S(member) offsetof(struct modbus_slave_conf, member)

static const struct cg_option slave_options[] = {
	{ .key = "unit",
	  .type = CG_OPT_INT,
	  .offset = S(unit),
	  .min = 0,
	  .max = 255,
	  .flags = CG_OPT_REQUIRED,
	  .help = "The unit id: 1 to 247 on a serial line; on TCP also 0, or 255 for the "
		  "device itself." },
	{ .key = "name",
	  .type = CG_OPT_STRING,
	  .offset = S(name),
	  .help = "A name for logs and status, unique on the bus; default \"unit<N>\"." },
	{ .key = "topic",
	  .type = CG_OPT_STRING,
	  .offset = S(topic),
	  .help = "The topic of this slave's readings; default: the instance's topic." },
	{ .key = "interval",
	  .type = CG_OPT_DURATION,
	  .offset = S(interval_usec),
	  .default_value = "10s",
	  .min = 1000,		/* 1 ms */
	  .max = 86400000000LL, /* 1 day */
	  .help = "How often to poll the slave: one reading per poll." },
	{ .key = "max_gap",
	  .type = CG_OPT_INT,
	  .offset = S(max_gap),
	  .default_value = "0",
	  .min = 0,
	  .max = MODBUS_REQUEST_MAX_BITS - 1,
	  .help = "Read up to this many unused registers (or bits) between two points to save "
		  "a request; some slaves refuse addresses they do not have." },
	{ .key = "points",
	  .type = CG_OPT_LIST,
	  .offset = S(points),
	  .sub = point_options,
	  .elem_size = sizeof(struct modbus_point_conf),
	  .flags = CG_OPT_REQUIRED,
	  .help = "The values to read, 1 to 64: one field of the reading each." },
	{ 0 },
};

#undef S
#define C(member) offsetof(struct modbus_conf, member)

static const struct cg_option modbus_options[] = {
	{ .key = "transport",
	  .type = CG_OPT_ENUM,
	  .offset = C(transport),
	  .default_value = "tcp",
	  .choices = transport_names,
	  .help = "tcp: Modbus TCP to host:port; rtu: Modbus RTU on the serial port device." },
	{ .key = "host",
	  .type = CG_OPT_STRING,
	  .offset = C(host),
	  .help = "tcp: the server's (or gateway's) name or address." },
	{ .key = "port",
	  .type = CG_OPT_INT,
	  .offset = C(port),
	  .default_value = "502",
	  .min = 1,
	  .max = 65535,
	  .help = "tcp: the server's port." },
	{ .key = "device",
	  .type = CG_OPT_STRING,
	  .offset = C(device),
	  .help = "rtu: the serial port, best a stable name from /dev/serial/by-id/." },
	{ .key = "baud",
	  .type = CG_OPT_INT,
	  .offset = C(baud),
	  .default_value = "9600",
	  .min = 1200,
	  .max = 921600,
	  .help = "rtu: bits per second, a standard rate (1200 to 921600)." },
	{ .key = "parity",
	  .type = CG_OPT_ENUM,
	  .offset = C(parity),
	  .default_value = "even",
	  .choices = parity_names,
	  .help = "rtu: the parity bit; the Modbus standard is even." },
	{ .key = "data_bits",
	  .type = CG_OPT_INT,
	  .offset = C(data_bits),
	  .default_value = "8",
	  .min = 7,
	  .max = 8,
	  .help = "rtu: data bits per character; RTU frames need 8." },
	{ .key = "stop_bits",
	  .type = CG_OPT_INT,
	  .offset = C(stop_bits),
	  .default_value = "1",
	  .min = 1,
	  .max = 2,
	  .help = "rtu: stop bits; the standard asks for 2 when parity is none." },
	{ .key = "rs485",
	  .type = CG_OPT_BOOL,
	  .offset = C(rs485),
	  .default_value = "false",
	  .help = "rtu: switch the port to the kernel's RS-485 mode (TIOCSRS485), for UARTs "
		  "whose driver drives the transceiver." },
	{ .key = "rts",
	  .type = CG_OPT_ENUM,
	  .offset = C(rts),
	  .default_value = "none",
	  .choices = rts_names,
	  .help = "rtu: drive RTS around each request from user space, up or down while "
		  "sending, for transceivers on RTS without kernel support." },
	{ .key = "response_timeout",
	  .type = CG_OPT_DURATION,
	  .offset = C(response_timeout_usec),
	  .default_value = "1s",
	  .min = 10000,	   /* 10 ms */
	  .max = 10000000, /* 10 s */
	  .help = "Wait this long for an answer (and for a TCP connection)." },
	{ .key = "byte_timeout",
	  .type = CG_OPT_DURATION,
	  .offset = C(byte_timeout_usec),
	  .default_value = "500ms",
	  .min = 0,
	  .max = 10000000, /* 10 s */
	  .help = "Within an answer, wait this long for the next byte; 0: only the response "
		  "timeout applies." },
	{ .key = "pause",
	  .type = CG_OPT_DURATION,
	  .offset = C(pause_usec),
	  .default_value = "0",
	  .min = 0,
	  .max = 10000000, /* 10 s */
	  .help = "Silence on the bus between the end of one request and the next, for every "
		  "slave and after errors too." },
	{ .key = "coalesce",
	  .type = CG_OPT_BOOL,
	  .offset = C(coalesce),
	  .default_value = "true",
	  .help = "Read neighbouring points with one request; false: one request per point." },
	{ .key = "backoff_max",
	  .type = CG_OPT_DURATION,
	  .offset = C(backoff_max_usec),
	  .default_value = "1min",
	  .min = 1000,		/* 1 ms */
	  .max = 86400000000LL, /* 1 day */
	  .help = "A slave that fails is polled again after its interval, doubling up to this." },
	{ .key = "summary_interval",
	  .type = CG_OPT_DURATION,
	  .offset = C(summary_interval_usec),
	  .default_value = "1h",
	  .min = 0,
	  .max = 86400000000LL * 7, /* 1 week */
	  .help = "Log the counters of the bus this often, and of each slave that failed; 0: "
		  "never." },
	{ .key = "slaves",
	  .type = CG_OPT_LIST,
	  .offset = C(slaves),
	  .sub = slave_options,
	  .elem_size = sizeof(struct modbus_slave_conf),
	  .flags = CG_OPT_REQUIRED,
	  .help = "The slaves on this bus, 1 to 256; one reading per slave and poll." },
	{ 0 },
};

#undef C

static void report_conf_error(void *userdata, const void *where, const char *message)
{
	cg_conf_error(userdata, where, "%s", message);
}

static int modbus_init(struct cg_instance *inst, const void *conf, void **ret_state)
{
	const struct points_reporter reporter = { .report = report_conf_error, .userdata = inst };
	struct poller *p;
	int r;

	r = points_check_conf(conf, &reporter);
	if (r < 0)
		return r;
	r = poller_new(inst, conf, &p);
	if (r < 0)
		return r;
	*ret_state = p;
	return 0;
}

static int modbus_run(struct cg_instance *inst, void *state)
{
	(void)inst;
	return poller_run(state);
}

static void modbus_destroy(void *state)
{
	poller_free(state);
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,
	.name = "modbus",
	.version = "1.0",
	.description = "Modbus TCP and RTU slaves, polled: one reading per slave and poll.",
	.options = modbus_options,
	.conf_size = sizeof(struct modbus_conf),
	.init = modbus_init,
	.run = modbus_run,
	.destroy = modbus_destroy,
};
