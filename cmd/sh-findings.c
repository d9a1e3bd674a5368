/* sh-findings: AWS Security Hub findings as events, pulled or received. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jv.h>

#include "lib/asff.h"
#include "lib/aws.h"
#include "lib/awscreds.h"
#include "lib/cli.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/ndjson.h"
#include "lib/secret.h"
#include "lib/snsrecv.h"
#include "lib/state.h"

enum {
	OPT_SEVERITY = 's',
	OPT_EVENTS = 'e',
	OPT_WORKFLOW = CLI_TOOL_KEYS,
	OPT_RECORD,
	OPT_PRODUCT,
	OPT_TYPE_PREFIX,
	OPT_SINCE,
	OPT_FILTERS,
	OPT_STATE,
	OPT_OVERLAP,
	OPT_LIMIT,
	OPT_PAGE_SIZE,
	OPT_REGION,
	OPT_REGIONS,
	OPT_LISTEN,
	OPT_TOPIC,
	OPT_MAX_AGE,
	OPT_SNS_CERT_HOST,
};

static const struct cli_opt options[] = {
        {"events", OPT_EVENTS, NULL,
         "read EventBridge/SNS events on stdin instead of calling the API"},
        {"severity", OPT_SEVERITY, "LIST",
         "severity labels, e.g. HIGH,CRITICAL"},
        {"workflow-status", OPT_WORKFLOW, "LIST",
         "workflow statuses (default NEW,NOTIFIED; 'any' for all)"},
        {"record-state", OPT_RECORD, "LIST",
         "record states (default ACTIVE; 'any' for all)"},
        {"product", OPT_PRODUCT, "LIST", "product names, e.g. GuardDuty"},
        {"type-prefix", OPT_TYPE_PREFIX, "PREFIX", "finding types starting so"},
        {"since", OPT_SINCE, "DUR|TIME",
         "findings updated since (15m, 2d or RFC 3339)"},
        {"filters", OPT_FILTERS, "JSON|@FILE", "more GetFindings filters"},
        {"state", OPT_STATE, "FILE", "cursor file: only new findings"},
        {"overlap", OPT_OVERLAP, "DUR",
         "look back this far for late findings (default 10m)"},
        {"limit", OPT_LIMIT, "N", "write at most N findings"},
        {"page-size", OPT_PAGE_SIZE, "N", "findings per request (1-100)"},
        {"listen", OPT_LISTEN, "ADDR:PORT",
         "receive SNS deliveries over HTTP instead of calling the API"},
        {"topic", OPT_TOPIC, "ARNS",
         "with --listen: the topics accepted (required)"},
        {"max-age", OPT_MAX_AGE, "DUR",
         "with --listen: refuse older messages (default 1h)"},
        {"sns-cert-host", OPT_SNS_CERT_HOST, "HOST[:PORT]",
         "with --listen: the host to trust instead of SNS's (tests)"},
        {"region", OPT_REGION, "REGION", "AWS region"},
        {"regions", OPT_REGIONS, "LIST", "pull several regions"},
        AWS_CLI_OPT_PROFILE,
        AWS_CLI_OPT_ROLE_ARN,
        AWS_CLI_OPT_EXTERNAL_ID,
        CLI_OPT_RATE("requests per second per region (default 3/s)"),
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

#define MAX_REGIONS 32

/* One region's pull: a chain of GetFindings pages. */
struct region {
	struct sh *sh;
	char name[32];
	jv cursor; /* {"updated_at": ms, "seen": {id: ms}} as saved */
	jv seen;   /* {id: ms}: written findings within the look-back */
	long long start_ms, end_ms; /* the UpdatedAt range asked for */
	char *next_token;
	int done, failed;
	size_t pages, emitted;
};

struct sh {
	struct cli cli;
	int events;
	const char *severity, *workflow, *record, *product, *type_prefix;
	const char *since, *filters_arg, *state_path, *regions;
	const char *listen, *topics, *cert_host;
	long max_age;
	struct aws_cli aws;
	long overlap;
	long long since_ms; /* -1: no --since */
	long long limit, page_size;
	jv filters; /* --filters, parsed */
	struct awscreds *creds;
	struct http *http;
	struct ndjson_writer out;
	struct region reg[MAX_REGIONS];
	size_t nreg, emitted;
	int fatal, epipe;
	int out_failed; /* writing stdout failed: the cursor stays */
};

