// SPDX-License-Identifier: MIT
/*
 * Frames matched by a POSIX extended regular expression (regcomp(3), REG_EXTENDED),
 * whose named groups become fields; see formats.h and README.md ("regex").
 *
 * POSIX has no named groups, so the pattern is rewritten before regcomp(): each
 * (?<name> (or Python's (?P<name>) becomes a plain "(", and the name is remembered
 * with the number of its group. Every other "(" outside a bracket expression and not
 * escaped is a capturing group in ERE, which is what the count relies on; regcomp()'s
 * own count (re_nsub) is compared with it to be sure.
 *
 * Groups may nest, so a string value cannot be terminated in the frame (the NUL would
 * cut the enclosing group short): string values are copied to a scratch buffer with
 * room for each string group's longest value, CG_STRING_MAX bytes; a longer one would
 * be refused by the daemon anyway.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"
#include "reading.h"

struct named_group {
	size_t group; /* the number of its parenthesis, from 1 */
	const char *name;
	enum value_type type;
};

struct regex_format {
	regex_t re;
	bool compiled;
	struct named_group groups[CG_FIELDS_MAX];
	size_t n_groups;
	regmatch_t *matches; /* re_nsub + 1 */
	size_t n_matches;
	char *names;   /* the names, NUL-separated */
	char *scratch; /* string values of one frame, CG_STRING_MAX + 1 per string group */
};

void regex_format_free(struct regex_format *rf)
{
	if (!rf)
		return;
	if (rf->compiled)
		regfree(&rf->re);
	free(rf->matches);
	free(rf->names);
	free(rf->scratch);
	free(rf);
}

/* The bracket expression opening at p[0] == '[': where it ends (after its ']'), or
 * NULL when it does not (regcomp() says so better). Inside, a backslash is a plain
 * character, and "]" first or after "^" is a member. */
static const char *skip_bracket(const char *p)
{
	p++;
	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	while (*p && *p != ']') {
		if (p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			char close = p[1];

			p += 2;
			while (*p && !(p[0] == close && p[1] == ']'))
				p++;
			if (!*p)
				return NULL;
			p += 2;
			continue;
		}
		p++;
	}
	return *p ? p + 1 : NULL;
}

/* "(?<name>" or "(?P<name>" at p: the name's start and length, and the text's end. */
static bool named_group_at(const char *p, const char **ret_name, size_t *ret_len,
			   const char **ret_after)
{
	const char *name, *close;

	if (p[0] != '(' || p[1] != '?')
		return false;
	if (p[2] == '<')
		name = p + 3;
	else if (p[2] == 'P' && p[3] == '<')
		name = p + 4;
	else
		return false;
	close = strchr(name, '>');
	if (!close)
		return false;
	*ret_name = name;
	*ret_len = (size_t)(close - name);
	*ret_after = close + 1;
	return true;
}

static enum value_type type_of(const struct field_spec *types, size_t n_types, const char *name)
{
	for (size_t i = 0; i < n_types; i++)
		if (strcmp(types[i].name, name) == 0)
			return (enum value_type)types[i].type;
	return VALUE_F64;
}

/*
 * Rewrite pattern into out (as long as pattern, plus its NUL) and record its named
 * groups, their names copied to rf->names (as long as pattern too).
 */
static int rewrite(struct regex_format *rf, const char *pattern, char *out, size_t *ret_groups,
		   char *why, size_t why_size)
{
	const char *p = pattern;
	char *w = out, *names = rf->names;
	size_t group = 0;

	while (*p) {
		const char *name, *after, *end;
		size_t name_len;

		if (*p == '\\') {
			*w++ = *p++;
			if (*p)
				*w++ = *p++;
			continue;
		}
		if (*p == '[') {
			end = skip_bracket(p);
			if (!end)
				end = p + strlen(p);
			memcpy(w, p, (size_t)(end - p));
			w += end - p;
			p = end;
			continue;
		}
		if (*p != '(') {
			*w++ = *p++;
			continue;
		}
		group++;
		if (p[1] != '?') {
			*w++ = *p++;
			continue;
		}
		if (!named_group_at(p, &name, &name_len, &after)) {
			snprintf(why, why_size,
				 "\"(?\" at byte %zu: POSIX extended expressions have no (?...) "
				 "syntax besides the named group (?<name>...)",
				 (size_t)(p - pattern));
			return -EINVAL;
		}
		memcpy(names, name, name_len);
		names[name_len] = '\0';
		if (!reading_field_name_is_valid(names)) {
			snprintf(why, why_size,
				 "the group name \"%.64s\" is not 1 to %d of A-Z a-z 0-9 _ . -",
				 names, CG_FIELD_NAME_MAX);
			return -EINVAL;
		}
		for (size_t i = 0; i < rf->n_groups; i++)
			if (strcmp(rf->groups[i].name, names) == 0) {
				snprintf(why, why_size, "the group name \"%s\" appears twice",
					 names);
				return -EINVAL;
			}
		if (rf->n_groups == CG_FIELDS_MAX) {
			snprintf(why, why_size, "more than %d named groups (a reading's fields)",
				 CG_FIELDS_MAX);
			return -EINVAL;
		}
		rf->groups[rf->n_groups++] = (struct named_group){ .group = group, .name = names };
		names += name_len + 1;
		*w++ = '(';
		p = after;
	}
	*w = '\0';
	*ret_groups = group;
	return 0;
}

