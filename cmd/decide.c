/* decide: filters events, sets fields and adds a "decision" by jq rules. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jv.h>

#include "lib/cli.h"
#include "lib/event.h"
#include "lib/jqpath.h"
#include "lib/jqx.h"
#include "lib/json.h"
#include "lib/ndjson.h"
#include "lib/par.h"
#include "lib/rules.h"

#define MAX_EXPRS 256

enum {
	OPT_WHERE = 'w',
	OPT_INVERT = 'v',
	OPT_SET = 's',
	OPT_RULE = 'r',
	OPT_RULES = 'f',
	OPT_JOBS = 'j',
	OPT_DEFAULT = CLI_TOOL_KEYS,
	OPT_ROUTE,
	OPT_WHEN,
	OPT_AS,
	OPT_ARG,
	OPT_ARGJSON,
};

static const struct cli_opt options[] = {
        {"where", OPT_WHERE, "EXPR", "keep only events where EXPR is true"},
        {"invert", OPT_INVERT, NULL, "keep the events --where would drop"},
        {"set", OPT_SET, "PATH=EXPR", "set the field at PATH to EXPR"},
        {"rule", OPT_RULE, "OUTCOME=EXPR", "add a rule (first true wins)"},
        {"rules", OPT_RULES, "FILE", "read rules from FILE"},
        {"default", OPT_DEFAULT, "OUTCOME", "outcome when no rule is true"},
        {"route", OPT_ROUTE, "OUTCOME=FILE", "write OUTCOME's events to FILE"},
        {"when", OPT_WHEN, "EXPR", "act only on events where EXPR is true"},
        {"as", OPT_AS, "KEY", "name of the added key (default decision)"},
        {"arg", OPT_ARG, "NAME VALUE", "bind $NAME to the string VALUE"},
        {"argjson", OPT_ARGJSON, "NAME JSON", "bind $NAME to a JSON value"},
        {"jobs", OPT_JOBS, "N", "worker threads (default: one per core)"},
        CLI_OPT_REJECT,
        CLI_OPT_MAX_LINE,
        CLI_OPT_LINE_BUFFERED,
        CLI_OPT_LOG_FORMAT,
        CLI_OPT_QUIET,
        CLI_OPT_HELP,
        CLI_OPT_VERSION,
};

struct set {
	const char *path;
	int expr;
};

struct opts {
	struct cli cli;
	int where[MAX_EXPRS], nwhere, invert, when;
	struct set sets[MAX_EXPRS];
	int nsets;
	struct rules rules;
	int first_rule; /* jqx index of rules.v[0] */
	const char *dflt, *key;
	const char *route_outcome[PAR_MAX_ROUTES];
	int route_sink[PAR_MAX_ROUTES];
	const char *sink_path[PAR_MAX_ROUTES];
	size_t nroutes, nsinks;
	long long jobs;
	struct jqx *jq;
	struct jqpath *paths;
};

/* The per-thread state of one worker. */
struct worker {
	const struct opts *o;
	struct jqx *jq;
	struct buf line[2];
};

static int
add_expr(struct opts *o, const char *expr, const char *origin)
{
	int i;

	if (o->jq == NULL && (o->jq = jqx_new()) == NULL)
		return -1;
	if ((i = jqx_add(o->jq, expr, origin)) < 0)
		return -1;
	if (jqpath_add_program(o->paths, expr) < 0)
		return -1;
	return i;
}

