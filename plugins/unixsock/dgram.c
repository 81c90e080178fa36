// SPDX-License-Identifier: MIT
/*
 * Datagram mode: one message per datagram, nothing written back (a client socket of
 * a datagram sender usually has no address to answer to). The sender's credentials
 * come with each datagram (SO_PASSCRED), for the log line of a rejected message.
 */
#include "unixsock.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"

/* Datagrams taken per turn before the stop request is looked at again. */
#define DATAGRAM_BURST 256

static const struct ucred *credentials_of(struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
			return (const struct ucred *)CMSG_DATA(cm);
	return NULL;
}

/* Take one datagram: 1 when one was handled, 0 when none waits, or a negative errno. */
static int take_datagram(struct unixsock *u, int fd, char *buf, size_t size)
{
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(struct ucred))];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = size - 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = &control,
			     .msg_controllen = sizeof(control) };
	char why[MESSAGE_WHY_MAX];
	const struct ucred *peer;
	uint64_t token;
	ssize_t n;

	/* MSG_TRUNC: the real length even when the datagram did not fit. */
	n = recvmsg(fd, &mh, MSG_TRUNC | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	peer = credentials_of(&mh);
	/* A newline (or CRLF) at the end is the sender's habit, not part of the message.
	 * A datagram longer than that did not fit the buffer: too long in any case. */
	if ((uint64_t)n <= u->conf->max_message + 2) {
		if (n && buf[n - 1] == '\n')
			n--;
		if (n && buf[n - 1] == '\r')
			n--;
	}
	if ((uint64_t)n > u->conf->max_message) {
		ingest_reject_too_long(u, peer, why, sizeof(why));
		return 1;
	}
	if (ingest(u, buf, (size_t)n, peer, &token, why, sizeof(why)) == INGEST_STOPPED)
		return -ECANCELED;
	return 1;
}

int dgram_run(struct unixsock *u)
{
	struct listener l = { .fd = -1 };
	/* Room for max_message, a CRLF, one byte to notice more, and the parser's NUL. */
	size_t size = u->conf->max_message + 4;
	char *buf = malloc(size);
	int one = 1, r;

	if (!buf)
		return -ENOMEM;
	r = listener_open(u->inst, u->conf->path, SOCK_DGRAM, u->file_mode, u->gid, &l);
	if (r < 0)
		goto out;
	if (setsockopt(l.fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		cg_log_warning_errno(u->inst, -errno,
				     "no sender credentials for rejected messages: %m");
	cg_log_info(u->inst, "listening on \"%s\" (datagram, %s)", u->conf->path,
		    u->conf->format == FORMAT_JSON ? "JSON lines" : "line protocol");
	while (!cg_should_stop(u->inst)) {
		struct pollfd fds[2] = {
			{ .fd = l.fd, .events = POLLIN },
			{ .fd = cg_stop_fd(u->inst), .events = POLLIN },
		};

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = cg_log_error_errno(u->inst, -errno, "poll failed: %m");
			break;
		}
		for (int i = 0; i < DATAGRAM_BURST && !cg_should_stop(u->inst); i++) {
			r = take_datagram(u, l.fd, buf, size);
			if (r <= 0)
				break;
		}
		if (r == -ECANCELED) {
			r = 0;
			break;
		}
		if (r < 0) {
			cg_log_error_errno(u->inst, r, "cannot receive: %m");
			break;
		}
		r = 0;
	}
out:
	listener_close(&l);
	free(buf);
	return r;
}
