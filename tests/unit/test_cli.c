/* test_cli.c: option tables, generated help, number and size parsing. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/cli.h"
#include "tests/unit/unit.h"

enum {
	OPT_JOBS = CLI_TOOL_KEYS,
	OPT_DRY_RUN,
	OPT_LONG,
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A table that leaves 'v' free, so -v means --verbose. */
static const struct cli_opt opts_plain[] = {
        {"output", 'o', "FILE", "write events to FILE"},
        {"count", 'n', "N", "stop after N events"},
        {"all", 'a', NULL, "keep every event"},
        {"jobs", OPT_JOBS, "N", "run N workers"},
        {"dry-run", OPT_DRY_RUN, NULL, "change nothing"},
        {"a-rather-long-option-name", OPT_LONG, "ARGUMENT",
         "help of the long one"},
        CLI_OPT_MAX_LINE,
        CLI_OPT_LOG_FORMAT,
        CLI_OPT_QUIET,
        CLI_OPT_HELP,
};

/* A table that gives 'v' to a tool option. */
static const struct cli_opt opts_v[] = {
        {"value", 'v', "X", "use the value X"},
        {"all", 'a', NULL, "keep every event"},
        CLI_OPT_HELP,
};

/* Runs fn(arg) in a child whose stdout and stderr go to out and err.
 * Returns the child's exit status, or -1 when it did not exit normally. */
static int
in_child(void (*fn)(const void *), const void *arg, struct buf *out,
         struct buf *err)
{
	FILE *fo = tmpfile(), *fe = tmpfile();
	char tmp[4096];
	size_t n;
	int st = -1;
	pid_t pid;

	if (fo == NULL || fe == NULL)
		goto done;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(fileno(fo), 1);
		dup2(fileno(fe), 2);
		fn(arg);
		fflush(NULL);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		goto done;
	st = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	rewind(fo);
	while ((n = fread(tmp, 1, sizeof(tmp), fo)) > 0)
		buf_append(out, tmp, n);
	rewind(fe);
	while ((n = fread(tmp, 1, sizeof(tmp), fe)) > 0)
		buf_append(err, tmp, n);
done:
	if (fo != NULL)
		fclose(fo);
	if (fe != NULL)
		fclose(fe);
	/* Keep the buffers usable as strings even when nothing came. */
	buf_append(out, "", 0);
	buf_append(err, "", 0);
	return st;
}

struct parse_job {
	const struct cli_opt *opts;
	size_t nopts;
	const char *const *args; /* NULL-terminated, after argv[0] */
};

/* Child side: parses args and prints one token per option ("o=FILE",
 * "a", "#VERBOSE", "#513=4") then "|" and the operands left. */
static void
parse_child(const void *p)
{
	const struct parse_job *job = p;
	char *argv[32];
	const char *arg;
	struct cli c;
	int argc = 0, key;

	argv[argc++] = strdup("t");
	for (size_t i = 0; job->args[i] != NULL && argc < 31; i++)
		argv[argc++] = strdup(job->args[i]);
	argv[argc] = NULL;
	if (cli_init(&c, "t", "[-a] [FILE]", "does things", job->opts,
	             job->nopts) != 0)
		_exit(99);
	optind = 0; /* full GNU getopt reset */
	while ((key = cli_next(&c, argc, argv, &arg)) != -1) {
		if (key == CLI_VERBOSE)
			printf("#VERBOSE");
		else if (key < 0x100)
			printf("%c", key);
		else
			printf("#%d", key);
		if (arg != NULL)
			printf("=%s", arg);
		printf(" ");
	}
	printf("|");
	for (int i = optind; i < argc; i++)
		printf(" %s", argv[i]);
	cli_free(&c);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
}

/* Parses args with opts in a child; returns its exit status and fills the
 * transcript and stderr. */
static int
parse(const struct cli_opt *opts, size_t nopts, const char *const *args,
      struct buf *out, struct buf *err)
{
	struct parse_job job = {opts, nopts, args};

	buf_clear(out);
	buf_clear(err);
	return in_child(parse_child, &job, out, err);
}

static void
test_next_short_and_long(void)
{
	static const char *const args[] = {
	        "-o",         "out.txt",  "-n5",       "-a",         "--jobs",
	        "4",          "--jobs=7", "--dry-run", "--output=x", "-q",
	        "--max-line", "1M",       "-ao",       "y",          "--",
	        "-z",         "operand",  NULL};
	struct buf out = BUF_INIT, err = BUF_INIT;
	char want[256];

	snprintf(want, sizeof(want),
	         "o=out.txt n=5 a #%d=4 #%d=7 #%d o=x q #%d=1M a o=y | -z "
	         "operand",
	         OPT_JOBS, OPT_JOBS, OPT_DRY_RUN, CLI_MAX_LINE);
	CHECK_INT(parse(opts_plain, ARRAY_LEN(opts_plain), args, &out, &err),
	          0);
	CHECK_STR(out.data, want);
	CHECK_STR(err.data, "");
	buf_free(&out);
	buf_free(&err);
}

