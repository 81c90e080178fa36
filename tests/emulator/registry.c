// SPDX-License-Identifier: MIT
/*
 * The device registry; see registry.h and README.md ("Device registry").
 */
#include "registry.h"

#include "emulator.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <libconfig.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1NCE's PSK API takes 8 to 256 characters, as a string or as hex. */
#define PSK_TEXT_MIN 8
/* Generated keys: the emulator's choice (README.md). */
#define PSK_GENERATED_LEN 24

struct registry {
	struct device *devices;
	size_t n_devices;
};

static bool is_digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int registry_set_user_psk(struct device *device, const char *format, const char *key,
			  const char **ret_error)
{
	size_t n = strlen(key);
	bool hex;

	if (strcmp(format, "string") == 0)
		hex = false;
	else if (strcmp(format, "hex") == 0)
		hex = true;
	else {
		*ret_error = "the PSK format must be \"string\" or \"hex\"";
		return -EINVAL;
	}
	if (n < PSK_TEXT_MIN || n > DEVICE_PSK_MAX) {
		*ret_error = "a PSK has 8 to 256 characters";
		return -EINVAL;
	}
	if (hex) {
		if (n % 2) {
			*ret_error = "a hex PSK has an even number of digits";
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++)
			if (hex_digit_value(key[i]) < 0) {
				*ret_error = "a hex PSK has only the digits 0-9, a-f";
				return -EINVAL;
			}
		for (size_t i = 0; i < n / 2; i++)
			device->psk[i] = (uint8_t)(hex_digit_value(key[2 * i]) << 4 |
						   hex_digit_value(key[2 * i + 1]));
		device->psk_len = n / 2;
	} else {
		memcpy(device->psk, key, n);
		device->psk_len = n;
	}
	memcpy(device->psk_text, key, n + 1);
	device->psk_user = true;
	device->psk_epoch++;
	return 0;
}

static void generate_psk(struct device *device)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	for (size_t i = 0; i < PSK_GENERATED_LEN; i++)
		device->psk_text[i] = alphabet[emu_random_below(sizeof(alphabet) - 1)];
	device->psk_text[PSK_GENERATED_LEN] = '\0';
	memcpy(device->psk, device->psk_text, PSK_GENERATED_LEN);
	device->psk_len = PSK_GENERATED_LEN;
	device->psk_user = false;
	device->psk_epoch++;
}

bool registry_bootstrap(struct device *device, uint64_t now_us)
{
	bool rotate =
	    device->psk_len == 0 || (!device->psk_user && device->bootstrapped &&
				     now_us - device->last_bootstrap_us >= NCE_PSK_ROTATE_AFTER_US);

	if (rotate)
		generate_psk(device);
	device->bootstrapped = true;
	device->last_bootstrap_us = now_us;
	device->bootstraps++;
	return rotate;
}

void registry_rotate(struct device *device)
{
	generate_psk(device);
}

size_t registry_size(const struct registry *registry)
{
	return registry->n_devices;
}

struct device *registry_device(struct registry *registry, size_t index)
{
	return index < registry->n_devices ? &registry->devices[index] : NULL;
}

static bool address_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return false;
}

struct device *registry_find_by_address(struct registry *registry, const struct sockaddr *sa)
{
	for (size_t i = 0; i < registry->n_devices; i++)
		if (address_equal((struct sockaddr *)&registry->devices[i].address, sa))
			return &registry->devices[i];
	return NULL;
}

struct device *registry_find_by_iccid(struct registry *registry, const char *iccid, size_t len)
{
	for (size_t i = 0; i < registry->n_devices; i++) {
		struct device *d = &registry->devices[i];

		if (strlen(d->iccid) == len && memcmp(d->iccid, iccid, len) == 0)
			return d;
	}
	return NULL;
}

static bool parse_address(const char *text, struct sockaddr_storage *ret)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ret;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;

	memset(ret, 0, sizeof(*ret));
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

/* Print one problem as FILE:LINE: and count it. */
static void __attribute__((format(printf, 4, 5)))
problem(int *errors, const char *path, const config_setting_t *where, const char *format, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%u: ", path, where ? config_setting_source_line(where) : 0);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
	(*errors)++;
}

/* A string member of group, or NULL after reporting a problem if it is not a string. */
static const char *member_string(const config_setting_t *group, const char *name, int *errors,
				 const char *path)
{
	const config_setting_t *s = config_setting_get_member(group, name);

	if (!s)
		return NULL;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		problem(errors, path, s, "\"%s\" must be a string", name);
		return NULL;
	}
	return config_setting_get_string(s);
}

