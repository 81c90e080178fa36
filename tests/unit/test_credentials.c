// SPDX-License-Identifier: MIT
/*
 * Unit tests of credentials.c: the checks of credentials_set() (identity, PSK as text
 * or hex, endpoint), the bootstrap answer "iccid,psk[,coaps://host:port]", and the
 * store: atomic save with mode 0600, load refusing symlinks, loose modes and damage.
 * Each store test runs in its own mkdtemp() directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "credentials.h"

#define ICCID	 "89882806660004909182"
#define ENDPOINT "coaps://udp.os.1nce.com:5684"
#define DEFAULT	 "coaps://default.example:5684"

static char dir[PATH_MAX];

/* ---- helpers ---- */

/* credentials_set() on a struct filled with a marker; checks it is kept on failure. */
static int set(struct credentials *c, const char *identity, const char *psk, bool hex,
	       const char *endpoint, const char **ret_why)
{
	struct credentials before;
	const char *why = NULL;
	int r;

	memset(c, 0x5a, sizeof(*c));
	c->obtained_ms = 1234;
	c->origin = CREDENTIALS_USER;
	before = *c;
	r = credentials_set(c, identity, psk, hex, endpoint, &why);
	if (r < 0) {
		assert_int_equal(r, -EINVAL);
		assert_non_null(why);
		assert_true(strlen(why) > 0);
		assert_memory_equal(c, &before, sizeof(*c));
	}
	if (ret_why)
		*ret_why = why;
	return r;
}

static void expect_set_ok(const char *identity, const char *psk, bool hex, const char *endpoint)
{
	struct credentials c;
	const char *why = NULL;

	if (set(&c, identity, psk, hex, endpoint, &why) != 0)
		fail_msg("credentials_set(\"%s\", \"%s\", %d, \"%s\") refused: %s", identity, psk,
			 hex, endpoint, why);
	assert_string_equal(c.identity, identity);
	assert_string_equal(c.psk_text, psk);
	assert_string_equal(c.endpoint, endpoint);
	assert_int_equal(c.psk_hex, hex);
	/* What set() does not touch. */
	assert_int_equal(c.obtained_ms, 1234);
	assert_int_equal(c.origin, CREDENTIALS_USER);
}

static void expect_set_fails(const char *identity, const char *psk, bool hex, const char *endpoint)
{
	struct credentials c;

	if (set(&c, identity, psk, hex, endpoint, NULL) != -EINVAL)
		fail_msg("credentials_set(\"%s\", \"%s\", %d, \"%s\") accepted", identity, psk, hex,
			 endpoint);
}

static char *repeat(char ch, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

static int parse(const char *payload, size_t len, struct credentials *ret, const char **ret_why)
{
	struct credentials before;
	const char *why = NULL;
	int r;

	memset(ret, 0x5a, sizeof(*ret));
	before = *ret;
	r = credentials_parse_bootstrap(payload, len, DEFAULT, ret, &why);
	if (r < 0) {
		assert_int_equal(r, -EINVAL);
		assert_non_null(why);
		assert_memory_equal(ret, &before, sizeof(*ret));
	}
	if (ret_why)
		*ret_why = why;
	return r;
}

static void expect_parse(const char *payload, const char *identity, const char *psk,
			 const char *endpoint)
{
	struct credentials c;
	const char *why = NULL;

	if (parse(payload, strlen(payload), &c, &why) != 0)
		fail_msg("bootstrap answer \"%s\" refused: %s", payload, why);
	assert_string_equal(c.identity, identity);
	assert_string_equal(c.psk_text, psk);
	assert_false(c.psk_hex);
	assert_int_equal(c.psk_len, strlen(psk));
	assert_memory_equal(c.psk, psk, strlen(psk));
	assert_string_equal(c.endpoint, endpoint);
	assert_int_equal(c.origin, CREDENTIALS_BOOTSTRAP);
}

static void expect_parse_fails_len(const char *payload, size_t len)
{
	struct credentials c;

	if (parse(payload, len, &c, NULL) != -EINVAL)
		fail_msg("bootstrap answer \"%.*s\" accepted", (int)len, payload);
}

static void expect_parse_fails(const char *payload)
{
	expect_parse_fails_len(payload, strlen(payload));
}

static const char *in_dir(const char *name)
{
	static char buf[4][PATH_MAX + 64];
	static int which;

	which = (which + 1) % 4;
	snprintf(buf[which], sizeof(buf[which]), "%s/%s", dir, name);
	return buf[which];
}

static void write_file(const char *name, const char *text, mode_t mode)
{
	const char *path = in_dir(name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static char *read_file(const char *name)
{
	static char buf[8192];
	int fd = open(in_dir(name), O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

/* The names in dir, sorted, joined by spaces. */
static const char *dir_listing(void)
{
	static char out[1024];
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);

	assert_true(n >= 0);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, ".."))
			snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s",
				 out[0] ? " " : "", names[i]->d_name);
		free(names[i]);
	}
	free(names);
	return out;
}

