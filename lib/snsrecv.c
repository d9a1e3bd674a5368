/* snsrecv.c: answers SNS deliveries, writes accepted ones from a thread. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpd.h"
#include "ndjson.h"
#include "sns.h"
#include "snsrecv.h"

#define FUTURE_MS (5 * 60 * 1000LL) /* clock skew allowed ahead */

/* MessageIds accepted, as 64-bit hashes: a ring keeps their order for
 * eviction, an open-addressed table answers "seen?".  Hashes are keyed
 * with a per-run seed; only authentic messages are ever added. */
struct seen {
	uint64_t *ring, *table;
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
	int closing, failed;
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
	s->table = calloc(t, sizeof(*s->table));
	return s->ring != NULL && s->table != NULL ? 0 : -1;
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

static void
seen_add(struct seen *s, uint64_t h)
{
	size_t i;

	if (seen_has(s, h))
		return;
	if (s->n == s->cap) {
		/* The oldest goes: SNS redelivers within minutes, and a
		 * Timestamp past max_age is refused anyway. */
		seen_del(s, s->ring[s->head]);
		s->head = (s->head + 1) % s->cap;
		s->n--;
	}
	s->ring[(s->head + s->n) % s->cap] = h;
	s->n++;
	for (i = h & s->tmask; s->table[i] != 0; i = (i + 1) & s->tmask)
		;
	s->table[i] = h;
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
		return 1;
	for (const char *p = list; *p != '\0';) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && memcmp(p, topic, n) == 0)
			return 1;
		p += len + (e != NULL);
	}
	return 0;
}

struct get {
	int done;
	long status;
	struct soar_error err;
};

static void
on_get(void *arg, const struct http_response *resp,
       const struct soar_error *err)
{
	struct get *g = arg;

	g->done = 1;
	g->status = resp->status;
	if (err != NULL)
		g->err = *err;
}

/* Confirms a subscription: a GET on its SubscribeURL (already checked by
 * sns_verify to be on an SNS host).  Returns 0, or -1 with err set. */
