/* es-index: bulk-indexes events into Elasticsearch, adding "es_index". */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include "lib/jqpath.h"
#include "lib/jqx.h"
#include "lib/json.h"
#include "lib/ndjson.h"

enum {
	OPT_INDEX = 'i',
	OPT_BATCH = 'b',
	OPT_JOBS = 'j',
	OPT_OP = CLI_TOOL_KEYS,
	OPT_ID,
	OPT_WHEN,
	OPT_BATCH_BYTES,
	OPT_FLUSH_INTERVAL,
	OPT_METRICS,
	OPT_PIPELINE,
	OPT_AS,
};

static const struct cli_opt options[] = {
        {"index", OPT_INDEX, "NAME", "index or data stream to write to"},
        {"op", OPT_OP, "create|index", "bulk action (default create)"},
        {"id", OPT_ID, "EXPR", "jq expression giving each document's _id"},
        {"when", OPT_WHEN, "EXPR", "index only events where EXPR is true"},
        {"batch", OPT_BATCH, "N", "events per bulk request (default 1000)"},
        {"batch-bytes", OPT_BATCH_BYTES, "SIZE",
         "bytes per bulk request (default 5M)"},
        {"flush-interval", OPT_FLUSH_INTERVAL, "DUR",
         "send a batch older than DUR (default 1s)"},
        {"jobs", OPT_JOBS, "N", "bulk requests in flight (default 2)"},
        {"metrics", OPT_METRICS, NULL, "add soar.* metrics to each document"},
        {"pipeline", OPT_PIPELINE, "NAME", "soar.pipeline of --metrics"},
        {"as", OPT_AS, "KEY", "name of the added key (default es_index)"},
        CLI_OPT_RATE("bulk requests per second (default: no limit)"),
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

#define BATCH_MAX   100000
#define JOBS_MAX    64
#define ID_MAX      512 /* Elasticsearch refuses longer _id values */
#define BACKOFF_MS  500 /* first ceiling of an item retry's wait */
#define BACKOFF_CAP 20000
enum state { B_FREE, B_FILLING, B_FLIGHT, B_WAITING, B_DONE };

/* One input event of a batch. */
struct item {
	size_t lineno;
	size_t ev_off, ev_len; /* the event's text, in body or in lines */
	size_t off, end;       /* its action and document lines in body */
	jv result;             /* the added key's value; invalid: untouched */
	int attempts;          /* bulk requests that carried it */
	unsigned sent : 1, in_body : 1, retry : 1;
};

/* Events read together and sent in one _bulk request (and the retries of
 * its failed items), written out in input order once all are answered. */
struct batch {
	struct ix *x;
	enum state state;
	struct item *items;
	size_t n, cap;
	struct buf body;  /* action and document lines */
	struct buf lines; /* events whose text is not a document in body */
	size_t unsent;    /* bytes of lines not sent (--when, failures) */
	struct buf req;   /* body of a retry */
	size_t *sent;     /* items of the request in flight, in order */
	size_t nsent;
	long long opened, retry_at; /* monotonic ms */
	int rounds;
};

struct ix {
	struct cli cli;
	const char *index, *op, *id, *when, *key, *pipeline;
	long long batch, jobs;
	size_t batch_bytes;
	long flush_ms;
	int metrics;
	struct jqx *jq;
	struct jqpath *paths;
	int id_idx, when_idx;
	struct es es;
	struct http *http;
	struct buf url;
	struct ndjson_writer out;
	struct batch *ring; /* count batches from head, in input order */
	size_t nslots, head, count;
	unsigned long long rng;
	struct buf act, doc, val, line;
	size_t nread, nindexed, nfailed, nbad, nrequests;
	int fatal, epipe, refused, cancelled, eof;
	int stopped; /* input ended early (reject file, read error): what
	                was read is still indexed and written, then exit 3 */
};

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long
real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Index and data stream names as Elasticsearch accepts them, restricted to
 * what needs no escaping in a URL path (no date math). */
static int
index_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 255 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 ||
	    *s == '-' || *s == '_' || *s == '+')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.' || *s == '+'))
			return 0;
	return 1;
}

/* A duration with an "ms" suffix, or as cli_parse_duration takes it. */
static int
parse_ms(const char *s, long *ms)
{
	size_t n = strlen(s);
	long long v;
	long secs;

	if (n > 2 && strcmp(s + n - 2, "ms") == 0) {
		char num[32];

		if (n - 2 >= sizeof(num))
			return -1;
		memcpy(num, s, n - 2);
		num[n - 2] = '\0';
		if (cli_parse_long(num, 0, 3600000, &v) < 0)
			return -1;
		*ms = (long)v;
		return 0;
	}
	if (cli_parse_duration(s, &secs) < 0 || secs > 3600)
		return -1;
	*ms = secs * 1000;
	return 0;
}

