/* SPDX-License-Identifier: MIT */
/*
 * One fuzz_segment input through the real queue: shared by the libFuzzer target
 * (fuzzing build, frame CRCs not compared) and the unit test that replays the corpus
 * and the regressions in the production build (CRCs repaired first). The input layout
 * and the invariants are described in segment_check.c.
 */
#ifndef COAPGATE_SEGMENT_CHECK_H
#define COAPGATE_SEGMENT_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Quiet the queue's logging unless $COAPGATE_FUZZ_LOG is set. */
void segment_check_init(void);

/*
 * Run one input; abort() with a message on stderr when an invariant does not hold.
 * With repair_crcs, every frame's CRC is recomputed before the file is written, so
 * that a build that compares CRCs sees what a fuzzing build sees. Returns 0, or -1
 * for an input too short or too long to be one.
 */
int segment_check(const uint8_t *data, size_t size, bool repair_crcs);

#endif