static void
usage_list(struct sh *s, const char *what, const char *arg)
{
	if (arg[0] == '\0' || arg[0] == ',' || arg[strlen(arg) - 1] == ',' ||
	    strstr(arg, ",,") != NULL)
		cli_usage_error(&s->cli, "%s: expected a comma-separated list",
		                what);
}

/* --filters JSON or @FILE: a GetFindings Filters object. */
static jv
read_filters(struct sh *s, const char *arg)
{
	jv v;

	if (arg[0] == '@') {
		FILE *f = fopen(arg + 1, "r");
		struct buf b = BUF_INIT;
		char chunk[4096];
		size_t n;

		if (f == NULL) {
			cli_usage_error(&s->cli, "--filters %s: %s", arg + 1,
			                strerror(errno));
		} else {
			while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
				buf_append(&b, chunk, n);
			fclose(f);
		}
		v = jv_parse_sized(b.data ? b.data : "", (int)b.len);
		buf_free(&b);
	} else
		v = jv_parse(arg);
	if (jv_get_kind(v) != JV_KIND_OBJECT) {
		jv msg = jv_is_valid(v) ? jv_string("not a JSON object")
		                        : jv_invalid_get_msg(jv_copy(v));
		char text[256];

		snprintf(text, sizeof(text), "%s",
		         jv_get_kind(msg) == JV_KIND_STRING
		                 ? jv_string_value(msg)
		                 : "not JSON");
		jv_free(msg);
		jv_free(v);
		cli_usage_error(&s->cli, "--filters: %s", text);
	}
	return v;
}

static void
parse_args(struct sh *s, int argc, char **argv)
{
	struct cli *c = &s->cli;
	const char *arg;
	int key;

	while ((key = cli_next(c, argc, argv, &arg)) != -1) {
		if (cli_common(c, key, arg) ||
		    aws_cli_option(&s->aws, key, arg))
			continue;
		switch (key) {
		case OPT_EVENTS:
			s->events = 1;
			break;
		case OPT_SEVERITY:
			usage_list(s, "--severity", arg);
			s->severity = arg;
			break;
		case OPT_WORKFLOW:
			usage_list(s, "--workflow-status", arg);
			s->workflow = arg;
			break;
		case OPT_RECORD:
			usage_list(s, "--record-state", arg);
			s->record = arg;
			break;
		case OPT_PRODUCT:
			usage_list(s, "--product", arg);
			s->product = arg;
			break;
		case OPT_TYPE_PREFIX:
			s->type_prefix = arg;
			break;
		case OPT_SINCE: {
			long secs;

			if (cli_parse_duration(arg, &secs) == 0)
				s->since_ms = cli_now_ms() - secs * 1000LL;
			else if (cli_parse_time_ms(arg, &s->since_ms) < 0)
				cli_usage_error(
				        c,
				        "--since: expected a duration "
				        "(15m, 2d) or an RFC 3339 time, "
				        "got '%s'",
				        arg);
			s->since = arg;
			break;
		}
		case OPT_FILTERS:
			s->filters_arg = arg;
			break;
		case OPT_STATE:
			s->state_path = arg;
			break;
		case OPT_OVERLAP:
			if (cli_parse_duration(arg, &s->overlap) < 0)
				cli_usage_error(c, "--overlap: bad duration");
			break;
		case OPT_LIMIT:
			if (cli_parse_long(arg, 1, 1000000000, &s->limit) < 0)
				cli_usage_error(c,
				                "--limit: a positive number");
			break;
		case OPT_PAGE_SIZE:
			if (cli_parse_long(arg, 1, 100, &s->page_size) < 0)
				cli_usage_error(c, "--page-size: 1 to 100");
			break;
		case OPT_REGION:
			s->aws.region = arg;
			break;
		case OPT_REGIONS:
			usage_list(s, "--regions", arg);
			s->regions = arg;
			break;
		case OPT_LISTEN:
			s->listen = arg;
			break;
		case OPT_TOPIC:
			usage_list(s, "--topic", arg);
			s->topics = arg;
			break;
		case OPT_MAX_AGE:
			if (cli_parse_duration(arg, &s->max_age) < 0 ||
			    s->max_age < 1 || s->max_age > 30 * 86400)
				cli_usage_error(c, "--max-age: a duration of "
				                   "at most 30d");
			break;
		case OPT_SNS_CERT_HOST:
			s->cert_host = arg;
			break;
		default:
			cli_usage_error(c, "unhandled option");
		}
	}
	if (optind < argc)
		cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	if ((s->events || s->listen) &&
	    (s->state_path || s->since || s->filters_arg || s->regions ||
	     s->limit || s->severity || s->workflow || s->record ||
	     s->product || s->type_prefix))
		cli_usage_error(c,
		                "--%s: --state, --since, --filters, "
		                "--regions, --limit and the finding filters "
		                "apply to pulling only",
		                s->events ? "events" : "listen");
	if (s->events && s->listen)
		cli_usage_error(c, "--events and --listen: choose one");
	/* A valid signature says only that SNS sent the message: any AWS
	 * account can publish to its own topic and aim it here. */
	if (s->listen && s->topics == NULL)
		cli_usage_error(c, "--listen needs --topic: the SNS topics "
		                   "whose messages to accept");
	if (!s->listen && (s->topics || s->max_age || s->cert_host))
		cli_usage_error(c, "--topic, --max-age and --sns-cert-host "
		                   "need --listen");
	aws_cli_check(c, &s->aws);
	if (s->filters_arg != NULL)
		s->filters = read_filters(s, s->filters_arg);
}

