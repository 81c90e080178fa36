// SPDX-License-Identifier: MIT
/*
 * Option tables applied to libconfig settings; see options.h. One table-driven parser
 * serves the daemon's settings and every plugin, so the syntax of durations, sizes and
 * enums and the wording of errors are the same everywhere.
 */
#include "options.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "parse.h"
#include "util.h"

#define WHY_MAX 1024

static void *member(void *base, const struct cg_option *opt)
{
	return (char *)base + opt->offset;
}

static size_t storage_size(const struct cg_option *opt)
{
	switch (opt->type) {
	case CG_OPT_BOOL:
		return sizeof(bool);
	case CG_OPT_INT:
		return sizeof(int64_t);
	case CG_OPT_FLOAT:
		return sizeof(double);
	case CG_OPT_DURATION:
	case CG_OPT_SIZE:
		return sizeof(uint64_t);
	case CG_OPT_STRING:
		return sizeof(char *);
	case CG_OPT_ENUM:
		return sizeof(int);
	case CG_OPT_STRINGS:
		return sizeof(struct cg_strings);
	case CG_OPT_LIST:
		return sizeof(struct cg_list);
	case CG_OPT_GROUP:
		return 0; /* checked through its sub-table */
	}
	return SIZE_MAX;
}

/* The bytes a value of opt occupies in its struct; a group spans its members. */
static size_t value_size(const struct cg_option *opt)
{
	size_t end = 0;

	if (opt->type != CG_OPT_GROUP)
		return storage_size(opt);
	for (const struct cg_option *o = opt->sub; o && o->key; o++)
		end = MAX(end, o->offset + value_size(o));
	return end;
}

/* Remember that [addr, addr + size) was written from setting s. */
static void origins_add(struct options_origins *origins, const void *addr, size_t size,
			const config_setting_t *s)
{
	const char *file = config_setting_source_file(s);
	const char *interned = NULL;

	if (!origins)
		return;
	for (size_t i = 0; file && i < origins->n_files && !interned; i++)
		if (strcmp(origins->files[i], file) == 0)
			interned = origins->files[i];
	if (file && !interned) {
		origins->files = xrealloc(origins->files, (origins->n_files + 1) * sizeof(char *));
		interned = origins->files[origins->n_files++] = xstrdup(file);
	}
	origins->items =
	    xrealloc(origins->items, (origins->count + 1) * sizeof(struct options_origin));
	origins->items[origins->count++] = (struct options_origin){
		.addr = addr,
		.size = size,
		.file = interned,
		.line = config_setting_source_line(s),
	};
}

const struct options_origin *options_origins_find(const struct options_origins *origins,
						  const void *addr)
{
	const struct options_origin *best = NULL;
	uintptr_t a = (uintptr_t)addr;

	/* Settings are recorded outside in (a list element before its members), so on
	 * equal sizes the later one is the inner one. */
	for (size_t i = 0; origins && i < origins->count; i++) {
		const struct options_origin *o = &origins->items[i];
		uintptr_t start = (uintptr_t)o->addr;

		if (a >= start && a - start < MAX(o->size, (size_t)1) &&
		    (!best || o->size <= best->size))
			best = o;
	}
	return best;
}

void options_origins_free(struct options_origins *origins)
{
	if (!origins)
		return;
	for (size_t i = 0; i < origins->n_files; i++)
		free(origins->files[i]);
	free(origins->files);
	free(origins->items);
	*origins = (struct options_origins){ 0 };
}

const char *options_type_name(enum cg_option_type type)
{
	switch (type) {
	case CG_OPT_BOOL:
		return "boolean";
	case CG_OPT_INT:
		return "integer";
	case CG_OPT_FLOAT:
		return "number";
	case CG_OPT_DURATION:
		return "duration";
	case CG_OPT_SIZE:
		return "size";
	case CG_OPT_STRING:
		return "string";
	case CG_OPT_ENUM:
		return "enum";
	case CG_OPT_STRINGS:
		return "string array";
	case CG_OPT_LIST:
		return "list of groups";
	case CG_OPT_GROUP:
		return "group";
	}
	return "unknown";
}

/* What a value of the type looks like, for "expected ..." messages. */
static const char *type_example(enum cg_option_type type)
{
	switch (type) {
	case CG_OPT_BOOL:
		return "a boolean (true or false)";
	case CG_OPT_INT:
		return "an integer";
	case CG_OPT_FLOAT:
		return "a number";
	case CG_OPT_DURATION:
		return "a duration string such as \"500ms\", \"10s\" or \"5min\"";
	case CG_OPT_SIZE:
		return "a size such as 4096, \"64K\" or \"16M\"";
	case CG_OPT_STRING:
	case CG_OPT_ENUM:
		return "a string";
	case CG_OPT_STRINGS:
		return "an array of strings such as [\"a\", \"b\"]";
	case CG_OPT_LIST:
		return "a list of groups such as ( { ... }, { ... } )";
	case CG_OPT_GROUP:
		return "a group { ... }";
	}
	return "a value";
}

