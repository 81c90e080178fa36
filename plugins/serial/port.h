/* SPDX-License-Identifier: MIT */
/*
 * The serial device: opened by path, put into raw mode with the configured line
 * settings, locked against other programs (TIOCEXCL) and, when asked, switched to
 * RS-485 (TIOCSRS485). Nothing here reads, logs or knows the daemon: the caller logs
 * the reason port_open() gives.
 */
#ifndef SERIAL_PORT_H
#define SERIAL_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

enum port_parity {
	PARITY_NONE,
	PARITY_EVEN,
	PARITY_ODD,
	PARITY_MARK,  /* the parity bit always 1 (CMSPAR) */
	PARITY_SPACE, /* the parity bit always 0 (CMSPAR) */
};

enum port_flow {
	FLOW_NONE,
	FLOW_RTSCTS,
	FLOW_XONXOFF,
};

struct port_settings {
	const char *path;
	unsigned baud;
	speed_t speed;	    /* the B* constant of baud, from port_speed() */
	unsigned data_bits; /* 5..8 */
	enum port_parity parity;
	unsigned stop_bits; /* 1 or 2 */
	enum port_flow flow;
	bool exclusive;
	bool rs485;
	bool rs485_rts_on_send;
};

/* The B* constant for a rate in bits per second: 0, or -EINVAL when it is not one of
 * the standard rates Linux names (50 to 4000000). */
int port_speed(unsigned baud, speed_t *ret);

/* The standard rates, for a message: "50, 75, ..., 4000000". */
void port_list_speeds(char *buf, size_t size);

/*
 * Open s->path (O_NOCTTY, O_CLOEXEC, non-blocking), set it up and discard what it
 * received before (its time of arrival is unknown). Returns the descriptor, with the
 * line settings the driver did not take listed in not_taken ("the data bits and the
 * parity"; "" when it took them all), or a negative errno with what failed in why
 * ("cannot open ...", "the driver of ... has no RS-485 mode (TIOCSRS485)"), for the
 * caller to log with ": %m".
 */
int port_open(const struct port_settings *s, char *not_taken, size_t not_taken_size, char *why,
	      size_t why_size);

/*
 * Close what port_open() opened. Exclusive access is given up first: the tty keeps it
 * until its last close, and another program (a pseudo-terminal's master side, a
 * getty) may hold the device open longer than the input.
 */
void port_close(int fd, const struct port_settings *s);

/* "9600 8N1, no flow control", for log lines. */
void port_describe(const struct port_settings *s, char *buf, size_t size);

#endif
