// SPDX-License-Identifier: MIT
/*
 * Checking the Modbus input's configuration; see points.h. Each check reports the
 * value at fault and goes on, so that one `coapgated -t` shows every mistake.
 */
#include "points.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reading.h"
#include "topic.h"

const char *const point_kind_names[] = { "holding", "input", "coil", "discrete", NULL };
const char *const point_type_names[] = { "int16", "uint16", "int32",   "uint32",
					 "int64", "uint64", "float32", "float64",
					 "bool",  "bit",    "string",  NULL };
const char *const point_order_names[] = { "ABCD",     "CDAB",	  "BADC",     "DCBA",
					  "AB",	      "BA",	  "ABCDEFGH", "GHEFCDAB",
					  "BADCFEHG", "HGFEDCBA", NULL };

/* What kind of table a point reads: 16-bit registers or single bits. */
static bool kind_is_bits(enum point_kind kind)
{
	return kind == KIND_COIL || kind == KIND_DISCRETE;
}

unsigned points_type_width(enum point_type type)
{
	switch (type) {
	case TYPE_INT16:
	case TYPE_UINT16:
	case TYPE_BOOL:
	case TYPE_BIT:
		return 1;
	case TYPE_INT32:
	case TYPE_UINT32:
	case TYPE_FLOAT32:
		return 2;
	case TYPE_INT64:
	case TYPE_UINT64:
	case TYPE_FLOAT64:
		return 4;
	case TYPE_STRING:
		return 0;
	}
	return 0;
}

static bool type_is_number(enum point_type type)
{
	return type != TYPE_BOOL && type != TYPE_BIT && type != TYPE_STRING;
}

static bool type_is_float(enum point_type type)
{
	return type == TYPE_FLOAT32 || type == TYPE_FLOAT64;
}

struct checker {
	const struct points_reporter *rep; /* NULL: build without reporting */
	const char *slave;		   /* the slave's name, for messages */
	int r;
};

static void report(struct checker *c, const void *where, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct checker *c, const void *where, const char *format, ...)
{
	char message[512];
	va_list ap;

	c->r = -EINVAL;
	if (!c->rep)
		return;
	va_start(ap, format);
	vsnprintf(message, sizeof(message), format, ap);
	va_end(ap);
	c->rep->report(c->rep->userdata, where, message);
}

/*
 * The permutation for a point's order, or NULL when none applies. ABCD, the default,
 * means big-endian at every width. Other names must have the width of the value: a
 * 32-bit name on a 64-bit value is refused with its analogue rather than guessed.
 */
static const char *resolve_order(struct checker *c, const struct modbus_point_conf *p,
				 unsigned width)
{
	static const char *const analogue64[] = {
		[ORDER_CDAB] = "GHEFCDAB",
		[ORDER_BADC] = "BADCFEHG",
		[ORDER_DCBA] = "HGFEDCBA",
	};
	const char *name = point_order_names[p->order];
	const char *type = point_type_names[p->type];

	if (p->type == TYPE_BOOL || p->type == TYPE_BIT) {
		if (p->order != ORDER_ABCD)
			report(c, &p->order,
			       "slave \"%s\": point \"%s\": order does not apply to type \"%s\"",
			       c->slave, p->name, type);
		return NULL;
	}
	if (p->order == ORDER_ABCD)
		return p->type == TYPE_STRING ? "AB" : (width == 4 ? "ABCDEFGH" : name);
	if (p->type == TYPE_STRING || width == 1) {
		if (p->order == ORDER_AB || p->order == ORDER_BA)
			return name;
		report(c, &p->order,
		       "slave \"%s\": point \"%s\": order \"%s\" does not fit type \"%s\", "
		       "%s: use \"AB\" or \"BA\"",
		       c->slave, p->name, name, type,
		       p->type == TYPE_STRING ? "whose registers each hold two characters"
					      : "a single register");
		return NULL;
	}
	if (strlen(name) == 2 * width)
		return name;
	if (width == 4 && p->order <= ORDER_DCBA)
		report(c, &p->order,
		       "slave \"%s\": point \"%s\": order \"%s\" is for 32-bit values; "
		       "the 64-bit analogue for type \"%s\" is \"%s\"",
		       c->slave, p->name, name, type, analogue64[p->order]);
	else
		report(c, &p->order,
		       "slave \"%s\": point \"%s\": order \"%s\" does not fit type \"%s\" of %u "
		       "registers: use %s",
		       c->slave, p->name, name, type, width,
		       width == 2 ? "\"ABCD\", \"CDAB\", \"BADC\" or \"DCBA\""
				  : "\"ABCDEFGH\", \"GHEFCDAB\", \"BADCFEHG\" or \"HGFEDCBA\"");
	return NULL;
}