int options_error(const config_setting_t *setting, const char *format, ...)
{
	const char *file = config_setting_source_file(setting);
	char message[1024];
	va_list ap;

	va_start(ap, format);
	vsnprintf(message, sizeof(message), format, ap);
	va_end(ap);
	log_error("%s:%u: %s", file ? file : "(configuration)", config_setting_source_line(setting),
		  message);
	return -EINVAL;
}

static void format_bound(const struct cg_option *opt, int64_t v, char *buf, size_t size)
{
	if (opt->type == CG_OPT_DURATION)
		format_duration(buf, size, (uint64_t)v);
	else if (opt->type == CG_OPT_SIZE)
		format_size(buf, size, (uint64_t)v);
	else
		snprintf(buf, size, "%" PRId64, v);
}

static bool has_range(const struct cg_option *opt)
{
	return opt->min < opt->max && (opt->type == CG_OPT_INT || opt->type == CG_OPT_DURATION ||
				       opt->type == CG_OPT_SIZE);
}

static int check_range(const struct cg_option *opt, int64_t v, bool is_unsigned, char *why)
{
	char lo[64], hi[64], got[64];

	if (!has_range(opt))
		return 0;
	/* Unsigned values above INT64_MAX are above every range. */
	if ((is_unsigned && v < 0) || v < opt->min || v > opt->max) {
		format_bound(opt, opt->min, lo, sizeof(lo));
		format_bound(opt, opt->max, hi, sizeof(hi));
		if (is_unsigned && v < 0)
			snprintf(got, sizeof(got), "a value that large");
		else
			format_bound(opt, v, got, sizeof(got));
		snprintf(why, WHY_MAX, "%s is out of range, allowed %s to %s", got, lo, hi);
		return -ERANGE;
	}
	return 0;
}

static int enum_index(const struct cg_option *opt, const char *word)
{
	for (int i = 0; opt->choices[i]; i++)
		if (strcmp(opt->choices[i], word) == 0)
			return i;
	return -1;
}

static void describe_choices(const struct cg_option *opt, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = 0;
	for (size_t i = 0; opt->choices[i] && used < size; i++) {
		int w =
		    snprintf(buf + used, size - used, "%s\"%s\"", i ? ", " : "", opt->choices[i]);

		if (w < 0)
			return;
		used += (size_t)w;
	}
}

/*
 * Store a scalar written as text (a default from a table, or a string setting) into
 * dst. On failure returns a negative errno and writes the reason to why.
 */
static int store_text(const struct cg_option *opt, const char *text, void *dst, char *why)
{
	uint64_t u;
	int64_t i;
	double d;
	bool b;
	int r;

	switch (opt->type) {
	case CG_OPT_BOOL:
		r = parse_bool(text, &b);
		if (r < 0)
			break;
		*(bool *)dst = b;
		return 0;
	case CG_OPT_INT:
		r = parse_int64(text, &i);
		if (r < 0)
			break;
		r = check_range(opt, i, false, why);
		if (r < 0)
			return r;
		*(int64_t *)dst = i;
		return 0;
	case CG_OPT_FLOAT:
		r = parse_double(text, &d);
		if (r < 0)
			break;
		*(double *)dst = d;
		return 0;
	case CG_OPT_DURATION:
	case CG_OPT_SIZE:
		r = opt->type == CG_OPT_DURATION ? parse_duration(text, &u) : parse_size(text, &u);
		if (r == -ERANGE) {
			snprintf(why, WHY_MAX, "\"%s\" is too large", text);
			return r;
		}
		if (r < 0)
			break;
		r = check_range(opt, (int64_t)u, true, why);
		if (r < 0)
			return r;
		*(uint64_t *)dst = u;
		return 0;
	case CG_OPT_STRING:
		free(*(char **)dst);
		*(char **)dst = xstrdup(text);
		return 0;
	case CG_OPT_ENUM: {
		char choices[512];

		r = enum_index(opt, text);
		if (r >= 0) {
			*(int *)dst = r;
			return 0;
		}
		describe_choices(opt, choices, sizeof(choices));
		snprintf(why, WHY_MAX, "\"%s\" is not one of %s", text, choices);
		return -EINVAL;
	}
	default:
		snprintf(why, WHY_MAX, "has no text form");
		return -EINVAL;
	}
	snprintf(why, WHY_MAX, "expected %s, got \"%s\"", type_example(opt->type), text);
	return r;
}

