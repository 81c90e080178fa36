// SPDX-License-Identifier: MIT
/*
 * abi_missing_host_symbol: a plugin that calls a host function the daemon does not
 * have, as one built against a future header would. dlopen() with RTLD_NOW must fail
 * and name the symbol, rather than the plugin crashing when run() reaches the call.
 */
#include <coapgate/plugin.h>

/* Not part of the host API: nothing defines it. */
int cg_does_not_exist(struct cg_instance *inst);

static int abi_missing_host_symbol_run(struct cg_instance *inst, void *state)
{
	return cg_does_not_exist(inst);
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,
	.name = "abi_missing_host_symbol",
	.version = "1.0",
	.description = "ABI test: needs a host function the daemon lacks.",
	.run = abi_missing_host_symbol_run,
};