/* Adds Filters[name] = one StringFilter per item of the list. */
static jv
string_filters(jv filters, const char *name, const char *list, const char *cmp,
               int upper)
{
	jv arr;
	char item[256];

	if (list == NULL)
		return filters;
	if (strcmp(list, "any") == 0) {
		/* 'any': no filter, whatever --filters said. */
		return jv_object_delete(filters, jv_string(name));
	}
	arr = jv_array();
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");

		snprintf(item, sizeof(item), "%.*s", (int)n, p);
		for (char *q = item; upper && *q; q++)
			if (*q >= 'a' && *q <= 'z')
				*q = (char)(*q - 32);
		arr = jv_array_append(
		        arr,
		        jv_object_set(jv_object_set(jv_object(),
		                                    jv_string("Value"),
		                                    jv_string(item)),
		                      jv_string("Comparison"), jv_string(cmp)));
		p += n + (p[n] == ',');
	}
	return jv_object_set(filters, jv_string(name), arr);
}

/* The GetFindings body of the region's next page. */
static jv
page_body(struct sh *s, struct region *r)
{
	jv f = jv_is_valid(s->filters) ? jv_copy(s->filters) : jv_object();
	jv body = jv_object();

	f = string_filters(f, "SeverityLabel", s->severity, "EQUALS", 1);
	f = string_filters(f, "WorkflowStatus",
	                   s->workflow ? s->workflow : "NEW,NOTIFIED", "EQUALS",
	                   1);
	f = string_filters(f, "RecordState", s->record ? s->record : "ACTIVE",
	                   "EQUALS", 1);
	f = string_filters(f, "ProductName", s->product, "EQUALS", 0);
	f = string_filters(f, "Type", s->type_prefix, "PREFIX", 0);
	if (r->start_ms >= 0) {
		char start[40], end[40];

		cli_format_time_ms(r->start_ms, start);
		cli_format_time_ms(r->end_ms, end);
		f = jv_object_set(
		        f, jv_string("UpdatedAt"),
		        JV_ARRAY(jv_object_set(
		                jv_object_set(jv_object(), jv_string("Start"),
		                              jv_string(start)),
		                jv_string("End"), jv_string(end))));
	}
	body = jv_object_set(body, jv_string("Filters"), f);
	/* Oldest first: the cursor then only ever moves forward. */
	body = jv_object_set(
	        body, jv_string("SortCriteria"),
	        JV_ARRAY(jv_object_set(
	                jv_object_set(jv_object(), jv_string("Field"),
	                              jv_string("UpdatedAt")),
	                jv_string("SortOrder"), jv_string("asc"))));
	body = jv_object_set(body, jv_string("MaxResults"),
	                     jv_number((double)s->page_size));
	if (r->next_token != NULL)
		body = jv_object_set(body, jv_string("NextToken"),
		                     jv_string(r->next_token));
	return body;
}

static void on_page(void *arg, const struct http_response *resp,
                    const struct soar_error *herr);

static void
request_page(struct region *r)
{
	struct sh *s = r->sh;
	struct soar_error err = {0};
	jv text = jv_dump_string(page_body(s, r), 0);
	struct aws_call call = {
	        .service_id = "SecurityHub",
	        .host_prefix = "securityhub",
	        .signing_name = "securityhub",
	        .region = r->name,
	        .method = "POST",
	        .path = "/findings",
	        .content_type = "application/json",
	        .body = jv_string_value(text),
	        .body_len = (size_t)jv_string_length_bytes(jv_copy(text)),
	        .idempotent = 1,
	};

	if (aws_submit(s->creds, s->http, &call, on_page, r, &err) < 0) {
		log_error(&s->cli.log, "%s: %s", r->name, err.message);
		r->done = r->failed = 1;
		s->fatal = 1;
	}
	jv_free(text);
}

