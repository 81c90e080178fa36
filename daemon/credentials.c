// SPDX-License-Identifier: MIT
/*
 * The credential store; see credentials.h. The file is JSON so that a person can read
 * what the gateway holds (as root): {"identity", "psk", "psk_format", "endpoint",
 * "obtained_ms", "origin"}.
 */
#include "credentials.h"

#include "util.h"

#include <coap3/coap.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_NAME     "credentials"
#define TMP_NAME      "credentials.tmp"
#define PSK_TEXT_MIN  8
#define MAX_FILE_SIZE 4096

/* A coaps:// URL libcoap can use: a host, a port that fits, printable ASCII only. */
static bool endpoint_is_valid(const char *endpoint)
{
	size_t len = strlen(endpoint);
	coap_uri_t uri;

	if (strncmp(endpoint, "coaps://", 8) != 0 || len > CREDENTIALS_ENDPOINT_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (endpoint[i] <= ' ' || endpoint[i] > '~')
			return false;
	return coap_split_uri((const uint8_t *)endpoint, len, &uri) == 0 &&
	       uri.scheme == COAP_URI_SCHEME_COAPS && uri.host.length > 0 && uri.port > 0;
}

int credentials_set(struct credentials *c, const char *identity, const char *psk, bool psk_hex,
		    const char *endpoint, const char **ret_why)
{
	size_t id_len = strlen(identity), psk_len = strlen(psk);
	struct credentials n = { .psk_hex = psk_hex };

	if (id_len == 0 || id_len > CREDENTIALS_IDENTITY_MAX) {
		*ret_why = "the identity must have 1 to 64 characters";
		return -EINVAL;
	}
	for (size_t i = 0; i < id_len; i++)
		if (identity[i] <= ' ' || identity[i] > '~' || identity[i] == ',') {
			*ret_why = "the identity has a character other than printable ASCII";
			return -EINVAL;
		}
	if (psk_len < PSK_TEXT_MIN || psk_len > CREDENTIALS_PSK_MAX) {
		*ret_why = "the PSK must have 8 to 256 characters";
		return -EINVAL;
	}
	if (psk_hex) {
		if (psk_len % 2) {
			*ret_why = "a hex PSK needs an even number of digits";
			return -EINVAL;
		}
		for (size_t i = 0; i < psk_len; i += 2) {
			int hi = hex_digit_value(psk[i]), lo = hex_digit_value(psk[i + 1]);

			if (hi < 0 || lo < 0) {
				*ret_why = "a hex PSK has only the digits 0-9 and a-f";
				return -EINVAL;
			}
			n.psk[i / 2] = (uint8_t)(hi << 4 | lo);
		}
		n.psk_len = psk_len / 2;
	} else {
		for (size_t i = 0; i < psk_len; i++)
			if (psk[i] < ' ' || psk[i] > '~') {
				*ret_why = "a string PSK has only printable ASCII characters";
				return -EINVAL;
			}
		memcpy(n.psk, psk, psk_len);
		n.psk_len = psk_len;
	}
	if (!endpoint_is_valid(endpoint)) {
		*ret_why =
		    "the endpoint must be a coaps://HOST[:PORT] URL of at most 256 characters";
		return -EINVAL;
	}
	memcpy(n.identity, identity, id_len + 1);
	memcpy(n.psk_text, psk, psk_len + 1);
	memcpy(n.endpoint, endpoint, strlen(endpoint) + 1);
	n.obtained_ms = c->obtained_ms;
	n.origin = c->origin;
	*c = n;
	return 0;
}

int credentials_parse_bootstrap(const char *payload, size_t len, const char *default_endpoint,
				struct credentials *ret, const char **ret_why)
{
	char text[CREDENTIALS_IDENTITY_MAX + CREDENTIALS_PSK_MAX + CREDENTIALS_ENDPOINT_MAX + 4];
	char *identity, *psk, *endpoint, *end;
	struct credentials c = { .origin = CREDENTIALS_BOOTSTRAP };

	if (len >= sizeof(text) || memchr(payload, '\0', len)) {
		*ret_why = "the answer is too long or not text";
		return -EINVAL;
	}
	memcpy(text, payload, len);
	text[len] = '\0';
	/* Tolerate a trailing newline, as a hand-made server might send. */
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	identity = text;
	psk = strchr(identity, ',');
	if (!psk) {
		*ret_why = "the answer is not identity,psk,endpoint";
		return -EINVAL;
	}
	*psk++ = '\0';
	endpoint = strchr(psk, ',');
	if (endpoint) {
		*endpoint++ = '\0';
		if (strchr(endpoint, ',')) {
			*ret_why = "the answer has more than three fields";
			return -EINVAL;
		}
	}
	if (!endpoint || !*endpoint)
		endpoint = (char *)default_endpoint;
	/* An ICCID: digits only, 19 or 20 of them, but accept 15 to 22 (EIDs differ). */
	for (end = identity; *end >= '0' && *end <= '9'; end++)
		;
	if (*end || end - identity < 15 || end - identity > 22) {
		*ret_why = "the identity is not an ICCID (15 to 22 digits)";
		return -EINVAL;
	}
	if (credentials_set(&c, identity, psk, false, endpoint, ret_why) < 0)
		return -EINVAL;
	*ret = c;
	return 0;
}

int credentials_load(const char *dir, struct credentials *ret)
{
	char path[4096], buf[MAX_FILE_SIZE + 1];
	struct credentials c = { 0 };
	const char *identity, *psk, *format, *endpoint, *origin, *why;
	json_int_t obtained = 0;
	json_t *j;
	struct stat st;
	ssize_t n;
	int fd, r;

	snprintf(path, sizeof(path), "%s/" FILE_NAME, dir);
	/* O_NONBLOCK: opening a FIFO put in its place would otherwise wait for a writer. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		safe_close(fd);
		return -EINVAL;
	}
	if (st.st_mode & 0077) {
		safe_close(fd);
		return -EPERM;
	}
	n = read(fd, buf, sizeof(buf));
	r = n < 0 ? -errno : 0;
	safe_close(fd);
	if (r < 0)
		return r;
	if (n > MAX_FILE_SIZE)
		return -EINVAL;
	j = json_loadb(buf, (size_t)n, 0, NULL);
	if (!j)
		return -EINVAL;
	if (json_unpack(j, "{s:s, s:s, s:s, s:s, s:I, s:s}", "identity", &identity, "psk", &psk,
			"psk_format", &format, "endpoint", &endpoint, "obtained_ms", &obtained,
			"origin", &origin) < 0 ||
	    (strcmp(format, "string") && strcmp(format, "hex")) ||
	    (strcmp(origin, "bootstrap") && strcmp(origin, "user")) ||
	    credentials_set(&c, identity, psk, strcmp(format, "hex") == 0, endpoint, &why) < 0) {
		json_decref(j);
		return -EINVAL;
	}
	c.obtained_ms = obtained;
	c.origin = strcmp(origin, "user") == 0 ? CREDENTIALS_USER : CREDENTIALS_BOOTSTRAP;
	json_decref(j);
	*ret = c;
	return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int credentials_save(const char *dir, const struct credentials *c)
{
	char path[4096], tmp[4096];
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "identity", c->identity, "psk",
			      c->psk_text, "psk_format", c->psk_hex ? "hex" : "string", "endpoint",
			      c->endpoint, "obtained_ms", (json_int_t)c->obtained_ms, "origin",
			      c->origin == CREDENTIALS_USER ? "user" : "bootstrap");
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	int fd, dfd, r;

	json_decref(j);
	snprintf(path, sizeof(path), "%s/" FILE_NAME, dir);
	snprintf(tmp, sizeof(tmp), "%s/" TMP_NAME, dir);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(text);
		return -errno;
	}
	r = write_all(fd, text, strlen(text));
	if (r == 0)
		r = write_all(fd, "\n", 1);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	safe_close(fd);
	free(text);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(tmp);
		return r;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	r = fsync(dfd) < 0 ? -errno : 0;
	safe_close(dfd);
	return r;
}
