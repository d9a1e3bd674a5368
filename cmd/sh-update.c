/* sh-update: sets the workflow status and a note on Security Hub findings. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jv.h>

#include "lib/asff.h"
#include "lib/aws.h"
#include "lib/awscreds.h"
#include "lib/cli.h"
#include "lib/event.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/jqx.h"
#include "lib/ndjson.h"

enum {
	OPT_STATUS = 's',
	OPT_NOTE = 'n',
	OPT_NOTE_EXPR = CLI_TOOL_KEYS,
	OPT_UPDATED_BY,
	OPT_WHEN,
	OPT_DRY_RUN,
	OPT_BATCH,
	OPT_AS,
};

static const struct cli_opt options[] = {
        {"status", OPT_STATUS, "STATUS",
         "workflow status: NEW, NOTIFIED, RESOLVED or SUPPRESSED"},
        {"note", OPT_NOTE, "TEXT", "note text (up to 512 characters)"},
        {"note-expr", OPT_NOTE_EXPR, "EXPR", "jq expression giving the note"},
        {"updated-by", OPT_UPDATED_BY, "NAME",
         "author of the note (default soarutils)"},
        {"when", OPT_WHEN, "EXPR", "update only events where EXPR is true"},
        {"dry-run", OPT_DRY_RUN, NULL, "show what would be sent, send nothing"},
        {"batch", OPT_BATCH, "N", "findings per request (1-100, default 100)"},
        {"as", OPT_AS, "KEY", "name of the added key (default sh_update)"},
        AWS_CLI_OPT_PROFILE,
        AWS_CLI_OPT_ROLE_ARN,
        AWS_CLI_OPT_EXTERNAL_ID,
        CLI_OPT_RATE("requests per second per region (default 10/s)"),
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

#define BATCH_MAX 100

/* One input event of the chunk being handled. */
struct item {
	char *line; /* the event's text */
	size_t len, lineno;
	jv ident; /* {"Id", "ProductArn"}, or invalid: nothing to update */
	char region[32];
	jv note;   /* the note text for this event (a string), or null */
	jv result; /* what goes under the tool's key; invalid: untouched */
};

/* One BatchUpdateFindings call: the items of one region and one note. */
struct call {
	struct up *u;
	size_t *idx; /* items in the call */
	size_t n;
};

struct up {
	struct cli cli;
	const char *status, *note, *note_expr, *updated_by, *when, *key;
	struct aws_cli aws;
	int dry_run;
	long long batch;
	struct jqx *jq;
	int when_idx, note_idx;
	struct awscreds *creds;
	struct http *http;
	struct ndjson_writer out;
	struct item items[BATCH_MAX];
	size_t nitems;
	size_t nfailed, nupdated;
	int fatal, epipe;
	int refused; /* credentials refused: nothing more is sent */
};

static void
parse_args(struct up *u, int argc, char **argv)
{
	static const char *const statuses[] = {"NEW", "NOTIFIED", "RESOLVED",
	                                       "SUPPRESSED"};
	struct cli *c = &u->cli;
	const char *arg;
	int key, ok = 0;

	while ((key = cli_next(c, argc, argv, &arg)) != -1) {
		if (cli_common(c, key, arg) ||
		    aws_cli_option(&u->aws, key, arg))
			continue;
		switch (key) {
		case OPT_STATUS:
			u->status = arg;
			break;
		case OPT_NOTE:
			u->note = arg;
			break;
		case OPT_NOTE_EXPR:
			u->note_expr = arg;
			break;
		case OPT_UPDATED_BY:
			u->updated_by = arg;
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
		case OPT_AS:
			u->key = arg;
			break;
		default:
			cli_usage_error(c, "unhandled option");
		}
	}
	if (optind < argc)
		cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
	for (size_t i = 0; u->status && i < 4; i++)
		ok |= strcmp(u->status, statuses[i]) == 0;
	if (u->status != NULL && !ok)
		cli_usage_error(c, "--status: NEW, NOTIFIED, RESOLVED or "
		                   "SUPPRESSED");
	if (u->note != NULL && u->note_expr != NULL)
		cli_usage_error(c, "--note and --note-expr exclude each other");
	if (u->note != NULL && (u->note[0] == '\0' || strlen(u->note) > 512))
		cli_usage_error(c, "--note: 1 to 512 characters");
	if (u->status == NULL && u->note == NULL && u->note_expr == NULL)
		cli_usage_error(c, "nothing to set: give --status, --note or "
		                   "--note-expr");
	if (strlen(u->updated_by) == 0 || strlen(u->updated_by) > 512)
		cli_usage_error(c, "--updated-by: 1 to 512 characters");
	aws_cli_check(c, &u->aws);
}

