// SPDX-License-Identifier: MIT
/*
 * abi_wrong_major: built for the next major ABI, which the daemon must refuse.
 * The ABI members are filled by hand instead of CG_PLUGIN_HEADER; the loader must
 * refuse the plugin before it reads anything past them.
 */
#include <coapgate/plugin.h>

static int abi_wrong_major_run(struct cg_instance *inst, void *state)
{
	return 0;
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	.abi_major = CG_ABI_MAJOR + 1,
	.abi_minor = CG_ABI_MINOR,
	.size = sizeof(struct cg_plugin),
	.name = "abi_wrong_major",
	.version = "1.0",
	.description = "ABI test: must be refused.",
	.run = abi_wrong_major_run,
};
