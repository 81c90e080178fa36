// SPDX-License-Identifier: MIT
/*
 * json_parse_bench: what parsing one three-field line costs, for the decision to
 * hand-write the unixsock input's JSON parser (plugins/unixsock/parse_json.c) instead
 * of using jansson, the project's JSON library. Not a test: it prints ns per line;
 * docs/BENCHMARKS.md has the figures.
 *
 *   json_parse_bench [-n LINES] [-r REPEAT]
 *
 * Every variant turns a line like {"temperature":21.53,"humidity":40.2,"pressure":
 * 1013.25} into a struct message (names, types, values) and checks it with
 * reading_validate(), which is what the input needs from any parser:
 *
 *   parse_json      the plugin's parser (unixsock_parse), in place on a copy of the line
 *   jansson         json_loadb() and json_object_foreach(), then json_decref()
 *   json-c, cJSON   the same with those libraries, when they were found at build time
 *   parse_influx    the plugin's line protocol parser on "m temperature=21.53,..."
 *
 * and the parts of parse_json alone: the copy of the line, utf8_is_valid(),
 * number_to_f64() of the three numbers, strtod() of them for comparison, and
 * reading_validate(). The lines are 4096 different ones, cycled, so that branch
 * predictors cannot learn one line. REPEAT (default 9, at most 101) rounds each time
 * every variant over LINES (default 1,000,000) lines, after an untimed pass over a
 * tenth of LINES; printed are the median and the fastest ns per line, and the median
 * of each round's ratio to parse_json, which the machine's changing speed moves least.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include <jansson.h>
#ifdef JSONC_LIBRARY
#include <dlfcn.h>
#endif
#ifdef HAVE_CJSON
#include <cjson/cJSON.h>
#endif

#include "message.h"
#include "number.h"
#include "reading.h"
#include "utf8.h"

#define N_LINES	 4096
#define LINE_CAP 128

struct line {
	char text[LINE_CAP];
	size_t len;
};

static struct line json_lines[N_LINES], influx_lines[N_LINES];
/* What each variant made of its line, summed, so that nothing is optimised away and the
 * variants can be checked against each other. */
static double sink;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static void fail(const char *what, const char *why)
{
	fprintf(stderr, "json_parse_bench: %s: %s\n", what, why);
	exit(1);
}

static double sum_fields(const struct message *m)
{
	double s = 0;

	for (size_t i = 0; i < m->reading.n_fields; i++)
		s += m->fields[i].value.f64;
	return s;
}

/* The same random walk as unixsock_load.c: sensor-like values, two, one, two decimals. */
static void make_lines(void)
{
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	long v[3] = { 2153, 402, 101325 };
	const long step[3] = { 7, 5, 9 };

	for (int i = 0; i < N_LINES; i++) {
		for (int k = 0; k < 3; k++) {
			rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
			v[k] += (long)(rng >> 33) % (2 * step[k] + 1) - step[k];
		}
		json_lines[i].len =
		    (size_t)snprintf(json_lines[i].text, LINE_CAP,
				     "{\"temperature\":%.2f,\"humidity\":%.1f,\"pressure\":%.2f}",
				     v[0] / 100.0, v[1] / 10.0, v[2] / 100.0);
		influx_lines[i].len =
		    (size_t)snprintf(influx_lines[i].text, LINE_CAP,
				     "m temperature=%.2f,humidity=%.1f,pressure=%.2f", v[0] / 100.0,
				     v[1] / 10.0, v[2] / 100.0);
	}
}

/* ---- the variants: each parses json_lines[i] (or influx_lines[i]) into m ---------- */

static char work[LINE_CAP];

static void v_copy(int i, struct message *m)
{
	memcpy(work, json_lines[i].text, json_lines[i].len + 1);
	m->reading.n_fields = 0;
	sink += work[5];
}

static void v_parse_json(int i, struct message *m)
{
	char why[MESSAGE_WHY_MAX];

	memcpy(work, json_lines[i].text, json_lines[i].len + 1);
	if (parse_json(work, json_lines[i].len, m, why, sizeof(why)) != PARSE_READING)
		fail("parse_json", why);
}

static void v_parse_influx(int i, struct message *m)
{
	char why[MESSAGE_WHY_MAX];

	memcpy(work, influx_lines[i].text, influx_lines[i].len + 1);
	if (parse_influx(work, influx_lines[i].len, INFLUX_NS, m, why, sizeof(why)) !=
	    PARSE_READING)
		fail("parse_influx", why);
}

