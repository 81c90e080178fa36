// SPDX-License-Identifier: MIT
/*
 * Logging; see log.h. Journal entries are written with sd_journal_sendv() so that a
 * variable number of fields (COAPGATE_INPUT, later MESSAGE_ID, COAP_CODE...) costs no
 * format-string juggling.
 */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "util.h"

#define LOG_LINE_MAX	     2048
#define JOURNAL_SOCKET	     "/run/systemd/journal/socket"
#define LOG_EXTRA_FIELDS_MAX 8

static atomic_int max_level = LOG_INFO;
static atomic_bool use_journal;
/* stderr is a journal stream: prefix lines with "<N>" so journald keeps the level. */
static atomic_bool stderr_is_journal_stream;

static const char *const level_names[] = {
	[LOG_EMERG] = "emergency", [LOG_ALERT] = "alert",     [LOG_CRIT] = "critical",
	[LOG_ERR] = "error",	   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",	   [LOG_DEBUG] = "debug",
};

const char *log_level_to_string(int level)
{
	if (level < 0 || level > LOG_DEBUG)
		return "unknown";
	return level_names[level];
}

int log_level_from_string(const char *s)
{
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -EINVAL;
}

static void write_stderr(int level, const char *input, const char *message);

/* systemd's recommended check: JOURNAL_STREAM names the device and inode of stderr. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(enum log_target target)
{
	bool journal_stream = stderr_is_journal();

	stderr_is_journal_stream = journal_stream;
	switch (target) {
	case LOG_TARGET_JOURNAL:
		/* sd_journal_sendv() silently succeeds when there is no journal at all:
		 * check for its socket, or every message would vanish. */
		use_journal = access(JOURNAL_SOCKET, W_OK) == 0;
		if (!use_journal)
			write_stderr(LOG_WARNING, NULL,
				     "log_target is \"journal\" but " JOURNAL_SOCKET
				     " is missing, logging to stderr");
		break;
	case LOG_TARGET_STDERR:
		use_journal = false;
		break;
	case LOG_TARGET_AUTO:
	default:
		use_journal = journal_stream;
		break;
	}
}

void log_set_max_level(int level)
{
	max_level = level;
}

int log_get_max_level(void)
{
	return max_level;
}

bool log_to_journal(void)
{
	return use_journal;
}

static void write_journal(int level, const char *file, int line, const char *func,
			  const char *input, const char *const *extra_fields, const char *message)
{
	char priority[16], code_line[32];
	char *message_field, *code_file, *code_func, *input_field = NULL;
	struct iovec iov[6 + LOG_EXTRA_FIELDS_MAX];
	size_t n = 0;

	message_field = xasprintf("MESSAGE=%s%s%s", input ? input : "", input ? ": " : "", message);
	snprintf(priority, sizeof(priority), "PRIORITY=%d", level);
	snprintf(code_line, sizeof(code_line), "CODE_LINE=%d", line);
	code_file = xasprintf("CODE_FILE=%s", file);
	code_func = xasprintf("CODE_FUNC=%s", func);

#define ADD(s) iov[n++] = (struct iovec){ .iov_base = (void *)(s), .iov_len = strlen(s) }
	ADD(message_field);
	ADD(priority);
	ADD("SYSLOG_IDENTIFIER=coapgated");
	ADD(code_file);
	ADD(code_line);
	ADD(code_func);
	if (input) {
		input_field = xasprintf("COAPGATE_INPUT=%s", input);
		ADD(input_field);
	}
	for (size_t i = 0; extra_fields && extra_fields[i] && i < LOG_EXTRA_FIELDS_MAX - 1; i++)
		ADD(extra_fields[i]);
#undef ADD

	/* If the journal is gone there is nobody to tell; fall back to stderr once. */
	if (sd_journal_sendv(iov, (int)n) < 0)
		fprintf(stderr, "%s: %s\n", log_level_to_string(level), message_field + 8);
	free(message_field);
	free(code_file);
	free(code_func);
	free(input_field);
}

static void write_stderr(int level, const char *input, const char *message)
{
	char line[LOG_LINE_MAX + 128];

	/* One write() per message so that lines from several threads never interleave. */
	if (stderr_is_journal_stream)
		snprintf(line, sizeof(line), "<%d>%s%s%s\n", level, input ? input : "",
			 input ? ": " : "", message);
	else
		snprintf(line, sizeof(line), "%s: %s%s%s\n", log_level_to_string(level),
			 input ? input : "", input ? ": " : "", message);
	if (write(STDERR_FILENO, line, strlen(line)) < 0) {
		/* Nothing sensible to do when stderr is gone. */
	}
}

int log_internalv(int level, int error, const char *file, int line, const char *func,
		  const char *input, const char *const *extra_fields, const char *format,
		  va_list ap)
{
	char message[LOG_LINE_MAX];
	int saved_errno = errno;

	if (error < 0)
		error = -error;
	if (level > max_level)
		goto out;

	errno = error; /* for %m */
	vsnprintf(message, sizeof(message), format, ap);

	if (use_journal)
		write_journal(level, file, line, func, input, extra_fields, message);
	else
		write_stderr(level, input, message);
out:
	errno = saved_errno;
	return -error;
}

int log_internal(int level, int error, const char *file, int line, const char *func,
		 const char *input, const char *format, ...)
{
	va_list ap;
	int r;

	va_start(ap, format);
	r = log_internalv(level, error, file, line, func, input, NULL, format, ap);
	va_end(ap);
	return r;
}
