/* SPDX-License-Identifier: MIT */
/*
 * The bus: one libmodbus context, a TCP connection or a serial port, and the only
 * place that calls libmodbus. Its -1 + errno convention is turned into negative errnos
 * here; those errnos may be libmodbus's own (MODBUS_ENOBASE + n), which fault.h sorts
 * and names. No logging: the poller decides what a failure means.
 */
#ifndef MODBUS_BUS_H
#define MODBUS_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "modbus_conf.h"

struct bus;

/* A bus for conf (borrowed; it must outlive the bus), not yet connected. No I/O.
 * Returns 0, -EINVAL for settings libmodbus refuses, or -ENOMEM. */
int bus_new(const struct modbus_conf *conf, struct bus **ret);

/* Close and free; NULL is fine. */
void bus_free(struct bus *bus);

/*
 * Connect (TCP: resolve the host and connect within the response timeout) or open
 * and set up the serial port. Returns 0 or a negative errno of the system. On a
 * failure, *ret_step says which step failed ("connect", "RS-485 mode", ...).
 */
int bus_connect(struct bus *bus, const char **ret_step);

/* Close the connection or the port; the bus may be connected again. */
void bus_close(struct bus *bus);

/*
 * Read count registers (holding, input) into regs or bits (coil, discrete) into bits,
 * one byte per bit, starting at address, from unit. Returns 0 or a negative errno
 * (see fault.h).
 */
int bus_read(struct bus *bus, int unit, enum point_kind kind, uint16_t address, uint16_t count,
	     uint16_t *regs, uint8_t *bits);

/* Drop whatever has arrived and not been read: a late answer must not be taken for
 * the answer to the next request. */
void bus_flush(struct bus *bus);

/* "tcp 192.0.2.7:502" or "rtu /dev/ttyUSB0 9600 8E1", for log lines. */
const char *bus_name(const struct bus *bus);

#endif
