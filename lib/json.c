/* json.c: JSON checking and walking without building values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>

#include "json.h"

static int
is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t
json_skip_ws(const char *s, size_t n, size_t i)
{
	while (i < n && is_ws((unsigned char)s[i]))
		i++;
	return i;
}

/* Returns nonzero when any of the 8 bytes of x needs a closer look inside a
 * string: a quote, a backslash, a control character or a non-ASCII byte. */
static uint64_t
special8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t high = 0x8080808080808080ULL;
	uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');

	return (((q - ones) & ~q) | ((b - ones) & ~b) |
	        ((x - ones * 0x20) & ~x) | x) &
	       high;
}

/* Checks one UTF-8 sequence at s[i] (a byte >= 0x80).  Returns its length,
 * or 0 when it is not well-formed (Unicode table 3-7). */
static size_t
utf8_len(const unsigned char *s, size_t n, size_t i)
{
	unsigned char c = s[i], lo = 0x80, hi = 0xBF;
	size_t len, k;

	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (n - i < len)
		return 0;
	if (s[i + 1] < lo || s[i + 1] > hi)
		return 0;
	for (k = 2; k < len; k++)
		if (s[i + k] < 0x80 || s[i + k] > 0xBF)
			return 0;
	return len;
}

static int
is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* Checks the string whose opening quote is s[*ip]; leaves *ip past the
 * closing quote.  Returns NULL or an error message (with *ip at the fault). */
static const char *
check_string(const char *str, size_t n, size_t *ip)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = *ip + 1, len;
	uint64_t w;

	for (;;) {
		while (n - i >= 8) {
			memcpy(&w, s + i, 8);
			if (special8(w))
				break;
			i += 8;
		}
		if (i >= n) {
			*ip = i;
			return "unfinished string (truncated value?)";
		}
		if (s[i] == '"') {
			*ip = i + 1;
			return NULL;
		}
		if (s[i] == '\\') {
			if (i + 1 >= n) {
				*ip = i;
				return "unfinished string (truncated value?)";
			}
			switch (s[i + 1]) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				i += 2;
				continue;
			case 'u':
				if (n - i < 6 || !is_hex(s[i + 2]) ||
				    !is_hex(s[i + 3]) || !is_hex(s[i + 4]) ||
				    !is_hex(s[i + 5])) {
					*ip = i;
					return "invalid \\u escape in string";
				}
				i += 6;
				continue;
			default:
				*ip = i;
				return "invalid escape in string";
			}
		}
		if (s[i] < 0x20) {
			*ip = i;
			return "control character in string";
		}
		if (s[i] >= 0x80) {
			if ((len = utf8_len(s, n, i)) == 0) {
				*ip = i;
				return "invalid UTF-8 in string";
			}
			i += len;
			continue;
		}
		i++;
	}
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Checks a number at s[*ip]; leaves *ip past it. */
static const char *
check_number(const char *s, size_t n, size_t *ip)
{
	size_t i = *ip;

	if (s[i] != '-' && !is_digit(s[i]))
		return "expected a value";
	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && s[i] >= '1' && s[i] <= '9')
		while (i < n && is_digit(s[i]))
			i++;
	else {
		*ip = i;
		return "invalid number";
	}
	if (i < n && s[i] == '.') {
		if (++i >= n || !is_digit(s[i])) {
			*ip = i;
			return "invalid number: digits must follow '.'";
		}
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit(s[i])) {
			*ip = i;
			return "invalid number: digits must follow the "
			       "exponent";
		}
		while (i < n && is_digit(s[i]))
			i++;
	}
	*ip = i;
	return NULL;
}

static const char *
check_literal(const char *s, size_t n, size_t *ip)
{
	static const char *const words[] = {"true", "false", "null"};
	size_t i = *ip;

	for (size_t k = 0; k < 3; k++) {
		size_t len = strlen(words[k]);

		if (n - i >= len && memcmp(s + i, words[k], len) == 0) {
			*ip = i + len;
			return NULL;
		}
	}
	return i < n ? "invalid literal" : "unexpected end of line";
}

