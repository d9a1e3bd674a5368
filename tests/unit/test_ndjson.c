/* test_ndjson.c: the bounded line reader and the checked writer. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/ndjson.h"
#include "tests/unit/unit.h"

/* Returns a read fd positioned at the start of an unlinked temp file that
 * holds the len bytes at p, or -1. */
static int
file_with(const void *p, size_t len)
{
	char path[] = "/tmp/test_ndjson.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	if (ndjson_write_all(fd, p, len) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* An empty unlinked temp file for copies; -1 on failure. */
static int
scratch_file(void)
{
	return file_with("", 0);
}

/* Reads all of fd from its start into b. */
static void
read_back(int fd, struct buf *b)
{
	char tmp[65536];
	ssize_t n;

	buf_clear(b);
	buf_append(b, "", 0);
	if (lseek(fd, 0, SEEK_SET) != 0)
		return;
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_append(b, tmp, (size_t)n);
}

/* A thread that writes data to fd in pieces of chunk bytes, pausing
 * pause_us between pieces, then closes fd. */
struct feeder {
	int fd;
	const char *data;
	size_t len;
	size_t chunk;
	useconds_t pause_us;
	int rc;
	pthread_t t;
};

static void *
feeder_main(void *p)
{
	struct feeder *f = p;
	size_t off = 0;

	f->rc = 0;
	while (off < f->len) {
		size_t n = f->len - off < f->chunk ? f->len - off : f->chunk;

		if (ndjson_write_all(f->fd, f->data + off, n) != 0) {
			f->rc = -1;
			break;
		}
		off += n;
		if (f->pause_us > 0)
			usleep(f->pause_us);
	}
	close(f->fd);
	return NULL;
}

/* Starts a feeder of data into a new pipe; returns the read end or -1. */
static int
feed_pipe(struct feeder *f, const char *data, size_t len, size_t chunk,
          useconds_t pause_us)
{
	int p[2];

	if (pipe(p) != 0)
		return -1;
	f->fd = p[1];
	f->data = data;
	f->len = len;
	f->chunk = chunk;
	f->pause_us = pause_us;
	if (pthread_create(&f->t, NULL, feeder_main, f) != 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	return p[0];
}

/* Reads every line of r into a transcript "N:bytes|" ("N:TOOLONG|" for a
 * long line, which is skipped), ending with "EOF" or "ERR". */
static void
transcript(struct ndjson_reader *r, struct buf *out)
{
	const char *line;
	size_t len, lineno;
	int rc;

	buf_clear(out);
	while ((rc = ndjson_read_line(r, &line, &len, &lineno)) != NDJSON_EOF) {
		if (rc == NDJSON_LINE) {
			buf_printf(out, "%zu:", lineno);
			buf_append(out, line, len);
			buf_putc(out, '|');
		} else if (rc == NDJSON_TOOLONG) {
			buf_printf(out, "%zu:TOOLONG|", lineno);
			if (ndjson_skip_line(r, -1) != 0) {
				buf_puts(out, "ERR");
				return;
			}
		} else {
			buf_puts(out, "ERR");
			return;
		}
	}
	buf_puts(out, "EOF");
}

/* Returns a malloc'ed block of n copies of c, or NULL. */
static char *
repeat(int c, size_t n)
{
	char *p = malloc(n + 1);

	if (p != NULL) {
		memset(p, c, n);
		p[n] = '\0';
	}
	return p;
}

static void
test_lf_crlf_and_last_line(void)
{
	static const char data[] = "a\r\n{\"b\":1}\n\r\n\nlast \"x\"";
	struct ndjson_reader *r;
	const char *line = NULL;
	size_t len = 0, lineno = 0;
	int fd = file_with(data, sizeof(data) - 1);

	CHECK(fd >= 0);
	r = ndjson_reader_new(fd, 1000);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 1);
	CHECK_INT(len, 2);
	CHECK(memcmp(line, "a\r", 2) == 0);
	CHECK_INT(ndjson_trim(&line, &len), 1);
	CHECK_INT(len, 1);
	CHECK(line[0] == 'a');
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 2);
	CHECK_INT(len, 7);
	CHECK(memcmp(line, "{\"b\":1}", 7) == 0);
	/* A blank CRLF line and an empty line still count. */
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 3);
	CHECK_INT(ndjson_trim(&line, &len), 0);
	CHECK_INT(len, 0);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 4);
	CHECK_INT(len, 0);
	CHECK_INT(ndjson_trim(&line, &len), 0);
	/* The last line, without '\n', comes complete. */
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 5);
	CHECK_INT(len, 8);
	CHECK(memcmp(line, "last \"x\"", 8) == 0);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_EOF);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_EOF);
	ndjson_reader_free(r);
	close(fd);
}

