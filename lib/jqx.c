/* jqx.c: compiling and running jq expressions through libjq. */
#include <stdlib.h>
#include <string.h>

#include <jq.h>

#include "jqx.h"

struct jqx {
	jq_state *jq;
	char **exprs;
	char **origins;
	int n;
	jv args;          /* array of {name, value}, as jq_compile_args wants */
	struct buf *msgs; /* where the error callback appends */
};

struct jqx *
jqx_new(void)
{
	struct jqx *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return NULL;
	x->args = jv_array();
	return x;
}

void
jqx_free(struct jqx *x)
{
	if (x == NULL)
		return;
	if (x->jq != NULL)
		jq_teardown(&x->jq);
	for (int i = 0; i < x->n; i++) {
		free(x->exprs[i]);
		free(x->origins[i]);
	}
	free(x->exprs);
	free(x->origins);
	jv_free(x->args);
	free(x);
}

int
jqx_add(struct jqx *x, const char *expr, const char *origin)
{
	char **e, **o;

	e = realloc(x->exprs, (size_t)(x->n + 1) * sizeof(*e));
	if (e == NULL)
		return -1;
	x->exprs = e;
	o = realloc(x->origins, (size_t)(x->n + 1) * sizeof(*o));
	if (o == NULL)
		return -1;
	x->origins = o;
	e[x->n] = strdup(expr);
	o[x->n] = strdup(origin);
	if (e[x->n] == NULL || o[x->n] == NULL) {
		free(e[x->n]);
		free(o[x->n]);
		return -1;
	}
	return x->n++;
}

int
jqx_arg(struct jqx *x, const char *name, jv value)
{
	jv a = jv_object();

	a = jv_object_set(a, jv_string("name"), jv_string(name));
	a = jv_object_set(a, jv_string("value"), value);
	x->args = jv_array_append(x->args, a);
	return 0;
}

/* libjq reports compile errors through this callback, one jv each. */
static void
on_error(void *data, jv msg)
{
	struct jqx *x = data;

	if (x->msgs != NULL) {
		if (jv_get_kind(msg) == JV_KIND_STRING)
			buf_printf(x->msgs, "  %s\n", jv_string_value(msg));
		else {
			jv s = jv_dump_string(jv_copy(msg), 0);

			buf_printf(x->msgs, "  %s\n", jv_string_value(s));
			jv_free(s);
		}
	}
	jv_free(msg);
}

/* Builds the program: one expression as is, several behind a dispatcher
 * that picks one by the index carried in the input. */