static void v_utf8(int i, struct message *m)
{
	if (!utf8_is_valid(json_lines[i].text, json_lines[i].len))
		fail("utf8_is_valid", json_lines[i].text);
	m->reading.n_fields = 0;
}

/* The three numbers of a JSON line: after each ':' up to ',' or '}'. */
static void v_numbers(int i, struct message *m, bool use_strtod)
{
	char *p = work;

	memcpy(work, json_lines[i].text, json_lines[i].len + 1);
	m->reading.n_fields = 0;
	while ((p = strchr(p, ':'))) {
		char *start = ++p;
		struct cg_field *f = &m->fields[m->reading.n_fields++];

		while (*p != ',' && *p != '}')
			p++;
		f->type = CG_FIELD_F64;
		if (use_strtod)
			f->value.f64 = strtod(start, NULL);
		else if (number_to_f64(start, (size_t)(p - start), &f->value.f64) < 0)
			fail("number_to_f64", start);
	}
}

static void v_number_to_f64(int i, struct message *m)
{
	v_numbers(i, m, false);
}

static void v_strtod(int i, struct message *m)
{
	v_numbers(i, m, true);
}

/* reading_validate() of a reading parse_json made before the clock started. */
static struct message parsed[N_LINES];

static void v_validate(int i, struct message *m)
{
	char why[MESSAGE_WHY_MAX];

	if (reading_validate(&parsed[i].reading, why, sizeof(why)) < 0)
		fail("reading_validate", why);
	m->reading.n_fields = 0;
}

/* Types as parse_json maps them: integers are i64 fields, other numbers f64. */
static void v_jansson(int i, struct message *m)
{
	char why[MESSAGE_WHY_MAX];
	json_error_t error;
	json_t *root = json_loadb(json_lines[i].text, json_lines[i].len, 0, &error);
	const char *key;
	json_t *value;

	if (!json_is_object(root))
		fail("jansson", error.text);
	m->reading = (struct cg_reading){ .fields = m->fields };
	json_object_foreach(root, key, value)
	{
		struct cg_field *f = &m->fields[m->reading.n_fields++];

		f->name = key;
		if (json_is_integer(value)) {
			f->type = CG_FIELD_I64;
			f->value.i64 = json_integer_value(value);
		} else {
			f->type = CG_FIELD_F64;
			f->value.f64 = json_real_value(value);
		}
	}
	if (reading_validate(&m->reading, why, sizeof(why)) < 0)
		fail("jansson", why);
	sink += sum_fields(m);
	m->reading.n_fields = 0;
	json_decref(root);
}

#ifdef JSONC_LIBRARY
/*
 * json-c and jansson export functions of the same names (json_object_get,
 * json_object_iter_next, ...), and their headers clash too. So json-c is loaded with
 * dlopen(RTLD_DEEPBIND), which makes its own calls resolve inside it, and called through
 * these pointers, declared after its headers (json-c 0.16: json_object.h,
 * json_object_iterator.h, json_tokener.h).
 */
struct json_object;
struct json_tokener;
struct json_object_iterator {
	const void *opaque_;
};

enum { JSONC_TYPE_INT = 3, JSONC_TYPE_OBJECT = 4 };

static struct {
	struct json_tokener *tokener;
	const char *(*version)(void);
	struct json_tokener *(*tokener_new)(void);
	void (*tokener_reset)(struct json_tokener *tok);
	struct json_object *(*tokener_parse_ex)(struct json_tokener *tok, const char *str, int len);
	int (*get_type)(const struct json_object *obj);
	struct json_object_iterator (*iter_begin)(struct json_object *obj);
	struct json_object_iterator (*iter_end)(const struct json_object *obj);
	int (*iter_equal)(const struct json_object_iterator *a,
			  const struct json_object_iterator *b);
	void (*iter_next)(struct json_object_iterator *iter);
	const char *(*iter_peek_name)(const struct json_object_iterator *iter);
	struct json_object *(*iter_peek_value)(const struct json_object_iterator *iter);
	double (*get_double)(const struct json_object *obj);
	int64_t (*get_int64)(const struct json_object *obj);
	int (*put)(struct json_object *obj);
} jsonc;

