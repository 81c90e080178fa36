// SPDX-License-Identifier: MIT
/*
 * abi_wrong_name: a valid descriptor whose name is not its file name, as after copying
 * a plugin's folder and renaming only the file. The loader must refuse it (-EINVAL), so
 * that logs and `--help-plugin` never show one plugin under two names.
 */
#include <coapgate/plugin.h>

static int abi_wrong_name_run(struct cg_instance *inst, void *state)
{
	return 0;
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,
	.name = "sysinfo",
	.version = "1.0",
	.description = "ABI test: calls itself by another plugin's name.",
	.run = abi_wrong_name_run,
};