static void
test_blank_lines_counted(void)
{
	static const char data[] = "\n  \n\t \r\n{}\n \n";
	struct ndjson_reader *r;
	struct buf out = BUF_INIT;
	const char *line;
	size_t len, lineno;
	int fd = file_with(data, sizeof(data) - 1), rc, seen = 0;

	CHECK(fd >= 0);
	r = ndjson_reader_new(fd, 100);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	while ((rc = ndjson_read_line(r, &line, &len, &lineno)) ==
	       NDJSON_LINE) {
		seen++;
		CHECK_INT(lineno, seen);
		if (ndjson_trim(&line, &len))
			buf_printf(&out, "%zu:%.*s|", lineno, (int)len, line);
	}
	CHECK_INT(rc, NDJSON_EOF);
	CHECK_INT(seen, 5);
	CHECK_STR(out.data, "4:{}|");
	ndjson_reader_free(r);
	close(fd);
	buf_free(&out);
}

/* Returns 1 when trimming in gives want (NULL for a blank line). */
static int
trims_to(const char *in, const char *want)
{
	const char *line = in;
	size_t len = strlen(in);
	int r = ndjson_trim(&line, &len);

	if (want == NULL)
		return r == 0;
	return r == 1 && len == strlen(want) && memcmp(line, want, len) == 0;
}

static void
test_trim(void)
{
	CHECK(trims_to("{}", "{}"));
	CHECK(trims_to("{}\r", "{}"));
	CHECK(trims_to("\xEF\xBB\xBF{\"a\":1}", "{\"a\":1}"));
	CHECK(trims_to("\x1E{\"a\":1}", "{\"a\":1}"));
	CHECK(trims_to("\xEF\xBB\xBF\x1E[1]\r", "[1]"));
	/* Inner and leading blanks are the JSON parser's business. */
	CHECK(trims_to(" {} ", " {} "));
	CHECK(trims_to("\t1", "\t1"));
	/* Half a BOM is data. */
	CHECK(trims_to("\xEF\xBB{}", "\xEF\xBB{}"));
	CHECK(trims_to("", NULL));
	CHECK(trims_to("\r", NULL));
	CHECK(trims_to("   ", NULL));
	CHECK(trims_to(" \t \r", NULL));
	CHECK(trims_to("\xEF\xBB\xBF", NULL));
	CHECK(trims_to("\x1E", NULL));
	CHECK(trims_to("\xEF\xBB\xBF\x1E  \r", NULL));
	/* The caller's bytes are not modified. */
	{
		char s[] = "\xEF\xBB\xBFx\r";
		const char *line = s;
		size_t len = 5;

		CHECK_INT(ndjson_trim(&line, &len), 1);
		CHECK(line == s + 3);
		CHECK_INT(len, 1);
		CHECK(memcmp(s, "\xEF\xBB\xBFx\r", 6) == 0);
	}
}

static void
test_empty_input(void)
{
	struct ndjson_reader *r;
	struct buf dst = BUF_INIT;
	const char *line;
	size_t len, lineno = 77, first = 77;
	int fd = file_with("", 0);

	CHECK(fd >= 0);
	r = ndjson_reader_new(fd, 100);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_EOF);
	CHECK_INT(lineno, 77);
	CHECK_INT(ndjson_read_batch(r, &dst, 100, &first), NDJSON_EOF);
	CHECK_INT(dst.len, 0);
	CHECK_INT(ndjson_reader_ready(r), 1);
	ndjson_reader_free(r);
	close(fd);

	/* An empty pipe closed at once is the same. */
	{
		int p[2];

		CHECK_INT(pipe(p), 0);
		close(p[1]);
		r = ndjson_reader_new(p[0], 100);
		CHECK(r != NULL);
		if (r != NULL)
			CHECK_INT(ndjson_read_line(r, &line, &len, &lineno),
			          NDJSON_EOF);
		ndjson_reader_free(r);
		close(p[0]);
	}
	buf_free(&dst);
}