/* Writes one finding unless the cursor has it already.  Returns 0, or -1
 * when the output is gone. */
static int
emit(struct region *r, jv finding, long long *max_ms)
{
	struct sh *s = r->sh;
	jv id = jv_object_get(jv_copy(finding), jv_string("Id"));
	jv up = jv_object_get(jv_copy(finding), jv_string("UpdatedAt"));
	long long ms = -1;
	int rc = 0;

	if (jv_get_kind(up) == JV_KIND_STRING)
		cli_parse_time_ms(jv_string_value(up), &ms);
	/* The cursor's bookkeeping only when there is a cursor: without
	 * --state, memory stays flat however many findings go by. */
	if (s->state_path != NULL && jv_get_kind(id) == JV_KIND_STRING &&
	    ms >= 0) {
		jv was = jv_object_get(jv_copy(r->seen), jv_copy(id));

		if (jv_get_kind(was) == JV_KIND_NUMBER &&
		    (long long)jv_number_value(was) == ms) {
			/* Written by an earlier run (the look-back overlap). */
			jv_free(was);
			goto out;
		}
		jv_free(was);
		r->seen = jv_object_set(r->seen, jv_copy(id),
		                        jv_number((double)ms));
		if (ms > *max_ms)
			*max_ms = ms;
	}
	jv text = jv_dump_string(asff_event(finding, r->name), 0);

	rc = ndjson_write(&s->out, jv_string_value(text),
	                  (size_t)jv_string_length_bytes(jv_copy(text)));
	if (rc == 0)
		rc = ndjson_write(&s->out, "\n", 1);
	jv_free(text);
	if (rc != 0) {
		if (rc == NDJSON_EPIPE)
			s->epipe = 1;
		else {
			log_error(&s->cli.log, "standard output: %s",
			          strerror(errno));
			s->fatal = s->out_failed = 1;
		}
		rc = -1;
	} else {
		r->emitted++;
		s->emitted++;
	}
out:
	jv_free(id);
	jv_free(up);
	return rc;
}

static void
on_page(void *arg, const struct http_response *resp,
        const struct soar_error *herr)
{
	struct region *r = arg;
	struct sh *s = r->sh;
	long long max_ms = -1;
	jv body, findings, token;

	if (herr != NULL) {
		char code[128], msg[256];

		aws_error(resp, code, sizeof(code), msg, sizeof(msg));
		log_error(&s->cli.log, "%s: GetFindings: %s%s%s%s", r->name,
		          code[0] ? code : herr->message, msg[0] ? " (" : "",
		          msg, msg[0] ? ")" : "");
		r->done = r->failed = 1;
		s->fatal = 1;
		return;
	}
	body = jv_parse_sized(resp->body.data ? resp->body.data : "",
	                      (int)resp->body.len);
	findings = jv_get_kind(body) == JV_KIND_OBJECT
	                   ? jv_object_get(jv_copy(body), jv_string("Findings"))
	                   : jv_invalid();
	if (jv_get_kind(findings) != JV_KIND_ARRAY) {
		log_error(&s->cli.log,
		          "%s: GetFindings answered HTTP %ld with a body "
		          "that is not a findings page",
		          r->name, resp->status);
		jv_free(findings);
		jv_free(body);
		r->done = r->failed = 1;
		s->fatal = 1;
		return;
	}
	r->pages++;
	jv_array_foreach(findings, i, f)
	{
		if (!r->done && !s->epipe && !s->fatal &&
		    (s->limit == 0 || (long long)s->emitted < s->limit) &&
		    emit(r, f, &max_ms) < 0)
			r->done = 1;
		jv_free(f);
	}
	if (max_ms >= 0) {
		jv old = jv_object_get(jv_copy(r->cursor),
		                       jv_string("updated_at"));

		if (jv_get_kind(old) != JV_KIND_NUMBER ||
		    jv_number_value(old) < (double)max_ms)
			r->cursor = jv_object_set(r->cursor,
			                          jv_string("updated_at"),
			                          jv_number((double)max_ms));
		jv_free(old);
	}
	token = jv_object_get(jv_copy(body), jv_string("NextToken"));
	free(r->next_token);
	r->next_token = NULL;
	if (jv_get_kind(token) == JV_KIND_STRING &&
	    jv_string_length_bytes(jv_copy(token)) > 0)
		r->next_token = strdup(jv_string_value(token));
	jv_free(token);
	jv_free(findings);
	jv_free(body);
	if (s->limit > 0 && (long long)s->emitted >= s->limit)
		r->done = 1;
	if (r->next_token == NULL || r->done || s->epipe || s->fatal) {
		r->done = 1;
		return;
	}
	request_page(r);
}

