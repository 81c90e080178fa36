// SPDX-License-Identifier: MIT
/*
 * serial: readings from RS-232, RS-485 and USB serial lines; README.md is the user's
 * manual. This file is the plugin's face to the daemon: the options, init() with
 * every check the option table cannot make, and destroy(). The device is opened by
 * run() (run.c), never here: `coapgated -t` must pass with the adapter unplugged.
 */
#include <coapgate/plugin.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reading.h"
#include "serial.h"

static const char *const parity_names[] = { "none", "even", "odd", "mark", "space", NULL };
static const char *const flow_names[] = { "none", "rtscts", "xonxoff", NULL };
static const char *const framing_names[] = { "terminator", "idle", NULL };
static const char *const format_names[] = { "json", "kv", "csv", "regex", "nmea", NULL };

/* One csv column, or the type of a regex group or a kv key. */
static const struct cg_option field_options[] = {
	{ .key = "name",
	  .type = CG_OPT_STRING,
	  .offset = offsetof(struct field_spec, name),
	  .help = "The field's name: 1 to 64 of A-Z a-z 0-9 _ . - (a skipped column needs none)." },
	{ .key = "type",
	  .type = CG_OPT_ENUM,
	  .offset = offsetof(struct field_spec, type),
	  .default_value = "f64",
	  .choices = value_type_names,
	  .help = "f64, i64, bool or string; skip: leave the value out." },
	{ 0 },
};

/* kv: white space (line ends too), commas and semicolons between pairs, in any run. */
#define DEFAULT_PAIR_SEPARATORS " \t\r\n,;"

#define C(member) offsetof(struct serial_conf, member)

static const struct cg_option serial_options[] = {
	{ .key = "device",
	  .type = CG_OPT_STRING,
	  .offset = C(device),
	  .flags = CG_OPT_REQUIRED,
	  .help = "The serial device; prefer its stable name under /dev/serial/by-id/." },
	{ .key = "baud",
	  .type = CG_OPT_INT,
	  .offset = C(baud),
	  .default_value = "9600",
	  .min = 50,
	  .max = 4000000,
	  .help = "Line rate in bits per second: a standard rate from 50 to 4000000." },
	{ .key = "data_bits",
	  .type = CG_OPT_INT,
	  .offset = C(data_bits),
	  .default_value = "8",
	  .min = 5,
	  .max = 8,
	  .help = "Data bits per character." },
	{ .key = "parity",
	  .type = CG_OPT_ENUM,
	  .offset = C(parity),
	  .default_value = "none",
	  .choices = parity_names,
	  .help = "Parity bit; a character that fails it makes its frame bad." },
	{ .key = "stop_bits",
	  .type = CG_OPT_INT,
	  .offset = C(stop_bits),
	  .default_value = "1",
	  .min = 1,
	  .max = 2,
	  .help = "Stop bits per character." },
	{ .key = "flow_control",
	  .type = CG_OPT_ENUM,
	  .offset = C(flow_control),
	  .default_value = "none",
	  .choices = flow_names,
	  .help = "rtscts: hardware handshake; xonxoff: the device is paused with XOFF." },
	{ .key = "exclusive",
	  .type = CG_OPT_BOOL,
	  .offset = C(exclusive),
	  .default_value = "true",
	  .help = "Keep other programs from opening the device while it is open (TIOCEXCL)." },
	{ .key = "rs485",
	  .type = CG_OPT_BOOL,
	  .offset = C(rs485),
	  .default_value = "false",
	  .help = "Switch the port to RS-485 mode (TIOCSRS485); a driver without it fails the "
		  "run; false leaves the mode as it is." },
	{ .key = "rs485_rts_on_send",
	  .type = CG_OPT_BOOL,
	  .offset = C(rs485_rts_on_send),
	  .default_value = "true",
	  .help = "RS-485: RTS is high while sending, low otherwise (false: the reverse)." },
	{ .key = "framing",
	  .type = CG_OPT_ENUM,
	  .offset = C(framing),
	  .default_value = "terminator",
	  .choices = framing_names,
	  .help = "terminator: a frame ends at the terminator; idle: when the line falls quiet "
		  "for idle_gap." },
	{ .key = "terminator",
	  .type = CG_OPT_STRING,
	  .offset = C(terminator),
	  .help = "The bytes that end a frame, 1 to 16, with escapes such as \"\\r\\n\" or "
		  "\"\\x03\"; unset: \"\\n\"." },
	{ .key = "terminator_hex",
	  .type = CG_OPT_STRING,
	  .offset = C(terminator_hex),
	  .help = "The terminator in hex, \"0d0a\"; instead of terminator, for one with a NUL "
		  "byte." },
	{ .key = "max_frame",
	  .type = CG_OPT_SIZE,
	  .offset = C(max_frame),
	  .default_value = "4K",
	  .min = 16,
	  .max = 1 << 20,
	  .help = "Longest frame in bytes, without its terminator; a longer one is counted as "
		  "bad and discarded to its end." },
	{ .key = "idle_gap",
	  .type = CG_OPT_DURATION,
	  .offset = C(idle_gap_usec),
	  .default_value = "50ms",
	  .min = 1000,
	  .max = 60000000,
	  .help = "Quiet time that ends a frame (framing = \"idle\"), and after opening tells "
		  "that the line is between frames." },
	{ .key = "format",
	  .type = CG_OPT_ENUM,
	  .offset = C(format),
	  .choices = format_names,
	  .flags = CG_OPT_REQUIRED,
	  .help = "How a frame becomes a reading: json, kv (key=value), csv, regex, nmea "
		  "(GGA, RMC)." },
	{ .key = "columns",
	  .type = CG_OPT_LIST,
	  .offset = C(columns),
	  .sub = field_options,
	  .elem_size = sizeof(struct field_spec),
	  .help = "csv: every column in order, ( { name = \"t\"; type = \"f64\"; }, ... )." },
	{ .key = "delimiter",
	  .type = CG_OPT_STRING,
	  .offset = C(delimiter),
	  .default_value = ",",
	  .help = "csv: the one character between columns; a space or tab: runs of white "
		  "space." },
	{ .key = "pattern",
	  .type = CG_OPT_STRING,
	  .offset = C(pattern),
	  .help = "regex: a POSIX extended regular expression; (?<name>...) groups become "
		  "fields." },
	{ .key = "fields",
	  .type = CG_OPT_LIST,
	  .offset = C(fields),
	  .sub = field_options,
	  .elem_size = sizeof(struct field_spec),
	  .help = "regex: types of the named groups (default f64); kv: types of keys (default: "
		  "by the value's look)." },
	{ .key = "pair_separators",
	  .type = CG_OPT_STRING,
	  .offset = C(pair_separators),
	  .help = "kv: characters between pairs, runs of them count as one; unset: white "
		  "space (line ends too), \",\" and \";\"." },
	{ .key = "key_separators",
	  .type = CG_OPT_STRING,
	  .offset = C(key_separators),
	  .default_value = "=",
	  .help = "kv: characters between a key and its value." },
	{ .key = "log_interval",
	  .type = CG_OPT_DURATION,
	  .offset = C(log_interval_usec),
	  .default_value = "1min",
	  .min = 1000000,
	  .max = 86400000000LL,
	  .help = "Bad frames: the first is logged at once, the rest summed up this often." },
	{ 0 },
};