static void make_creds(struct credentials *c, const char *psk, bool hex,
		       enum credentials_origin origin, int64_t obtained_ms)
{
	const char *why;

	memset(c, 0, sizeof(*c));
	c->origin = origin;
	c->obtained_ms = obtained_ms;
	if (credentials_set(c, ICCID, psk, hex, ENDPOINT, &why) < 0)
		fail_msg("%s", why);
}

static void expect_same(const struct credentials *a, const struct credentials *b)
{
	assert_string_equal(a->identity, b->identity);
	assert_string_equal(a->psk_text, b->psk_text);
	assert_int_equal(a->psk_hex, b->psk_hex);
	assert_int_equal(a->psk_len, b->psk_len);
	assert_memory_equal(a->psk, b->psk, a->psk_len);
	assert_string_equal(a->endpoint, b->endpoint);
	assert_int_equal(a->obtained_ms, b->obtained_ms);
	assert_int_equal(a->origin, b->origin);
}

/* credentials_load() that must fail with want and leave *ret alone. */
static void expect_load_fails(int want)
{
	struct credentials c, before;
	int r;

	memset(&c, 0x5a, sizeof(c));
	before = c;
	r = credentials_load(dir, &c);
	if (r != want)
		fail_msg("credentials_load() = %d (%s), expected %d (%s)", r, strerror(-r), want,
			 strerror(-want));
	assert_memory_equal(&c, &before, sizeof(c));
}

