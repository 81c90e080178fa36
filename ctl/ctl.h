/* SPDX-License-Identifier: MIT */
/*
 * coapgatectl's commands. Each takes the arguments after its own name and returns a
 * process exit status; each prints its own usage errors.
 */
#ifndef COAPGATE_CTL_H
#define COAPGATE_CTL_H

#define CTL_EXIT_DAMAGE 1 /* verify: the queue holds damage */
#define CTL_EXIT_USAGE	64
#define CTL_EXIT_IO	74

int ctl_queue(int argc, char **argv);

#endif
