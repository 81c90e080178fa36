// SPDX-License-Identifier: MIT
/*
 * Opening and setting up the serial device; see port.h.
 *
 * The line is raw: no echo, no line editing, no signals, no CR/LF translation, eight
 * bits through. With parity on, INPCK is set and IGNPAR and PARMRK are not, so a byte
 * with a parity or framing error (and a break) arrives as a NUL, which no format
 * accepts: the frame is rejected instead of passing on with a byte silently missing.
 *
 * tcsetattr() succeeds when the driver took any of the settings, so they are read
 * back and compared: a USB adapter that cannot do a rate or mark parity says so in
 * the log rather than only by garbage later. That is a warning, not a failure: a
 * pseudo-terminal (socat, ser2net, a test) keeps no data bits or parity at all, and
 * an input that refused to read one would be no better off.
 */
#include "port.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/serial.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	unsigned baud;
	speed_t speed;
} speeds[] = {
	{ 50, B50 },	       { 75, B75 },	      { 110, B110 },	     { 134, B134 },
	{ 150, B150 },	       { 200, B200 },	      { 300, B300 },	     { 600, B600 },
	{ 1200, B1200 },       { 1800, B1800 },	      { 2400, B2400 },	     { 4800, B4800 },
	{ 9600, B9600 },       { 19200, B19200 },     { 38400, B38400 },     { 57600, B57600 },
	{ 115200, B115200 },   { 230400, B230400 },   { 460800, B460800 },   { 500000, B500000 },
	{ 576000, B576000 },   { 921600, B921600 },   { 1000000, B1000000 }, { 1152000, B1152000 },
	{ 1500000, B1500000 }, { 2000000, B2000000 }, { 2500000, B2500000 }, { 3000000, B3000000 },
	{ 3500000, B3500000 }, { 4000000, B4000000 },
};

#define N_SPEEDS (sizeof(speeds) / sizeof(speeds[0]))

int port_speed(unsigned baud, speed_t *ret)
{
	for (size_t i = 0; i < N_SPEEDS; i++)
		if (speeds[i].baud == baud) {
			*ret = speeds[i].speed;
			return 0;
		}
	return -EINVAL;
}

void port_list_speeds(char *buf, size_t size)
{
	size_t n = 0;

	if (size)
		buf[0] = '\0';
	for (size_t i = 0; i < N_SPEEDS && n < size; i++) {
		int w = snprintf(buf + n, size - n, "%s%u", i ? ", " : "", speeds[i].baud);

		if (w < 0)
			return;
		n += (size_t)w;
	}
}

static const char parity_letter[] = { 'N', 'E', 'O', 'M', 'S' };
static const char *const flow_words[] = { "no flow control", "RTS/CTS", "XON/XOFF" };

void port_describe(const struct port_settings *s, char *buf, size_t size)
{
	snprintf(buf, size, "%u %u%c%u, %s%s%s", s->baud, s->data_bits, parity_letter[s->parity],
		 s->stop_bits, flow_words[s->flow], s->rs485 ? ", RS-485" : "",
		 s->exclusive ? ", exclusive" : "");
}

static tcflag_t csize(unsigned data_bits)
{
	switch (data_bits) {
	case 5:
		return CS5;
	case 6:
		return CS6;
	case 7:
		return CS7;
	default:
		return CS8;
	}
}

/* The c_cflag bits these settings decide, and their values. */
#define CFLAG_MASK (CSIZE | PARENB | PARODD | CMSPAR | CSTOPB | CRTSCTS)

static tcflag_t cflag_bits(const struct port_settings *s)
{
	tcflag_t c = csize(s->data_bits);

	switch (s->parity) {
	case PARITY_NONE:
		break;
	case PARITY_EVEN:
		c |= PARENB;
		break;
	case PARITY_ODD:
		c |= PARENB | PARODD;
		break;
	case PARITY_MARK:
		c |= PARENB | CMSPAR | PARODD;
		break;
	case PARITY_SPACE:
		c |= PARENB | CMSPAR;
		break;
	}
	if (s->stop_bits == 2)
		c |= CSTOPB;
	if (s->flow == FLOW_RTSCTS)
		c |= CRTSCTS;
	return c;
}

static void make_raw(const struct port_settings *s, struct termios *t)
{
	t->c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON |
				  IXOFF | IXANY | IGNPAR | INPCK | IUCLC | IMAXBEL);
	if (s->parity != PARITY_NONE)
		t->c_iflag |= INPCK;
	if (s->flow == FLOW_XONXOFF)
		t->c_iflag |= IXON | IXOFF;
	t->c_oflag &= ~(tcflag_t)OPOST;
	t->c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL | ICANON | ISIG | IEXTEN);
	/* CLOCAL: a missing carrier (DCD) is no hang-up; most sensors do not drive it. */
	t->c_cflag &= ~(tcflag_t)CFLAG_MASK;
	t->c_cflag |= cflag_bits(s) | CREAD | CLOCAL;
	t->c_cc[VMIN] = 1;
	t->c_cc[VTIME] = 0;
	cfsetispeed(t, s->speed);
	cfsetospeed(t, s->speed);
}

/* Whether the line is raw as make_raw() left it: anything else would change the data. */
static bool is_raw(const struct termios *t)
{
	return !(t->c_iflag & (PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IUCLC)) &&
	       !(t->c_oflag & OPOST) && !(t->c_lflag & (ICANON | ISIG | IEXTEN | ECHO)) &&
	       (t->c_cflag & CREAD) && t->c_cc[VMIN] == 1 && t->c_cc[VTIME] == 0;
}

