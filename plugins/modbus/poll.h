/* SPDX-License-Identifier: MIT */
/*
 * The poller: one bus, its slaves, their schedules and their counters. It runs in the
 * instance's thread (run()), polls each slave at its own interval, turns each
 * complete poll into one reading, and keeps one slave's failures from costing the
 * others more than one response timeout:
 *
 *   - A poll stops at its first failed request, so a slave that does not answer
 *     costs one timeout per poll, not one per request.
 *   - A slave whose poll failed (no answer, a garbled answer, a Modbus exception) is
 *     down: it is polled again after its interval, then after twice that, doubling up
 *     to backoff_max, until it answers. Its failure is logged once, with the reason;
 *     its recovery once, with the count.
 *   - After a request that got no answer or a garbled one, a late answer may still be
 *     on its way: on TCP the connection is made anew before the next request, on a
 *     serial line the input is flushed.
 *   - When the connection or the serial port itself fails, run() returns the error
 *     and the daemon restarts it with its backoff (restart_backoff_min/max); the
 *     slaves' schedules and counters live on in the poller.
 */
#ifndef MODBUS_POLL_H
#define MODBUS_POLL_H

#include <coapgate/plugin.h>
#include <stddef.h>

#include "modbus_conf.h"

struct poller;

/*
 * Build the poller for a checked conf (points_check_conf()): the points and request
 * plan of every slave, and the buffers a poll needs. No I/O. conf is borrowed and must
 * outlive the poller. Returns 0, -EINVAL (a plan the limits cannot serve), -ENOMEM.
 */
int poller_new(struct cg_instance *inst, const struct modbus_conf *conf, struct poller **ret);

/* Free the poller; NULL is fine. */
void poller_free(struct poller *p);

/*
 * Connect and poll until the instance is asked to stop (returns 0) or the bus fails
 * (returns the negative errno, logged). Called again by the daemon after a failure.
 */
int poller_run(struct poller *p);

/*
 * The slaves' counters, one line per slave:
 *   meter unit=1 state=up polls=120 failures=2 consecutive=0
 *   last_success_ms=1732480000123 last_error="no answer (holding 0-9)"
 * state is pending (not polled yet), up or down; last_success_ms 0 means never. For
 * the summary log lines and the status output of a later daemon version; safe to call
 * from another thread while poller_run() runs. Writes at most size bytes including the
 * NUL (lines that do not fit are left out) and returns the length written.
 */
size_t poller_format_status(struct poller *p, char *buf, size_t size);

#endif
