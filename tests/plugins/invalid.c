// SPDX-License-Identifier: MIT
/*
 * invalid: every `interval`, offers cg_emit() each reading of a table of invalid ones,
 * then one valid reading {round: R}. It logs what cg_emit() returned for each:
 *     case "<label>": cg_emit returned -22
 * at info level when that is the expected code, and at error level, with "expected",
 * when it is not. Tests check that the daemon rejects every bad reading with a reason
 * and still prints the valid ones.
 */
#include <coapgate/plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct invalid_conf {
	uint64_t interval_usec;
};

static const struct cg_option invalid_options[] = {
	{
	    .key = "interval",
	    .type = CG_OPT_DURATION,
	    .offset = offsetof(struct invalid_conf, interval_usec),
	    .default_value = "1s",
	    .min = 1000,	  /* 1 ms */
	    .max = 86400000000LL, /* 1 day */
	    .help = "Time between two rounds of bad readings and a good one.",
	},
	{ 0 },
};

static const struct cg_field one_field[] = {
	{ "x", CG_FIELD_I64, { .i64 = 1 } },
};
static const struct cg_field bad_name[] = {
	{ "bad name!", CG_FIELD_I64, { .i64 = 1 } },
};
static const struct cg_field empty_name[] = {
	{ "", CG_FIELD_I64, { .i64 = 1 } },
};
static const struct cg_field null_name[] = {
	{ NULL, CG_FIELD_I64, { .i64 = 1 } },
};
static const struct cg_field duplicate[] = {
	{ "x", CG_FIELD_I64, { .i64 = 1 } },
	{ "x", CG_FIELD_F64, { .f64 = 2.0 } },
};
static const struct cg_field bad_utf8[] = {
	{ "s", CG_FIELD_STRING, { .str = "caf\xc3" } },
};
static const struct cg_field null_string[] = {
	{ "s", CG_FIELD_STRING, { .str = NULL } },
};
static const struct cg_field unknown_type[] = {
	{ "x", (enum cg_field_type)99, { .i64 = 1 } },
};

/* Per instance, built by invalid_init(): too large to spell out. */
struct invalid {
	const struct invalid_conf *conf;
	char long_string[CG_STRING_MAX + 2];
	struct cg_field long_field[1];
	struct cg_field too_many[CG_FIELDS_MAX + 1];
};

struct bad_reading {
	const char *label;
	struct cg_reading reading;
};

static int invalid_init(struct cg_instance *inst, const void *conf, void **ret_state)
{
	struct invalid *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->conf = conf;
	memset(s->long_string, 'a', sizeof(s->long_string) - 1);
	s->long_field[0] = (struct cg_field){ "s", CG_FIELD_STRING, { .str = s->long_string } };
	for (size_t i = 0; i < CG_FIELDS_MAX + 1; i++)
		s->too_many[i] = (struct cg_field){ "x", CG_FIELD_BOOL, { .b = true } };
	*ret_state = s;
	return 0;
}

static void check(struct cg_instance *inst, const char *label, int r, int expected)
{
	if (r == expected)
		cg_log_info(inst, "case \"%s\": cg_emit returned %d", label, r);
	else
		cg_log_error(inst, "case \"%s\": cg_emit returned %d, expected %d", label, r,
			     expected);
}

static int invalid_run(struct cg_instance *inst, void *state)
{
	struct invalid *s = state;
	const struct bad_reading bad[] = {
		{ "no fields", { .fields = one_field, .n_fields = 0 } },
		{ "NULL fields", { .fields = NULL, .n_fields = 1 } },
		{ "too many fields", { .fields = s->too_many, .n_fields = CG_FIELDS_MAX + 1 } },
		{ "bad field name", { .fields = bad_name, .n_fields = 1 } },
		{ "empty field name", { .fields = empty_name, .n_fields = 1 } },
		{ "NULL field name", { .fields = null_name, .n_fields = 1 } },
		{ "duplicate field name", { .fields = duplicate, .n_fields = 2 } },
		{ "negative timestamp",
		  { .timestamp_ms = -1, .fields = one_field, .n_fields = 1 } },
		{ "bad topic", { .topic = "a//b", .fields = one_field, .n_fields = 1 } },
		{ "invalid UTF-8", { .fields = bad_utf8, .n_fields = 1 } },
		{ "NULL string", { .fields = null_string, .n_fields = 1 } },
		{ "string too long", { .fields = s->long_field, .n_fields = 1 } },
		{ "unknown type", { .fields = unknown_type, .n_fields = 1 } },
	};

	for (int64_t round = 1; !cg_should_stop(inst); round++) {
		const struct cg_field good[] = { { "round", CG_FIELD_I64, { .i64 = round } } };
		const struct cg_reading reading = { .fields = good, .n_fields = 1 };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			check(inst, bad[i].label, cg_emit(inst, &bad[i].reading), -EINVAL);
		check(inst, "NULL reading", cg_emit(inst, NULL), -EINVAL);
		check(inst, "valid", cg_emit(inst, &reading), 0);
		(void)cg_sleep(inst, s->conf->interval_usec);
	}
	return 0;
}

static void invalid_destroy(void *state)
{
	free(state);
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,
	.name = "invalid",
	.version = "1.0",
	.description = "Test: offers invalid readings and checks that cg_emit() refuses them.",
	.options = invalid_options,
	.conf_size = sizeof(struct invalid_conf),
	.init = invalid_init,
	.run = invalid_run,
	.destroy = invalid_destroy,
};