#undef C

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int check_terminator(struct cg_instance *inst, const struct serial_conf *c,
			    struct framer_conf *fc)
{
	size_t len;

	fc->mode = (enum framer_mode)c->framing;
	if (c->framing == FRAMER_IDLE) {
		if (c->terminator)
			return cg_conf_error(inst, &c->terminator,
					     "terminator is not used with framing = \"idle\"");
		if (c->terminator_hex)
			return cg_conf_error(inst, &c->terminator_hex,
					     "terminator_hex is not used with framing = \"idle\"");
		return 0;
	}
	if (c->terminator && c->terminator_hex)
		return cg_conf_error(inst, &c->terminator_hex,
				     "set terminator or terminator_hex, not both");
	if (c->terminator_hex) {
		len = strlen(c->terminator_hex);
		if (len == 0 || len % 2 || len / 2 > FRAMER_TERMINATOR_MAX)
			return cg_conf_error(inst, &c->terminator_hex,
					     "terminator_hex \"%s\" is not 1 to %d bytes in hex",
					     c->terminator_hex, FRAMER_TERMINATOR_MAX);
		for (size_t i = 0; i < len; i += 2) {
			int hi = hex_digit(c->terminator_hex[i]),
			    lo = hex_digit(c->terminator_hex[i + 1]);

			if (hi < 0 || lo < 0)
				return cg_conf_error(inst, &c->terminator_hex,
						     "terminator_hex \"%s\" is not hex digits",
						     c->terminator_hex);
			fc->terminator[i / 2] = (char)(hi << 4 | lo);
		}
		fc->terminator_len = len / 2;
		return 0;
	}
	if (!c->terminator) {
		fc->terminator[0] = '\n';
		fc->terminator_len = 1;
		return 0;
	}
	len = strlen(c->terminator);
	if (len == 0 || len > FRAMER_TERMINATOR_MAX)
		return cg_conf_error(inst, &c->terminator,
				     "terminator must be 1 to %d bytes (for a NUL byte use "
				     "terminator_hex)",
				     FRAMER_TERMINATOR_MAX);
	memcpy(fc->terminator, c->terminator, len);
	fc->terminator_len = len;
	return 0;
}

