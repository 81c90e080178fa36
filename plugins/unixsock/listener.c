// SPDX-License-Identifier: MIT
/*
 * The socket file; see listener.h.
 *
 * Binding under a temporary name and renaming means the socket is never reachable at
 * path with the umask's permissions (a datagram socket receives from the moment it is
 * bound), and that a stale socket is replaced in one step.
 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int make_address(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/*
 * 0 when nobody listens on the socket at path (ECONNREFUSED: a file left by a killed
 * process), or the errno that says somebody may: success (0 becomes EADDRINUSE), a
 * full backlog (EAGAIN: the probe does not wait), a socket of the other type
 * (EPROTOTYPE), one we may not probe (EACCES). Only the first may be replaced.
 */
static int probe_socket(const char *path, int type)
{
	struct sockaddr_un sa;
	int fd, r = 0;

	if (make_address(path, &sa) < 0)
		return ENAMETOOLONG;
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		r = errno;
	else
		r = EADDRINUSE;
	close(fd);
	return r == ECONNREFUSED || r == ENOENT ? 0 : r;
}

/* What is at path may be replaced: nothing, or a socket nobody listens on. */
static int check_existing(struct cg_instance *inst, const char *path, int type)
{
	struct stat st;
	int r;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return cg_log_error_errno(inst, -errno, "cannot check \"%s\": %m", path);
	}
	if (!S_ISSOCK(st.st_mode)) {
		cg_log_error(inst,
			     "\"%s\" exists and is not a socket; remove it or choose another path",
			     path);
		return -EEXIST;
	}
	r = probe_socket(path, type);
	if (r) {
		cg_log_error(inst,
			     "\"%s\" may be in use by another process (%s); is another coapgated "
			     "running? Remove it if it is not",
			     path, strerror(r));
		return -EADDRINUSE;
	}
	cg_log_info(inst, "replacing the stale socket \"%s\"", path);
	return 0;
}

int listener_open(struct cg_instance *inst, const char *path, int type, mode_t mode, gid_t gid,
		  struct listener *ret)
{
	char tmp[sizeof(((struct sockaddr_un *)0)->sun_path) + 32];
	struct sockaddr_un sa;
	struct stat st;
	int fd = -1, r;

	r = check_existing(inst, path, type);
	if (r < 0)
		return r;
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	if (make_address(tmp, &sa) < 0)
		return cg_log_error_errno(inst, -ENAMETOOLONG,
					  "the socket path \"%s\" is too long for a Unix socket",
					  path);
	(void)unlink(tmp);
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cg_log_error_errno(inst, -errno, "cannot create a socket: %m");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = cg_log_error_errno(inst, -errno, "cannot bind \"%s\": %m", tmp);
		goto fail;
	}
	if (chmod(tmp, mode) < 0) {
		r = cg_log_error_errno(inst, -errno, "cannot set the mode of \"%s\": %m", tmp);
		goto fail_unlink;
	}
	if (gid != (gid_t)-1 && chown(tmp, (uid_t)-1, gid) < 0) {
		r = cg_log_error_errno(inst, -errno, "cannot give \"%s\" the group %u: %m", tmp,
				       (unsigned)gid);
		goto fail_unlink;
	}
	if (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0) {
		r = cg_log_error_errno(inst, -errno, "cannot listen on \"%s\": %m", tmp);
		goto fail_unlink;
	}
	if (stat(tmp, &st) < 0 || rename(tmp, path) < 0) {
		r = cg_log_error_errno(inst, -errno, "cannot move the socket to \"%s\": %m", path);
		goto fail_unlink;
	}
	*ret = (struct listener){ .fd = fd, .path = path, .dev = st.st_dev, .ino = st.st_ino };
	return 0;

fail_unlink:
	(void)unlink(tmp);
fail:
	close(fd);
	return r;
}

void listener_close(struct listener *l)
{
	struct stat st;

	if (l->fd < 0)
		return;
	/* Another daemon may have replaced the file since: leave that one alone. */
	if (lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
		(void)unlink(l->path);
	close(l->fd);
	l->fd = -1;
}
