// SPDX-License-Identifier: MIT
/*
 * abi_newer_minor: built for a newer minor ABI than the daemon's; it may call host
 * functions the daemon lacks, so the daemon must refuse it.
 * The ABI members are filled by hand instead of CG_PLUGIN_HEADER; the loader must
 * refuse the plugin before it reads anything past them.
 */
#include <coapgate/plugin.h>

static int abi_newer_minor_run(struct cg_instance *inst, void *state)
{
	return 0;
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	.abi_major = CG_ABI_MAJOR,
	.abi_minor = CG_ABI_MINOR + 1,
	.size = sizeof(struct cg_plugin),
	.name = "abi_newer_minor",
	.version = "1.0",
	.description = "ABI test: must be refused.",
	.run = abi_newer_minor_run,
};