static void load_device(struct registry *registry, const config_setting_t *group, const char *path,
			int *errors)
{
	static const char *const known[] = { "iccid", "address", "status",
					     "imsi",  "psk",	 "psk_format" };
	struct device *d = &registry->devices[registry->n_devices];
	const char *iccid, *address, *status, *imsi, *psk, *format;
	const char *error;
	int before = *errors;

	memset(d, 0, sizeof(*d));
	if (config_setting_type(group) != CONFIG_TYPE_GROUP) {
		problem(errors, path, group,
			"each device is a group { iccid = ...; address = ...; }");
		return;
	}
	for (int i = 0; i < config_setting_length(group); i++) {
		const char *name = config_setting_name(config_setting_get_elem(group, i));
		bool ok = false;

		for (size_t k = 0; k < ARRAY_SIZE(known); k++)
			ok |= strcmp(name, known[k]) == 0;
		if (!ok)
			problem(errors, path, config_setting_get_elem(group, i),
				"unknown device setting \"%s\"", name);
	}

	iccid = member_string(group, "iccid", errors, path);
	address = member_string(group, "address", errors, path);
	status = member_string(group, "status", errors, path);
	imsi = member_string(group, "imsi", errors, path);
	psk = member_string(group, "psk", errors, path);
	format = member_string(group, "psk_format", errors, path);

	if (!iccid)
		problem(errors, path, group, "a device needs an \"iccid\"");
	else if (!is_digits(iccid, 19, DEVICE_ICCID_MAX))
		problem(errors, path, group, "iccid \"%s\" is not 19 or 20 digits", iccid);
	else if (registry_find_by_iccid(registry, iccid, strlen(iccid)))
		problem(errors, path, group, "iccid \"%s\" is listed twice", iccid);
	else
		snprintf(d->iccid, sizeof(d->iccid), "%s", iccid);

	if (!address)
		problem(errors, path, group, "a device needs an \"address\"");
	else if (!parse_address(address, &d->address))
		problem(errors, path, group, "address \"%s\" is not an IPv4 or IPv6 address",
			address);
	else if (registry_find_by_address(registry, (struct sockaddr *)&d->address))
		problem(errors, path, group, "address \"%s\" belongs to two devices", address);
	else
		inet_ntop(d->address.ss_family,
			  d->address.ss_family == AF_INET
			      ? (void *)&((struct sockaddr_in *)&d->address)->sin_addr
			      : (void *)&((struct sockaddr_in6 *)&d->address)->sin6_addr,
			  d->address_text, sizeof(d->address_text));

	d->active = true;
	if (status && strcmp(status, "inactive") == 0)
		d->active = false;
	else if (status && strcmp(status, "active") != 0)
		problem(errors, path, group, "status \"%s\" is not \"active\" or \"inactive\"",
			status);

	if (imsi && !is_digits(imsi, 6, 15))
		problem(errors, path, group, "imsi \"%s\" is not 6 to 15 digits", imsi);
	if (psk && registry_set_user_psk(d, format ? format : "string", psk, &error) < 0)
		problem(errors, path, group, "psk: %s", error);
	if (format && !psk)
		problem(errors, path, group, "\"psk_format\" without a \"psk\"");

	if (*errors > before)
		return;
	d->imsi = imsi ? xstrdup(imsi) : NULL;
	registry->n_devices++;
}

int registry_load(const char *path, struct registry **ret_registry)
{
	struct registry *registry;
	const config_setting_t *list;
	config_t cf;
	int errors = 0, n;

	config_init(&cf);
	if (config_read_file(&cf, path) != CONFIG_TRUE) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO) {
			int r = errno ? -errno : -EIO;

			fprintf(stderr, "%s: cannot read the registry: %s\n", path, strerror(-r));
			config_destroy(&cf);
			return r;
		}
		fprintf(stderr, "%s:%d: %s\n", path, config_error_line(&cf),
			config_error_text(&cf));
		config_destroy(&cf);
		return -EINVAL;
	}

	list = config_lookup(&cf, "devices");
	if (!list || !config_setting_is_aggregate(list)) {
		problem(&errors, path, list, "the registry needs a list \"devices = ( ... );\"");
		config_destroy(&cf);
		return -EINVAL;
	}
	n = config_setting_length(list);
	registry = xcalloc(1, sizeof(*registry));
	registry->devices = xcalloc((size_t)n, sizeof(struct device));
	for (int i = 0; i < n; i++)
		load_device(registry, config_setting_get_elem(list, i), path, &errors);
	config_destroy(&cf);
	if (errors) {
		registry_free(registry);
		return -EINVAL;
	}
	*ret_registry = registry;
	return 0;
}

void registry_free(struct registry *registry)
{
	if (!registry)
		return;
	for (size_t i = 0; i < registry->n_devices; i++)
		free(registry->devices[i].imsi);
	free(registry->devices);
	free(registry);
}

json_t *registry_to_json(const struct registry *registry)
{
	json_t *list = json_array();

	for (size_t i = 0; i < registry->n_devices; i++) {
		const struct device *d = &registry->devices[i];
		json_t *o =
		    json_pack("{s:s, s:s, s:s, s:b, s:I, s:I}", "iccid", d->iccid, "address",
			      d->address_text, "status", d->active ? "active" : "inactive",
			      "bootstrapped", d->bootstrapped, "bootstraps",
			      (json_int_t)d->bootstraps, "handshakes", (json_int_t)d->handshakes);

		if (d->imsi)
			json_object_set_new(o, "imsi", json_string(d->imsi));
		if (d->psk_len) {
			json_object_set_new(o, "psk", json_string(d->psk_text));
			json_object_set_new(o, "psk_origin",
					    json_string(d->psk_user ? "user" : "bootstrap"));
		}
		json_array_append_new(list, o);
	}
	return list;
}
