/* event.c: dotted-path access, splicing and projection of event text. */
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "event.h"
#include "jqpath.h"
#include "json.h"

/* Where a path leads inside an object: either to an existing value, or to
 * the deepest existing object and the part of the path missing below it. */
struct place {
	int found;
	size_t obj;           /* offset of the deepest object's '{' */
	struct json_member m; /* the value, when found */
	const char *rest;     /* missing part of the path, when not found */
	size_t restlen;
	int blocked; /* a step of the path is not an object */
};

/* The best member of one object for a dotted path, found member by
 * member: a key equal to the whole path wins over nested forms (the last
 * one, as in libjq); otherwise the longest key that is a dotted prefix. */
struct match {
	int exact;
	size_t prefix; /* length of the best prefix key, 0 for none */
	struct json_member m;
};

static void
match_member(const struct json_member *m, const char *path, size_t plen,
             struct match *mt)
{
	const char *dot;

	if (m->keylen > plen && !m->key_escaped)
		return;
	if (json_key_equals(m, path, plen)) {
		mt->exact = 1;
		mt->m = *m;
		return;
	}
	if (mt->exact)
		return;
	for (dot = path;
	     (dot = memchr(dot, '.', plen - (size_t)(dot - path))) != NULL;
	     dot++) {
		size_t k = (size_t)(dot - path);

		if (k > mt->prefix && json_key_equals(m, path, k)) {
			mt->prefix = k;
			mt->m = *m;
		}
	}
}

/* Searches the object whose '{' is at line[open] for path[0..plen). */
static void
locate(const char *line, size_t n, size_t open, const char *path, size_t plen,
       struct place *pl)
{
	struct json_iter it;
	struct json_member m;
	struct match mt = {0};

	pl->found = 0;
	pl->blocked = 0;
	pl->obj = open;
	pl->rest = path;
	pl->restlen = plen;
	json_iter_init(&it, line, n, open);
	while (json_iter_next(&it, &m))
		match_member(&m, path, plen, &mt);
	if (mt.exact) {
		pl->found = 1;
		pl->m = mt.m;
		return;
	}
	if (mt.prefix == 0)
		return;
	if (mt.m.vallen == 0 || mt.m.val[0] != '{') {
		pl->blocked = 1;
		return;
	}
	locate(line, n, (size_t)(mt.m.val - line), path + mt.prefix + 1,
	       plen - mt.prefix - 1, pl);
}

/* Parses a dotted path: a leading '.' is allowed; empty steps are not. */
static int
path_ok(const char *path, const char **p, size_t *len)
{
	size_t n;

	if (*path == '.')
		path++;
	n = strlen(path);
	if (n == 0 || path[0] == '.' || path[n - 1] == '.' ||
	    strstr(path, "..") != NULL)
		return 0;
	*p = path;
	*len = n;
	return 1;
}

int
event_find(const char *line, size_t n, const char *path, struct event_span *out)
{
	struct place pl;
	const char *p;
	size_t plen, open = json_skip_ws(line, n, 0);

	if (!path_ok(path, &p, &plen) || open >= n)
		return 0;
	locate(line, n, open, p, plen, &pl);
	if (!pl.found)
		return 0;
	out->off = (size_t)(pl.m.val - line);
	out->len = pl.m.vallen;
	return 1;
}

int
event_find_many(const char *line, size_t n, const char *const *paths,
                size_t npaths, struct event_span *out)
{
	struct json_iter it;
	struct json_member m;
	struct match mt[EVENT_FIND_MAX];
	const char *p[EVENT_FIND_MAX];
	size_t plen[EVENT_FIND_MAX], open = json_skip_ws(line, n, 0);
	int found = 0;

	if (npaths > EVENT_FIND_MAX || open >= n)
		return -1;
	memset(mt, 0, sizeof(mt));
	for (size_t i = 0; i < npaths; i++) {
		out[i].off = out[i].len = 0;
		if (!path_ok(paths[i], &p[i], &plen[i]))
			plen[i] = 0;
	}
	/* One pass over the top-level members serves every path. */
	json_iter_init(&it, line, n, open);
	while (json_iter_next(&it, &m))
		for (size_t i = 0; i < npaths; i++)
			if (plen[i] > 0)
				match_member(&m, p[i], plen[i], &mt[i]);
	for (size_t i = 0; i < npaths; i++) {
		struct place pl = {.found = mt[i].exact, .m = mt[i].m};

		if (!mt[i].exact && mt[i].prefix > 0 && mt[i].m.vallen > 0 &&
		    mt[i].m.val[0] == '{')
			locate(line, n, (size_t)(mt[i].m.val - line),
			       p[i] + mt[i].prefix + 1,
			       plen[i] - mt[i].prefix - 1, &pl);
		if (pl.found) {
			out[i].off = (size_t)(pl.m.val - line);
			out[i].len = pl.m.vallen;
			found++;
		}
	}
	return found;
}

