// SPDX-License-Identifier: MIT
/*
 * Failed requests sorted and named; see fault.h.
 */
#include "fault.h"

#include <errno.h>
#include <modbus.h>
#include <stdio.h>
#include <string.h>

/* Modbus Application Protocol Specification V1.1b3, section 7; 7 is from the older
 * Modicon reference (PI-MBUS-300), which libmodbus also knows. */
static const char *const exception_names[] = {
	[1] = "ILLEGAL FUNCTION",
	[2] = "ILLEGAL DATA ADDRESS",
	[3] = "ILLEGAL DATA VALUE",
	[4] = "SERVER DEVICE FAILURE",
	[5] = "ACKNOWLEDGE",
	[6] = "SERVER DEVICE BUSY",
	[7] = "NEGATIVE ACKNOWLEDGE",
	[8] = "MEMORY PARITY ERROR",
	[10] = "GATEWAY PATH UNAVAILABLE",
	[11] = "GATEWAY TARGET DEVICE FAILED TO RESPOND",
};

/* libmodbus's codes for answers it could not use. */
static const struct {
	int code;
	const char *text;
} garbled[] = {
	{ EMBBADCRC, "bad CRC" },
	{ EMBBADDATA, "an answer that does not match the request" },
	{ EMBBADEXC, "an invalid exception answer" },
	{ EMBUNKEXC, "an unknown exception code" },
	{ EMBMDATA, "too many data in the answer" },
	{ EMBBADSLAVE, "an answer from another unit" },
};

static int exception_code(int error)
{
	int code = -error - MODBUS_ENOBASE;

	return code >= 1 && code < MODBUS_EXCEPTION_MAX ? code : 0;
}

const char *fault_exception_name(int code)
{
	if (code < 1 || code >= (int)(sizeof(exception_names) / sizeof(exception_names[0])))
		return NULL;
	return exception_names[code];
}

enum fault_kind fault_classify(int error)
{
	if (exception_code(error))
		return FAULT_EXCEPTION;
	if (error == -ETIMEDOUT)
		return FAULT_NO_ANSWER;
	for (size_t i = 0; i < sizeof(garbled) / sizeof(garbled[0]); i++)
		if (-error == garbled[i].code)
			return FAULT_GARBLED;
	return FAULT_LINK;
}

const char *fault_describe(int error, char *buf, size_t size)
{
	int code = exception_code(error);
	char text[128];

	if (code) {
		const char *name = fault_exception_name(code);

		snprintf(buf, size, "exception %d %s", code, name ? name : "(undefined)");
		return buf;
	}
	if (error == -ETIMEDOUT) {
		snprintf(buf, size, "no answer");
		return buf;
	}
	for (size_t i = 0; i < sizeof(garbled) / sizeof(garbled[0]); i++) {
		if (-error == garbled[i].code) {
			snprintf(buf, size, "%s", garbled[i].text);
			return buf;
		}
	}
	snprintf(buf, size, "%s", strerror_r(-error, text, sizeof(text)));
	return buf;
}
