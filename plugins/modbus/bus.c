// SPDX-License-Identifier: MIT
/*
 * libmodbus behind four calls; see bus.h. Error recovery is left to the poller
 * (MODBUS_ERROR_RECOVERY_NONE): libmodbus's own recovery sleeps and reconnects inside
 * a read, where the poller cannot keep its schedule or see a stop request.
 */
#include "bus.h"

#include <errno.h>
#include <modbus.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct bus {
	const struct modbus_conf *conf;
	modbus_t *ctx;
	bool connected;
	char name[128];
};

/* libmodbus sets errno on every failure; a 0 would make a failure look like success. */
static int negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

static void split_usec(uint64_t usec, uint32_t *sec, uint32_t *rest)
{
	*sec = (uint32_t)(usec / 1000000);
	*rest = (uint32_t)(usec % 1000000);
}

int bus_new(const struct modbus_conf *conf, struct bus **ret)
{
	static const char parity_chars[] = {
		[PARITY_EVEN] = 'E', [PARITY_NONE] = 'N', [PARITY_ODD] = 'O'
	};
	struct bus *b;
	uint32_t sec, usec;
	int r;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->conf = conf;
	if (conf->transport == TRANSPORT_TCP) {
		char port[16];

		snprintf(port, sizeof(port), "%lld", (long long)conf->port);
		b->ctx = modbus_new_tcp_pi(conf->host, port);
		snprintf(b->name, sizeof(b->name), "tcp %s:%s", conf->host, port);
	} else {
		char parity = parity_chars[conf->parity];

		b->ctx = modbus_new_rtu(conf->device, (int)conf->baud, parity, (int)conf->data_bits,
					(int)conf->stop_bits);
		snprintf(b->name, sizeof(b->name), "rtu %s %lld %lld%c%lld", conf->device,
			 (long long)conf->baud, (long long)conf->data_bits, parity,
			 (long long)conf->stop_bits);
	}
	if (!b->ctx) {
		r = negative_errno();
		free(b);
		return r;
	}
	split_usec(conf->response_timeout_usec, &sec, &usec);
	if (modbus_set_response_timeout(b->ctx, sec, usec) < 0)
		goto fail;
	/* 0 turns the byte timeout off: only the response timeout applies. */
	split_usec(conf->byte_timeout_usec, &sec, &usec);
	if (modbus_set_byte_timeout(b->ctx, sec, usec) < 0)
		goto fail;
	if (modbus_set_error_recovery(b->ctx, MODBUS_ERROR_RECOVERY_NONE) < 0)
		goto fail;
	*ret = b;
	return 0;

fail:
	r = negative_errno();
	bus_free(b);
	return r;
}

void bus_free(struct bus *bus)
{
	if (!bus)
		return;
	bus_close(bus);
	modbus_free(bus->ctx);
	free(bus);
}

int bus_connect(struct bus *bus, const char **ret_step)
{
	const struct modbus_conf *c = bus->conf;
	int r;

	bus_close(bus);
	if (modbus_connect(bus->ctx) < 0) {
		*ret_step = c->transport == TRANSPORT_TCP ? "connect" : "open";
		return negative_errno();
	}
	if (c->transport == TRANSPORT_RTU && c->rs485 &&
	    modbus_rtu_set_serial_mode(bus->ctx, MODBUS_RTU_RS485) < 0) {
		*ret_step = "switch to RS-485 mode";
		goto fail;
	}
	if (c->transport == TRANSPORT_RTU && c->rts != RTS_NONE &&
	    modbus_rtu_set_rts(bus->ctx,
			       c->rts == RTS_UP ? MODBUS_RTU_RTS_UP : MODBUS_RTU_RTS_DOWN) < 0) {
		*ret_step = "set the RTS mode";
		goto fail;
	}
	bus->connected = true;
	return 0;

fail:
	r = negative_errno();
	modbus_close(bus->ctx);
	return r;
}

void bus_close(struct bus *bus)
{
	if (bus->connected)
		modbus_close(bus->ctx);
	bus->connected = false;
}

int bus_read(struct bus *bus, int unit, enum point_kind kind, uint16_t address, uint16_t count,
	     uint16_t *regs, uint8_t *bits)
{
	int n = -1;

	if (!bus->connected)
		return -ENOTCONN;
	if (modbus_set_slave(bus->ctx, unit) < 0)
		return negative_errno();
	switch (kind) {
	case KIND_HOLDING:
		n = modbus_read_registers(bus->ctx, address, count, regs);
		break;
	case KIND_INPUT:
		n = modbus_read_input_registers(bus->ctx, address, count, regs);
		break;
	case KIND_COIL:
		n = modbus_read_bits(bus->ctx, address, count, bits);
		break;
	case KIND_DISCRETE:
		n = modbus_read_input_bits(bus->ctx, address, count, bits);
		break;
	}
	if (n < 0)
		return negative_errno();
	/* libmodbus checks the count of an answer against the request; be sure. */
	return n == count ? 0 : -EMBBADDATA;
}

void bus_flush(struct bus *bus)
{
	if (bus->connected)
		(void)modbus_flush(bus->ctx);
}

const char *bus_name(const struct bus *bus)
{
	return bus->name;
}
