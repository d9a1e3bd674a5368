/*
 * rules.h: decision rules files.
 *
 * A rules file lists "OUTCOME: EXPR" rules in order; the first rule whose jq
 * expression is true for an event gives the event its outcome.  Lines that
 * start with '#' are comments, blank lines are ignored, and a line that
 * starts with a space or a tab continues the expression of the rule above,
 * so long conditions can be spread over lines:
 *
 *     # contain what VirusTotal confirms on severe alerts
 *     contain: .alert.severity == "critical"
 *         and (.vt.score // 0) >= 70
 *     escalate: .alert.severity == "high" or (.vt.score // 0) >= 30
 *     monitor: true
 *
 * OUTCOME is made of letters, digits, '_', '-' and '.'.
 */
#ifndef SOAR_RULES_H
#define SOAR_RULES_H

#include <stddef.h>

#include "buf.h"

struct rule {
	char *outcome;
	char *expr;
	char *origin; /* "FILE:LINE" or "--rule N" */
};

struct rules {
	struct rule *v;
	size_t n;
};

/* Returns 1 when s is a valid outcome name. */
int rules_outcome_ok(const char *s, size_t len);

/* Appends a rule given as "OUTCOME=EXPR" (the --rule form), naming it
 * "--rule N".  Returns 0, or -1 with a message in err. */
int rules_add_arg(struct rules *rs, const char *arg, struct buf *err);

/* Appends the rules of the file at path.  Returns 0, or -1 with a message
 * naming the file and line in err. */
int rules_load_file(struct rules *rs, const char *path, struct buf *err);

/* Appends the rules of text (the contents of a file named name). */
int rules_parse(struct rules *rs, const char *name, const char *text,
                size_t len, struct buf *err);

void rules_free(struct rules *rs);

#endif