static char *
program(const struct jqx *x)
{
	struct buf b = BUF_INIT;

	if (x->n == 1) {
		buf_puts(&b, x->exprs[0]);
		return b.data;
	}
	buf_puts(&b, ".[0] as $__soar_i | .[1] | ");
	for (int i = 0; i < x->n; i++)
		/* The newline ends a trailing comment in the expression. */
		buf_printf(&b, "%sif $__soar_i == %d then (%s\n) ",
		           i ? "el" : "", i, x->exprs[i]);
	if (buf_puts(&b, "else empty end") < 0) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* Compiles src into a fresh state.  Returns it, or NULL (messages in
 * x->msgs when set). */
static jq_state *
compile(struct jqx *x, const char *src)
{
	jq_state *jq = jq_init();

	if (jq == NULL)
		return NULL;
	/* libjq 1.6 leaves these callbacks unset: `input` or `debug` in an
	 * expression would call through garbage.  No inputs beyond the event,
	 * and debug messages are dropped. */
	jq_set_input_cb(jq, NULL, NULL);
	jq_set_debug_cb(jq, NULL, NULL);
	jq_set_error_cb(jq, on_error, x);
	if (!jq_compile_args(jq, src, jv_copy(x->args))) {
		jq_teardown(&jq);
		return NULL;
	}
	/* Runtime errors come back from jq_next; nothing to print here. */
	jq_set_error_cb(jq, NULL, NULL);
	return jq;
}

/* Returns NULL when expr is safe to wrap in parentheses next to other
 * expressions, else why not: its brackets must balance outside strings and
 * comments, or the wrapper's own parentheses could close inside it. */
static const char *
unbalanced(const char *expr)
{
	char stack[256];
	int depth = 0;

	for (const char *p = expr; *p != '\0'; p++) {
		switch (*p) {
		case '#':
			while (p[1] != '\0' && p[1] != '\n')
				p++;
			break;
		case '"':
			/* A string; "\(" opens an interpolation, closed by ')'.
			 */
			for (p++; *p != '\0' && *p != '"'; p++) {
				if (*p != '\\')
					continue;
				if (p[1] == '(') {
					if (depth == (int)sizeof(stack))
						return "nested too deeply";
					stack[depth++] = '"';
					p++;
					goto next;
				}
				if (p[1] != '\0')
					p++;
			}
			if (*p == '\0')
				return "unterminated string";
			break;
		case '(':
		case '[':
		case '{':
			if (depth == (int)sizeof(stack))
				return "nested too deeply";
			stack[depth++] = *p;
			break;
		case ')':
		case ']':
		case '}':
			if (depth == 0)
				return "unbalanced brackets";
			depth--;
			/* The end of an interpolation resumes its string. */
			if (stack[depth] == '"' && *p == ')') {
				for (p++; *p != '\0' && *p != '"'; p++) {
					if (*p != '\\')
						continue;
					if (p[1] == '(') {
						stack[depth++] = '"';
						p++;
						goto next;
					}
					if (p[1] != '\0')
						p++;
				}
				if (*p == '\0')
					return "unterminated string";
			}
			break;
		default:
			break;
		}
	next:;
	}
	return depth == 0 ? NULL : "unbalanced brackets";
}

/* Compiles src alone.  Returns 1 when it compiles; else appends libjq's
 * messages to msgs and returns 0. */
static int
compiles(struct jqx *x, const char *src, struct buf *msgs)
{
	jq_state *jq;

	x->msgs = msgs;
	jq = compile(x, src);
	x->msgs = NULL;
	if (jq == NULL)
		return 0;
	jq_teardown(&jq);
	return 1;
}

/* Says precisely why expression i breaks the program, if it does: alone,
 * or in the parenthesized form the combined program holds it in. */
static void
explain(struct jqx *x, int i, struct buf *msgs)
{
	const char *why = x->n > 1 ? unbalanced(x->exprs[i]) : NULL;
	struct buf src = BUF_INIT;
	size_t before = msgs->len;
	int ok;

	buf_printf(msgs, "%s: cannot compile:\n", x->origins[i]);
	ok = compiles(x, x->exprs[i], msgs);
	if (ok && why != NULL)
		buf_printf(msgs, "  %s\n", why);
	else if (ok && x->n > 1) {
		buf_printf(&src, "(%s\n)", x->exprs[i]);
		ok = src.data != NULL && compiles(x, src.data, msgs);
		if (!ok)
			buf_puts(msgs, "  (each expression must be complete on "
			               "its own: not only definitions or a "
			               "comment)\n");
		buf_free(&src);
	}
	if (ok && why == NULL) {
		msgs->len = before;
		msgs->data[before] = '\0';
		return;
	}
	buf_printf(msgs, "  in: %s\n", x->exprs[i]);
}

int
jqx_compile(struct jqx *x, struct buf *msgs)
{
	struct buf dummy = BUF_INIT;
	char *src;
	int bad = 0;

	if (x->jq != NULL)
		jq_teardown(&x->jq);
	if (x->n == 0)
		return 0;
	for (int i = 0; x->n > 1 && i < x->n; i++)
		bad |= unbalanced(x->exprs[i]) != NULL;
	if (bad || (src = program(x)) == NULL)
		goto broken;
	x->msgs = &dummy;
	x->jq = compile(x, src);
	free(src);
	buf_free(&dummy);
	x->msgs = NULL;
	if (x->jq != NULL)
		return 0;
broken:
	/* Find the broken expressions one by one, for precise messages. */
	if (msgs != NULL) {
		size_t before = msgs->len;

		for (int i = 0; i < x->n; i++)
			explain(x, i, msgs);
		if (msgs->len == before)
			buf_puts(msgs, "  the expressions do not compile "
			               "together\n");
	}
	return -1;
}

struct jqx *
jqx_clone(const struct jqx *x, struct buf *msgs)
{
	struct jqx *c = jqx_new();

	if (c == NULL)
		return NULL;
	for (int i = 0; i < x->n; i++)
		if (jqx_add(c, x->exprs[i], x->origins[i]) < 0)
			goto fail;
	jv_free(c->args);
	c->args = jv_copy(x->args);
	if (jqx_compile(c, msgs) < 0)
		goto fail;
	return c;
fail:
	jqx_free(c);
	return NULL;
}

static void
start(struct jqx *x, int idx, jv input)
{
	if (x->n > 1)
		input = jv_array_append(
		        jv_array_append(jv_array(), jv_number(idx)), input);
	jq_start(x->jq, input, 0);
}

/* Turns an invalid jv from jq_next into err.  Returns 1 when it carried an
 * error, 0 at the normal end of outputs. */
static int
runtime_error(struct jqx *x, int idx, jv r, struct soar_error *err)
{
	jv msg;

	if (!jv_invalid_has_msg(jv_copy(r))) {
		jv_free(r);
		if (jq_halted(x->jq)) {
			soar_error_set(err, "jq", "%s: the program halted",
			               x->origins[idx]);
			return 1;
		}
		return 0;
	}
	msg = jv_invalid_get_msg(r);
	if (jv_get_kind(msg) == JV_KIND_STRING)
		soar_error_set(err, "jq", "%s: %s", x->origins[idx],
		               jv_string_value(msg));
	else {
		jv s = jv_dump_string(jv_copy(msg), 0);

		soar_error_set(err, "jq", "%s: %s (not a string)",
		               x->origins[idx], jv_string_value(s));
		jv_free(s);
	}
	jv_free(msg);
	return 1;
}

int
jqx_first(struct jqx *x, int idx, jv input, jv *out, struct soar_error *err)
{
	jv r;

	start(x, idx, input);
	r = jq_next(x->jq);
	if (jv_is_valid(r)) {
		*out = r;
		return 1;
	}
	return runtime_error(x, idx, r, err) ? -1 : 0;
}

int
jqx_truthy(struct jqx *x, int idx, jv input, struct soar_error *err)
{
	jv r;

	start(x, idx, input);
	for (;;) {
		jv_kind k;

		r = jq_next(x->jq);
		if (!jv_is_valid(r))
			return runtime_error(x, idx, r, err) ? -1 : 0;
		k = jv_get_kind(r);
		jv_free(r);
		if (k != JV_KIND_NULL && k != JV_KIND_FALSE)
			return 1;
	}
}

const char *
jqx_expr(const struct jqx *x, int idx)
{
	return x->exprs[idx];
}

const char *
jqx_origin(const struct jqx *x, int idx)
{
	return x->origins[idx];
}

int
jqx_count(const struct jqx *x)
{
	return x->n;
}
