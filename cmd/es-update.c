/* es-update: sets the workflow status of Elastic Security alerts. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jv.h>

#include "lib/cli.h"
#include "lib/es.h"
#include "lib/event.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/jqx.h"
#include "lib/ndjson.h"

enum {
	OPT_STATUS = 's',
	OPT_REASON = 'r',
	OPT_SPACE = CLI_TOOL_KEYS,
	OPT_WHEN,
	OPT_DRY_RUN,
	OPT_BATCH,
	OPT_JOBS,
	OPT_AS,
};

static const struct cli_opt options[] = {
        {"status", OPT_STATUS, "STATUS",
         "workflow status: open, acknowledged or closed"},
        {"reason", OPT_REASON, "REASON",
         "closing reason, with --status closed"},
        {"space", OPT_SPACE, "SPACE",
         "Kibana space (default: the alert's own)"},
        {"when", OPT_WHEN, "EXPR", "update only events where EXPR is true"},
        {"dry-run", OPT_DRY_RUN, NULL, "show what would be sent, send nothing"},
        {"batch", OPT_BATCH, "N", "alerts per request (1-1000, default 100)"},
        {"jobs", OPT_JOBS, "N", "requests in flight (1-16, default 4)"},
        {"as", OPT_AS, "KEY", "name of the added key (default es_update)"},
        CLI_OPT_RATE("requests per second (default: no limit)"),
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

#define BATCH_MAX   1000
#define JOBS_MAX    16
#define SPACE_MAX   100  /* Kibana space ids are at most this long */
#define ID_MAX      1024 /* longest elastic.id taken */
#define STATUS_PATH "/api/detection_engine/signals/status"
#define SEARCH_PATH "/api/detection_engine/signals/search"

/* One input event of the chunk being handled. */
struct item {
	char *line; /* the event's text */
	size_t len, lineno;
	char *id;    /* elastic.id to update; NULL: nothing to send */
	char *alert; /* alert.id for messages, or NULL */
	char space[SPACE_MAX + 1]; /* "" for the default space */
	jv result;                 /* what goes under the key; invalid: none */
};

/* One request: the alerts of one space, up to --batch distinct ids. */
struct batch {
	struct up *u;
	size_t *idx; /* the items of the batch, duplicates of an id too */
	size_t n;
	jv ids;         /* the distinct ids */
	char note[200]; /* what the status answer said, when not all done */
	int conflicts;  /* the answer reported version conflicts */
};

struct up {
	struct cli cli;
	const char *status, *reason, *space, *when, *key;
	int dry_run;
	long long batch, jobs;
	struct jqx *jq;
	int when_idx;
	struct es es;
	int have_es;
	struct http *http;
	struct ndjson_writer out;
	struct item *items; /* batch * jobs of them */
	struct batch *batches;
	size_t *idx;
	size_t cap, nitems, nbatches;
	size_t nfailed, nupdated, nskipped;
	int fatal, epipe;
	int stop;    /* input ended early (reject file, read error): the events
	                read are still sent and written, then exit 3 */
	int refused; /* credentials refused: nothing more is sent */
};