static void
test_next_stops_at_operand(void)
{
	static const char *const args[] = {"-a", "file", "-n", "3", NULL};
	static const char *const args2[] = {"--all", "-", "x", NULL};
	struct buf out = BUF_INIT, err = BUF_INIT;

	CHECK_INT(parse(opts_plain, ARRAY_LEN(opts_plain), args, &out, &err),
	          0);
	CHECK_STR(out.data, "a | file -n 3");
	CHECK_INT(parse(opts_plain, ARRAY_LEN(opts_plain), args2, &out, &err),
	          0);
	CHECK_STR(out.data, "a | - x");
	buf_free(&out);
	buf_free(&err);
}

static void
test_next_short_verbose(void)
{
	static const char *const args[] = {"-v", "-av", NULL};
	static const char *const args_v[] = {"-v", "3", "-av4", "--value=5",
	                                     NULL};
	struct buf out = BUF_INIT, err = BUF_INIT;

	CHECK_INT(parse(opts_plain, ARRAY_LEN(opts_plain), args, &out, &err),
	          0);
	CHECK_STR(out.data, "#VERBOSE a #VERBOSE |");
	/* With 'v' taken, -v is the tool's option. */
	CHECK_INT(parse(opts_v, ARRAY_LEN(opts_v), args_v, &out, &err), 0);
	CHECK_STR(out.data, "v=3 a v=4 v=5 |");
	buf_free(&out);
	buf_free(&err);
}

static void
test_next_long_verbose(void)
{
	static const char *const args[] = {"--verbose", "-a", NULL};
	struct buf out = BUF_INIT, err = BUF_INIT;

	/* --verbose, which cli_help() advertises ("-v, --verbose" or
	 * "    --verbose"), is a long option too, although no tool's table
	 * lists it. */
	CHECK_INT(parse(opts_plain, ARRAY_LEN(opts_plain), args, &out, &err),
	          0);
	CHECK_STR(out.data, "#VERBOSE a |");
	CHECK_STR(err.data, "");
	/* The same when the table gives 'v' to another option. */
	CHECK_INT(parse(opts_v, ARRAY_LEN(opts_v), args, &out, &err), 0);
	CHECK_STR(out.data, "#VERBOSE a |");
	buf_free(&out);
	buf_free(&err);
}

static void
test_next_errors(void)
{
	static const char *const missing_short[] = {"-a", "-o", NULL};
	static const char *const missing_long[] = {"--output", NULL};
	static const char *const unknown_short[] = {"-z", NULL};
	static const char *const unknown_long[] = {"--nope", NULL};
	struct buf out = BUF_INIT, err = BUF_INIT;
	size_t n = ARRAY_LEN(opts_plain);

	CHECK_INT(parse(opts_plain, n, missing_short, &out, &err), 2);
	CHECK_STR(err.data, "t: option --output needs an argument\n"
	                    "usage: t [-a] [FILE]\n"
	                    "Try 't --help' for more.\n");
	CHECK_INT(parse(opts_plain, n, missing_long, &out, &err), 2);
	CHECK(strstr(err.data, "t: option --output needs an argument\n") ==
	      err.data);
	CHECK_INT(parse(opts_plain, n, unknown_short, &out, &err), 2);
	CHECK(strstr(err.data, "t: unknown option: -z\n") == err.data);
	CHECK_INT(parse(opts_plain, n, unknown_long, &out, &err), 2);
	CHECK(strstr(err.data, "t: unknown option: --nope\n") == err.data);
	buf_free(&out);
	buf_free(&err);
}

static void
test_next_flag_with_value(void)
{
	static const char *const flag_arg[] = {"--all=1", NULL};
	struct buf out = BUF_INIT, err = BUF_INIT;

	/* A flag given a value is a usage error. */
	CHECK_INT(
	        parse(opts_plain, ARRAY_LEN(opts_plain), flag_arg, &out, &err),
	        2);
	CHECK(strstr(err.data, "usage: t [-a] [FILE]\n") != NULL);
	/* BUG: cli_next() reports "--all=1" as "t: unknown option: -a": for
	 * a long flag given a value getopt_long sets optopt to the option's
	 * key, and the '?' branch prints it as a short option that the user
	 * never typed.  The message must name --all. */
	CHECK(strstr(err.data, "--all") != NULL);
	CHECK(strstr(err.data, "unknown option: -a") == NULL);
	buf_free(&out);
	buf_free(&err);
}