/* Forgets ids older than the look-back window: they cannot come again. */
static jv
prune(jv cursor, jv seen, long overlap_s)
{
	jv up = jv_object_get(jv_copy(cursor), jv_string("updated_at"));
	jv kept = jv_object();

	if (jv_get_kind(up) == JV_KIND_NUMBER &&
	    jv_get_kind(seen) == JV_KIND_OBJECT) {
		double low = jv_number_value(up) - overlap_s * 1000.0;

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
	}
	jv_free(up);
	jv_free(seen);
	return jv_object_set(cursor, jv_string("seen"), kept);
}

/* The regions to pull: --regions, else the one region configured.
 * Returns 0, or -1 when there is none or one is not a region name. */
static int
plan_regions(struct sh *s, jv saved, long long since_ms)
{
	const char *list = s->regions ? s->regions : awscreds_region(s->creds);

	if (list == NULL) {
		log_error(&s->cli.log, "no region: use --region or --regions, "
		                       "or set AWS_REGION");
		return -1;
	}
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		struct region *r;

		char name[sizeof(r->name)];

		snprintf(name, sizeof(name), "%.*s", (int)n, p);
		if (s->nreg == MAX_REGIONS || n == 0 || n >= sizeof(name) ||
		    !awscreds_region_ok(name)) {
			log_error(&s->cli.log,
			          "'%.*s': not a region name, or more than %d "
			          "regions",
			          (int)n, p, MAX_REGIONS);
			return -1;
		}
		r = &s->reg[s->nreg++];
		r->sh = s;
		snprintf(r->name, sizeof(r->name), "%.*s", (int)n, p);
		r->cursor = jv_get_kind(saved) == JV_KIND_OBJECT
		                    ? jv_object_get(jv_copy(saved),
		                                    jv_string(r->name))
		                    : jv_invalid();
		if (jv_get_kind(r->cursor) != JV_KIND_OBJECT) {
			jv_free(r->cursor);
			r->cursor = jv_object();
		}
		jv up = jv_object_get(jv_copy(r->cursor),
		                      jv_string("updated_at"));

		/* Taken out of the cursor, so that it is the only reference
		 * and grows in place. */
		r->seen = jv_object_get(jv_copy(r->cursor), jv_string("seen"));
		r->cursor = jv_object_delete(r->cursor, jv_string("seen"));
		if (jv_get_kind(r->seen) != JV_KIND_OBJECT) {
			jv_free(r->seen);
			r->seen = jv_object();
		}

		/* From the cursor less the look-back, else from --since, to a
		 * far end (findings updated during the run are read too) that
		 * stays the same on every page: the query must not change. */
		r->start_ms = since_ms;
		r->end_ms = cli_now_ms() + 86400000LL;
		if (jv_get_kind(up) == JV_KIND_NUMBER) {
			long long c = (long long)jv_number_value(up) -
			              s->overlap * 1000LL;

			if (c > r->start_ms)
				r->start_ms = c;
		}
		jv_free(up);
		p += n + (p[n] == ',');
	}
	return 0;
}

static int
finish_output(struct sh *s)
{
	int st = ndjson_flush(&s->out);

	if (st == NDJSON_EPIPE)
		s->epipe = 1;
	else if (st != 0) {
		log_error(&s->cli.log, "standard output: %s", strerror(errno));
		s->fatal = s->out_failed = 1;
		return -1;
	}
	return 0;
}

