/* SPDX-License-Identifier: MIT */
/*
 * Loading input plugins: dlopen() a shared object from the plugin directory, check its
 * descriptor's ABI numbers and size before anything else, and keep one copy of each
 * plugin however many instances use it.
 *
 * Not here: running instances (input.c) or parsing their options (config.c).
 */
#ifndef COAPGATE_PLUGIN_LOADER_H
#define COAPGATE_PLUGIN_LOADER_H

#include <coapgate/plugin.h>
#include <stddef.h>

struct plugin {
	char *name;
	char *path;
	void *handle;
	/* The plugin's descriptor, copied up to its size; members past it are zero. */
	struct cg_plugin desc;
};

/*
 * Check a descriptor read from path: the ABI major must equal the daemon's, the minor
 * must not be newer, the size must cover ABI 1.0 and not exceed the daemon's struct,
 * and name, run and the option table must be sane. On failure writes a reason that
 * names path into why and returns -EPROTO (ABI) or -EINVAL (contents). Pure: no
 * logging, so tests and the loader share it.
 */
int plugin_check_descriptor(const struct cg_plugin *desc, const char *path, const char *name,
			    char *why, size_t why_size);

/*
 * Open the plugin file at path, expected to be plugin `name`. Returns 0 and a new
 * plugin, or a negative errno with a reason naming the file in why. Logs only at
 * debug level (problems in the plugin's option table are logged as errors).
 */
int plugin_open(const char *path, const char *name, struct plugin **ret, char *why,
		size_t why_size);
void plugin_close(struct plugin *p);

/* Plugins by name, loaded on first use from one directory. */
struct plugin_registry;

struct plugin_registry *plugin_registry_new(const char *dir);
void plugin_registry_free(struct plugin_registry *reg);

/* The plugin named name (loaded now if needed); -ENOENT etc. with why on failure. */
int plugin_registry_get(struct plugin_registry *reg, const char *name, const struct plugin **ret,
			char *why, size_t why_size);

/* True for a valid plugin name: 1..64 of [a-z0-9_]. */
bool plugin_name_is_valid(const char *name);

#endif