char *
event_get_string(const char *line, size_t n, const char *path)
{
	struct event_span sp;
	char *r;
	jv v;

	if (!event_find(line, n, path, &sp) || line[sp.off] != '"')
		return NULL;
	v = jv_parse_sized(line + sp.off, (int)sp.len);
	r = jv_get_kind(v) == JV_KIND_STRING ? strdup(jv_string_value(v))
	                                     : NULL;
	jv_free(v);
	return r;
}

/* Appends the JSON text of a key string. */
static int
put_key(struct buf *out, const char *key, size_t len)
{
	jv s = jv_dump_string(jv_string_sized(key, (int)len), 0);
	int rc = buf_puts(out, jv_string_value(s));

	jv_free(s);
	return rc;
}

/* Writes line with the member list of the object at open extended by
 * "rest": val, where rest may be a dotted path turned into nested objects. */
/* Writes line with "rest": val added as the last member of the object
 * whose '}' is line[close] (empty: it has no member yet); rest may be a
 * dotted path, turned into nested objects unless literal. */
static int
insert_at(const char *line, size_t n, size_t close, int empty, const char *rest,
          size_t restlen, const char *val, size_t vlen, int literal,
          struct buf *out)
{
	const char *step = rest, *dot;
	size_t nsteps = 0;
	int rc = 0;

	rc |= buf_append(out, line, close);
	if (!empty)
		rc |= buf_putc(out, ',');
	for (;;) {
		size_t k;

		dot = literal ? NULL
		              : memchr(step, '.',
		                       restlen - (size_t)(step - rest));
		k = dot ? (size_t)(dot - step)
		        : restlen - (size_t)(step - rest);
		rc |= put_key(out, step, k);
		rc |= buf_putc(out, ':');
		if (dot == NULL)
			break;
		rc |= buf_putc(out, '{');
		nsteps++;
		step = dot + 1;
	}
	rc |= buf_append(out, val, vlen);
	while (nsteps-- > 0)
		rc |= buf_putc(out, '}');
	rc |= buf_append(out, line + close, n - close);
	return rc ? -1 : 0;
}

/* insert_at() for the object whose '{' is at line[open]. */
static int
insert(const char *line, size_t n, size_t open, const char *rest,
       size_t restlen, const char *val, size_t vlen, int literal,
       struct buf *out)
{
	struct json_iter it;
	struct json_member m;
	int empty = 1;

	json_iter_init(&it, line, n, open);
	while (json_iter_next(&it, &m))
		empty = 0;
	return insert_at(line, n, it.i, empty, rest, restlen, val, vlen,
	                 literal, out);
}

int
event_key_absent(const char *line, size_t n, const char *key)
{
	char needle[256];
	size_t klen = strlen(key);

	if (klen + 2 > sizeof(needle) || memchr(key, '"', klen) != NULL ||
	    memchr(key, '\\', klen) != NULL)
		return 0;
	needle[0] = '"';
	memcpy(needle + 1, key, klen);
	needle[klen + 1] = '"';
	return memmem(line, n, needle, klen + 2) == NULL;
}

/* Finds where a new last member of the top-level object goes without
 * walking the members: sets *close to the final '}' and *empty.  Returns
 * 1, or 0 when the line does not end in '}'. */
static int
append_place(const char *line, size_t n, size_t *close, int *empty)
{
	size_t c = n, b;

	while (c > 0 && line[c - 1] != '}')
		c--;
	if (c == 0)
		return 0;
	b = c - 1;
	while (b > 0 && (line[b - 1] == ' ' || line[b - 1] == '\t' ||
	                 line[b - 1] == '\r' || line[b - 1] == '\n'))
		b--;
	*close = c - 1;
	*empty = b > 0 && line[b - 1] == '{';
	return 1;
}

static int
set_at(const char *line, size_t n, const char *p, size_t plen, int literal,
       const char *val, size_t vlen, struct buf *out, struct soar_error *err)
{
	struct place pl;
	size_t open = json_skip_ws(line, n, 0), a, b;

	buf_clear(out);
	if (literal) {
		struct json_iter it;
		struct json_member m;
		size_t close;
		int empty;

		/* A key whose quoted form appears nowhere in the line cannot
		 * be a member: it is appended without walking the members.
		 * (p is the whole key here, NUL-terminated.) */
		if (event_key_absent(line, n, p) &&
		    append_place(line, n, &close, &empty)) {
			if (insert_at(line, n, close, empty, p, plen, val, vlen,
			              1, out) < 0)
				goto nomem;
			return 0;
		}
		pl.found = 0;
		json_iter_init(&it, line, n, open);
		while (json_iter_next(&it, &m))
			if (json_key_equals(&m, p, plen)) {
				pl.found = 1;
				pl.m = m;
			}
		pl.blocked = 0;
		pl.obj = open;
		pl.rest = p;
		pl.restlen = plen;
	} else
		locate(line, n, open, p, plen, &pl);
	if (pl.blocked) {
		soar_error_set(err, "path",
		               "%.*s: a step of the path is not "
		               "an object",
		               (int)plen, p);
		return -1;
	}
	if (!pl.found) {
		if (insert(line, n, pl.obj, pl.rest, pl.restlen, val, vlen,
		           literal, out) < 0)
			goto nomem;
		return 0;
	}
	a = (size_t)(pl.m.val - line);
	b = a + pl.m.vallen;
	if (buf_append(out, line, a) < 0 || buf_append(out, val, vlen) < 0 ||
	    buf_append(out, line + b, n - b) < 0)
		goto nomem;
	return 0;
nomem:
	soar_error_set(err, "nomem", "out of memory");
	return -1;
}