static void
parse_args(struct ix *x, int argc, char **argv)
{
	struct cli *c = &x->cli;
	const char *arg;
	int key;

	while ((key = cli_next(c, argc, argv, &arg)) != -1) {
		if (cli_common(c, key, arg))
			continue;
		switch (key) {
		case OPT_INDEX:
			if (!index_ok(arg))
				cli_usage_error(c,
				                "--index '%s': lower-case "
				                "letters, digits and -_.+, not "
				                "starting with -_+",
				                arg);
			x->index = arg;
			break;
		case OPT_OP:
			if (strcmp(arg, "create") != 0 &&
			    strcmp(arg, "index") != 0)
				cli_usage_error(c, "--op: create or index");
			x->op = arg;
			break;
		case OPT_ID:
			x->id = arg;
			break;
		case OPT_WHEN:
			x->when = arg;
			break;
		case OPT_BATCH:
			if (cli_parse_long(arg, 1, BATCH_MAX, &x->batch) < 0)
				cli_usage_error(c, "--batch: 1 to %d",
				                BATCH_MAX);
			break;
		case OPT_BATCH_BYTES:
			if (cli_parse_size(arg, &x->batch_bytes) < 0 ||
			    x->batch_bytes < 1024 ||
			    x->batch_bytes > (size_t)100 << 20)
				cli_usage_error(c, "--batch-bytes: 1K to 100M");
			break;
		case OPT_FLUSH_INTERVAL:
			if (parse_ms(arg, &x->flush_ms) < 0)
				cli_usage_error(c, "--flush-interval: a "
				                   "duration such as 500ms, 2s "
				                   "or 1m, at most 1h");
			break;
		case OPT_JOBS:
			if (cli_parse_long(arg, 1, JOBS_MAX, &x->jobs) < 0)
				cli_usage_error(c, "--jobs: 1 to %d", JOBS_MAX);
			break;
		case OPT_METRICS:
			x->metrics = 1;
			break;
		case OPT_PIPELINE:
			if (*arg == '\0')
				cli_usage_error(c, "--pipeline: empty name");
			x->pipeline = arg;
			break;
		case OPT_AS:
			if (*arg == '\0')
				cli_usage_error(c, "--as: empty key");
			x->key = arg;
			break;
		default:
			cli_usage_error(c, "unhandled option");
		}
	}
	if (optind < argc)
		cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	if (x->index == NULL)
		cli_usage_error(c, "--index is required");
	if (x->pipeline != NULL && !x->metrics)
		cli_usage_error(c, "--pipeline needs --metrics");
}

static void
compile(struct ix *x)
{
	struct buf msgs = BUF_INIT;

	x->when_idx = x->id_idx = -1;
	if (x->when == NULL && x->id == NULL)
		return;
	if ((x->jq = jqx_new()) == NULL || (x->paths = jqpath_new()) == NULL)
		exit(SOAR_EXIT_FATAL);
	if (x->when != NULL) {
		x->when_idx = jqx_add(x->jq, x->when, "--when");
		jqpath_add_program(x->paths, x->when);
	}
	if (x->id != NULL) {
		x->id_idx = jqx_add(x->jq, x->id, "--id");
		jqpath_add_program(x->paths, x->id);
	}
	if (jqx_compile(x->jq, &msgs) < 0) {
		log_error(&x->cli.log, "cannot compile the jq program:");
		log_flush_buf(&x->cli.log, &msgs);
		buf_free(&msgs);
		jqx_free(x->jq);
		jqpath_free(x->paths);
		cli_free(&x->cli);
		exit(SOAR_EXIT_USAGE);
	}
	buf_free(&msgs);
}

static jv
not_sent(void)
{
	return event_error("auth",
	                   "not sent: Elasticsearch refused the credentials");
}

/* Parses RFC 3339 text ("2026-11-22T08:00:00.250Z", "...+02:00") into
 * milliseconds since the epoch.  Returns 0, or -1 when it is not that. */
static int
rfc3339_ms(const char *s, long long *ms)
{
	static const int at[] = {0, 5, 8, 11, 14, 17};
	static const int len[] = {4, 2, 2, 2, 2, 2};
	static const char sep[] = "--T::";
	int v[6], frac = 0, scale = 1000, off = 0;
	struct tm tm = {0};
	const char *p;

	for (int i = 0; i < 6; i++) {
		v[i] = 0;
		for (int k = 0; k < len[i]; k++) {
			char ch = s[at[i] + k];

			if (ch < '0' || ch > '9')
				return -1;
			v[i] = v[i] * 10 + (ch - '0');
		}
		if (i < 5 && s[at[i] + len[i]] != sep[i] &&
		    !(i == 2 && (s[10] == 't' || s[10] == ' ')))
			return -1;
	}
	p = s + 19;
	if (*p == '.') {
		if (p[1] < '0' || p[1] > '9')
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
	}
	if ((*p == '+' || *p == '-') && p[1] >= '0' && p[1] <= '2' &&
	    p[2] >= '0' && p[2] <= '9' && p[3] == ':' && p[4] >= '0' &&
	    p[4] <= '5' && p[5] >= '0' && p[5] <= '9' && p[6] == '\0')
		off = (*p == '-' ? -1 : 1) *
		      (((p[1] - '0') * 10 + p[2] - '0') * 60 +
		       (p[4] - '0') * 10 + p[5] - '0');
	else if (!((*p == 'Z' || *p == 'z') && p[1] == '\0'))
		return -1;
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return -1;
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	*ms = ((long long)timegm(&tm) - off * 60LL) * 1000 + frac;
	return 0;
}