/* See struct point's divisor. */
static double scale_divisor(double scale)
{
	double k;

	if (!isfinite(scale) || scale == 0.0 || fabs(scale) >= 1.0)
		return 0.0;
	k = nearbyint(1.0 / scale);
	return fabs(k) >= 2.0 && 1.0 / k == scale ? k : 0.0;
}

/* Check one point and reduce it; reports and leaves c->r at -EINVAL on a mistake. */
static void compile_point(struct checker *c, const struct modbus_point_conf *p, struct point *ret)
{
	const char *type = point_type_names[p->type];
	const char *kind = point_kind_names[p->kind];
	unsigned width = points_type_width(p->type);
	bool identity = p->scale == 1.0 && p->offset == 0.0;

	*ret = (struct point){
		.name = p->name,
		.kind = p->kind,
		.type = p->type,
		.address = (uint16_t)p->address,
		.scale = p->scale,
		.divisor = scale_divisor(p->scale),
		.offset = p->offset,
		.scaled = !identity,
	};
	if (!reading_field_name_is_valid(p->name))
		report(c, &p->name,
		       "slave \"%s\": point name \"%s\" is not a field name: 1 to %d of "
		       "A-Z a-z 0-9 _ . -",
		       c->slave, p->name, CG_FIELD_NAME_MAX);

	if (kind_is_bits(p->kind) && p->type != TYPE_BOOL)
		report(c, &p->type,
		       "slave \"%s\": point \"%s\": type \"%s\" does not fit kind \"%s\": coils "
		       "and discrete inputs are single bits, use type \"bool\"",
		       c->slave, p->name, type, kind);

	if (p->type == TYPE_BIT && p->bit == POINT_NO_BIT)
		report(c, &p->bit, "slave \"%s\": point \"%s\": type \"bit\" needs bit = 0 to 15",
		       c->slave, p->name);
	else if (p->type == TYPE_BIT && (p->bit < 0 || p->bit > 15))
		report(c, &p->bit,
		       "slave \"%s\": point \"%s\": bit %lld is not in a register: 0 (least "
		       "significant) to 15",
		       c->slave, p->name, (long long)p->bit);
	else if (p->type != TYPE_BIT && p->bit != POINT_NO_BIT)
		report(c, &p->bit,
		       "slave \"%s\": point \"%s\": bit only applies to type \"bit\", not \"%s\"",
		       c->slave, p->name, type);
	if (p->type == TYPE_BIT && p->bit >= 0 && p->bit <= 15)
		ret->bit = (uint8_t)p->bit;

	if (p->type == TYPE_STRING && p->length == POINT_NO_LENGTH)
		report(c, &p->length,
		       "slave \"%s\": point \"%s\": type \"string\" needs length, in registers "
		       "(two characters each)",
		       c->slave, p->name);
	else if (p->type != TYPE_STRING && p->length != POINT_NO_LENGTH)
		report(c, &p->length,
		       "slave \"%s\": point \"%s\": length only applies to type \"string\"; "
		       "type \"%s\" has a fixed width",
		       c->slave, p->name, type);
	if (p->type == TYPE_STRING)
		width = (unsigned)p->length;

	ret->count = (uint16_t)width;
	ret->order = resolve_order(c, p, width);

	if (!isfinite(p->scale) || p->scale == 0.0)
		report(c, &p->scale,
		       "slave \"%s\": point \"%s\": scale must be a finite number other than 0",
		       c->slave, p->name);
	if (!isfinite(p->offset))
		report(c, &p->offset, "slave \"%s\": point \"%s\": offset must be a finite number",
		       c->slave, p->name);
	if (!type_is_number(p->type) && !identity)
		report(c, p->scale != 1.0 ? (const void *)&p->scale : (const void *)&p->offset,
		       "slave \"%s\": point \"%s\": scale and offset only apply to numbers, not "
		       "to type \"%s\"",
		       c->slave, p->name, type);

	if (width > 0 && p->address + (int64_t)width > 65536)
		report(c, &p->address,
		       "slave \"%s\": point \"%s\": %s at address %lld spans %u %s and ends past "
		       "address 65535",
		       c->slave, p->name, type, (long long)p->address, width,
		       kind_is_bits(p->kind) ? "bits" : "registers");

	if (p->type == TYPE_BOOL || p->type == TYPE_BIT)
		ret->field_type = CG_FIELD_BOOL;
	else if (p->type == TYPE_STRING)
		ret->field_type = CG_FIELD_STRING;
	else if (type_is_float(p->type) || ret->scaled)
		ret->field_type = CG_FIELD_F64;
	else
		ret->field_type = CG_FIELD_I64;
}