static bool jsonc_load(void)
{
	void *h = dlopen(JSONC_LIBRARY, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
	struct {
		void *ptr;
		const char *name;
	} syms[] = {
		{ &jsonc.version, "json_c_version" },
		{ &jsonc.tokener_new, "json_tokener_new" },
		{ &jsonc.tokener_reset, "json_tokener_reset" },
		{ &jsonc.tokener_parse_ex, "json_tokener_parse_ex" },
		{ &jsonc.get_type, "json_object_get_type" },
		{ &jsonc.iter_begin, "json_object_iter_begin" },
		{ &jsonc.iter_end, "json_object_iter_end" },
		{ &jsonc.iter_equal, "json_object_iter_equal" },
		{ &jsonc.iter_next, "json_object_iter_next" },
		{ &jsonc.iter_peek_name, "json_object_iter_peek_name" },
		{ &jsonc.iter_peek_value, "json_object_iter_peek_value" },
		{ &jsonc.get_double, "json_object_get_double" },
		{ &jsonc.get_int64, "json_object_get_int64" },
		{ &jsonc.put, "json_object_put" },
	};

	if (!h) {
		fprintf(stderr, "json_parse_bench: json-c left out: %s\n", dlerror());
		return false;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *f = dlsym(h, syms[i].name);

		if (!f) {
			fprintf(stderr, "json_parse_bench: json-c left out: no %s\n", syms[i].name);
			return false;
		}
		memcpy(syms[i].ptr, &f, sizeof(f));
	}
	jsonc.tokener = jsonc.tokener_new();
	return jsonc.tokener != NULL;
}

/* With a tokener made once and reset, as a long-lived parser would use it. */
static void v_jsonc(int i, struct message *m)
{
	char why[MESSAGE_WHY_MAX];
	struct json_object *root;
	struct json_object_iterator it, it_end;

	jsonc.tokener_reset(jsonc.tokener);
	root = jsonc.tokener_parse_ex(jsonc.tokener, json_lines[i].text, (int)json_lines[i].len);
	if (!root || jsonc.get_type(root) != JSONC_TYPE_OBJECT)
		fail("json-c", "not an object");
	m->reading = (struct cg_reading){ .fields = m->fields };
	it = jsonc.iter_begin(root);
	it_end = jsonc.iter_end(root);
	for (; !jsonc.iter_equal(&it, &it_end); jsonc.iter_next(&it)) {
		struct cg_field *f = &m->fields[m->reading.n_fields++];
		struct json_object *value = jsonc.iter_peek_value(&it);

		f->name = jsonc.iter_peek_name(&it);
		if (jsonc.get_type(value) == JSONC_TYPE_INT) {
			f->type = CG_FIELD_I64;
			f->value.i64 = jsonc.get_int64(value);
		} else {
			f->type = CG_FIELD_F64;
			f->value.f64 = jsonc.get_double(value);
		}
	}
	if (reading_validate(&m->reading, why, sizeof(why)) < 0)
		fail("json-c", why);
	sink += sum_fields(m);
	m->reading.n_fields = 0;
	jsonc.put(root);
}
#endif

#ifdef HAVE_CJSON
/* cJSON has one number type (a double): a line of integers would need the text again. */
static void v_cjson(int i, struct message *m)
{
	char why[MESSAGE_WHY_MAX];
	cJSON *root = cJSON_ParseWithLength(json_lines[i].text, json_lines[i].len);
	cJSON *item;

	if (!cJSON_IsObject(root))
		fail("cJSON", "not an object");
	m->reading = (struct cg_reading){ .fields = m->fields };
	cJSON_ArrayForEach(item, root)
	{
		struct cg_field *f = &m->fields[m->reading.n_fields++];

		f->name = item->string;
		f->type = CG_FIELD_F64;
		f->value.f64 = item->valuedouble;
	}
	if (reading_validate(&m->reading, why, sizeof(why)) < 0)
		fail("cJSON", why);
	sink += sum_fields(m);
	m->reading.n_fields = 0;
	cJSON_Delete(root);
}
#endif

/* ---- timing ----------------------------------------------------------------------- */

struct variant {
	const char *name;
	void (*run)(int i, struct message *m);
	const char *what;
};

static const struct variant variants[] = {
	{ "parse_json", v_parse_json, "the plugin's JSON parser, reading_validate() included" },
	{ "jansson", v_jansson, "json_loadb + foreach + reading_validate + json_decref" },
#ifdef JSONC_LIBRARY
	{ "json-c", v_jsonc, "json_tokener_parse_ex + iterator + reading_validate + put" },
#endif
#ifdef HAVE_CJSON
	{ "cJSON", v_cjson, "cJSON_ParseWithLength + foreach + reading_validate + Delete" },
#endif
	{ "parse_influx", v_parse_influx, "the plugin's line protocol parser, validate included" },
	{ "  copy", v_copy, "part of parse_json: memcpy of the line (it parses in place)" },
	{ "  utf8_is_valid", v_utf8, "part of parse_json: the whole line checked first" },
	{ "  number_to_f64 x3", v_number_to_f64, "part of parse_json: the numbers (with a copy)" },
	{ "  strtod x3", v_strtod, "for comparison: what number_to_f64 replaces (with a copy)" },
	{ "  reading_validate", v_validate, "part of parse_json: names, types, UTF-8 of names" },
};

#define N_VARIANTS (sizeof(variants) / sizeof(variants[0]))
#define REPEAT_MAX 101

static double ns[N_VARIANTS][REPEAT_MAX], ratio[N_VARIANTS][REPEAT_MAX];

#ifdef JSONC_LIBRARY
static bool have_jsonc;
#endif

static bool variant_enabled(size_t v)
{
#ifdef JSONC_LIBRARY
	if (variants[v].run == v_jsonc)
		return have_jsonc;
#endif
	(void)v;
	return true;
}

/* ns per line of one pass of variant v over n lines. */
static double time_pass(size_t v, uint64_t n)
{
	struct message m;
	uint64_t t0 = now_ns();

	for (uint64_t k = 0; k < n; k++) {
		variants[v].run((int)(k % N_LINES), &m);
		if (m.reading.n_fields)
			sink += m.fields[0].value.f64;
	}
	return (double)(now_ns() - t0) / (double)(n ? n : 1);
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void print_machine(int argc, char **argv)
{
	struct utsname u;
	char model[128] = "?";
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	printf("command:");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) == 0) {
			snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
			model[strcspn(model, "\n")] = '\0';
			break;
		}
	}
	if (f)
		fclose(f);
	uname(&u);
	printf("machine: %s, %s %s %s; jansson %s", model, u.sysname, u.release, u.machine,
	       JANSSON_VERSION);