/* Child side of the help tests: the help of the table in p. */
static void
help_child(const void *p)
{
	const struct parse_job *job = p;
	struct cli c;

	if (cli_init(&c, "t", "[-a] [FILE]", "does things", job->opts,
	             job->nopts) != 0)
		_exit(99);
	cli_help(&c, stdout);
	cli_free(&c);
}

/* Returns the help output for opts, produced through open_memstream. */
static char *
help_text(const struct cli_opt *opts, size_t nopts)
{
	struct cli c;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (cli_init(&c, "t", "[-a] [FILE]", "does things", opts, nopts) != 0)
		return NULL;
	f = open_memstream(&text, &len);
	if (f != NULL) {
		cli_help(&c, f);
		fclose(f);
	}
	cli_free(&c);
	return text;
}

/* Returns 1 when the help shows left, then help text on the same line or,
 * for a long left part, on the next one. */
static int
help_has(const char *text, const char *left, const char *help)
{
	const char *p = strstr(text, left), *eol, *eol2;

	if (p == NULL || (p > text && p[-1] != ' '))
		return 0;
	eol = strchr(p, '\n');
	if (eol == NULL)
		return 0;
	p += strlen(left);
	eol2 = strchr(eol + 1, '\n');
	for (const char *q = p; q < (eol2 ? eol2 : eol); q++)
		if (strncmp(q, help, strlen(help)) == 0)
			return 1;
	return 0;
}

static void
test_help_lists_options(void)
{
	char *text = help_text(opts_plain, ARRAY_LEN(opts_plain));

	CHECK(text != NULL);
	if (text == NULL)
		return;
	CHECK(strncmp(text, "usage: t [-a] [FILE]\n", 21) == 0);
	CHECK(strstr(text, "does things") != NULL);
	CHECK(help_has(text, "-o, --output FILE", "write events to FILE"));
	CHECK(help_has(text, "-n, --count N", "stop after N events"));
	CHECK(help_has(text, "-a, --all ", "keep every event"));
	CHECK(help_has(text, "    --jobs N", "run N workers"));
	CHECK(help_has(text, "    --dry-run ", "change nothing"));
	CHECK(help_has(text, "    --a-rather-long-option-name ARGUMENT",
	               "help of the long one"));
	CHECK(help_has(text, "    --max-line SIZE", "longest accepted"));
	CHECK(help_has(text, "    --log-format text|json", "format of"));
	CHECK(help_has(text, "-q, --quiet ", "print errors only"));
	CHECK(help_has(text, "-h, --help ", "show this help"));
	CHECK(help_has(text, "-v, --verbose ", "more detail"));
	/* Every option is listed once and --verbose once. */
	for (size_t i = 0; i < ARRAY_LEN(opts_plain); i++) {
		char name[64];
		const char *p;

		snprintf(name, sizeof(name), "--%s ", opts_plain[i].name);
		p = strstr(text, name);
		CHECK(p != NULL);
		CHECK(p == NULL || strstr(p + 1, name) == NULL);
	}
	CHECK(strstr(strstr(text, "--verbose") + 1, "--verbose") == NULL);
	free(text);
}

static void
test_help_verbose_taken(void)
{
	char *text = help_text(opts_v, ARRAY_LEN(opts_v));

	CHECK(text != NULL);
	if (text == NULL)
		return;
	CHECK(help_has(text, "-v, --value X", "use the value X"));
	CHECK(help_has(text, "    --verbose ", "more detail"));
	CHECK(strstr(text, "-v, --verbose") == NULL);
	free(text);
}

static void
test_help_to_stdout(void)
{
	struct parse_job job = {opts_v, ARRAY_LEN(opts_v), NULL};
	struct buf out = BUF_INIT, err = BUF_INIT;
	char *text = help_text(opts_v, ARRAY_LEN(opts_v));

	/* cli_help writes to the stream given, and only there. */
	CHECK_INT(in_child(help_child, &job, &out, &err), 0);
	CHECK(text != NULL);
	CHECK_STR(out.data, text);
	CHECK_STR(err.data, "");
	free(text);
	buf_free(&out);
	buf_free(&err);
}