/*
 * Two points may share registers only when one of them is a `bit` point: a register
 * read whole and some of its bits, or several bits of one register. Anything else, a
 * value starting inside another or the same value read twice, is nearly always a
 * mistyped address.
 */
static void check_overlap(struct checker *c, const struct point *a,
			  const struct modbus_point_conf *pb, const struct point *b)
{
	unsigned a_end = (unsigned)a->address + a->count;
	unsigned b_end = (unsigned)b->address + b->count;
	const char *kind = point_kind_names[b->kind];

	if (a->kind != b->kind || a->count == 0 || b->count == 0 || a_end <= b->address ||
	    b_end <= a->address)
		return;
	if (a->type == TYPE_BIT && b->type == TYPE_BIT) {
		if (a->bit == b->bit)
			report(c, &pb->bit,
			       "slave \"%s\": point \"%s\" reads bit %u of %s register %u, as "
			       "point \"%s\" does",
			       c->slave, b->name, b->bit, kind, b->address, a->name);
		return;
	}
	if (a->type == TYPE_BIT || b->type == TYPE_BIT)
		return;
	if (a->address == b->address && a->count == b->count)
		report(c, &pb->address,
		       "slave \"%s\": point \"%s\" reads the same %s %s %u-%u as point \"%s\"",
		       c->slave, b->name, kind, kind_is_bits(b->kind) ? "bits" : "registers",
		       b->address, b_end - 1, a->name);
	else
		report(c, &pb->address,
		       "slave \"%s\": point \"%s\" (%s %u-%u) overlaps point \"%s\" (%s %u-%u)",
		       c->slave, b->name, kind, b->address, b_end - 1, a->name, kind, a->address,
		       a_end - 1);
}

static void slave_label(const struct modbus_slave_conf *s, char *buf, size_t size)
{
	if (s->name)
		snprintf(buf, size, "%s", s->name);
	else
		snprintf(buf, size, "unit%lld", (long long)s->unit);
}

static void check_slave(struct checker *c, const struct modbus_conf *conf,
			const struct modbus_slave_conf *s)
{
	const struct modbus_point_conf *pc = s->points.items;
	struct point *points;

	if (s->name &&
	    (!reading_field_name_is_valid(s->name) || strlen(s->name) > MODBUS_SLAVE_NAME_MAX))
		report(c, &s->name, "slave name \"%s\" must be 1 to %d of A-Z a-z 0-9 _ . -",
		       s->name, MODBUS_SLAVE_NAME_MAX);
	if (conf->transport == TRANSPORT_RTU && (s->unit < 1 || s->unit > 247))
		report(c, &s->unit,
		       "slave \"%s\": unit %lld cannot be polled on a serial line: 1 to 247 "
		       "(0 is the broadcast address, which nobody answers)",
		       c->slave, (long long)s->unit);
	else if (conf->transport == TRANSPORT_TCP && s->unit > 247 && s->unit != 255)
		report(c, &s->unit,
		       "slave \"%s\": unit %lld is not a Modbus unit id: 0 to 247, or 255 for "
		       "\"the device itself\" on Modbus TCP",
		       c->slave, (long long)s->unit);
	if (s->topic && !topic_is_valid(s->topic))
		report(c, &s->topic,
		       "slave \"%s\": topic \"%s\" is not a 1NCE OS topic: 1 to %d of A-Z a-z "
		       "0-9 _ /, no \"//\"",
		       c->slave, s->topic, CG_TOPIC_MAX);
	if (s->points.count == 0 || s->points.count > CG_FIELDS_MAX) {
		report(c, &s->points,
		       "slave \"%s\" has %zu points: a reading holds 1 to %d fields, one per "
		       "point; split the points over two slaves with the same unit",
		       c->slave, s->points.count, CG_FIELDS_MAX);
		if (s->points.count == 0)
			return;
	}

	points = calloc(s->points.count, sizeof(*points));
	if (!points) {
		c->r = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < s->points.count; i++)
		compile_point(c, &pc[i], &points[i]);
	for (size_t j = 1; j < s->points.count; j++) {
		for (size_t i = 0; i < j; i++) {
			if (strcmp(pc[i].name, pc[j].name) == 0) {
				report(c, &pc[j].name,
				       "slave \"%s\": point name \"%s\" is used twice: the fields "
				       "of a reading have unique names",
				       c->slave, pc[j].name);
				break;
			}
		}
		for (size_t i = 0; i < j; i++)
			check_overlap(c, &points[i], &pc[j], &points[j]);
	}
	free(points);
}

