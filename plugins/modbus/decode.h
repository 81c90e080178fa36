/* SPDX-License-Identifier: MIT */
/*
 * Decoding: the registers or bits of one point, as the slave answered them, into one
 * typed field of a reading. README.md is the user's description of the same rules:
 *
 *   - Registers arrive as 16-bit values, high byte first on the wire. A value of n
 *     registers is 2n bytes on the wire; its order names, in wire order, which byte of
 *     the value each one is (A the most significant): "ABCD" is big-endian, "CDAB"
 *     swaps the registers, "BADC" the bytes within each register, "DCBA" is
 *     little-endian; "GHEFCDAB" etc. the same for 64-bit values.
 *   - int16..int64 and uint16, uint32 become i64 fields; uint64 too, unless it is above
 *     2^63 - 1, which no i64 holds (DECODE_OUT_OF_RANGE: the field is left out).
 *     With a scale or an offset they become f64: raw * scale + offset.
 *   - float32 and float64 become f64, NaN and infinities included, then scaled.
 *   - bool: a coil or discrete input, or a register that is not 0; bit: one bit of a
 *     register, 0 the least significant.
 *   - string: two characters per register (order "AB": the high byte first), up to
 *     the first NUL, trailing spaces removed; bytes that are not UTF-8 become '?'.
 *
 * Pure: no I/O, no libmodbus, no logging.
 */
#ifndef MODBUS_DECODE_H
#define MODBUS_DECODE_H

#include <coapgate/plugin.h>
#include <stdint.h>

#include "points.h"

/* Room for the text of a string point: two bytes per register and a NUL. */
#define DECODE_TEXT_MAX (2 * MODBUS_REQUEST_MAX_REGISTERS + 1)

enum decode_status {
	DECODE_OK,
	DECODE_REPLACED,     /* a string had bytes that are not UTF-8; they became '?' */
	DECODE_OUT_OF_RANGE, /* a uint64 above 2^63 - 1 without scale: no field */
};

/*
 * Decode point p into *ret_field (whose name is p->name). regs are the point's
 * p->count registers for holding and input points; bits its one bit (0 or 1 in a
 * byte, as libmodbus stores bits) for coils and discrete inputs; the other may be
 * NULL. text is room for DECODE_TEXT_MAX bytes that a string field points to. On
 * DECODE_OUT_OF_RANGE *ret_field is not a field to emit.
 */
enum decode_status decode_point(const struct point *p, const uint16_t *regs, const uint8_t *bits,
				struct cg_field *ret_field, char *text);

/*
 * The unsigned value of n_regs (1, 2 or 4) registers whose bytes are in the wire order
 * order (2 * n_regs letters, see above). For the unit tests and decode_point().
 */
uint64_t decode_raw(const uint16_t *regs, unsigned n_regs, const char *order);

#endif