static void
parse_args(struct up *u, int argc, char **argv)
{
	static const char *const reasons[] = {
	        "false_positive",        "issue_resolved", "acceptable_risk",
	        "expected_activity",     "low_severity",   "duplicate",
	        "investigation_required"};
	struct cli *c = &u->cli;
	const char *arg;
	int key, ok = 0;

	while ((key = cli_next(c, argc, argv, &arg)) != -1) {
		if (cli_common(c, key, arg))
			continue;
		switch (key) {
		case OPT_STATUS:
			u->status = arg;
			break;
		case OPT_REASON:
			u->reason = arg;
			break;
		case OPT_SPACE:
			u->space = arg;
			break;
		case OPT_WHEN:
			u->when = arg;
			break;
		case OPT_DRY_RUN:
			u->dry_run = 1;
			break;
		case OPT_BATCH:
			if (cli_parse_long(arg, 1, BATCH_MAX, &u->batch) < 0)
				cli_usage_error(c, "--batch: 1 to %d",
				                BATCH_MAX);
			break;
		case OPT_JOBS:
			if (cli_parse_long(arg, 1, JOBS_MAX, &u->jobs) < 0)
				cli_usage_error(c, "--jobs: 1 to %d", JOBS_MAX);
			break;
		case OPT_AS:
			u->key = arg;
			break;
		default:
			cli_usage_error(c, "unhandled option");
		}
	}
	if (optind < argc)
		cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	if (u->status == NULL)
		cli_usage_error(c,
		                "give --status open, acknowledged or closed");
	if (strcmp(u->status, "open") != 0 &&
	    strcmp(u->status, "acknowledged") != 0 &&
	    strcmp(u->status, "closed") != 0)
		cli_usage_error(c, "--status: open, acknowledged or closed");
	for (size_t i = 0; u->reason && i < 7; i++)
		ok |= strcmp(u->reason, reasons[i]) == 0;
	if (u->reason != NULL && !ok)
		cli_usage_error(c, "--reason: false_positive, issue_resolved, "
		                   "acceptable_risk, expected_activity, "
		                   "low_severity, duplicate or "
		                   "investigation_required");
	/* Kibana keeps a reason only when it closes an alert. */
	if (u->reason != NULL && strcmp(u->status, "closed") != 0)
		cli_usage_error(c, "--reason goes with --status closed only");
	if (u->space != NULL && !es_space_ok(u->space))
		cli_usage_error(c, "--space: a Kibana space id (a-z, 0-9, _ "
		                   "and -)");
	if (u->key[0] == '\0')
		cli_usage_error(c, "--as: a key name");
}

static void
compile(struct up *u)
{
	struct buf msgs = BUF_INIT;

	u->when_idx = -1;
	if (u->when == NULL)
		return;
	if ((u->jq = jqx_new()) == NULL)
		exit(SOAR_EXIT_FATAL);
	u->when_idx = jqx_add(u->jq, u->when, "--when");
	if (jqx_compile(u->jq, &msgs) < 0) {
		log_error(&u->cli.log, "cannot compile the jq program:");
		log_flush_buf(&u->cli.log, &msgs);
		buf_free(&msgs);
		jqx_free(u->jq);
		cli_free(&u->cli);
		exit(SOAR_EXIT_USAGE);
	}
	buf_free(&msgs);
}

/* {"status", "reason"?, what: true}: the outcome the run asked for. */
static jv
done_result(const struct up *u, const char *what)
{
	jv r = jv_object_set(jv_object(), jv_string("status"),
	                     jv_string(u->status));

	if (u->reason != NULL)
		r = jv_object_set(r, jv_string("reason"), jv_string(u->reason));
	return jv_object_set(r, jv_string(what), jv_true());
}

/* The space of an alert from the index es-fetch read it from:
 * .internal.alerts-security.alerts-SPACE-000001, its alias
 * .alerts-security.alerts-SPACE, or 7.x's .siem-signals-SPACE[-00000N].
 * Returns 0, or -1 when index is not named so. */
static int
index_space(const char *index, char *out, size_t n)
{
	static const char *const prefixes[] = {
	        ".internal.alerts-security.alerts-", ".alerts-security.alerts-",
	        ".siem-signals-"};
	const char *s = NULL;
	size_t len;

	for (size_t i = 0; s == NULL && i < 3; i++)
		if (strncmp(index, prefixes[i], strlen(prefixes[i])) == 0)
			s = index + strlen(prefixes[i]);
	if (s == NULL)
		return -1;
	len = strlen(s);
	/* A rollover suffix: "-" and six digits. */
	if (len > 7 && s[len - 7] == '-' &&
	    strspn(s + len - 6, "0123456789") == 6)
		len -= 7;
	if (len == 0 || len >= n)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return es_space_ok(out) ? 0 : -1;
}

/* Reads what an event needs: --when, its elastic.id and its space.  Sets
 * it->id, or it->result when the event is skipped or fails. */
