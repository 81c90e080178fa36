/* SPDX-License-Identifier: MIT */
/*
 * Logging for the daemon and, through cg_log_full(), for plugins. Messages go to the
 * journal's native protocol (with PRIORITY, CODE_FILE/LINE/FUNC,
 * SYSLOG_IDENTIFIER=coapgated and, for input instances, COAPGATE_INPUT) when the
 * daemon runs under journald, and otherwise to stderr as one line each.
 *
 * Not here: rate limiting (the caller, see ratelimit.h and input.c), log files.
 */
#ifndef COAPGATE_LOG_H
#define COAPGATE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

enum log_target {
	LOG_TARGET_AUTO,    /* journal when stderr is connected to it (JOURNAL_STREAM) */
	LOG_TARGET_JOURNAL, /* always the journal's native socket */
	LOG_TARGET_STDERR,  /* always one line per message on stderr */
};

/* Choose where messages go. Safe to call again (after the config is read). */
void log_setup(enum log_target target);

/* Messages above level (LOG_ERR..LOG_DEBUG) are dropped. */
void log_set_max_level(int level);
int log_get_max_level(void);

/* True when messages currently go to the journal rather than stderr. */
bool log_to_journal(void);

/*
 * Emit one message. input is the input instance's name or NULL; extra_fields is NULL
 * or a NULL-terminated array of "FIELD=value" journal fields. When error is non-zero,
 * errno is set to its absolute value for "%m". Returns -abs(error), or 0.
 */
int log_internalv(int level, int error, const char *file, int line, const char *func,
		  const char *input, const char *const *extra_fields, const char *format,
		  va_list ap) __attribute__((format(printf, 8, 0)));
int log_internal(int level, int error, const char *file, int line, const char *func,
		 const char *input, const char *format, ...) __attribute__((format(printf, 7, 8)));

#define log_full_errno(level, error, ...) \
	log_internal((level), (error), __FILE__, __LINE__, __func__, NULL, __VA_ARGS__)

#define log_error(...)	 log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_notice(...)	 log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_info(...)	 log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...)	 log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)

#define log_error_errno(error, ...)   log_full_errno(LOG_ERR, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_notice_errno(error, ...)  log_full_errno(LOG_NOTICE, (error), __VA_ARGS__)
#define log_info_errno(error, ...)    log_full_errno(LOG_INFO, (error), __VA_ARGS__)
#define log_debug_errno(error, ...)   log_full_errno(LOG_DEBUG, (error), __VA_ARGS__)

/* Messages about one input instance, from the daemon itself (not rate-limited). */
#define log_input(level, error, input, ...) \
	log_internal((level), (error), __FILE__, __LINE__, __func__, (input), __VA_ARGS__)

/* "error", "warning", ... for a level; parse_log_level() is its inverse (-EINVAL). */
const char *log_level_to_string(int level);
int log_level_from_string(const char *s);

#endif
