/* SPDX-License-Identifier: MIT */
/*
 * The control interface: one text command per line in, one JSON line out (README.md,
 * "Control interface"), over a Unix stream socket; the same commands run from -x at
 * start. This is how tests switch faults and read counters while the emulator runs.
 */
#ifndef NCE_CONTROL_H
#define NCE_CONTROL_H

struct emulator;
struct control;
struct json_t;

/* Listen on path (an existing socket file is replaced). Returns 0 or -errno. */
int control_new(struct emulator *emu, const char *path, struct control **ret_control);
void control_free(struct control *control);

/* Run one command line; returns the answer object (new reference), with "ok". */
struct json_t *control_execute(struct emulator *emu, const char *line);

#endif
