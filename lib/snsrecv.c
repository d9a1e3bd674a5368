/* snsrecv.c: answers SNS deliveries, writes accepted ones from a thread. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jv.h>

#include "httpd.h"
#include "ndjson.h"
#include "sns.h"
#include "snsrecv.h"

#define FUTURE_MS     (5 * 60 * 1000LL) /* clock skew allowed ahead */
#define FETCH_BUDGET  10                /* certificate fetches a minute */
#define FAILED_URLS   16                /* certificate URLs that failed */
#define FAILED_MS     (60 * 1000LL)     /* how long a failure is kept */
#define DRAIN_MS      5000              /* writing what is queued, at the end */
#define LOG_FIELD_MAX 128 /* bytes of a message's field in a log line */

/* MessageIds accepted, as 64-bit hashes: a ring keeps their order for
 * eviction, an open-addressed table answers "seen?".  Hashes are keyed
 * with a per-run seed; only authentic messages are ever added. */
struct seen {
	uint64_t *ring, *table;
	long long *when; /* each ring entry's Timestamp, ms */
	size_t cap, n, head, tmask;
	uint64_t seed;
};

/* One chunk of output lines, queued for the writer thread. */
struct chunk {
	struct chunk *next;
	size_t len, nlines;
	char data[];
};

struct recv {
	const struct snsrecv_config *cfg;
	struct snsrecv_stats *st;
	struct sns_certs *certs;
	struct seen seen;
	struct buf out;
	/* The writer thread's queue. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct chunk *head, *tail;
	size_t queued; /* bytes */
	size_t qlines; /* lines queued, not yet written */
	int closing, failed;
	/* Certificate fetches: a budget per minute, and URLs that failed
	 * lately, so that deliveries naming new URLs cannot keep the one
	 * thread busy fetching. */
	long long budget_start;
	int budget_used;
	struct {
		uint64_t url;
		long long until;
	} failed_urls[FAILED_URLS];
};

static uint64_t
id_hash(const struct seen *s, const char *id)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ s->seed;

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 0x100000001b3ULL;
	h ^= h >> 31;
	h *= 0x7fb5d329728ea185ULL;
	h ^= h >> 27;
	return h != 0 ? h : 1; /* 0 marks an empty slot */
}

static int
seen_init(struct seen *s, size_t cap)
{
	size_t t = 2;

	while (t < cap * 2)
		t *= 2;
	s->cap = cap;
	s->tmask = t - 1;
	s->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^
	          (uint64_t)(uintptr_t)s;
	s->ring = calloc(cap, sizeof(*s->ring));
	s->when = calloc(cap, sizeof(*s->when));
	s->table = calloc(t, sizeof(*s->table));
	return s->ring != NULL && s->when != NULL && s->table != NULL ? 0 : -1;
}

static int
seen_has(const struct seen *s, uint64_t h)
{
	for (size_t i = h & s->tmask; s->table[i] != 0; i = (i + 1) & s->tmask)
		if (s->table[i] == h)
			return 1;
	return 0;
}

/* Removes h from the table, moving later entries of its run back so that
 * lookups never stop at the hole. */
static void
seen_del(struct seen *s, uint64_t h)
{
	size_t i = h & s->tmask, j;

	while (s->table[i] != h) {
		if (s->table[i] == 0)
			return;
		i = (i + 1) & s->tmask;
	}
	for (j = (i + 1) & s->tmask; s->table[j] != 0; j = (j + 1) & s->tmask) {
		size_t home = s->table[j] & s->tmask;

		/* Entry j may fill hole i when its home is not in (i, j]. */
		if (((j - home) & s->tmask) >= ((j - i) & s->tmask)) {
			s->table[i] = s->table[j];
			i = j;
		}
	}
	s->table[i] = 0;
}

/* Remembers h, whose message has Timestamp ts.  The oldest entry makes
 * room only once its Timestamp is past `expired` (a replay of it would be
 * refused as stale anyway).  Returns 0, or -1 when every entry is still
 * live: the message must be refused for now (SNS delivers it again). */
static int
seen_add(struct seen *s, uint64_t h, long long ts, long long expired)
{
	size_t i;

	if (seen_has(s, h))
		return 0;
	while (s->n > 0 && s->when[s->head] < expired) {
		seen_del(s, s->ring[s->head]);
		s->head = (s->head + 1) % s->cap;
		s->n--;
	}
	if (s->n == s->cap)
		return -1;
	i = (s->head + s->n) % s->cap;
	s->ring[i] = h;
	s->when[i] = ts;
	s->n++;
	for (i = h & s->tmask; s->table[i] != 0; i = (i + 1) & s->tmask)
		;
	s->table[i] = h;
	return 0;
}

