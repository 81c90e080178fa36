// SPDX-License-Identifier: MIT
/*
 * sysinfo: the gateway's own health as readings, every `interval`: load averages,
 * memory available, uptime and the free space where the queue lives.
 *
 * This plugin is also the template for writing your own. Copy this folder, rename the
 * plugin, and follow the numbered steps. Everything a plugin may use is in
 * <coapgate/plugin.h>; read its comments once.
 */

/* 1. Include the one public header, and whatever libc you need. */
#include <coapgate/plugin.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

/*
 * 2. The conf struct: one member per option. The daemon fills it from the instance's
 *    group in the configuration before init() and keeps it read-only until destroy().
 *    Member types follow the option types (see "Where each option type is stored" in
 *    plugin.h): durations are microseconds, strings are const char *.
 */
struct sysinfo_conf {
	uint64_t interval_usec;
	const char *disk_path;
};

/*
 * 3. The option table: key, type, where it goes, default (written as in the config
 *    file), range, help. The daemon rejects unknown keys and out-of-range values with
 *    FILE:LINE, and `coapgated --help-plugin sysinfo` prints this table, so the help
 *    text is the documentation. Integers, sizes, enums, booleans, string arrays and
 *    lists of groups are declared the same way.
 */
static const struct cg_option sysinfo_options[] = {
	{
	    .key = "interval",
	    .type = CG_OPT_DURATION,
	    .offset = offsetof(struct sysinfo_conf, interval_usec),
	    .default_value = "60s",
	    .min = 100000,	  /* 100 ms */
	    .max = 86400000000LL, /* 1 day */
	    .help = "How often to take a reading.",
	},
	{
	    .key = "disk_path",
	    .type = CG_OPT_STRING,
	    .offset = offsetof(struct sysinfo_conf, disk_path),
	    .default_value = "/var/lib/coapgate",
	    .help = "Report the free space of the file system holding this path; \"\" for none.",
	},
	{ 0 },
};

/* 4. Per-instance state: whatever run() needs. Here only the conf. */
struct sysinfo {
	const struct sysinfo_conf *conf;
};

/*
 * 5. init(): check what the option table cannot express, allocate, and do no I/O that
 *    depends on devices being present: `coapgated -t` calls init() to validate a
 *    configuration. Report a bad value with cg_conf_error(), giving the address of the
 *    conf member: the daemon prints the FILE:LINE where the user wrote it. Log
 *    anything else through cg_log_*(), which names the instance for you.
 */
static int sysinfo_init(struct cg_instance *inst, const void *conf, void **ret_state)
{
	const struct sysinfo_conf *c = conf;
	struct sysinfo *s;

	if (c->disk_path[0] != '\0' && c->disk_path[0] != '/')
		return cg_conf_error(inst, &c->disk_path,
				     "disk_path \"%s\" must be an absolute path", c->disk_path);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->conf = c;
	*ret_state = s;
	return 0;
}