static void
compile(struct up *u)
{
	struct buf msgs = BUF_INIT;

	u->when_idx = u->note_idx = -1;
	if (u->when == NULL && u->note_expr == NULL)
		return;
	if ((u->jq = jqx_new()) == NULL)
		exit(SOAR_EXIT_FATAL);
	if (u->when != NULL)
		u->when_idx = jqx_add(u->jq, u->when, "--when");
	if (u->note_expr != NULL)
		u->note_idx = jqx_add(u->jq, u->note_expr, "--note-expr");
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

/* Reads what an event needs: its finding's identifier, region and note.
 * Returns 0, or -1 with it->result set to the event's error. */
static int
prepare(struct up *u, struct item *it)
{
	struct soar_error err;
	jv ev = jv_parse_sized(it->line, (int)it->len), f, id, pa;
	int t = 1;

	it->ident = jv_invalid();
	it->note = jv_null();
	it->result = jv_invalid();
	if (u->when_idx >= 0) {
		t = jqx_truthy(u->jq, u->when_idx, jv_copy(ev), &err);
		if (t < 0)
			it->result = event_error_jv(&err, jv_null());
	}
	if (t <= 0) {
		jv_free(ev);
		return t < 0 ? -1 : 0;
	}
	f = jv_getpath(jv_copy(ev),
	               JV_ARRAY(jv_string("aws"), jv_string("finding")));
	id = jv_get_kind(f) == JV_KIND_OBJECT
	             ? jv_object_get(jv_copy(f), jv_string("Id"))
	             : jv_invalid();
	pa = jv_get_kind(f) == JV_KIND_OBJECT
	             ? jv_object_get(jv_copy(f), jv_string("ProductArn"))
	             : jv_invalid();
	if (jv_get_kind(id) != JV_KIND_STRING ||
	    jv_get_kind(pa) != JV_KIND_STRING) {
		it->result = event_error("input",
		                         "no aws.finding.Id and ProductArn: "
		                         "not a Security Hub finding");
		goto fail;
	}
	/* sh-findings wrote the region it read the finding from. */
	jv cr = jv_getpath(jv_copy(ev),
	                   JV_ARRAY(jv_string("cloud"), jv_string("region")));

	if (jv_get_kind(cr) == JV_KIND_STRING)
		snprintf(it->region, sizeof(it->region), "%s",
		         jv_string_value(cr));
	else
		asff_region(f, it->region, sizeof(it->region));
	jv_free(cr);
	if (it->region[0] == '\0') {
		it->result =
		        event_error("input", "the finding names no region");
		goto fail;
	}
	if (u->note_idx >= 0) {
		jv n = jv_invalid();

		t = jqx_first(u->jq, u->note_idx, jv_copy(ev), &n, &err);
		if (t < 0) {
			it->result = event_error_jv(&err, jv_null());
			goto fail;
		}
		if (t == 0 || jv_get_kind(n) != JV_KIND_STRING ||
		    jv_string_length_bytes(jv_copy(n)) == 0 ||
		    jv_string_length_bytes(jv_copy(n)) > 512) {
			jv_free(n);
			it->result = event_error(
			        "input", "--note-expr gave no text of 1 "
			                 "to 512 characters");
			goto fail;
		}
		it->note = n;
	} else if (u->note != NULL)
		it->note = jv_string(u->note);
	it->ident =
	        jv_object_set(jv_object_set(jv_object(), jv_string("Id"), id),
	                      jv_string("ProductArn"), pa);
	jv_free(f);
	jv_free(ev);
	return 0;
fail:
	jv_free(id);
	jv_free(pa);
	jv_free(f);
	jv_free(ev);
	return -1;
}

/* The BatchUpdateFindings body for the items of a call. */
static jv
call_body(struct up *u, const struct call *c)
{
	jv ids = jv_array(), body = jv_object();
	jv note = u->items[c->idx[0]].note;

	for (size_t i = 0; i < c->n; i++) {
		jv id = u->items[c->idx[i]].ident;
		int dup = 0;

		/* One finding twice in a call would be refused as a
		 * duplicate; both events get the one answer. */
		jv_array_foreach(ids, k, x) dup |= jv_equal(x, jv_copy(id));
		if (!dup)
			ids = jv_array_append(ids, jv_copy(id));
	}
	body = jv_object_set(body, jv_string("FindingIdentifiers"), ids);
	if (u->status != NULL)
		body = jv_object_set(body, jv_string("Workflow"),
		                     jv_object_set(jv_object(),
		                                   jv_string("Status"),
		                                   jv_string(u->status)));
	if (jv_get_kind(note) == JV_KIND_STRING)
		body = jv_object_set(
		        body, jv_string("Note"),
		        jv_object_set(jv_object_set(jv_object(),
		                                    jv_string("Text"),
		                                    jv_copy(note)),
		                      jv_string("UpdatedBy"),
		                      jv_string(u->updated_by)));
	return body;
}

/* Marks every item of the call with result (consumed). */
static void
mark_all(struct up *u, const struct call *c, jv result)
{
	for (size_t i = 0; i < c->n; i++) {
		jv_free(u->items[c->idx[i]].result);
		u->items[c->idx[i]].result = jv_copy(result);
	}
	jv_free(result);
}

static void
on_done(void *arg, const struct http_response *resp,
        const struct soar_error *herr)
{
	struct call *c = arg;
	struct up *u = c->u;
	jv body, unp;

	if (herr != NULL) {
		char code[128], msg[256];
		struct soar_error e;

		aws_error(resp, code, sizeof(code), msg, sizeof(msg));
		soar_error_set(&e, code[0] ? code : herr->code, "%s",
		               msg[0] ? msg : herr->message);
		e.status = resp->status;
		e.attempts = resp->attempts;
		/* Refused credentials will not do better on the next batch:
		 * the run ends (exit 3) once the events read are written. */
		if (resp->status == 401 || resp->status == 403)
			u->refused = 1;
		log_error(&u->cli.log, "BatchUpdateFindings: %s%s%s", e.code,
		          e.message[0] ? ": " : "", e.message);
		mark_all(u, c, event_error_jv(&e, jv_null()));
		return;
	}
	body = jv_parse_sized(resp->body.data ? resp->body.data : "",
	                      (int)resp->body.len);
	if (jv_get_kind(body) != JV_KIND_OBJECT) {
		jv_free(body);
		mark_all(u, c,
		         event_error("malformed",
		                     "BatchUpdateFindings answered with a body "
		                     "that is not JSON"));
		return;
	}
	/* Processed unless listed as unprocessed. */
	mark_all(u, c,
	         jv_object_set(jv_object(), jv_string("updated"), jv_true()));
	unp = jv_object_get(jv_copy(body), jv_string("UnprocessedFindings"));
	if (jv_get_kind(unp) == JV_KIND_ARRAY)
		jv_array_foreach(unp, k, x)
		{
			/* Matched on Id and ProductArn, as identified. */
			jv fid = jv_object_get(jv_copy(x),
			                       jv_string("FindingIdentifier"));
			jv code = jv_object_get(jv_copy(x),
			                        jv_string("ErrorCode"));
			jv msg = jv_object_get(jv_copy(x),
			                       jv_string("ErrorMessage"));

			for (size_t i = 0;
			     jv_get_kind(fid) == JV_KIND_OBJECT && i < c->n;
			     i++) {
				struct item *it = &u->items[c->idx[i]];
				jv iid = jv_copy(it->ident);
				struct soar_error e;

				if (jv_equal(iid, jv_copy(fid))) {
					soar_error_set(
					        &e,
					        jv_get_kind(code) ==
					                        JV_KIND_STRING
					                ? jv_string_value(code)
					                : "unprocessed",
					        "%s",
					        jv_get_kind(msg) ==
					                        JV_KIND_STRING
					                ? jv_string_value(msg)
					                : "not processed");
					jv_free(it->result);
					it->result =
					        event_error_jv(&e, jv_null());
				}
			}
			jv_free(fid);
			jv_free(code);
			jv_free(msg);
			jv_free(x);
		}
	jv_free(unp);
	jv_free(body);
}

/* Sends the chunk's updates: one call per region and note, at once. */
static void
send_chunk(struct up *u)
{
	struct call calls[BATCH_MAX];
	size_t idx[BATCH_MAX], ncalls = 0, used = 0;
	int done[BATCH_MAX] = {0};

	for (size_t i = 0; i < u->nitems; i++) {
		struct item *a = &u->items[i];

		if (done[i] || !jv_is_valid(a->ident))
			continue;
		struct call *c = &calls[ncalls++];

		*c = (struct call){.u = u, .idx = idx + used};
		for (size_t j = i; j < u->nitems; j++) {
			struct item *b = &u->items[j];

			if (done[j] || !jv_is_valid(b->ident) ||
			    strcmp(a->region, b->region) != 0 ||
			    !jv_equal(jv_copy(a->note), jv_copy(b->note)))
				continue;
			done[j] = 1;
			idx[used++] = j;
			c->n++;
		}
	}
	for (size_t k = 0; k < ncalls; k++) {
		struct call *c = &calls[k];
		struct item *first = &u->items[c->idx[0]];
		jv text = jv_dump_string(call_body(u, c), 0);
		struct soar_error err = {0};
		struct aws_call ac = {
		        .service_id = "SecurityHub",
		        .host_prefix = "securityhub",
		        .signing_name = "securityhub",
		        .region = first->region,
		        .method = "PATCH",
		        .path = "/findings/batchupdate",
		        .content_type = "application/json",
		        .body = jv_string_value(text),
		        .body_len =
		                (size_t)jv_string_length_bytes(jv_copy(text)),
		        /* Setting a status and a note twice leaves them so. */
		        .idempotent = 1,
		};

		if (u->refused) {
			struct soar_error e;

			soar_error_set(&e, "auth",
			               "not sent: AWS refused the credentials");
			mark_all(u, c, event_error_jv(&e, jv_null()));
		} else if (u->dry_run) {
			log_info(&u->cli.log,
			         "dry run: %s: PATCH "
			         "/findings/batchupdate %s",
			         first->region, jv_string_value(text));
			mark_all(u, c,
			         jv_object_set(jv_object(),
			                       jv_string("dry_run"),
			                       jv_true()));
		} else if (aws_submit(u->creds, u->http, &ac, on_done, c,
		                      &err) < 0) {
			log_error(&u->cli.log, "%s", err.message);
			mark_all(u, c, event_error_jv(&err, jv_null()));
		}
		jv_free(text);
	}
	while (http_pending(u->http) > 0)
		http_poll(u->http, 1000, -1);
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
				        NULL, "%s",
				        jv_get_kind(m) == JV_KIND_STRING
				                ? jv_string_value(m)
				                : "update failed");
				jv_free(m);
			} else
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
		jv_free(it->ident);
		jv_free(it->note);
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

