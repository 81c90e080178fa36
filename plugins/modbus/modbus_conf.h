/* SPDX-License-Identifier: MIT */
/*
 * The Modbus input's configuration as the daemon parses it from the option tables in
 * modbus.c: one instance is one bus (a TCP connection or a serial line), with a list
 * of slaves, each with a list of points. The enums are the indexes of the option
 * tables' choices, in the same order; the tables and these enums change together.
 */
#ifndef MODBUS_CONF_H
#define MODBUS_CONF_H

#include <coapgate/plugin.h>
#include <stdbool.h>
#include <stdint.h>

enum bus_transport {
	TRANSPORT_TCP,
	TRANSPORT_RTU,
};

enum serial_parity {
	PARITY_EVEN,
	PARITY_NONE,
	PARITY_ODD,
};

enum serial_rts {
	RTS_NONE,
	RTS_UP,
	RTS_DOWN,
};

/* The four tables of the Modbus data model; requests are planned in this order. */
enum point_kind {
	KIND_HOLDING,
	KIND_INPUT,
	KIND_COIL,
	KIND_DISCRETE,
};

enum point_type {
	TYPE_INT16,
	TYPE_UINT16,
	TYPE_INT32,
	TYPE_UINT32,
	TYPE_INT64,
	TYPE_UINT64,
	TYPE_FLOAT32,
	TYPE_FLOAT64,
	TYPE_BOOL,
	TYPE_BIT,
	TYPE_STRING,
};

/*
 * Byte orders, named by the bytes of the value as they arrive on the wire: A is the
 * most significant byte of the value. ABCD (the default) is big-endian at any width.
 * The names are the permutations decode.c applies (README.md has the table).
 */
enum point_order {
	ORDER_ABCD,
	ORDER_CDAB,
	ORDER_BADC,
	ORDER_DCBA,
	ORDER_AB,
	ORDER_BA,
	ORDER_ABCDEFGH,
	ORDER_GHEFCDAB,
	ORDER_BADCFEHG,
	ORDER_HGFEDCBA,
};

extern const char *const point_kind_names[];  /* "holding", ..., NULL */
extern const char *const point_type_names[];  /* "int16", ..., NULL */
extern const char *const point_order_names[]; /* "ABCD", ..., NULL */

/* bit and length when not given (their option ranges exclude these). */
#define POINT_NO_BIT	(-1)
#define POINT_NO_LENGTH 0

struct modbus_point_conf {
	const char *name;
	int kind; /* enum point_kind */
	int64_t address;
	int type;  /* enum point_type */
	int order; /* enum point_order */
	int64_t bit;
	int64_t length;
	double scale;
	double offset;
};

struct modbus_slave_conf {
	const char *name; /* NULL: "unit<N>" */
	int64_t unit;
	const char *topic; /* NULL: the instance's */
	uint64_t interval_usec;
	int64_t max_gap;
	struct cg_list points; /* of struct modbus_point_conf */
};

struct modbus_conf {
	int transport; /* enum bus_transport */
	const char *host;
	int64_t port;
	const char *device;
	int64_t baud;
	int parity; /* enum serial_parity */
	int64_t data_bits;
	int64_t stop_bits;
	bool rs485;
	int rts; /* enum serial_rts */
	uint64_t response_timeout_usec;
	uint64_t byte_timeout_usec;
	uint64_t pause_usec;
	bool coalesce;
	uint64_t backoff_max_usec;
	uint64_t summary_interval_usec;
	struct cg_list slaves; /* of struct modbus_slave_conf */
};

#endif
