// SPDX-License-Identifier: MIT
/*
 * The plugin ABI check and the loader (daemon/plugin.c), first on descriptors crafted
 * in memory, then on the real shared objects of tests/plugins, one per way a plugin
 * can be wrong. Every refusal must return the documented code and a reason a person
 * can act on: the file, and for ABI mismatches both the plugin's and the daemon's ABI.
 *
 * This binary exports the host API like coapgated (coapgate_add_unit_test), so the
 * test plugins resolve their cg_* calls against it. COAPGATE_TEST_PLUGIN_DIR names
 * the directory the test plugins were built into.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

#define WHY_SIZE 1024

#define assert_contains(haystack, needle) \
	assert_contains_at((haystack), (needle), __FILE__, __LINE__)

static void assert_contains_at(const char *haystack, const char *needle, const char *file, int line)
{
	if (!strstr(haystack, needle)) {
		print_error("\"%s\" does not contain \"%s\"\n", haystack, needle);
		_fail(file, line);
	}
}

static char abi_text[3][32];

/* "ABI 1.0": the form in which the loader's messages name a version. */
static const char *abi(int slot, unsigned major, unsigned minor)
{
	snprintf(abi_text[slot], sizeof(abi_text[slot]), "ABI %u.%u", major, minor);
	return abi_text[slot];
}

static const char *test_plugin_dir(void)
{
	const char *dir = getenv("COAPGATE_TEST_PLUGIN_DIR");

	if (!dir || !*dir) {
		fprintf(stderr, "COAPGATE_TEST_PLUGIN_DIR is not set: run through ctest\n");
		exit(EXIT_FAILURE);
	}
	return dir;
}

/* ---- plugin_check_descriptor() on crafted descriptors ---- */

#define CRAFTED_PATH "/crafted/dir/crafted.so"

static int crafted_run(struct cg_instance *inst, void *state)
{
	(void)inst;
	(void)state;
	return 0;
}

static const struct cg_option crafted_options[] = {
	{ "key", CG_OPT_BOOL, 0, "false", .help = "A key." },
	{ 0 },
};

static struct cg_plugin good_descriptor(void)
{
	return (struct cg_plugin){
		CG_PLUGIN_HEADER,   .name = "crafted",
		.version = "1.0",   .description = "A crafted descriptor.",
		.run = crafted_run,
	};
}

static int check(const struct cg_plugin *desc, char *why)
{
	memset(why, 0, WHY_SIZE);
	return plugin_check_descriptor(desc, CRAFTED_PATH, "crafted", why, WHY_SIZE);
}

static void test_check_good(void **state)
{
	struct cg_plugin d = good_descriptor();
	char why[WHY_SIZE];

	(void)state;
	assert_int_equal(check(&d, why), 0);

	/* An option table with its conf size is just as good. */
	d.options = crafted_options;
	d.conf_size = sizeof(bool);
	assert_int_equal(check(&d, why), 0);

	/* A plugin built for an older minor of the same major is what the rule allows.
	 * (With CG_ABI_MINOR 0 there is no older minor: the same one must do.) */
	d.abi_minor = CG_ABI_MINOR > 0 ? CG_ABI_MINOR - 1 : CG_ABI_MINOR;
	assert_int_equal(check(&d, why), 0);
}

/* An ABI refusal names the file and both versions. */
static void assert_abi_refusal(const struct cg_plugin *d, const char *why)
{
	assert_contains(why, CRAFTED_PATH);
	assert_contains(why, abi(0, d->abi_major, d->abi_minor));
	assert_contains(why, abi(1, CG_ABI_MAJOR, CG_ABI_MINOR));
}

static void test_check_wrong_major(void **state)
{
	struct cg_plugin d = good_descriptor();
	char why[WHY_SIZE];

	(void)state;
	d.abi_major = CG_ABI_MAJOR + 1;
	assert_int_equal(check(&d, why), -EPROTO);
	assert_abi_refusal(&d, why);

	d.abi_major = CG_ABI_MAJOR - 1;
	assert_int_equal(check(&d, why), -EPROTO);
	assert_abi_refusal(&d, why);
}

static void test_check_newer_minor(void **state)
{
	struct cg_plugin d = good_descriptor();
	char why[WHY_SIZE];

	(void)state;
	d.abi_minor = CG_ABI_MINOR + 1;
	assert_int_equal(check(&d, why), -EPROTO);
	assert_abi_refusal(&d, why);
	assert_contains(why, "newer");
}

static void test_check_wrong_size(void **state)
{
	const uint32_t sizes[] = {
		0,
		8,
		offsetof(struct cg_plugin, destroy), /* ends before ABI 1.0's last member */
		sizeof(struct cg_plugin) - 1,
		sizeof(struct cg_plugin) + 1,
		sizeof(struct cg_plugin) + 16,
		UINT32_MAX,
	};
	char size_text[32], max_text[32];

	(void)state;
	snprintf(max_text, sizeof(max_text), "%zu", sizeof(struct cg_plugin));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct cg_plugin d = good_descriptor();
		char why[WHY_SIZE];

		d.size = sizes[i];
		assert_int_equal(check(&d, why), -EPROTO);
		assert_abi_refusal(&d, why);
		snprintf(size_text, sizeof(size_text), "size %u", sizes[i]);
		assert_contains(why, size_text);
		assert_contains(why, max_text);
	}
}

