/* SPDX-License-Identifier: MIT */
/*
 * The declarative option tables of plugin.h (struct cg_option), applied to libconfig
 * settings. The daemon's own settings and every plugin instance are parsed by this one
 * module, so that every key in every file follows the same syntax and error rules.
 *
 * Errors are logged as "FILE:LINE: CONTEXT option "KEY": what is wrong", every one
 * found, and then reported with -EINVAL.
 */
#ifndef COAPGATE_OPTIONS_H
#define COAPGATE_OPTIONS_H

#include <coapgate/plugin.h>
#include <libconfig.h>
#include <stdio.h>

/*
 * Check a table for mistakes of its author: unknown types, members outside conf_size,
 * enums without choices, lists without a sub-table, defaults that do not parse,
 * duplicate keys. owner names the plugin (file) in messages. 0 or -EINVAL (logged).
 */
int options_check_table(const struct cg_option *table, size_t conf_size, const char *owner);

/* Store every default of table into base (zeroed, conf_size bytes). Tables that passed
 * options_check_table() cannot fail here. */
void options_set_defaults(const struct cg_option *table, void *base);

/*
 * Where the values of a parsed group were written in the configuration: one entry per
 * setting and per list element, with the bytes it filled and its FILE:LINE. It lets a
 * plugin's init() point at the line of a value that only it can judge (cg_conf_error()).
 */
struct options_origin {
	const void *addr;
	size_t size;
	const char *file; /* owned by the options_origins; NULL when libconfig had none */
	unsigned line;
};

struct options_origins {
	struct options_origin *items;
	size_t count;
	char **files; /* each file name once */
	size_t n_files;
};

/*
 * Parse the members of group into base, which holds defaults (or values of an earlier
 * file: a value set again replaces the earlier one). Keys listed in skip_keys
 * (NULL-terminated, may be NULL) belong to the caller and are ignored; any other key
 * not in table is an error. When check_required is true, options flagged
 * CG_OPT_REQUIRED must be present in group. context prefixes every message, e.g.
 * "input \"boiler\": " (or ""). When origins is not NULL, where each setting and list
 * element came from is added to it.
 * Returns 0 or -EINVAL after logging each problem.
 */
int options_parse_group(const struct cg_option *table, const config_setting_t *group, void *base,
			const char *const *skip_keys, bool check_required, const char *context,
			struct options_origins *origins);

/* The innermost recorded setting whose bytes contain addr, or NULL. */
const struct options_origin *options_origins_find(const struct options_origins *origins,
						  const void *addr);

/* Free what options_parse_group() added; leaves an empty set. NULL is a no-op. */
void options_origins_free(struct options_origins *origins);

/* Free what options_set_defaults() and options_parse_group() allocated in base. */
void options_free(const struct cg_option *table, void *base);

/* Print the table for --help-plugin: key, type, default, range or choices, help. */
void options_print_help(FILE *f, const struct cg_option *table, int indent);

/* A short name of the type ("duration", "integer", ...). */
const char *options_type_name(enum cg_option_type type);

/* Log "FILE:LINE: message" for a setting; returns -EINVAL. */
int options_error(const config_setting_t *setting, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

#endif
