/* test_buf_log.c: growable buffers and the text and JSON log lines. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jv.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "tests/unit/unit.h"

/* Returns 1 when b satisfies the invariants of buf.h. */
static int
buf_ok(const struct buf *b)
{
	if (b->data == NULL)
		return b->len == 0 && b->cap == 0;
	return b->len < b->cap && b->data[b->len] == '\0';
}

static void
test_buf_empty(void)
{
	struct buf b = BUF_INIT;

	CHECK(buf_ok(&b));
	/* An empty append still makes the buffer a usable C string. */
	CHECK_INT(buf_append(&b, "", 0), 0);
	CHECK(b.data != NULL);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.data, "");
	CHECK(buf_ok(&b));
	buf_free(&b);
	CHECK(b.data == NULL);
	CHECK_INT(b.len, 0);
	CHECK_INT(b.cap, 0);
	buf_free(&b); /* a freed buffer can be freed again */
}

static void
test_buf_append_grows(void)
{
	struct buf b = BUF_INIT;
	char chunk[1000];
	size_t total = 0, i;
	int ok = 1;

	for (i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)('a' + i % 26);
	while (total < (1u << 20)) {
		if (buf_append(&b, chunk, sizeof(chunk)) != 0 || !buf_ok(&b))
			ok = 0;
		total += sizeof(chunk);
	}
	CHECK(ok);
	CHECK_INT(b.len, total);
	CHECK(b.cap > total);
	CHECK_INT(strlen(b.data), total);
	/* Every byte landed where it belongs. */
	for (i = 0; i < total; i++)
		if (b.data[i] != (char)('a' + (i % sizeof(chunk)) % 26))
			break;
	CHECK_INT(i, total);
	buf_free(&b);
}

static void
test_buf_printf_grows(void)
{
	struct buf b = BUF_INIT;
	char *big = malloc((1u << 20) + 1);
	int ok = 1;

	CHECK(big != NULL);
	if (big == NULL)
		return;
	memset(big, 'x', 1u << 20);
	big[1u << 20] = '\0';
	CHECK_INT(buf_printf(&b, "[%d:%s]", 42, "ab"), 0);
	CHECK_STR(b.data, "[42:ab]");
	CHECK_INT(b.len, 7);
	CHECK_INT(buf_printf(&b, "%s|", big), 0);
	CHECK_INT(b.len, 7 + (1u << 20) + 1);
	CHECK(buf_ok(&b));
	CHECK_INT(memcmp(b.data, "[42:ab]xxx", 10), 0);
	CHECK_INT(b.data[b.len - 1], '|');
	/* Many small pieces past 1 MB. */
	buf_clear(&b);
	for (int i = 0; i < 200000; i++)
		if (buf_printf(&b, "%05d,", i % 100000) != 0)
			ok = 0;
	CHECK(ok);
	CHECK_INT(b.len, 200000 * 6);
	CHECK_INT(memcmp(b.data, "00000,00001,", 12), 0);
	CHECK_INT(memcmp(b.data + b.len - 6, "99999,", 6), 0);
	CHECK(buf_ok(&b));
	buf_free(&b);
	free(big);
}

static void
test_buf_puts_putc(void)
{
	struct buf b = BUF_INIT;

	CHECK_INT(buf_puts(&b, "ab"), 0);
	CHECK_INT(buf_putc(&b, 'c'), 0);
	CHECK_INT(buf_putc(&b, 0xE9), 0); /* int argument, stored as a byte */
	CHECK_INT(b.len, 4);
	CHECK_INT(memcmp(b.data, "abc\xE9", 5), 0);
	/* A NUL byte is data too; the terminator comes after it. */
	CHECK_INT(buf_putc(&b, '\0'), 0);
	CHECK_INT(b.len, 5);
	CHECK(buf_ok(&b));
	buf_free(&b);
}

static void
test_buf_clear_keeps_capacity(void)
{
	struct buf b = BUF_INIT;
	char *data;
	size_t cap;

	CHECK_INT(buf_printf(&b, "%0*d", 5000, 7), 0);
	CHECK_INT(b.len, 5000);
	data = b.data;
	cap = b.cap;
	buf_clear(&b);
	CHECK_INT(b.len, 0);
	CHECK_INT(b.cap, cap);
	CHECK(b.data == data);
	CHECK_STR(b.data, "");
	/* Refilling up to the old size does not move the storage. */
	CHECK_INT(buf_printf(&b, "%0*d", 4000, 8), 0);
	CHECK(b.data == data);
	CHECK_INT(b.cap, cap);
	CHECK_INT(b.len, 4000);
	buf_free(&b);
	buf_clear(&b); /* clearing an empty buffer is harmless */
	CHECK(b.data == NULL);
}

