/* SPDX-License-Identifier: MIT */
/*
 * What a failed request means, and how to say it. bus_read() returns a negative errno
 * that may be one of libmodbus's own codes (MODBUS_ENOBASE + n); this module sorts
 * them into what the poller does about them and names them in log lines: Modbus
 * exceptions by the names of the protocol specification, "ILLEGAL DATA ADDRESS".
 *
 * Pure: libmodbus's header is used for its error numbers only.
 */
#ifndef MODBUS_FAULT_H
#define MODBUS_FAULT_H

#include <stdbool.h>
#include <stddef.h>

enum fault_kind {
	FAULT_EXCEPTION, /* the slave answered with a Modbus exception: it is there */
	FAULT_NO_ANSWER, /* no answer within the response timeout */
	FAULT_GARBLED,	 /* an answer that is not one: bad CRC, wrong length, wrong id */
	FAULT_LINK,	 /* the connection or the serial port itself failed */
};

/* What error (a negative errno from bus_read()) means. */
enum fault_kind fault_classify(int error);

/* The specification's name of exception code, "ILLEGAL DATA ADDRESS"; NULL for codes
 * it does not define. */
const char *fault_exception_name(int code);

/*
 * Describe error in buf for a log line: "exception 2 ILLEGAL DATA ADDRESS", "no
 * answer", "bad CRC", or strerror() for the errors of the system. Returns buf.
 */
const char *fault_describe(int error, char *buf, size_t size);

#endif