/* The checker keeps the open containers in a bit stack: 1 for an object. */
struct stack {
	uint64_t bits[JSON_MAX_DEPTH / 64 + 1];
	int depth;
};

static void
push(struct stack *st, int is_obj)
{
	uint64_t m = 1ULL << (st->depth % 64);

	if (is_obj)
		st->bits[st->depth / 64] |= m;
	else
		st->bits[st->depth / 64] &= ~m;
	st->depth++;
}

static int
top_is_obj(const struct stack *st)
{
	int d = st->depth - 1;

	return (st->bits[d / 64] >> (d % 64)) & 1;
}

static int
fail(struct json_err *err, size_t off, const char *msg)
{
	err->off = off;
	err->msg = msg;
	return -1;
}

int
json_check_object(const char *s, size_t n, struct json_err *err)
{
	struct stack st = {{0}, 0};
	const char *msg;
	size_t i;

	st.depth = 0;
	i = json_skip_ws(s, n, 0);
	if (i >= n)
		return fail(err, i, "empty line");
	if (s[i] != '{')
		return fail(err, i, "not a JSON object");
	push(&st, 1);
	i++;
	goto object_start;

object_start:
	i = json_skip_ws(s, n, i);
	if (i < n && s[i] == '}') {
		i++;
		goto close;
	}
	/* FALLTHROUGH */
member:
	i = json_skip_ws(s, n, i);
	if (i >= n)
		return fail(err, i,
		            "unexpected end of line (truncated value?)");
	if (s[i] != '"')
		return fail(err, i, "expected a string key");
	if ((msg = check_string(s, n, &i)) != NULL)
		return fail(err, i, msg);
	i = json_skip_ws(s, n, i);
	if (i >= n || s[i] != ':')
		return fail(err, i,
		            i >= n ? "unexpected end of line (truncated value?)"
		                   : "expected ':' after key");
	i++;
	/* FALLTHROUGH */
value:
	i = json_skip_ws(s, n, i);
	if (i >= n)
		return fail(err, i,
		            "unexpected end of line (truncated value?)");
	switch (s[i]) {
	case '{':
	case '[':
		if (st.depth >= JSON_MAX_DEPTH)
			return fail(err, i, "nesting too deep");
		push(&st, s[i] == '{');
		i++;
		if (s[i - 1] == '{')
			goto object_start;
		i = json_skip_ws(s, n, i);
		if (i < n && s[i] == ']') {
			i++;
			goto close;
		}
		goto value;
	case '"':
		msg = check_string(s, n, &i);
		break;
	case 't':
	case 'f':
	case 'n':
		msg = check_literal(s, n, &i);
		break;
	default:
		msg = check_number(s, n, &i);
		break;
	}
	if (msg != NULL)
		return fail(err, i, msg);
	/* FALLTHROUGH */
after_value:
	i = json_skip_ws(s, n, i);
	if (i >= n)
		return fail(err, i,
		            "unexpected end of line (truncated value?)");
	if (s[i] == ',') {
		i++;
		if (top_is_obj(&st))
			goto member;
		goto value;
	}
	if (s[i] != (top_is_obj(&st) ? '}' : ']'))
		return fail(err, i,
		            top_is_obj(&st) ? "expected ',' or '}' in object"
		                            : "expected ',' or ']' in array");
	i++;
close:
	if (--st.depth > 0)
		goto after_value;
	i = json_skip_ws(s, n, i);
	if (i < n)
		return fail(err, i, "unexpected data after the object");
	return 0;
}

/* Returns the index past the closing quote of the string at s[i]. */
static size_t
string_end(const char *s, size_t n, size_t i)
{
	const char *q;
	size_t k;

	i++;
	for (;;) {
		q = memchr(s + i, '"', n - i);
		if (q == NULL)
			return n;
		k = (size_t)(q - s);
		/* An odd run of backslashes before the quote escapes it. */
		size_t bs = 0;
		while (k - bs > i && s[k - bs - 1] == '\\')
			bs++;
		if (bs % 2 == 0)
			return k + 1;
		i = k + 1;
	}
}