static void
test_too_long_and_skip(void)
{
	struct buf in = BUF_INIT, copy = BUF_INIT, want = BUF_INIT;
	struct ndjson_reader *r;
	const char *line;
	size_t len, lineno;
	int fd, cfd = scratch_file();

	/* max_line 10: exactly 10 bytes pass, 11 do not. */
	buf_puts(&in, "short\n");
	buf_puts(&in, "0123456789\n");
	buf_puts(&in, "0123456789A\r\n");
	buf_puts(&in, "next\n");
	buf_puts(&in, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
	buf_puts(&in, "\n");
	buf_puts(&in, "tail-without-newline");
	fd = file_with(in.data, in.len);
	CHECK(fd >= 0 && cfd >= 0);
	r = ndjson_reader_new(fd, 10);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 1);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 2);
	CHECK_INT(len, 10);
	CHECK(memcmp(line, "0123456789", 10) == 0);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_TOOLONG);
	CHECK_INT(lineno, 3);
	CHECK_INT(ndjson_skip_line(r, cfd), 0);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 4);
	CHECK_INT(len, 4);
	CHECK(memcmp(line, "next", 4) == 0);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_TOOLONG);
	CHECK_INT(lineno, 5);
	CHECK_INT(ndjson_skip_line(r, cfd), 0);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 6);
	CHECK_INT(len, 0);
	/* A long last line without '\n' gets one in the copy. */
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_TOOLONG);
	CHECK_INT(lineno, 7);
	CHECK_INT(ndjson_skip_line(r, cfd), 0);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_EOF);
	/* The copy holds exactly the long lines' bytes, each with '\n'. */
	read_back(cfd, &copy);
	buf_puts(&want, "0123456789A\r\n");
	buf_puts(&want,
	         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
	buf_puts(&want, "tail-without-newline\n");
	CHECK_INT(copy.len, want.len);
	CHECK_STR(copy.data, want.data);
	ndjson_reader_free(r);
	close(fd);
	close(cfd);
	buf_free(&in);
	buf_free(&copy);
	buf_free(&want);
}

/* The big input of the spanning tests: lines 1 "first", 2 a 1 MB line,
 * 3 a line of exactly max_line bytes, 4 "after", 5 max_line + 1 bytes,
 * 6 "end" without '\n'. */
#define SPAN_MAX  300000
#define SPAN_HUGE (1u << 20)

static void
span_input(struct buf *in)
{
	size_t i;

	buf_puts(in, "first\n");
	buf_reserve(in, SPAN_HUGE + 2 * SPAN_MAX + 64);
	for (i = 0; i < SPAN_HUGE; i++)
		buf_putc(in, 'a' + (int)(i % 23));
	buf_putc(in, '\n');
	for (i = 0; i < SPAN_MAX; i++)
		buf_putc(in, 'A' + (int)(i % 19));
	buf_putc(in, '\n');
	buf_puts(in, "after\n");
	for (i = 0; i < SPAN_MAX + 1; i++)
		buf_putc(in, 'z');
	buf_puts(in, "\nend");
}

/* Reads the span input from fd, copying long lines to a scratch file. */
static void
check_span(int fd, const struct buf *in)
{
	struct ndjson_reader *r = ndjson_reader_new(fd, SPAN_MAX);
	struct buf copy = BUF_INIT;
	const char *line;
	size_t len, lineno;
	int cfd = scratch_file();
	const char *huge = in->data + 6;
	const char *exact = huge + SPAN_HUGE + 1;

	CHECK(r != NULL && cfd >= 0);
	if (r == NULL)
		return;
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 1);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_TOOLONG);
	CHECK_INT(lineno, 2);
	CHECK_INT(ndjson_skip_line(r, cfd), 0);
	read_back(cfd, &copy);
	CHECK_INT(copy.len, SPAN_HUGE + 1);
	CHECK(copy.len == SPAN_HUGE + 1 &&
	      memcmp(copy.data, huge, SPAN_HUGE + 1) == 0);
	/* Exactly max_line bytes is accepted, whole. */
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 3);
	CHECK_INT(len, SPAN_MAX);
	CHECK(len == SPAN_MAX && memcmp(line, exact, SPAN_MAX) == 0);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 4);
	CHECK(len == 5 && memcmp(line, "after", 5) == 0);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_TOOLONG);
	CHECK_INT(lineno, 5);
	CHECK_INT(ndjson_skip_line(r, -1), 0);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(lineno, 6);
	CHECK(len == 3 && memcmp(line, "end", 3) == 0);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_EOF);
	ndjson_reader_free(r);
	close(cfd);
	buf_free(&copy);
}