static void
test_parse_long(void)
{
	long long v = -77;

	CHECK_INT(cli_parse_long("5", 1, 64, &v), 0);
	CHECK_INT(v, 5);
	CHECK_INT(cli_parse_long("1", 1, 64, &v), 0);
	CHECK_INT(v, 1);
	CHECK_INT(cli_parse_long("64", 1, 64, &v), 0);
	CHECK_INT(v, 64);
	CHECK_INT(cli_parse_long("-3", -5, 5, &v), 0);
	CHECK_INT(v, -3);
	CHECK_INT(cli_parse_long("9223372036854775807", 0, LLONG_MAX, &v), 0);
	CHECK_INT(v, LLONG_MAX);
	CHECK_INT(cli_parse_long("-9223372036854775808", LLONG_MIN, 0, &v), 0);
	CHECK_INT(v, LLONG_MIN);
	v = -77;
	/* Out of range; v is left alone. */
	CHECK_INT(cli_parse_long("0", 1, 64, &v), -1);
	CHECK_INT(cli_parse_long("65", 1, 64, &v), -1);
	CHECK_INT(cli_parse_long("-6", -5, 5, &v), -1);
	/* Garbage. */
	CHECK_INT(cli_parse_long("", 1, 64, &v), -1);
	CHECK_INT(cli_parse_long(NULL, 1, 64, &v), -1);
	CHECK_INT(cli_parse_long("12x", 1, 64, &v), -1);
	CHECK_INT(cli_parse_long("1 ", 1, 64, &v), -1);
	CHECK_INT(cli_parse_long("0x10", 0, 64, &v), -1);
	CHECK_INT(cli_parse_long("-", -5, 5, &v), -1);
	/* Overflow is not clamped into range. */
	CHECK_INT(cli_parse_long("99999999999999999999", 0, LLONG_MAX, &v), -1);
	CHECK_INT(cli_parse_long("-99999999999999999999", LLONG_MIN, 0, &v),
	          -1);
	CHECK_INT(v, -77);
}

static void
test_parse_long_leading_space(void)
{
	long long v = -77;

	/* BUG: cli_parse_long passes the string to strtoll, which skips
	 * leading white space, so " 1" (and "\t1") is accepted as 1. */
	CHECK_INT(cli_parse_long(" 1", 1, 64, &v), -1);
	CHECK_INT(cli_parse_long("\t1", 1, 64, &v), -1);
	CHECK_INT(v, -77);
}

static void
test_parse_size(void)
{
	size_t v = 77;

	CHECK_INT(cli_parse_size("16M", &v), 0);
	CHECK_INT(v, (size_t)16 << 20);
	CHECK_INT(cli_parse_size("16m", &v), 0);
	CHECK_INT(v, (size_t)16 << 20);
	CHECK_INT(cli_parse_size("1k", &v), 0);
	CHECK_INT(v, 1024);
	CHECK_INT(cli_parse_size("3K", &v), 0);
	CHECK_INT(v, 3072);
	CHECK_INT(cli_parse_size("2G", &v), 0);
	CHECK_INT(v, (size_t)2 << 30);
	CHECK_INT(cli_parse_size("0", &v), 0);
	CHECK_INT(v, 0);
	CHECK_INT(cli_parse_size("123", &v), 0);
	CHECK_INT(v, 123);
	CHECK_INT(cli_parse_size("18446744073709551615", &v), 0);
	CHECK(v == SIZE_MAX);
	v = 77;
	CHECK_INT(cli_parse_size("M", &v), -1);
	CHECK_INT(cli_parse_size("", &v), -1);
	CHECK_INT(cli_parse_size(NULL, &v), -1);
	CHECK_INT(cli_parse_size("1T", &v), -1);
	CHECK_INT(cli_parse_size("1KB", &v), -1);
	CHECK_INT(cli_parse_size("1 M", &v), -1);
	CHECK_INT(cli_parse_size(" 1", &v), -1);
	CHECK_INT(cli_parse_size("-1", &v), -1);
	CHECK_INT(cli_parse_size("+1", &v), -1);
	CHECK_INT(cli_parse_size("99999999999999999999", &v), -1);
	CHECK_INT(cli_parse_size("18446744073709551616", &v), -1);
	/* Overflow in the multiplication. */
	CHECK_INT(cli_parse_size("17179869184G", &v), -1);
	CHECK_INT(cli_parse_size("18014398509481984K", &v), -1);
	CHECK_INT(v, 77);
}