static void
prepare(struct up *u, struct item *it)
{
	static const char *const paths[] = {"elastic.id", "elastic.index"};
	struct event_span sp[2];
	struct soar_error err;
	char *index;

	it->id = it->alert = NULL;
	it->space[0] = '\0';
	it->result = jv_invalid();
	if (u->when_idx >= 0) {
		jv ev = jv_parse_sized(it->line, (int)it->len);
		int t = jqx_truthy(u->jq, u->when_idx, ev, &err);

		if (t < 0)
			it->result = event_error_jv(&err, jv_null());
		if (t <= 0)
			return;
	}
	it->alert = event_get_string(it->line, it->len, "alert.id");
	event_find_many(it->line, it->len, paths, 2, sp);
	if (sp[0].len == 0) {
		it->result = jv_object_set(jv_object(), jv_string("skipped"),
		                           jv_string("no elastic.id"));
		return;
	}
	it->id = event_get_string(it->line, it->len, "elastic.id");
	if (it->id == NULL || it->id[0] == '\0' || strlen(it->id) > ID_MAX) {
		free(it->id);
		it->id = NULL;
		it->result = event_error("input",
		                         "elastic.id is not an alert id (a "
		                         "string of 1 to %d bytes)",
		                         ID_MAX);
		return;
	}
	if (u->space != NULL) {
		if (strcmp(u->space, "default") != 0)
			snprintf(it->space, sizeof(it->space), "%s", u->space);
		return;
	}
	if (sp[1].len == 0)
		return;
	index = event_get_string(it->line, it->len, "elastic.index");
	if (index == NULL ||
	    index_space(index, it->space, sizeof(it->space)) < 0) {
		it->result = event_error(
		        "input",
		        "elastic.index '%s' is not a Kibana alerts index: give "
		        "--space",
		        index ? index : "(not a string)");
		free(it->id);
		it->id = NULL;
	} else if (strcmp(it->space, "default") == 0)
		it->space[0] = '\0';
	free(index);
}

/* Marks every item of b with result (consumed). */
static void
mark_all(struct batch *b, jv result)
{
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->u->items[b->idx[i]];

		jv_free(it->result);
		it->result = jv_copy(result);
	}
	jv_free(result);
}

static void
mark_error(struct batch *b, const struct soar_error *e)
{
	mark_all(b, event_error_jv(e, jv_null()));
}

/* Credentials refused: the run ends (exit 3) once the events read are
 * written, and nothing more is sent. */
static void
check_refused(struct up *u, long status)
{
	if ((status == 401 || status == 403) && !u->refused) {
		u->refused = 1;
		log_error(&u->cli.log,
		          "Kibana refused the credentials (HTTP "
		          "%ld): nothing more is sent",
		          status);
	}
}

static void
mark_not_sent(struct batch *b)
{
	struct soar_error e;

	soar_error_set(&e, "auth", "not sent: Kibana refused the credentials");
	mark_error(b, &e);
}

/* Submits a POST of body (consumed) to path in the batch's space. */
static int
post(struct batch *b, const char *path, jv body, http_done_fn done)
{
	struct up *u = b->u;
	const char *space = u->items[b->idx[0]].space;
	jv text = jv_dump_string(body, 0);
	struct buf url = BUF_INIT;
	struct http_request req = {.method = "POST", .idempotent = 1};
	int rc;

	req.headers = es_headers(&u->es, 1, "application/json", &req.nheaders);
	req.body = jv_string_value(text);
	req.body_len = (size_t)jv_string_length_bytes(jv_copy(text));
	rc = es_kibana_url_in(&u->es, space, path, &url);
	req.url = url.data;
	if (rc == 0)
		rc = http_submit(u->http, &req, NULL, done, b);
	jv_free(text);
	buf_free(&url);
	return rc;
}

/* The _source of each hit of a search answer, by _id, or an invalid jv
 * when the answer holds no list of hits. */
static jv
hits_by_id(const struct http_response *resp)
{
	jv body = jv_parse_sized(resp->body.data ? resp->body.data : "",
	                         (int)resp->body.len);
	jv hits = jv_get_kind(body) == JV_KIND_OBJECT
	                  ? jv_getpath(body, JV_ARRAY(jv_string("hits"),
	                                              jv_string("hits")))
	                  : (jv_free(body), jv_invalid());
	jv seen = jv_object();

	if (jv_get_kind(hits) != JV_KIND_ARRAY) {
		jv_free(hits);
		jv_free(seen);
		return jv_invalid();
	}
	jv_array_foreach(hits, i, h)
	{
		jv id = jv_get_kind(h) == JV_KIND_OBJECT
		                ? jv_object_get(jv_copy(h), jv_string("_id"))
		                : jv_invalid();

		if (jv_get_kind(id) == JV_KIND_STRING)
			seen = jv_object_set(
			        seen, id,
			        jv_object_get(h, jv_string("_source")));
		else {
			jv_free(id);
			jv_free(h);
		}
	}
	jv_free(hits);
	return seen;
}

