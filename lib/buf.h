/*
 * buf.h: growable byte buffers.
 *
 * Invariants: data is NULL or points to cap bytes; len <= cap; when data is
 * not NULL, data[len] is a NUL byte (so a buffer can be used as a C string),
 * hence cap > len.  A buffer owns its data; buf_free releases it.
 */
#ifndef SOAR_BUF_H
#define SOAR_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT                                                               \
	{                                                                      \
		NULL, 0, 0                                                     \
	}

/* Makes room for n more bytes.  Returns 0, or -1 on ENOMEM/overflow. */
int buf_reserve(struct buf *b, size_t n);

/* Appends n bytes.  Returns 0, or -1 on ENOMEM (b unchanged). */
int buf_append(struct buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string.  Returns 0 or -1 (ENOMEM). */
int buf_puts(struct buf *b, const char *s);

/* Appends one byte.  Returns 0 or -1 (ENOMEM). */
int buf_putc(struct buf *b, int c);

/* Appends formatted text.  Returns 0 or -1 (ENOMEM, format error). */
int buf_printf(struct buf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

/* Empties b, keeping its storage. */
void buf_clear(struct buf *b);

/* Releases the storage; b is empty and reusable afterwards. */
void buf_free(struct buf *b);

/* Wipes b's storage (it may have held a secret), then frees it. */
void buf_wipe(struct buf *b);

/* Returns the value of the hex digit c (either case), or -1. */
int hex_value(int c);

#endif
