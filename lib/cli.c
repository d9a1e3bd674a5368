/* cli.c: option tables, help, common flags, number parsing. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ndjson.h"

#ifndef SOAR_VERSION
#define SOAR_VERSION "0.0.0"
#endif

#define DEFAULT_MAX_LINE ((size_t)16 << 20)

static int
table_has_short(const struct cli_opt *opts, size_t n, int key)
{
	for (size_t i = 0; i < n; i++)
		if (opts[i].key == key)
			return 1;
	return 0;
}

int
cli_init(struct cli *c, const char *tool, const char *synopsis,
         const char *summary, const struct cli_opt *opts, size_t nopts)
{
	size_t i, s = 0;

	memset(c, 0, sizeof(*c));
	c->tool = tool;
	c->synopsis = synopsis;
	c->summary = summary;
	c->opts = opts;
	c->nopts = nopts;
	c->max_line = DEFAULT_MAX_LINE;
	c->timeout = 30;
	c->retries = 4;
	log_init(&c->log, tool);
	/* One more for --verbose, one for the terminator. */
	c->longopts = calloc(nopts + 2, sizeof(*c->longopts));
	/* '+' stops at the first operand; ':' lets us word the errors. */
	c->shortopts = calloc(3 * nopts + 4, 1);
	if (c->longopts == NULL || c->shortopts == NULL) {
		cli_free(c);
		return -1;
	}
	c->shortopts[s++] = '+';
	c->shortopts[s++] = ':';
	if (!table_has_short(opts, nopts, 'v'))
		c->shortopts[s++] = 'v';
	for (i = 0; i < nopts; i++) {
		c->longopts[i].name = opts[i].name;
		c->longopts[i].has_arg =
		        opts[i].arg ? required_argument : no_argument;
		c->longopts[i].val = opts[i].key;
		if (opts[i].key < 0x100) {
			c->shortopts[s++] = (char)opts[i].key;
			if (opts[i].arg)
				c->shortopts[s++] = ':';
		}
	}
	c->longopts[nopts].name = "verbose";
	c->longopts[nopts].has_arg = no_argument;
	c->longopts[nopts].val = CLI_VERBOSE;
	return 0;
}

void
cli_free(struct cli *c)
{
	free(c->longopts);
	free(c->shortopts);
	c->longopts = NULL;
	c->shortopts = NULL;
}

static const struct cli_opt *
find_opt(const struct cli *c, int key)
{
	for (size_t i = 0; i < c->nopts; i++)
		if (c->opts[i].key == key)
			return &c->opts[i];
	return NULL;
}

int
cli_next(struct cli *c, int argc, char **argv, const char **arg)
{
	int key;

	opterr = 0;
	key = getopt_long(argc, argv, c->shortopts, c->longopts, NULL);
	*arg = optarg;
	if (key == ':') {
		const struct cli_opt *o = find_opt(c, optopt);

		if (o != NULL)
			cli_usage_error(c, "option --%s needs an argument",
			                o->name);
		cli_usage_error(c, "option needs an argument: %s",
		                argv[optind - 1]);
	}
	if (key == '?') {
		const char *word = argv[optind - 1];

		/* A long option given a value it does not take: getopt sets
		 * optopt to its key, which is no letter the user typed. */
		if (strncmp(word, "--", 2) == 0) {
			if (strchr(word, '=') != NULL)
				cli_usage_error(c, "option takes no value: %s",
				                word);
			cli_usage_error(c, "unknown option: %s", word);
		}
		if (optopt != 0 && optopt < 0x100)
			cli_usage_error(c, "unknown option: -%c", optopt);
		cli_usage_error(c, "unknown option: %s", argv[optind - 1]);
	}
	if (key == 'v' && find_opt(c, 'v') == NULL)
		key = CLI_VERBOSE;
	return key;
}

void
cli_usage_error(const struct cli *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", c->tool);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s %s\nTry '%s --help' for more.\n", c->tool,
	        c->synopsis, c->tool);
	exit(SOAR_EXIT_USAGE);
}

void
cli_help(const struct cli *c, FILE *f)
{
	char left[64];
	int verbose_short = find_opt(c, 'v') == NULL;

	fprintf(f, "usage: %s %s\n\n%s\n\noptions:\n", c->tool, c->synopsis,
	        c->summary);
	for (size_t i = 0; i < c->nopts; i++) {
		const struct cli_opt *o = &c->opts[i];
		int n;

		if (o->key < 0x100)
			n = snprintf(left, sizeof(left), "-%c, --%s%s%s",
			             o->key, o->name, o->arg ? " " : "",
			             o->arg ? o->arg : "");
		else
			n = snprintf(left, sizeof(left), "    --%s%s%s",
			             o->name, o->arg ? " " : "",
			             o->arg ? o->arg : "");
		if (n < 0 || (size_t)n >= sizeof(left))
			fprintf(f, "  %s\n  %-28s %s\n", o->name, "", o->help);
		else if (n > 28)
			fprintf(f, "  %s\n  %-28s %s\n", left, "", o->help);
		else
			fprintf(f, "  %-28s %s\n", left, o->help);
	}
	fprintf(f, "  %-28s %s\n",
	        verbose_short ? "-v, --verbose" : "    --verbose",
	        "more detail on stderr (repeat for more)");
	fprintf(f,
	        "\nexit status: 0 all events handled, 1 some failed or were "
	        "rejected,\n2 usage error, 3 fatal error.  See %s(1).\n",
	        c->tool);
}

