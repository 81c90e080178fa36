/* SPDX-License-Identifier: MIT */
/*
 * The socket file: bound under a temporary name, given its mode and group, renamed
 * into place; a stale socket at the path is replaced, anything else refused.
 */
#ifndef UNIXSOCK_LISTENER_H
#define UNIXSOCK_LISTENER_H

#include <coapgate/plugin.h>
#include <sys/types.h>

struct listener {
	int fd;
	const char *path;
	dev_t dev; /* of the socket file we made, to remove only ours */
	ino_t ino;
};

/*
 * Create the socket of type (SOCK_STREAM or SOCK_DGRAM) at path, non-blocking and
 * close-on-exec, listening when it is a stream. gid (gid_t)-1 leaves the group.
 * Logs and returns a negative errno: -EEXIST for a path that is not a stale socket.
 */
int listener_open(struct cg_instance *inst, const char *path, int type, mode_t mode, gid_t gid,
		  struct listener *ret);

/* Close, and remove the socket file if it is still the one listener_open() made. */
void listener_close(struct listener *l);

#endif
