// SPDX-License-Identifier: MIT
/*
 * Plugin loading and the ABI check; see plugin.h. The check reads only the first three
 * members before deciding whether the rest of the descriptor may be trusted, the way
 * nginx refuses a module built for another version before touching it.
 */
#include "plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "options.h"
#include "util.h"

#define STRINGIFY2(x) #x
#define STRINGIFY(x)  STRINGIFY2(x)

/* The descriptor of ABI 1.0 ends with destroy; no plugin may be smaller. */
#define DESCRIPTOR_MIN_SIZE (offsetof(struct cg_plugin, destroy) + sizeof(void (*)(void *)))

bool plugin_name_is_valid(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= 64 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

int plugin_check_descriptor(const struct cg_plugin *desc, const char *path, const char *name,
			    char *why, size_t why_size)
{
	if (desc->abi_major != CG_ABI_MAJOR) {
		snprintf(why, why_size,
			 "%s: plugin ABI %u.%u, daemon ABI %u.%u: the major versions differ, "
			 "rebuild the plugin against this coapgate",
			 path, desc->abi_major, desc->abi_minor, CG_ABI_MAJOR, CG_ABI_MINOR);
		return -EPROTO;
	}
	if (desc->abi_minor > CG_ABI_MINOR) {
		snprintf(why, why_size,
			 "%s: plugin ABI %u.%u is newer than the daemon's ABI %u.%u, "
			 "upgrade coapgate",
			 path, desc->abi_major, desc->abi_minor, CG_ABI_MAJOR, CG_ABI_MINOR);
		return -EPROTO;
	}
	if (desc->size < DESCRIPTOR_MIN_SIZE || desc->size > sizeof(struct cg_plugin)) {
		snprintf(why, why_size,
			 "%s: descriptor size %u does not fit ABI %u.%u (expected %zu to %zu "
			 "bytes), the plugin is corrupt or built with a wrong header",
			 path, desc->size, desc->abi_major, desc->abi_minor, DESCRIPTOR_MIN_SIZE,
			 sizeof(struct cg_plugin));
		return -EPROTO;
	}
	if (!desc->name || strcmp(desc->name, name) != 0) {
		snprintf(why, why_size, "%s: the plugin calls itself \"%s\", expected \"%s\"", path,
			 desc->name ? desc->name : "(null)", name);
		return -EINVAL;
	}
	if (!desc->run) {
		snprintf(why, why_size, "%s: the plugin has no run callback", path);
		return -EINVAL;
	}
	if (desc->options && desc->conf_size == 0) {
		snprintf(why, why_size, "%s: the plugin has options but a zero conf_size", path);
		return -EINVAL;
	}
	return 0;
}

int plugin_open(const char *path, const char *name, struct plugin **ret, char *why, size_t why_size)
{
	const struct cg_plugin *desc;
	struct plugin *p;
	void *handle;
	int r;

	if (access(path, R_OK) < 0) {
		r = -errno;
		snprintf(why, why_size, "%s: %s", path, strerror(-r));
		return r;
	}
	/* RTLD_NOW: a plugin calling a host function we lack fails here, not mid-run. */
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		snprintf(why, why_size, "%s", dlerror());
		return -ENOEXEC;
	}
	desc = dlsym(handle, STRINGIFY(CG_PLUGIN_SYMBOL));
	if (!desc) {
		snprintf(why, why_size, "%s: not a coapgate plugin, it exports no \"%s\"", path,
			 STRINGIFY(CG_PLUGIN_SYMBOL));
		dlclose(handle);
		return -ENOEXEC;
	}
	r = plugin_check_descriptor(desc, path, name, why, why_size);
	if (r < 0) {
		dlclose(handle);
		return r;
	}

	p = xcalloc(1, sizeof(*p));
	memcpy(&p->desc, desc, desc->size);
	p->name = xstrdup(name);
	p->path = xstrdup(path);
	p->handle = handle;
	if (options_check_table(p->desc.options, p->desc.conf_size, path) < 0) {
		snprintf(why, why_size, "%s: the plugin's option table is invalid", path);
		plugin_close(p);
		return -EINVAL;
	}
	log_debug("loaded plugin \"%s\" %s from %s (ABI %u.%u)", name,
		  p->desc.version ? p->desc.version : "", path, desc->abi_major, desc->abi_minor);
	*ret = p;
	return 0;
}

void plugin_close(struct plugin *p)
{
	if (!p)
		return;
	if (p->handle)
		dlclose(p->handle);
	free(p->name);
	free(p->path);
	free(p);
}

struct plugin_registry {
	char *dir;
	struct plugin **plugins;
	size_t n_plugins;
};

struct plugin_registry *plugin_registry_new(const char *dir)
{
	struct plugin_registry *reg = xcalloc(1, sizeof(*reg));

	reg->dir = xstrdup(dir);
	return reg;
}

void plugin_registry_free(struct plugin_registry *reg)
{
	if (!reg)
		return;
	for (size_t i = 0; i < reg->n_plugins; i++)
		plugin_close(reg->plugins[i]);
	free(reg->plugins);
	free(reg->dir);
	free(reg);
}

int plugin_registry_get(struct plugin_registry *reg, const char *name, const struct plugin **ret,
			char *why, size_t why_size)
{
	struct plugin *p;
	char *path;
	int r;

	for (size_t i = 0; i < reg->n_plugins; i++)
		if (strcmp(reg->plugins[i]->name, name) == 0) {
			*ret = reg->plugins[i];
			return 0;
		}
	if (!plugin_name_is_valid(name)) {
		snprintf(why, why_size, "\"%s\" is not a plugin name (1 to 64 of a-z, 0-9, _)",
			 name);
		return -EINVAL;
	}
	path = xasprintf("%s/%s.so", reg->dir, name);
	r = plugin_open(path, name, &p, why, why_size);
	free(path);
	if (r < 0)
		return r;
	reg->plugins = xrealloc(reg->plugins, (reg->n_plugins + 1) * sizeof(*reg->plugins));
	reg->plugins[reg->n_plugins++] = p;
	*ret = p;
	return 0;
}