#ifdef JSONC_LIBRARY
	if (jsonc.version)
		printf(", json-c %s", jsonc.version());
#endif
#ifdef HAVE_CJSON
	printf(", cJSON %s", cJSON_Version());
#endif
	printf("\nexample lines: %s | %s\n\n", json_lines[0].text, influx_lines[0].text);
}

int main(int argc, char **argv)
{
	uint64_t lines = 1000000;
	int repeat = 9, c;

	while ((c = getopt(argc, argv, "n:r:h")) >= 0) {
		switch (c) {
		case 'n':
			lines = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			repeat = atoi(optarg);
			break;
		default:
			fprintf(c == 'h' ? stdout : stderr,
				"Usage: json_parse_bench [-n LINES] [-r REPEAT]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (!lines || repeat < 1 || repeat > REPEAT_MAX)
		return 2;
	make_lines();
#ifdef JSONC_LIBRARY
	have_jsonc = jsonc_load();
#endif
	for (int i = 0; i < N_LINES; i++) {
		char why[MESSAGE_WHY_MAX];
		static char copies[N_LINES][LINE_CAP];

		memcpy(copies[i], json_lines[i].text, json_lines[i].len + 1);
		if (parse_json(copies[i], json_lines[i].len, &parsed[i], why, sizeof(why)) < 0)
			fail("parse_json", why);
		parsed[i].reading.fields = parsed[i].fields;
	}
	print_machine(argc, argv);
	/* Untimed: caches, branch predictors and the CPU's clock settle first. */
	for (size_t v = 0; v < N_VARIANTS; v++)
		if (variant_enabled(v))
			time_pass(v, lines / 10);
	/* Round after round of every variant, so that each round's variants share the
	 * machine's state: on a shared VM its speed changes by tens of percent from one
	 * minute to the next, and the ratio to parse_json of the same round stays put. */
	for (int r = 0; r < repeat; r++)
		for (size_t v = 0; v < N_VARIANTS; v++)
			if (variant_enabled(v)) {
				ns[v][r] = time_pass(v, lines);
				ratio[v][r] = ns[v][r] / ns[0][r];
			}
	printf("%-20s %10s %10s %14s  %s\n", "", "ns/line", "fastest", "x parse_json", "what");
	for (size_t v = 0; v < N_VARIANTS; v++) {
		if (!variant_enabled(v))
			continue;
		qsort(ns[v], (size_t)repeat, sizeof(double), compare_double);
		qsort(ratio[v], (size_t)repeat, sizeof(double), compare_double);
		printf("%-20s %10.1f %10.1f %14.2f  %s\n", variants[v].name, ns[v][repeat / 2],
		       ns[v][0], ratio[v][repeat / 2], variants[v].what);
	}
	printf("\n(checksum %.2f)\n", sink);
	return 0;
}
