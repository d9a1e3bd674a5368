/* event.c: dotted-path access, splicing and projection of event text. */
#include <stdlib.h>
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

/* Searches the object whose '{' is at line[open] for path[0..plen). */
static void
locate(const char *line, size_t n, size_t open, const char *path, size_t plen,
       struct place *pl)
{
	struct json_iter it;
	struct json_member m;

	pl->found = 0;
	pl->blocked = 0;
	pl->obj = open;
	pl->rest = path;
	pl->restlen = plen;

	/* One pass: a key equal to the whole remaining path wins over
	 * nested forms; otherwise the longest key that is a dotted prefix. */
	size_t best = 0;
	struct json_member bm = {0};

	json_iter_init(&it, line, n, open);
	while (json_iter_next(&it, &m)) {
		const char *dot;
		size_t k;

		if (m.keylen > plen && !m.key_escaped)
			continue;
		if (json_key_equals(&m, path, plen)) {
			pl->found = 1;
			pl->m = m;
			continue;
		}
		if (pl->found)
			continue;
		for (dot = path;
		     (dot = memchr(dot, '.', plen - (size_t)(dot - path))) !=
		     NULL;
		     dot++) {
			k = (size_t)(dot - path);
			if (k > best && json_key_equals(&m, path, k)) {
				best = k;
				bm = m;
			}
		}
	}
	if (pl->found)
		return;
	if (best == 0)
		return;
	if (bm.vallen == 0 || bm.val[0] != '{') {
		pl->blocked = 1;
		return;
	}
	locate(line, n, (size_t)(bm.val - line), path + best + 1,
	       plen - best - 1, pl);
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
	struct json_member m, best[EVENT_FIND_MAX];
	size_t open = json_skip_ws(line, n, 0), blen[EVENT_FIND_MAX];
	const char *p[EVENT_FIND_MAX];
	size_t plen[EVENT_FIND_MAX];
	int found = 0, exact[EVENT_FIND_MAX];

	if (npaths > EVENT_FIND_MAX || open >= n)
		return -1;
	for (size_t i = 0; i < npaths; i++) {
		exact[i] = 0;
		blen[i] = 0;
		out[i].off = out[i].len = 0;
		if (!path_ok(paths[i], &p[i], &plen[i]))
			plen[i] = 0;
	}
	/* One pass over the members serves every path. */
	json_iter_init(&it, line, n, open);
	while (json_iter_next(&it, &m)) {
		for (size_t i = 0; i < npaths; i++) {
			const char *dot;

			if (plen[i] == 0 ||
			    (m.keylen > plen[i] && !m.key_escaped))
				continue;
			if (json_key_equals(&m, p[i], plen[i])) {
				exact[i] = 1;
				best[i] = m;
				continue;
			}
			if (exact[i])
				continue;
			for (dot = p[i];
			     (dot = memchr(dot, '.',
			                   plen[i] - (size_t)(dot - p[i]))) !=
			     NULL;
			     dot++) {
				size_t k = (size_t)(dot - p[i]);

				if (k > blen[i] &&
				    json_key_equals(&m, p[i], k)) {
					blen[i] = k;
					best[i] = m;
				}
			}
		}
	}
	for (size_t i = 0; i < npaths; i++) {
		struct place pl;

		if (exact[i]) {
			out[i].off = (size_t)(best[i].val - line);
			out[i].len = best[i].vallen;
			found++;
			continue;
		}
		if (blen[i] == 0 || best[i].vallen == 0 ||
		    best[i].val[0] != '{')
			continue;
		locate(line, n, (size_t)(best[i].val - line),
		       p[i] + blen[i] + 1, plen[i] - blen[i] - 1, &pl);
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
static int
insert(const char *line, size_t n, size_t open, const char *rest,
       size_t restlen, const char *val, size_t vlen, int literal,
       struct buf *out)
{
	struct json_iter it;
	struct json_member m;
	size_t close, nsteps = 0;
	int empty = 1, rc = 0;
	const char *step = rest, *dot;

	json_iter_init(&it, line, n, open);
	while (json_iter_next(&it, &m))
		empty = 0;
	close = it.i; /* the object's '}' */
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

static int
set_at(const char *line, size_t n, const char *p, size_t plen, int literal,
       const char *val, size_t vlen, struct buf *out, struct soar_error *err)
{
	struct place pl;
	size_t open = json_skip_ws(line, n, 0), a, b;

	buf_clear(out);
	if (literal && plen + 2 < 256 && memchr(p, '"', plen) == NULL &&
	    memchr(p, '\\', plen) == NULL) {
		/* A key whose quoted form appears nowhere in the line cannot be
		 * a member: append it without walking the members. */
		char needle[256];
		size_t close = n;

		needle[0] = '"';
		memcpy(needle + 1, p, plen);
		needle[plen + 1] = '"';
		if (memmem(line, n, needle, plen + 2) == NULL) {
			while (close > 0 && line[close - 1] != '}')
				close--;
			if (close > 0) {
				size_t before = close - 1;

				while (before > 0 &&
				       (line[before - 1] == ' ' ||
				        line[before - 1] == '\t' ||
				        line[before - 1] == '\r' ||
				        line[before - 1] == '\n'))
					before--;
				int empty =
				        before > 0 && line[before - 1] == '{';

				if (buf_append(out, line, close - 1) < 0 ||
				    (!empty && buf_putc(out, ',') < 0) ||
				    put_key(out, p, plen) < 0 ||
				    buf_putc(out, ':') < 0 ||
				    buf_append(out, val, vlen) < 0 ||
				    buf_append(out, line + close - 1,
				               n - close + 1) < 0)
					goto nomem;
				return 0;
			}
		}
	}
	if (literal) {
		struct json_iter it;
		struct json_member m;

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