int regex_format_new(const char *pattern, const struct field_spec *types, size_t n_types,
		     struct regex_format **ret, char *why, size_t why_size)
{
	size_t len = strlen(pattern), groups = 0, n_strings = 0;
	struct regex_format *rf;
	char *rewritten;
	int r;

	rf = calloc(1, sizeof(*rf));
	rewritten = malloc(len + 1);
	if (rf)
		rf->names = malloc(len + 1);
	if (!rf || !rewritten || !rf->names) {
		r = -ENOMEM;
		goto fail;
	}
	r = rewrite(rf, pattern, rewritten, &groups, why, why_size);
	if (r < 0)
		goto fail;
	if (rf->n_groups == 0) {
		snprintf(why, why_size, "the pattern has no named group (?<name>...): no field");
		r = -EINVAL;
		goto fail;
	}
	r = regcomp(&rf->re, rewritten, REG_EXTENDED);
	if (r != 0) {
		char text[128];

		regerror(r, &rf->re, text, sizeof(text));
		snprintf(why, why_size, "the pattern does not compile: %s", text);
		r = r == REG_ESPACE ? -ENOMEM : -EINVAL;
		goto fail;
	}
	rf->compiled = true;
	if (rf->re.re_nsub != groups) {
		snprintf(why, why_size, "the pattern has %zu groups, but %zu were counted",
			 rf->re.re_nsub, groups);
		r = -EINVAL;
		goto fail;
	}
	for (size_t g = 0; g < rf->n_groups; g++) {
		rf->groups[g].type = type_of(types, n_types, rf->groups[g].name);
		n_strings += rf->groups[g].type == VALUE_STRING;
	}
	rf->n_matches = groups + 1;
	rf->matches = calloc(rf->n_matches, sizeof(*rf->matches));
	rf->scratch = malloc(n_strings * (CG_STRING_MAX + 1) + 1);
	if (!rf->matches || !rf->scratch) {
		r = -ENOMEM;
		goto fail;
	}
	free(rewritten);
	*ret = rf;
	return 0;
fail:
	free(rewritten);
	regex_format_free(rf);
	return r;
}

bool regex_format_has_group(const struct regex_format *rf, const char *name)
{
	for (size_t g = 0; g < rf->n_groups; g++)
		if (strcmp(rf->groups[g].name, name) == 0)
			return true;
	return false;
}

int parse_regex(struct regex_format *rf, char *data, size_t len, struct message *m, char *why,
		size_t why_size)
{
	size_t scratch_used = 0;
	char saved = data[len];
	int r;

	/* regexec() reads a C string; the frame has no NUL, and data[len] is ours. */
	data[len] = '\0';
	r = regexec(&rf->re, data, rf->n_matches, rf->matches, 0);
	data[len] = saved;
	if (r == REG_NOMATCH) {
		snprintf(why, why_size, "the frame does not match the pattern");
		return -EINVAL;
	}
	if (r != 0) {
		snprintf(why, why_size, "the pattern could not be matched (regexec() error %d)", r);
		return -EINVAL;
	}
	for (size_t g = 0; g < rf->n_groups; g++) {
		const struct named_group *ng = &rf->groups[g];
		const regmatch_t *rm = &rf->matches[ng->group];
		struct cg_field *f = &m->fields[m->reading.n_fields];
		size_t value_len;
		char *value;

		/* A group that took no part in the match, or matched nothing: no value. */
		if (ng->type == VALUE_SKIP || rm->rm_so < 0 || rm->rm_eo <= rm->rm_so)
			continue;
		value_len = (size_t)(rm->rm_eo - rm->rm_so);
		f->name = ng->name;
		if (ng->type == VALUE_STRING) {
			if (value_len > CG_STRING_MAX) {
				snprintf(why, why_size,
					 "group \"%s\": the string is longer than %d bytes",
					 ng->name, CG_STRING_MAX);
				return -EINVAL;
			}
			value = rf->scratch + scratch_used;
			memcpy(value, data + rm->rm_so, value_len);
			scratch_used += value_len + 1;
		} else {
			value = data + rm->rm_so;
		}
		r = value_parse(value, value_len, ng->type, f, why, why_size);
		if (r < 0) {
			char reason[MESSAGE_WHY_MAX];

			snprintf(reason, sizeof(reason), "%s", why);
			snprintf(why, why_size, "group \"%s\": %s", ng->name, reason);
			return r;
		}
		m->reading.n_fields++;
	}
	return m->reading.n_fields ? PARSE_READING : PARSE_SKIP;
}