static void
test_buf_overflow(void)
{
	struct buf b = BUF_INIT;

	CHECK_INT(buf_puts(&b, "keep"), 0);
	errno = 0;
	CHECK_INT(buf_reserve(&b, SIZE_MAX), -1);
	CHECK_INT(errno, ENOMEM);
	CHECK_INT(buf_reserve(&b, SIZE_MAX - 4), -1);
	errno = 0;
	CHECK_INT(buf_append(&b, "x", SIZE_MAX - 2), -1);
	CHECK_INT(errno, ENOMEM);
	/* A failed append leaves the buffer as it was. */
	CHECK_INT(b.len, 4);
	CHECK_STR(b.data, "keep");
	buf_free(&b);
}

static void
test_log_text(void)
{
	struct log lg;
	struct buf b = BUF_INIT;

	log_init(&lg, "decide");
	CHECK_INT(log_fmt(&lg, &b, LOG_ERROR, 0, NULL, "bad %s", "thing"), 0);
	CHECK_STR(b.data, "decide: error: bad thing\n");
	buf_clear(&b);
	CHECK_INT(log_fmt(&lg, &b, LOG_WARN, 12, NULL, "x=%d", 3), 0);
	CHECK_STR(b.data, "decide: warning: line 12: x=3\n");
	buf_clear(&b);
	CHECK_INT(log_fmt(&lg, &b, LOG_ERROR, 0, "A-1", "gone"), 0);
	CHECK_STR(b.data, "decide: error: alert A-1: gone\n");
	buf_clear(&b);
	CHECK_INT(log_fmt(&lg, &b, LOG_WARN, 7, "a9", "%s", "both"), 0);
	CHECK_STR(b.data, "decide: warning: line 7: alert a9: both\n");
	/* log_fmt appends rather than replaces. */
	CHECK_INT(log_fmt(&lg, &b, LOG_ERROR, 0, NULL, "second"), 0);
	CHECK_STR(b.data, "decide: warning: line 7: alert a9: both\n"
	                  "decide: error: second\n");
	buf_free(&b);
}

static void
test_log_levels(void)
{
	struct log lg;
	struct buf b = BUF_INIT;

	log_init(&lg, "t");
	CHECK_INT(lg.fd, 2);
	CHECK_INT(lg.json, 0);
	CHECK(log_enabled(&lg, LOG_ERROR));
	CHECK(log_enabled(&lg, LOG_WARN));
	CHECK(!log_enabled(&lg, LOG_INFO));
	CHECK(!log_enabled(&lg, LOG_DEBUG));
	CHECK(!log_enabled(&lg, LOG_TRACE));
	CHECK_INT(log_fmt(&lg, &b, LOG_DEBUG, 1, "x", "hidden"), 0);
	CHECK_INT(log_fmt(&lg, &b, LOG_INFO, 0, NULL, "hidden"), 0);
	CHECK_INT(b.len, 0);
	lg.level = LOG_DEBUG;
	CHECK(log_enabled(&lg, LOG_DEBUG));
	CHECK(!log_enabled(&lg, LOG_TRACE));
	CHECK_INT(log_fmt(&lg, &b, LOG_DEBUG, 0, NULL, "shown"), 0);
	CHECK_STR(b.data, "t: debug: shown\n");
	buf_clear(&b);
	lg.level = LOG_TRACE;
	CHECK_INT(log_fmt(&lg, &b, LOG_TRACE, 0, NULL, "deep"), 0);
	CHECK_INT(log_fmt(&lg, &b, LOG_INFO, 0, NULL, "note"), 0);
	CHECK_STR(b.data, "t: trace: deep\nt: info: note\n");
	buf_clear(&b);
	lg.level = LOG_ERROR; /* --quiet */
	CHECK_INT(log_fmt(&lg, &b, LOG_WARN, 0, NULL, "hidden"), 0);
	CHECK_INT(b.len, 0);
	buf_free(&b);
}

/* Reads everything from fd into b (until EOF). */
static void
slurp(int fd, struct buf *b)
{
	char tmp[4096];
	ssize_t n;

	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_append(b, tmp, (size_t)n);
}

static void
test_log_msg_fd(void)
{
	struct log lg;
	struct buf b = BUF_INIT, pre = BUF_INIT;
	int p[2];

	CHECK_INT(pipe(p), 0);
	log_init(&lg, "tool");
	lg.fd = p[1];
	log_msg(&lg, LOG_DEBUG, 0, NULL, "not printed");
	log_error(&lg, "e %d", 1);
	log_warn(&lg, "w");
	log_info(&lg, "not printed");
	log_msg(&lg, LOG_WARN, 3, "id", "full");
	buf_puts(&pre, "pre\n");
	log_flush_buf(&lg, &pre);
	close(p[1]);
	slurp(p[0], &b);
	close(p[0]);
	CHECK_STR(b.data, "tool: error: e 1\n"
	                  "tool: warning: w\n"
	                  "tool: warning: line 3: alert id: full\n"
	                  "pre\n");
	buf_free(&b);
	buf_free(&pre);
}

