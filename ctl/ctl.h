/* SPDX-License-Identifier: MIT */
/*
 * coapgatectl's commands. Each takes the arguments after its own name and returns a
 * process exit status; each prints its own usage errors.
 */
#ifndef COAPGATE_CTL_H
#define COAPGATE_CTL_H

/* Exit statuses; above 1 they are sysexits.h values. */
#define CTL_EXIT_DAMAGE	     1	/* queue verify: the queue holds damage */
#define CTL_EXIT_USAGE	     64 /* bad command line or arguments; send: nothing was sent */
#define CTL_EXIT_DATAERR     65 /* send: a reading was rejected, by the daemon or locally */
#define CTL_EXIT_UNAVAILABLE 69 /* send: nothing listens at the socket, or it closed early */
#define CTL_EXIT_IO	     74 /* a file or stdin cannot be read; send: the daemon's disk failed */
#define CTL_EXIT_TEMPFAIL    75 /* send: no answer within --timeout */
#define CTL_EXIT_PROTOCOL    76 /* send: the daemon answered outside the unixsock protocol */
#define CTL_EXIT_NOPERM	     77 /* send: permission denied on the socket */

int ctl_queue(int argc, char **argv);

/*
 * `send`: readings to a unixsock input's socket, waiting for its acknowledgements
 * (ctl_send.c; docs/COAPGATECTL.md).
 */
int ctl_send(int argc, char **argv);

#endif