size_t
json_value_end(const char *s, size_t n, size_t i)
{
	int depth = 0;

	if (i >= n)
		return n;
	if (s[i] == '"')
		return string_end(s, n, i);
	if (s[i] != '{' && s[i] != '[') {
		while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' &&
		       !is_ws((unsigned char)s[i]))
			i++;
		return i;
	}
	while (i < n) {
		switch (s[i]) {
		case '"':
			i = string_end(s, n, i);
			continue;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			if (--depth == 0)
				return i + 1;
			break;
		default:
			break;
		}
		i++;
	}
	return n;
}

void
json_iter_init(struct json_iter *it, const char *s, size_t n, size_t open)
{
	it->s = s;
	it->n = n;
	it->i = open + 1;
}

int
json_iter_next(struct json_iter *it, struct json_member *m)
{
	const char *s = it->s;
	size_t n = it->n, i, kend, vend;

	i = json_skip_ws(s, n, it->i);
	if (i < n && s[i] == ',')
		i = json_skip_ws(s, n, i + 1);
	if (i >= n || s[i] != '"') {
		it->i = i;
		return 0;
	}
	kend = string_end(s, n, i);
	m->key = s + i + 1;
	m->keylen = kend - i - 2;
	m->key_escaped = memchr(m->key, '\\', m->keylen) != NULL;
	i = json_skip_ws(s, n, kend);
	i = json_skip_ws(s, n, i + 1); /* past ':' */
	vend = json_value_end(s, n, i);
	m->val = s + i;
	m->vallen = vend - i;
	it->i = vend;
	return 1;
}

int
json_key_equals(const struct json_member *m, const char *key, size_t len)
{
	jv k;
	int eq;

	if (!m->key_escaped)
		return m->keylen == len && memcmp(m->key, key, len) == 0;
	/* Escaped keys are rare: let libjq decode them. */
	k = jv_parse_sized(m->key - 1, (int)m->keylen + 2);
	eq = jv_get_kind(k) == JV_KIND_STRING &&
	     (size_t)jv_string_length_bytes(jv_copy(k)) == len &&
	     memcmp(jv_string_value(k), key, len) == 0;
	jv_free(k);
	return eq;
}

int
json_array_next(const char *s, size_t n, size_t *pos, size_t *off, size_t *len)
{
	size_t i;

	/* *pos is at the '[', or at the ',' or ']' after an element. */
	if (*pos >= n || s[*pos] == ']')
		return 0;
	i = json_skip_ws(s, n, *pos + 1);
	if (i >= n || s[i] == ']') {
		*pos = i;
		return 0;
	}
	*off = i;
	*len = json_value_end(s, n, i) - i;
	*pos = json_skip_ws(s, n, i + *len);
	return 1;
}

long
json_string_copy(const char *s, size_t len, char *out, size_t outsz)
{
	long r = -1;
	jv v;

	if (len < 2 || s[0] != '"' || s[len - 1] != '"' || outsz == 0)
		return -1;
	if (memchr(s + 1, '\\', len - 2) == NULL) {
		if (len - 2 >= outsz)
			return -1;
		memcpy(out, s + 1, len - 2);
		out[len - 2] = '\0';
		return (long)(len - 2);
	}
	/* Escapes are rare in the values tools read: libjq decodes them. */
	v = jv_parse_sized(s, (int)len);
	if (jv_get_kind(v) == JV_KIND_STRING) {
		size_t vl = (size_t)jv_string_length_bytes(jv_copy(v));

		if (vl < outsz &&
		    memchr(jv_string_value(v), '\0', vl) == NULL) {
			memcpy(out, jv_string_value(v), vl + 1);
			r = (long)vl;
		}
	}
	jv_free(v);
	return r;
}