/* Parses one JSON log line (with its newline) into an object. */
static jv
parse_line(const struct buf *b)
{
	if (b->len == 0 || b->data[b->len - 1] != '\n')
		return jv_invalid_with_msg(jv_string("no newline"));
	if (memchr(b->data, '\n', b->len - 1) != NULL)
		return jv_invalid_with_msg(jv_string("embedded newline"));
	return jv_parse_sized(b->data, (int)b->len);
}

/* Returns a copy of o[key] as a C string compared with want. */
static int
field_is(jv o, const char *key, const char *want)
{
	jv v = jv_object_get(jv_copy(o), jv_string(key));
	int r = jv_get_kind(v) == JV_KIND_STRING &&
	        strcmp(jv_string_value(v), want) == 0;

	jv_free(v);
	return r;
}

static int
has_field(jv o, const char *key)
{
	return jv_object_has(jv_copy(o), jv_string(key));
}

static void
test_log_json(void)
{
	struct log lg;
	struct buf b = BUF_INIT;
	jv o, v;

	log_init(&lg, "decide");
	lg.json = 1;
	CHECK_INT(log_fmt(&lg, &b, LOG_WARN, 42, "A-7", "hello %d", 5), 0);
	o = parse_line(&b);
	CHECK(jv_get_kind(o) == JV_KIND_OBJECT);
	if (jv_get_kind(o) == JV_KIND_OBJECT) {
		CHECK(field_is(o, "tool", "decide"));
		CHECK(field_is(o, "level", "warning"));
		CHECK(field_is(o, "message", "hello 5"));
		CHECK(field_is(o, "alert_id", "A-7"));
		v = jv_object_get(jv_copy(o), jv_string("line"));
		CHECK(jv_get_kind(v) == JV_KIND_NUMBER &&
		      jv_number_value(v) == 42);
		jv_free(v);
		v = jv_object_get(jv_copy(o), jv_string("time"));
		/* "2024-01-02T03:04:05.678Z" */
		CHECK(jv_get_kind(v) == JV_KIND_STRING &&
		      jv_string_length_bytes(jv_copy(v)) == 24 &&
		      jv_string_value(v)[10] == 'T' &&
		      jv_string_value(v)[23] == 'Z');
		jv_free(v);
	}
	jv_free(o);

	/* Without line and alert id those fields are left out. */
	buf_clear(&b);
	CHECK_INT(log_fmt(&lg, &b, LOG_ERROR, 0, NULL, "plain"), 0);
	o = parse_line(&b);
	CHECK(jv_get_kind(o) == JV_KIND_OBJECT);
	if (jv_get_kind(o) == JV_KIND_OBJECT) {
		CHECK(field_is(o, "level", "error"));
		CHECK(field_is(o, "message", "plain"));
		CHECK(!has_field(o, "line"));
		CHECK(!has_field(o, "alert_id"));
		CHECK(has_field(o, "time"));
	}
	jv_free(o);

	/* Filtering applies to the JSON form too. */
	buf_clear(&b);
	CHECK_INT(log_fmt(&lg, &b, LOG_DEBUG, 0, NULL, "hidden"), 0);
	CHECK_INT(b.len, 0);
	buf_free(&b);
}

static void
test_log_json_escaping(void)
{
	static const char msg[] = "say \"hi\"\nback\\slash\ttab\x01\x1f end";
	struct log lg;
	struct buf b = BUF_INIT;
	jv o;

	log_init(&lg, "t");
	lg.json = 1;
	CHECK_INT(log_fmt(&lg, &b, LOG_ERROR, 1, "quo\"te\n", "%s", msg), 0);
	/* One line: the newline in the message is escaped. */
	o = parse_line(&b);
	CHECK(jv_get_kind(o) == JV_KIND_OBJECT);
	if (jv_get_kind(o) == JV_KIND_OBJECT) {
		CHECK(field_is(o, "message", msg));
		CHECK(field_is(o, "alert_id", "quo\"te\n"));
	}
	jv_free(o);
	/* No raw control character made it into the line. */
	for (size_t i = 0; i + 1 < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20) {
			CHECK(!"raw control character");
			break;
		}
	buf_free(&b);
}

int
main(void)
{
	UNIT_RUN(test_buf_empty);
	UNIT_RUN(test_buf_append_grows);
	UNIT_RUN(test_buf_printf_grows);
	UNIT_RUN(test_buf_puts_putc);
	UNIT_RUN(test_buf_clear_keeps_capacity);
	UNIT_RUN(test_buf_overflow);
	UNIT_RUN(test_log_text);
	UNIT_RUN(test_log_levels);
	UNIT_RUN(test_log_msg_fd);
	UNIT_RUN(test_log_json);
	UNIT_RUN(test_log_json_escaping);
	return UNIT_END();
}