int
cli_common(struct cli *c, int key, const char *arg)
{
	switch (key) {
	case CLI_HELP:
		cli_help(c, stdout);
		exit(fflush(stdout) == 0 ? SOAR_EXIT_OK : SOAR_EXIT_FATAL);
	case CLI_VERSION:
		printf("%s (soarutils) %s\n", c->tool, SOAR_VERSION);
		exit(fflush(stdout) == 0 ? SOAR_EXIT_OK : SOAR_EXIT_FATAL);
	case CLI_VERBOSE:
		if (c->log.level < LOG_TRACE)
			c->log.level++;
		return 1;
	case CLI_QUIET:
		c->log.level = LOG_ERROR;
		return 1;
	case CLI_LOG_FORMAT:
		if (strcmp(arg, "json") == 0)
			c->log.json = 1;
		else if (strcmp(arg, "text") == 0)
			c->log.json = 0;
		else
			cli_usage_error(c,
			                "--log-format: expected text or "
			                "json, got '%s'",
			                arg);
		return 1;
	case CLI_REJECT:
		c->reject_path = arg;
		return 1;
	case CLI_MAX_LINE:
		if (cli_parse_size(arg, &c->max_line) < 0 || c->max_line < 2 ||
		    c->max_line > NDJSON_MAX_LINE)
			cli_usage_error(c, "--max-line: bad size '%s'", arg);
		return 1;
	case CLI_LINE_BUFFERED:
		c->line_buffered = 1;
		return 1;
	case CLI_RATE:
		if (cli_parse_rate(arg, &c->rate) < 0)
			cli_usage_error(c,
			                "--rate: expected N/s, N/m or 0, got "
			                "'%s'",
			                arg);
		return 1;
	case CLI_TIMEOUT:
		if (cli_parse_duration(arg, &c->timeout) < 0 || c->timeout < 1)
			cli_usage_error(c, "--timeout: bad duration '%s'", arg);
		return 1;
	case CLI_RETRIES:
		if (cli_parse_long(arg, 0, 20, &c->retries) < 0)
			cli_usage_error(c, "--retries: 0 to 20");
		return 1;
	default:
		return 0;
	}
}

int
cli_parse_long(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	/* strtoll would skip leading blanks and take a '+'. */
	if (s == NULL || !(*s == '-' || (*s >= '0' && *s <= '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
cli_parse_size(const char *s, size_t *out)
{
	unsigned long long v, mul = 1;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mul = 1ULL << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1ULL << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1ULL << 30;
		end++;
		break;
	default:
		return -1;
	}
	if (*end != '\0' || v > SIZE_MAX / mul)
		return -1;
	*out = (size_t)(v * mul);
	return 0;
}

int
cli_parse_duration(const char *s, long *secs)
{
	char *end;
	long v, mul = 1;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	default:
		return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (v > LONG_MAX / mul)
		return -1;
	*secs = v * mul;
	return 0;
}

int
cli_parse_rate(const char *s, double *per_sec)
{
	char *end;
	double v, per = 1;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || v < 0)
		return -1;
	if (*end == '/') {
		if (strcmp(end + 1, "s") == 0)
			per = 1;
		else if (strcmp(end + 1, "m") == 0)
			per = 60;
		else if (strcmp(end + 1, "h") == 0)
			per = 3600;
		else
			return -1;
	} else if (*end != '\0')
		return -1;
	*per_sec = v / per;
	return 0;
}

void
cli_check_stdin(const struct cli *c)
{
	struct stat st;

	if (fstat(0, &st) == 0 && S_ISDIR(st.st_mode)) {
		log_error(&c->log, "standard input is a directory");
		exit(SOAR_EXIT_USAGE);
	}
}

void
cli_hygiene(void)
{
	int fd;

	/* A tool started with a closed fd 1 must not write its output into
	 * whatever file it opens next; park /dev/null there instead. */
	for (fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
			int n = open("/dev/null",
			             fd == 0 ? O_RDONLY : O_WRONLY);

			if (n != fd && n >= 0)
				close(n);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit (ulimit -f) makes a write fail with EFBIG,
	 * reported like any write error, instead of killing the tool with
	 * events in hand. */
	signal(SIGXFSZ, SIG_IGN);
}

/* Parses an RFC 3339 time (Z or an offset; fraction optional) into
 * milliseconds since the epoch.  Returns 0 or -1. */
int
cli_parse_time_ms(const char *t, long long *ms)
{
	struct tm tm = {0};
	int n = 0, frac_ms = 0, digits = 0;
	long off = 0;
	const char *p;

	if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
	           &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19)
		return -1;
	p = t + n;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				frac_ms = frac_ms * 10 + (*p - '0');
		if (digits == 0)
			return -1;
		for (int i = digits; i < 3; i++)
			frac_ms *= 10;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int h, m;

		if (sscanf(p + 1, "%2d:%2d", &h, &m) != 2)
			return -1;
		off = (h * 60L + m) * 60L * (*p == '+' ? 1 : -1);
		p += 6;
	} else
		return -1;
	if (*p != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ms = ((long long)timegm(&tm) - off) * 1000 + frac_ms;
	return 0;
}

void
cli_format_time_ms(long long ms, char out[40])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 40 - n, ".%03uZ", (unsigned)(ms % 1000));
}

long long
cli_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
