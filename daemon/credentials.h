/* SPDX-License-Identifier: MIT */
/*
 * The DTLS credentials of the device: its identity (the SIM's ICCID), the pre-shared
 * key, the coaps endpoint they are for, when they were obtained and whether they came
 * from bootstrap or from the user's configuration. Persisted as a small JSON file
 * (mode 0600) under the state directory, replaced atomically; never logged.
 *
 * Not here: obtaining them (bootstrap.c) or using them (uplink.c).
 */
#ifndef COAPGATE_CREDENTIALS_H
#define COAPGATE_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CREDENTIALS_IDENTITY_MAX 64
#define CREDENTIALS_PSK_MAX	 256 /* 1NCE: 8 to 256 characters */
#define CREDENTIALS_ENDPOINT_MAX 256

enum credentials_origin {
	CREDENTIALS_BOOTSTRAP,
	CREDENTIALS_USER,
};

struct credentials {
	char identity[CREDENTIALS_IDENTITY_MAX + 1];
	/* The key as given (text) and as DTLS uses it (bytes: ASCII, or hex decoded). */
	char psk_text[CREDENTIALS_PSK_MAX + 1];
	bool psk_hex;
	uint8_t psk[CREDENTIALS_PSK_MAX];
	size_t psk_len;
	char endpoint[CREDENTIALS_ENDPOINT_MAX + 1]; /* coaps://host:port */
	int64_t obtained_ms;			     /* wall clock */
	enum credentials_origin origin;
};

/*
 * Fill c from text values, checking them: identity 1..64 printable ASCII without
 * commas, the PSK 8..256 characters (hex: an even number of hex digits), endpoint a
 * coaps:// URL. Returns 0 or -EINVAL with a static reason in *ret_why.
 */
int credentials_set(struct credentials *c, const char *identity, const char *psk, bool psk_hex,
		    const char *endpoint, const char **ret_why);

/*
 * Read <dir>/credentials. Returns 0, -ENOENT when there is none, -EINVAL when it is
 * damaged (the caller bootstraps again), or another -errno. Refuses a symlink
 * (O_NOFOLLOW) and a file readable by others. Logs nothing.
 */
int credentials_load(const char *dir, struct credentials *ret);

/*
 * Write <dir>/credentials atomically: a temporary file (0600), fsync, rename, fsync of
 * the directory. Returns 0 or -errno; logs nothing.
 */
int credentials_save(const char *dir, const struct credentials *c);

/*
 * Parse a bootstrap answer "identity,psk,coaps://host:port" (the third field may be
 * missing; default_endpoint is used then). Returns 0 or -EINVAL with *ret_why.
 */
int credentials_parse_bootstrap(const char *payload, size_t len, const char *default_endpoint,
				struct credentials *ret, const char **ret_why);

#endif
