/*
 * json.h: a validating scanner for JSON text that does not build values.
 *
 * Tools pass events through byte for byte and read only a few fields, so
 * they check a line once (json_check_object) and then walk its bytes
 * (json_iter_*, json_value_end) without building a tree.  The walking
 * functions assume text that json_check_object accepted; on other text they
 * stay inside the buffer but their results are meaningless.
 */
#ifndef SOAR_JSON_H
#define SOAR_JSON_H

#include <stddef.h>

#define JSON_MAX_DEPTH 255 /* libjq 1.6 refuses deeper text; so do we */

struct json_err {
	size_t off;      /* byte offset of the problem */
	const char *msg; /* static text */
};

/* Checks that s[0..n) is exactly one JSON object (RFC 8259), optionally
 * surrounded by whitespace: grammar, escapes, UTF-8 (no overlong forms, no
 * surrogates), no raw control characters in strings, nesting at most
 * JSON_MAX_DEPTH.  Returns 0, or -1 with *err set. */
int json_check_object(const char *s, size_t n, struct json_err *err);

/* Returns the index of the first non-whitespace byte at or after i. */
size_t json_skip_ws(const char *s, size_t n, size_t i);

/* Returns the index just past the value starting at s[i] (checked text). */
size_t json_value_end(const char *s, size_t n, size_t i);

struct json_member {
	const char *key; /* key bytes without quotes, still escaped */
	size_t keylen;
	int key_escaped; /* the key holds a backslash escape */
	const char *val; /* the value's bytes */
	size_t vallen;
};

struct json_iter {
	const char *s;
	size_t n;
	size_t i; /* next byte to look at; at the '}' after the last member */
};

/* Starts iterating over the members of the object whose '{' is s[open]. */
void json_iter_init(struct json_iter *it, const char *s, size_t n, size_t open);

/* Fills m with the next member.  Returns 1, or 0 after the last one, with
 * it->i at the closing '}'. */
int json_iter_next(struct json_iter *it, struct json_member *m);

/* Returns 1 when the member key equals key[0..len) (unescaping when the key
 * holds escapes). */
int json_key_equals(const struct json_member *m, const char *key, size_t len);

/* Steps through the elements of the array whose '[' is s[*pos] (checked
 * text): set *pos to the '[' before the first call.  Sets *off and *len to
 * the next element's text and returns 1, or returns 0 after the last. */
int json_array_next(const char *s, size_t n, size_t *pos, size_t *off,
                    size_t *len);

/* Decodes the JSON string literal s[0..len) (quotes included, checked
 * text) into out as a C string.  Returns its length, or -1 when s is not a
 * string, holds a NUL character, or does not fit in outsz bytes. */
long json_string_copy(const char *s, size_t len, char *out, size_t outsz);

#endif