static int setup_dir(void **state)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/coapgate-test-credentials-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown_dir(void **state)
{
	return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- credentials_set() ---- */

static void test_set_valid(void **state)
{
	struct credentials c;

	expect_set_ok(ICCID, "secret-psk", false, ENDPOINT);
	assert_int_equal(set(&c, ICCID, "secret-psk", false, ENDPOINT, NULL), 0);
	assert_int_equal(c.psk_len, 10);
	assert_memory_equal(c.psk, "secret-psk", 10);
	/* Any printable ASCII but the comma, in the identity and the PSK. */
	expect_set_ok("device-7_A.b:c@d", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ", false, ENDPOINT);
	expect_set_ok("x", "12345678", false, "coaps://h");
	expect_set_ok("x", "12345678", false, "coaps://[2001:db8::1]:5684");
}

static void test_set_identity(void **state)
{
	char *max = repeat('7', CREDENTIALS_IDENTITY_MAX);
	char *over = repeat('7', CREDENTIALS_IDENTITY_MAX + 1);
	static const char *const bad[] = {
		"",	"a,b",	 "a b",		" ab",	"ab ",	 "a\tb",
		"a\nb", "a\x7f", "caf\xc3\xa9", "\x01", "a\x1f",
	};

	expect_set_ok(max, "12345678", false, ENDPOINT);
	expect_set_fails(over, "12345678", false, ENDPOINT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_set_fails(bad[i], "12345678", false, ENDPOINT);
	free(max);
	free(over);
}

static void test_set_psk_length(void **state)
{
	char *max = repeat('k', CREDENTIALS_PSK_MAX);
	char *over = repeat('k', CREDENTIALS_PSK_MAX + 1);
	struct credentials c;

	expect_set_fails(ICCID, "", false, ENDPOINT);
	expect_set_fails(ICCID, "1234567", false, ENDPOINT);
	expect_set_ok(ICCID, "12345678", false, ENDPOINT);
	expect_set_ok(ICCID, max, false, ENDPOINT);
	assert_int_equal(set(&c, ICCID, max, false, ENDPOINT, NULL), 0);
	assert_int_equal(c.psk_len, CREDENTIALS_PSK_MAX);
	expect_set_fails(ICCID, over, false, ENDPOINT);
	free(max);
	free(over);
}

static void test_set_psk_text_chars(void **state)
{
	expect_set_ok(ICCID, "with space", false, ENDPOINT);
	expect_set_fails(ICCID, "tab\there!", false, ENDPOINT);
	expect_set_fails(ICCID, "newline\n1", false, ENDPOINT);
	expect_set_fails(ICCID,
			 "del\x7f"
			 "12345",
			 false, ENDPOINT);
	expect_set_fails(ICCID,
			 "gr\xc3\xbc\xc3\x9f"
			 "e123",
			 false, ENDPOINT);
}

static void test_set_psk_hex(void **state)
{
	static const uint8_t want[] = { 0x00, 0xff, 0x10, 0xab, 0xcd, 0xef, 0x9a, 0x5f };
	char *max = repeat('e', CREDENTIALS_PSK_MAX);
	char *over = repeat('e', CREDENTIALS_PSK_MAX + 2);
	struct credentials c;
	const char *why;

	assert_int_equal(set(&c, ICCID, "00ff10abCDEF9a5F", true, ENDPOINT, NULL), 0);
	assert_true(c.psk_hex);
	assert_string_equal(c.psk_text, "00ff10abCDEF9a5F");
	assert_int_equal(c.psk_len, sizeof(want));
	assert_memory_equal(c.psk, want, sizeof(want));

	assert_int_equal(set(&c, ICCID, "0123456789abcdef", true, ENDPOINT, NULL), 0);
	assert_int_equal(c.psk_len, 8);
	assert_memory_equal(c.psk, "\x01\x23\x45\x67\x89\xab\xcd\xef", 8);

	/* 256 digits, 128 bytes. */
	assert_int_equal(set(&c, ICCID, max, true, ENDPOINT, NULL), 0);
	assert_int_equal(c.psk_len, CREDENTIALS_PSK_MAX / 2);
	for (size_t i = 0; i < c.psk_len; i++)
		assert_int_equal(c.psk[i], 0xee);
	expect_set_fails(ICCID, over, true, ENDPOINT);

	/* Odd: 9 or 11 digits, or 255; said so. */
	assert_int_equal(set(&c, ICCID, "012345678", true, ENDPOINT, &why), -EINVAL);
	assert_non_null(strstr(why, "even"));
	expect_set_fails(ICCID, "0123456789a", true, ENDPOINT);
	max[CREDENTIALS_PSK_MAX - 1] = '\0';
	expect_set_fails(ICCID, max, true, ENDPOINT);
	/* Not hex, at either place of a pair. */
	expect_set_fails(ICCID, "0123456g", true, ENDPOINT);
	expect_set_fails(ICCID, "g1234567", true, ENDPOINT);
	expect_set_fails(ICCID, "01234 67", true, ENDPOINT);
	expect_set_fails(ICCID, "0x123456", true, ENDPOINT);
	expect_set_fails(ICCID, "012345-7", true, ENDPOINT);
	/* Short, though 8 digits make only 4 bytes: the length counts characters. */
	expect_set_fails(ICCID, "012345", true, ENDPOINT);
	expect_set_ok(ICCID, "01234567", true, ENDPOINT);
	free(max);
	free(over);
}

static void test_set_endpoint(void **state)
{
	char long_ep[CREDENTIALS_ENDPOINT_MAX + 2];
	static const char *const bad[] = {
		"",	    "coaps://",	  "coap://h:5683",	  "https://h", "COAPS://h:1",
		"coaps:/h", " coaps://h", "udp.os.1nce.com:5684", "coaps:",    "coaps+tcp://h:1",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_set_fails(ICCID, "12345678", false, bad[i]);
	memset(long_ep, 'h', sizeof(long_ep) - 1);
	memcpy(long_ep, "coaps://", 8);
	long_ep[CREDENTIALS_ENDPOINT_MAX] = '\0';
	expect_set_ok(ICCID, "12345678", false, long_ep);
	long_ep[CREDENTIALS_ENDPOINT_MAX] = 'h';
	long_ep[CREDENTIALS_ENDPOINT_MAX + 1] = '\0';
	expect_set_fails(ICCID, "12345678", false, long_ep);
}

/*
 * "a coaps:// URL" (credentials.h): more than the prefix. The uplink parses the
 * endpoint with coap_split_uri() and refuses these; credentials that pass here but
 * fail there are saved and then tried forever ("is not a coaps:// URL", backoff),
 * never bootstrapped again.
 */
static void test_set_endpoint_not_a_url(void **state)
{
	static const char *const bad[] = {
		"coaps://:5684",	/* no host */
		"coaps://h:99999",	/* no port */
		"coaps://h:5684\nx",	/* a line end */
		"coaps://h\x01:5684",	/* a control character */
		"coaps://h o s t:5684", /* spaces */
	};
	char accepted[256] = "";
	struct credentials c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (set(&c, ICCID, "12345678", false, bad[i], NULL) == 0)
			snprintf(accepted + strlen(accepted), sizeof(accepted) - strlen(accepted),
				 " %zu", i);
	if (parse(ICCID ",s3cr3t-psk,coaps://:5684", strlen(ICCID ",s3cr3t-psk,coaps://:5684"), &c,
		  NULL) == 0)
		snprintf(accepted + strlen(accepted), sizeof(accepted) - strlen(accepted),
			 " bootstrap");
	if (accepted[0])
		fail_msg("endpoints accepted that are no coaps:// URL:%s", accepted);
}

/* ---- credentials_parse_bootstrap() ---- */

static void test_bootstrap_valid(void **state)
{
	expect_parse(ICCID ",s3cr3t-psk,coaps://h.example:5684", ICCID, "s3cr3t-psk",
		     "coaps://h.example:5684");
	/* Missing or empty third field: the default endpoint. */
	expect_parse(ICCID ",s3cr3t-psk", ICCID, "s3cr3t-psk", DEFAULT);
	expect_parse(ICCID ",s3cr3t-psk,", ICCID, "s3cr3t-psk", DEFAULT);
	/* Trailing line ends, after either form. */
	expect_parse(ICCID ",s3cr3t-psk,coaps://h:1\n", ICCID, "s3cr3t-psk", "coaps://h:1");
	expect_parse(ICCID ",s3cr3t-psk,coaps://h:1\r\n", ICCID, "s3cr3t-psk", "coaps://h:1");
	expect_parse(ICCID ",s3cr3t-psk\n", ICCID, "s3cr3t-psk", DEFAULT);
	expect_parse(ICCID ",s3cr3t-psk\r\n\r\n", ICCID, "s3cr3t-psk", DEFAULT);
	/* ICCIDs of 15 and 22 digits. */
	expect_parse("123456789012345,12345678", "123456789012345", "12345678", DEFAULT);
	expect_parse("1234567890123456789012,12345678", "1234567890123456789012", "12345678",
		     DEFAULT);
}

/* The payload is not NUL-terminated: only len bytes count. */
static void test_bootstrap_length(void **state)
{
	static const char text[] = ICCID ",s3cr3t-psk,coaps://h:1XXXX";
	struct credentials c;

	assert_int_equal(parse(text, strlen(text) - 4, &c, NULL), 0);
	assert_string_equal(c.endpoint, "coaps://h:1");
	assert_int_equal(parse(text, strlen(ICCID ",s3cr3t-psk"), &c, NULL), 0);
	assert_string_equal(c.psk_text, "s3cr3t-psk");
	assert_string_equal(c.endpoint, DEFAULT);
}

static void test_bootstrap_invalid(void **state)
{
	char *huge = repeat('1', 4096);

	expect_parse_fails("");
	expect_parse_fails("\n");
	expect_parse_fails(ICCID);
	expect_parse_fails(ICCID "\n");
	/* Four fields. */
	expect_parse_fails(ICCID ",s3cr3t-psk,coaps://h:1,extra");
	expect_parse_fails(ICCID ",s3cr3t-psk,coaps://h:1,");
	/* Not an ICCID. */
	expect_parse_fails("8988280666000490918X,s3cr3t-psk,coaps://h:1");
	expect_parse_fails("device-1,s3cr3t-psk");
	expect_parse_fails(" " ICCID ",s3cr3t-psk");
	expect_parse_fails(",s3cr3t-psk");
	expect_parse_fails("12345678901234,s3cr3t-psk");	  /* 14 digits */
	expect_parse_fails("12345678901234567890123,s3cr3t-psk"); /* 23 */
	/* An empty or short PSK. */
	expect_parse_fails(ICCID ",,coaps://h:1");
	expect_parse_fails(ICCID ",");
	expect_parse_fails(ICCID ",short");
	/* A bad endpoint. */
	expect_parse_fails(ICCID ",s3cr3t-psk,coap://h:5683");
	expect_parse_fails(ICCID ",s3cr3t-psk,coaps://");
	/* A NUL anywhere. */
	expect_parse_fails_len(ICCID ",s3cr3t\0psk,coaps://h:1",
			       sizeof(ICCID ",s3cr3t\0psk,coaps://h:1") - 1);
	expect_parse_fails_len(ICCID ",s3cr3t-psk\0", sizeof(ICCID ",s3cr3t-psk\0") - 1);
	expect_parse_fails_len("\0" ICCID ",s3cr3t-psk", sizeof("\0" ICCID ",s3cr3t-psk") - 1);
	/* A newline inside. */
	expect_parse_fails(ICCID ",s3cr3t\n-psk");
	/* Too long for any valid answer. */
	expect_parse_fails(huge);
	free(huge);
}

/* ---- the store ---- */

static void test_save_load(void **state)
{
	struct credentials c, got;
	struct stat st;

	make_creds(&c, "0123456789abcdef", true, CREDENTIALS_USER, 1732480000123);
	assert_int_equal(credentials_save(dir, &c), 0);
	assert_int_equal(stat(in_dir("credentials"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_string_equal(dir_listing(), "credentials");
	memset(&got, 0x5a, sizeof(got));
	assert_int_equal(credentials_load(dir, &got), 0);
	expect_same(&got, &c);

	/* Replaced: the second save wins. */
	make_creds(&c, "a \"quoted\" \\ psk", false, CREDENTIALS_BOOTSTRAP, 0);
	assert_int_equal(credentials_save(dir, &c), 0);
	assert_int_equal(credentials_load(dir, &got), 0);
	expect_same(&got, &c);
	assert_string_equal(dir_listing(), "credentials");
}

/* The file is the documented JSON, readable by a person. */
static void test_save_format(void **state)
{
	struct credentials c;
	json_t *j;

	make_creds(&c, "0123456789abcdef", true, CREDENTIALS_USER, 1732480000123);
	assert_int_equal(credentials_save(dir, &c), 0);
	j = json_loads(read_file("credentials"), 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "identity")), ICCID);
	assert_string_equal(json_string_value(json_object_get(j, "psk")), "0123456789abcdef");
	assert_string_equal(json_string_value(json_object_get(j, "psk_format")), "hex");
	assert_string_equal(json_string_value(json_object_get(j, "endpoint")), ENDPOINT);
	assert_int_equal(json_integer_value(json_object_get(j, "obtained_ms")), 1732480000123);
	assert_string_equal(json_string_value(json_object_get(j, "origin")), "user");
	json_decref(j);
}

/* 0600 whatever the umask. */
static void test_save_mode_umask(void **state)
{
	struct credentials c;
	struct stat st;
	mode_t old = umask(0);

	make_creds(&c, "12345678", false, CREDENTIALS_BOOTSTRAP, 1);
	assert_int_equal(credentials_save(dir, &c), 0);
	umask(old);
	assert_int_equal(stat(in_dir("credentials"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

/* A loose file left by someone else is replaced by a 0600 one. */
static void test_save_replaces_loose_file(void **state)
{
	struct credentials c, got;
	struct stat st;

	write_file("credentials", "{}", 0644);
	expect_load_fails(-EPERM);
	make_creds(&c, "12345678", false, CREDENTIALS_BOOTSTRAP, 1);
	assert_int_equal(credentials_save(dir, &c), 0);
	assert_int_equal(stat(in_dir("credentials"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(credentials_load(dir, &got), 0);
	expect_same(&got, &c);
}

/* A temporary file left by a crash does not stop the next save, and goes. */
static void test_save_stale_tmp(void **state)
{
	struct credentials c, got;

	write_file("credentials.tmp", "half a fi", 0600);
	make_creds(&c, "12345678", false, CREDENTIALS_BOOTSTRAP, 1);
	assert_int_equal(credentials_save(dir, &c), 0);
	assert_string_equal(dir_listing(), "credentials");
	assert_int_equal(credentials_load(dir, &got), 0);
	expect_same(&got, &c);
}

/* A symlink planted as the temporary file is not written through. */
static void test_save_tmp_symlink(void **state)
{
	struct credentials c;

	write_file("victim", "untouched", 0600);
	assert_int_equal(symlink(in_dir("victim"), in_dir("credentials.tmp")), 0);
	make_creds(&c, "12345678", false, CREDENTIALS_BOOTSTRAP, 1);
	assert_int_equal(credentials_save(dir, &c), 0);
	assert_string_equal(read_file("victim"), "untouched");
	assert_string_equal(dir_listing(), "credentials victim");
}

static void test_save_no_dir(void **state)
{
	struct credentials c;
	char missing[PATH_MAX + 16];

	snprintf(missing, sizeof(missing), "%s/missing", dir);
	make_creds(&c, "12345678", false, CREDENTIALS_BOOTSTRAP, 1);
	assert_int_equal(credentials_save(missing, &c), -ENOENT);
	assert_string_equal(dir_listing(), "");
}

static void test_load_missing(void **state)
{
	char missing[PATH_MAX + 16];
	struct credentials c;

	expect_load_fails(-ENOENT);
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	assert_int_equal(credentials_load(missing, &c), -ENOENT);
}

static void test_load_symlink(void **state)
{
	struct credentials c;

	make_creds(&c, "12345678", false, CREDENTIALS_BOOTSTRAP, 1);
	assert_int_equal(credentials_save(dir, &c), 0);
	assert_int_equal(rename(in_dir("credentials"), in_dir("real")), 0);
	assert_int_equal(symlink("real", in_dir("credentials")), 0);
	expect_load_fails(-ELOOP);
	/* A dangling one too. */
	assert_int_equal(unlink(in_dir("real")), 0);
	expect_load_fails(-ELOOP);
}

static void test_load_mode(void **state)
{
	struct credentials c, got;
	static const mode_t loose[] = { 0644, 0640, 0604, 0660, 0606, 0610, 0601, 0666 };

	make_creds(&c, "12345678", false, CREDENTIALS_BOOTSTRAP, 1);
	assert_int_equal(credentials_save(dir, &c), 0);
	for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		assert_int_equal(chmod(in_dir("credentials"), loose[i]), 0);
		expect_load_fails(-EPERM);
	}
	/* Tighter than 0600 is fine. */
	assert_int_equal(chmod(in_dir("credentials"), 0400), 0);
	assert_int_equal(credentials_load(dir, &got), 0);
	expect_same(&got, &c);
}

static void test_load_not_regular(void **state)
{
	assert_int_equal(mkdir(in_dir("credentials"), 0700), 0);
	expect_load_fails(-EINVAL);
}

static void expect_damaged(const char *text)
{
	write_file("credentials", text, 0600);
	expect_load_fails(-EINVAL);
}

#define GOOD_FIELDS                                                                   \
	"\"identity\":\"" ICCID "\",\"endpoint\":\"" ENDPOINT "\",\"obtained_ms\":5," \
	"\"origin\":\"bootstrap\""

static void test_load_damaged(void **state)
{
	struct credentials got;
	char *big;

	/* What is well-formed loads; everything below differs from it in one thing. */
	write_file("credentials",
		   "{" GOOD_FIELDS ",\"psk\":\"12345678\",\"psk_format\":\"string\"}", 0600);
	assert_int_equal(credentials_load(dir, &got), 0);
	assert_string_equal(got.psk_text, "12345678");
	assert_int_equal(got.obtained_ms, 5);
	assert_int_equal(got.origin, CREDENTIALS_BOOTSTRAP);

	expect_damaged("");
	expect_damaged("\n");
	expect_damaged("{");
	expect_damaged("{" GOOD_FIELDS ",\"psk\":\"12345678\",\"psk_format\":\"string\"");
	expect_damaged("[]");
	expect_damaged("null");
	expect_damaged("\"text\"");
	expect_damaged("{" GOOD_FIELDS ",\"psk\":\"12345678\"}");
	expect_damaged("{" GOOD_FIELDS ",\"psk\":12345678,\"psk_format\":\"string\"}");
	expect_damaged("{" GOOD_FIELDS ",\"psk\":\"12345678\",\"psk_format\":\"base64\"}");
	expect_damaged("{" GOOD_FIELDS ",\"psk\":\"short\",\"psk_format\":\"string\"}");
	expect_damaged("{" GOOD_FIELDS ",\"psk\":\"123456789\",\"psk_format\":\"hex\"}");
	expect_damaged("{\"identity\":\"a,b\",\"endpoint\":\"" ENDPOINT "\",\"obtained_ms\":5,"
		       "\"origin\":\"bootstrap\",\"psk\":\"12345678\",\"psk_format\":\"string\"}");
	expect_damaged("{\"identity\":\"" ICCID "\",\"endpoint\":\"http://x\",\"obtained_ms\":5,"
		       "\"origin\":\"bootstrap\",\"psk\":\"12345678\",\"psk_format\":\"string\"}");
	expect_damaged("{\"identity\":\"" ICCID "\",\"endpoint\":\"" ENDPOINT "\","
		       "\"obtained_ms\":\"5\",\"origin\":\"bootstrap\",\"psk\":\"12345678\","
		       "\"psk_format\":\"string\"}");
	expect_damaged("{\"identity\":\"" ICCID "\",\"endpoint\":\"" ENDPOINT "\","
		       "\"obtained_ms\":5,\"origin\":\"someone\",\"psk\":\"12345678\","
		       "\"psk_format\":\"string\"}");
	/* Bigger than any credentials file. */
	big = repeat(' ', 5000);
	memcpy(big + 4900, "{}", 2);
	expect_damaged(big);
	free(big);
	/* Half written (it never is, but a disk can lose a tail). */
	expect_damaged("{" GOOD_FIELDS ",\"psk\":\"1234");
}

/*
 * A FIFO (or other special file) in place of the file is refused like a directory,
 * not waited on: open() of a FIFO without O_NONBLOCK blocks until a writer comes,
 * before the S_ISREG check can refuse it. Run in a child that a timer ends.
 */
static void test_load_fifo(void **state)
{
	pid_t pid;
	int status;

	assert_int_equal(mkfifo(in_dir("credentials"), 0600), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct credentials c;

		alarm(2);
		_exit(credentials_load(dir, &c) == -EINVAL ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		fail_msg("credentials_load() blocks on a FIFO");
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_valid),
		cmocka_unit_test(test_set_identity),
		cmocka_unit_test(test_set_psk_length),
		cmocka_unit_test(test_set_psk_text_chars),
		cmocka_unit_test(test_set_psk_hex),
		cmocka_unit_test(test_set_endpoint),
		cmocka_unit_test(test_set_endpoint_not_a_url),
		cmocka_unit_test(test_bootstrap_valid),
		cmocka_unit_test(test_bootstrap_length),
		cmocka_unit_test(test_bootstrap_invalid),
		cmocka_unit_test_setup_teardown(test_save_load, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_save_format, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_save_mode_umask, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_save_replaces_loose_file, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_save_stale_tmp, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_save_tmp_symlink, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_save_no_dir, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_missing, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_symlink, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_mode, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_not_regular, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_damaged, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_fifo, setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
