/*
 * log.h: one-line diagnostics on stderr.
 *
 * Every line is "tool: level: [line N: ][alert ID: ]message", or one JSON
 * object per line with --log-format json.  A struct log belongs to main();
 * lib/ modules never print on their own.  Lines can also be formatted into a
 * buffer (log_fmt) so worker threads can hand them to the writer in input
 * order.
 */
#ifndef SOAR_LOG_H
#define SOAR_LOG_H

#include <stddef.h>

#include "buf.h"

enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
	LOG_TRACE,
};

struct log {
	const char *tool; /* program name, borrowed */
	int level;        /* highest level printed */
	int json;         /* --log-format json */
	int fd;           /* normally 2 */
};

/* Sets up lg for tool with the default level (warnings and errors). */
void log_init(struct log *lg, const char *tool);

/* Returns 1 when a message of this level would be printed; 0 when lg is
 * NULL, so lib/ callers may log through an optional logger. */
int log_enabled(const struct log *lg, enum log_level level);

/* Appends one formatted log line (with its newline) to out.  lineno 0 and
 * alert_id NULL leave those parts out.  Returns 0, or -1 on ENOMEM. */
int log_fmt(const struct log *lg, struct buf *out, enum log_level level,
            size_t lineno, const char *alert_id, const char *fmt, ...)
        __attribute__((format(printf, 6, 7)));

/* Writes one log line to lg->fd when the level is enabled. */
void log_msg(const struct log *lg, enum log_level level, size_t lineno,
             const char *alert_id, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

#define log_error(lg, ...) log_msg((lg), LOG_ERROR, 0, NULL, __VA_ARGS__)
#define log_warn(lg, ...)  log_msg((lg), LOG_WARN, 0, NULL, __VA_ARGS__)
#define log_info(lg, ...)  log_msg((lg), LOG_INFO, 0, NULL, __VA_ARGS__)
#define log_debug(lg, ...) log_msg((lg), LOG_DEBUG, 0, NULL, __VA_ARGS__)

/* Writes the whole buffer to lg->fd, ignoring errors (stderr is our last
 * resort).  Used for lines formatted with log_fmt. */
void log_flush_buf(const struct log *lg, const struct buf *b);

#endif