static void
test_long_lines_file(void)
{
	struct buf in = BUF_INIT;
	int fd;

	span_input(&in);
	fd = file_with(in.data, in.len);
	CHECK(fd >= 0);
	check_span(fd, &in);
	close(fd);
	buf_free(&in);
}

static void
test_long_lines_pipe(void)
{
	struct buf in = BUF_INIT;
	struct feeder f;
	int fd;

	span_input(&in);
	/* Odd-sized pieces so line ends fall anywhere in a read. */
	fd = feed_pipe(&f, in.data, in.len, 4093, 0);
	CHECK(fd >= 0);
	if (fd < 0) {
		buf_free(&in);
		return;
	}
	check_span(fd, &in);
	close(fd);
	pthread_join(f.t, NULL);
	CHECK_INT(f.rc, 0);
	buf_free(&in);
}

static void
test_huge_max_line(void)
{
	struct buf in = BUF_INIT;
	struct ndjson_reader *r;
	const char *line;
	size_t len = 0, lineno;
	int fd;

	for (int i = 0; i < 400000; i++)
		buf_putc(&in, 'q');
	buf_puts(&in, "\n");
	fd = file_with(in.data, in.len);
	CHECK(fd >= 0);
	/* BUG: ndjson.c fill() computes the growth limit as max_line + 1,
	 * which wraps to 0 for max_line == SIZE_MAX (what --max-line
	 * 18446744073709551615 gives), so the buffer never grows past
	 * 256 KiB and every longer line is reported as NDJSON_TOOLONG. */
	r = ndjson_reader_new(fd, SIZE_MAX);
	CHECK(r != NULL);
	if (r != NULL) {
		CHECK_INT(ndjson_read_line(r, &line, &len, &lineno),
		          NDJSON_LINE);
		CHECK_INT(len, 400000);
	}
	ndjson_reader_free(r);
	close(fd);
	buf_free(&in);
}

static void
test_byte_at_a_time(void)
{
	static const char data[] =
	        "\xEF\xBB\xBF{\"a\":1}\r\n\n   \n\x1E{\"b\":[1,2]}\n"
	        "0123456789abcdef\n0123456789abcdefX\n{\"c\":\"\\n\"}\r\n"
	        "last line";
	struct buf one = BUF_INIT, bytes = BUF_INIT;
	struct ndjson_reader *r;
	struct feeder f;
	int fd;

	fd = file_with(data, sizeof(data) - 1);
	r = ndjson_reader_new(fd, 16);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	transcript(r, &one);
	ndjson_reader_free(r);
	close(fd);
	CHECK_STR(one.data, "1:\xEF\xBB\xBF{\"a\":1}\r|2:|3:   |"
	                    "4:\x1E{\"b\":[1,2]}|5:0123456789abcdef|"
	                    "6:TOOLONG|7:{\"c\":\"\\n\"}\r|8:last line|EOF");

	fd = feed_pipe(&f, data, sizeof(data) - 1, 1, 200);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	r = ndjson_reader_new(fd, 16);
	CHECK(r != NULL);
	if (r != NULL)
		transcript(r, &bytes);
	ndjson_reader_free(r);
	close(fd);
	pthread_join(f.t, NULL);
	CHECK_STR(bytes.data, one.data);
	buf_free(&one);
	buf_free(&bytes);
}