/* The fields --metrics reads; the ".error" ones name a step that failed. */
static const char *const metric_paths[] = {
        "alert.created",   "decision.outcome", "decision.rule",  "ec2.status",
        "jira.key",        "vt.verdict",       "decision.error", "vt.error",
        "ec2.error",       "jira.error",       "slack.error",    "falcon.error",
        "sh_update.error", "es_update.error",
};
static const char *const metric_names[] = {
        NULL, "outcome", "rule", "containment", "ticket", "vt_verdict",
};
#define NMETRIC  (sizeof(metric_paths) / sizeof(metric_paths[0]))
#define NSTRINGS (sizeof(metric_names) / sizeof(metric_names[0]))

/* The "soar" object of --metrics for an event, dumped into x->val. */
static int
metrics(struct ix *x, const char *line, size_t len)
{
	struct event_span sp[NMETRIC];
	long long now = real_ms(), created;
	jv s = jv_object(), failed = jv_array();
	char ts[40];
	struct tm tm;
	time_t secs = (time_t)(now / 1000);

	event_find_many(line, len, metric_paths, NMETRIC, sp);
	if (x->pipeline != NULL)
		s = jv_object_set(s, jv_string("pipeline"),
		                  jv_string(x->pipeline));
	gmtime_r(&secs, &tm);
	if (strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		ts[0] = '\0';
	s = jv_object_set(s, jv_string("indexed_at"),
	                  jv_string_fmt("%s.%03dZ", ts, (int)(now % 1000)));
	for (size_t i = 0; i < NSTRINGS; i++) {
		jv v;

		if (sp[i].len == 0 || line[sp[i].off] != '"')
			continue;
		v = jv_parse_sized(line + sp[i].off, (int)sp[i].len);
		if (jv_get_kind(v) != JV_KIND_STRING) {
			jv_free(v);
			continue;
		}
		if (i == 0) {
			/* A time in the future (clock skew) gives none. */
			if (rfc3339_ms(jv_string_value(v), &created) == 0 &&
			    created <= now)
				s = jv_object_set(
				        s, jv_string("response_time_ms"),
				        jv_number((double)(now - created)));
			jv_free(v);
		} else
			s = jv_object_set(s, jv_string(metric_names[i]), v);
	}
	for (size_t i = NSTRINGS; i < NMETRIC; i++)
		if (sp[i].len > 0)
			failed = jv_array_append(
			        failed,
			        jv_string_sized(
			                metric_paths[i],
			                (int)(strchr(metric_paths[i], '.') -
			                      metric_paths[i])));
	s = jv_object_set(s, jv_string("failed"), failed);
	buf_clear(&x->val);
	return event_dump(s, &x->val);
}

/* The _id for an event: a string, or an integer as its digits. */
static int
event_id(struct ix *x, jv ev, jv *out)
{
	struct soar_error err;
	jv id = jv_invalid();
	int t = jqx_first(x->jq, x->id_idx, ev, &id, &err);

	if (t < 0) {
		*out = event_error_jv(&err, jv_null());
		return -1;
	}
	if (t > 0 && jv_get_kind(id) == JV_KIND_NUMBER)
		id = jv_dump_string(id, 0);
	if (t == 0 || jv_get_kind(id) != JV_KIND_STRING ||
	    jv_string_length_bytes(jv_copy(id)) == 0 ||
	    jv_string_length_bytes(jv_copy(id)) > ID_MAX) {
		jv_free(id);
		*out = event_error("input",
		                   "--id gave no string of 1 to 512 bytes");
		return -1;
	}
	*out = jv_dump_string(id, 0);
	return 0;
}

/* Decides what becomes of an event: returns 1 with x->act (the action
 * line) and x->doc (the document, with --metrics) filled to send it, 0 to
 * pass it through untouched, -1 with *result set when it fails here, or -2
 * when libjq cannot parse it (it is then rejected). */
static int
prepare(struct ix *x, const char *line, size_t len, jv *result)
{
	struct soar_error err;
	jv ev = jv_null(), id = jv_invalid();
	int t;

	*result = jv_invalid();
	if (x->refused) {
		*result = not_sent();
		return -1;
	}
	if (x->jq != NULL) {
		ev = event_parse(line, len, x->paths);
		if (!jv_is_valid(ev)) {
			jv msg = jv_invalid_get_msg(ev);

			log_msg(&x->cli.log, LOG_ERROR, x->nread, NULL,
			        "%s; rejected",
			        jv_get_kind(msg) == JV_KIND_STRING
			                ? jv_string_value(msg)
			                : "unparseable");
			jv_free(msg);
			return -2;
		}
	}
	if (x->when_idx >= 0 &&
	    (t = jqx_truthy(x->jq, x->when_idx, jv_copy(ev), &err)) <= 0) {
		jv_free(ev);
		if (t < 0)
			*result = event_error_jv(&err, jv_null());
		return t;
	}
	if (x->id_idx >= 0) {
		if (event_id(x, ev, &id) < 0) {
			*result = id;
			return -1;
		}
	} else
		jv_free(ev);
	buf_clear(&x->act);
	buf_printf(&x->act, "{\"%s\":{", x->op);
	if (jv_is_valid(id)) {
		buf_puts(&x->act, "\"_id\":");
		buf_append(&x->act, jv_string_value(id),
		           (size_t)jv_string_length_bytes(jv_copy(id)));
		jv_free(id);
	}
	if (buf_puts(&x->act, "}}\n") < 0)
		goto nomem;
	if (x->metrics) {
		struct soar_error e;

		if (metrics(x, line, len) < 0 ||
		    (event_key_absent(line, len, "soar")
		             ? event_add_key(line, len, "soar", x->val.data,
		                             x->val.len, &x->doc, &e)
		             : event_set_key(line, len, "soar", x->val.data,
		                             x->val.len, &x->doc, &e)) < 0)
			goto nomem;
	}
	return 1;
nomem:
	x->fatal = 1;
	*result = event_error("nomem", "out of memory");
	return -1;
}

/* The batch being filled, or NULL. */
static struct batch *
filling(struct ix *x)
{
	struct batch *b;

	if (x->count == 0)
		return NULL;
	b = &x->ring[(x->head + x->count - 1) % x->nslots];
	return b->state == B_FILLING ? b : NULL;
}

/* Opens a batch in a free slot (the caller made sure there is one). */
static struct batch *
open_batch(struct ix *x)
{
	struct batch *b = &x->ring[(x->head + x->count) % x->nslots];

	x->count++;
	b->x = x;
	b->state = B_FILLING;
	b->opened = mono_ms();
	return b;
}

static void
mark(struct item *it, jv result)
{
	jv_free(it->result);
	it->result = result;
}

/* Marks every item of the request in flight with result (consumed). */
static void
mark_sent(struct batch *b, jv result)
{
	for (size_t k = 0; k < b->nsent; k++)
		mark(&b->items[b->sent[k]], jv_copy(result));
	jv_free(result);
}

static void on_done(void *arg, const struct http_response *resp,
                    const struct soar_error *herr);

/* Sends body[0..len) for the items in b->sent. */
static void
submit(struct ix *x, struct batch *b, const struct buf *body)
{
	size_t nh;
	const struct http_header *h =
	        es_headers(&x->es, 0, "application/x-ndjson", &nh);
	struct http_request req = {
	        .method = "POST",
	        .url = x->url.data,
	        .headers = h,
	        .nheaders = nh,
	        .body = body->data,
	        .body_len = body->len,
	        /* With an _id a repeated request writes the same documents;
	         * without one it could add them twice. */
	        .idempotent = x->id != NULL,
	};

	for (size_t k = 0; k < b->nsent; k++)
		b->items[b->sent[k]].attempts++;
	b->rounds++;
	b->state = B_FLIGHT;
	x->nrequests++;
	if (http_submit(x->http, &req, NULL, on_done, b) < 0) {
		mark_sent(b, event_error("nomem", "out of memory"));
		b->state = B_DONE;
		x->fatal = 1;
	}
}

/* Closes the batch being filled and sends its documents. */
static void
close_batch(struct ix *x, struct batch *b)
{
	b->nsent = 0;
	for (size_t i = 0; i < b->n; i++)
		if (b->items[i].sent)
			b->sent[b->nsent++] = i;
	if (b->nsent > 0 && x->refused) {
		/* Refused while the batch was filled: nothing more is sent. */
		mark_sent(b, not_sent());
		b->state = B_DONE;
	} else if (b->nsent == 0)
		b->state = B_DONE;
	else
		submit(x, b, &b->body);
}

/* Whether a failed item may succeed when sent again. */
static int
retryable(long st)
{
	return st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

static const char *
str_member(jv obj, const char *key, jv *hold)
{
	*hold = jv_get_kind(obj) == JV_KIND_OBJECT
	                ? jv_object_get(jv_copy(obj), jv_string(key))
	                : jv_invalid();
	return jv_get_kind(*hold) == JV_KIND_STRING ? jv_string_value(*hold)
	                                            : NULL;
}

/* Records one item of a bulk answer ({"create": {...}}) on its event. */
static void
item_answer(struct ix *x, struct item *it, jv entry)
{
	jv r = jv_invalid(), st, index, id, err, ht, hr, out;
	long status;

	if (jv_get_kind(entry) == JV_KIND_OBJECT)
		jv_object_foreach(entry, k, v)
		{
			jv_free(k);
			if (jv_is_valid(r))
				jv_free(v);
			else
				r = v;
		}
	jv_free(entry);
	if (jv_get_kind(r) != JV_KIND_OBJECT) {
		jv_free(r);
		mark(it, event_error("malformed",
		                     "bulk: an item of the answer is not an "
		                     "object"));
		return;
	}
	st = jv_object_get(jv_copy(r), jv_string("status"));
	status = jv_get_kind(st) == JV_KIND_NUMBER ? (long)jv_number_value(st)
	                                           : 0;
	jv_free(st);
	index = jv_object_get(jv_copy(r), jv_string("_index"));
	id = jv_object_get(jv_copy(r), jv_string("_id"));
	out = jv_object();
	if (jv_get_kind(index) == JV_KIND_STRING)
		out = jv_object_set(out, jv_string("index"), jv_copy(index));
	if (jv_get_kind(id) == JV_KIND_STRING)
		out = jv_object_set(out, jv_string("id"), jv_copy(id));
	jv_free(index);
	jv_free(id);
	err = jv_object_get(jv_copy(r), jv_string("error"));
	if (status >= 200 && status < 300) {
		jv res = jv_object_get(jv_copy(r), jv_string("result"));

		out = jv_object_set(out, jv_string("result"),
		                    jv_get_kind(res) == JV_KIND_STRING
		                            ? res
		                            : (jv_free(res), jv_null()));
		out = jv_object_set(out, jv_string("status"),
		                    jv_number((double)status));
		mark(it, out);
	} else if (status == 409 && strcmp(x->op, "create") == 0 &&
	           x->id != NULL) {
		/* The document of this _id is there already: what an
		 * idempotent re-run is for, not a failure. */
		out = jv_object_set(out, jv_string("result"),
		                    jv_string("exists"));
		mark(it,
		     jv_object_set(out, jv_string("status"), jv_number(409)));
	} else {
		struct soar_error e;
		const char *type = str_member(err, "type", &ht);
		const char *reason = str_member(err, "reason", &hr);

		soar_error_set(&e, type ? type : "http", "%s",
		               reason ? reason : "the item failed");
		if (type == NULL && reason == NULL &&
		    jv_get_kind(err) == JV_KIND_STRING)
			soar_error_set(&e, "http", "%s", jv_string_value(err));
		e.status = status;
		e.attempts = it->attempts;
		jv_free(ht);
		jv_free(hr);
		mark(it, event_error_jv(&e, out));
		it->retry = retryable(status) &&
		            it->attempts <= (int)x->cli.retries && !x->refused;
	}
	jv_free(err);
	jv_free(r);
}

/* Reads a 2xx bulk answer into the items sent. */
static void
bulk_answer(struct ix *x, struct batch *b, const struct http_response *resp)
{
	jv body = jv_parse_sized(resp->body.data ? resp->body.data : "",
	                         (int)resp->body.len);
	jv items = jv_get_kind(body) == JV_KIND_OBJECT
	                   ? jv_object_get(jv_copy(body), jv_string("items"))
	                   : jv_invalid();

	if (jv_get_kind(items) != JV_KIND_ARRAY ||
	    (size_t)jv_array_length(jv_copy(items)) != b->nsent) {
		struct soar_error e;

		soar_error_set(&e, "malformed",
		               "bulk: HTTP %ld: the answer does not list the "
		               "%zu items sent",
		               resp->status, b->nsent);
		e.status = resp->status;
		e.attempts = resp->attempts;
		mark_sent(b, event_error_jv(&e, jv_null()));
	} else
		for (size_t k = 0; k < b->nsent; k++)
			item_answer(x, &b->items[b->sent[k]],
			            jv_array_get(jv_copy(items), (int)k));
	jv_free(items);
	jv_free(body);
}

static void
on_done(void *arg, const struct http_response *resp,
        const struct soar_error *herr)
{
	struct batch *b = arg;
	struct ix *x = b->x;
	int again = 0;

	if (herr != NULL && strcmp(herr->code, "cancelled") == 0)
		mark_sent(b, x->refused
		                     ? not_sent()
		                     : event_error("cancelled",
		                                   "not sent: the run ended"));
	else if (herr != NULL) {
		struct soar_error e;

		es_error("bulk", resp, herr, &e);
		/* Refused credentials will not do better on later batches:
		 * the run ends (exit 3) once the events read are written. */
		if (resp->status == 401 || resp->status == 403) {
			if (!x->refused)
				log_error(&x->cli.log, "%s", e.message);
			x->refused = 1;
		}
		mark_sent(b, event_error_jv(&e, jv_null()));
	} else
		bulk_answer(x, b, resp);
	for (size_t k = 0; k < b->nsent; k++)
		again |= b->items[b->sent[k]].retry;
	if (again) {
		long long ceil = (long long)BACKOFF_MS << (b->rounds - 1);

		/* Full jitter: a wait anywhere below the ceiling. */
		if (ceil > BACKOFF_CAP)
			ceil = BACKOFF_CAP;
		x->rng = x->rng * 6364136223846793005ULL +
		         1442695040888963407ULL;
		b->retry_at =
		        mono_ms() + (long long)((x->rng >> 33) %
		                                (unsigned long long)(ceil + 1));
		b->state = B_WAITING;
	} else
		b->state = B_DONE;
}

/* Sends again, once their wait is over, the items that failed with a
 * retryable status; only those.  Returns the earliest wait left (ms), or
 * -1 when no batch waits. */
static long long
retry_due(struct ix *x, long long now)
{
	long long next = -1;

	for (size_t s = 0; s < x->count; s++) {
		struct batch *b = &x->ring[(x->head + s) % x->nslots];

		if (b->state != B_WAITING)
			continue;
		if (!x->refused && b->retry_at > now) {
			if (next < 0 || b->retry_at - now < next)
				next = b->retry_at - now;
			continue;
		}
		buf_clear(&b->req);
		b->nsent = 0;
		for (size_t i = 0; i < b->n; i++) {
			struct item *it = &b->items[i];

			if (!it->retry)
				continue;
			it->retry = 0;
			b->sent[b->nsent++] = i;
			if (buf_append(&b->req, b->body.data + it->off,
			               it->end - it->off) < 0)
				x->fatal = 1;
		}
		if (x->refused || x->fatal) {
			mark_sent(b, x->fatal ? event_error("nomem",
			                                    "out of memory")
			                      : not_sent());
			b->state = B_DONE;
		} else
			submit(x, b, &b->req);
	}
	return next;
}

static void
write_out(struct ix *x, const char *p, size_t n)
{
	int w;

	if (x->epipe || x->fatal)
		return;
	w = ndjson_write(&x->out, p, n);
	if (w == 0)
		w = ndjson_write(&x->out, "\n", 1);
	if (w == NDJSON_EPIPE)
		x->epipe = 1;
	else if (w != 0) {
		log_error(&x->cli.log, "standard output: %s", strerror(errno));
		x->fatal = 1;
	}
}

/* Writes one event with its result; counts and logs a failure. */
static void
write_item(struct ix *x, struct batch *b, struct item *it)
{
	const char *text =
	        (it->in_body ? b->body.data : b->lines.data) + it->ev_off;
	struct soar_error err;
	jv e, m;

	if (!jv_is_valid(it->result)) {
		write_out(x, text, it->ev_len);
		return;
	}
	e = jv_object_get(jv_copy(it->result), jv_string("error"));
	if (jv_is_valid(e)) {
		char *aid = event_get_string(text, it->ev_len, "alert.id");

		m = jv_object_get(e, jv_string("message"));
		x->nfailed++;
		log_msg(&x->cli.log, LOG_ERROR, it->lineno, aid, "%s",
		        jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m)
		                                         : "indexing failed");
		jv_free(m);
		free(aid);
	} else
		x->nindexed++;
	buf_clear(&x->val);
	if (event_dump(jv_copy(it->result), &x->val) < 0 ||
	    (event_key_absent(text, it->ev_len, x->key)
	             ? event_add_key(text, it->ev_len, x->key, x->val.data,
	                             x->val.len, &x->line, &err)
	             : event_set_key(text, it->ev_len, x->key, x->val.data,
	                             x->val.len, &x->line, &err)) < 0) {
		log_error(&x->cli.log, "line %zu: out of memory", it->lineno);
		x->fatal = 1;
		return;
	}
	write_out(x, x->line.data, x->line.len);
}

static void
flush_out(struct ix *x)
{
	int st = ndjson_flush(&x->out);

	if (st == NDJSON_EPIPE)
		x->epipe = 1;
	else if (st != 0 && !x->fatal && !x->epipe) {
		log_error(&x->cli.log, "standard output: %s", strerror(errno));
		x->fatal = 1;
	}
}

/* Writes the finished batches at the head of the ring, in input order. */
static void
write_done(struct ix *x)
{
	int wrote = 0;

	while (x->count > 0 && x->ring[x->head].state == B_DONE) {
		struct batch *b = &x->ring[x->head];

		for (size_t i = 0; i < b->n; i++) {
			write_item(x, b, &b->items[i]);
			jv_free(b->items[i].result);
		}
		b->n = b->nsent = b->unsent = 0;
		b->rounds = 0;
		buf_clear(&b->body);
		buf_clear(&b->lines);
		buf_clear(&b->req);
		b->state = B_FREE;
		x->head = (x->head + 1) % x->nslots;
		x->count--;
		wrote = 1;
	}
	if (wrote)
		flush_out(x);
}

/* Appends one event to the batch being filled. */
static int
add_item(struct ix *x, struct batch *b, const char *line, size_t len,
         size_t lineno, int send, jv result)
{
	struct item *it;
	const char *doc = x->metrics ? x->doc.data : line;
	size_t doclen = x->metrics ? x->doc.len : len;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct item *ni = realloc(b->items, cap * sizeof(*ni));
		size_t *ns = realloc(b->sent, cap * sizeof(*ns));

		if (ni != NULL)
			b->items = ni;
		if (ns != NULL)
			b->sent = ns;
		if (ni == NULL || ns == NULL) {
			jv_free(result);
			return -1;
		}
		b->cap = cap;
	}
	it = &b->items[b->n];
	*it = (struct item){.lineno = lineno,
	                    .result = result,
	                    .off = b->body.len,
	                    .end = b->body.len};
	if (send) {
		if (buf_append(&b->body, x->act.data, x->act.len) < 0 ||
		    buf_append(&b->body, doc, doclen) < 0 ||
		    buf_putc(&b->body, '\n') < 0)
			goto nomem;
		it->end = b->body.len;
		it->sent = 1;
	}
	if (send && !x->metrics) {
		it->in_body = 1;
		it->ev_off = it->off + x->act.len;
	} else {
		it->ev_off = b->lines.len;
		if (buf_append(&b->lines, line, len) < 0)
			goto nomem;
		if (!send)
			b->unsent += len;
	}
	it->ev_len = len;
	b->n++;
	return 0;
nomem:
	jv_free(it->result);
	return -1;
}