static void free_value(const struct cg_option *opt, void *dst);

static void set_default(const struct cg_option *opt, void *dst)
{
	char why[WHY_MAX];

	switch (opt->type) {
	case CG_OPT_GROUP:
		options_set_defaults(opt->sub, dst);
		return;
	case CG_OPT_STRINGS:
	case CG_OPT_LIST:
		/* Zeroed by the caller: an empty array. */
		return;
	default:
		if (opt->default_value)
			(void)store_text(opt, opt->default_value, dst, why);
		return;
	}
}

void options_set_defaults(const struct cg_option *table, void *base)
{
	for (const struct cg_option *opt = table; opt && opt->key; opt++)
		set_default(opt, member(base, opt));
}

static int check_table(const struct cg_option *table, size_t conf_size, const char *owner,
		       const char *prefix)
{
	int r = 0;

	for (const struct cg_option *opt = table; opt && opt->key; opt++) {
		char why[WHY_MAX];
		size_t size = storage_size(opt);

		if (!*opt->key || strcspn(opt->key, ".[]/ ") != strlen(opt->key)) {
			log_error("%s: option \"%s%s\" has an invalid key", owner, prefix,
				  opt->key);
			r = -EINVAL;
			continue;
		}
		for (const struct cg_option *o = table; o < opt; o++)
			if (strcmp(o->key, opt->key) == 0) {
				log_error("%s: option \"%s%s\" is declared twice", owner, prefix,
					  opt->key);
				r = -EINVAL;
			}
		if (size == SIZE_MAX) {
			log_error("%s: option \"%s%s\" has unknown type %d", owner, prefix,
				  opt->key, (int)opt->type);
			r = -EINVAL;
			continue;
		}
		if (opt->offset > conf_size || size > conf_size - opt->offset) {
			log_error("%s: option \"%s%s\" lies outside the %zu-byte conf struct",
				  owner, prefix, opt->key, conf_size);
			r = -EINVAL;
			continue;
		}
		if (opt->type == CG_OPT_ENUM && (!opt->choices || !opt->choices[0])) {
			log_error("%s: enum option \"%s%s\" has no choices", owner, prefix,
				  opt->key);
			r = -EINVAL;
			continue;
		}
		if (opt->type == CG_OPT_LIST || opt->type == CG_OPT_GROUP) {
			char *sub_prefix = xasprintf("%s%s.", prefix, opt->key);
			size_t sub_size =
			    opt->type == CG_OPT_LIST ? opt->elem_size : conf_size - opt->offset;

			if (!opt->sub || (opt->type == CG_OPT_LIST && opt->elem_size == 0)) {
				log_error("%s: option \"%s%s\" has no sub-table or element size",
					  owner, prefix, opt->key);
				r = -EINVAL;
			} else if (check_table(opt->sub, sub_size, owner, sub_prefix) < 0) {
				r = -EINVAL;
			}
			free(sub_prefix);
			continue;
		}
		if (opt->default_value && opt->type != CG_OPT_STRINGS) {
			union {
				bool b;
				int64_t i;
				double d;
				uint64_t u;
				char *s;
				int e;
			} scratch = { 0 };

			if (store_text(opt, opt->default_value, &scratch, why) < 0) {
				log_error("%s: default of option \"%s%s\": %s", owner, prefix,
					  opt->key, why);
				r = -EINVAL;
			}
			if (opt->type == CG_OPT_STRING)
				free(scratch.s);
		}
	}
	return r;
}

int options_check_table(const struct cg_option *table, size_t conf_size, const char *owner)
{
	return check_table(table, conf_size, owner, "");
}

static int parse_setting(const struct cg_option *opt, const config_setting_t *s, void *dst,
			 bool check_required, const char *context, const char *path,
			 struct options_origins *origins);

static bool is_skipped(const char *name, const char *const *skip_keys)
{
	for (size_t i = 0; skip_keys && skip_keys[i]; i++)
		if (strcmp(skip_keys[i], name) == 0)
			return true;
	return false;
}

/* The key of a required option somewhere inside table (through groups), or NULL. */
static const char *first_required(const struct cg_option *table)
{
	for (const struct cg_option *o = table; o && o->key; o++) {
		if (o->flags & CG_OPT_REQUIRED)
			return o->key;
		if (o->type == CG_OPT_GROUP && first_required(o->sub))
			return o->key;
	}
	return NULL;
}