static int
run(struct up *u)
{
	struct ndjson_reader *rd = ndjson_reader_new(0, u->cli.max_line);
	int reject_fd = -1, rc;
	size_t nbad = 0, ready = 0;
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
	while (!u->epipe && !u->fatal) {
		/* A chunk goes out when full, or when more input would
		 * mean waiting (a slow stream is not held back). */
		if (u->nitems > 0 &&
		    (u->nitems >= (size_t)u->batch || !ndjson_reader_ready(rd)))
			flush_chunk(u);
		rc = ndjson_read_line(rd, &line, &len, &lineno);
		if (rc == NDJSON_EOF)
			break;
		if (rc == NDJSON_ERR) {
			log_error(&u->cli.log, "reading standard input: %s",
			          strerror(errno));
			u->fatal = 1;
			break;
		}
		if (rc == NDJSON_TOOLONG) {
			log_msg(&u->cli.log, LOG_ERROR, lineno, NULL,
			        "line longer than --max-line; rejected");
			nbad++;
			if (ndjson_skip_line(rd, reject_fd) < 0)
				u->fatal = 1;
			continue;
		}
		struct json_err je;
		const char *raw = line;
		size_t rawlen = len;

		/* CR, a BOM or RS as other tools tolerate them; the reject
		 * file gets the line as it came. */
		if (!ndjson_trim(&line, &len))
			continue;

		if (json_check_object(line, len, &je) < 0) {
			log_msg(&u->cli.log, LOG_ERROR, lineno, NULL,
			        "column %zu: %s; rejected", je.off + 1, je.msg);
			nbad++;
			if (reject_fd >= 0 &&
			    (ndjson_write_all(reject_fd, raw, rawlen) != 0 ||
			     ndjson_write_all(reject_fd, "\n", 1) != 0))
				u->fatal = 1;
			continue;
		}
		struct item *it = &u->items[u->nitems++];

		it->line = malloc(len + 1);
		if (it->line == NULL) {
			u->nitems--;
			u->fatal = 1;
			break;
		}
		memcpy(it->line, line, len);
		it->len = len;
		it->lineno = lineno;
		prepare(u, it);
		ready++;
	}
	flush_chunk(u);
	flush_out(u);
	if (reject_fd >= 0)
		close(reject_fd);
	ndjson_reader_free(rd);
	log_info(&u->cli.log, "%zu events, %zu updated, %zu failed", ready,
	         u->nupdated, u->nfailed);
	if (u->fatal || u->refused)
		return SOAR_EXIT_FATAL;
	return u->nfailed || nbad ? SOAR_EXIT_PARTIAL : SOAR_EXIT_OK;
}

