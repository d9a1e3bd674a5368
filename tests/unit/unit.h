/*
 * unit.h: the smallest unit-test harness that does the job.
 *
 * Each tests/unit/test_*.c defines static test functions and a main() that
 * lists them with UNIT_RUN().  Output is TAP ("ok N - name" / "not ok N -
 * name"), so tests/run counts unit tests and bats tests the same way.
 * A failed CHECK prints the file, line and expression and marks the current
 * test failed; the test goes on so one run shows every broken assertion.
 */
#ifndef SOAR_UNIT_H
#define SOAR_UNIT_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PATH_LEN 4096

/* Formats a path into p (PATH_LEN bytes) and returns p; a path too long
 * becomes "", which names no file. */
static char *pathf(char *p, const char *fmt, ...)
        __attribute__((format(printf, 2, 3), unused));

static char *
pathf(char *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p, PATH_LEN, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_LEN)
		p[0] = '\0';
	return p;
}

static int unit_failed;  /* the current test has a failed check */
static int unit_count;   /* tests run so far */
static int unit_nfailed; /* tests failed so far */

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stdout, "# %s:%d: CHECK(%s) failed\n",         \
			        __FILE__, __LINE__, #cond);                    \
			unit_failed = 1;                                       \
		}                                                              \
	} while (0)

#define CHECK_INT(a, b)                                                        \
	do {                                                                   \
		long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);  \
		if (unit_a_ != unit_b_) {                                      \
			fprintf(stdout, "# %s:%d: %s == %lld, want %lld\n",    \
			        __FILE__, __LINE__, #a, unit_a_, unit_b_);     \
			unit_failed = 1;                                       \
		}                                                              \
	} while (0)

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *unit_a_ = (a), *unit_b_ = (b);                     \
		if (unit_a_ == NULL || unit_b_ == NULL ||                      \
		    strcmp(unit_a_, unit_b_) != 0) {                           \
			fprintf(stdout,                                        \
			        "# %s:%d: %s == \"%s\", want \"%s\"\n",        \
			        __FILE__, __LINE__, #a,                        \
			        unit_a_ ? unit_a_ : "(null)",                  \
			        unit_b_ ? unit_b_ : "(null)");                 \
			unit_failed = 1;                                       \
		}                                                              \
	} while (0)

#define UNIT_RUN(fn)                                                           \
	do {                                                                   \
		unit_failed = 0;                                               \
		fn();                                                          \
		unit_count++;                                                  \
		if (unit_failed)                                               \
			unit_nfailed++;                                        \
		fprintf(stdout, "%s %d - %s\n", unit_failed ? "not ok" : "ok", \
		        unit_count, #fn);                                      \
		fflush(stdout);                                                \
	} while (0)

/* UNIT_END: prints the TAP plan and returns the process exit status. */
#define UNIT_END() (fprintf(stdout, "1..%d\n", unit_count), unit_nfailed != 0)

#endif
