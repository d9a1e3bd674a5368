/*
 * ndjson.h: reading and writing newline-delimited JSON streams.
 *
 * The reader hands out lines with their numbers, never holding more than
 * max_line bytes of one line: a longer line is reported as NDJSON_TOOLONG and
 * then skipped (or copied to the reject file) in bounded pieces.  It does not
 * parse JSON; ndjson_trim() strips what the stream format tolerates (CR, a
 * UTF-8 BOM, an RFC 7464 record separator) and tells blank lines apart.
 *
 * The writer checks every write.  A closed pipe downstream is reported as
 * NDJSON_EPIPE so the tool can end quietly; any other failure as -1 with
 * errno set, which tools treat as fatal (exit 3).
 */
#ifndef SOAR_NDJSON_H
#define SOAR_NDJSON_H

#include <stddef.h>

#include "buf.h"

enum {
	NDJSON_ERR = -1,    /* read error, errno set */
	NDJSON_EOF = 0,     /* no more lines */
	NDJSON_LINE = 1,    /* a line (or a batch of lines) was returned */
	NDJSON_TOOLONG = 2, /* the next line is longer than max_line */
	NDJSON_EPIPE = -2,  /* the reader of our output went away */
};

struct ndjson_reader;

#define NDJSON_MAX_LINE ((size_t)1 << 30) /* --max-line is capped here */

/* Returns a reader of fd (borrowed, not closed) or NULL on ENOMEM. */
struct ndjson_reader *ndjson_reader_new(int fd, size_t max_line);
void ndjson_reader_free(struct ndjson_reader *r);

/* Reads the next line.  On NDJSON_LINE, *line (borrowed until the next call)
 * holds its bytes without the '\n', and *lineno its 1-based number.  On
 * NDJSON_TOOLONG, *lineno is set and the caller must call
 * ndjson_skip_line() before reading on. */
int ndjson_read_line(struct ndjson_reader *r, const char **line, size_t *len,
                     size_t *lineno);

/* Reads as many complete lines as are ready, at least one, up to about want
 * bytes, appending each with its '\n' to dst (a last line without '\n' gets
 * one).  Waits for input only while dst is empty, so a slow stream is not
 * held back to fill a batch.  Sets *first to the number of the first line.
 * Returns NDJSON_LINE, NDJSON_TOOLONG (dst untouched, *first set to the
 * long line's number), NDJSON_EOF or NDJSON_ERR. */
int ndjson_read_batch(struct ndjson_reader *r, struct buf *dst, size_t want,
                      size_t *first);

/* Returns 1 when the next read would not wait: a whole line is buffered,
 * input is waiting, or the input has ended. */
int ndjson_reader_ready(struct ndjson_reader *r);

/* Consumes the rest of the over-long line, writing its bytes and a '\n' to
 * copy_fd unless copy_fd is -1.  Returns 0, or -1 on a read or write error
 * (errno set). */
int ndjson_skip_line(struct ndjson_reader *r, int copy_fd);

/* Strips a trailing CR, a leading UTF-8 BOM and a leading RS (0x1E) from
 * the line in place.  Returns 0 when what is left is only whitespace. */
int ndjson_trim(const char **line, size_t *len);

struct ndjson_writer {
	int fd;
	int line_buffered; /* flush after every write */
	struct buf buf;
};

/* Sets up w for fd; line buffering when asked or when fd is a terminal. */
void ndjson_writer_init(struct ndjson_writer *w, int fd, int line_buffered);

/* Queues n bytes (which should end with '\n'), flushing when the buffer is
 * full or the writer is line buffered.  Returns 0, NDJSON_EPIPE or -1. */
int ndjson_write(struct ndjson_writer *w, const char *p, size_t n);

/* Writes out everything queued.  Returns 0, NDJSON_EPIPE or -1. */
int ndjson_flush(struct ndjson_writer *w);

/* Flushes and releases the buffer (not the fd).  Returns like flush. */
int ndjson_writer_close(struct ndjson_writer *w);

/* Writes all n bytes to fd, retrying on EINTR and short writes.  Returns 0,
 * NDJSON_EPIPE or -1. */
int ndjson_write_all(int fd, const char *p, size_t n);

#endif