static void
test_init_defaults(void)
{
	struct cli c;

	CHECK_INT(cli_init(&c, "t", "[FILE]", "sum", opts_plain,
	                   ARRAY_LEN(opts_plain)),
	          0);
	CHECK_STR(c.tool, "t");
	CHECK_INT(c.max_line, (size_t)16 << 20);
	CHECK_INT(c.line_buffered, 0);
	CHECK(c.reject_path == NULL);
	CHECK_INT(c.log.level, LOG_WARN);
	CHECK_STR(c.log.tool, "t");
	CHECK(c.longopts != NULL && c.shortopts != NULL);
	/* Only short keys appear in the short string; long-only keys never
	 * leak a stray character into it. */
	CHECK(strchr(c.shortopts, 'o') != NULL);
	CHECK(strchr(c.shortopts, 'h') != NULL);
	CHECK(strchr(c.shortopts, (char)(OPT_DRY_RUN & 0xff)) == NULL);
	cli_free(&c);
	CHECK(c.longopts == NULL && c.shortopts == NULL);
	cli_free(&c); /* twice is harmless */
}

static void
test_common_values(void)
{
	struct cli c;

	CHECK_INT(cli_init(&c, "t", "", "", opts_plain, ARRAY_LEN(opts_plain)),
	          0);
	CHECK_INT(cli_common(&c, CLI_VERBOSE, NULL), 1);
	CHECK_INT(c.log.level, LOG_INFO);
	CHECK_INT(cli_common(&c, CLI_VERBOSE, NULL), 1);
	CHECK_INT(cli_common(&c, CLI_VERBOSE, NULL), 1);
	CHECK_INT(cli_common(&c, CLI_VERBOSE, NULL), 1);
	CHECK_INT(c.log.level, LOG_TRACE);
	CHECK_INT(cli_common(&c, CLI_QUIET, NULL), 1);
	CHECK_INT(c.log.level, LOG_ERROR);
	CHECK_INT(cli_common(&c, CLI_LOG_FORMAT, "json"), 1);
	CHECK_INT(c.log.json, 1);
	CHECK_INT(cli_common(&c, CLI_LOG_FORMAT, "text"), 1);
	CHECK_INT(c.log.json, 0);
	CHECK_INT(cli_common(&c, CLI_REJECT, "rej.ndjson"), 1);
	CHECK_STR(c.reject_path, "rej.ndjson");
	CHECK_INT(cli_common(&c, CLI_MAX_LINE, "1k"), 1);
	CHECK_INT(c.max_line, 1024);
	CHECK_INT(cli_common(&c, CLI_LINE_BUFFERED, NULL), 1);
	CHECK_INT(c.line_buffered, 1);
	/* The tool's own keys are left to the tool. */
	CHECK_INT(cli_common(&c, 'o', "x"), 0);
	CHECK_INT(cli_common(&c, OPT_JOBS, "4"), 0);
	cli_free(&c);
}

struct common_job {
	int key;
	const char *arg;
};

static void
common_child(const void *p)
{
	const struct common_job *job = p;
	struct cli c;

	if (cli_init(&c, "t", "[FILE]", "", opts_plain,
	             ARRAY_LEN(opts_plain)) != 0)
		_exit(99);
	cli_common(&c, job->key, job->arg);
	cli_free(&c);
}

static void
test_common_bad_values(void)
{
	static const struct common_job jobs[] = {
	        {CLI_MAX_LINE, "1"},  {CLI_MAX_LINE, "1T"},
	        {CLI_MAX_LINE, "x"},  {CLI_LOG_FORMAT, "xml"},
	        {CLI_LOG_FORMAT, ""},
	};
	struct buf out = BUF_INIT, err = BUF_INIT;

	for (size_t i = 0; i < ARRAY_LEN(jobs); i++) {
		buf_clear(&out);
		buf_clear(&err);
		CHECK_INT(in_child(common_child, &jobs[i], &out, &err), 2);
		CHECK(strncmp(err.data, "t: --", 5) == 0);
		CHECK(strstr(err.data, "\nusage: t [FILE]\n") != NULL);
		CHECK_STR(out.data, "");
	}
	buf_free(&out);
	buf_free(&err);
}

int
main(void)
{
	UNIT_RUN(test_next_short_and_long);
	UNIT_RUN(test_next_stops_at_operand);
	UNIT_RUN(test_next_short_verbose);
	UNIT_RUN(test_next_long_verbose);
	UNIT_RUN(test_next_errors);
	UNIT_RUN(test_next_flag_with_value);
	UNIT_RUN(test_help_lists_options);
	UNIT_RUN(test_help_verbose_taken);
	UNIT_RUN(test_help_to_stdout);
	UNIT_RUN(test_parse_long);
	UNIT_RUN(test_parse_long_leading_space);
	UNIT_RUN(test_parse_size);
	UNIT_RUN(test_init_defaults);
	UNIT_RUN(test_common_values);
	UNIT_RUN(test_common_bad_values);
	return UNIT_END();
}