/* Places one valid event in a batch, closing batches by count and size.
 * Returns 0, or -1 when the event is to be rejected. */
static int
take(struct ix *x, const char *line, size_t len, size_t lineno)
{
	struct batch *b = filling(x);
	jv result;
	int send = prepare(x, line, len, &result);
	size_t need;

	if (send == -2)
		return -1;
	need = send == 1 ? x->act.len + (x->metrics ? x->doc.len : len) + 1
	                 : len;
	/* A batch never outgrows --batch-bytes, but for an event bigger
	 * than that on its own. */
	if (b != NULL && b->n > 0 &&
	    b->body.len + b->unsent + need > x->batch_bytes) {
		close_batch(x, b);
		b = NULL;
	}
	if (b == NULL)
		b = open_batch(x);
	if (add_item(x, b, line, len, lineno, send == 1, result) < 0) {
		log_error(&x->cli.log, "line %zu: out of memory", lineno);
		x->fatal = 1;
		return 0;
	}
	if (b->n >= (size_t)x->batch ||
	    b->body.len + b->unsent >= x->batch_bytes)
		close_batch(x, b);
	return 0;
}

static void
reject(struct ix *x, int reject_fd, const char *raw, size_t rawlen)
{
	x->nbad++;
	if (reject_fd >= 0 && (ndjson_write_all(reject_fd, raw, rawlen) != 0 ||
	                       ndjson_write_all(reject_fd, "\n", 1) != 0)) {
		log_error(&x->cli.log, "--reject: %s", strerror(errno));
		x->stopped = x->eof = 1;
	}
}

