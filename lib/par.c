/* par.c: ordered parallel processing of line batches. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"

#define MAX_THREADS 16

enum slot_state { SLOT_EMPTY, SLOT_READY, SLOT_BUSY, SLOT_DONE };

struct slot {
	enum slot_state state;
	struct buf in;
	size_t first;
	int rc;
	struct par_out out;
};

struct pool {
	const struct par_config *cfg;
	pthread_mutex_t mu;
	pthread_cond_t work; /* a slot became READY, or quit */
	pthread_cond_t done; /* a slot became DONE */
	struct slot *slots;
	size_t nslots;
	size_t read_seq, work_seq, write_seq;
	int quit;
	pthread_t threads[MAX_THREADS];
	int nthreads;
};

struct worker_arg {
	struct pool *p;
	int index;
};

static void
out_clear(struct par_out *o, size_t nroutes, size_t keep)
{
	struct buf *bs[] = {&o->out, &o->reject, &o->log};

	/* Buffers that once held a huge line are given back, not kept. */
	for (size_t i = 0; i < 3; i++)
		if (bs[i]->cap > keep)
			buf_free(bs[i]);
		else
			buf_clear(bs[i]);
	for (size_t i = 0; i < nroutes; i++)
		if (o->routes[i].cap > keep)
			buf_free(&o->routes[i]);
		else
			buf_clear(&o->routes[i]);
	o->nfailed = 0;
}

static void
out_free(struct par_out *o)
{
	buf_free(&o->out);
	buf_free(&o->reject);
	buf_free(&o->log);
	for (size_t i = 0; i < PAR_MAX_ROUTES; i++)
		buf_free(&o->routes[i]);
}

static void *
worker(void *v)
{
	struct worker_arg *wa = v;
	struct pool *p = wa->p;
	const struct par_config *cfg = p->cfg;
	int index = wa->index;
	void *ctx;

	free(wa);
	ctx = index == 0 ? cfg->ctx0 : cfg->ctx_new(cfg->ctx0, index);
	if (ctx == NULL)
		return NULL;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct slot *s;

		while (!p->quit &&
		       (p->work_seq == p->read_seq ||
		        p->slots[p->work_seq % p->nslots].state != SLOT_READY))
			pthread_cond_wait(&p->work, &p->mu);
		if (p->quit)
			break;
		s = &p->slots[p->work_seq++ % p->nslots];
		s->state = SLOT_BUSY;
		pthread_mutex_unlock(&p->mu);
		s->rc = cfg->fn(ctx, s->in.data, s->in.len, s->first, &s->out);
		pthread_mutex_lock(&p->mu);
		s->state = SLOT_DONE;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	if (index != 0 && cfg->ctx_free != NULL)
		cfg->ctx_free(ctx);
	return NULL;
}

/* Writes one batch's results.  Returns 0 or -1 with res updated. */
static int
emit(const struct par_config *cfg, const struct par_sinks *sk,
     struct par_out *o, struct par_result *res)
{
	int rc;

	log_flush_buf(sk->log, &o->log);
	res->nfailed += o->nfailed;
	if (o->reject.len > 0 && sk->reject_fd >= 0 &&
	    ndjson_write_all(sk->reject_fd, o->reject.data, o->reject.len)) {
		log_error(sk->log, "reject file: %s", strerror(errno));
		res->fatal = 1;
		return -1;
	}
	for (size_t i = 0; i < cfg->nroutes; i++) {
		if (o->routes[i].len == 0)
			continue;
		rc = ndjson_write(&sk->routes[i], o->routes[i].data,
		                  o->routes[i].len);
		if (rc != 0) {
			log_error(sk->log, "route %s: %s", sk->route_names[i],
			          rc == NDJSON_EPIPE ? "reader went away"
			                             : strerror(errno));
			res->fatal = 1;
			return -1;
		}
	}
	rc = ndjson_write(sk->out, o->out.data, o->out.len);
	if (rc == NDJSON_EPIPE) {
		res->epipe = 1;
		return -1;
	}
	if (rc != 0) {
		log_error(sk->log, "standard output: %s", strerror(errno));
		res->fatal = 1;
		return -1;
	}
	return 0;
}

/* Flushes every writer so what was processed reaches its reader. */
static int
flush_all(const struct par_config *cfg, const struct par_sinks *sk,
          struct par_result *res)
{
	int rc;

	for (size_t i = 0; i < cfg->nroutes; i++)
		if (ndjson_flush(&sk->routes[i]) != 0) {
			log_error(sk->log, "route %s: %s", sk->route_names[i],
			          strerror(errno));
			res->fatal = 1;
			return -1;
		}
	rc = ndjson_flush(sk->out);
	if (rc == NDJSON_EPIPE)
		res->epipe = 1;
	else if (rc != 0) {
		log_error(sk->log, "standard output: %s", strerror(errno));
		res->fatal = 1;
	}
	return rc ? -1 : 0;
}

/* Writes every DONE slot in order; with wait_all, waits for all queued
 * batches first.  Called with the lock held. */
