/* SPDX-License-Identifier: MIT */
/*
 * coapgate input plugin interface.
 *
 * This is the only header an input plugin includes. A plugin is a shared object that
 * exports one symbol, CG_PLUGIN_SYMBOL, a const struct cg_plugin. The daemon checks the
 * descriptor's ABI numbers and size before it reads anything else, parses the
 * instance's configuration against the plugin's option table, and then drives the
 * plugin through init -> run (in the instance's own thread) -> destroy.
 *
 * Everything the plugin may call in the daemon is declared at the end of this file
 * (the cg_* host functions); nothing else of the daemon is visible to plugins.
 *
 * ABI history: 1.0 first release; 1.1 adds cg_emit_tracked() and cg_wait_durable();
 * 1.2 adds cg_conf_error().
 *
 * ABI rules: within one major version, structs only grow at the end and enums only
 * gain values. A plugin built against a newer minor version than the daemon's is
 * refused, because it may call host functions the daemon does not have.
 *
 * Plain C99 on purpose: plugins may be built with any C compiler and standard.
 * All callbacks return 0 (or a count) on success and a negative errno on failure.
 */
#ifndef COAPGATE_PLUGIN_H
#define COAPGATE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CG_ABI_MAJOR 1
#define CG_ABI_MINOR 2

/* The name of the one symbol a plugin exports. */
#define CG_PLUGIN_SYMBOL cg_plugin_descriptor

#if defined(__GNUC__)
#define CG_EXPORT	     __attribute__((visibility("default")))
#define CG_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CG_EXPORT
#define CG_PRINTF(fmt, args)
#endif

/* Limits the daemon enforces on every reading (cg_emit() refuses larger ones). */
#define CG_FIELDS_MAX	  64  /* fields per reading */
#define CG_FIELD_NAME_MAX 64  /* bytes of a field name, [A-Za-z0-9_.-] */
#define CG_STRING_MAX	  512 /* bytes of a string field value, valid UTF-8 */
#define CG_TOPIC_MAX	  253 /* bytes of a topic, 1NCE OS rules: [A-Za-z0-9_/], no "//" */

/* ---------------------------------------------------------------------------------- */
/* Readings                                                                             */
/* ---------------------------------------------------------------------------------- */

enum cg_field_type {
	CG_FIELD_F64 = 1,
	CG_FIELD_I64 = 2,
	CG_FIELD_BOOL = 3,
	CG_FIELD_STRING = 4,
};

/* One named value. The daemon copies name and string; the plugin keeps its memory. */
struct cg_field {
	const char *name;
	enum cg_field_type type;
	union {
		double f64;
		int64_t i64;
		bool b;
		const char *str; /* NUL-terminated UTF-8 */
	} value;
};

/*
 * One sample from one source. timestamp_ms is milliseconds since the Unix epoch; 0
 * means "now" and the daemon fills it in. topic NULL means the instance's topic.
 */
struct cg_reading {
	int64_t timestamp_ms;
	const char *topic;
	const struct cg_field *fields;
	size_t n_fields;
};

/* ---------------------------------------------------------------------------------- */
/* Options: the plugin declares its configuration, the daemon parses it                 */
/* ---------------------------------------------------------------------------------- */

/*
 * Where each option type is stored in the plugin's conf struct (at .offset):
 *   CG_OPT_BOOL      bool
 *   CG_OPT_INT       int64_t, checked against [min, max] when min < max
 *   CG_OPT_FLOAT     double
 *   CG_OPT_DURATION  uint64_t microseconds; written "500ms", "10s", "1h 30min"
 *   CG_OPT_SIZE      uint64_t bytes; written 4096, "64K", "16M", "1G" (powers of 1024)
 *   CG_OPT_STRING    const char * (NULL when unset and no default)
 *   CG_OPT_ENUM      int, the index of the chosen word in .choices
 *   CG_OPT_STRINGS   struct cg_strings, from a libconfig array ["a", "b"]
 *   CG_OPT_LIST      struct cg_list of .elem_size structs, from a list of groups
 *                    ( { ... }, { ... } ), each parsed against .sub
 *   CG_OPT_GROUP     a nested group { ... } parsed against .sub; offsets in .sub are
 *                    relative to this option's offset
 * Durations and sizes are range-checked like integers (microseconds, bytes).
 * The daemon owns all memory it stores in the conf struct; it is read-only to the
 * plugin and lives until destroy() has returned.
 */