static void
parse_args(struct opts *o, int argc, char **argv, struct buf *err)
{
	struct cli *c = &o->cli;
	const char *arg, *eq;
	int key;
	jv v;

	while ((key = cli_next(c, argc, argv, &arg)) != -1) {
		if (cli_common(c, key, arg))
			continue;
		switch (key) {
		case OPT_WHERE:
		case OPT_WHEN:
			if (o->nwhere >= MAX_EXPRS)
				cli_usage_error(c, "too many expressions");
			int i = add_expr(o, arg,
			                 key == OPT_WHERE ? "--where"
			                                  : "--when");
			if (key == OPT_WHEN) {
				if (o->when >= 0)
					cli_usage_error(c,
					                "--when given twice");
				o->when = i;
			} else
				o->where[o->nwhere++] = i;
			break;
		case OPT_INVERT:
			o->invert = 1;
			break;
		case OPT_SET:
			eq = strchr(arg, '=');
			if (eq == NULL || eq == arg || o->nsets >= MAX_EXPRS)
				cli_usage_error(c,
				                "--set '%s': expected "
				                "PATH=EXPR",
				                arg);
			o->sets[o->nsets].path =
			        strndup(arg, (size_t)(eq - arg));
			o->sets[o->nsets++].expr = add_expr(o, eq + 1, "--set");
			break;
		case OPT_RULE:
			if (rules_add_arg(&o->rules, arg, err) < 0)
				cli_usage_error(c, "%s", err->data);
			break;
		case OPT_RULES:
			if (rules_load_file(&o->rules, arg, err) < 0)
				cli_usage_error(c, "%s", err->data);
			break;
		case OPT_DEFAULT:
			if (!rules_outcome_ok(arg, strlen(arg)))
				cli_usage_error(c,
				                "--default: bad outcome "
				                "'%s'",
				                arg);
			o->dflt = arg;
			break;
		case OPT_ROUTE:
			eq = strchr(arg, '=');
			if (eq == NULL ||
			    !rules_outcome_ok(arg, (size_t)(eq - arg)) ||
			    eq[1] == '\0' || o->nroutes >= PAR_MAX_ROUTES)
				cli_usage_error(c,
				                "--route '%s': expected "
				                "OUTCOME=FILE",
				                arg);
			o->route_outcome[o->nroutes] =
			        strndup(arg, (size_t)(eq - arg));
			o->sink_path[o->nroutes] = eq + 1;
			o->nroutes++;
			break;
		case OPT_AS:
			if (*arg == '\0')
				cli_usage_error(c, "--as: empty key");
			o->key = arg;
			break;
		case OPT_ARG:
		case OPT_ARGJSON:
			/* jq's two-argument form: the value is the next word.
			 */
			if (optind >= argc)
				cli_usage_error(
				        c, "--%s needs NAME and a value",
				        key == OPT_ARG ? "arg" : "argjson");
			v = key == OPT_ARG ? jv_string(argv[optind])
			                   : jv_parse(argv[optind]);
			if (!jv_is_valid(v)) {
				jv_free(v);
				cli_usage_error(c,
				                "--argjson %s: invalid JSON "
				                "text",
				                arg);
			}
			if (o->jq == NULL && (o->jq = jqx_new()) == NULL)
				cli_usage_error(c, "out of memory");
			jqx_arg(o->jq, arg, v);
			optind++;
			break;
		case OPT_JOBS:
			if (cli_parse_long(arg, 1, 64, &o->jobs) < 0)
				cli_usage_error(c,
				                "--jobs: expected 1 to 64, "
				                "got '%s'",
				                arg);
			break;
		default:
			cli_usage_error(c, "unhandled option");
		}
	}
	if (optind < argc)
		cli_usage_error(c,
		                "unexpected argument '%s' (events are read "
		                "from standard input)",
		                argv[optind]);
	if (o->invert && o->nwhere == 0)
		cli_usage_error(c, "--invert needs --where");
}

/* Passes the event on with "decision": {"error": ...} and counts it. */
static int
fail(struct worker *w, const char *line, size_t n, size_t lineno,
     const struct soar_error *err, const char *rule, struct par_out *out)
{
	const struct opts *o = w->o;
	struct buf *dst = &w->line[line == w->line[0].data ? 1 : 0];
	char *id = event_get_string(line, n, "alert.id");
	jv extra = rule ? jv_object_set(jv_object(), jv_string("rule"),
	                                jv_string(rule))
	                : jv_null();
	struct buf val = BUF_INIT;
	int rc;

	log_fmt(&o->cli.log, &out->log, LOG_ERROR, lineno, id, "%s",
	        err->message);
	free(id);
	out->nfailed++;
	rc = event_dump(event_error_jv(err, extra), &val);
	if (rc == 0)
		rc = event_set_key(line, n, o->key, val.data, val.len, dst,
		                   NULL);
	buf_free(&val);
	if (rc < 0)
		return -1;
	buf_append(&out->out, dst->data, dst->len);
	return buf_putc(&out->out, '\n');
}