int
main(int argc, char *argv[])
{
	struct up u = {.updated_by = "soarutils",
	               .key = "sh_update",
	               .batch = BATCH_MAX};
	struct http_config hc;
	struct soar_error err = {0};
	int status = SOAR_EXIT_FATAL;

	cli_hygiene();
	if (cli_init(&u.cli, "sh-update", "-s STATUS [-n TEXT] [options]",
	             "Set the workflow status and a note on Security Hub "
	             "findings.",
	             options, sizeof(options) / sizeof(options[0])) < 0)
		return SOAR_EXIT_FATAL;
	u.cli.rate = 10; /* BatchUpdateFindings: 10 a second */
	parse_args(&u, argc, argv);
	cli_check_stdin(&u.cli);
	compile(&u);
	ndjson_writer_init(&u.out, 1, u.cli.line_buffered);
	/* A dry run needs no credentials; a real one says so first. */
	u.creds = aws_cli_creds(&u.cli, &u.aws,
	                        "soarutils-sh-update/" SOAR_VERSION, !u.dry_run,
	                        &status);
	if (u.creds == NULL)
		goto out;
	http_config_defaults(&hc);
	hc.jobs = 8;
	hc.rate = u.cli.rate;
	hc.burst = u.cli.rate >= 1 ? 3 * u.cli.rate : 1;
	hc.timeout_ms = u.cli.timeout * 1000;
	hc.retries = (int)u.cli.retries;
	hc.user_agent = "soarutils-sh-update/" SOAR_VERSION;
	hc.log = &u.cli.log;
	if ((u.http = http_new(&hc, &err)) == NULL) {
		log_error(&u.cli.log, "%s", err.message);
		goto out;
	}
	status = run(&u);
out:
	buf_free(&u.out.buf);
	if (u.http != NULL)
		http_free(u.http);
	awscreds_free(u.creds);
	jqx_free(u.jq);
	cli_free(&u.cli);
	return status;
}