/* The writer thread: chunks to fd 1 in order. */
static void *
writer_main(void *arg)
{
	struct recv *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		struct chunk *c;
		int rc;

		while (r->head == NULL && !r->closing)
			pthread_cond_wait(&r->cv, &r->mu);
		if ((c = r->head) == NULL)
			break;
		if (r->failed) {
			/* Output is gone: count what it never got. */
			r->head = c->next;
			if (r->head == NULL)
				r->tail = NULL;
			r->st->lost += c->nlines;
			r->queued -= c->len;
			r->qlines -= c->nlines;
			free(c);
			continue;
		}
		pthread_mutex_unlock(&r->mu);
		rc = ndjson_write_all(1, c->data, c->len);
		pthread_mutex_lock(&r->mu);
		r->head = c->next;
		if (r->head == NULL)
			r->tail = NULL;
		r->queued -= c->len;
		r->qlines -= c->nlines;
		if (rc == 0)
			r->st->lines += c->nlines;
		else {
			r->st->lost += c->nlines;
			if (rc == NDJSON_EPIPE)
				r->st->epipe = 1;
			else
				r->st->out_failed = errno ? errno : EIO;
			r->failed = 1;
		}
		free(c);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* Queues len bytes of lines.  Returns 0, 1 when the queue is full, or
 * -1 when output failed or memory ran out. */
static int
enqueue(struct recv *r, const char *p, size_t len, size_t nlines)
{
	struct chunk *c;
	int rc = 0;

	pthread_mutex_lock(&r->mu);
	if (r->failed)
		rc = -1;
	else if (r->queued > 0 && r->queued + len > r->cfg->queue_max)
		rc = 1;
	pthread_mutex_unlock(&r->mu);
	if (rc != 0)
		return rc;
	if ((c = malloc(sizeof(*c) + len)) == NULL)
		return -1;
	memcpy(c->data, p, len);
	c->len = len;
	c->nlines = nlines;
	c->next = NULL;
	pthread_mutex_lock(&r->mu);
	if (r->tail != NULL)
		r->tail->next = c;
	else
		r->head = c;
	r->tail = c;
	r->queued += len;
	r->qlines += nlines;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

static int
output_failed(struct recv *r)
{
	int f;

	pthread_mutex_lock(&r->mu);
	f = r->failed;
	pthread_mutex_unlock(&r->mu);
	return f;
}

/* Whether topic is one of the comma-separated list. */
static int
topic_allowed(const char *list, const char *topic)
{
	size_t n = strlen(topic);

	if (list == NULL)
		return 0;
	for (const char *p = list; *p != '\0';) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && memcmp(p, topic, n) == 0)
			return 1;
		p += len + (e != NULL);
	}
	return 0;
}

/* Confirms a subscription: a GET on its SubscribeURL (already checked by
 * sns_verify to be on an SNS host).  Returns 0, or -1 with err set; the
 * message never holds the URL, whose Token confirms the subscription. */
static int
confirm(struct recv *r, const char *url, struct soar_error *err)
{
	struct http_request req = {.method = "GET",
	                           .url = url,
	                           .idempotent = 1,
	                           .secret_query = 1};
	struct http_reply g;
	int rc = http_fetch(r->cfg->http, &req, NULL, &g);

	/* Not g.err.message: it may name the URL. */
	if (rc < 0)
		soar_error_set(err, "fetch",
		               "confirming the subscription failed (%s, HTTP "
		               "%ld)",
		               g.err.code, g.resp.status);
	http_reply_free(&g);
	return rc;
}

