// SPDX-License-Identifier: MIT
/*
 * abi_too_big: a descriptor larger than the daemon's struct cg_plugin with the same ABI
 * numbers, as if built with a header that grew the struct without bumping the minor.
 * The object really is that large (the extra members follow the struct), so a loader
 * that copied `size` bytes would not even read out of bounds; it must refuse anyway.
 * The ABI members are filled by hand instead of CG_PLUGIN_HEADER.
 */
#include <coapgate/plugin.h>

struct grown_plugin {
	struct cg_plugin base;
	void *future[2];
};

static int abi_too_big_run(struct cg_instance *inst, void *state)
{
	return 0;
}

CG_EXPORT const struct grown_plugin CG_PLUGIN_SYMBOL = {
	.base = {
		.abi_major = CG_ABI_MAJOR,
		.abi_minor = CG_ABI_MINOR,
		.size = sizeof(struct grown_plugin),
		.name = "abi_too_big",
		.version = "1.0",
		.description = "ABI test: must be refused.",
		.run = abi_too_big_run,
	},
};
