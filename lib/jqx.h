/*
 * jqx.h: jq programs compiled once and run per event.
 *
 * A tool may carry several expressions (a filter, assignments, rules).
 * libjq spends most of its start-up compiling its builtins, once per
 * jq_compile, so every expression of a tool goes into one program that
 * dispatches on an index, and the tool pays that cost once, and only when it
 * was given an expression at all.  One struct jqx is one jq_state: use it
 * from one thread; jqx_clone() makes another for a second thread.
 */
#ifndef SOAR_JQX_H
#define SOAR_JQX_H

#include <jv.h>

#include "buf.h"
#include "error.h"

struct jqx;

/* Returns an empty set of expressions, or NULL on ENOMEM. */
struct jqx *jqx_new(void);
void jqx_free(struct jqx *x);

/* Adds an expression; origin names it in messages ("--where",
 * "rules.jq:3").  Both strings are copied.  Returns its index, or -1. */
int jqx_add(struct jqx *x, const char *expr, const char *origin);

/* Binds $name to value (consumed) for every expression.  Returns 0, -1. */
int jqx_arg(struct jqx *x, const char *name, jv value);

/* Compiles all expressions.  On failure returns -1 and appends to msgs one
 * block per broken expression: its origin, libjq's messages and the
 * expression text, so the user sees what was compiled. */
int jqx_compile(struct jqx *x, struct buf *msgs);

/* Returns a new, separately compiled copy of x (compiled already), or NULL
 * with msgs filled. */
struct jqx *jqx_clone(const struct jqx *x, struct buf *msgs);

/* Runs expression idx on input (consumed) and returns its first output in
 * *out (owned by the caller).  Returns 1, 0 when there was no output, or -1
 * with err set (code "jq") on a runtime error. */
int jqx_first(struct jqx *x, int idx, jv input, jv *out,
              struct soar_error *err);

/* Runs expression idx on input (consumed).  Returns 1 when some output is
 * neither false nor null (evaluation stops there), 0 when none is, -1 on a
 * runtime error with err set. */
int jqx_truthy(struct jqx *x, int idx, jv input, struct soar_error *err);

/* Returns the expression's text and origin (borrowed). */
const char *jqx_expr(const struct jqx *x, int idx);
const char *jqx_origin(const struct jqx *x, int idx);
int jqx_count(const struct jqx *x);

#endif
