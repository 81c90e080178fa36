/* SPDX-License-Identifier: MIT */
/*
 * Request planning: which read requests one poll of a slave sends. Points of the same
 * kind are sorted by address and merged into as few requests as the protocol allows
 * (at most 125 registers or 2000 bits each), bridging gaps of up to max_gap unused
 * registers or bits. A point is never split over two requests, so each value comes
 * from one answer. With coalescing off, every point is a request of its own (the
 * benchmark's baseline).
 *
 * Pure: no I/O, no libmodbus, no logging.
 */
#ifndef MODBUS_PLAN_H
#define MODBUS_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "points.h"

struct plan_limits {
	unsigned max_registers; /* per request; MODBUS_REQUEST_MAX_REGISTERS */
	unsigned max_bits;	/* per request; MODBUS_REQUEST_MAX_BITS */
	unsigned max_gap;	/* unused registers (or bits) a request may read between points */
	bool coalesce;		/* false: one request per point */
};

/* One read request; requests are ordered by kind (holding, input, coil, discrete),
 * then address. */
struct plan_request {
	enum point_kind kind;
	uint16_t address;
	uint16_t count;	 /* registers or bits */
	uint16_t unused; /* of count, those no point asked for (bridged gaps) */
	size_t offset;	 /* where its answer goes in the slave's register or bit buffer */
	size_t n_points; /* points it serves */
};

struct plan {
	struct plan_request *requests;
	size_t n_requests;
	size_t *point_request; /* for each point, in configuration order: its request */
	size_t n_registers;    /* the register buffer a poll needs */
	size_t n_bits;	       /* the bit buffer a poll needs */
};

/*
 * Plan the requests for n points (1 <= n, each point's count within the limits, as
 * points_check_conf() ensures). Fills *ret, whose arrays the caller frees with
 * plan_free(). Returns 0, -EINVAL for points the limits cannot serve, or -ENOMEM.
 */
int plan_build(const struct point *points, size_t n, const struct plan_limits *limits,
	       struct plan *ret);

/* Free what plan_build() allocated; a zeroed plan is fine. */
void plan_free(struct plan *plan);

/* Where point i's first register (or bit) is in the poll's buffers. */
size_t plan_point_offset(const struct plan *plan, const struct point *points, size_t i);

#endif
