/*
 * fuzz_ndjson.c: the NDJSON line reader (lib/ndjson.h) and the JSON
 * scanner that checks each line (lib/json.h), as a tool reads a stream.
 *
 * The input is the stream, served from a memfd.  It is read three times:
 * line by line with no length limit; line by line with a small max_line,
 * over-long lines skipped with ndjson_skip_line into a copy file; in
 * batches (ndjson_read_batch) of a small size.  One input in eight is
 * also read amid 480 KiB of long lines, which takes the reader past its
 * first buffer.  Limits come from a hash of the input, so that files of
 * the shared corpus serve as they are.
 *
 * Invariants: each reading gives back the stream byte for byte (every line
 * followed by '\n'); line numbers count up from 1 without a gap; a line
 * returned is within max_line and holds no '\n', a line reported too long
 * is longer; a batch stops at about its size.  ndjson_trim only cuts
 * what it may.  Each non-blank line, copied into an exactly sized buffer,
 * is checked twice by json_check_object with the same answer and an error
 * offset within the line; an accepted line is walked: every value's end
 * (json_value_end) matches its iterator, the object spans the line, each
 * key compares equal to its decoded self, each string decodes as libjq
 * decodes it, and libjq parses the line as an object (except for a
 * \uD800-\uDBFF escape, which RFC 8259 allows and libjq 1.6 refuses
 * unpaired).
 */
#include <sys/mman.h>

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <jv.h>

#include "buf.h"
#include "fuzz.h"
#include "json.h"
#include "ndjson.h"

/* Returns a memfd holding p[0..n), positioned at its start. */
static int
memfd_with(const void *p, size_t n)
{
	int fd = memfd_create("fuzz_ndjson", MFD_CLOEXEC);

	if (fd < 0 || ndjson_write_all(fd, p, n) != 0 ||
	    lseek(fd, 0, SEEK_SET) != 0)
		abort();
	return fd;
}

/* Appends to b the bytes of fd from offset *off on, and moves *off past
 * them. */
static void
read_from(int fd, off_t *off, struct buf *b)
{
	char tmp[4096];
	ssize_t k;

	while ((k = pread(fd, tmp, sizeof(tmp), *off)) > 0) {
		if (buf_append(b, tmp, (size_t)k) < 0)
			abort();
		*off += k;
	}
	FUZZ_CHECK(k == 0);
}