/* Marks each item by what reading its alert back found. */
static void
on_check(void *arg, const struct http_response *resp,
         const struct soar_error *herr)
{
	struct batch *b = arg;
	struct up *u = b->u;
	struct soar_error e, why;
	jv seen = herr == NULL ? hits_by_id(resp) : jv_invalid();

	if (!jv_is_valid(seen)) {
		if (herr == NULL)
			soar_error_set(&why, "malformed",
			               "the answer holds no hits");
		else if (strcmp(herr->code, "cancelled") == 0 && u->refused)
			soar_error_set(&why, "auth",
			               "Kibana refused the credentials");
		else
			es_error("signals search", resp, herr, &why);
		check_refused(u, resp->status);
		soar_error_set(&e, "unverified",
		               "%s; reading the alerts back failed: %.200s",
		               b->note, why.message);
		e.status = why.status;
		e.attempts = why.attempts;
		mark_error(b, &e);
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &u->items[b->idx[i]];
		jv src = jv_object_get(jv_copy(seen), jv_string(it->id));
		jv st = es_field(src, "kibana.alert.workflow_status");

		jv_free(it->result);
		if (!jv_is_valid(src))
			it->result = event_error(
			        "not_found", "no alert with this id in %s",
			        it->space[0] ? it->space : "the default space");
		else if (jv_get_kind(st) == JV_KIND_STRING &&
		         strcmp(jv_string_value(st), u->status) == 0)
			it->result =
			        jv_object_set(done_result(u, "updated"),
			                      jv_string("verified"), jv_true());
		else {
			soar_error_set(
			        &e, b->conflicts ? "conflict" : "not_updated",
			        "the alert's status is %s%s%s after the "
			        "update (%s)",
			        jv_get_kind(st) == JV_KIND_STRING ? "'" : "",
			        jv_get_kind(st) == JV_KIND_STRING
			                ? jv_string_value(st)
			                : "unknown",
			        jv_get_kind(st) == JV_KIND_STRING ? "'" : "",
			        b->note);
			it->result = event_error_jv(&e, jv_null());
		}
		jv_free(st);
		jv_free(src);
	}
	jv_free(seen);
}

/* Reads the batch's alerts back, to learn which were updated. */
static void
read_back(struct batch *b)
{
	jv q = jv_object_set(jv_object(), jv_string("ids"),
	                     jv_object_set(jv_object(), jv_string("values"),
	                                   jv_copy(b->ids)));
	jv src = JV_ARRAY(jv_string("kibana.alert.workflow_status"),
	                  jv_string("kibana.alert.workflow_reason"));
	jv body = jv_object_set(jv_object(), jv_string("query"), q);
	struct soar_error e;

	log_info(&b->u->cli.log, "%s: reading %d alerts back", b->note,
	         jv_array_length(jv_copy(b->ids)));
	body = jv_object_set(body, jv_string("size"),
	                     jv_number(jv_array_length(jv_copy(b->ids))));
	body = jv_object_set(body, jv_string("_source"), src);
	if (post(b, SEARCH_PATH, body, on_check) < 0) {
		soar_error_set(&e, "nomem", "out of memory");
		mark_error(b, &e);
	}
}

/* The number at key of o, or -1 when it is not a whole number >= 0. */
static long long
count_at(jv o, const char *key)
{
	jv v = jv_get_kind(o) == JV_KIND_OBJECT
	               ? jv_object_get(jv_copy(o), jv_string(key))
	               : jv_invalid();
	double d = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : -1;

	jv_free(v);
	return d >= 0 && d < 1e15 && d == (double)(long long)d ? (long long)d
	                                                       : -1;
}