static bool baud_is_standard(int64_t baud)
{
	static const int64_t rates[] = { 1200,	2400,	4800,	9600,	19200, 38400,
					 57600, 115200, 230400, 460800, 921600 };

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		if (rates[i] == baud)
			return true;
	return false;
}

static void check_bus(struct checker *c, const struct modbus_conf *conf)
{
	if (conf->transport == TRANSPORT_TCP) {
		if (!conf->host || !conf->host[0])
			report(c, &conf->host, "transport \"tcp\" needs host");
		else if (strlen(conf->host) > 253)
			report(c, &conf->host,
			       "host is longer than a DNS name can be (253 characters)");
		if (conf->device)
			report(c, &conf->device,
			       "device is for transport \"rtu\"; a \"tcp\" bus has host and port");
		return;
	}
	if (conf->host)
		report(c, &conf->host, "host is for transport \"tcp\"; an \"rtu\" bus has device");
	if (!conf->device || !conf->device[0])
		report(c, &conf->device, "transport \"rtu\" needs device, the serial port");
	else if (conf->device[0] != '/')
		report(c, &conf->device, "device \"%s\" must be an absolute path", conf->device);
	if (!baud_is_standard(conf->baud))
		report(c, &conf->baud,
		       "baud %lld is not a standard rate: 1200, 2400, 4800, 9600, 19200, 38400, "
		       "57600, 115200, 230400, 460800 or 921600",
		       (long long)conf->baud);
	if (conf->rs485 && conf->rts != RTS_NONE)
		report(c, &conf->rts,
		       "rts and rs485 = true exclude each other: in RS-485 mode the kernel "
		       "drives RTS");
}

int points_check_conf(const struct modbus_conf *conf, const struct points_reporter *rep)
{
	const struct modbus_slave_conf *slaves = conf->slaves.items;
	struct checker c = { .rep = rep };
	char name[MODBUS_SLAVE_NAME_MAX + 32], other[MODBUS_SLAVE_NAME_MAX + 32];

	check_bus(&c, conf);
	if (conf->slaves.count == 0 || conf->slaves.count > MODBUS_SLAVES_MAX)
		report(&c, &conf->slaves, "a bus has 1 to %d slaves, not %zu", MODBUS_SLAVES_MAX,
		       conf->slaves.count);
	for (size_t j = 0; j < conf->slaves.count; j++) {
		slave_label(&slaves[j], name, sizeof(name));
		c.slave = name;
		check_slave(&c, conf, &slaves[j]);
		if (c.r == -ENOMEM)
			return -ENOMEM;
		for (size_t i = 0; i < j; i++) {
			slave_label(&slaves[i], other, sizeof(other));
			if (strcmp(name, other) == 0) {
				report(&c,
				       slaves[j].name ? (const void *)&slaves[j].name
						      : (const void *)&slaves[j],
				       "slave name \"%s\" is used twice%s", name,
				       slaves[j].name ? ""
						      : ": give slaves of the same unit a name");
				break;
			}
		}
	}
	return c.r;
}

int points_build(const struct modbus_slave_conf *slave, struct point **ret_points)
{
	const struct modbus_point_conf *pc = slave->points.items;
	struct checker c = { .slave = slave->name };
	struct point *points;

	points = calloc(slave->points.count ? slave->points.count : 1, sizeof(*points));
	if (!points)
		return -ENOMEM;
	for (size_t i = 0; i < slave->points.count; i++)
		compile_point(&c, &pc[i], &points[i]);
	*ret_points = points;
	return 0;
}