static int
pull(struct sh *s)
{
	struct soar_error err = {0};
	struct state *st = NULL;
	jv saved = jv_null();

	if (s->state_path != NULL) {
		if ((st = state_open(s->state_path, &err)) == NULL) {
			log_error(&s->cli.log, "%s", err.message);
			return SOAR_EXIT_USAGE;
		}
		saved = state_load(st, &err);
		if (!jv_is_valid(saved)) {
			log_error(&s->cli.log, "%s", err.message);
			state_close(st);
			return SOAR_EXIT_USAGE;
		}
	}
	if (plan_regions(s, saved, s->since_ms) < 0) {
		for (size_t i = 0; i < s->nreg; i++) {
			jv_free(s->reg[i].cursor);
			jv_free(s->reg[i].seen);
		}
		jv_free(saved);
		state_close(st);
		return SOAR_EXIT_USAGE;
	}
	for (size_t i = 0; i < s->nreg; i++)
		request_page(&s->reg[i]);
	while (http_pending(s->http) > 0)
		http_poll(s->http, 1000, -1);
	finish_output(s);
	/* The cursor moves only over what was written and flushed: not
	 * when the output failed or its reader went away. */
	if (st != NULL && !s->epipe && !s->out_failed) {
		jv out = jv_get_kind(saved) == JV_KIND_OBJECT ? jv_copy(saved)
		                                              : jv_object();

		for (size_t i = 0; i < s->nreg; i++)
			out = jv_object_set(out, jv_string(s->reg[i].name),
			                    prune(jv_copy(s->reg[i].cursor),
			                          jv_copy(s->reg[i].seen),
			                          s->overlap));
		if (state_save(st, out, &err) < 0) {
			log_error(&s->cli.log, "%s", err.message);
			s->fatal = 1;
		}
	}
	for (size_t i = 0; i < s->nreg; i++) {
		log_info(&s->cli.log, "%s: %zu findings in %zu pages",
		         s->reg[i].name, s->reg[i].emitted, s->reg[i].pages);
		jv_free(s->reg[i].cursor);
		jv_free(s->reg[i].seen);
		free(s->reg[i].next_token);
	}
	jv_free(saved);
	state_close(st);
	return s->fatal ? SOAR_EXIT_FATAL : SOAR_EXIT_OK;
}

/* The event line (without newline) for a finding from asff_findings(),
 * ASFF or OCSF (borrowed). */
static jv
finding_text(jv f)
{
	return jv_dump_string(asff_is_ocsf(f) ? asff_ocsf_event(f, NULL)
	                                      : asff_event(f, NULL),
	                      0);
}

/* --events: EventBridge events or SNS notifications on stdin. */
static int
events(struct sh *s)
{
	struct ndjson_reader *rd = ndjson_reader_new(0, s->cli.max_line);
	const char *line, *raw;
	size_t len, rawlen, lineno, nbad = 0;
	int reject_fd = -1, rc;

	if (rd == NULL)
		return SOAR_EXIT_FATAL;
	if (s->cli.reject_path != NULL &&
	    (reject_fd = open(s->cli.reject_path,
	                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	                      0600)) < 0) {
		log_error(&s->cli.log, "--reject %s: %s", s->cli.reject_path,
		          strerror(errno));
		ndjson_reader_free(rd);
		return SOAR_EXIT_USAGE;
	}
	while (!s->epipe && !s->fatal &&
	       (rc = ndjson_read_line(rd, &line, &len, &lineno)) !=
	               NDJSON_EOF) {
		struct json_err je;
		const char *why = NULL;
		jv doc, list;

		if (rc == NDJSON_ERR) {
			log_error(&s->cli.log, "reading standard input: %s",
			          strerror(errno));
			s->fatal = 1;
			break;
		}
		if (rc == NDJSON_TOOLONG) {
			log_msg(&s->cli.log, LOG_ERROR, lineno, NULL,
			        "line longer than --max-line; rejected");
			nbad++;
			if (ndjson_skip_line(rd, reject_fd) < 0)
				s->fatal = 1;
			continue;
		}
		/* CR, a BOM or RS as other tools tolerate them; the reject
		 * file gets the line as it came. */
		raw = line;
		rawlen = len;
		if (!ndjson_trim(&line, &len))
			continue;
		if (json_check_object(line, len, &je) < 0) {
			log_msg(&s->cli.log, LOG_ERROR, lineno, NULL,
			        "column %zu: %s; rejected", je.off + 1, je.msg);
			why = "";
		} else {
			doc = jv_parse_sized(line, (int)len);
			list = asff_findings(doc);
			jv_free(doc);
			if (!jv_is_valid(list)) {
				jv msg = jv_invalid_get_msg(list);

				log_msg(&s->cli.log, LOG_ERROR, lineno, NULL,
				        "%s; rejected", jv_string_value(msg));
				jv_free(msg);
				why = "";
			} else {
				jv_array_foreach(list, i, f)
				{
					jv text = finding_text(f);
					int w = ndjson_write(
					        &s->out, jv_string_value(text),
					        (size_t)jv_string_length_bytes(
					                jv_copy(text)));

					if (w == 0)
						w = ndjson_write(&s->out, "\n",
						                 1);
					if (w == NDJSON_EPIPE)
						s->epipe = 1;
					else if (w != 0) {
						log_error(&s->cli.log,
						          "standard output: %s",
						          strerror(errno));
						s->fatal = 1;
					} else
						s->emitted++;
					jv_free(text);
					jv_free(f);
				}
				jv_free(list);
			}
		}
		if (why != NULL) {
			nbad++;
			if (reject_fd >= 0 &&
			    (ndjson_write_all(reject_fd, raw, rawlen) != 0 ||
			     ndjson_write_all(reject_fd, "\n", 1) != 0))
				s->fatal = 1;
		}
	}
	finish_output(s);
	if (reject_fd >= 0)
		close(reject_fd);
	ndjson_reader_free(rd);
	return s->fatal ? SOAR_EXIT_FATAL
	       : nbad   ? SOAR_EXIT_PARTIAL
	                : SOAR_EXIT_OK;
}

