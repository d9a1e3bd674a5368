/* ndjson.c: bounded line reader and checked writer. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ndjson.h"

#define READ_CHUNK  (256 * 1024)
#define WRITE_CHUNK (64 * 1024)

struct ndjson_reader {
	int fd;
	size_t max_line;
	char *buf;
	size_t cap;
	size_t start; /* first unread byte */
	size_t scan;  /* bytes before this offset hold no '\n' */
	size_t end;   /* end of the data read so far */
	size_t lineno;
	int eof;
};

struct ndjson_reader *
ndjson_reader_new(int fd, size_t max_line)
{
	struct ndjson_reader *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->fd = fd;
	/* One maximal line plus its newline must fit in a size_t. */
	r->max_line = max_line < NDJSON_MAX_LINE ? max_line : NDJSON_MAX_LINE;
	r->cap = READ_CHUNK;
	if ((r->buf = malloc(r->cap)) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void
ndjson_reader_free(struct ndjson_reader *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	free(r);
}

/* Reads more bytes after making room.  Returns bytes read, 0 at EOF, -1. */
static ssize_t
fill(struct ndjson_reader *r)
{
	ssize_t n;

	if (r->start > 0 && (r->end == r->cap || r->start >= r->cap / 2)) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->scan -= r->start;
		r->start = 0;
	}
	if (r->end == r->cap) {
		/* Grow up to one maximal line plus its newline. */
		size_t cap = r->cap * 2, lim = r->max_line + 1;
		char *p;

		if (cap > lim)
			cap = lim > r->cap ? lim : r->cap;
		if (cap == r->cap)
			return -2; /* full: the line is too long */
		if ((p = realloc(r->buf, cap)) == NULL)
			return -1;
		r->buf = p;
		r->cap = cap;
	}
	do
		n = read(r->fd, r->buf + r->end, r->cap - r->end);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		r->end += (size_t)n;
	else if (n == 0)
		r->eof = 1;
	return n;
}

/* Looks for the end of the next line.  Returns 1 with *nl set (the index of
 * the '\n', or r->end for a last line without one), 0 when none is buffered
 * yet. */
static int
find_line(struct ndjson_reader *r, size_t *nl)
{
	char *p;

	if (r->scan < r->start)
		r->scan = r->start;
	p = memchr(r->buf + r->scan, '\n', r->end - r->scan);
	if (p != NULL) {
		*nl = (size_t)(p - r->buf);
		return 1;
	}
	r->scan = r->end;
	if (r->eof && r->end > r->start) {
		*nl = r->end;
		return 1;
	}
	return 0;
}

/* Makes a complete line available or reports why not.  Returns NDJSON_LINE
 * with *nl set, NDJSON_TOOLONG, NDJSON_EOF or NDJSON_ERR. */
static int
next_line_end(struct ndjson_reader *r, size_t *nl)
{
	ssize_t n;

	for (;;) {
		if (find_line(r, nl)) {
			if (*nl - r->start > r->max_line)
				return NDJSON_TOOLONG;
			return NDJSON_LINE;
		}
		if (r->eof)
			return NDJSON_EOF;
		if (r->end - r->start > r->max_line)
			return NDJSON_TOOLONG;
		n = fill(r);
		if (n == -2)
			return NDJSON_TOOLONG;
		if (n < 0)
			return NDJSON_ERR;
	}
}

int
ndjson_read_line(struct ndjson_reader *r, const char **line, size_t *len,
                 size_t *lineno)
{
	size_t nl;
	int rc = next_line_end(r, &nl);

	if (rc == NDJSON_LINE || rc == NDJSON_TOOLONG)
		*lineno = ++r->lineno;
	if (rc != NDJSON_LINE)
		return rc;
	*line = r->buf + r->start;
	*len = nl - r->start;
	r->start = nl < r->end ? nl + 1 : nl;
	return NDJSON_LINE;
}

/* Returns 1 when more input can be read without waiting. */
static int
input_ready(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

int
ndjson_read_batch(struct ndjson_reader *r, struct buf *dst, size_t want,
                  size_t *first)
{
	size_t nl, len;
	int rc, got = 0;

	for (;;) {
		int have = find_line(r, &nl);

		if (!have && got) {
			/* Wait for input only while the batch is empty: read
			 * what is waiting, if anything, and look again. */
			if (r->eof || r->end - r->start > r->max_line ||
			    !input_ready(r->fd) || fill(r) < 0)
				return NDJSON_LINE;
			continue;
		}
		if (!have) {
			rc = next_line_end(r, &nl);
			if (rc == NDJSON_TOOLONG)
				*first = ++r->lineno;
			if (rc != NDJSON_LINE)
				return rc;
		} else if (nl - r->start > r->max_line) {
			if (got)
				return NDJSON_LINE;
			*first = ++r->lineno;
			return NDJSON_TOOLONG;
		}
		len = nl - r->start;
		if (buf_reserve(dst, len + 1) < 0)
			return NDJSON_ERR;
		if (!got)
			*first = r->lineno + 1;
		buf_append(dst, r->buf + r->start, len);
		buf_putc(dst, '\n');
		r->lineno++;
		r->start = nl < r->end ? nl + 1 : nl;
		got = 1;
		if (dst->len >= want)
			return NDJSON_LINE;
	}
}

int
ndjson_reader_ready(struct ndjson_reader *r)
{
	size_t nl;

	return r->eof || find_line(r, &nl) || input_ready(r->fd);
}

int
ndjson_skip_line(struct ndjson_reader *r, int copy_fd)
{
	char *p;
	size_t n;
	int rc;

	for (;;) {
		p = memchr(r->buf + r->start, '\n', r->end - r->start);
		n = p ? (size_t)(p - (r->buf + r->start)) : r->end - r->start;
		if (copy_fd >= 0 && n > 0) {
			rc = ndjson_write_all(copy_fd, r->buf + r->start, n);
			if (rc != 0)
				return -1;
		}
		if (p != NULL || r->eof) {
			r->start += p ? n + 1 : n;
			r->scan = r->start;
			if (copy_fd >= 0 && ndjson_write_all(copy_fd, "\n", 1))
				return -1;
			return 0;
		}
		r->start = r->end = r->scan = 0;
		if (fill(r) < 0)
			return -1;
	}
}

int
ndjson_trim(const char **line, size_t *len)
{
	const unsigned char *s = (const unsigned char *)*line;
	size_t n = *len;

	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
		s += 3;
		n -= 3;
	}
	if (n > 0 && s[0] == 0x1E) {
		s++;
		n--;
	}
	*line = (const char *)s;
	*len = n;
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 1;
	return 0;
}

void
ndjson_writer_init(struct ndjson_writer *w, int fd, int line_buffered)
{
	w->fd = fd;
	w->line_buffered = line_buffered || isatty(fd);
	w->buf = (struct buf)BUF_INIT;
}

int
ndjson_write_all(int fd, const char *p, size_t n)
{
	ssize_t k;

	while (n > 0) {
		k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EPIPE ? NDJSON_EPIPE : -1;
		if (k == 0) {
			errno = EIO;
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int
ndjson_flush(struct ndjson_writer *w)
{
	int rc;

	if (w->buf.len == 0)
		return 0;
	rc = ndjson_write_all(w->fd, w->buf.data, w->buf.len);
	buf_clear(&w->buf);
	return rc;
}

int
ndjson_write(struct ndjson_writer *w, const char *p, size_t n)
{
	int rc;

	/* Large pieces skip the copy. */
	if (n >= WRITE_CHUNK) {
		if ((rc = ndjson_flush(w)) != 0)
			return rc;
		return ndjson_write_all(w->fd, p, n);
	}
	if (buf_append(&w->buf, p, n) < 0)
		return -1;
	if (w->line_buffered || w->buf.len >= WRITE_CHUNK)
		return ndjson_flush(w);
	return 0;
}

int
ndjson_writer_close(struct ndjson_writer *w)
{
	int rc = ndjson_flush(w);

	buf_free(&w->buf);
	return rc;
}
