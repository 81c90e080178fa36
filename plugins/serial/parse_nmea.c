// SPDX-License-Identifier: MIT
/*
 * NMEA 0183 sentences from GPS receivers: GGA (position fix) and RMC (recommended
 * minimum: position, speed, course, date and time) of any talker (GP, GN, GL, GA, GB,
 * ...), with the checksum verified; see README.md ("nmea") for the fields.
 *
 *   $GPGGA,123519.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*hh
 *   $GPRMC,123519.00,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W,A*hh
 *
 * A receiver without a fix sends empty fields: those are left out of the reading,
 * never turned into zeros. Every other sentence with a good checksum is a valid frame
 * that carries no reading (PARSE_SKIP). In place, like the other parsers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"
#include "number.h"

/* GGA has 14 fields after the address; more than this is no sentence of ours. */
#define NMEA_FIELDS_MAX 32

struct sentence {
	char *field[NMEA_FIELDS_MAX]; /* NUL-terminated, in the frame */
	size_t n;
};

static int fail(char *why, size_t why_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t why_size, const char *format, ...)
{
	int n = snprintf(why, why_size, "invalid NMEA sentence: ");
	va_list ap;

	if (n >= 0 && (size_t)n < why_size) {
		va_start(ap, format);
		vsnprintf(why + n, why_size - (size_t)n, format, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* "$...*hh": the XOR of the bytes between '$' and '*' must be hh. Returns the length of
 * the body (the bytes between). */
static int check_sentence(const char *data, size_t len, size_t *ret_body, char *why,
			  size_t why_size)
{
	unsigned sum = 0;
	const char *star;
	int hi, lo;

	if (len == 0 || (data[0] != '$' && data[0] != '!'))
		return fail(why, why_size, "it does not start with '$'");
	star = memchr(data, '*', len);
	if (!star)
		return fail(why, why_size, "no checksum (*hh)");
	if ((size_t)(star - data) + 3 != len || (hi = hex_digit(star[1])) < 0 ||
	    (lo = hex_digit(star[2])) < 0)
		return fail(why, why_size, "the checksum is not two hex digits at the end");
	for (const char *p = data + 1; p < star; p++)
		sum ^= (unsigned char)*p;
	if (sum != (unsigned)(hi << 4 | lo))
		return fail(why, why_size, "checksum %c%c, computed %02X", star[1], star[2], sum);
	*ret_body = (size_t)(star - data) - 1;
	return 0;
}

/* Split the body at its commas, in place: field[0] is the address ("GPGGA"). */
static int split(char *body, size_t len, struct sentence *s, char *why, size_t why_size)
{
	char *p = body, *end = body + len;

	s->n = 0;
	for (;;) {
		char *comma = memchr(p, ',', (size_t)(end - p));

		if (s->n == NMEA_FIELDS_MAX)
			return fail(why, why_size, "more than %d fields", NMEA_FIELDS_MAX - 1);
		s->field[s->n++] = p;
		if (!comma) {
			*end = '\0'; /* the '*' of the checksum */
			return 0;
		}
		*comma = '\0';
		p = comma + 1;
	}
}

static const char *get(const struct sentence *s, size_t i)
{
	return i < s->n ? s->field[i] : "";
}

/* At most 11 fields per sentence: far below CG_FIELDS_MAX. */
static void add(struct message *m, const char *name, enum cg_field_type type)
{
	struct cg_field *f = &m->fields[m->reading.n_fields++];

	f->name = name;
	f->type = type;
}

static void add_f64(struct message *m, const char *name, double v)
{
	add(m, name, CG_FIELD_F64);
	m->fields[m->reading.n_fields - 1].value.f64 = v;
}

static void add_i64(struct message *m, const char *name, int64_t v)
{
	add(m, name, CG_FIELD_I64);
	m->fields[m->reading.n_fields - 1].value.i64 = v;
}

/* An optional number of the sentence: absent (empty) or valid, never a guess. */
static int number(const struct sentence *s, size_t i, enum value_type type, const char *what,
		  struct cg_field *f, bool *ret_present, char *why, size_t why_size)
{
	char *text = (char *)get(s, i);
	char reason[MESSAGE_WHY_MAX];
	size_t len = strlen(text);

	*ret_present = len > 0;
	if (!len)
		return 0;
	/* NaN and infinity are no NMEA numbers; value_parse() would take them. */
	if (strpbrk(text, "nNiI") || value_parse(text, len, type, f, reason, sizeof(reason)) < 0)
		return fail(why, why_size, "%s \"%.20s\" is not a number", what, text);
	return 0;
}

/* The digits after the point of a number whose integer part is int_digits long. */
static size_t fraction_digits(const char *text, size_t int_digits)
{
	return text[int_digits] == '.' ? strlen(text + int_digits + 1) : 0;
}

/*
 * x rounded to decimals places, as the double nearest to that decimal. Minutes with m
 * decimals become degrees with a repeating fraction (21.6802 min = 0.36133666...°);
 * m + 2 decimals of a degree keep the error under a third of the receiver's own step
 * (10^-m minutes), and 53.361337 costs 9 bytes less on the wire than
 * 53.361336666666666.
 */
static double round_decimals(double x, size_t decimals)
{
	char text[64];

	snprintf(text, sizeof(text), "%.*f", (int)(decimals < 12 ? decimals : 12), x);
	return strtod(text, NULL);
}

/*
 * A coordinate, "ddmm.mmmm" (latitude) or "dddmm.mmmm" (longitude), and its hemisphere,
 * in signed decimal degrees. Both empty: absent.
 */
static int coordinate(const struct sentence *s, size_t i, bool latitude, double *ret,
		      bool *ret_present, char *why, size_t why_size)
{
	const char *what = latitude ? "latitude" : "longitude";
	char *text = (char *)get(s, i);
	const char *hemisphere = get(s, i + 1);
	char positive = latitude ? 'N' : 'E', negative = latitude ? 'S' : 'W';
	size_t len = strlen(text), int_digits = strspn(text, "0123456789");
	double limit = latitude ? 90.0 : 180.0, degrees = 0;
	char reason[MESSAGE_WHY_MAX];
	struct cg_field minutes;

	*ret_present = false;
	if (!len && !*hemisphere)
		return 0;
	if (!len || strlen(hemisphere) != 1 ||
	    (hemisphere[0] != positive && hemisphere[0] != negative))
		return fail(why, why_size, "%s \"%.20s\" with hemisphere \"%.4s\"", what, text,
			    hemisphere);
	/* Up to two (three) digits of degrees, then whole minutes in two digits and
	 * their fraction. The two parts are converted apart: 4807.038 - 4800 is not
	 * 7.038 in binary floating point. */
	if (int_digits < 3 || int_digits > (latitude ? 4u : 5u) ||
	    (text[int_digits] &&
	     (text[int_digits] != '.' ||
	      strspn(text + int_digits + 1, "0123456789") + int_digits + 1 != len)))
		return fail(why, why_size, "%s \"%.20s\" is not %s", what, text,
			    latitude ? "ddmm.mmmm" : "dddmm.mmmm");
	for (size_t d = 0; d + 2 < int_digits; d++)
		degrees = degrees * 10 + (text[d] - '0');
	if (value_parse(text + int_digits - 2, len - (int_digits - 2), VALUE_F64, &minutes, reason,
			sizeof(reason)) < 0)
		return fail(why, why_size, "%s \"%.20s\": %s", what, text, reason);
	if (minutes.value.f64 >= 60.0)
		return fail(why, why_size, "%s \"%.20s\" has 60 minutes or more", what, text);
	degrees += minutes.value.f64 / 60.0;
	if (degrees > limit)
		return fail(why, why_size, "%s \"%.20s\" is beyond %g degrees", what, text, limit);
	degrees = round_decimals(degrees, fraction_digits(text, int_digits) + 2);
	*ret = hemisphere[0] == negative ? -degrees : degrees;
	*ret_present = true;
	return 0;
}

static int two_digits(const char *p)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return -1;
	return (p[0] - '0') * 10 + (p[1] - '0');
}

/* Days since 1970-01-01 of a date in the proleptic Gregorian calendar (Howard
 * Hinnant's days_from_civil), without timegm() and the time zone it drags in. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* "hhmmss" with an optional fraction: milliseconds since midnight. */
static int time_of_day(const char *text, int64_t *ret_ms, char *why, size_t why_size)
{
	int hh, mm, ss;
	int64_t ms = 0, scale = 100;
	const char *p;

	if (strlen(text) < 6 || (hh = two_digits(text)) < 0 || (mm = two_digits(text + 2)) < 0 ||
	    (ss = two_digits(text + 4)) < 0 || hh > 23 || mm > 59 || ss > 60)
		return fail(why, why_size, "the time \"%.20s\" is not hhmmss", text);
	p = text + 6;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			ms += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p)
		return fail(why, why_size, "the time \"%.20s\" is not hhmmss.sss", text);
	*ret_ms = ((int64_t)hh * 3600 + mm * 60 + ss) * 1000 + ms;
	return 0;
}

/* "ddmmyy" and a time of day: milliseconds since the epoch. Years 80 to 99 are 19xx. */
static int date_time(const char *date, const char *time, int64_t *ret_ms, char *why,
		     size_t why_size)
{
	static const int days_in_month[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int64_t ms = 0;
	int dd, mo, yy, year;
	int r;

	if (strlen(date) != 6 || (dd = two_digits(date)) < 0 || (mo = two_digits(date + 2)) < 0 ||
	    (yy = two_digits(date + 4)) < 0 || mo < 1 || mo > 12 || dd < 1 ||
	    dd > days_in_month[mo - 1])
		return fail(why, why_size, "the date \"%.20s\" is not ddmmyy", date);
	year = yy < 80 ? 2000 + yy : 1900 + yy;
	if (mo == 2 && dd == 29 && !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
		return fail(why, why_size, "the date \"%.20s\" is not ddmmyy", date);
	r = time_of_day(time, &ms, why, why_size);
	if (r < 0)
		return r;
	*ret_ms = days_from_civil(year, mo, dd) * 86400000 + ms;
	return 0;
}

/* Latitude (i) and longitude (i + 2), each with its hemisphere. */
static int position(const struct sentence *s, size_t i, struct message *m, char *why,
		    size_t why_size)
{
	double lat = 0, lon = 0;
	bool has_lat, has_lon;
	int r;

	r = coordinate(s, i, true, &lat, &has_lat, why, why_size);
	if (r < 0)
		return r;
	r = coordinate(s, i + 2, false, &lon, &has_lon, why, why_size);
	if (r < 0)
		return r;
	if (has_lat)
		add_f64(m, "latitude", lat);
	if (has_lon)
		add_f64(m, "longitude", lon);
	return 0;
}

/* An optional number at field i, added as name when present. */
static int optional(const struct sentence *s, size_t i, enum value_type type, const char *name,
		    struct message *m, char *why, size_t why_size)
{
	struct cg_field f;
	bool present;
	int r = number(s, i, type, name, &f, &present, why, why_size);

	if (r < 0 || !present)
		return r;
	if (type == VALUE_I64)
		add_i64(m, name, f.value.i64);
	else
		add_f64(m, name, f.value.f64);
	return 0;
}

/*
 * GGA: 1 time, 2-5 position, 6 fix quality, 7 satellites, 8 HDOP, 9-10 altitude (M),
 * 11-12 geoid separation (M), 13 DGPS age, 14 DGPS station. Without a fix (quality 0)
 * the position is not one, even where a receiver repeats its last: left out.
 */
static int parse_gga(const struct sentence *s, struct message *m, char *why, size_t why_size)
{
	struct cg_field quality;
	bool has_quality;
	int r;

	if (s->n < 11)
		return fail(why, why_size, "GGA with %zu fields, expected 14", s->n - 1);
	r = number(s, 6, VALUE_I64, "fix quality", &quality, &has_quality, why, why_size);
	if (r < 0)
		return r;
	if (has_quality)
		add_i64(m, "fix_quality", quality.value.i64);
	if (!has_quality || quality.value.i64 != 0) {
		r = position(s, 2, m, why, why_size);
		if (r < 0)
			return r;
		if (*get(s, 10) && strcmp(get(s, 10), "M") != 0)
			return fail(why, why_size, "altitude in \"%.8s\", not M", get(s, 10));
		r = optional(s, 9, VALUE_F64, "altitude", m, why, why_size);
		if (r == 0)
			r = optional(s, 11, VALUE_F64, "geoid_separation", m, why, why_size);
		if (r == 0)
			r = optional(s, 8, VALUE_F64, "hdop", m, why, why_size);
		if (r < 0)
			return r;
	}
	return optional(s, 7, VALUE_I64, "satellites", m, why, why_size);
}

/*
 * RMC: 1 time, 2 status (A valid, V void), 3-6 position, 7 speed (knots), 8 course
 * (degrees true), 9 date, 10-11 magnetic variation, 12 mode (NMEA 2.3). With status V
 * position, speed and course are not valid: left out; date and time are kept, a
 * receiver often knows the time before it has a fix.
 */
static int parse_rmc(const struct sentence *s, struct message *m, char *why, size_t why_size)
{
	const char *status = get(s, 2), *mode = get(s, 12);
	struct cg_field speed;
	bool has_speed;
	int64_t ms = 0;
	int r;

	if (s->n < 10)
		return fail(why, why_size, "RMC with %zu fields, expected 12 or more", s->n - 1);
	if (strcmp(status, "A") != 0 && strcmp(status, "V") != 0)
		return fail(why, why_size, "RMC status \"%.8s\", not A or V", status);
	add(m, "valid", CG_FIELD_BOOL);
	m->fields[m->reading.n_fields - 1].value.b = status[0] == 'A';
	if (status[0] == 'A') {
		r = position(s, 3, m, why, why_size);
		if (r < 0)
			return r;
		r = number(s, 7, VALUE_F64, "speed", &speed, &has_speed, why, why_size);
		if (r < 0)
			return r;
		/* Knots as the receiver sent them, and no m/s beside them: the same
		 * speed twice, the second with 17 digits, would cost a reading more bytes
		 * on the wire than the backend needs to multiply by 0.514444. */
		if (has_speed)
			add_f64(m, "speed_knots", speed.value.f64);
		r = optional(s, 8, VALUE_F64, "course", m, why, why_size);
		if (r < 0)
			return r;
	}
	if (*get(s, 1) && *get(s, 9)) {
		r = date_time(get(s, 9), get(s, 1), &ms, why, why_size);
		if (r < 0)
			return r;
		add_i64(m, "gps_time_ms", ms);
	}
	if (strlen(mode) == 1 && mode[0] >= 'A' && mode[0] <= 'Z') {
		add(m, "mode", CG_FIELD_STRING);
		m->fields[m->reading.n_fields - 1].value.str = mode;
	}
	return 0;
}

int parse_nmea(char *data, size_t len, struct message *m, char *why, size_t why_size)
{
	struct sentence s;
	const char *address, *type;
	size_t body_len = 0;
	int r;

	r = check_sentence(data, len, &body_len, why, why_size);
	if (r < 0)
		return r;
	r = split(data + 1, body_len, &s, why, why_size);
	if (r < 0)
		return r;
	/* "$" and a five-letter address, talker and type; '!' sentences are AIS data,
	 * addresses that begin with P proprietary. */
	address = s.field[0];
	if (data[0] != '$' || strlen(address) != 5 || address[0] == 'P' || address[0] < 'A' ||
	    address[0] > 'Z' || address[1] < 'A' || address[1] > 'Z')
		return PARSE_SKIP;
	type = address + 2;
	if (strcmp(type, "GGA") == 0)
		r = parse_gga(&s, m, why, why_size);
	else if (strcmp(type, "RMC") == 0)
		r = parse_rmc(&s, m, why, why_size);
	else
		return PARSE_SKIP;
	if (r < 0)
		return r;
	/* The sentence, "GPGGA", tells the two apart in the reading. */
	add(m, "sentence", CG_FIELD_STRING);
	m->fields[m->reading.n_fields - 1].value.str = address;
	return PARSE_READING;
}