/* --listen: a Message of an SNS notification into event lines. */
static int
convert(void *arg, const char *message, struct buf *out, size_t *nlines,
        char *why, size_t whysz)
{
	struct json_err je;
	size_t len = strlen(message);
	jv doc, list;
	int rc = 0;

	(void)arg;
	if (json_check_object(message, len, &je) < 0) {
		snprintf(why, whysz, "Message column %zu: %s", je.off + 1,
		         je.msg);
		return -1;
	}
	doc = jv_parse_sized(message, (int)len);
	list = asff_findings(doc);
	jv_free(doc);
	if (!jv_is_valid(list)) {
		jv msg = jv_invalid_get_msg(list);

		snprintf(why, whysz, "Message: %s", jv_string_value(msg));
		jv_free(msg);
		return -1;
	}
	jv_array_foreach(list, i, f)
	{
		jv text = finding_text(f);

		if (rc == 0 && (buf_append(out, jv_string_value(text),
		                           (size_t)jv_string_length_bytes(
		                                   jv_copy(text))) < 0 ||
		                buf_putc(out, '\n') < 0)) {
			snprintf(why, whysz, "out of memory");
			rc = -1;
		}
		(*nlines)++;
		jv_free(text);
		jv_free(f);
	}
	jv_free(list);
	return rc;
}

static volatile sig_atomic_t stopping;
static int stop_pipe[2] = {-1, -1};

static void
on_signal(int sig)
{
	int e = errno;

	(void)sig;
	stopping = 1;
	if (write(stop_pipe[1], "", 1) < 0) {
		/* Full: a wake-up is pending already. */
	}
	errno = e;
}