static int parse_group_at(const struct cg_option *table, const config_setting_t *group, void *base,
			  const char *const *skip_keys, bool check_required, const char *context,
			  const char *prefix, struct options_origins *origins)
{
	int r = 0;

	for (int i = 0; i < config_setting_length(group); i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct cg_option *opt = NULL;
		char *path;

		if (is_skipped(name, skip_keys))
			continue;
		for (const struct cg_option *o = table; o && o->key; o++)
			if (strcmp(o->key, name) == 0)
				opt = o;
		if (!opt) {
			r = options_error(s, "%sunknown option \"%s%s\"", context, prefix, name);
			continue;
		}
		path = xasprintf("%s%s", prefix, name);
		origins_add(origins, member(base, opt), value_size(opt), s);
		if (parse_setting(opt, s, member(base, opt), check_required, context, path,
				  origins) < 0)
			r = -EINVAL;
		free(path);
	}
	if (!check_required)
		return r;
	for (const struct cg_option *o = table; o && o->key; o++) {
		const char *inner;

		if (config_setting_get_member(group, o->key))
			continue;
		if (o->flags & CG_OPT_REQUIRED)
			r = options_error(group, "%smissing required option \"%s%s\" (%s)", context,
					  prefix, o->key, options_type_name(o->type));
		else if (o->type == CG_OPT_GROUP && (inner = first_required(o->sub)))
			r = options_error(group, "%smissing required option \"%s%s.%s\"", context,
					  prefix, o->key, inner);
	}
	return r;
}

int options_parse_group(const struct cg_option *table, const config_setting_t *group, void *base,
			const char *const *skip_keys, bool check_required, const char *context,
			struct options_origins *origins)
{
	return parse_group_at(table, group, base, skip_keys, check_required, context, "", origins);
}

static int wrong_type(const struct cg_option *opt, const config_setting_t *s, const char *context,
		      const char *path)
{
	return options_error(s, "%soption \"%s\": expected %s", context, path,
			     type_example(opt->type));
}

static int parse_strings(const struct cg_option *opt, const config_setting_t *s, void *dst,
			 const char *context, const char *path)
{
	struct cg_strings *v = dst;
	int n = config_setting_length(s);
	char **items;

	if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
		return wrong_type(opt, s, context, path);
	items = xcalloc((size_t)n + 1, sizeof(char *));
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			for (int j = 0; j < i; j++)
				free(items[j]);
			free(items);
			return options_error(e, "%soption \"%s\": element %d is not a string",
					     context, path, i);
		}
		items[i] = xstrdup(config_setting_get_string(e));
	}
	free_value(opt, dst);
	v->items = (const char *const *)items;
	v->count = (size_t)n;
	return 0;
}

static int parse_list(const struct cg_option *opt, const config_setting_t *s, void *dst,
		      const char *context, const char *path, struct options_origins *origins)
{
	struct cg_list *v = dst;
	int n = config_setting_length(s);
	char *items;
	int r = 0;

	if (!config_setting_is_list(s) && !(config_setting_is_array(s) && n == 0))
		return wrong_type(opt, s, context, path);
	items = xcalloc((size_t)n ? (size_t)n : 1, opt->elem_size);
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		void *elem = items + (size_t)i * opt->elem_size;
		char *prefix = xasprintf("%s[%d].", path, i);

		options_set_defaults(opt->sub, elem);
		origins_add(origins, elem, opt->elem_size, e);
		if (!config_setting_is_group(e))
			r = options_error(e, "%soption \"%s[%d]\": expected a group { ... }",
					  context, path, i);
		else if (parse_group_at(opt->sub, e, elem, NULL, true, context, prefix, origins) <
			 0)
			r = -EINVAL;
		free(prefix);
	}
	/* Replace the earlier value only when the new one is whole. */
	if (r < 0) {
		struct cg_list tmp = { items, (size_t)n };

		free_value(opt, &tmp);
		return r;
	}
	free_value(opt, dst);
	v->items = items;
	v->count = (size_t)n;
	return 0;
}

static int parse_setting(const struct cg_option *opt, const config_setting_t *s, void *dst,
			 bool check_required, const char *context, const char *path,
			 struct options_origins *origins)
{
	char why[WHY_MAX];
	int type = config_setting_type(s);
	long long ll;
	int r;