/* Sets one field: the first output of the expression, spliced in. */
static int
apply_set(struct worker *w, const struct set *s, jv ev, const char **line,
          size_t *n, struct soar_error *err)
{
	struct buf *dst = &w->line[*line == w->line[0].data ? 1 : 0];
	struct buf val = BUF_INIT;
	jv v;
	int r = jqx_first(w->jq, s->expr, ev, &v, err);

	if (r <= 0)
		return r;
	r = event_dump(v, &val) < 0 || event_set(*line, *n, s->path, val.data,
	                                         val.len, dst, err) < 0
	            ? -1
	            : 1;
	buf_free(&val);
	if (r > 0) {
		*line = dst->data;
		*n = dst->len;
	}
	return r;
}

/* Runs the rules; returns the index of the first true one, -1 when none
 * is, -2 on an error (*failed names the rule). */
static int
first_rule(struct worker *w, jv ev, struct soar_error *err, int *failed)
{
	const struct opts *o = w->o;

	for (size_t i = 0; i < o->rules.n; i++) {
		int t = jqx_truthy(w->jq, o->first_rule + (int)i, jv_copy(ev),
		                   err);

		if (t != 0) {
			*failed = (int)i;
			jv_free(ev);
			return t < 0 ? -2 : (int)i;
		}
	}
	jv_free(ev);
	return -1;
}

static int
process_event(struct worker *w, const char *raw, size_t rawlen,
              const char *line, size_t n, size_t lineno, struct par_out *out)
{
	const struct opts *o = w->o;
	struct soar_error err = {0};
	struct json_err je;
	struct buf *dst;
	const char *rule = NULL, *outcome = NULL;
	int t = 1, sink = -1, r;
	jv ev = jv_null();

	if (json_check_object(line, n, &je) < 0) {
		log_fmt(&o->cli.log, &out->log, LOG_ERROR, lineno, NULL,
		        "column %zu: %s; rejected", je.off + 1, je.msg);
		out->nfailed++;
		buf_append(&out->reject, raw, rawlen);
		return buf_putc(&out->reject, '\n');
	}
	if (w->jq != NULL) {
		ev = event_parse(line, n, o->paths);
		if (!jv_is_valid(ev)) {
			jv msg = jv_invalid_get_msg(ev);

			log_fmt(&o->cli.log, &out->log, LOG_ERROR, lineno, NULL,
			        "%s; rejected",
			        jv_get_kind(msg) == JV_KIND_STRING
			                ? jv_string_value(msg)
			                : "unparseable");
			jv_free(msg);
			out->nfailed++;
			buf_append(&out->reject, raw, rawlen);
			return buf_putc(&out->reject, '\n');
		}
	}
	if (o->when >= 0 &&
	    (t = jqx_truthy(w->jq, o->when, jv_copy(ev), &err)) <= 0) {
		jv_free(ev);
		if (t < 0)
			return fail(w, line, n, lineno, &err, NULL, out);
		buf_append(&out->out, line, n);
		return buf_putc(&out->out, '\n');
	}
	for (int i = 0; i < o->nwhere && t == 1; i++)
		t = jqx_truthy(w->jq, o->where[i], jv_copy(ev), &err);
	if (t < 0) {
		jv_free(ev);
		return fail(w, line, n, lineno, &err, NULL, out);
	}
	if (o->nwhere > 0 && t == o->invert) {
		jv_free(ev);
		return 0;
	}
	for (int i = 0; i < o->nsets; i++) {
		r = apply_set(w, &o->sets[i], jv_copy(ev), &line, &n, &err);
		if (r < 0) {
			jv_free(ev);
			return fail(w, line, n, lineno, &err, NULL, out);
		}
		if (r > 0 && (i + 1 < o->nsets || o->rules.n > 0)) {
			jv_free(ev);
			ev = event_parse(line, n, o->paths);
		}
	}
	if (o->rules.n > 0) {
		int failed = 0;

		r = first_rule(w, ev, &err, &failed);
		if (r == -2)
			return fail(w, line, n, lineno, &err,
			            o->rules.v[failed].origin, out);
		if (r >= 0) {
			outcome = o->rules.v[r].outcome;
			rule = o->rules.v[r].origin;
		}
	} else
		jv_free(ev);
	if (outcome == NULL && o->dflt != NULL) {
		outcome = o->dflt;
		rule = "default";
	}
	if (o->rules.n > 0 || o->dflt != NULL) {
		jv d = jv_object();
		struct buf val = BUF_INIT;

		d = jv_object_set(d, jv_string("outcome"),
		                  outcome ? jv_string(outcome) : jv_null());
		d = jv_object_set(d, jv_string("rule"),
		                  rule ? jv_string(rule) : jv_null());
		dst = &w->line[line == w->line[0].data ? 1 : 0];
		r = event_dump(d, &val) < 0 ||
		    event_set_key(line, n, o->key, val.data, val.len, dst,
		                  &err) < 0;
		buf_free(&val);
		if (r)
			return -1;
		line = dst->data;
		n = dst->len;
	}
	for (size_t i = 0; outcome != NULL && i < o->nroutes; i++)
		if (strcmp(o->route_outcome[i], outcome) == 0)
			sink = o->route_sink[i];
	dst = sink >= 0 ? &out->routes[sink] : &out->out;
	buf_append(dst, line, n);
	return buf_putc(dst, '\n');
}