static int
drain(struct pool *p, const struct par_sinks *sk, struct par_result *res,
      int wait_all)
{
	while (p->write_seq < p->read_seq) {
		struct slot *s = &p->slots[p->write_seq % p->nslots];

		if (s->state != SLOT_DONE) {
			if (!wait_all && p->read_seq - p->write_seq < p->nslots)
				return 0;
			pthread_cond_wait(&p->done, &p->mu);
			continue;
		}
		pthread_mutex_unlock(&p->mu);
		int rc = emit(p->cfg, sk, &s->out, res);
		pthread_mutex_lock(&p->mu);
		if (rc < 0 || s->rc < 0) {
			if (s->rc < 0)
				res->fatal = 1;
			return -1;
		}
		out_clear(&s->out, p->cfg->nroutes, 4 * p->cfg->batch);
		s->state = SLOT_EMPTY;
		p->write_seq++;
	}
	return 0;
}

static int
start_threads(struct pool *p)
{
	for (int i = 0; i < p->cfg->nthreads && i < MAX_THREADS; i++) {
		struct worker_arg *wa = malloc(sizeof(*wa));

		if (wa == NULL)
			break;
		wa->p = p;
		wa->index = i;
		if (pthread_create(&p->threads[i], NULL, worker, wa) != 0) {
			free(wa);
			break;
		}
		p->nthreads++;
	}
	return p->nthreads > 0 ? 0 : -1;
}

static void
stop_threads(struct pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
}

/* Handles a line over --max-line: reported, copied to the reject file. */
static int
too_long(struct ndjson_reader *r, size_t lineno, const struct par_sinks *sk,
         struct par_result *res)
{
	log_msg(sk->log, LOG_ERROR, lineno, NULL,
	        "line longer than --max-line; rejected");
	res->nfailed++;
	if (ndjson_skip_line(r, sk->reject_fd) < 0) {
		log_error(sk->log, "reading a long line: %s", strerror(errno));
		res->fatal = 1;
		return -1;
	}
	return 0;
}

int
par_run(struct ndjson_reader *r, const struct par_config *cfg,
        const struct par_sinks *sk, struct par_result *res)
{
	struct pool p = {.cfg = cfg};
	int threaded = 0, rc = 0, st;

	memset(res, 0, sizeof(*res));
	p.nslots = (size_t)(cfg->nthreads > 1 ? 2 * cfg->nthreads + 2 : 1);
	if ((p.slots = calloc(p.nslots, sizeof(*p.slots))) == NULL)
		return -1;
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.work, NULL);
	pthread_cond_init(&p.done, NULL);
	pthread_mutex_lock(&p.mu);
	for (;;) {
		struct slot *s;

		/* Write what is done; wait when the ring is full. */
		if (drain(&p, sk, res, 0) < 0)
			goto stop;
		s = &p.slots[p.read_seq % p.nslots];
		if (!ndjson_reader_ready(r)) {
			/* About to wait for input: let the output catch up, so
			 * a slow stream (tail -f) is not held in our buffers.
			 */
			if ((threaded && drain(&p, sk, res, 1) < 0) ||
			    flush_all(cfg, sk, res) < 0)
				goto stop;
		}
		pthread_mutex_unlock(&p.mu);
		buf_clear(&s->in);
		st = ndjson_read_batch(r, &s->in, cfg->batch, &s->first);
		pthread_mutex_lock(&p.mu);
		if (st == NDJSON_EOF)
			break;
		if (st == NDJSON_ERR) {
			log_error(sk->log, "reading standard input: %s",
			          strerror(errno));
			res->fatal = 1;
			goto stop;
		}
		if (st == NDJSON_TOOLONG) {
			if (drain(&p, sk, res, 1) < 0)
				goto stop;
			pthread_mutex_unlock(&p.mu);
			st = too_long(r, s->first, sk, res);
			pthread_mutex_lock(&p.mu);
			if (st < 0)
				goto stop;
			continue;
		}
		if (!threaded && cfg->nthreads > 1 && s->in.len >= cfg->batch) {
			pthread_mutex_unlock(&p.mu);
			st = start_threads(&p);
			pthread_mutex_lock(&p.mu);
			threaded = st == 0;
		}
		if (threaded) {
			s->state = SLOT_READY;
			p.read_seq++;
			pthread_cond_signal(&p.work);
			continue;
		}
		/* Inline: process and write at once. */
		pthread_mutex_unlock(&p.mu);
		s->rc = cfg->fn(cfg->ctx0, s->in.data, s->in.len, s->first,
		                &s->out);
		st = emit(cfg, sk, &s->out, res);
		out_clear(&s->out, cfg->nroutes, 4 * cfg->batch);
		pthread_mutex_lock(&p.mu);
		if (s->rc < 0)
			res->fatal = 1;
		if (st < 0 || s->rc < 0)
			goto stop;
	}
	if (drain(&p, sk, res, 1) == 0)
		flush_all(cfg, sk, res);
	else
		rc = -1;
	goto out;
stop:
	rc = -1;
out:
	pthread_mutex_unlock(&p.mu);
	stop_threads(&p);
	for (size_t i = 0; i < p.nslots; i++) {
		buf_free(&p.slots[i].in);
		out_free(&p.slots[i].out);
	}
	free(p.slots);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.work);
	pthread_cond_destroy(&p.done);
	return rc || res->fatal || res->epipe ? -1 : 0;
}