/* Reads lines while input is ready and a slot is free for a new batch
 * (so that closing the one being filled never has to wait). */
static void
read_some(struct ix *x, struct ndjson_reader *rd, int reject_fd)
{
	const char *line, *raw;
	size_t len, rawlen, lineno;
	struct json_err je;

	for (unsigned k = 1; !x->eof && !x->fatal && x->count < x->nslots &&
	                     ndjson_reader_ready(rd);
	     k++) {
		int rc = ndjson_read_line(rd, &line, &len, &lineno);

		/* Requests in flight go on sending while input is read. */
		if (k % 64 == 0)
			http_poll(x->http, 0, -1);
		if (rc == NDJSON_EOF) {
			x->eof = 1;
			break;
		}
		if (rc == NDJSON_ERR) {
			log_error(&x->cli.log, "reading standard input: %s",
			          strerror(errno));
			x->stopped = x->eof = 1;
			break;
		}
		x->nread = lineno;
		if (rc == NDJSON_TOOLONG) {
			log_msg(&x->cli.log, LOG_ERROR, lineno, NULL,
			        "line longer than --max-line; rejected");
			x->nbad++;
			if (ndjson_skip_line(rd, reject_fd) < 0) {
				log_error(&x->cli.log, "--reject: %s",
				          strerror(errno));
				x->stopped = x->eof = 1;
			}
			continue;
		}
		raw = line;
		rawlen = len;
		if (!ndjson_trim(&line, &len))
			continue;
		if (json_check_object(line, len, &je) < 0) {
			log_msg(&x->cli.log, LOG_ERROR, lineno, NULL,
			        "column %zu: %s; rejected", je.off + 1, je.msg);
			reject(x, reject_fd, raw, rawlen);
			continue;
		}
		if (take(x, line, len, lineno) < 0)
			reject(x, reject_fd, raw, rawlen);
	}
}