/* The status answer: all updated, or a read-back to learn which were. */
static void
on_status(void *arg, const struct http_response *resp,
          const struct soar_error *herr)
{
	struct batch *b = arg;
	struct up *u = b->u;
	int nids = jv_array_length(jv_copy(b->ids));
	long long upd, conf;
	struct soar_error e;
	jv body;

	if (herr != NULL && resp->status != 409) {
		if (strcmp(herr->code, "cancelled") == 0 && u->refused) {
			mark_not_sent(b);
			return;
		}
		es_error("signals status", resp, herr, &e);
		check_refused(u, resp->status);
		log_error(&u->cli.log, "%s", e.message);
		mark_error(b, &e);
		return;
	}
	if (herr != NULL) {
		/* Kibana aborts on a version conflict; the alerts before it
		 * were updated all the same. */
		b->conflicts = 1;
		snprintf(b->note, sizeof(b->note),
		         "signals status: HTTP 409, a version conflict");
		read_back(b);
		return;
	}
	body = jv_parse_sized(resp->body.data ? resp->body.data : "",
	                      (int)resp->body.len);
	upd = count_at(body, "updated");
	conf = count_at(body, "version_conflicts");
	jv_free(body);
	if (upd >= nids && conf == 0) {
		mark_all(b, done_result(u, "updated"));
		return;
	}
	b->conflicts = conf > 0;
	if (upd < 0)
		snprintf(b->note, sizeof(b->note),
		         "signals status: an answer without the counts");
	else
		snprintf(b->note, sizeof(b->note),
		         "signals status: %lld of %d updated, %lld version "
		         "conflict%s",
		         upd, nids, conf < 0 ? 0 : conf, conf == 1 ? "" : "s");
	read_back(b);
}

/* Groups the chunk's items into batches: one space, up to --batch
 * distinct ids each, in input order. */
static void
plan(struct up *u)
{
	size_t used = 0;

	u->nbatches = 0;
	char *taken = calloc(u->nitems ? u->nitems : 1, 1);

	if (taken == NULL) {
		u->stop = 1;
		return;
	}
	for (size_t i = 0; i < u->nitems; i++) {
		struct item *a = &u->items[i];

		if (taken[i] || a->id == NULL)
			continue;
		struct batch *b = &u->batches[u->nbatches++];
		size_t first = used;

		*b = (struct batch){
		        .u = u, .idx = u->idx + used, .ids = jv_array()};
		for (size_t j = i; j < u->nitems; j++) {
			struct item *c = &u->items[j];
			int dup = 0;

			if (taken[j] || c->id == NULL ||
			    strcmp(a->space, c->space) != 0)
				continue;
			for (size_t k = first; k < used && !dup; k++)
				dup = strcmp(u->items[u->idx[k]].id, c->id) ==
				      0;
			if (!dup &&
			    jv_array_length(jv_copy(b->ids)) >= (int)u->batch)
				continue;
			if (!dup)
				b->ids = jv_array_append(b->ids,
				                         jv_string(c->id));
			taken[j] = 1;
			u->idx[used++] = j;
			b->n++;
		}
	}
	free(taken);
}

/* Sends the chunk's batches, at once, and waits for their outcomes. */
static void
send_chunk(struct up *u)
{
	plan(u);
	for (size_t k = 0; k < u->nbatches; k++) {
		struct batch *b = &u->batches[k];
		jv body = jv_object_set(jv_object(), jv_string("signal_ids"),
		                        jv_copy(b->ids));
		const char *space = u->items[b->idx[0]].space;
		struct soar_error e;

		body = jv_object_set(body, jv_string("status"),
		                     jv_string(u->status));
		if (u->reason != NULL)
			body = jv_object_set(body, jv_string("reason"),
			                     jv_string(u->reason));
		if (u->refused) {
			jv_free(body);
			mark_not_sent(b);
		} else if (u->dry_run) {
			jv text = jv_dump_string(body, 0);

			log_info(&u->cli.log, "dry run: POST %s%s%s %s",
			         space[0] ? "/s/" : "", space, STATUS_PATH,
			         jv_string_value(text));
			jv_free(text);
			mark_all(b, done_result(u, "dry_run"));
		} else if (post(b, STATUS_PATH, body, on_status) < 0) {
			soar_error_set(&e, "nomem", "out of memory");
			mark_error(b, &e);
		}
	}
	while (u->http != NULL && http_pending(u->http) > 0) {
		http_poll(u->http, 1000, -1);
		if (u->refused)
			http_cancel_queued(u->http);
	}
	for (size_t k = 0; k < u->nbatches; k++)
		jv_free(u->batches[k].ids);
	u->nbatches = 0;
}