/* Reads one "Key: <number> kB" line of /proc/meminfo. */
static int read_meminfo(const char *key, int64_t *ret_bytes)
{
	char line[256];
	size_t key_len = strlen(key);
	int r = -ENOENT;
	FILE *f;

	f = fopen("/proc/meminfo", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		long long kib;

		if (strncmp(line, key, key_len) == 0 && line[key_len] == ':' &&
		    sscanf(line + key_len + 1, "%lld", &kib) == 1) {
			*ret_bytes = kib * 1024;
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

static int read_uptime(double *ret_seconds)
{
	FILE *f = fopen("/proc/uptime", "re");
	int n;

	if (!f)
		return -errno;
	n = fscanf(f, "%lf", ret_seconds);
	fclose(f);
	return n == 1 ? 0 : -EIO;
}

/*
 * 6. Take one sample and hand it over with cg_emit(). A reading is a timestamp (0:
 *    the daemon uses "now"), a topic (NULL: the instance's topic) and 1..64 named,
 *    typed fields. cg_emit() copies everything, so stack memory is fine.
 */
static int sysinfo_sample(struct cg_instance *inst, struct sysinfo *s)
{
	struct cg_field fields[6];
	struct cg_reading reading = { .fields = fields };
	double load[3], uptime;
	int64_t mem_available = 0;
	struct statvfs vfs;
	size_t n = 0;
	int r;

	/* Failing to read /proc is not normal: return the error, the daemon retries. */
	if (getloadavg(load, 3) != 3)
		return cg_log_error_errno(inst, -EIO, "cannot read the load averages: %m");
	r = read_meminfo("MemAvailable", &mem_available);
	if (r < 0)
		return cg_log_error_errno(inst, r,
					  "cannot read MemAvailable from /proc/meminfo: %m");
	r = read_uptime(&uptime);
	if (r < 0)
		return cg_log_error_errno(inst, r, "cannot read /proc/uptime: %m");

	fields[n++] = (struct cg_field){ "load1", CG_FIELD_F64, { .f64 = load[0] } };
	fields[n++] = (struct cg_field){ "load5", CG_FIELD_F64, { .f64 = load[1] } };
	fields[n++] = (struct cg_field){ "load15", CG_FIELD_F64, { .f64 = load[2] } };
	fields[n++] = (struct cg_field){ "mem_available", CG_FIELD_I64, { .i64 = mem_available } };
	fields[n++] = (struct cg_field){ "uptime", CG_FIELD_F64, { .f64 = uptime } };

	/* A missing path is a problem of the site, not of the plugin: warn (the daemon
	 * rate-limits it) and send the other fields. */
	if (s->conf->disk_path[0]) {
		if (statvfs(s->conf->disk_path, &vfs) == 0) {
			int64_t free_bytes = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;

			fields[n++] =
			    (struct cg_field){ "disk_free", CG_FIELD_I64, { .i64 = free_bytes } };
		} else {
			cg_log_warning_errno(inst, -errno, "cannot stat \"%s\": %m",
					     s->conf->disk_path);
		}
	}
	reading.n_fields = n;

	/* cg_emit() fails only for a reading that breaks the rules (a bug here) or one
	 * the daemon cannot take now (its queue is full); it has logged and counted
	 * either, and neither is cured by restarting this plugin. */
	(void)cg_emit(inst, &reading);
	return 0;
}

/*
 * 7. run(): the instance's own thread. Loop until cg_should_stop(); wait with
 *    cg_sleep() (or poll() on cg_stop_fd() next to your own descriptors) so that a stop
 *    request wakes you at once. Return 0 when asked to stop, a negative errno on
 *    failure: the daemon logs it and calls run() again after a backoff (1 s doubling to
 *    5 min), so do not write your own reconnect loop for a vanished device.
 */
static uint64_t monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int sysinfo_run(struct cg_instance *inst, void *state)
{
	struct sysinfo *s = state;
	uint64_t interval = s->conf->interval_usec;
	uint64_t next = monotonic_usec();

	while (!cg_should_stop(inst)) {
		uint64_t now;
		int r;

		r = sysinfo_sample(inst, s);
		if (r < 0)
			return r;

		/* Schedule from the previous deadline, not from now, so samples do not drift;
		 * the monotonic clock keeps wall-clock jumps out of it. */
		now = monotonic_usec();
		next += interval;
		if (next <= now)
			next = now + interval;
		cg_sleep(inst, next - now);
	}
	return 0;
}

/* 8. destroy(): free the state. Called once, after the last run() returned. */
static void sysinfo_destroy(void *state)
{
	free(state);
}

/*
 * 9. The descriptor: the one symbol the plugin exports. CG_PLUGIN_HEADER fills in the
 *    ABI version and size the daemon checks first; name must equal the file name
 *    (sysinfo.so).
 */
CG_EXPORT const struct cg_plugin CG_PLUGIN_SYMBOL = {
	CG_PLUGIN_HEADER,
	.name = "sysinfo",
	.version = "1.0",
	.description = "The gateway's health: load, memory, uptime and free disk space.",
	.options = sysinfo_options,
	.conf_size = sizeof(struct sysinfo_conf),
	.init = sysinfo_init,
	.run = sysinfo_run,
	.destroy = sysinfo_destroy,
};
