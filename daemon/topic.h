/* SPDX-License-Identifier: MIT */
/*
 * The 1NCE OS topic rules, in one place: the configuration, cg_emit() and (later) the
 * socket input and the uplink all check topics with this function.
 */
#ifndef COAPGATE_TOPIC_H
#define COAPGATE_TOPIC_H

#include <stdbool.h>

/*
 * True when topic is acceptable as the "t" Uri-Query of a 1NCE OS POST: 1 to 253
 * bytes of [A-Za-z0-9_/] with no "//" (1NCE answers 4.00 otherwise; the 255-byte
 * option limit includes "t="). An empty topic is refused: "no topic" is NULL.
 */
bool topic_is_valid(const char *topic);

#endif
