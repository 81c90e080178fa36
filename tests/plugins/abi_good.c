// SPDX-License-Identifier: MIT
/*
 * abi_good: the control of the ABI tests, a valid plugin that must load. Its run()
 * calls every host function of plugin.h once, so that loading it with RTLD_NOW also
 * proves the daemon (or the test binary) exports the whole host API.
 */
#include <coapgate/plugin.h>

#include <poll.h>

static int abi_good_run(struct cg_instance *inst, void *state)
{
	const struct cg_field field = { "ok", CG_FIELD_BOOL, { .b = true } };
	const struct cg_reading reading = { .timestamp_ms = cg_time_ms(),
					    .fields = &field,
					    .n_fields = 1 };
	struct pollfd pfd = { .fd = cg_stop_fd(inst), .events = POLLIN };
	uint64_t token;

	/* Never true: the call is here so that cg_conf_error() must resolve too. */
	if (!cg_instance_name(inst))
		return cg_conf_error(inst, state, "the instance has no name");
	cg_log_info(inst, "running as \"%s\" on topic \"%s\"", cg_instance_name(inst),
		    cg_instance_topic(inst));
	(void)cg_emit(inst, &reading);
	if (cg_emit_tracked(inst, &reading, &token) == 0)
		(void)cg_wait_durable(inst, token, 1000000);
	while (!cg_should_stop(inst)) {
		(void)poll(&pfd, 1, 1000);
		(void)cg_sleep(inst, 0);
	}
	return 0;
}

CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,
	.name = "abi_good",
	.version = "1.0",
	.description = "ABI test: a valid plugin that uses every host function.",
	.run = abi_good_run,
};
