/*
 * cli.h: the command line every tool shares.
 *
 * Each tool declares one table of struct cli_opt; getopt_long's tables,
 * --help and the usage line are all generated from it, and tests check that
 * the man page and the shell completions list the same options.  Exit codes
 * are the four of DESIGN.md §3 and are only ever used through these names.
 */
#ifndef SOAR_CLI_H
#define SOAR_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

enum soar_exit {
	SOAR_EXIT_OK = 0,      /* every event handled */
	SOAR_EXIT_PARTIAL = 1, /* some events failed or were rejected */
	SOAR_EXIT_USAGE = 2,   /* usage or configuration error, nothing read */
	SOAR_EXIT_FATAL = 3,   /* fatal error mid-stream */
};

/* Keys of the options that cli_common() handles for every tool. */
enum {
	CLI_HELP = 'h',
	CLI_QUIET = 'q',
	CLI_VERSION = 0x100,
	CLI_VERBOSE,
	CLI_LOG_FORMAT,
	CLI_REJECT,
	CLI_MAX_LINE,
	CLI_LINE_BUFFERED,
	CLI_RATE,
	CLI_TIMEOUT,
	CLI_RETRIES,
	CLI_TOOL_KEYS = 0x200, /* first key free for a tool's own options */
};

struct cli_opt {
	const char *name; /* long name */
	int key;          /* short letter, or a key >= 0x100 for long only */
	const char *arg;  /* argument name shown in help; NULL for a flag */
	const char *help; /* one line */
};

#define CLI_OPT_HELP                                                           \
	{                                                                      \
		"help", CLI_HELP, NULL, "show this help and exit"              \
	}
#define CLI_OPT_VERSION                                                        \
	{                                                                      \
		"version", CLI_VERSION, NULL, "show the version and exit"      \
	}
#define CLI_OPT_QUIET                                                          \
	{                                                                      \
		"quiet", CLI_QUIET, NULL, "print errors only"                  \
	}
#define CLI_OPT_LOG_FORMAT                                                     \
	{                                                                      \
		"log-format", CLI_LOG_FORMAT, "text|json",                     \
		        "format of stderr logs"                                \
	}
#define CLI_OPT_REJECT                                                         \
	{                                                                      \
		"reject", CLI_REJECT, "FILE",                                  \
		        "append input lines that are not JSON objects to FILE" \
	}
#define CLI_OPT_MAX_LINE                                                       \
	{                                                                      \
		"max-line", CLI_MAX_LINE, "SIZE",                              \
		        "longest accepted input line (default 16M)"            \
	}
#define CLI_OPT_LINE_BUFFERED                                                  \
	{                                                                      \
		"line-buffered", CLI_LINE_BUFFERED, NULL,                      \
		        "flush every output line at once"                      \
	}

/* The network options: request rate, attempt timeout and retries, kept in
 * struct cli (the tool sets its defaults before parsing). */
#define CLI_OPT_RATE(help)                                                     \
	{                                                                      \
		"rate", CLI_RATE, "N/s|N/m", help                              \
	}
#define CLI_OPT_TIMEOUT                                                        \
	{                                                                      \
		"timeout", CLI_TIMEOUT, "SEC",                                 \
		        "seconds per attempt (default 30)"                     \
	}
#define CLI_OPT_RETRIES                                                        \
	{                                                                      \
		"retries", CLI_RETRIES, "N", "retries per request (default 4)" \
	}

struct cli {
	const char *tool;     /* program name */
	const char *synopsis; /* usage line after the name */
	const char *summary;  /* what the tool does, one line */
	const struct cli_opt *opts;
	size_t nopts;
	struct log log;
	/* Common settings, filled by cli_common(). */
	const char *reject_path;
	size_t max_line;
	int line_buffered;
	double rate;       /* --rate, requests per second; 0: none */
	long timeout;      /* --timeout, seconds per attempt */
	long long retries; /* --retries */
	/* Generated getopt tables. */
	struct option *longopts;
	char *shortopts;
};

/* Generates the getopt tables for opts.  The verbose option is -v unless
 * the table gives 'v' to another option, then --verbose only.  Returns 0, or
 * -1 on ENOMEM. */
int cli_init(struct cli *c, const char *tool, const char *synopsis,
             const char *summary, const struct cli_opt *opts, size_t nopts);

/* Frees the generated tables (not c itself). */
void cli_free(struct cli *c);

/* Returns the next option key (getopt_long's result; -1 at the end, '?' for
 * an unknown option, which has already been reported) and its argument. */
int cli_next(struct cli *c, int argc, char **argv, const char **arg);

/* Handles the options every tool has.  Returns 1 when key was one of them,
 * 0 when it belongs to the tool, or exits 0 for --help/--version and 2 on a
 * bad value.  Only main()'s helpers call this, so exiting is allowed. */
int cli_common(struct cli *c, int key, const char *arg);

/* Prints "usage: tool synopsis" and a hint on stderr and exits 2. */
void cli_usage_error(const struct cli *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3), noreturn));

/* Prints the full help, generated from the option table, on f. */
void cli_help(const struct cli *c, FILE *f);

/* Parses a decimal integer within [min, max].  Returns 0 or -1. */
int cli_parse_long(const char *s, long long min, long long max, long long *out);

/* Parses a size with an optional K, M or G suffix (powers of 1024).
 * Returns 0 or -1. */
int cli_parse_size(const char *s, size_t *out);

/* Parses a duration: a number with an optional s, m, h or d suffix
 * (seconds when none).  Returns 0 with *secs set, or -1. */
int cli_parse_duration(const char *s, long *secs);

/* Parses a rate "N/s", "N/m" or "N/h" (or a plain N per second; "0" for
 * none) into requests per second.  Returns 0 or -1. */
int cli_parse_rate(const char *s, double *per_sec);

/* Exits 2 with a message when standard input is a directory: nothing
 * could be read from it, and that is a usage error, not a failure. */
void cli_check_stdin(const struct cli *c);

/* Process hygiene for main(): makes sure fds 0-2 are open and turns SIGPIPE
 * into EPIPE so a closed pipe is a write error the tool can handle. */
void cli_hygiene(void);

/* Parses an RFC 3339 time (Z or an offset; fraction optional) into
 * milliseconds since the epoch.  Returns 0 or -1. */
int cli_parse_time_ms(const char *t, long long *ms);

/* Writes ms (>= 0) as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out[40]. */
void cli_format_time_ms(long long ms, char out[40]);

/* The wall clock in milliseconds since the epoch. */
long long cli_now_ms(void);

#endif