/* --listen: SNS deliveries until SIGINT or SIGTERM. */
static int
listen_sns(struct sh *s)
{
	struct snsrecv_config rc;
	struct snsrecv_stats st;
	struct soar_error err = {0};
	struct http_config hc;
	/* One signal stops the receiver gracefully; a second one, the
	 * default action, ends it at once. */
	struct sigaction sa = {.sa_handler = on_signal,
	                       .sa_flags = SA_RESETHAND};
	char *user = NULL, *password = NULL;
	int status = SOAR_EXIT_FATAL;

	snsrecv_config_defaults(&rc);
	/* Basic auth: the credentials SNS puts in the endpoint URL. */
	if (secret_get("SH_LISTEN_USER", NULL, &user, &err) < 0 ||
	    secret_get("SH_LISTEN_PASSWORD", NULL, &password, &err) < 0) {
		log_error(&s->cli.log, "%s", err.message);
		status = SOAR_EXIT_USAGE;
		goto out;
	}
	if ((user == NULL) != (password == NULL)) {
		log_error(&s->cli.log, "set both SH_LISTEN_USER and "
		                       "SH_LISTEN_PASSWORD, or neither");
		status = SOAR_EXIT_USAGE;
		goto out;
	}
	if (s->cli.reject_path != NULL &&
	    (rc.reject_fd = open(s->cli.reject_path,
	                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	                         0600)) < 0) {
		log_error(&s->cli.log, "--reject %s: %s", s->cli.reject_path,
		          strerror(errno));
		status = SOAR_EXIT_USAGE;
		goto out;
	}
	http_config_defaults(&hc);
	/* SNS waits 15 s for the answer: fetches must end well before. */
	hc.jobs = 4;
	hc.timeout_ms = s->cli.timeout < 5 ? s->cli.timeout * 1000 : 5000;
	hc.connect_timeout_ms = 3000;
	hc.retries = 1;
	hc.max_wait_ms = 1000;
	hc.max_body = 64 * 1024;
	hc.user_agent = "soarutils-sh-findings/" SOAR_VERSION;
	hc.log = &s->cli.log;
	if ((s->http = http_new(&hc, &err)) == NULL) {
		log_error(&s->cli.log, "%s", err.message);
		goto out;
	}
	if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error(&s->cli.log, "pipe: %s", strerror(errno));
		goto out;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc.listen = s->listen;
	rc.cert_host = s->cert_host;
	rc.cafile = getenv("SOAR_CA_BUNDLE");
	if (rc.cafile != NULL && rc.cafile[0] == '\0')
		rc.cafile = NULL;
	rc.topics = s->topics;
	if (s->max_age > 0)
		rc.max_age_s = s->max_age;
	rc.user = user;
	rc.password = password;
	rc.http = s->http;
	rc.log = &s->cli.log;
	rc.convert = convert;
	rc.arg = s;
	if (snsrecv_run(&rc, &stopping, stop_pipe[0], &st, &err) < 0) {
		log_error(&s->cli.log, "--listen %s: %s", s->listen,
		          err.message);
		status = strcmp(err.code, "usage") == 0 ||
		                         strcmp(err.code, "config") == 0
		                 ? SOAR_EXIT_USAGE
		                 : SOAR_EXIT_FATAL;
		goto out;
	}
	log_info(&s->cli.log,
	         "%zu deliveries: %zu notifications accepted, %zu events "
	         "written, %zu refused, %zu deferred, %zu duplicates, %zu "
	         "unusable",
	         st.deliveries, st.accepted, st.lines, st.rejected, st.deferred,
	         st.duplicates, st.unusable);
	if (st.out_failed)
		log_error(&s->cli.log, "standard output: %s",
		          strerror(st.out_failed));
	if (st.lost > 0 && !st.epipe)
		log_error(&s->cli.log,
		          "%zu events acknowledged to SNS were not written",
		          st.lost);
	status = st.out_failed || (st.lost > 0 && !st.epipe) ? SOAR_EXIT_FATAL
	         : st.epipe                                  ? SOAR_EXIT_OK
	         : st.unusable > 0                           ? SOAR_EXIT_PARTIAL
	                                                     : SOAR_EXIT_OK;
out:
	if (rc.reject_fd >= 0)
		close(rc.reject_fd);
	secret_free(user);
	secret_free(password);
	return status;
}

int
main(int argc, char *argv[])
{
	struct sh s = {.filters = jv_invalid(),
	               .since_ms = -1,
	               .overlap = 600,
	               .page_size = 100};
	struct http_config hc;
	struct soar_error err = {0};
	int status;

	cli_hygiene();
	if (cli_init(&s.cli, "sh-findings",
	             "[-s LIST] [--state FILE] [options]",
	             "Write AWS Security Hub findings as events.", options,
	             sizeof(options) / sizeof(options[0])) < 0)
		return SOAR_EXIT_FATAL;
	s.cli.rate = 3; /* GetFindings: 3 a second, bursts of 6 */
	parse_args(&s, argc, argv);
	ndjson_writer_init(&s.out, 1, s.cli.line_buffered);
	if (s.listen) {
		status = listen_sns(&s);
		goto out;
	}
	if (s.events) {
		cli_check_stdin(&s.cli);
		status = events(&s);
		buf_free(&s.out.buf);
		cli_free(&s.cli);
		return status;
	}
	/* No credentials is a configuration error: say so before anything. */
	s.creds = aws_cli_creds(&s.cli, &s.aws,
	                        "soarutils-sh-findings/" SOAR_VERSION, 1,
	                        &status);
	if (s.creds == NULL)
		goto out;
	http_config_defaults(&hc);
	hc.jobs = MAX_REGIONS;
	hc.rate = s.cli.rate;
	hc.burst = s.cli.rate >= 3 ? 2 * s.cli.rate : 1;
	hc.timeout_ms = s.cli.timeout * 1000;
	hc.retries = (int)s.cli.retries;
	hc.max_body = 64 * 1024 * 1024;
	hc.user_agent = "soarutils-sh-findings/" SOAR_VERSION;
	hc.log = &s.cli.log;
	if ((s.http = http_new(&hc, &err)) == NULL) {
		log_error(&s.cli.log, "%s", err.message);
		status = SOAR_EXIT_FATAL;
		goto out;
	}
	status = pull(&s);
out:
	buf_free(&s.out.buf);
	if (s.http != NULL)
		http_free(s.http);
	awscreds_free(s.creds);
	jv_free(s.filters);
	cli_free(&s.cli);
	return status;
}