/* Waits up to ms for an answer, a retry's time, or (watch) input. */
static void
wait_for(struct ix *x, long long ms, int watch)
{
	if (http_pending(x->http) > 0)
		http_poll(x->http, (long)ms, watch ? 0 : -1);
	else {
		struct pollfd p = {.fd = 0, .events = POLLIN};

		poll(watch ? &p : NULL, watch ? 1 : 0, (int)ms);
	}
}

static int
run(struct ix *x)
{
	struct ndjson_reader *rd = ndjson_reader_new(0, x->cli.max_line);
	int reject_fd = -1;

	if (rd == NULL)
		return SOAR_EXIT_FATAL;
	if (x->cli.reject_path != NULL &&
	    (reject_fd = open(x->cli.reject_path,
	                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	                      0600)) < 0) {
		log_error(&x->cli.log, "--reject %s: %s", x->cli.reject_path,
		          strerror(errno));
		ndjson_reader_free(rd);
		return SOAR_EXIT_USAGE;
	}
	for (;;) {
		long long now = mono_ms(), next, wait = 1000;
		struct batch *f;

		if (x->refused && !x->cancelled) {
			x->cancelled = 1;
			http_cancel_queued(x->http);
		}
		next = retry_due(x, now);
		write_done(x);
		if (x->fatal || x->epipe)
			break;
		f = filling(x);
		if (f != NULL && (x->eof || now - f->opened >= x->flush_ms)) {
			close_batch(x, f);
			continue;
		}
		if (x->eof && x->count == 0)
			break;
		if (!x->eof && x->count < x->nslots &&
		    ndjson_reader_ready(rd)) {
			read_some(x, rd, reject_fd);
			continue;
		}
		if (f != NULL && f->opened + x->flush_ms - now < wait)
			wait = f->opened + x->flush_ms - now;
		if (next >= 0 && next < wait)
			wait = next;
		wait_for(x, wait < 0 ? 0 : wait,
		         !x->eof && x->count < x->nslots);
	}
	/* Stopped early: what is in flight finishes, nothing new is sent. */
	http_cancel_queued(x->http);
	while (http_pending(x->http) > 0)
		http_poll(x->http, 1000, -1);
	if (reject_fd >= 0)
		close(reject_fd);
	ndjson_reader_free(rd);
	log_info(&x->cli.log,
	         "%zu lines, %zu indexed, %zu failed, %zu rejected, %zu "
	         "requests",
	         x->nread, x->nindexed, x->nfailed, x->nbad, x->nrequests);
	if (x->fatal || x->refused || x->stopped)
		return SOAR_EXIT_FATAL;
	return x->nfailed || x->nbad ? SOAR_EXIT_PARTIAL : SOAR_EXIT_OK;
}

