/* rules.c: parsing decision rules from files and arguments. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

#define MAX_RULES_FILE (4 << 20)

int
rules_outcome_ok(const char *s, size_t len)
{
	if (len == 0 || len > 64)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.'))
			return 0;
	}
	return 1;
}

static int
push(struct rules *rs, const char *outcome, size_t olen, const char *expr,
     size_t elen, const char *origin)
{
	struct rule *v = realloc(rs->v, (rs->n + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	rs->v = v;
	v[rs->n].outcome = strndup(outcome, olen);
	v[rs->n].expr = strndup(expr, elen);
	v[rs->n].origin = strdup(origin);
	if (!v[rs->n].outcome || !v[rs->n].expr || !v[rs->n].origin) {
		free(v[rs->n].outcome);
		free(v[rs->n].expr);
		free(v[rs->n].origin);
		return -1;
	}
	rs->n++;
	return 0;
}

/* Trims spaces and tabs at both ends of s[0..*len). */
static const char *
trim(const char *s, size_t *len)
{
	while (*len > 0 && (*s == ' ' || *s == '\t'))
		s++, (*len)--;
	while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t' ||
	                    s[*len - 1] == '\r'))
		(*len)--;
	return s;
}

int
rules_add_arg(struct rules *rs, const char *arg, struct buf *err)
{
	const char *eq = strchr(arg, '=');
	char origin[32];
	size_t nargs = 1;

	size_t k = eq ? strlen(eq + 1) : 0;

	if (eq == NULL || !rules_outcome_ok(arg, (size_t)(eq - arg)) ||
	    (trim(eq + 1, &k), k == 0)) {
		buf_printf(err, "--rule '%s': expected OUTCOME=EXPR", arg);
		return -1;
	}
	for (size_t i = 0; i < rs->n; i++)
		if (strncmp(rs->v[i].origin, "--rule ", 7) == 0)
			nargs++;
	snprintf(origin, sizeof(origin), "--rule %zu", nargs);
	if (push(rs, arg, (size_t)(eq - arg), eq + 1, strlen(eq + 1), origin) <
	    0) {
		buf_puts(err, "out of memory");
		return -1;
	}
	return 0;
}

int
rules_parse(struct rules *rs, const char *name, const char *text, size_t len,
            struct buf *err)
{
	struct buf expr = BUF_INIT;
	const char *p = text, *end = text + len, *outcome = NULL;
	size_t olen = 0, lineno = 0, start_line = 0;
	struct buf origin = BUF_INIT;
	int rc = -1;

	for (;;) {
		const char *nl, *line;
		size_t n;
		int more = p < end;

		if (more) {
			nl = memchr(p, '\n', (size_t)(end - p));
			line = p;
			n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			p = nl ? nl + 1 : end;
			lineno++;
			if (memchr(line, '\0', n) != NULL) {
				buf_printf(err, "%s:%zu: NUL byte", name,
				           lineno);
				goto out;
			}
		}
		/* A continuation line extends the current rule. */
		if (more && n > 0 && (line[0] == ' ' || line[0] == '\t')) {
			size_t k = n;
			const char *t = trim(line, &k);

			if (k == 0 || t[0] == '#')
				continue;
			if (outcome == NULL) {
				buf_printf(err,
				           "%s:%zu: indented line before "
				           "any rule",
				           name, lineno);
				goto out;
			}
			if ((expr.len > 0 && buf_putc(&expr, '\n') < 0) ||
			    buf_append(&expr, t, k) < 0)
				goto nomem;
			continue;
		}
		if (more && (n == 0 || line[0] == '#' || line[0] == '\r'))
			continue;
		/* A new rule starts, or the file ends: finish the last one. */
		if (outcome != NULL) {
			size_t k = expr.len;
			const char *t = trim(expr.data ? expr.data : "", &k);

			if (k == 0) {
				buf_printf(err,
				           "%s:%zu: rule '%.*s' has no "
				           "expression",
				           name, start_line, (int)olen,
				           outcome);
				goto out;
			}
			buf_clear(&origin);
			if (buf_printf(&origin, "%s:%zu", name, start_line) <
			            0 ||
			    push(rs, outcome, olen, t, k, origin.data) < 0)
				goto nomem;
			outcome = NULL;
		}
		if (!more)
			break;
		const char *colon = memchr(line, ':', n);

		if (colon == NULL ||
		    !rules_outcome_ok(line, (size_t)(colon - line))) {
			buf_printf(err, "%s:%zu: expected 'OUTCOME: EXPR'",
			           name, lineno);
			goto out;
		}
		outcome = line;
		olen = (size_t)(colon - line);
		start_line = lineno;
		buf_clear(&expr);
		size_t k = n - olen - 1;
		const char *t = trim(colon + 1, &k);

		if (buf_append(&expr, t, k) < 0)
			goto nomem;
	}
	rc = 0;
	goto out;
nomem:
	buf_puts(err, "out of memory");
out:
	buf_free(&expr);
	buf_free(&origin);
	return rc;
}

int
rules_load_file(struct rules *rs, const char *path, struct buf *err)
{
	struct buf text = BUF_INIT;
	char chunk[8192];
	FILE *f = fopen(path, "r");
	size_t n;
	int rc;

	if (f == NULL) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (text.len + n > MAX_RULES_FILE) {
			buf_printf(err, "%s: larger than %d bytes", path,
			           MAX_RULES_FILE);
			fclose(f);
			buf_free(&text);
			return -1;
		}
		buf_append(&text, chunk, n);
	}
	if (ferror(f)) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		fclose(f);
		buf_free(&text);
		return -1;
	}
	fclose(f);
	rc = rules_parse(rs, path, text.data ? text.data : "", text.len, err);
	buf_free(&text);
	return rc;
}

void
rules_free(struct rules *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->v[i].outcome);
		free(rs->v[i].expr);
		free(rs->v[i].origin);
	}
	free(rs->v);
	rs->v = NULL;
	rs->n = 0;
}
