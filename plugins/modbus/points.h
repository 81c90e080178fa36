/* SPDX-License-Identifier: MIT */
/*
 * Points: what the configuration asks to read, checked and reduced to what the
 * planner (plan.h) and the decoder (decode.h) need. This is where every rule of the
 * configuration that the option tables cannot express lives: a type that does not
 * fit its register kind, options that do not apply to a type, addresses past the end
 * of the table, overlapping points, field names used twice, slaves named twice, unit
 * ids the transport cannot address, topics 1NCE would refuse.
 *
 * Pure: no I/O and no libmodbus. Mistakes go to a report callback with the address of
 * the conf member (or list element) at fault; the plugin turns that into
 * cg_conf_error(), which prints the FILE:LINE of that value, and the unit tests
 * collect them.
 */
#ifndef MODBUS_POINTS_H
#define MODBUS_POINTS_H

#include <coapgate/plugin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modbus_conf.h"

/* The protocol's limits of one read request (Modbus application protocol 1.1b, 6.1-6.4). */
#define MODBUS_REQUEST_MAX_REGISTERS 125
#define MODBUS_REQUEST_MAX_BITS	     2000

/* At most this many slaves on one bus (the unit ids 1..247, some polled twice). */
#define MODBUS_SLAVES_MAX 256

/* Longest slave name: names appear in log lines and status output. */
#define MODBUS_SLAVE_NAME_MAX 64

/* One point, checked. Strings are borrowed from the configuration. */
struct point {
	const char *name;
	enum point_kind kind;
	enum point_type type;
	uint16_t address;
	uint16_t count; /* registers (holding, input) or bits (coil, discrete) it spans */
	/*
	 * Numbers: the byte permutation, 2 * count letters ("CDAB": the first byte on the
	 * wire is the value's third most significant). Strings: "AB" or "BA", applied to
	 * each register. NULL for bool and bit.
	 */
	const char *order;
	uint8_t bit; /* TYPE_BIT: 0 (least significant) to 15 */
	bool scaled; /* scale or offset is not the identity: the field is f64 */
	double scale;
	/* 1 / scale when that is a whole number (scale 0.1: 10), else 0. x / 10 is the
	 * double nearest to the decimal result, x * 0.1 often is not (3 * 0.1 is
	 * 0.30000000000000004), and the longer number costs bytes on the wire. */
	double divisor;
	double offset;
	enum cg_field_type field_type; /* of the field it becomes */
};

/*
 * Called once per mistake: where is the conf member or list element at fault, message
 * the whole text (without FILE:LINE, which the caller adds).
 */
typedef void (*points_report_fn)(void *userdata, const void *where, const char *message);

struct points_reporter {
	points_report_fn report;
	void *userdata;
};

/*
 * Check the whole configuration (the bus options, every slave, every point) and
 * report every mistake found. Returns 0 when there were none, -EINVAL otherwise.
 */
int points_check_conf(const struct modbus_conf *conf, const struct points_reporter *rep);

/*
 * Reduce one slave's checked points to *ret_points, a malloc()ed array of
 * slave->points.count points in configuration order (the caller frees it). Only call
 * this after points_check_conf() succeeded. Returns 0 or -ENOMEM.
 */
int points_build(const struct modbus_slave_conf *slave, struct point **ret_points);

/* Registers (or bits) a value of type spans; 0 for TYPE_STRING, whose length says. */
unsigned points_type_width(enum point_type type);

#endif