/*
 * The elements of a list of fields: valid names, each once. A csv column that is
 * skipped needs no name. Reports every mistake; returns -EINVAL after any.
 */
static int check_fields(struct cg_instance *inst, const struct cg_list *list, const char *what,
			bool skip_needs_name, size_t *ret_emitted)
{
	const struct field_spec *items = list->items;
	size_t emitted = 0;
	int r = 0;

	for (size_t i = 0; i < list->count; i++) {
		const struct field_spec *f = &items[i];

		if (!f->name) {
			if (f->type != VALUE_SKIP)
				r = cg_conf_error(inst, f,
						  "%s %zu needs a name (or type = \"skip\")", what,
						  i + 1);
			else if (skip_needs_name)
				r = cg_conf_error(inst, f, "%s %zu needs a name", what, i + 1);
			continue;
		}
		if (!reading_field_name_is_valid(f->name)) {
			r = cg_conf_error(inst, &f->name,
					  "%s name \"%s\" is not 1 to %d of A-Z a-z 0-9 _ . -",
					  what, f->name, CG_FIELD_NAME_MAX);
			continue;
		}
		for (size_t j = 0; j < i; j++)
			if (items[j].name && strcmp(items[j].name, f->name) == 0) {
				r = cg_conf_error(inst, &f->name, "%s name \"%s\" appears twice",
						  what, f->name);
				break;
			}
		emitted += f->type != VALUE_SKIP;
	}
	*ret_emitted = emitted;
	return r;
}

static int check_csv(struct cg_instance *inst, const struct serial_conf *c, struct csv_format *csv)
{
	size_t emitted;
	int r;

	if (strlen(c->delimiter) != 1 || c->delimiter[0] == '"' || c->delimiter[0] == '\r' ||
	    c->delimiter[0] == '\n')
		return cg_conf_error(
		    inst, &c->delimiter,
		    "delimiter \"%s\" must be one character, not a quote or a line "
		    "end",
		    c->delimiter);
	if (c->columns.count == 0)
		return cg_conf_error(
		    inst, &c->columns,
		    "format = \"csv\" needs columns = ( { name = ...; type = ...; }, "
		    "... )");
	r = check_fields(inst, &c->columns, "column", false, &emitted);
	if (r < 0)
		return r;
	if (emitted == 0)
		return cg_conf_error(inst, &c->columns, "every column is skipped: no field");
	if (emitted > CG_FIELDS_MAX)
		return cg_conf_error(inst, &c->columns,
				     "%zu columns are not skipped, at most %d can be", emitted,
				     CG_FIELDS_MAX);
	*csv = (struct csv_format){ .delimiter = c->delimiter[0],
				    .columns = c->columns.items,
				    .n_columns = c->columns.count };
	return 0;
}

static int check_kv(struct cg_instance *inst, const struct serial_conf *c, struct kv_format *kv)
{
	const char *pairs = c->pair_separators ? c->pair_separators : DEFAULT_PAIR_SEPARATORS;
	size_t emitted;
	int r;

	if (!pairs[0])
		return cg_conf_error(inst, &c->pair_separators, "pair_separators is empty");
	if (!c->key_separators[0] || strchr(c->key_separators, '"'))
		return cg_conf_error(inst, &c->key_separators,
				     "key_separators must be one or more characters, not a quote");
	if (strchr(pairs, '"') || strpbrk(pairs, c->key_separators))
		return cg_conf_error(inst, &c->pair_separators,
				     "pair_separators has a quote or a key separator");
	r = check_fields(inst, &c->fields, "field", true, &emitted);
	if (r < 0)
		return r;
	*kv = (struct kv_format){ .pair_separators = pairs,
				  .key_separators = c->key_separators,
				  .types = c->fields.items,
				  .n_types = c->fields.count };
	return 0;
}

static int check_regex(struct cg_instance *inst, const struct serial_conf *c,
		       struct regex_format **ret)
{
	const struct field_spec *items = c->fields.items;
	char why[SERIAL_WHY_MAX];
	struct regex_format *rf;
	size_t emitted;
	int r = 0;