static void
test_batch(void)
{
	static const char data[] = "a\nbb\r\n\nccc\nlast";
	struct ndjson_reader *r;
	struct buf dst = BUF_INIT;
	size_t first = 0;
	int fd = file_with(data, sizeof(data) - 1);

	CHECK(fd >= 0);
	r = ndjson_reader_new(fd, 100);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	CHECK_INT(ndjson_read_batch(r, &dst, 1 << 20, &first), NDJSON_LINE);
	CHECK_INT(first, 1);
	/* Every line ends with '\n', the last one included. */
	CHECK_STR(dst.data, "a\nbb\r\n\nccc\nlast\n");
	first = 77;
	CHECK_INT(ndjson_read_batch(r, &dst, 1 << 20, &first), NDJSON_EOF);
	CHECK_STR(dst.data, "a\nbb\r\n\nccc\nlast\n");
	ndjson_reader_free(r);
	close(fd);

	/* Small batches stop once want bytes are there. */
	fd = file_with(data, sizeof(data) - 1);
	r = ndjson_reader_new(fd, 100);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	buf_clear(&dst);
	CHECK_INT(ndjson_read_batch(r, &dst, 3, &first), NDJSON_LINE);
	CHECK_INT(first, 1);
	CHECK_STR(dst.data, "a\nbb\r\n");
	buf_clear(&dst);
	CHECK_INT(ndjson_read_batch(r, &dst, 1, &first), NDJSON_LINE);
	CHECK_INT(first, 3);
	CHECK_STR(dst.data, "\n");
	buf_clear(&dst);
	CHECK_INT(ndjson_read_batch(r, &dst, 4, &first), NDJSON_LINE);
	CHECK_INT(first, 4);
	CHECK_STR(dst.data, "ccc\n");
	buf_clear(&dst);
	CHECK_INT(ndjson_read_batch(r, &dst, 4, &first), NDJSON_LINE);
	CHECK_INT(first, 5);
	CHECK_STR(dst.data, "last\n");
	CHECK_INT(ndjson_read_batch(r, &dst, 4, &first), NDJSON_EOF);
	ndjson_reader_free(r);
	close(fd);
	buf_free(&dst);
}

static void
test_batch_too_long(void)
{
	struct buf in = BUF_INIT, dst = BUF_INIT, copy = BUF_INIT;
	struct ndjson_reader *r;
	size_t first = 0;
	int fd, cfd = scratch_file();

	buf_puts(&in, "ab\ncd\n0123456789\nef\n");
	for (int i = 0; i < 400000; i++)
		buf_putc(&in, 'x');
	buf_puts(&in, "\ngh\n");
	fd = file_with(in.data, in.len);
	CHECK(fd >= 0 && cfd >= 0);
	r = ndjson_reader_new(fd, 5);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	CHECK_INT(ndjson_read_batch(r, &dst, 1 << 20, &first), NDJSON_LINE);
	CHECK_INT(first, 1);
	CHECK_STR(dst.data, "ab\ncd\n");
	/* The long line: dst untouched, *first names it. */
	buf_clear(&dst);
	buf_puts(&dst, "keep");
	CHECK_INT(ndjson_read_batch(r, &dst, 1 << 20, &first), NDJSON_TOOLONG);
	CHECK_INT(first, 3);
	CHECK_STR(dst.data, "keep");
	CHECK_INT(ndjson_skip_line(r, cfd), 0);
	buf_clear(&dst);
	CHECK_INT(ndjson_read_batch(r, &dst, 1 << 20, &first), NDJSON_LINE);
	CHECK_INT(first, 4);
	CHECK_STR(dst.data, "ef\n");
	/* A long line not yet ended in the buffer. */
	buf_clear(&dst);
	CHECK_INT(ndjson_read_batch(r, &dst, 1 << 20, &first), NDJSON_TOOLONG);
	CHECK_INT(first, 5);
	CHECK_INT(dst.len, 0);
	CHECK_INT(ndjson_skip_line(r, cfd), 0);
	CHECK_INT(ndjson_read_batch(r, &dst, 1 << 20, &first), NDJSON_LINE);
	CHECK_INT(first, 6);
	CHECK_STR(dst.data, "gh\n");
	CHECK_INT(ndjson_read_batch(r, &dst, 1 << 20, &first), NDJSON_EOF);
	read_back(cfd, &copy);
	CHECK_INT(copy.len, 11 + 400001);
	CHECK(copy.len > 11 && memcmp(copy.data, "0123456789\nxxxx", 15) == 0);
	CHECK(copy.len > 0 && copy.data[copy.len - 1] == '\n');
	ndjson_reader_free(r);
	close(fd);
	close(cfd);
	buf_free(&in);
	buf_free(&dst);
	buf_free(&copy);
}

/* Writes the rest of a line once told to, or after a timeout. */
struct finisher {
	int fd;
	int go;
	int timed_out;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t t;
};

