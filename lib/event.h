/*
 * event.h: reading and changing events without re-serializing them.
 *
 * An event is one line of JSON text holding an object, already accepted by
 * json_check_object().  Fields are named by dotted paths ("alert.severity");
 * at every level a path also matches a flat key holding dots, as Elastic
 * alerts have ("kibana.alert.rule.name" at the top level), preferring the
 * flat key when both exist.
 *
 * Changes are spliced into the original bytes: every field the change does
 * not touch keeps its exact text, so numbers beyond 2^53 and key order
 * survive (DESIGN.md §2).
 */
#ifndef SOAR_EVENT_H
#define SOAR_EVENT_H

#include <stddef.h>

#include <jv.h>

#include "buf.h"
#include "error.h"

struct jqpath;

struct event_span {
	size_t off; /* offset of the value's first byte in the line */
	size_t len; /* length of the value's text */
};

/* Finds the value at a dotted path.  Returns 1 with *out set, 0 when the
 * path is absent (or runs into a non-object). */
int event_find(const char *line, size_t n, const char *path,
               struct event_span *out);

#define EVENT_FIND_MAX 16

/* Finds several dotted paths in one pass over the event (as event_find
 * does each).  out[i].len is 0 for a path that is absent.  Returns the
 * number found, or -1 when npaths > EVENT_FIND_MAX. */
int event_find_many(const char *line, size_t n, const char *const *paths,
                    size_t npaths, struct event_span *out);

/* Returns the string at path as a newly allocated C string, or NULL when
 * absent, not a string, or on ENOMEM. */
char *event_get_string(const char *line, size_t n, const char *path);

/* Writes into out (cleared first) the event with the value at the dotted
 * path set to the JSON text val[0..vlen): replaced where it exists, else
 * inserted into the deepest existing object, creating the missing objects.
 * Returns 0, or -1 with err set when a path step is not an object or on
 * ENOMEM. */
int event_set(const char *line, size_t n, const char *path, const char *val,
              size_t vlen, struct buf *out, struct soar_error *err);

/* Like event_set with a single top-level key taken literally (a tool's own
 * key such as "decision"; a dot in it is not a path separator). */
int event_set_key(const char *line, size_t n, const char *key, const char *val,
                  size_t vlen, struct buf *out, struct soar_error *err);

/* Returns 1 when the quoted text "key" occurs nowhere in line, so that the
 * key cannot be a member and event_add_key() may append it (0: it may be
 * present, or the key holds a quote or backslash). */
int event_key_absent(const char *line, size_t n, const char *key);

/* event_set_key() for a key that event_key_absent() found absent: appended
 * as the last member without looking for it. */
int event_add_key(const char *line, size_t n, const char *key, const char *val,
                  size_t vlen, struct buf *out, struct soar_error *err);

/* Returns {"error": {"code", "message"[, "status"][, "attempts"]}} plus the
 * fields of extra (an object, consumed; jv_null() for none). */
jv event_error_jv(const struct soar_error *e, jv extra);

/* event_error_jv() of an error made here: {"error": {"code", "message"}},
 * the message formatted as printf does. */
jv event_error(const char *code, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Parses the event keeping only what paths says a jq program can read, and
 * everything when paths is NULL or needs the whole root.  Returns the value,
 * or an invalid jv with a message when libjq refuses the text. */
jv event_parse(const char *line, size_t n, const struct jqpath *paths);

/* Appends to out the compact JSON text of v (consumed). Returns 0 or -1. */
int event_dump(jv v, struct buf *out);

#endif