/*
 * The check must decide on the first three members alone: a descriptor that is only
 * that long (an allocation of exactly 8 bytes, so ASan sees any read past it) is
 * refused without touching the rest.
 */
static void test_check_reads_only_header_first(void **state)
{
	const struct {
		uint16_t major, minor;
		uint32_t size;
	} headers[] = {
		{ CG_ABI_MAJOR + 1, 0, sizeof(struct cg_plugin) },
		{ CG_ABI_MAJOR, CG_ABI_MINOR + 1, sizeof(struct cg_plugin) },
		{ CG_ABI_MAJOR, CG_ABI_MINOR, 8 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		unsigned char *p = malloc(8);
		char why[WHY_SIZE];

		assert_non_null(p);
		memcpy(p + offsetof(struct cg_plugin, abi_major), &headers[i].major, 2);
		memcpy(p + offsetof(struct cg_plugin, abi_minor), &headers[i].minor, 2);
		memcpy(p + offsetof(struct cg_plugin, size), &headers[i].size, 4);
		assert_int_equal(check((const struct cg_plugin *)p, why), -EPROTO);
		assert_contains(why, CRAFTED_PATH);
		free(p);
	}
}

static void test_check_contents(void **state)
{
	struct cg_plugin d;
	char why[WHY_SIZE];

	(void)state;

	d = good_descriptor();
	d.name = "other";
	assert_int_equal(check(&d, why), -EINVAL);
	assert_contains(why, CRAFTED_PATH);
	assert_contains(why, "\"other\"");
	assert_contains(why, "\"crafted\"");

	d = good_descriptor();
	d.name = NULL;
	assert_int_equal(check(&d, why), -EINVAL);
	assert_contains(why, CRAFTED_PATH);

	/* A prefix of the expected name is still another name. */
	d = good_descriptor();
	d.name = "craft";
	assert_int_equal(check(&d, why), -EINVAL);
	d.name = "crafted_";
	assert_int_equal(check(&d, why), -EINVAL);

	d = good_descriptor();
	d.run = NULL;
	assert_int_equal(check(&d, why), -EINVAL);
	assert_contains(why, CRAFTED_PATH);
	assert_contains(why, "run");

	d = good_descriptor();
	d.options = crafted_options;
	d.conf_size = 0;
	assert_int_equal(check(&d, why), -EINVAL);
	assert_contains(why, CRAFTED_PATH);
	assert_contains(why, "conf_size");
}

/* A short reason buffer truncates; it is never overrun (ASan watches the heap copy). */
static void test_check_short_why(void **state)
{
	struct cg_plugin d = good_descriptor();
	char *why = malloc(16);

	(void)state;
	assert_non_null(why);
	d.abi_major = CG_ABI_MAJOR + 1;
	assert_int_equal(plugin_check_descriptor(&d, CRAFTED_PATH, "crafted", why, 16), -EPROTO);
	assert_int_equal(strlen(why), 15);
	assert_int_equal(strncmp(why, CRAFTED_PATH, 15), 0);
	free(why);
}

/* ---- plugin_open() on the test plugins ---- */

static char *plugin_path(const char *name)
{
	char *path;

	if (asprintf(&path, "%s/%s.so", test_plugin_dir(), name) < 0)
		abort();
	return path;
}

/* Opens test plugin name, expecting refusal r; checks the reason names the file and
 * contains each of the NULL-terminated needles. ret must not be written. */
static void assert_open_fails(const char *name, int r, ...)
{
	struct plugin *sentinel = (struct plugin *)&sentinel, *p = sentinel;
	char *path = plugin_path(name);
	char why[WHY_SIZE] = "";
	const char *needle;
	va_list ap;

	assert_int_equal(plugin_open(path, name, &p, why, sizeof(why)), r);
	assert_ptr_equal(p, sentinel);
	assert_contains(why, path);
	va_start(ap, r);
	while ((needle = va_arg(ap, const char *)))
		assert_contains(why, needle);
	va_end(ap);
	free(path);
}

static void test_open_wrong_major(void **state)
{
	(void)state;
	assert_open_fails("abi_wrong_major", -EPROTO, abi(0, CG_ABI_MAJOR + 1, CG_ABI_MINOR),
			  abi(1, CG_ABI_MAJOR, CG_ABI_MINOR), NULL);
}

static void test_open_newer_minor(void **state)
{
	(void)state;
	assert_open_fails("abi_newer_minor", -EPROTO, abi(0, CG_ABI_MAJOR, CG_ABI_MINOR + 1),
			  abi(1, CG_ABI_MAJOR, CG_ABI_MINOR), NULL);
}

static void test_open_wrong_size(void **state)
{
	(void)state;
	assert_open_fails("abi_wrong_size", -EPROTO, "size 8", abi(0, CG_ABI_MAJOR, CG_ABI_MINOR),
			  NULL);
}

static void test_open_too_big(void **state)
{
	char size_text[32];

	(void)state;
	/* abi_too_big.c appends two pointers to struct cg_plugin. */
	snprintf(size_text, sizeof(size_text), "size %zu",
		 sizeof(struct cg_plugin) + 2 * sizeof(void *));
	assert_open_fails("abi_too_big", -EPROTO, size_text, abi(0, CG_ABI_MAJOR, CG_ABI_MINOR),
			  NULL);
}

static void test_open_no_descriptor(void **state)
{
	(void)state;
	assert_open_fails("abi_no_descriptor", -ENOEXEC, "cg_plugin_descriptor", NULL);
}

static void test_open_missing_host_symbol(void **state)
{
	(void)state;
	assert_open_fails("abi_missing_host_symbol", -ENOEXEC, "cg_does_not_exist", NULL);
}

static void test_open_wrong_name(void **state)
{
	(void)state;
	assert_open_fails("abi_wrong_name", -EINVAL, "\"sysinfo\"", "\"abi_wrong_name\"", NULL);
}

static void test_open_missing_file(void **state)
{
	(void)state;
	assert_open_fails("no_such_plugin", -ENOENT, NULL);
}

static void test_open_good(void **state)
{
	char *path = plugin_path("abi_good");
	const struct cg_plugin *exported;
	char why[WHY_SIZE] = "";
	struct plugin *p = NULL;

	(void)state;
	assert_int_equal(plugin_open(path, "abi_good", &p, why, sizeof(why)), 0);
	assert_non_null(p);
	assert_string_equal(p->name, "abi_good");
	assert_string_equal(p->path, path);
	assert_non_null(p->handle);

	/* The copy is the plugin's descriptor, byte for byte. */
	exported = dlsym(p->handle, "cg_plugin_descriptor");
	assert_non_null(exported);
	assert_memory_equal(&p->desc, exported, sizeof(struct cg_plugin));
	assert_int_equal(p->desc.abi_major, CG_ABI_MAJOR);
	assert_int_equal(p->desc.abi_minor, CG_ABI_MINOR);
	assert_int_equal(p->desc.size, sizeof(struct cg_plugin));
	assert_string_equal(p->desc.name, "abi_good");
	assert_string_equal(p->desc.version, "1.0");
	assert_non_null(p->desc.description);
	assert_non_null(p->desc.run);
	assert_null(p->desc.init);
	assert_null(p->desc.destroy);
	assert_null(p->desc.options);
	assert_int_equal(p->desc.conf_size, 0);

	plugin_close(p);
	plugin_close(NULL);
	free(path);
}

/* ---- plugin_registry_get(): names to files, one copy per plugin ---- */

static void test_registry(void **state)
{
	struct plugin_registry *reg = plugin_registry_new(test_plugin_dir());
	const struct plugin *a = NULL, *b = NULL;
	char why[WHY_SIZE] = "";
	char *path;

	(void)state;
	assert_int_equal(plugin_registry_get(reg, "abi_good", &a, why, sizeof(why)), 0);
	assert_int_equal(plugin_registry_get(reg, "abi_good", &b, why, sizeof(why)), 0);
	assert_ptr_equal(a, b);

	path = plugin_path("abi_wrong_major");
	assert_int_equal(plugin_registry_get(reg, "abi_wrong_major", &b, why, sizeof(why)),
			 -EPROTO);
	assert_contains(why, path);
	free(path);

	path = plugin_path("no_such_plugin");
	assert_int_equal(plugin_registry_get(reg, "no_such_plugin", &b, why, sizeof(why)), -ENOENT);
	assert_contains(why, path);
	free(path);

	/* Names that are not [a-z0-9_]+ never reach the file system. */
	assert_int_equal(plugin_registry_get(reg, "../abi_good", &b, why, sizeof(why)), -EINVAL);
	assert_contains(why, "../abi_good");
	assert_int_equal(plugin_registry_get(reg, "Abi_good", &b, why, sizeof(why)), -EINVAL);
	assert_int_equal(plugin_registry_get(reg, "", &b, why, sizeof(why)), -EINVAL);
	assert_ptr_equal(b, a);

	plugin_registry_free(reg);
	plugin_registry_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_good),
		cmocka_unit_test(test_check_wrong_major),
		cmocka_unit_test(test_check_newer_minor),
		cmocka_unit_test(test_check_wrong_size),
		cmocka_unit_test(test_check_reads_only_header_first),
		cmocka_unit_test(test_check_contents),
		cmocka_unit_test(test_check_short_why),
		cmocka_unit_test(test_open_wrong_major),
		cmocka_unit_test(test_open_newer_minor),
		cmocka_unit_test(test_open_wrong_size),
		cmocka_unit_test(test_open_too_big),
		cmocka_unit_test(test_open_no_descriptor),
		cmocka_unit_test(test_open_missing_host_symbol),
		cmocka_unit_test(test_open_wrong_name),
		cmocka_unit_test(test_open_missing_file),
		cmocka_unit_test(test_open_good),
		cmocka_unit_test(test_registry),
	};

	test_plugin_dir();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