static int
setup(struct ix *x)
{
	struct http_config hc;
	struct soar_error err;

	if (es_init(&x->es, NULL, NULL, &err) < 0) {
		log_error(&x->cli.log, "%s", err.message);
		return SOAR_EXIT_USAGE;
	}
	if (es_url(&x->es, "/", &x->url) < 0 ||
	    buf_printf(&x->url, "%s/_bulk", x->index) < 0)
		return SOAR_EXIT_FATAL;
	http_config_defaults(&hc);
	hc.jobs = (int)x->jobs;
	hc.rate = x->cli.rate;
	hc.burst = x->cli.rate >= 1 ? x->cli.rate : 1;
	hc.timeout_ms = x->cli.timeout * 1000;
	hc.retries = (int)x->cli.retries;
	hc.max_body = (size_t)64 << 20;
	hc.user_agent = "soarutils-es-index/" SOAR_VERSION;
	hc.log = &x->cli.log;
	if ((x->http = http_new(&hc, &err)) == NULL) {
		log_error(&x->cli.log, "%s", err.message);
		return SOAR_EXIT_FATAL;
	}
	/* One batch filling, one free to open, the rest in flight. */
	x->nslots = (size_t)x->jobs + 2;
	if ((x->ring = calloc(x->nslots, sizeof(*x->ring))) == NULL)
		return SOAR_EXIT_FATAL;
	x->rng = (unsigned long long)real_ms() ^
	         ((unsigned long long)getpid() << 32);
	return SOAR_EXIT_OK;
}