int
event_set(const char *line, size_t n, const char *path, const char *val,
          size_t vlen, struct buf *out, struct soar_error *err)
{
	const char *p;
	size_t plen;

	if (!path_ok(path, &p, &plen)) {
		soar_error_set(err, "path", "'%s': not a dotted path", path);
		return -1;
	}
	return set_at(line, n, p, plen, 0, val, vlen, out, err);
}

int
event_set_key(const char *line, size_t n, const char *key, const char *val,
              size_t vlen, struct buf *out, struct soar_error *err)
{
	return set_at(line, n, key, strlen(key), 1, val, vlen, out, err);
}

int
event_add_key(const char *line, size_t n, const char *key, const char *val,
              size_t vlen, struct buf *out, struct soar_error *err)
{
	size_t close;
	int empty;

	if (!append_place(line, n, &close, &empty))
		return event_set_key(line, n, key, val, vlen, out, err);
	buf_clear(out);
	if (insert_at(line, n, close, empty, key, strlen(key), val, vlen, 1,
	              out) < 0) {
		soar_error_set(err, "nomem", "out of memory");
		return -1;
	}
	return 0;
}

jv
event_error_jv(const struct soar_error *e, jv extra)
{
	jv o = jv_object();

	o = jv_object_set(o, jv_string("code"), jv_string(e->code));
	o = jv_object_set(o, jv_string("message"), jv_string(e->message));
	if (e->status != 0)
		o = jv_object_set(o, jv_string("status"),
		                  jv_number((double)e->status));
	if (e->attempts != 0)
		o = jv_object_set(o, jv_string("attempts"),
		                  jv_number(e->attempts));
	if (jv_get_kind(extra) == JV_KIND_OBJECT)
		o = jv_object_merge(o, extra);
	else
		jv_free(extra);
	return jv_object_set(jv_object(), jv_string("error"), o);
}

jv
event_error(const char *code, const char *fmt, ...)
{
	struct soar_error e;
	char msg[sizeof(e.message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	soar_error_set(&e, code, "%s", msg);
	return event_error_jv(&e, jv_null());
}

int
event_dump(jv v, struct buf *out)
{
	jv s = jv_dump_string(v, 0);
	int rc = buf_append(out, jv_string_value(s),
	                    (size_t)jv_string_length_bytes(jv_copy(s)));

	jv_free(s);
	return rc;
}

/* Builds the value of one member cheaply: plain strings, numbers and
 * literals directly, anything else through libjq's parser. */
static jv
scalar(const char *v, size_t len)
{
	char tmp[64];

	switch (v[0]) {
	case '"':
		if (memchr(v + 1, '\\', len - 2) == NULL)
			return jv_string_sized(v + 1, (int)len - 2);
		break;
	case 't':
		return jv_true();
	case 'f':
		return jv_false();
	case 'n':
		return jv_null();
	case '{':
	case '[':
		break;
	default:
		/* Same correctly rounded conversion as libjq's parser. */
		if (len < sizeof(tmp)) {
			memcpy(tmp, v, len);
			tmp[len] = '\0';
			return jv_number(strtod(tmp, NULL));
		}
		break;
	}
	return jv_parse_sized(v, (int)len);
}

static jv
project(const char *line, size_t n, size_t open, const struct jqpath_node *nd)
{
	struct json_iter it;
	struct json_member m;
	jv o = jv_object();

	json_iter_init(&it, line, n, open);
	while (json_iter_next(&it, &m)) {
		const struct jqpath_node *c;
		const char *key = m.key;
		size_t klen = m.keylen;
		jv k = jv_invalid(), v;

		if (m.key_escaped) {
			k = jv_parse_sized(m.key - 1, (int)m.keylen + 2);
			key = jv_string_value(k);
			klen = (size_t)jv_string_length_bytes(jv_copy(k));
		}
		c = jqpath_node_child(nd, key, klen);
		if (c == NULL) {
			jv_free(k);
			continue;
		}
		if (!jqpath_node_whole(c) && m.val[0] == '{')
			v = project(line, n, (size_t)(m.val - line), c);
		else
			v = scalar(m.val, m.vallen);
		if (!jv_is_valid(k))
			k = jv_string_sized(key, (int)klen);
		o = jv_object_set(o, k, v);
	}
	return o;
}

jv
event_parse(const char *line, size_t n, const struct jqpath *paths)
{
	size_t open;

	if (paths == NULL || jqpath_is_whole(paths))
		return jv_parse_sized(line, (int)n);
	open = json_skip_ws(line, n, 0);
	return project(line, n, open, jqpath_root(paths));
}