static int
process_batch(void *ctx, const char *batch, size_t len, size_t first,
              struct par_out *out)
{
	struct worker *w = ctx;
	const char *p = batch, *end = batch + len;

	for (size_t lineno = first; p < end; lineno++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *raw = p, *line = p;
		size_t n = (size_t)(nl - p), rawlen = n;

		p = nl + 1;
		if (!ndjson_trim(&line, &n))
			continue;
		if (process_event(w, raw, rawlen, line, n, lineno, out) < 0) {
			log_fmt(&w->o->cli.log, &out->log, LOG_ERROR, lineno,
			        NULL, "out of memory");
			return -1;
		}
	}
	return 0;
}

static void *
worker_new(void *ctx0, int i)
{
	const struct worker *w0 = ctx0;
	struct worker *w = calloc(1, sizeof(*w));
	struct buf msgs = BUF_INIT;

	(void)i;
	if (w == NULL)
		return NULL;
	w->o = w0->o;
	if (w0->jq != NULL && (w->jq = jqx_clone(w0->jq, &msgs)) == NULL) {
		free(w);
		w = NULL;
	}
	buf_free(&msgs);
	return w;
}

static void
worker_free(void *ctx)
{
	struct worker *w = ctx;

	if (w == NULL)
		return;
	if (w->jq != w->o->jq)
		jqx_free(w->jq);
	buf_free(&w->line[0]);
	buf_free(&w->line[1]);
	free(w);
}

/* Opens the reject file and the route files (one writer per path). */
static int
open_outputs(struct opts *o, int *reject_fd, struct ndjson_writer *sinks,
             const char **names)
{
	const struct cli *c = &o->cli;

	*reject_fd = -1;
	if (c->reject_path != NULL &&
	    (*reject_fd = open(c->reject_path,
	                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	                       0600)) < 0) {
		log_error(&c->log, "--reject %s: %s", c->reject_path,
		          strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < o->nroutes; i++) {
		size_t k;
		int fd;

		for (k = 0; k < o->nsinks; k++)
			if (strcmp(names[k], o->sink_path[i]) == 0)
				break;
		o->route_sink[i] = (int)k;
		if (k < o->nsinks)
			continue;
		fd = open(o->sink_path[i],
		          O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (fd < 0) {
			log_error(&c->log, "--route %s: %s", o->sink_path[i],
			          strerror(errno));
			return -1;
		}
		ndjson_writer_init(&sinks[k], fd, c->line_buffered);
		names[k] = o->sink_path[i];
		o->nsinks++;
	}
	return 0;
}

/* Compiles the expressions; on failure shows them and exits 2. */
static void
compile(struct opts *o)
{
	struct buf msgs = BUF_INIT;
	const char *env = getenv("SOARUTILS_PROJECTION");

	for (size_t i = 0; i < o->rules.n; i++) {
		int k = add_expr(o, o->rules.v[i].expr, o->rules.v[i].origin);

		if (i == 0)
			o->first_rule = k;
	}
	if (env != NULL && strcmp(env, "0") == 0)
		jqpath_add_whole(o->paths);
	if (o->jq == NULL || jqx_count(o->jq) == 0)
		return;
	if (jqx_compile(o->jq, &msgs) < 0) {
		log_error(&o->cli.log, "cannot compile the jq program:");
		log_flush_buf(&o->cli.log, &msgs);
		exit(SOAR_EXIT_USAGE);
	}
	if (log_enabled(&o->cli.log, LOG_DEBUG)) {
		char *d = jqpath_dump(o->paths);

		log_debug(&o->cli.log, "events are parsed for %s", d ? d : "?");
		free(d);
	}
}

int
main(int argc, char *argv[])
{
	struct opts o = {.when = -1, .key = "decision"};
	struct ndjson_writer out, sinks[PAR_MAX_ROUTES];
	const char *names[PAR_MAX_ROUTES];
	struct ndjson_reader *r = NULL;
	struct buf err = BUF_INIT;
	struct par_result res;
	struct worker w0 = {.o = &o};
	int status = SOAR_EXIT_FATAL, reject_fd = -1;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	cli_hygiene();
	if (cli_init(&o.cli, "decide",
	             "[-v] [-w EXPR] [-s PATH=EXPR] [-r OUTCOME=EXPR] "
	             "[-f FILE] [--route OUTCOME=FILE] [options]",
	             "Filter events, set fields and add a decision, by jq "
	             "rules.",
	             options, sizeof(options) / sizeof(options[0])) < 0 ||
	    (o.paths = jqpath_new()) == NULL)
		return SOAR_EXIT_FATAL;
	o.jobs = ncpu < 1 ? 1 : ncpu > 8 ? 8 : ncpu;
	parse_args(&o, argc, argv, &err);
	cli_check_stdin(&o.cli);
	compile(&o);
	w0.jq = o.jq;
	if (open_outputs(&o, &reject_fd, sinks, names) < 0) {
		status = SOAR_EXIT_USAGE;
		goto out;
	}
	if ((r = ndjson_reader_new(0, o.cli.max_line)) == NULL)
		goto out;
	ndjson_writer_init(&out, 1, o.cli.line_buffered);
	struct par_config cfg = {
	        .nthreads = o.jq ? (int)o.jobs : 1,
	        .batch = 256 * 1024,
	        .nroutes = o.nsinks,
	        .fn = process_batch,
	        .ctx0 = &w0,
	        .ctx_new = worker_new,
	        .ctx_free = worker_free,
	};
	struct par_sinks sk = {&out, sinks, names, reject_fd, &o.cli.log};

	par_run(r, &cfg, &sk, &res);
	if (res.fatal)
		status = SOAR_EXIT_FATAL;
	else
		status = res.nfailed ? SOAR_EXIT_PARTIAL : SOAR_EXIT_OK;
	buf_free(&out.buf);
	for (size_t i = 0; i < o.nsinks; i++) {
		if (ndjson_writer_close(&sinks[i]) != 0 && !res.fatal)
			status = SOAR_EXIT_FATAL;
		if (close(sinks[i].fd) < 0)
			status = SOAR_EXIT_FATAL;
	}
out:
	if (reject_fd >= 0 && close(reject_fd) < 0)
		status = SOAR_EXIT_FATAL;
	ndjson_reader_free(r);
	buf_free(&w0.line[0]);
	buf_free(&w0.line[1]);
	jqx_free(o.jq);
	jqpath_free(o.paths);
	rules_free(&o.rules);
	for (int i = 0; i < o.nsets; i++)
		free((char *)o.sets[i].path);
	for (size_t i = 0; i < o.nroutes; i++)
		free((char *)o.route_outcome[i]);
	buf_free(&err);
	cli_free(&o.cli);
	return status;
}