enum cg_option_type {
	CG_OPT_BOOL = 1,
	CG_OPT_INT,
	CG_OPT_FLOAT,
	CG_OPT_DURATION,
	CG_OPT_SIZE,
	CG_OPT_STRING,
	CG_OPT_ENUM,
	CG_OPT_STRINGS,
	CG_OPT_LIST,
	CG_OPT_GROUP,
};

/* The option must be set in the configuration (it has no default). */
#define CG_OPT_REQUIRED (1u << 0)

struct cg_strings {
	const char *const *items;
	size_t count;
};

struct cg_list {
	const void *items; /* count structs of the option's elem_size */
	size_t count;
};

struct cg_option {
	const char *key;
	enum cg_option_type type;
	size_t offset;		     /* offsetof(struct my_conf, member) */
	const char *default_value;   /* written as in the config file; NULL: none */
	int64_t min, max;	     /* INT, DURATION (us), SIZE (bytes) when min < max */
	const char *const *choices;  /* ENUM: NULL-terminated words */
	const struct cg_option *sub; /* LIST, GROUP: NULL-key-terminated table */
	size_t elem_size;	     /* LIST: sizeof one element struct */
	const char *help;	     /* one sentence, shown by --help-plugin */
	uint32_t flags;		     /* CG_OPT_* flags */
};

/* ---------------------------------------------------------------------------------- */
/* The descriptor                                                                       */
/* ---------------------------------------------------------------------------------- */

/* An input instance, opaque: the daemon's handle passed to every callback. */
struct cg_instance;

struct cg_plugin {
	/* These three are checked before anything else is read. Never move them. */
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t size; /* sizeof(struct cg_plugin) as the plugin was built */

	const char *name;	 /* equals the file name without ".so": [a-z0-9_]+ */
	const char *version;	 /* the plugin's own version, for logs */
	const char *description; /* one line */

	const struct cg_option *options; /* NULL-key-terminated; may be NULL */
	size_t conf_size;		 /* sizeof the conf struct the options fill */

	/*
	 * Validate the parsed conf and allocate. No I/O that can block or fail because a
	 * device is absent: that belongs in run(), which the daemon retries. conf stays
	 * valid until destroy(). *ret_state is passed to run() and destroy().
	 */
	int (*init)(struct cg_instance *inst, const void *conf, void **ret_state);

	/*
	 * Produce readings until cg_should_stop() is true, then return 0. Runs in the
	 * instance's own thread; blocking I/O is allowed if it also waits on
	 * cg_stop_fd(). A negative errno makes the daemon log it and call run() again
	 * after a backoff (1 s doubling to 5 min). run() releases what it acquired.
	 */
	int (*run)(struct cg_instance *inst, void *state);

	/* Free state. Called once, after the last run() has returned. May be NULL. */
	void (*destroy)(void *state);
};

/* Fills the three ABI members; put it first in the descriptor's initializer. */
#define CG_PLUGIN_HEADER \
	.abi_major = CG_ABI_MAJOR, .abi_minor = CG_ABI_MINOR, .size = sizeof(struct cg_plugin)

/* ---------------------------------------------------------------------------------- */
/* Host API: what the daemon offers to plugins                                          */
/* ---------------------------------------------------------------------------------- */

/*
 * Hand one reading to the daemon. Everything is copied before it returns. Returns 0,
 * -EINVAL for a reading that breaks the rules above (logged, rate-limited), or another
 * negative errno when the daemon could not take it:
 *   -ENOSPC  the queue is full and its policy (when_full) dropped the reading;
 *   -EAGAIN  the queue is full, its policy is `block`, and the call waited the
 *            queue's block_timeout in vain: the reading was not taken. A plugin that
 *            can hold its source back (stop reading a socket, stop polling) keeps the
 *            reading and offers it again; any other drops it.
 * Thread-safe. With `block` it may wait up to block_timeout.
 */
int cg_emit(struct cg_instance *inst, const struct cg_reading *reading);

/*
 * Like cg_emit(), and *ret_token identifies the reading for cg_wait_durable(): for a
 * producer that must know its readings will survive a power cut before it tells its
 * own source so (the Unix-socket input's ack mode). Tokens increase with every
 * reading of the daemon. Since ABI 1.1.
 */
