// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as the frames of a segment file, through the real
 * recovery and consumer. The input layout and the invariants checked are described in
 * segment_check.c, which the unit test test_queue_format also runs, on the corpus and
 * the regressions, in the production build.
 */
#include <stdint.h>

#include "segment_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	segment_check_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* -1 keeps inputs that are not of this target out of the corpus. */
	return segment_check(data, size, false);
}