/* Writes the chunk's events in input order, each with its result. */
static void
write_chunk(struct up *u)
{
	struct buf out = BUF_INIT, val = BUF_INIT;

	for (size_t i = 0; i < u->nitems; i++) {
		struct item *it = &u->items[i];
		struct soar_error err;
		int rc = 0;

		if (jv_is_valid(it->result)) {
			jv e = jv_object_get(jv_copy(it->result),
			                     jv_string("error"));

			if (jv_is_valid(e)) {
				jv m = jv_object_get(e, jv_string("message"));

				u->nfailed++;
				log_msg(&u->cli.log, LOG_ERROR, it->lineno,
				        it->alert, "%s",
				        jv_get_kind(m) == JV_KIND_STRING
				                ? jv_string_value(m)
				                : "update failed");
				jv_free(m);
			} else if (it->id == NULL)
				u->nskipped++;
			else
				u->nupdated++;
			buf_clear(&val);
			rc = event_dump(jv_copy(it->result), &val) < 0 ||
			     event_set_key(it->line, it->len, u->key, val.data,
			                   val.len, &out, &err) < 0;
		}
		if (rc == 0 && !u->epipe && !u->fatal) {
			int w = jv_is_valid(it->result)
			                ? ndjson_write(&u->out, out.data,
			                               out.len)
			                : ndjson_write(&u->out, it->line,
			                               it->len);

			if (w == 0)
				w = ndjson_write(&u->out, "\n", 1);
			if (w == NDJSON_EPIPE)
				u->epipe = 1;
			else if (w != 0) {
				log_error(&u->cli.log, "standard output: %s",
				          strerror(errno));
				u->fatal = 1;
			}
		} else if (rc != 0)
			u->fatal = 1;
		free(it->line);
		free(it->id);
		free(it->alert);
		jv_free(it->result);
	}
	u->nitems = 0;
	buf_free(&out);
	buf_free(&val);
}

/* Flushes standard output; a failure is fatal (exit 3). */
static void
flush_out(struct up *u)
{
	int st = ndjson_flush(&u->out);

	if (st == NDJSON_EPIPE)
		u->epipe = 1;
	else if (st != 0 && !u->fatal) {
		log_error(&u->cli.log, "standard output: %s", strerror(errno));
		u->fatal = 1;
	}
}

static void
flush_chunk(struct up *u)
{
	if (u->nitems == 0)
		return;
	send_chunk(u);
	write_chunk(u);
	flush_out(u);
}

/* Takes one input line: rejected, or queued as an item of the chunk.
 * Returns 1 when it was rejected. */
static int
take_line(struct up *u, const char *line, size_t len, size_t lineno,
          int reject_fd)
{
	const char *raw = line;
	size_t rawlen = len;
	struct json_err je;
	struct item *it;

	/* CR, a BOM or RS as other tools tolerate them; the reject file
	 * gets the line as it came. */
	if (!ndjson_trim(&line, &len))
		return 0;
	if (json_check_object(line, len, &je) < 0) {
		log_msg(&u->cli.log, LOG_ERROR, lineno, NULL,
		        "column %zu: %s; rejected", je.off + 1, je.msg);
		if (reject_fd >= 0 &&
		    (ndjson_write_all(reject_fd, raw, rawlen) != 0 ||
		     ndjson_write_all(reject_fd, "\n", 1) != 0)) {
			log_error(&u->cli.log, "--reject %s: %s",
			          u->cli.reject_path, strerror(errno));
			u->stop = 1;
		}
		return 1;
	}
	it = &u->items[u->nitems];
	if ((it->line = malloc(len + 1)) == NULL) {
		log_error(&u->cli.log, "out of memory");
		u->stop = 1;
		return 0;
	}
	memcpy(it->line, line, len);
	it->line[len] = '\0';
	it->len = len;
	it->lineno = lineno;
	u->nitems++;
	prepare(u, it);
	return 0;
}

