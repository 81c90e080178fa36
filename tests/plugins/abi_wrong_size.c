// SPDX-License-Identifier: MIT
/*
 * abi_wrong_size: a descriptor whose size is smaller than ABI 1.0's, as a corrupt or
 * hand-made plugin would have.
 * The ABI members are filled by hand instead of CG_PLUGIN_HEADER; the loader must
 * refuse the plugin before it reads anything past them.
 */
#include <coapgate/plugin.h>

static int abi_wrong_size_run(struct cg_instance *inst, void *state)
{
	return 0;
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	.abi_major = CG_ABI_MAJOR,
	.abi_minor = CG_ABI_MINOR,
	.size = 8,
	.name = "abi_wrong_size",
	.version = "1.0",
	.description = "ABI test: must be refused.",
	.run = abi_wrong_size_run,
};