int cg_emit_tracked(struct cg_instance *inst, const struct cg_reading *reading,
		    uint64_t *ret_token);

/*
 * Wait until the reading of token, and every reading emitted before it, is durable
 * (on disk and flushed). Returns 0, -ETIMEDOUT after timeout_usec, -ECANCELED when
 * the instance is asked to stop, or -ENOSPC when a reading of this daemon emitted
 * since the instance's previous answer of 0 or -ENOSPC (up to token) could not be
 * written and is lost: the daemon's disk filled up under it. Each loss is reported
 * once, and it may have hit another input's readings: treat everything not yet
 * confirmed as not durable. In `coapgated --test` a printed reading counts as
 * durable. Since ABI 1.1.
 */
int cg_wait_durable(struct cg_instance *inst, uint64_t token, uint64_t timeout_usec);

/* Log priorities, the syslog(3) numbers. */
#define CG_LOG_ERR     3
#define CG_LOG_WARNING 4
#define CG_LOG_NOTICE  5
#define CG_LOG_INFO    6
#define CG_LOG_DEBUG   7

/*
 * Log a message for this instance; use the cg_log*() macros below, which pass the
 * caller's source location. The daemon adds the instance name, sends the message to
 * the journal (with CODE_FILE/LINE/FUNC and COAPGATE_INPUT=<instance>) or to stderr,
 * and rate-limits it per instance. When error is non-zero, "%m" in format is
 * strerror(-error) and the function returns error as a negative errno; otherwise it
 * returns 0.
 */
int cg_log_full(struct cg_instance *inst, int priority, int error, const char *file, int line,
		const char *func, const char *format, ...) CG_PRINTF(7, 8);

/*
 * Report a mistake in the instance's configuration that the option table cannot
 * express (two points that overlap, a pattern that does not compile), at the line
 * where the user wrote it. where is the address of a member of the conf struct init()
 * was given, or of an element of one of its cg_lists, or of a member of such an
 * element; the innermost setting that filled those bytes gives the FILE:LINE, and a
 * value left at its default falls back to the enclosing element or the instance.
 * Logs "FILE:LINE: input "NAME": <message>" at error priority, never rate-limited:
 * call it from init(), once per mistake, then refuse with its return value, -EINVAL.
 * Since ABI 1.2.
 */
int cg_conf_error(struct cg_instance *inst, const void *where, const char *format, ...)
    CG_PRINTF(3, 4);

/* An eventfd that becomes readable when the daemon asks the instance to stop. Never
 * read or close it: poll() it next to the plugin's own descriptors. */
int cg_stop_fd(struct cg_instance *inst);

/* True once the daemon has asked the instance to stop. */
bool cg_should_stop(struct cg_instance *inst);

/* Sleep for usec microseconds, or less if the daemon asks the instance to stop.
 * Returns 0 after the full sleep, -ECANCELED when woken by a stop request. */
int cg_sleep(struct cg_instance *inst, uint64_t usec);

/* The instance's configured name and default topic; valid for the instance's life. */
const char *cg_instance_name(struct cg_instance *inst);
const char *cg_instance_topic(struct cg_instance *inst);

/* Wall-clock time in milliseconds since the Unix epoch, as used for timestamps. */
int64_t cg_time_ms(void);

#define cg_log(inst, priority, ...) \
	cg_log_full((inst), (priority), 0, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define cg_log_errno(inst, priority, error, ...) \
	cg_log_full((inst), (priority), (error), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define cg_log_error(inst, ...)	  cg_log((inst), CG_LOG_ERR, __VA_ARGS__)
#define cg_log_warning(inst, ...) cg_log((inst), CG_LOG_WARNING, __VA_ARGS__)
#define cg_log_notice(inst, ...)  cg_log((inst), CG_LOG_NOTICE, __VA_ARGS__)
#define cg_log_info(inst, ...)	  cg_log((inst), CG_LOG_INFO, __VA_ARGS__)
#define cg_log_debug(inst, ...)	  cg_log((inst), CG_LOG_DEBUG, __VA_ARGS__)
/* Log at error priority with ": %m" semantics and return error: return cg_log_error_errno(...) */
#define cg_log_error_errno(inst, error, ...) cg_log_errno((inst), CG_LOG_ERR, (error), __VA_ARGS__)
#define cg_log_warning_errno(inst, error, ...) \
	cg_log_errno((inst), CG_LOG_WARNING, (error), __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif
