/* es-fetch: Elastic Security alerts as events, or "elastic.matches" added. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jv.h>

#include "lib/cli.h"
#include "lib/es.h"
#include "lib/event.h"
#include "lib/http.h"
#include "lib/indicator.h"
#include "lib/json.h"
#include "lib/ndjson.h"
#include "lib/state.h"

enum {
	OPT_SEVERITY = 's',
	OPT_JOBS = 'j',
	OPT_ES = CLI_TOOL_KEYS,
	OPT_SPACE,
	OPT_STATUS,
	OPT_RULE,
	OPT_QUERY,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_BB,
	OPT_STATE,
	OPT_OVERLAP,
	OPT_LIMIT,
	OPT_PAGE_SIZE,
	OPT_RELATED,
	OPT_WINDOW,
	OPT_TOP,
};

static const struct cli_opt options[] = {
        {"es", OPT_ES, NULL,
         "search Elasticsearch (ES_URL) instead of Kibana's detection engine"},
        {"space", OPT_SPACE, "SPACE", "Kibana space (default: default)"},
        {"status", OPT_STATUS, "LIST",
         "workflow statuses (default open; 'any' for all)"},
        {"severity", OPT_SEVERITY, "LIST", "severities, e.g. high,critical"},
        {"rule", OPT_RULE, "NAME", "alerts of this rule only"},
        {"query", OPT_QUERY, "JSON|@FILE", "an ES query the alerts must match"},
        {"since", OPT_SINCE, "DUR|TIME", "alerts since (15m, 2d or RFC 3339)"},
        {"until", OPT_UNTIL, "DUR|TIME", "alerts up to (15m ago, or RFC 3339)"},
        {"building-blocks", OPT_BB, NULL, "include building block alerts"},
        {"state", OPT_STATE, "FILE", "cursor file: only new alerts"},
        {"overlap", OPT_OVERLAP, "DUR",
         "look back this far for late alerts (default 5m)"},
        {"limit", OPT_LIMIT, "N", "write at most N alerts"},
        {"page-size", OPT_PAGE_SIZE, "N", "alerts per request (1-10000)"},
        {"related", OPT_RELATED, NULL,
         "add alerts related to each event on stdin as elastic.matches"},
        {"window", OPT_WINDOW, "DUR",
         "with --related: this far around the event (default 24h)"},
        {"top", OPT_TOP, "N", "with --related: alerts listed (default 5)"},
        {"jobs", OPT_JOBS, "N", "with --related: requests in flight (4)"},
        CLI_OPT_RATE("request rate (default: none)"),
        CLI_OPT_TIMEOUT,
        CLI_OPT_RETRIES,
        CLI_OPT_REJECT,
        CLI_OPT_MAX_LINE,
        CLI_OPT_LINE_BUFFERED,
        CLI_OPT_LOG_FORMAT,
        CLI_OPT_QUIET,
        CLI_OPT_HELP,
        CLI_OPT_VERSION,
};

#define STATE_VERSION 1
#define WINDOW_EVENTS 1024 /* --related: events held for order */
#define MAX_TERMS     100  /* --related: values per field asked for */
/* Kibana's request payload limit is 1 MB: the ids left out by value stay
 * well below it (64-byte uuids). */
#define MAX_EDGE_IDS 8000

/* The fields of an alert the summary reads (es_alert), found in one pass. */
static const char *const summary_paths[] = {
        "@timestamp",
        "kibana.alert.rule.name",
        "kibana.alert.severity",
        "kibana.alert.rule.severity",
        "kibana.alert.risk_score",
        "kibana.alert.rule.risk_score",
        "kibana.alert.workflow_status",
};
#define NSUMMARY (sizeof(summary_paths) / sizeof(summary_paths[0]))

struct ef {
	struct cli cli;
	int direct, related, bb;
	const char *space, *status, *severity, *rule, *state_path;
	long long since_ms, until_ms; /* -1: not given */
	long overlap, window;
	long long limit, page_size, top, jobs;
	long long now_ms;
	jv query; /* --query, parsed; invalid when not given */
	struct es es;
	struct http *http;
	struct ndjson_writer out;
	struct buf url, line, val;
	size_t emitted;
	size_t nbad; /* alerts that could not be written (exit 1) */
	int fatal, epipe, out_failed, auth_logged;
};

/* A finished request, copied out of lib/http's callback. */
struct reply {
	long status;
	struct buf body;
	struct soar_error err;
};

static void
time_arg(struct ef *f, const char *opt, const char *arg, long long *ms)
{
	long secs;

	if (cli_parse_duration(arg, &secs) == 0)
		*ms = f->now_ms - secs * 1000LL;
	else if (cli_parse_time_ms(arg, ms) < 0)
		cli_usage_error(&f->cli,
		                "%s: expected a duration (15m, 2d) or an RFC "
		                "3339 time, got '%s'",
		                opt, arg);
}

/* Checks that every item of a comma-separated list is one of words. */
static void
list_arg(struct ef *f, const char *opt, const char *arg,
         const char *const *words)
{
	const char *p = arg;

	if (strcmp(arg, "any") == 0)
		return;
	for (;;) {
		size_t n = strcspn(p, ","), i;

		for (i = 0; words[i] != NULL; i++)
			if (strlen(words[i]) == n &&
			    strncasecmp(words[i], p, n) == 0)
				break;
		if (words[i] == NULL)
			cli_usage_error(&f->cli, "%s: unknown value '%.*s'",
			                opt, (int)n, p);
		if (p[n] == '\0')
			return;
		p += n + 1;
	}
}

/* --query JSON or @FILE: an Elasticsearch query object. */
static jv
read_query(struct ef *f, const char *arg)
{
	struct buf b = BUF_INIT;
	char text[256];
	jv v, msg;

	if (arg[0] == '@') {
		FILE *fp = fopen(arg + 1, "r");
		char chunk[4096];
		size_t n;

		if (fp == NULL) {
			cli_usage_error(&f->cli, "--query %s: %s", arg + 1,
			                strerror(errno));
		} else {
			while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0 &&
			       b.len < (1 << 20))
				buf_append(&b, chunk, n);
			fclose(fp);
		}
		v = jv_parse_sized(b.data ? b.data : "", (int)b.len);
		buf_free(&b);
	} else
		v = jv_parse(arg);
	if (jv_get_kind(v) == JV_KIND_OBJECT)
		return v;
	msg = jv_is_valid(v) ? jv_string("not a JSON object")
	                     : jv_invalid_get_msg(jv_copy(v));
	snprintf(text, sizeof(text), "%s",
	         jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg)
	                                            : "not JSON");
	jv_free(msg);
	jv_free(v);
	cli_usage_error(&f->cli, "--query: %s", text);
}

static void
parse_args(struct ef *f, int argc, char **argv)
{
	static const char *const statuses[] = {"open", "acknowledged",
	                                       "in-progress", "closed", NULL};
	static const char *const severities[] = {"low", "medium", "high",
	                                         "critical", NULL};
	struct cli *c = &f->cli;
	const char *arg, *query = NULL;
	int key, fetch_only = 0;

	while ((key = cli_next(c, argc, argv, &arg)) != -1) {
		if (cli_common(c, key, arg))
			continue;
		switch (key) {
		case OPT_ES:
			f->direct = 1;
			break;
		case OPT_SPACE:
			f->space = arg;
			break;
		case OPT_STATUS:
			list_arg(f, "--status", arg, statuses);
			f->status = arg;
			break;
		case OPT_SEVERITY:
			list_arg(f, "--severity", arg, severities);
			f->severity = arg;
			break;
		case OPT_RULE:
			f->rule = arg;
			break;
		case OPT_QUERY:
			query = arg;
			break;
		case OPT_SINCE:
		case OPT_UNTIL:
			time_arg(f, key == OPT_SINCE ? "--since" : "--until",
			         arg,
			         key == OPT_SINCE ? &f->since_ms
			                          : &f->until_ms);
			fetch_only = 1;
			break;
		case OPT_BB:
			f->bb = 1;
			break;
		case OPT_STATE:
			f->state_path = arg;
			fetch_only = 1;
			break;
		case OPT_OVERLAP:
			if (cli_parse_duration(arg, &f->overlap) < 0)
				cli_usage_error(c, "--overlap: bad duration");
			fetch_only = 1;
			break;
		case OPT_LIMIT:
			if (cli_parse_long(arg, 1, 1000000000, &f->limit) < 0)
				cli_usage_error(c,
				                "--limit: a positive number");
			fetch_only = 1;
			break;
		case OPT_PAGE_SIZE:
			if (cli_parse_long(arg, 1, 10000, &f->page_size) < 0)
				cli_usage_error(c, "--page-size: 1 to 10000");
			fetch_only = 1;
			break;
		case OPT_RELATED:
			f->related = 1;
			break;
		case OPT_WINDOW:
			if (cli_parse_duration(arg, &f->window) < 0 ||
			    f->window < 1)
				cli_usage_error(c, "--window: bad duration");
			break;
		case OPT_TOP:
			if (cli_parse_long(arg, 0, 100, &f->top) < 0)
				cli_usage_error(c, "--top: 0 to 100");
			break;
		case OPT_JOBS:
			if (cli_parse_long(arg, 1, 64, &f->jobs) < 0)
				cli_usage_error(c, "--jobs: 1 to 64");
			break;
		default:
			cli_usage_error(c, "unhandled option");
		}
	}
	if (optind < argc)
		cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	if (f->related && fetch_only)
		cli_usage_error(c, "--related: --state, --overlap, --since, "
		                   "--until, --limit and --page-size apply to "
		                   "fetching only");
	if (!f->related && (f->window || f->top >= 0 || f->jobs))
		cli_usage_error(c, "--window, --top and --jobs need --related");
	if (f->since_ms >= 0 && f->until_ms >= 0 && f->until_ms < f->since_ms)
		cli_usage_error(c, "--until is before --since");
	if (query != NULL)
		f->query = read_query(f, query);
}

/* The filters every search shares: statuses, severities, rule, --query.
 * status_default applies when --status was not given. */
static jv
add_filters(const struct ef *f, jv filter, const char *status_default)
{
	const char *lists[2] = {f->status ? f->status : status_default,
	                        f->severity};
	const char *fields[2] = {"kibana.alert.workflow_status",
	                         "kibana.alert.severity"};

	for (int i = 0; i < 2; i++) {
		jv terms;

		if (lists[i] == NULL || strcmp(lists[i], "any") == 0)
			continue;
		terms = jv_array();
		for (const char *p = lists[i]; *p;) {
			size_t n = strcspn(p, ",");
			char w[32];

			snprintf(w, sizeof(w), "%.*s", (int)n, p);
			for (char *q = w; *q; q++)
				if (*q >= 'A' && *q <= 'Z')
					*q = (char)(*q + 32);
			terms = jv_array_append(terms, jv_string(w));
			/* 7.x and older 8.x alerts say in-progress. */
			if (strcmp(w, "acknowledged") == 0)
				terms = jv_array_append(
				        terms, jv_string("in-progress"));
			p += n + (p[n] == ',');
		}
		filter = jv_array_append(
		        filter,
		        JV_OBJECT(jv_string("terms"),
		                  JV_OBJECT(jv_string(fields[i]), terms)));
	}
	if (f->rule != NULL)
		filter = jv_array_append(
		        filter,
		        JV_OBJECT(jv_string("term"),
		                  JV_OBJECT(jv_string("kibana.alert.rule.name"),
		                            jv_string(f->rule))));
	if (jv_is_valid(f->query))
		filter = jv_array_append(filter, jv_copy(f->query));
	return filter;
}

/* {"range": {"@timestamp": {gte, lte, "format": "epoch_millis"}}}. */
static jv
time_range(long long gte, long long lte)
{
	jv r = JV_OBJECT(jv_string("format"), jv_string("epoch_millis"));

	if (gte >= 0)
		r = jv_object_set(r, jv_string("gte"), jv_number((double)gte));
	if (lte >= 0)
		r = jv_object_set(r, jv_string("lte"), jv_number((double)lte));
	return JV_OBJECT(jv_string("range"),
	                 JV_OBJECT(jv_string("@timestamp"), r));
}

static jv
bb_filter(const struct ef *f, jv must_not)
{
	/* Building blocks are hidden as Kibana's alerts table hides them. */
	if (f->bb)
		return must_not;
	return jv_array_append(
	        must_not,
	        JV_OBJECT(jv_string("exists"),
	                  JV_OBJECT(jv_string("field"),
	                            jv_string("kibana.alert.building_block_"
	                                      "type"))));
}

/* Sends one request and waits for its answer in r (body replaced).
 * kibana selects Kibana's headers; what names the request in messages.
 * Returns 0, or -1 with r->err set. */
static int
call(struct ef *f, const char *method, int kibana, jv body, const char *what,
     struct reply *r)
{
	jv text = jv_is_valid(body) ? jv_dump_string(body, 0) : jv_invalid();
	struct http_request req = {
	        .method = method, .url = f->url.data, .idempotent = 1};
	struct http_reply a;
	int rc;

	req.headers =
	        es_headers(&f->es, kibana, "application/json", &req.nheaders);
	if (jv_is_valid(text)) {
		req.body = jv_string_value(text);
		req.body_len = (size_t)jv_string_length_bytes(jv_copy(text));
	}
	rc = http_fetch(f->http, &req, NULL, &a);
	jv_free(text);
	buf_free(&r->body);
	r->body = a.resp.body;
	r->status = a.resp.status;
	if (rc < 0 && strcmp(a.err.code, "nomem") == 0)
		r->err = a.err;
	else if (rc < 0)
		es_error(what, &a.resp, &a.err, &r->err);
	return rc;
}

/* Logs a failed request; refused credentials get a hint. */
static void
report(struct ef *f, const struct soar_error *err)
{
	if (strcmp(err->code, "auth") == 0) {
		if (!f->auth_logged++)
			log_error(&f->cli.log,
			          "%s (check ES_API_KEY, or ES_USER and "
			          "ES_PASSWORD, and their privileges)",
			          err->message);
	} else
		log_error(&f->cli.log, "%s", err->message);
}

/* ---- fetching ---------------------------------------------------------- */

/* The run's paging and cursor. */
struct pull {
	long long start_ms; /* range gte; -1: none */
	long long edge_ms;  /* @timestamp of the last hit */
	jv edge;            /* {id: true} of hits at edge_ms (Kibana) */
	size_t nedge;       /* keys of edge */
	jv after_uuid;      /* Kibana: kibana.alert.uuid of the last hit */
	int moved;          /* Kibana: the page moved the cursor */
	jv seen;            /* {id: ms}: emitted within the look-back */
	long long max_ms;   /* newest @timestamp emitted */
	jv pit, after;      /* --es: the point in time, the last sort */
	int sorted;         /* the answers honour the sort */
	size_t pages, skipped;
};

struct hit {
	const char *id, *index, *src, *sort; /* JSON text; NULL: absent */
	size_t idlen, indexlen, srclen, sortlen;
	long long ms;
};

static jv
page_body(const struct ef *f, const struct pull *p)
{
	jv filter = add_filters(f, jv_array(), "open");
	jv must_not = bb_filter(f, jv_array());
	jv sort = JV_ARRAY(
	        JV_OBJECT(jv_string("@timestamp"),
	                  JV_OBJECT(jv_string("order"), jv_string("asc"))));
	jv body;

	if (p->start_ms >= 0 || f->until_ms >= 0)
		filter = jv_array_append(filter,
		                         time_range(p->start_ms, f->until_ms));
	/* Kibana drops search_after: the next page starts at the last hit's
	 * time, and the few hits already had there are skipped.  When they
	 * fill half a page, it holds what sorts after the last hit,
	 * (@timestamp, kibana.alert.uuid), said as a query, so that equal
	 * timestamps cost nothing; or, for alerts without a uuid, the ids
	 * had are left out.  A page always holds new hits. */
	if (!f->direct && p->nedge * 2 >= (size_t)f->page_size &&
	    jv_get_kind(p->after_uuid) == JV_KIND_STRING) {
		jv later = JV_OBJECT(
		        jv_string("gt"), jv_number((double)p->edge_ms),
		        jv_string("format"), jv_string("epoch_millis"));
		jv after = JV_OBJECT(jv_string("gt"), jv_copy(p->after_uuid));
		jv either;

		later = JV_OBJECT(jv_string("range"),
		                  JV_OBJECT(jv_string("@timestamp"), later));
		after = JV_OBJECT(
		        jv_string("range"),
		        JV_OBJECT(jv_string("kibana.alert.uuid"), after));
		either = JV_OBJECT(jv_string("should"), JV_ARRAY(later, after),
		                   jv_string("minimum_should_match"),
		                   jv_number(1));
		filter = jv_array_append(filter,
		                         JV_OBJECT(jv_string("bool"), either));
	} else if (!f->direct && p->nedge * 2 >= (size_t)f->page_size) {
		must_not = jv_array_append(
		        must_not,
		        JV_OBJECT(jv_string("ids"),
		                  JV_OBJECT(jv_string("values"),
		                            jv_keys(jv_copy(p->edge)))));
	}
	if (!f->direct) {
		sort = jv_array_append(
		        sort, JV_OBJECT(jv_string("kibana.alert.uuid"),
		                        JV_OBJECT(jv_string("order"),
		                                  jv_string("asc"),
		                                  jv_string("unmapped_type"),
		                                  jv_string("keyword"))));
	}
	body = JV_OBJECT(jv_string("size"), jv_number((double)f->page_size),
	                 jv_string("track_total_hits"), jv_false(),
	                 jv_string("sort"), sort, jv_string("query"),
	                 JV_OBJECT(jv_string("bool"),
	                           JV_OBJECT(jv_string("filter"), filter,
	                                     jv_string("must_not"), must_not)));
	if (f->direct) {
		body = jv_object_set(body, jv_string("pit"),
		                     JV_OBJECT(jv_string("id"), jv_copy(p->pit),
		                               jv_string("keep_alive"),
		                               jv_string("2m")));
		if (jv_is_valid(p->after))
			body = jv_object_set(body, jv_string("search_after"),
			                     jv_copy(p->after));
	}
	return body;
}

/* Fills h from the text of one hit.  Returns 0, or -1 when it is not a
 * hit with a string _id and an object _source. */
static int
read_hit(const char *s, size_t n, struct hit *h)
{
	struct json_iter it;
	struct json_member m;
	struct event_span ts;
	char text[64];

	memset(h, 0, sizeof(*h));
	h->ms = -1;
	if (s[0] != '{')
		return -1;
	json_iter_init(&it, s, n, 0);
	while (json_iter_next(&it, &m)) {
		if (json_key_equals(&m, "_id", 3) && m.val[0] == '"') {
			h->id = m.val;
			h->idlen = m.vallen;
		} else if (json_key_equals(&m, "_index", 6) &&
		           m.val[0] == '"') {
			h->index = m.val;
			h->indexlen = m.vallen;
		} else if (json_key_equals(&m, "_source", 7) &&
		           m.val[0] == '{') {
			h->src = m.val;
			h->srclen = m.vallen;
		} else if (json_key_equals(&m, "sort", 4) && m.val[0] == '[') {
			h->sort = m.val;
			h->sortlen = m.vallen;
		}
	}
	if (h->id == NULL || h->src == NULL)
		return -1;
	if (event_find(h->src, h->srclen, "@timestamp", &ts) &&
	    json_string_copy(h->src + ts.off, ts.len, text, sizeof(text)) >=
	            0 &&
	    cli_parse_time_ms(text, &h->ms) == 0)
		return 0;
	/* A sorted answer has the time as epoch milliseconds first. */
	if (h->sort != NULL) {
		size_t pos = 0, off, len;

		if (json_array_next(h->sort, h->sortlen, &pos, &off, &len) &&
		    h->sort[off] >= '0' && h->sort[off] <= '9')
			h->ms = strtoll(h->sort + off, NULL, 10);
	}
	return 0;
}

/* The alert summary of a hit: the few fields es_alert() reads, parsed
 * from their spans instead of the whole _source. */
static jv
hit_alert(const struct ef *f, const struct hit *h, const char *id)
{
	struct event_span sp[NSUMMARY];
	jv small = jv_object(), a;

	event_find_many(h->src, h->srclen, summary_paths, NSUMMARY, sp);
	for (size_t i = 0; i < NSUMMARY; i++) {
		jv v;

		if (sp[i].len == 0)
			continue;
		v = jv_parse_sized(h->src + sp[i].off, (int)sp[i].len);
		if (jv_is_valid(v))
			small = jv_object_set(small,
			                      jv_string(summary_paths[i]), v);
		else
			jv_free(v);
	}
	a = es_alert(&f->es, small, id);
	jv_free(small);
	return a;
}

/* Writes one alert: its _source as it came with "elastic" and "alert"
 * spliced in.  Returns 0, or -1 when the output is gone. */
static int
write_alert(struct ef *f, const struct hit *h, const char *id)
{
	struct buf *line = &f->line, *val = &f->val;
	struct soar_error err;
	jv alert = jv_dump_string(hit_alert(f, h, id), 0);
	const char *atext = jv_string_value(alert);
	size_t end = h->srclen, alen = strlen(atext);
	int rc;

	buf_clear(line);
	buf_clear(val);
	rc = buf_puts(val, "{\"id\":") | buf_append(val, h->id, h->idlen);
	if (h->index != NULL)
		rc |= buf_puts(val, ",\"index\":") |
		      buf_append(val, h->index, h->indexlen);
	rc |= buf_putc(val, '}');
	if (event_key_absent(h->src, h->srclen, "elastic") &&
	    event_key_absent(h->src, h->srclen, "alert")) {
		/* The usual case: both keys appended before the last '}'. */
		while (end > 0 && h->src[end - 1] != '}')
			end--;
		end--;
		rc |= buf_append(line, h->src, end);
		if (json_skip_ws(h->src, end, 1) < end)
			rc |= buf_putc(line, ',');
		rc |= buf_puts(line, "\"elastic\":") |
		      buf_append(line, val->data, val->len) |
		      buf_puts(line, ",\"alert\":") |
		      buf_append(line, atext, alen) | buf_puts(line, "}\n");
	} else {
		struct buf tmp = BUF_INIT;

		rc |= event_set_key(h->src, h->srclen, "elastic", val->data,
		                    val->len, &tmp, &err);
		if (rc == 0)
			rc |= event_set_key(tmp.data, tmp.len, "alert", atext,
			                    alen, line, &err) |
			      buf_putc(line, '\n');
		buf_free(&tmp);
	}
	jv_free(alert);
	if (rc != 0) {
		log_error(&f->cli.log, "alert %s: out of memory", id);
		f->fatal = 1;
		return -1;
	}
	rc = ndjson_write(&f->out, line->data, line->len);
	if (rc == NDJSON_EPIPE)
		f->epipe = 1;
	else if (rc != 0) {
		log_error(&f->cli.log, "standard output: %s", strerror(errno));
		f->fatal = f->out_failed = 1;
	}
	return rc == 0 ? 0 : -1;
}

/* Handles one hit: the page cursor moves, and the alert is written unless
 * an earlier run wrote it.  Returns 0, or -1 to stop. */
static int
take_hit(struct ef *f, struct pull *p, const struct hit *h)
{
	char id[1024]; /* Elasticsearch ids are at most 512 bytes */
	jv was;

	if (json_string_copy(h->id, h->idlen, id, sizeof(id)) < 0) {
		log_error(&f->cli.log, "an alert whose _id is not a string of "
		                       "at most 512 bytes; skipped");
		f->nbad++;
		return 0;
	}
	if (h->ms > p->edge_ms) {
		jv_free(p->edge);
		p->edge = jv_object();
		p->nedge = 0;
		p->edge_ms = h->ms;
		p->moved = 1;
	}
	if (!f->direct && h->ms == p->edge_ms) {
		/* --es pages with search_after and needs no record. */
		if (jv_object_has(jv_copy(p->edge), jv_string(id)))
			return 0; /* on the page before too */
		p->edge = jv_object_set(p->edge, jv_string(id), jv_true());
		p->nedge++;
		p->moved = 1;
	}
	if (f->state_path != NULL) {
		was = jv_object_get(jv_copy(p->seen), jv_string(id));
		if (jv_is_valid(was)) {
			jv_free(was);
			p->skipped++;
			return 0;
		}
		jv_free(was);
	}
	if (write_alert(f, h, id) < 0)
		return -1;
	f->emitted++;
	if (f->state_path != NULL && h->ms >= 0) {
		p->seen = jv_object_set(p->seen, jv_string(id),
		                        jv_number((double)h->ms));
		if (h->ms > p->max_ms)
			p->max_ms = h->ms;
	}
	return 0;
}

static int
hit_cmp(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;
	size_t n = x->idlen < y->idlen ? x->idlen : y->idlen;
	int c;

	if (x->ms != y->ms)
		return x->ms < y->ms ? -1 : 1;
	c = memcmp(x->id, y->id, n);
	return c ? c : (x->idlen > y->idlen) - (x->idlen < y->idlen);
}

/* Reads the hits of one page.  Returns the number of hits, or -1 when the
 * body is not a search answer. */
static long
read_page(struct ef *f, struct pull *p, const struct buf *b, struct hit **hits,
          size_t *cap)
{
	struct json_err je;
	struct event_span sp[2];
	static const char *const paths[] = {"hits.hits", "pit_id"};
	size_t pos = 0, off, len, n = 0;

	if (b->len == 0 || json_check_object(b->data, b->len, &je) < 0)
		return -1;
	event_find_many(b->data, b->len, paths, 2, sp);
	if (sp[0].len == 0 || b->data[sp[0].off] != '[')
		return -1;
	if (sp[1].len > 0 && b->data[sp[1].off] == '"') {
		jv_free(p->pit);
		p->pit = jv_parse_sized(b->data + sp[1].off, (int)sp[1].len);
	}
	const char *s = b->data + sp[0].off;

	while (json_array_next(s, sp[0].len, &pos, &off, &len)) {
		if (n == *cap) {
			size_t c = *cap ? *cap * 2 : 256;
			struct hit *h = realloc(*hits, c * sizeof(*h));

			if (h == NULL)
				return -1;
			*hits = h;
			*cap = c;
		}
		if (read_hit(s + off, len, &(*hits)[n]) < 0)
			return -1;
		if ((*hits)[n].sort == NULL)
			p->sorted = 0;
		n++;
	}
	(void)f;
	return (long)n;
}

/* Sets where the next Kibana page starts, after a full page ending with
 * last.  Returns 0, or -1 (logged) when paging cannot go on. */
static int
next_kibana_page(struct ef *f, struct pull *p, const struct hit *last)
{
	size_t pos = 0, off, len;
	char when[40];

	if (!p->moved) {
		/* The next query would be this one again. */
		log_error(&f->cli.log, "Kibana answered a page with no alert "
		                       "after the one before: paging stopped "
		                       "(use --es)");
		return -1;
	}
	p->start_ms = p->edge_ms;
	jv_free(p->after_uuid);
	p->after_uuid = jv_invalid();
	if (last->sort != NULL && last->ms == p->edge_ms &&
	    json_array_next(last->sort, last->sortlen, &pos, &off, &len) &&
	    json_array_next(last->sort, last->sortlen, &pos, &off, &len) &&
	    last->sort[off] == '"') {
		p->after_uuid = jv_parse_sized(last->sort + off, (int)len);
		return 0;
	}
	if (p->nedge * 2 >= (size_t)f->page_size && p->nedge > MAX_EDGE_IDS) {
		cli_format_time_ms(p->edge_ms, when);
		log_error(&f->cli.log,
		          "%zu alerts at %s have no kibana.alert.uuid to page "
		          "by, more than the signals search can leave out by "
		          "id: use --es",
		          p->nedge, when);
		return -1;
	}
	return 0;
}

/* Opens (pit is null) or closes the point in time of --es. */
static int
pit_call(struct ef *f, struct pull *p, struct reply *r)
{
	const char *space = f->es.space ? f->es.space : "default";
	jv id;

	if (jv_get_kind(p->pit) != JV_KIND_STRING) {
		struct buf path = BUF_INIT;

		buf_printf(&path,
		           "/.alerts-security.alerts-%s/_pit?keep_alive=2m",
		           space);
		es_url(&f->es, path.data, &f->url);
		buf_free(&path);
		if (call(f, "POST", 0, jv_invalid(), "open point in time", r) <
		    0)
			return -1;
		id = jv_parse_sized(r->body.data ? r->body.data : "",
		                    (int)r->body.len);
		jv_free(p->pit);
		p->pit = jv_get_kind(id) == JV_KIND_OBJECT
		                 ? jv_object_get(id, jv_string("id"))
		                 : (jv_free(id), jv_invalid());
		if (jv_get_kind(p->pit) != JV_KIND_STRING) {
			soar_error_set(&r->err, "malformed",
			               "open point in time: HTTP %ld with a "
			               "body that has no id",
			               r->status);
			return -1;
		}
		return 0;
	}
	es_url(&f->es, "/_pit", &f->url);
	return call(f, "DELETE", 0, JV_OBJECT(jv_string("id"), jv_copy(p->pit)),
	            "close point in time", r);
}

/* Pages through the alerts, writing each.  Returns 0, or -1 on a failed
 * request (logged). */
static int
pages(struct ef *f, struct pull *p)
{
	struct reply r = {0};
	struct hit *hits = NULL;
	size_t cap = 0;
	int rc = 0;

	if (f->direct && pit_call(f, p, &r) < 0) {
		report(f, &r.err);
		buf_free(&r.body);
		return -1;
	}
	while (!f->fatal && !f->epipe) {
		long n;

		if (f->direct)
			es_url(&f->es, "/_search", &f->url);
		else
			es_kibana_url(&f->es,
			              "/api/detection_engine/signals/search",
			              &f->url);
		if (call(f, "POST", !f->direct, page_body(f, p),
		         f->direct ? "search" : "signals search", &r) < 0) {
			report(f, &r.err);
			rc = -1;
			break;
		}
		p->pages++;
		p->sorted = 1;
		if ((n = read_page(f, p, &r.body, &hits, &cap)) < 0) {
			log_error(
			        &f->cli.log,
			        "%s answered HTTP %ld with a body that is not "
			        "a search answer",
			        f->direct ? "Elasticsearch" : "Kibana",
			        r.status);
			rc = -1;
			break;
		}
		if (!p->sorted) {
			/* An older Kibana drops the sort: one page holding
			 * every hit can still be put in order here. */
			if (n >= f->page_size) {
				log_error(
				        &f->cli.log,
				        "Kibana ignored the sort of the "
				        "signals "
				        "search, so alerts cannot be paged by "
				        "time: use --es, or a larger "
				        "--page-size");
				rc = -1;
				break;
			}
			qsort(hits, (size_t)n, sizeof(*hits), hit_cmp);
		}
		p->moved = 0;
		for (long i = 0; i < n && !f->fatal && !f->epipe; i++) {
			if (f->limit > 0 && (long long)f->emitted >= f->limit)
				break;
			if (take_hit(f, p, &hits[i]) < 0)
				break;
		}
		if (f->direct && n > 0) {
			jv_free(p->after);
			p->after = jv_parse_sized(hits[n - 1].sort,
			                          (int)hits[n - 1].sortlen);
		}
		if (n < f->page_size ||
		    (f->limit > 0 && (long long)f->emitted >= f->limit))
			break;
		if (!f->direct && next_kibana_page(f, p, &hits[n - 1]) < 0) {
			rc = -1;
			break;
		}
	}
	if (f->direct && jv_get_kind(p->pit) == JV_KIND_STRING &&
	    pit_call(f, p, &r) < 0)
		log_warn(&f->cli.log, "%s", r.err.message);
	free(hits);
	buf_free(&r.body);
	return rc;
}

/* Reads the cursor of --state.  Returns 0, or -1 (logged) when the file
 * is not one es-fetch wrote. */
static int
load_cursor(struct ef *f, jv saved, struct pull *p)
{
	const char *space = f->es.space ? f->es.space : "default";
	jv v, sp, last, seen;
	int ok;

	if (jv_get_kind(saved) == JV_KIND_NULL)
		return 0;
	v = jv_object_get(jv_copy(saved), jv_string("version"));
	sp = jv_object_get(jv_copy(saved), jv_string("space"));
	last = jv_object_get(jv_copy(saved), jv_string("timestamp_ms"));
	seen = jv_object_get(jv_copy(saved), jv_string("seen"));
	ok = jv_get_kind(v) == JV_KIND_NUMBER &&
	     jv_number_value(v) == STATE_VERSION &&
	     jv_get_kind(last) == JV_KIND_NUMBER &&
	     jv_get_kind(seen) == JV_KIND_OBJECT &&
	     jv_get_kind(sp) == JV_KIND_STRING;
	if (!ok)
		log_error(&f->cli.log, "%s: not a state file of es-fetch %d",
		          f->state_path, STATE_VERSION);
	else if (strcmp(jv_string_value(sp), space) != 0) {
		log_error(&f->cli.log, "%s: the cursor of space '%s', not '%s'",
		          f->state_path, jv_string_value(sp), space);
		ok = 0;
	} else {
		long long c =
		        (long long)jv_number_value(last) - f->overlap * 1000LL;

		p->max_ms = (long long)jv_number_value(last);
		if (c > p->start_ms)
			p->start_ms = c;
		jv_free(p->seen);
		p->seen = jv_copy(seen);
	}
	jv_free(v);
	jv_free(sp);
	jv_free(last);
	jv_free(seen);
	return ok ? 0 : -1;
}

/* The cursor to save: the newest time written, and the ids written within
 * the look-back before it (older ones cannot come again). */
static jv
cursor(const struct ef *f, struct pull *p)
{
	double low = (double)p->max_ms - f->overlap * 1000.0;
	jv kept = jv_object();
	char when[40];

	jv seen = p->seen;

	/* The macro reads its object several times: a variable, not a
	 * call. */
	jv_object_foreach(seen, k, v)
	{
		if (jv_get_kind(v) == JV_KIND_NUMBER &&
		    jv_number_value(v) >= low)
			kept = jv_object_set(kept, k, v);
		else {
			jv_free(k);
			jv_free(v);
		}
	}
	cli_format_time_ms(p->max_ms, when);
	return JV_OBJECT(jv_string("version"), jv_number(STATE_VERSION),
	                 jv_string("space"),
	                 jv_string(f->es.space ? f->es.space : "default"),
	                 jv_string("timestamp"), jv_string(when),
	                 jv_string("timestamp_ms"),
	                 jv_number((double)p->max_ms), jv_string("overlap"),
	                 jv_number((double)f->overlap), jv_string("seen"),
	                 kept);
}

static int
fetch(struct ef *f)
{
	struct soar_error err = {0};
	struct state *st = NULL;
	struct pull p = {.start_ms = f->since_ms,
	                 .edge_ms = -1,
	                 .edge = jv_object(),
	                 .after_uuid = jv_invalid(),
	                 .seen = jv_object(),
	                 .max_ms = -1,
	                 .pit = jv_null(),
	                 .after = jv_invalid()};
	jv saved;
	int fl, status;

	if (f->state_path != NULL) {
		if ((st = state_open(f->state_path, &err)) == NULL) {
			log_error(&f->cli.log, "%s", err.message);
			status = SOAR_EXIT_USAGE;
			goto out;
		}
		saved = state_load(st, &err);
		if (!jv_is_valid(saved)) {
			log_error(&f->cli.log, "%s", err.message);
			jv_free(saved);
			status = SOAR_EXIT_USAGE;
			goto out;
		}
		fl = load_cursor(f, saved, &p);
		jv_free(saved);
		if (fl < 0) {
			status = SOAR_EXIT_USAGE;
			goto out;
		}
	}
	if (pages(f, &p) < 0)
		f->fatal = 1;
	fl = ndjson_flush(&f->out);
	if (fl == NDJSON_EPIPE)
		f->epipe = 1;
	else if (fl != 0) {
		log_error(&f->cli.log, "standard output: %s", strerror(errno));
		f->fatal = f->out_failed = 1;
	}
	/* The cursor moves only over what was written and flushed. */
	if (st != NULL && !f->epipe && !f->out_failed && p.max_ms >= 0 &&
	    state_save(st, cursor(f, &p), &err) < 0) {
		log_error(&f->cli.log, "%s", err.message);
		f->fatal = 1;
	}
	log_info(&f->cli.log,
	         "%zu alerts written, %zu written before, in %zu pages",
	         f->emitted, p.skipped, p.pages);
	status = f->fatal  ? SOAR_EXIT_FATAL
	         : f->nbad ? SOAR_EXIT_PARTIAL
	                   : SOAR_EXIT_OK;
out:
	state_close(st);
	jv_free(p.edge);
	jv_free(p.after_uuid);
	jv_free(p.seen);
	jv_free(p.pit);
	jv_free(p.after);
	return status;
}

/* ---- --related --------------------------------------------------------- */

/* One search for related alerts, shared by the events asking the same. */
struct rq {
	struct ef *f;
	char *body;
	size_t len;
	uint64_t hash;
	int refs, done, failed;
	struct buf val; /* the text of elastic.matches */
	struct rq *next;
};

/* One event waiting for its answer, in input order. */
struct rev {
	char *line;
	size_t len, lineno;
	struct rq *q; /* NULL: nothing to look for */
	struct rev *next;
};

struct related {
	struct ndjson_reader *rd;
	struct rev *head, *tail;
	struct rq *queries; /* live ones, for dedup */
	size_t nwin, nfailed, nevents, nrequests;
	int reject_fd, eof;
};

/* Appends the strings of the value at s (a string or an array of them)
 * to arr; ip keeps only IP addresses. */
static jv
span_strings(jv arr, const char *s, size_t len, int ip)
{
	char v[256];
	size_t pos = 0, off, elen;

	if (len == 0)
		return arr;
	if (s[0] == '"') {
		if (json_string_copy(s, len, v, sizeof(v)) > 0 &&
		    (!ip || indicator_is_ip(v)))
			arr = jv_array_append(arr, jv_string(v));
		return arr;
	}
	if (s[0] != '[')
		return arr;
	while (json_array_next(s, len, &pos, &off, &elen) &&
	       jv_array_length(jv_copy(arr)) < MAX_TERMS)
		if (s[off] == '"')
			arr = span_strings(arr, s + off, elen, ip);
	return arr;
}

/* arr (strings, consumed) sorted, without repeats. */
static jv
sorted_unique(jv arr)
{
	jv out = jv_array(), last = jv_null();

	arr = jv_sort(jv_copy(arr), arr);
	jv_array_foreach(arr, i, v)
	{
		if (jv_equal(jv_copy(v), jv_copy(last)))
			jv_free(v);
		else {
			jv_free(last);
			last = jv_copy(v);
			out = jv_array_append(out, v);
		}
	}
	jv_free(last);
	jv_free(arr);
	return out;
}

/* The search body for an event's related alerts, or null when it has no
 * indicator to look for. */
static jv
related_body(const struct ef *f, const char *line, size_t n)
{
	static const char *const paths[] = {
	        "related.ip",        "related.hosts", "related.user",
	        "cloud.instance.id", "alert.created", "@timestamp",
	        "elastic.id"};
	static const char *const src[] = {"@timestamp",
	                                  "kibana.alert.rule.name",
	                                  "kibana.alert.severity",
	                                  "kibana.alert.rule.severity",
	                                  "kibana.alert.risk_score",
	                                  "kibana.alert.rule.risk_score",
	                                  "kibana.alert.workflow_status"};
	struct event_span sp[7];
	jv should = jv_array(), filter, must_not, srcs = jv_array();
	long long t = -1;
	char text[512];

	event_find_many(line, n, paths, 7, sp);
	for (int i = 0; i < 4; i++) {
		jv vals = span_strings(jv_array(), line + sp[i].off, sp[i].len,
		                       i == 0);

		if (jv_array_length(jv_copy(vals)) == 0) {
			jv_free(vals);
			continue;
		}
		/* Sorted, so that events with the same values share one
		 * request. */
		vals = sorted_unique(vals);
		should = jv_array_append(
		        should,
		        JV_OBJECT(jv_string("terms"),
		                  JV_OBJECT(jv_string(paths[i]), vals)));
	}
	if (jv_array_length(jv_copy(should)) == 0) {
		jv_free(should);
		jv_free(srcs);
		return jv_null();
	}
	for (int i = 4; i < 6 && t < 0; i++)
		if (sp[i].len > 0 &&
		    json_string_copy(line + sp[i].off, sp[i].len, text,
		                     sizeof(text)) > 0 &&
		    cli_parse_time_ms(text, &t) < 0)
			t = -1;
	if (t < 0)
		t = f->now_ms;
	filter = add_filters(f, jv_array(), NULL);
	filter = jv_array_append(filter, time_range(t - f->window * 1000LL,
	                                            t + f->window * 1000LL));
	must_not = bb_filter(f, jv_array());
	/* An alert is not related to itself. */
	if (sp[6].len > 0 && line[sp[6].off] == '"' &&
	    json_string_copy(line + sp[6].off, sp[6].len, text, sizeof(text)) >
	            0)
		must_not = jv_array_append(
		        must_not,
		        JV_OBJECT(jv_string("ids"),
		                  JV_OBJECT(jv_string("values"),
		                            JV_ARRAY(jv_string(text)))));
	for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++)
		srcs = jv_array_append(srcs, jv_string(src[i]));
	return JV_OBJECT(
	        jv_string("size"), jv_number((double)f->top),
	        jv_string("track_total_hits"), jv_true(), jv_string("_source"),
	        srcs, jv_string("sort"),
	        JV_ARRAY(JV_OBJECT(jv_string("kibana.alert.risk_score"),
	                           JV_OBJECT(jv_string("order"),
	                                     jv_string("desc"),
	                                     jv_string("unmapped_type"),
	                                     jv_string("long"))),
	                 JV_OBJECT(jv_string("@timestamp"),
	                           JV_OBJECT(jv_string("order"),
	                                     jv_string("desc")))),
	        jv_string("query"),
	        JV_OBJECT(jv_string("bool"),
	                  JV_OBJECT(jv_string("filter"), filter,
	                            jv_string("should"), should,
	                            jv_string("minimum_should_match"),
	                            jv_number(1), jv_string("must_not"),
	                            must_not)));
}

/* elastic.matches of a search answer: the count, and the top alerts as
 * summaries.  Returns 0, or -1 when the body is not a search answer. */
static int
matches(struct ef *f, const struct http_response *resp, struct buf *out)
{
	jv body = jv_parse_sized(resp->body.data ? resp->body.data : "",
	                         (int)resp->body.len);
	jv hits = jv_getpath(jv_copy(body),
	                     JV_ARRAY(jv_string("hits"), jv_string("hits")));
	jv total = jv_getpath(jv_copy(body),
	                      JV_ARRAY(jv_string("hits"), jv_string("total")));
	jv alerts = jv_array(), m;
	int rc = -1;

	if (jv_get_kind(total) == JV_KIND_OBJECT)
		total = jv_object_get(total, jv_string("value"));
	if (jv_get_kind(hits) != JV_KIND_ARRAY ||
	    jv_get_kind(total) != JV_KIND_NUMBER)
		goto out;
	jv_array_foreach(hits, i, h)
	{
		jv id = jv_get_kind(h) == JV_KIND_OBJECT
		                ? jv_object_get(jv_copy(h), jv_string("_id"))
		                : jv_invalid();
		jv src = jv_get_kind(h) == JV_KIND_OBJECT
		                 ? jv_object_get(jv_copy(h),
		                                 jv_string("_source"))
		                 : jv_invalid();

		if (jv_get_kind(id) == JV_KIND_STRING &&
		    jv_get_kind(src) == JV_KIND_OBJECT)
			alerts = jv_array_append(
			        alerts,
			        es_alert(&f->es, src, jv_string_value(id)));
		jv_free(id);
		jv_free(src);
		jv_free(h);
	}
	m = JV_OBJECT(jv_string("count"), jv_copy(total), jv_string("alerts"),
	              alerts);
	alerts = jv_invalid();
	rc = event_dump(m, out);
out:
	jv_free(alerts);
	jv_free(body);
	jv_free(hits);
	jv_free(total);
	return rc;
}

static void
on_related(void *arg, const struct http_response *resp,
           const struct soar_error *herr)
{
	struct rq *q = arg;
	struct ef *f = q->f;
	struct soar_error err = {0};

	q->done = 1;
	if (herr == NULL && matches(f, resp, &q->val) == 0)
		return;
	buf_clear(&q->val);
	if (herr != NULL)
		es_error("related alerts search", resp, herr, &err);
	else {
		soar_error_set(&err, "malformed",
		               "related alerts search: HTTP %ld with a body "
		               "that is not a search answer",
		               resp->status);
		err.status = resp->status;
		err.attempts = resp->attempts;
	}
	q->failed = 1;
	if (strcmp(err.code, "auth") == 0) {
		/* Every later search would be refused too. */
		report(f, &err);
		f->fatal = 1;
		http_cancel_queued(f->http);
	}
	event_dump(event_error_jv(&err, jv_null()), &q->val);
}

static uint64_t
fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

/* The query for body (consumed): one already asked for by an event in the
 * window, or a new one, sent.  NULL on ENOMEM. */
static struct rq *
query_for(struct ef *f, struct related *r, jv body)
{
	jv text = jv_dump_string(body, 0);
	const char *s = jv_string_value(text);
	size_t n = strlen(s);
	uint64_t h = fnv1a(s, n);
	struct http_request req = {.method = "POST", .idempotent = 1};
	struct rq *q;

	for (q = r->queries; q != NULL; q = q->next)
		if (q->hash == h && q->len == n && memcmp(q->body, s, n) == 0) {
			q->refs++;
			jv_free(text);
			return q;
		}
	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->body = strndup(s, n)) == NULL) {
		free(q);
		jv_free(text);
		return NULL;
	}
	jv_free(text);
	q->f = f;
	q->len = n;
	q->hash = h;
	q->refs = 1;
	q->next = r->queries;
	r->queries = q;
	if (f->direct) {
		struct buf path = BUF_INIT;

		buf_printf(&path, "/.alerts-security.alerts-%s/_search",
		           f->es.space ? f->es.space : "default");
		es_url(&f->es, path.data, &f->url);
		buf_free(&path);
	} else
		es_kibana_url(&f->es, "/api/detection_engine/signals/search",
		              &f->url);
	req.url = f->url.data;
	req.headers = es_headers(&f->es, !f->direct, "application/json",
	                         &req.nheaders);
	req.body = q->body;
	req.body_len = n;
	if (f->fatal) {
		struct soar_error e;

		soar_error_set(&e, "cancelled",
		               "related alerts search: not "
		               "sent after a fatal error");
		q->done = q->failed = 1;
		event_dump(event_error_jv(&e, jv_null()), &q->val);
	} else if (http_submit(f->http, &req, NULL, on_related, q) < 0) {
		r->queries = q->next;
		free(q->body);
		free(q);
		return NULL;
	}
	r->nrequests++;
	return q;
}

static void
query_release(struct related *r, struct rq *q)
{
	struct rq **pp;

	if (q == NULL || --q->refs > 0)
		return;
	for (pp = &r->queries; *pp != q; pp = &(*pp)->next)
		;
	*pp = q->next;
	free(q->body);
	buf_free(&q->val);
	free(q);
}

/* Takes one input line: rejected, or queued with its search. */
static int
take_line(struct ef *f, struct related *r, const char *raw, size_t rawlen,
          size_t lineno)
{
	const char *line = raw;
	size_t len = rawlen;
	struct json_err je;
	struct rev *ev;
	jv body;

	if (!ndjson_trim(&line, &len))
		return 0;
	if (json_check_object(line, len, &je) < 0) {
		log_msg(&f->cli.log, LOG_ERROR, lineno, NULL,
		        "column %zu: %s; rejected", je.off + 1, je.msg);
		r->nfailed++;
		if (r->reject_fd >= 0 &&
		    (ndjson_write_all(r->reject_fd, raw, rawlen) != 0 ||
		     ndjson_write_all(r->reject_fd, "\n", 1) != 0)) {
			log_error(&f->cli.log, "--reject: %s", strerror(errno));
			return -1;
		}
		return 0;
	}
	if ((ev = calloc(1, sizeof(*ev))) == NULL ||
	    (ev->line = malloc(len ? len : 1)) == NULL) {
		free(ev);
		return -1;
	}
	memcpy(ev->line, line, len);
	ev->len = len;
	ev->lineno = lineno;
	body = related_body(f, line, len);
	if (jv_get_kind(body) == JV_KIND_OBJECT &&
	    (ev->q = query_for(f, r, body)) == NULL) {
		free(ev->line);
		free(ev);
		return -1;
	}
	if (jv_get_kind(body) != JV_KIND_OBJECT)
		jv_free(body);
	if (r->tail)
		r->tail->next = ev;
	else
		r->head = ev;
	r->tail = ev;
	r->nwin++;
	return 0;
}

/* Writes the event at the head of the window with elastic.matches set. */
static int
write_head(struct ef *f, struct related *r)
{
	static const char none[] = "{\"count\":0,\"alerts\":[]}";
	struct rev *ev = r->head;
	struct soar_error err;
	const char *val = ev->q ? ev->q->val.data : none;
	size_t vlen = ev->q ? ev->q->val.len : strlen(none);
	int rc = 0, w;

	if (ev->q && ev->q->failed) {
		char *id = event_get_string(ev->line, ev->len, "alert.id");
		jv m = jv_parse_sized(val, (int)vlen);
		jv msg = jv_getpath(
		        m, JV_ARRAY(jv_string("error"), jv_string("message")));

		if (!f->auth_logged || !f->fatal)
			log_msg(&f->cli.log, LOG_ERROR, ev->lineno, id,
			        "elastic.matches: %s",
			        jv_get_kind(msg) == JV_KIND_STRING
			                ? jv_string_value(msg)
			                : "failed");
		jv_free(msg);
		free(id);
		r->nfailed++;
	}
	buf_clear(&f->line);
	if (event_set(ev->line, ev->len, "elastic.matches", val, vlen, &f->line,
	              &err) < 0) {
		log_msg(&f->cli.log, LOG_ERROR, ev->lineno, NULL,
		        "elastic.matches: %s; written unchanged", err.message);
		if (!(ev->q && ev->q->failed))
			r->nfailed++;
		buf_clear(&f->line);
		buf_append(&f->line, ev->line, ev->len);
	}
	if (!f->out_failed && !f->epipe) {
		w = ndjson_write(&f->out, f->line.data, f->line.len);
		if (w == 0)
			w = ndjson_write(&f->out, "\n", 1);
		if (w == NDJSON_EPIPE)
			f->epipe = 1;
		else if (w != 0) {
			log_error(&f->cli.log, "standard output: %s",
			          strerror(errno));
			f->fatal = f->out_failed = 1;
			http_cancel_queued(f->http);
			rc = -1;
		} else
			r->nevents++;
	}
	r->head = ev->next;
	if (r->head == NULL)
		r->tail = NULL;
	r->nwin--;
	query_release(r, ev->q);
	free(ev->line);
	free(ev);
	return rc;
}

/* Reads what input is ready (waiting for it only when nothing is held),
 * up to the window's size. */
static void
read_input(struct ef *f, struct related *r)
{
	const char *line;
	size_t len, lineno;
	int rc;

	while (!r->eof && !f->fatal && !f->epipe && r->nwin < WINDOW_EVENTS &&
	       (r->nwin == 0 || ndjson_reader_ready(r->rd))) {
		if (r->nwin == 0 && ndjson_flush(&f->out) == NDJSON_EPIPE)
			f->epipe = 1;
		rc = ndjson_read_line(r->rd, &line, &len, &lineno);
		if (rc == NDJSON_EOF) {
			r->eof = 1;
		} else if (rc == NDJSON_ERR) {
			log_error(&f->cli.log, "reading standard input: %s",
			          strerror(errno));
			f->fatal = 1;
		} else if (rc == NDJSON_TOOLONG) {
			log_msg(&f->cli.log, LOG_ERROR, lineno, NULL,
			        "line longer than --max-line; rejected");
			r->nfailed++;
			if (ndjson_skip_line(r->rd, r->reject_fd) < 0)
				f->fatal = 1;
		} else if (take_line(f, r, line, len, lineno) < 0) {
			log_error(&f->cli.log, "out of memory");
			f->fatal = 1;
		}
	}
}

static int
related(struct ef *f)
{
	struct related r = {.reject_fd = -1};
	int fl;

	if (f->cli.reject_path != NULL &&
	    (r.reject_fd = open(f->cli.reject_path,
	                        O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	                        0600)) < 0) {
		log_error(&f->cli.log, "--reject %s: %s", f->cli.reject_path,
		          strerror(errno));
		return SOAR_EXIT_USAGE;
	}
	if ((r.rd = ndjson_reader_new(0, f->cli.max_line)) == NULL)
		return SOAR_EXIT_FATAL;
	for (;;) {
		read_input(f, &r);
		while (r.head != NULL && (r.head->q == NULL || r.head->q->done))
			write_head(f, &r);
		if (r.head == NULL && (r.eof || f->fatal || f->epipe))
			break;
		if (r.head != NULL)
			http_poll(f->http, 1000,
			          !r.eof && !f->fatal && r.nwin < WINDOW_EVENTS
			                  ? 0
			                  : -1);
	}
	while (http_pending(f->http) > 0)
		http_poll(f->http, 1000, -1);
	fl = ndjson_flush(&f->out);
	if (fl != 0 && fl != NDJSON_EPIPE && !f->out_failed) {
		log_error(&f->cli.log, "standard output: %s", strerror(errno));
		f->fatal = 1;
	}
	log_info(&f->cli.log, "%zu events, %zu failed, %zu searches", r.nevents,
	         r.nfailed, r.nrequests);
	if (r.reject_fd >= 0)
		close(r.reject_fd);
	ndjson_reader_free(r.rd);
	return f->fatal    ? SOAR_EXIT_FATAL
	       : r.nfailed ? SOAR_EXIT_PARTIAL
	                   : SOAR_EXIT_OK;
}

int
main(int argc, char *argv[])
{
	struct ef f = {.since_ms = -1,
	               .until_ms = -1,
	               .overlap = 300,
	               .page_size = 1000,
	               .top = -1,
	               .query = jv_invalid()};
	struct http_config hc;
	struct soar_error err = {0};
	int status = SOAR_EXIT_FATAL;

	cli_hygiene();
	f.now_ms = cli_now_ms();
	if (cli_init(&f.cli, "es-fetch",
	             "[--es] [--status LIST] [--state FILE] [--related] "
	             "[options]",
	             "Write Elastic Security alerts as events, or add the "
	             "alerts related to each event.",
	             options, sizeof(options) / sizeof(options[0])) < 0)
		return SOAR_EXIT_FATAL;
	parse_args(&f, argc, argv);
	if (f.top < 0)
		f.top = 5;
	if (f.window == 0)
		f.window = 86400;
	if (f.jobs == 0)
		f.jobs = 4;
	if (f.related)
		cli_check_stdin(&f.cli);
	if (es_init(&f.es, f.space, NULL, &err) < 0) {
		log_error(&f.cli.log, "%s", err.message);
		status = SOAR_EXIT_USAGE;
		goto out;
	}
	http_config_defaults(&hc);
	hc.jobs = f.related ? (int)f.jobs : 2;
	hc.rate = f.cli.rate;
	hc.burst = f.cli.rate >= 1 ? f.cli.rate : 1;
	hc.timeout_ms = f.cli.timeout * 1000;
	hc.retries = (int)f.cli.retries;
	hc.max_body = 256 * 1024 * 1024;
	hc.user_agent = "soarutils-es-fetch/" SOAR_VERSION;
	hc.log = &f.cli.log;
	if ((f.http = http_new(&hc, &err)) == NULL) {
		log_error(&f.cli.log, "%s", err.message);
		goto out;
	}
	ndjson_writer_init(&f.out, 1, f.cli.line_buffered);
	status = f.related ? related(&f) : fetch(&f);
	buf_free(&f.out.buf);
out:
	if (f.http != NULL)
		http_free(f.http);
	es_free(&f.es);
	jv_free(f.query);
	buf_free(&f.url);
	buf_free(&f.line);
	buf_free(&f.val);
	cli_free(&f.cli);
	return status;
}