/* A field of a message fit for a log line: printable ASCII, cut short. */
static const char *
loggable(const char *s, char out[LOG_FIELD_MAX + 4])
{
	size_t i;

	if (s == NULL)
		return "(none)";
	for (i = 0; i < LOG_FIELD_MAX && s[i] != '\0'; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (s[i] != '\0')
		out[i++] = '.', out[i++] = '.', out[i++] = '.';
	out[i] = '\0';
	return out;
}

static void
answer(struct httpd_response *resp, int status, const char *text)
{
	char body[600];
	int n = snprintf(body, sizeof(body), "%s\n", text);

	httpd_respond(resp, status, "text/plain; charset=utf-8", body,
	              n < 0                      ? 0
	              : (size_t)n < sizeof(body) ? (size_t)n
	                                         : sizeof(body) - 1);
}

/* Refuses a delivery: logged with its reason, never written.  A 5xx
 * asks SNS to deliver it again later. */
static void
refuse(struct recv *r, const struct httpd_request *req,
       struct httpd_response *resp, int status, const char *id, const char *why)
{
	char b[LOG_FIELD_MAX + 4];

	if (status < 500)
		r->st->rejected++;
	else
		r->st->deferred++;
	log_msg(r->cfg->log, status >= 500 ? LOG_WARN : LOG_ERROR, 0, NULL,
	        "delivery from %s%s%s %s (%d): %s", req->peer,
	        id ? ", MessageId " : "", id ? loggable(id, b) : "",
	        status >= 500 ? "deferred" : "refused", status, why);
	answer(resp, status, why);
}

/* Writes a Message to the reject file, one line: as it came, or as a
 * JSON string when it spans lines. */
static void
keep_unusable(struct recv *r, const struct sns_msg *m, const char *why)
{
	char b1[LOG_FIELD_MAX + 4], b2[LOG_FIELD_MAX + 4];
	int rc = 0;

	r->st->unusable++;
	log_msg(r->cfg->log, LOG_ERROR, 0, NULL,
	        "MessageId %s from %s: %s; kept in the reject file",
	        loggable(m->message_id, b1), loggable(m->topic_arn, b2), why);
	if (r->cfg->reject_fd < 0)
		return;
	if (strpbrk(m->message, "\r\n") == NULL)
		rc = ndjson_write_all(r->cfg->reject_fd, m->message,
		                      strlen(m->message));
	else {
		jv text = jv_dump_string(jv_string(m->message), 0);

		rc = ndjson_write_all(
		        r->cfg->reject_fd, jv_string_value(text),
		        (size_t)jv_string_length_bytes(jv_copy(text)));
		jv_free(text);
	}
	if (rc != 0 || ndjson_write_all(r->cfg->reject_fd, "\n", 1) != 0)
		log_msg(r->cfg->log, LOG_ERROR, 0, NULL, "--reject: %s",
		        strerror(errno));
}

/* Remembers an accepted message.  Returns 0, or -1 (answered 503) when
 * the replay memory holds only messages still within --max-age. */
static int
remember(struct recv *r, const struct httpd_request *req,
         struct httpd_response *resp, const struct sns_msg *m, uint64_t h,
         long long now)
{
	long long expired = now - r->cfg->max_age_s * 1000LL - FUTURE_MS;

	if (seen_add(&r->seen, h, m->timestamp_ms, expired) == 0)
		return 0;
	refuse(r, req, resp, 503, m->message_id,
	       "too many recent messages to remember; try again later");
	return -1;
}

static void
notification(struct recv *r, const struct httpd_request *req,
             const struct sns_msg *m, uint64_t h, long long now,
             struct httpd_response *resp)
{
	char why[256] = "", b[LOG_FIELD_MAX + 4];
	size_t nlines = 0;
	int rc;

	buf_clear(&r->out);
	if (r->cfg->convert(r->cfg->arg, m->message, &r->out, &nlines, why,
	                    sizeof(why)) < 0) {
		/* Authentic, but not ours: SNS must not send it again. */
		if (remember(r, req, resp, m, h, now) < 0)
			return;
		keep_unusable(r, m, why[0] ? why : "not understood");
		answer(resp, 200, "not a finding; kept");
		return;
	}
	if (remember(r, req, resp, m, h, now) < 0)
		return;
	rc = r->out.len > 0 ? enqueue(r, r->out.data, r->out.len, nlines) : 0;
	if (rc != 0) {
		seen_del(&r->seen, h); /* not taken: take it next time */
		log_msg(r->cfg->log, LOG_WARN, 0, NULL,
		        "MessageId %s: %s; SNS will deliver it again",
		        loggable(m->message_id, b),
		        rc > 0 ? "output queue full" : "output failed");
		answer(resp, 503, rc > 0 ? "busy" : "output failed");
		return;
	}
	r->st->accepted++;
	answer(resp, 200, "ok");
}

/* Whether a fetch of the signing certificate may run now: not one that
 * failed within FAILED_MS, and within FETCH_BUDGET fetches a minute.
 * Returns 0, or the status to answer (502, 503) with why filled. */
static int
fetch_allowed(struct recv *r, const char *url, long long now, char *why,
              size_t whysz)
{
	uint64_t u = id_hash(&r->seen, url);

	if (sns_certs_cached(r->certs, url))
		return 0;
	for (size_t i = 0; i < FAILED_URLS; i++)
		if (r->failed_urls[i].url == u &&
		    r->failed_urls[i].until > now) {
			snprintf(why, whysz,
			         "the signing certificate could "
			         "not be fetched a moment ago");
			return 502;
		}
	if (now - r->budget_start >= 60000) {
		r->budget_start = now;
		r->budget_used = 0;
	}
	if (r->budget_used >= FETCH_BUDGET) {
		snprintf(why, whysz,
		         "too many certificate fetches; try "
		         "again later");
		return 503;
	}
	r->budget_used++;
	return 0;
}

static void
fetch_failed(struct recv *r, const char *url, long long now)
{
	size_t oldest = 0;

	for (size_t i = 1; i < FAILED_URLS; i++)
		if (r->failed_urls[i].until < r->failed_urls[oldest].until)
			oldest = i;
	r->failed_urls[oldest].url = id_hash(&r->seen, url);
	r->failed_urls[oldest].until = now + FAILED_MS;
}

static void
handle(void *arg, const struct httpd_request *req, struct httpd_response *resp)
{
	struct recv *r = arg;
	const struct snsrecv_config *cfg = r->cfg;
	const char *type = httpd_header(req, "x-amz-sns-message-type");
	const char *topic = httpd_header(req, "x-amz-sns-topic-arn");
	struct sns_msg m;
	struct soar_error err;
	char why[700], b[LOG_FIELD_MAX + 4], b2[LOG_FIELD_MAX + 4];
	long long now = (long long)time(NULL) * 1000;
	int status;
	uint64_t h;

	r->st->deliveries++;
	if (sns_parse(req->body, req->body_len, &m, &err) < 0) {
		refuse(r, req, resp, 400, NULL, err.message);
		return;
	}
	if (type == NULL || strcmp(type, m.type_name) != 0) {
		snprintf(why, sizeof(why),
		         "x-amz-sns-message-type %s does not match Type %s",
		         loggable(type, b), m.type_name);
		refuse(r, req, resp, 400, m.message_id, why);
		goto out;
	}
	if (topic != NULL && strcmp(topic, m.topic_arn) != 0) {
		snprintf(why, sizeof(why),
		         "x-amz-sns-topic-arn %s does not match TopicArn %s",
		         loggable(topic, b), loggable(m.topic_arn, b2));
		refuse(r, req, resp, 400, m.message_id, why);
		goto out;
	}
	if (m.timestamp_ms < now - cfg->max_age_s * 1000LL) {
		snprintf(why, sizeof(why), "Timestamp %s is stale",
		         m.timestamp);
		refuse(r, req, resp, 400, m.message_id, why);
		goto out;
	}
	if (m.timestamp_ms > now + FUTURE_MS) {
		/* Our clock is more likely wrong than SNS's: ask again. */
		snprintf(why, sizeof(why),
		         "Timestamp %s is in the future: is this host's "
		         "clock right?",
		         m.timestamp);
		refuse(r, req, resp, 503, m.message_id, why);
		goto out;
	}
	if (!topic_allowed(cfg->topics, m.topic_arn)) {
		snprintf(why, sizeof(why), "TopicArn %s is not in --topic",
		         loggable(m.topic_arn, b));
		refuse(r, req, resp, 403, m.message_id, why);
		goto out;
	}
	if (sns_url_check(m.signing_cert_url, cfg->cert_host, 1, &err) == 0 &&
	    (status = fetch_allowed(r, m.signing_cert_url, now, why,
	                            sizeof(why))) != 0) {
		refuse(r, req, resp, status, m.message_id, why);
		goto out;
	}
	if (sns_verify(r->certs, cfg->http, &m, time(NULL), &err) < 0) {
		if (strcmp(err.code, "fetch") == 0) {
			fetch_failed(r, m.signing_cert_url, now);
			status = 502;
		} else if (strcmp(err.code, "nomem") == 0 ||
		           strcmp(err.code, "crypto") == 0)
			status = 500;
		else
			status = 403;
		refuse(r, req, resp, status, m.message_id, err.message);
		goto out;
	}
	h = id_hash(&r->seen, m.message_id);
	if (seen_has(&r->seen, h)) {
		r->st->duplicates++;
		log_msg(cfg->log, LOG_INFO, 0, NULL,
		        "MessageId %s delivered again; acknowledged",
		        loggable(m.message_id, b));
		answer(resp, 200, "duplicate");
		goto out;
	}
	switch (m.type) {
	case SNS_NOTIFICATION:
		notification(r, req, &m, h, now, resp);
		break;
	case SNS_SUBSCRIPTION_CONFIRMATION:
		if (confirm(r, m.subscribe_url, &err) < 0) {
			refuse(r, req, resp, 502, m.message_id, err.message);
			break;
		}
		if (remember(r, req, resp, &m, h, now) < 0)
			break;
		r->st->confirmed++;
		log_msg(cfg->log, LOG_WARN, 0, NULL,
		        "subscription to %s confirmed",
		        loggable(m.topic_arn, b));
		answer(resp, 200, "confirmed");
		break;
	case SNS_UNSUBSCRIBE_CONFIRMATION:
		if (remember(r, req, resp, &m, h, now) < 0)
			break;
		log_msg(cfg->log, LOG_WARN, 0, NULL,
		        "%s unsubscribed this endpoint; nothing more will "
		        "arrive from it",
		        loggable(m.topic_arn, b));
		answer(resp, 200, "ok");
		break;
	}
out:
	sns_msg_free(&m);
}

void
snsrecv_config_defaults(struct snsrecv_config *cfg)
{
	*cfg = (struct snsrecv_config){.max_age_s = 3600,
	                               .queue_max = 64 * 1024 * 1024,
	                               .max_seen = 100000,
	                               .reject_fd = -1};
}

int
snsrecv_run(const struct snsrecv_config *cfg, const volatile sig_atomic_t *stop,
            int wake_fd, struct snsrecv_stats *st, struct soar_error *err)
{
	/* On the heap: a writer stuck in write(2) at the end is left
	 * running with it, and the process exits soon after. */
	struct recv *r = calloc(1, sizeof(*r));
	struct httpd_config hc;
	struct httpd *srv = NULL;
	pthread_t writer;
	int started = 0, rc = -1, detached = 0;

	memset(st, 0, sizeof(*st));
	if (r == NULL) {
		soar_error_set(err, "nomem", "out of memory");
		return -1;
	}
	r->cfg = cfg;
	r->st = st;
	r->out = (struct buf)BUF_INIT;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (seen_init(&r->seen, cfg->max_seen ? cfg->max_seen : 1) < 0) {
		soar_error_set(err, "nomem", "out of memory");
		goto out;
	}
	if ((r->certs = sns_certs_new(cfg->cafile, cfg->cert_host, err)) ==
	    NULL)
		goto out;
	httpd_config_defaults(&hc);
	hc.listen = cfg->listen;
	hc.methods = HTTPD_POST;
	hc.user = cfg->user;
	hc.password = cfg->password;
	hc.realm = "sns";
	hc.max_body = SNS_MAX_BODY;
	hc.log = cfg->log;
	hc.handler = handle;
	hc.arg = r;
	if ((srv = httpd_new(&hc, err)) == NULL)
		goto out;
	if (pthread_create(&writer, NULL, writer_main, r) != 0) {
		soar_error_set(err, "nomem", "cannot start a thread");
		goto out;
	}
	started = 1;
	log_msg(cfg->log, LOG_INFO, 0, NULL, "listening on %s",
	        httpd_address(srv));
	while (!*stop && !output_failed(r))
		if (httpd_poll(srv, 1000, wake_fd, err) < 0)
			goto out;
	rc = 0;
out:
	/* Stop taking deliveries, then give the writer DRAIN_MS to write
	 * what was acknowledged; a reader that takes nothing must not keep
	 * the receiver from ending. */
	httpd_free(srv);
	if (started) {
		struct timespec until;

		pthread_mutex_lock(&r->mu);
		r->closing = 1;
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += DRAIN_MS / 1000;
		if (pthread_timedjoin_np(writer, NULL, &until) != 0) {
			pthread_mutex_lock(&r->mu);
			st->lost += r->qlines;
			r->failed = 1; /* whatever it still writes is extra */
			pthread_mutex_unlock(&r->mu);
			log_msg(cfg->log, LOG_ERROR, 0, NULL,
			        "standard output took nothing for %d s; "
			        "giving up",
			        DRAIN_MS / 1000);
			pthread_detach(writer);
			detached = 1;
		}
	}
	if (detached)
		return rc; /* r stays: the writer still uses it */
	sns_certs_free(r->certs);
	free(r->seen.ring);
	free(r->seen.when);
	free(r->seen.table);
	buf_free(&r->out);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
	return rc;
}
