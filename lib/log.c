/* log.c: one-line diagnostics on stderr, as text or JSON. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jv.h>

#include "log.h"

static const char *const level_names[] = {"error", "warning", "info", "debug",
                                          "trace"};

void
log_init(struct log *lg, const char *tool)
{
	lg->tool = tool;
	lg->level = LOG_WARN;
	lg->json = 0;
	lg->fd = 2;
}

int
log_enabled(const struct log *lg, enum log_level level)
{
	return lg != NULL && (int)level <= lg->level;
}

/* Appends the JSON form: the message is escaped by libjq, never by hand. */
static int
fmt_json(const struct log *lg, struct buf *out, enum log_level level,
         size_t lineno, const char *alert_id, const char *msg)
{
	char ts[32];
	struct timespec now;
	struct tm tm;
	jv o, s;
	int rc;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	if (strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		ts[0] = '\0';
	o = jv_object();
	o = jv_object_set(
	        o, jv_string("time"),
	        jv_string_fmt("%s.%03ldZ", ts, now.tv_nsec / 1000000));
	o = jv_object_set(o, jv_string("tool"), jv_string(lg->tool));
	o = jv_object_set(o, jv_string("level"), jv_string(level_names[level]));
	if (lineno > 0)
		o = jv_object_set(o, jv_string("line"),
		                  jv_number((double)lineno));
	if (alert_id != NULL)
		o = jv_object_set(o, jv_string("alert_id"),
		                  jv_string(alert_id));
	o = jv_object_set(o, jv_string("message"), jv_string(msg));
	s = jv_dump_string(o, 0);
	rc = buf_puts(out, jv_string_value(s));
	jv_free(s);
	if (rc == 0)
		rc = buf_putc(out, '\n');
	return rc;
}

static int vfmt(const struct log *lg, struct buf *out, enum log_level level,
                size_t lineno, const char *alert_id, const char *fmt,
                va_list ap) __attribute__((format(printf, 6, 0)));

static int
vfmt(const struct log *lg, struct buf *out, enum log_level level, size_t lineno,
     const char *alert_id, const char *fmt, va_list ap)
{
	struct buf msg = BUF_INIT;
	int rc;

	if (!lg->json) {
		rc = buf_printf(out, "%s: %s: ", lg->tool, level_names[level]);
		if (rc == 0 && lineno > 0)
			rc = buf_printf(out, "line %zu: ", lineno);
		if (rc == 0 && alert_id != NULL)
			rc = buf_printf(out, "alert %s: ", alert_id);
		if (rc == 0)
			rc = buf_vprintf(out, fmt, ap);
		if (rc == 0)
			rc = buf_putc(out, '\n');
		return rc;
	}
	rc = buf_vprintf(&msg, fmt, ap);
	if (rc == 0)
		rc = fmt_json(lg, out, level, lineno, alert_id, msg.data);
	buf_free(&msg);
	return rc;
}

int
log_fmt(const struct log *lg, struct buf *out, enum log_level level,
        size_t lineno, const char *alert_id, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (!log_enabled(lg, level))
		return 0;
	va_start(ap, fmt);
	rc = vfmt(lg, out, level, lineno, alert_id, fmt, ap);
	va_end(ap);
	return rc;
}

void
log_msg(const struct log *lg, enum log_level level, size_t lineno,
        const char *alert_id, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	int rc;

	if (!log_enabled(lg, level))
		return;
	va_start(ap, fmt);
	rc = vfmt(lg, &b, level, lineno, alert_id, fmt, ap);
	va_end(ap);
	if (rc == 0)
		log_flush_buf(lg, &b);
	buf_free(&b);
}

void
log_flush_buf(const struct log *lg, const struct buf *b)
{
	size_t off = 0;
	ssize_t n;

	while (off < b->len) {
		n = write(lg->fd, b->data + off, b->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}
