/* SPDX-License-Identifier: MIT */
/*
 * The sink of `coapgated --test`: every reading is printed as one JSON line on stdout
 * (see reading_json.h) instead of being queued. It counts what it printed so that the
 * run can stop after N readings; a plugin author's quickest feedback loop.
 */
#ifndef COAPGATE_TESTPRINT_H
#define COAPGATE_TESTPRINT_H

#include <stdint.h>
#include <stdio.h>

#include "reading.h"

struct test_printer;

/* Print to out; after limit readings (0: no limit) the done eventfd becomes readable
 * and further readings are ignored. */
struct test_printer *test_printer_new(FILE *out, uint64_t limit);
void test_printer_free(struct test_printer *p);

/* The struct sink that feeds this printer. */
struct sink test_printer_sink(struct test_printer *p);

/* Readable once the limit is reached; for the event loop. */
int test_printer_done_fd(const struct test_printer *p);

uint64_t test_printer_count(struct test_printer *p);

#endif