static void *
finisher_main(void *p)
{
	struct finisher *f = p;
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 3;
	pthread_mutex_lock(&f->mu);
	while (!f->go && rc == 0)
		rc = pthread_cond_timedwait(&f->cv, &f->mu, &until);
	f->timed_out = !f->go;
	pthread_mutex_unlock(&f->mu);
	ndjson_write_all(f->fd, "\ntail\n", 6);
	close(f->fd);
	return NULL;
}

static void
test_batch_does_not_wait(void)
{
	struct buf in = BUF_INIT, dst = BUF_INIT;
	struct finisher f = {.go = 0};
	struct ndjson_reader *r;
	size_t first = 0, nlines;
	int p[2], started;

	/* Complete lines, then a long line whose end has not come yet, all
	 * in the pipe at once: more than one read(2) of the reader. */
	for (int i = 0; i < 100; i++)
		buf_printf(&in, "{\"n\":%d}\n", i);
	nlines = in.len;
	for (int i = 0; i < 600000; i++)
		buf_putc(&in, 'p');
	CHECK_INT(pipe(p), 0);
	CHECK(fcntl(p[1], F_SETPIPE_SZ, 1 << 20) >= (int)in.len);
	CHECK_INT(ndjson_write_all(p[1], in.data, in.len), 0);
	f.fd = p[1];
	pthread_mutex_init(&f.mu, NULL);
	pthread_cond_init(&f.cv, NULL);
	started = pthread_create(&f.t, NULL, finisher_main, &f) == 0;
	CHECK(started);
	r = ndjson_reader_new(p[0], 1 << 24);
	CHECK(r != NULL);
	if (r != NULL) {
		/* BUG: ndjson_read_batch() waits for input while dst already
		 * holds lines: once the complete lines are used up and more
		 * bytes are waiting, it calls next_line_end(), which loops on
		 * read(2) until the unfinished line ends, holding back the
		 * 100 lines (here until the 3 s timeout of the finisher). */
		CHECK_INT(ndjson_read_batch(r, &dst, 1 << 24, &first),
		          NDJSON_LINE);
		CHECK_INT(first, 1);
		CHECK_INT(dst.len, nlines);
		CHECK(dst.len >= nlines &&
		      memcmp(dst.data, in.data, nlines) == 0);
	}
	pthread_mutex_lock(&f.mu);
	f.go = 1;
	pthread_cond_signal(&f.cv);
	pthread_mutex_unlock(&f.mu);
	if (started)
		pthread_join(f.t, NULL);
	CHECK(!f.timed_out);
	/* The rest arrives in order afterwards. */
	if (r != NULL) {
		const char *line = NULL;
		size_t len = 0, lineno = 0;
		int rc;

		if (dst.len == nlines) {
			rc = ndjson_read_line(r, &line, &len, &lineno);
			CHECK_INT(rc, NDJSON_LINE);
			CHECK_INT(lineno, 101);
			CHECK_INT(len, 600000);
		}
		rc = ndjson_read_line(r, &line, &len, &lineno);
		CHECK_INT(rc, NDJSON_LINE);
		CHECK(len == 4 && memcmp(line, "tail", 4) == 0);
		CHECK_INT(lineno, 102);
	}
	ndjson_reader_free(r);
	close(p[0]);
	pthread_cond_destroy(&f.cv);
	pthread_mutex_destroy(&f.mu);
	buf_free(&in);
	buf_free(&dst);
}

/* Returns 1 when fd has bytes to read right now. */
static int
readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

static void
test_reader_ready(void)
{
	struct ndjson_reader *r;
	const char *line;
	size_t len, lineno;
	int p[2];

	CHECK_INT(pipe(p), 0);
	r = ndjson_reader_new(p[0], 100);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	CHECK_INT(ndjson_reader_ready(r), 0);
	CHECK_INT(ndjson_write_all(p[1], "a\nb\n", 4), 0);
	CHECK_INT(ndjson_reader_ready(r), 1);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	/* "b" is buffered already. */
	CHECK_INT(ndjson_reader_ready(r), 1);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_LINE);
	CHECK_INT(ndjson_reader_ready(r), 0);
	close(p[1]);
	CHECK_INT(ndjson_reader_ready(r), 1);
	CHECK_INT(ndjson_read_line(r, &line, &len, &lineno), NDJSON_EOF);
	ndjson_reader_free(r);
	close(p[0]);
}