static int
run(struct up *u)
{
	struct ndjson_reader *rd = ndjson_reader_new(0, u->cli.max_line);
	int reject_fd = -1, rc;
	size_t nbad = 0, nread = 0;
	const char *line;
	size_t len, lineno;

	if (rd == NULL)
		return SOAR_EXIT_FATAL;
	if (u->cli.reject_path != NULL &&
	    (reject_fd = open(u->cli.reject_path,
	                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	                      0600)) < 0) {
		log_error(&u->cli.log, "--reject %s: %s", u->cli.reject_path,
		          strerror(errno));
		ndjson_reader_free(rd);
		return SOAR_EXIT_USAGE;
	}
	while (!u->epipe && !u->fatal && !u->stop) {
		/* A chunk goes out when full, or when more input would
		 * mean waiting (a slow stream is not held back). */
		if (u->nitems > 0 &&
		    (u->nitems >= u->cap || !ndjson_reader_ready(rd)))
			flush_chunk(u);
		rc = ndjson_read_line(rd, &line, &len, &lineno);
		if (rc == NDJSON_EOF)
			break;
		if (rc == NDJSON_ERR) {
			log_error(&u->cli.log, "reading standard input: %s",
			          strerror(errno));
			u->stop = 1;
			break;
		}
		if (rc == NDJSON_TOOLONG) {
			log_msg(&u->cli.log, LOG_ERROR, lineno, NULL,
			        "line longer than --max-line; rejected");
			nbad++;
			if (ndjson_skip_line(rd, reject_fd) < 0) {
				log_error(&u->cli.log, "--reject %s: %s",
				          u->cli.reject_path, strerror(errno));
				u->stop = 1;
			}
			continue;
		}
		nread++;
		nbad += (size_t)take_line(u, line, len, lineno, reject_fd);
	}
	flush_chunk(u);
	flush_out(u);
	if (reject_fd >= 0)
		close(reject_fd);
	ndjson_reader_free(rd);
	log_info(&u->cli.log,
	         "%zu lines, %zu %s, %zu failed, %zu skipped, %zu rejected",
	         nread, u->nupdated, u->dry_run ? "to update" : "updated",
	         u->nfailed, u->nskipped, nbad);
	if (u->fatal || u->stop || u->refused)
		return SOAR_EXIT_FATAL;
	return u->nfailed || nbad ? SOAR_EXIT_PARTIAL : SOAR_EXIT_OK;
}

/* Sets up the chunk's storage and, unless it is a dry run, Kibana and the
 * HTTP client.  Returns 0, or an exit status. */
static int
setup(struct up *u)
{
	struct http_config hc;
	struct soar_error err = {0};

	u->cap = (size_t)(u->batch * u->jobs);
	u->items = calloc(u->cap, sizeof(*u->items));
	u->batches = calloc(u->cap, sizeof(*u->batches));
	u->idx = calloc(u->cap, sizeof(*u->idx));
	if (u->items == NULL || u->batches == NULL || u->idx == NULL)
		return SOAR_EXIT_FATAL;
	/* A dry run needs neither Kibana nor credentials. */
	if (u->dry_run)
		return 0;
	/* No space here: each batch names its own (es_kibana_url_in). */
	if (es_init(&u->es, NULL, NULL, &err) < 0) {
		log_error(&u->cli.log, "%s", err.message);
		return strcmp(err.code, "nomem") == 0 ? SOAR_EXIT_FATAL
		                                      : SOAR_EXIT_USAGE;
	}
	u->have_es = 1;
	http_config_defaults(&hc);
	hc.jobs = (int)u->jobs;
	hc.rate = u->cli.rate;
	hc.burst = u->cli.rate >= 1 ? u->cli.rate : 1;
	hc.timeout_ms = u->cli.timeout * 1000;
	hc.retries = (int)u->cli.retries;
	hc.user_agent = "soarutils-es-update/" SOAR_VERSION;
	hc.log = &u->cli.log;
	if ((u->http = http_new(&hc, &err)) == NULL) {
		log_error(&u->cli.log, "%s", err.message);
		return SOAR_EXIT_FATAL;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct up u = {.key = "es_update", .batch = 100, .jobs = 4};
	int status;

	cli_hygiene();
	if (cli_init(&u.cli, "es-update", "-s STATUS [-r REASON] [options]",
	             "Set the workflow status of Elastic Security alerts.",
	             options, sizeof(options) / sizeof(options[0])) < 0)
		return SOAR_EXIT_FATAL;
	parse_args(&u, argc, argv);
	cli_check_stdin(&u.cli);
	compile(&u);
	ndjson_writer_init(&u.out, 1, u.cli.line_buffered);
	status = setup(&u);
	if (status == 0)
		status = run(&u);
	buf_free(&u.out.buf);
	if (u.http != NULL)
		http_free(u.http);
	if (u.have_es)
		es_free(&u.es);
	free(u.items);
	free(u.batches);
	free(u.idx);
	jqx_free(u.jq);
	cli_free(&u.cli);
	return status;
}