static void
teardown(struct ix *x)
{
	for (size_t s = 0; x->ring != NULL && s < x->nslots; s++) {
		struct batch *b = &x->ring[s];

		for (size_t i = 0; i < b->n; i++)
			jv_free(b->items[i].result);
		free(b->items);
		free(b->sent);
		buf_free(&b->body);
		buf_free(&b->lines);
		buf_free(&b->req);
	}
	free(x->ring);
	if (x->http != NULL)
		http_free(x->http);
	es_free(&x->es);
	buf_free(&x->url);
	buf_free(&x->act);
	buf_free(&x->doc);
	buf_free(&x->val);
	buf_free(&x->line);
	buf_free(&x->out.buf);
	jqx_free(x->jq);
	jqpath_free(x->paths);
	cli_free(&x->cli);
}

int
main(int argc, char *argv[])
{
	struct ix x = {.op = "create",
	               .key = "es_index",
	               .batch = 1000,
	               .batch_bytes = (size_t)5 << 20,
	               .flush_ms = 1000,
	               .jobs = 2};
	int status;

	cli_hygiene();
	if (cli_init(&x.cli, "es-index", "-i NAME [options]",
	             "Bulk-index events into Elasticsearch.", options,
	             sizeof(options) / sizeof(options[0])) < 0)
		return SOAR_EXIT_FATAL;
	x.cli.rate = 0;
	parse_args(&x, argc, argv);
	cli_check_stdin(&x.cli);
	compile(&x);
	ndjson_writer_init(&x.out, 1, x.cli.line_buffered);
	status = setup(&x);
	if (status == SOAR_EXIT_OK)
		status = run(&x);
	teardown(&x);
	return status;
}