static void
test_read_error(void)
{
	struct ndjson_reader *r;
	const char *line;
	size_t len, lineno;
	int fd = open("/tmp", O_RDONLY | O_DIRECTORY);

	CHECK(fd >= 0);
	r = ndjson_reader_new(fd, 100);
	CHECK(r != NULL);
	if (r != NULL) {
		errno = 0;
		CHECK_INT(ndjson_read_line(r, &line, &len, &lineno),
		          NDJSON_ERR);
		CHECK_INT(errno, EISDIR);
	}
	ndjson_reader_free(r);
	close(fd);
}

struct drain {
	int fd;
	struct buf got;
	pthread_t t;
};

static void *
drain_main(void *p)
{
	struct drain *d = p;
	char chunk[65536];
	ssize_t n;

	while ((n = read(d->fd, chunk, sizeof(chunk))) > 0)
		buf_append(&d->got, chunk, (size_t)n);
	return NULL;
}

static void
test_writer_buffers(void)
{
	struct ndjson_writer w;
	char tmp[256];
	int p[2];
	ssize_t n;

	CHECK_INT(pipe(p), 0);
	ndjson_writer_init(&w, p[1], 0);
	CHECK_INT(w.line_buffered, 0); /* a pipe is not a terminal */
	CHECK_INT(ndjson_write(&w, "{\"a\":1}\n", 8), 0);
	CHECK_INT(ndjson_write(&w, "{\"b\":2}\n", 8), 0);
	CHECK(!readable(p[0]));
	CHECK_INT(ndjson_flush(&w), 0);
	CHECK(readable(p[0]));
	n = read(p[0], tmp, sizeof(tmp));
	CHECK_INT(n, 16);
	CHECK(n == 16 && memcmp(tmp, "{\"a\":1}\n{\"b\":2}\n", 16) == 0);
	CHECK_INT(ndjson_flush(&w), 0); /* nothing queued */
	CHECK(!readable(p[0]));
	CHECK_INT(ndjson_writer_close(&w), 0);
	CHECK(w.buf.data == NULL);

	/* Line buffered: every write goes out at once. */
	ndjson_writer_init(&w, p[1], 1);
	CHECK_INT(ndjson_write(&w, "x\n", 2), 0);
	CHECK(readable(p[0]));
	n = read(p[0], tmp, sizeof(tmp));
	CHECK(n == 2 && memcmp(tmp, "x\n", 2) == 0);
	CHECK_INT(ndjson_writer_close(&w), 0);

	close(p[0]);
	close(p[1]);
}

static void
test_writer_flushes_when_full(void)
{
	struct drain d = {.got = BUF_INIT};
	struct ndjson_writer w;
	int p[2], ok = 1;

	/* Small writes flush by themselves before the buffer grows big, and
	 * the close flushes the rest. */
	CHECK_INT(pipe(p), 0);
	d.fd = p[0];
	CHECK_INT(pthread_create(&d.t, NULL, drain_main, &d), 0);
	ndjson_writer_init(&w, p[1], 0);
	for (int i = 0; i < 20000 && ok; i++)
		ok = ndjson_write(&w, "0123456789\n", 11) == 0;
	CHECK(ok);
	CHECK(w.buf.len < 11 * 20000 / 2);
	CHECK_INT(ndjson_writer_close(&w), 0);
	close(p[1]);
	pthread_join(d.t, NULL);
	close(p[0]);
	CHECK_INT(d.got.len, 11 * 20000);
	CHECK(d.got.len > 11 &&
	      memcmp(d.got.data + d.got.len - 11, "0123456789\n", 11) == 0);
	buf_free(&d.got);
}

static void
test_writer_tty(void)
{
	struct ndjson_writer w;
	int m = posix_openpt(O_RDWR | O_NOCTTY), s = -1;

	if (m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0)
		s = open(ptsname(m), O_RDWR | O_NOCTTY);
	if (s < 0) {
		printf("# no pseudo-terminal here; tty check skipped\n");
		if (m >= 0)
			close(m);
		return;
	}
	ndjson_writer_init(&w, s, 0);
	CHECK_INT(w.line_buffered, 1);
	ndjson_writer_close(&w);
	close(s);
	close(m);
}