static int
confirm(struct recv *r, const char *url, struct soar_error *err)
{
	struct get g = {0};
	struct http_request req = {
	        .method = "GET", .url = url, .idempotent = 1};

	soar_error_clear(&g.err);
	if (http_submit(r->cfg->http, &req, NULL, on_get, &g) < 0) {
		soar_error_set(err, "nomem", "out of memory");
		return -1;
	}
	while (!g.done)
		http_poll(r->cfg->http, 1000, -1);
	if (g.err.code[0] != '\0') {
		*err = g.err;
		return -1;
	}
	return 0;
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

/* Refuses a delivery: logged with its reason, never written. */
static void
refuse(struct recv *r, const struct httpd_request *req,
       struct httpd_response *resp, int status, const char *id, const char *why)
{
	r->st->rejected++;
	log_msg(r->cfg->log, status >= 500 ? LOG_WARN : LOG_ERROR, 0, NULL,
	        "delivery from %s%s%s refused (%d): %s", req->peer,
	        id ? ", MessageId " : "", id ? id : "", status, why);
	answer(resp, status, why);
}

static void
keep_unusable(struct recv *r, const struct sns_msg *m, const char *why)
{
	r->st->unusable++;
	log_msg(r->cfg->log, LOG_ERROR, 0, NULL,
	        "MessageId %s from %s: %s; kept in the reject file",
	        m->message_id, m->topic_arn, why);
	if (r->cfg->reject_fd >= 0 &&
	    (ndjson_write_all(r->cfg->reject_fd, m->message,
	                      strlen(m->message)) != 0 ||
	     ndjson_write_all(r->cfg->reject_fd, "\n", 1) != 0))
		log_msg(r->cfg->log, LOG_ERROR, 0, NULL, "--reject: %s",
		        strerror(errno));
}

static void
notification(struct recv *r, const struct sns_msg *m, uint64_t h,
             struct httpd_response *resp)
{
	char why[256] = "";
	size_t nlines = 0;
	int rc;

	buf_clear(&r->out);
	if (r->cfg->convert(r->cfg->arg, m->message, &r->out, &nlines, why,
	                    sizeof(why)) < 0) {
		/* Authentic, but not ours: SNS must not send it again. */
		keep_unusable(r, m, why[0] ? why : "not understood");
		seen_add(&r->seen, h);
		answer(resp, 200, "not a finding; kept");
		return;
	}
	rc = r->out.len > 0 ? enqueue(r, r->out.data, r->out.len, nlines) : 0;
	if (rc != 0) {
		log_msg(r->cfg->log, LOG_WARN, 0, NULL,
		        "MessageId %s: %s; SNS will deliver it again",
		        m->message_id,
		        rc > 0 ? "output queue full" : "output failed");
		answer(resp, 503, rc > 0 ? "busy" : "output failed");
		return;
	}
	r->st->accepted++;
	seen_add(&r->seen, h);
	answer(resp, 200, "ok");
}

static void
handle(void *arg, const struct httpd_request *req, struct httpd_response *resp)
{
	struct recv *r = arg;
	const struct snsrecv_config *cfg = r->cfg;
	const char *type = httpd_header(req, "x-amz-sns-message-type");
	struct sns_msg m;
	struct soar_error err;
	char why[700];
	long long now = (long long)time(NULL) * 1000;
	uint64_t h;

	r->st->deliveries++;
	if (sns_parse(req->body, req->body_len, &m, &err) < 0) {
		refuse(r, req, resp, 400, NULL, err.message);
		return;
	}
	if (type == NULL || strcmp(type, m.type_name) != 0) {
		snprintf(why, sizeof(why),
		         "x-amz-sns-message-type %s does not match Type %s",
		         type ? type : "(missing)", m.type_name);
		refuse(r, req, resp, 400, m.message_id, why);
		goto out;
	}
	if (m.timestamp_ms < now - cfg->max_age_s * 1000LL ||
	    m.timestamp_ms > now + FUTURE_MS) {
		snprintf(why, sizeof(why), "Timestamp %s is %s", m.timestamp,
		         m.timestamp_ms > now ? "in the future" : "stale");
		refuse(r, req, resp, 400, m.message_id, why);
		goto out;
	}
	if (!topic_allowed(cfg->topics, m.topic_arn)) {
		snprintf(why, sizeof(why), "TopicArn %s is not in --topic",
		         m.topic_arn);
		refuse(r, req, resp, 403, m.message_id, why);
		goto out;
	}
	if (sns_verify(r->certs, cfg->http, &m, time(NULL), &err) < 0) {
		int status = strcmp(err.code, "fetch") == 0 ? 502
		             : strcmp(err.code, "nomem") == 0 ||
		                             strcmp(err.code, "crypto") == 0
		                     ? 500
		                     : 403;

		refuse(r, req, resp, status, m.message_id, err.message);
		goto out;
	}
	h = id_hash(&r->seen, m.message_id);
	if (seen_has(&r->seen, h)) {
		r->st->duplicates++;
		log_msg(cfg->log, LOG_INFO, 0, NULL,
		        "MessageId %s delivered again; acknowledged",
		        m.message_id);
		answer(resp, 200, "duplicate");
		goto out;
	}
	switch (m.type) {
	case SNS_NOTIFICATION:
		notification(r, &m, h, resp);
		break;
	case SNS_SUBSCRIPTION_CONFIRMATION:
		if (cfg->topics == NULL) {
			snprintf(why, sizeof(why),
			         "subscription to %s not confirmed: name the "
			         "topic with --topic",
			         m.topic_arn);
			refuse(r, req, resp, 403, m.message_id, why);
			break;
		}
		if (confirm(r, m.subscribe_url, &err) < 0) {
			refuse(r, req, resp, 502, m.message_id, err.message);
			break;
		}
		r->st->confirmed++;
		seen_add(&r->seen, h);
		log_msg(cfg->log, LOG_WARN, 0, NULL,
		        "subscription to %s confirmed", m.topic_arn);
		answer(resp, 200, "confirmed");
		break;
	case SNS_UNSUBSCRIBE_CONFIRMATION:
		seen_add(&r->seen, h);
		log_msg(cfg->log, LOG_WARN, 0, NULL,
		        "%s unsubscribed this endpoint; nothing more will "
		        "arrive from it",
		        m.topic_arn);
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
	struct recv r = {.cfg = cfg, .st = st, .out = BUF_INIT};
	struct httpd_config hc;
	struct httpd *srv = NULL;
	pthread_t writer;
	int started = 0, rc = -1;

	memset(st, 0, sizeof(*st));
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	if (seen_init(&r.seen, cfg->max_seen ? cfg->max_seen : 1) < 0) {
		soar_error_set(err, "nomem", "out of memory");
		goto out;
	}
	if ((r.certs = sns_certs_new(cfg->cafile, cfg->cert_host, err)) == NULL)
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
	hc.arg = &r;
	if ((srv = httpd_new(&hc, err)) == NULL)
		goto out;
	if (pthread_create(&writer, NULL, writer_main, &r) != 0) {
		soar_error_set(err, "nomem", "cannot start a thread");
		goto out;
	}
	started = 1;
	log_msg(cfg->log, LOG_INFO, 0, NULL, "listening on %s",
	        httpd_address(srv));
	while (!*stop && !output_failed(&r))
		if (httpd_poll(srv, 1000, wake_fd, err) < 0)
			goto out;
	rc = 0;
out:
	/* Stop taking deliveries, then let the writer finish the queue. */
	httpd_free(srv);
	if (started) {
		pthread_mutex_lock(&r.mu);
		r.closing = 1;
		pthread_cond_signal(&r.cv);
		pthread_mutex_unlock(&r.mu);
		pthread_join(writer, NULL);
	}
	sns_certs_free(r.certs);
	free(r.seen.ring);
	free(r.seen.table);
	buf_free(&r.out);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	return rc;
}