	switch (opt->type) {
	case CG_OPT_BOOL:
		if (type != CONFIG_TYPE_BOOL)
			return wrong_type(opt, s, context, path);
		*(bool *)dst = config_setting_get_bool(s);
		return 0;
	case CG_OPT_INT:
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
			return wrong_type(opt, s, context, path);
		ll = config_setting_get_int64(s);
		if (check_range(opt, ll, false, why) < 0)
			return options_error(s, "%soption \"%s\": %s", context, path, why);
		*(int64_t *)dst = ll;
		return 0;
	case CG_OPT_FLOAT:
		if (type == CONFIG_TYPE_FLOAT)
			*(double *)dst = config_setting_get_float(s);
		else if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
			*(double *)dst = (double)config_setting_get_int64(s);
		else
			return wrong_type(opt, s, context, path);
		return 0;
	case CG_OPT_SIZE:
		/* A plain integer is unambiguous for sizes: bytes. */
		if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
			ll = config_setting_get_int64(s);
			if (ll < 0)
				return options_error(
				    s, "%soption \"%s\": a size cannot be negative", context, path);
			if (check_range(opt, ll, true, why) < 0)
				return options_error(s, "%soption \"%s\": %s", context, path, why);
			*(uint64_t *)dst = (uint64_t)ll;
			return 0;
		}
		/* fall through */
	case CG_OPT_DURATION:
	case CG_OPT_STRING:
	case CG_OPT_ENUM:
		if (type != CONFIG_TYPE_STRING)
			return wrong_type(opt, s, context, path);
		r = store_text(opt, config_setting_get_string(s), dst, why);
		if (r < 0)
			return options_error(s, "%soption \"%s\": %s", context, path, why);
		return 0;
	case CG_OPT_STRINGS:
		return parse_strings(opt, s, dst, context, path);
	case CG_OPT_LIST:
		return parse_list(opt, s, dst, context, path, origins);
	case CG_OPT_GROUP: {
		char *prefix;

		if (!config_setting_is_group(s))
			return wrong_type(opt, s, context, path);
		prefix = xasprintf("%s.", path);
		r = parse_group_at(opt->sub, s, dst, NULL, check_required, context, prefix,
				   origins);
		free(prefix);
		return r;
	}
	}
	return wrong_type(opt, s, context, path);
}

static void free_value(const struct cg_option *opt, void *dst)
{
	switch (opt->type) {
	case CG_OPT_STRING:
		free(*(char **)dst);
		*(char **)dst = NULL;
		break;
	case CG_OPT_STRINGS: {
		struct cg_strings *v = dst;

		for (size_t i = 0; i < v->count; i++)
			free((char *)v->items[i]);
		free((void *)v->items);
		v->items = NULL;
		v->count = 0;
		break;
	}
	case CG_OPT_LIST: {
		struct cg_list *v = dst;

		for (size_t i = 0; i < v->count; i++)
			options_free(opt->sub, (char *)v->items + i * opt->elem_size);
		free((void *)v->items);
		v->items = NULL;
		v->count = 0;
		break;
	}
	case CG_OPT_GROUP:
		options_free(opt->sub, dst);
		break;
	default:
		break;
	}
}

void options_free(const struct cg_option *table, void *base)
{
	if (!base)
		return;
	for (const struct cg_option *opt = table; opt && opt->key; opt++)
		free_value(opt, member(base, opt));
}

static void print_option(FILE *f, const struct cg_option *opt, int indent)
{
	char lo[64], hi[64], choices[512];

	fprintf(f, "%*s%s (%s%s)", indent, "", opt->key, options_type_name(opt->type),
		(opt->flags & CG_OPT_REQUIRED) ? ", required" : "");
	if (opt->default_value)
		fprintf(f, ", default %s%s%s", opt->type == CG_OPT_STRING ? "\"" : "",
			opt->default_value, opt->type == CG_OPT_STRING ? "\"" : "");
	if (has_range(opt)) {
		format_bound(opt, opt->min, lo, sizeof(lo));
		format_bound(opt, opt->max, hi, sizeof(hi));
		fprintf(f, ", %s to %s", lo, hi);
	}
	if (opt->type == CG_OPT_ENUM) {
		describe_choices(opt, choices, sizeof(choices));
		fprintf(f, ", one of %s", choices);
	}
	fputc('\n', f);
	if (opt->help)
		fprintf(f, "%*s    %s\n", indent, "", opt->help);
	if (opt->type == CG_OPT_LIST || opt->type == CG_OPT_GROUP)
		options_print_help(f, opt->sub, indent + 4);
}

void options_print_help(FILE *f, const struct cg_option *table, int indent)
{
	for (const struct cg_option *opt = table; opt && opt->key; opt++)
		print_option(f, opt, indent);
}