static void
test_writer_epipe(void)
{
	struct ndjson_writer w;
	int p[2];
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);

	CHECK_INT(pipe(p), 0);
	close(p[0]);
	ndjson_writer_init(&w, p[1], 0);
	CHECK_INT(ndjson_write(&w, "{}\n", 3), 0); /* only queued */
	CHECK_INT(ndjson_flush(&w), NDJSON_EPIPE);
	CHECK_INT(ndjson_write_all(p[1], "{}\n", 3), NDJSON_EPIPE);
	CHECK_INT(ndjson_write(&w, "{}\n", 3), 0);
	CHECK_INT(ndjson_writer_close(&w), NDJSON_EPIPE);
	/* Line buffered: the write itself reports it. */
	ndjson_writer_init(&w, p[1], 1);
	CHECK_INT(ndjson_write(&w, "{}\n", 3), NDJSON_EPIPE);
	ndjson_writer_close(&w);
	close(p[1]);
	signal(SIGPIPE, old);
}

static void
test_writer_dev_full(void)
{
	struct ndjson_writer w;
	int fd = open("/dev/full", O_WRONLY);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	ndjson_writer_init(&w, fd, 0);
	CHECK_INT(ndjson_write(&w, "{}\n", 3), 0);
	errno = 0;
	CHECK_INT(ndjson_flush(&w), -1);
	CHECK_INT(errno, ENOSPC);
	CHECK_INT(ndjson_write(&w, "{}\n", 3), 0);
	errno = 0;
	CHECK_INT(ndjson_writer_close(&w), -1);
	CHECK_INT(errno, ENOSPC);
	errno = 0;
	CHECK_INT(ndjson_write_all(fd, "x", 1), -1);
	CHECK_INT(errno, ENOSPC);
	close(fd);
}

static void
test_write_all_large(void)
{
	struct drain d = {.got = BUF_INIT};
	struct ndjson_writer w;
	char *big = repeat('j', 1u << 20);
	int p[2];

	CHECK(big != NULL);
	if (big == NULL)
		return;
	for (size_t i = 0; i < (1u << 20); i += 1000)
		big[i] = '\n';
	CHECK_INT(pipe(p), 0);
	d.fd = p[0];
	CHECK_INT(pthread_create(&d.t, NULL, drain_main, &d), 0);
	CHECK_INT(ndjson_write_all(p[1], big, 1u << 20), 0);
	/* And through the writer: a small piece, then a large one. */
	ndjson_writer_init(&w, p[1], 0);
	CHECK_INT(ndjson_write(&w, "head\n", 5), 0);
	CHECK_INT(ndjson_write(&w, big, 1u << 20), 0);
	CHECK_INT(ndjson_writer_close(&w), 0);
	close(p[1]);
	pthread_join(d.t, NULL);
	close(p[0]);
	CHECK_INT(d.got.len, 2 * (1u << 20) + 5);
	CHECK(d.got.len == 2 * (1u << 20) + 5 &&
	      memcmp(d.got.data, big, 1u << 20) == 0 &&
	      memcmp(d.got.data + (1u << 20), "head\n", 5) == 0 &&
	      memcmp(d.got.data + (1u << 20) + 5, big, 1u << 20) == 0);
	buf_free(&d.got);
	free(big);
}

int
main(void)
{
	/* A failing test may close a pipe its feeder still writes to. */
	signal(SIGPIPE, SIG_IGN);
	UNIT_RUN(test_lf_crlf_and_last_line);
	UNIT_RUN(test_blank_lines_counted);
	UNIT_RUN(test_trim);
	UNIT_RUN(test_empty_input);
	UNIT_RUN(test_too_long_and_skip);
	UNIT_RUN(test_long_lines_file);
	UNIT_RUN(test_long_lines_pipe);
	UNIT_RUN(test_huge_max_line);
	UNIT_RUN(test_byte_at_a_time);
	UNIT_RUN(test_batch);
	UNIT_RUN(test_batch_too_long);
	UNIT_RUN(test_batch_does_not_wait);
	UNIT_RUN(test_reader_ready);
	UNIT_RUN(test_read_error);
	UNIT_RUN(test_writer_buffers);
	UNIT_RUN(test_writer_flushes_when_full);
	UNIT_RUN(test_writer_tty);
	UNIT_RUN(test_writer_epipe);
	UNIT_RUN(test_writer_dev_full);
	UNIT_RUN(test_write_all_large);
	return UNIT_END();
}