static uint32_t
fnv1a(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Appends p[0..n) and a '\n' unless it ends in one. */
static void
put_line(struct buf *b, const void *p, size_t n)
{
	if (buf_append(b, p, n) < 0 ||
	    ((n == 0 || ((const char *)p)[n - 1] != '\n') &&
	     buf_putc(b, '\n') < 0))
		abort();
}

/* Appends n bytes c. */
static void
put_filler(struct buf *b, int c, size_t n)
{
	if (buf_reserve(b, n) < 0)
		abort();
	memset(b->data + b->len, c, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* Returns 1 when b holds the n bytes at p. */
static int
same(const struct buf *b, const void *p, size_t n)
{
	return b->len == n && (n == 0 || memcmp(b->data, p, n) == 0);
}

/* Whether s[0..n) holds an escape \uD800 to \uDBFF. */
static int
has_high_surrogate_escape(const char *s, size_t n)
{
	for (size_t i = 0; i + 3 < n; i++)
		if (s[i] == '\\' && s[i + 1] == 'u' &&
		    (s[i + 2] == 'd' || s[i + 2] == 'D') && s[i + 3] != '\0' &&
		    strchr("89abAB", s[i + 3]) != NULL)
			return 1;
	return 0;
}

static void walk_value(const char *s, size_t n, size_t off, size_t len,
                       int depth);

/* Walks the members of the object s[off..off+len). */
static void
walk_object(const char *s, size_t n, size_t off, size_t len, int depth)
{
	struct json_iter it;
	struct json_member m;

	json_iter_init(&it, s, n, off);
	while (json_iter_next(&it, &m)) {
		size_t k = (size_t)(m.key - s), v = (size_t)(m.val - s);
		char *key = malloc(m.keylen + 1);
		long kl;

		if (key == NULL)
			abort();
		FUZZ_CHECK(k > off && k + m.keylen < off + len);
		FUZZ_CHECK(s[k - 1] == '"' && s[k + m.keylen] == '"');
		FUZZ_CHECK(v > k && m.vallen > 0 && v + m.vallen < off + len);
		FUZZ_CHECK(json_value_end(s, n, v) == v + m.vallen);
		/* The key, decoded, is equal to itself. */
		kl = json_string_copy(m.key - 1, m.keylen + 2, key,
		                      m.keylen + 1);
		if (kl >= 0)
			FUZZ_CHECK(json_key_equals(&m, key, (size_t)kl) == 1);
		free(key);
		walk_value(s, n, v, m.vallen, depth + 1);
	}
	FUZZ_CHECK(it.i == off + len - 1 && s[it.i] == '}');
}

/* Walks the elements of the array s[off..off+len). */
static void
walk_array(const char *s, size_t n, size_t off, size_t len, int depth)
{
	size_t pos = off, eoff, elen;

	while (json_array_next(s, n, &pos, &eoff, &elen)) {
		FUZZ_CHECK(eoff > off && elen > 0 && eoff + elen < off + len);
		FUZZ_CHECK(json_value_end(s, n, eoff) == eoff + elen);
		walk_value(s, n, eoff, elen, depth + 1);
	}
	FUZZ_CHECK(pos == off + len - 1 && s[pos] == ']');
}

/* Decodes the string literal s[off..off+len) and compares with libjq. */
static void
check_string(const char *s, size_t off, size_t len)
{
	char *out = malloc(len);
	long r;
	jv v;

	if (out == NULL)
		abort();
	r = json_string_copy(s + off, len, out, len);
	FUZZ_CHECK(r >= -1 && r < (long)len);
	v = jv_parse_sized(s + off, (int)len);
	FUZZ_CHECK(jv_get_kind(v) == JV_KIND_STRING ||
	           has_high_surrogate_escape(s + off, len));
	if (jv_get_kind(v) == JV_KIND_STRING) {
		size_t vl = (size_t)jv_string_length_bytes(jv_copy(v));
		int nul = memchr(jv_string_value(v), '\0', vl) != NULL;

		FUZZ_CHECK(nul ? r == -1 : r == (long)vl);
		if (r >= 0)
			FUZZ_CHECK(memcmp(out, jv_string_value(v), vl + 1) ==
			           0);
	}
	jv_free(v);
	free(out);
}

static void
walk_value(const char *s, size_t n, size_t off, size_t len, int depth)
{
	FUZZ_CHECK(depth <= JSON_MAX_DEPTH && len > 0 && off + len <= n);
	switch (s[off]) {
	case '{':
		walk_object(s, n, off, len, depth);
		break;
	case '[':
		walk_array(s, n, off, len, depth);
		break;
	case '"':
		FUZZ_CHECK(len >= 2 && s[off + len - 1] == '"');
		check_string(s, off, len);
		break;
	default:
		/* A number or a literal, and nothing after it. */
		for (size_t i = off; i < off + len; i++)
			FUZZ_CHECK(s[i] != '\0' &&
			           strchr("0123456789+-.eEtruefalsn", s[i]));
		break;
	}
}

/* Checks one line as the tools do, in a buffer of exactly its size. */
static void
check_line(const char *line, size_t len)
{
	char *s = fuzz_bytes(line, len);
	struct json_err e1 = {0, NULL}, e2 = {0, NULL};
	int r1 = json_check_object(s, len, &e1);
	int r2 = json_check_object(s, len, &e2);

	FUZZ_CHECK(r1 == 0 || r1 == -1);
	FUZZ_CHECK(r1 == r2);
	if (r1 < 0) {
		FUZZ_CHECK(e1.off == e2.off && e1.msg == e2.msg);
		FUZZ_CHECK(e1.off <= len && e1.msg != NULL);
	} else {
		size_t i = json_skip_ws(s, len, 0);
		size_t end = json_value_end(s, len, i);
		jv v;

		FUZZ_CHECK(i < len && s[i] == '{');
		FUZZ_CHECK(end > i && s[end - 1] == '}');
		FUZZ_CHECK(json_skip_ws(s, len, end) == len);
		walk_value(s, len, i, end - i, 1);
		v = jv_parse_sized(s, (int)len);
		FUZZ_CHECK(jv_get_kind(v) == JV_KIND_OBJECT ||
		           has_high_surrogate_escape(s, len));
		jv_free(v);
	}
	free(s);
}

/* ndjson_trim cuts at most a CR at the end and a BOM and an RS at the
 * start, and calls blank only what is made of spaces, tabs and CRs. */
static int
trim(const char **line, size_t *len)
{
	const char *l0 = *line;
	size_t n0 = *len, cut;
	int nonblank = ndjson_trim(line, len), other = 0;

	cut = (size_t)(*line - l0);
	FUZZ_CHECK(*line >= l0 && *len <= n0 - cut);
	FUZZ_CHECK(cut == 0 || cut == 1 || cut == 3 || cut == 4);
	FUZZ_CHECK(n0 - cut - *len <= 1);
	if (n0 - cut - *len == 1)
		FUZZ_CHECK(l0[n0 - 1] == '\r');
	for (size_t i = 0; i < *len && !other; i++)
		other = (*line)[i] != ' ' && (*line)[i] != '\t' &&
		        (*line)[i] != '\r';
	FUZZ_CHECK(nonblank == other);
	return nonblank;
}

/* Line by line; over-long lines (max_line) copied out by skipping. */
static void
read_lines(int fd, size_t max_line, int check_json, struct buf *got)
{
	struct ndjson_reader *r = ndjson_reader_new(fd, max_line);
	int copy = memfd_create("fuzz_ndjson_copy", MFD_CLOEXEC);
	size_t expect = 1, len, lineno;
	off_t copied = 0;
	const char *line;
	int rc;

	if (r == NULL || copy < 0)
		abort();
	while ((rc = ndjson_read_line(r, &line, &len, &lineno)) != NDJSON_EOF) {
		FUZZ_CHECK(rc == NDJSON_LINE || rc == NDJSON_TOOLONG);
		FUZZ_CHECK(lineno == expect++);
		if (rc == NDJSON_TOOLONG) {
			size_t before = got->len;

			FUZZ_CHECK(ndjson_skip_line(r, copy) == 0);
			read_from(copy, &copied, got);
			FUZZ_CHECK(got->len - before > max_line + 1);
			continue;
		}
		FUZZ_CHECK(len <= max_line && memchr(line, '\n', len) == NULL);
		if (buf_append(got, line, len) < 0 || buf_putc(got, '\n') < 0)
			abort();
		if (check_json && trim(&line, &len))
			check_line(line, len);
	}
	ndjson_reader_free(r);
	close(copy);
}

/* In batches of about want bytes. */
static void
read_batches(int fd, size_t max_line, size_t want, struct buf *got)
{
	struct ndjson_reader *r = ndjson_reader_new(fd, max_line);
	int copy = memfd_create("fuzz_ndjson_copy", MFD_CLOEXEC);
	struct buf b = BUF_INIT;
	size_t expect = 1, first;
	off_t copied = 0;
	int rc;

	if (r == NULL || copy < 0)
		abort();
	while (buf_clear(&b),
	       (rc = ndjson_read_batch(r, &b, want, &first)) != NDJSON_EOF) {
		FUZZ_CHECK(rc == NDJSON_LINE || rc == NDJSON_TOOLONG);
		FUZZ_CHECK(first == expect);
		if (rc == NDJSON_TOOLONG) {
			size_t before = got->len;

			FUZZ_CHECK(b.len == 0);
			FUZZ_CHECK(ndjson_skip_line(r, copy) == 0);
			read_from(copy, &copied, got);
			FUZZ_CHECK(got->len - before > max_line + 1);
			expect++;
			continue;
		}
		FUZZ_CHECK(b.len > 0 && b.data[b.len - 1] == '\n');
		for (size_t i = 0, start = 0; i < b.len; i++) {
			if (b.data[i] != '\n')
				continue;
			FUZZ_CHECK(i - start <= max_line);
			/* Only the last line may take the batch past want. */
			FUZZ_CHECK(i + 1 == b.len || i + 1 < want);
			start = i + 1;
			expect++;
		}
		if (buf_append(got, b.data, b.len) < 0)
			abort();
	}
	buf_free(&b);
	ndjson_reader_free(r);
	close(copy);
}

/* A stream past the reader's first buffer (256 KiB): a 200 KiB line, the
 * input, a line of 280 or 310 KiB that the input ends, and the input again,
 * read with a max_line of 128 or 300 KiB.  The reader moves unread bytes
 * down, grows to max_line or not, and fills up, with the input's lines at
 * other offsets. */
static void
read_big(const uint8_t *data, size_t size, unsigned mode)
{
	static const size_t max_line[] = {128 * 1024, 300 * 1024, 300 * 1024};
	static const size_t b_line[] = {280 * 1024, 280 * 1024, 310 * 1024};
	/* Kept from run to run: fresh large blocks cost page faults. */
	static struct buf big = BUF_INIT, got = BUF_INIT;
	int fd;

	buf_clear(&big);
	buf_clear(&got);
	put_filler(&big, 'a', 200 * 1024);
	put_line(&big, "\n", 1);
	put_line(&big, data, size);
	put_filler(&big, 'b', b_line[mode]);
	put_line(&big, data, size);
	fd = memfd_with(big.data, big.len);
	read_lines(fd, max_line[mode], 0, &got);
	FUZZ_CHECK(same(&got, big.data, big.len));
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t h = fnv1a(data, size);
	struct buf want = BUF_INIT, got = BUF_INIT;
	int fd = memfd_with(data, size);

	/* The stream as the reader gives it back: '\n' after a last line. */
	if (size > 0)
		put_line(&want, data, size);

	read_lines(fd, NDJSON_MAX_LINE, 1, &got);
	FUZZ_CHECK(same(&got, want.data, want.len));

	buf_clear(&got);
	FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
	read_lines(fd, 1 + h % 48, 0, &got);
	FUZZ_CHECK(same(&got, want.data, want.len));

	buf_clear(&got);
	FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
	read_batches(fd, 8 + (h >> 8) % 120, 1 + (h >> 16) % 200, &got);
	FUZZ_CHECK(same(&got, want.data, want.len));

	/* One input in eight: it is slow. */
	if ((h >> 24) % 8 == 0)
		read_big(data, size, (h >> 27) % 3);

	close(fd);
	buf_free(&want);
	buf_free(&got);
	return 0;
}