	if (!c->pattern)
		return cg_conf_error(inst, &c->pattern, "format = \"regex\" needs a pattern");
	if (check_fields(inst, &c->fields, "field", true, &emitted) < 0)
		return -EINVAL;
	r = regex_format_new(c->pattern, items, c->fields.count, &rf, why, sizeof(why));
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return cg_conf_error(inst, &c->pattern, "pattern: %s", why);
	for (size_t i = 0; i < c->fields.count; i++)
		if (!regex_format_has_group(rf, items[i].name))
			r = cg_conf_error(inst, &items[i].name,
					  "field \"%s\" has no group (?<%s>...) in the pattern",
					  items[i].name, items[i].name);
	if (r < 0) {
		regex_format_free(rf);
		return r;
	}
	*ret = rf;
	return 0;
}

/* Options of one format set for another: a mistake worth saying. */
static int check_unused(struct cg_instance *inst, const struct serial_conf *c)
{
	int r = 0;

	if (c->columns.count && c->format != FORMAT_CSV)
		r = cg_conf_error(inst, &c->columns, "columns is only used with format = \"csv\"");
	if (c->pattern && c->format != FORMAT_REGEX)
		r = cg_conf_error(inst, &c->pattern,
				  "pattern is only used with format = \"regex\"");
	if (c->fields.count && c->format != FORMAT_REGEX && c->format != FORMAT_KV)
		r = cg_conf_error(inst, &c->fields,
				  "fields is only used with format = \"regex\" or \"kv\"");
	return r;
}

static int check_port(struct cg_instance *inst, const struct serial_conf *c,
		      struct port_settings *p)
{
	char rates[512];

	if (c->device[0] != '/')
		return cg_conf_error(inst, &c->device, "device \"%s\" must be an absolute path",
				     c->device);
	*p = (struct port_settings){
		.path = c->device,
		.baud = (unsigned)c->baud,
		.data_bits = (unsigned)c->data_bits,
		.parity = (enum port_parity)c->parity,
		.stop_bits = (unsigned)c->stop_bits,
		.flow = (enum port_flow)c->flow_control,
		.exclusive = c->exclusive,
		.rs485 = c->rs485,
		.rs485_rts_on_send = c->rs485_rts_on_send,
	};
	if (port_speed(p->baud, &p->speed) < 0) {
		port_list_speeds(rates, sizeof(rates));
		return cg_conf_error(inst, &c->baud, "baud %u is not a standard rate: one of %s",
				     p->baud, rates);
	}
	return 0;
}

static void serial_destroy(void *state)
{
	struct serial *s = state;

	if (!s)
		return;
	framer_free(s->framer);
	regex_format_free(s->regex);
	free(s);
}

static int serial_init(struct cg_instance *inst, const void *conf, void **ret_state)
{
	const struct serial_conf *c = conf;
	struct framer_conf fc = { .max_frame = (size_t)c->max_frame };
	struct serial *s;
	int r = 0;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->inst = inst;
	s->conf = c;
	s->format.format = (enum serial_format)c->format;
	/* Report every mistake of the instance at once, then refuse. */
	if (check_port(inst, c, &s->port) < 0)
		r = -EINVAL;
	if (check_terminator(inst, c, &fc) < 0)
		r = -EINVAL;
	if (check_unused(inst, c) < 0)
		r = -EINVAL;
	switch (s->format.format) {
	case FORMAT_CSV:
		if (check_csv(inst, c, &s->format.csv) < 0)
			r = -EINVAL;
		break;
	case FORMAT_KV:
		if (check_kv(inst, c, &s->format.kv) < 0)
			r = -EINVAL;
		break;
	case FORMAT_REGEX: {
		int q = check_regex(inst, c, &s->regex);

		if (q < 0)
			r = q == -ENOMEM ? q : -EINVAL;
		s->format.regex = s->regex;
		break;
	}
	case FORMAT_JSON:
	case FORMAT_NMEA:
		break;
	}
	if (r == 0)
		r = framer_new(&fc, &s->framer);
	if (r < 0) {
		serial_destroy(s);
		return r;
	}
	*ret_state = s;
	return 0;
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,
	.name = "serial",
	.version = "1.0",
	.description = "Readings from RS-232, RS-485 and USB serial lines: JSON, key=value, "
		       "CSV, regex or NMEA 0183 frames.",
	.options = serial_options,
	.conf_size = sizeof(struct serial_conf),
	.init = serial_init,
	.run = serial_run,
	.destroy = serial_destroy,
};
