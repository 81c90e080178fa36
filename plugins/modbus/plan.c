// SPDX-License-Identifier: MIT
/*
 * Request planning; see plan.h.
 */
#include "plan.h"

#include <errno.h>
#include <stdlib.h>

struct sort_entry {
	const struct point *point;
	size_t index;
};

/* By kind, then address; of two points at one address the wider first, so that a
 * `bit` point falls inside the register that another point reads whole. */
static int compare_points(const void *a, const void *b)
{
	const struct point *pa = ((const struct sort_entry *)a)->point;
	const struct point *pb = ((const struct sort_entry *)b)->point;
	size_t ia, ib;

	if (pa->kind != pb->kind)
		return pa->kind < pb->kind ? -1 : 1;
	if (pa->address != pb->address)
		return pa->address < pb->address ? -1 : 1;
	if (pa->count != pb->count)
		return pa->count > pb->count ? -1 : 1;
	/* qsort() is not stable: the configuration order decides the rest. */
	ia = ((const struct sort_entry *)a)->index;
	ib = ((const struct sort_entry *)b)->index;
	return ia < ib ? -1 : ia > ib;
}

static bool kind_is_bits(enum point_kind kind)
{
	return kind == KIND_COIL || kind == KIND_DISCRETE;
}

/* Can request r, which ends (exclusive) at end, take point p as well? */
static bool can_extend(const struct plan_request *r, unsigned end, const struct point *p,
		       const struct plan_limits *limits)
{
	unsigned limit = kind_is_bits(r->kind) ? limits->max_bits : limits->max_registers;
	unsigned p_end = (unsigned)p->address + p->count;
	unsigned new_end = p_end > end ? p_end : end;

	if (!limits->coalesce || r->kind != p->kind)
		return false;
	if (p->address > end && p->address - end > limits->max_gap)
		return false;
	return new_end - r->address <= limit;
}

int plan_build(const struct point *points, size_t n, const struct plan_limits *limits,
	       struct plan *ret)
{
	struct plan plan = { 0 };
	struct sort_entry *order;
	struct plan_request *r = NULL;
	unsigned end = 0; /* of r, exclusive */

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned limit =
		    kind_is_bits(points[i].kind) ? limits->max_bits : limits->max_registers;

		if (points[i].count == 0 || points[i].count > limit)
			return -EINVAL;
	}
	order = calloc(n, sizeof(*order));
	plan.requests = calloc(n, sizeof(*plan.requests));
	plan.point_request = calloc(n, sizeof(*plan.point_request));
	if (!order || !plan.requests || !plan.point_request)
		goto fail_alloc;

	for (size_t i = 0; i < n; i++)
		order[i] = (struct sort_entry){ &points[i], i };
	qsort(order, n, sizeof(*order), compare_points);

	for (size_t k = 0; k < n; k++) {
		const struct point *p = order[k].point;
		unsigned p_end = (unsigned)p->address + p->count;

		if (r && can_extend(r, end, p, limits)) {
			/* What p adds past the current end was asked for; a gap before it
			 * was not. */
			if (p_end > end) {
				unsigned start = p->address > end ? p->address : end;

				r->unused += (uint16_t)(start - end);
				end = p_end;
				r->count = (uint16_t)(end - r->address);
			}
		} else {
			r = &plan.requests[plan.n_requests++];
			*r = (struct plan_request){
				.kind = p->kind,
				.address = p->address,
				.count = p->count,
			};
			end = p_end;
		}
		r->n_points++;
		plan.point_request[order[k].index] = (size_t)(r - plan.requests);
	}

	for (size_t i = 0; i < plan.n_requests; i++) {
		struct plan_request *q = &plan.requests[i];

		if (kind_is_bits(q->kind)) {
			q->offset = plan.n_bits;
			plan.n_bits += q->count;
		} else {
			q->offset = plan.n_registers;
			plan.n_registers += q->count;
		}
	}
	free(order);
	*ret = plan;
	return 0;

fail_alloc:
	free(order);
	plan_free(&plan);
	return -ENOMEM;
}

void plan_free(struct plan *plan)
{
	free(plan->requests);
	free(plan->point_request);
	*plan = (struct plan){ 0 };
}

size_t plan_point_offset(const struct plan *plan, const struct point *points, size_t i)
{
	const struct plan_request *r = &plan->requests[plan->point_request[i]];

	return r->offset + (size_t)(points[i].address - r->address);
}
