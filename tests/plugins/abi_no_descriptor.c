// SPDX-License-Identifier: MIT
/*
 * abi_no_descriptor: the commonest mistake, a descriptor without CG_EXPORT. Plugins are
 * built with hidden visibility, so the symbol exists in the object but is not
 * exported, and the loader must say the file is not a coapgate plugin.
 */
#include <coapgate/plugin.h>

static int abi_no_descriptor_run(struct cg_instance *inst, void *state)
{
	return 0;
}

const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,
	.name = "abi_no_descriptor",
	.version = "1.0",
	.description = "ABI test: exports no descriptor.",
	.run = abi_no_descriptor_run,
};