/* The line settings the driver did not take, as a list for a message, or "". */
static void settings_not_taken(const struct port_settings *s, const struct termios *t, char *buf,
			       size_t size)
{
	tcflag_t want = cflag_bits(s), got = t->c_cflag & CFLAG_MASK;
	const char *missing[6];
	size_t n = 0, used = 0;

	if (cfgetispeed(t) != s->speed || cfgetospeed(t) != s->speed)
		missing[n++] = "the rate";
	if ((got & CSIZE) != (want & CSIZE))
		missing[n++] = "the data bits";
	if ((got & (PARENB | PARODD | CMSPAR)) != (want & (PARENB | PARODD | CMSPAR)))
		missing[n++] = "the parity";
	if ((got & CSTOPB) != (want & CSTOPB))
		missing[n++] = "the stop bits";
	if ((got & CRTSCTS) != (want & CRTSCTS))
		missing[n++] = "RTS/CTS flow control";
	if ((t->c_iflag & (IXON | IXOFF)) != (s->flow == FLOW_XONXOFF ? (IXON | IXOFF) : 0))
		missing[n++] = "XON/XOFF flow control";
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++) {
		int w = snprintf(buf + used, size - used, "%s%s",
				 i == 0	     ? ""
				 : i + 1 < n ? ", "
					     : " and ",
				 missing[i]);

		if (w < 0)
			return;
		used += (size_t)w;
	}
}

static int set_rs485(int fd, const struct port_settings *s, char *why, size_t why_size)
{
	struct serial_rs485 rs = { 0 };

	rs.flags = SER_RS485_ENABLED |
		   (s->rs485_rts_on_send ? SER_RS485_RTS_ON_SEND : SER_RS485_RTS_AFTER_SEND);
	if (ioctl(fd, TIOCSRS485, &rs) < 0) {
		int r = -errno;

		if (r == -ENOTTY || r == -EINVAL || r == -EOPNOTSUPP)
			snprintf(why, why_size,
				 "the driver of \"%s\" has no RS-485 mode (TIOCSRS485); if the "
				 "adapter switches the direction itself, set rs485 = false",
				 s->path);
		else
			snprintf(why, why_size, "cannot switch \"%s\" to RS-485 (TIOCSRS485)",
				 s->path);
		return r;
	}
	memset(&rs, 0, sizeof(rs));
	if (ioctl(fd, TIOCGRS485, &rs) == 0 && !(rs.flags & SER_RS485_ENABLED)) {
		snprintf(why, why_size, "the driver of \"%s\" did not enable RS-485 mode", s->path);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int open_device(const struct port_settings *s, char *why, size_t why_size)
{
	int fd = open(s->path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	int r;

	if (fd >= 0)
		return fd;
	r = -errno;
	switch (r) {
	case -ENOENT:
		snprintf(why, why_size, "\"%s\" is absent (not plugged in?)", s->path);
		break;
	case -EACCES:
		snprintf(why, why_size,
			 "cannot open \"%s\": the daemon's user needs read and write access, "
			 "usually through the dialout group",
			 s->path);
		break;
	case -EBUSY:
		snprintf(why, why_size,
			 "\"%s\" is in use by another program (it has exclusive access)", s->path);
		break;
	default:
		snprintf(why, why_size, "cannot open \"%s\"", s->path);
		break;
	}
	return r;
}

int port_open(const struct port_settings *s, char *not_taken, size_t not_taken_size, char *why,
	      size_t why_size)
{
	struct termios t;
	struct stat st;
	int fd, r;

	fd = open_device(s, why, why_size);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot stat \"%s\"", s->path);
		goto fail;
	}
	if (!S_ISCHR(st.st_mode) || tcgetattr(fd, &t) < 0) {
		r = -ENOTTY;
		snprintf(why, why_size, "\"%s\" is not a serial device", s->path);
		goto fail;
	}
	/* First, so that no other program opens it while it is set up. */
	if (s->exclusive && ioctl(fd, TIOCEXCL) < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot get exclusive access to \"%s\" (TIOCEXCL)",
			 s->path);
		goto fail;
	}
	make_raw(s, &t);
	/* EINVAL: the driver took none of the changes, which is also what Linux
	 * answers when all it ignored was, say, the parity of a pseudo-terminal. What
	 * counts is what the line has now. */
	if (tcsetattr(fd, TCSANOW, &t) < 0 && errno != EINVAL) {
		r = -errno;
		snprintf(why, why_size, "cannot set the line settings of \"%s\"", s->path);
		goto fail;
	}
	if (tcgetattr(fd, &t) < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot read back the line settings of \"%s\"", s->path);
		goto fail;
	}
	if (!is_raw(&t)) {
		r = -EOPNOTSUPP;
		snprintf(why, why_size, "the driver of \"%s\" refused raw mode", s->path);
		goto fail;
	}
	settings_not_taken(s, &t, not_taken, not_taken_size);
	if (s->rs485) {
		r = set_rs485(fd, s, why, why_size);
		if (r < 0)
			goto fail;
	}
	/* What waited in the driver came at an unknown time, maybe long ago. */
	if (tcflush(fd, TCIFLUSH) < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot flush the input of \"%s\"", s->path);
		goto fail;
	}
	return fd;
fail:
	port_close(fd, s);
	return r;
}

void port_close(int fd, const struct port_settings *s)
{
	if (fd < 0)
		return;
	if (s->exclusive)
		(void)ioctl(fd, TIOCNXCL);
	close(fd);
}
