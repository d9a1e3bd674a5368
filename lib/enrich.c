/* enrich.c: ordered, deduplicated, cached, concurrent lookups per event. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "enrich.h"
#include "event.h"
#include "json.h"

#define BATCH     (64 * 1024)
#define QUEUE_MEM 16 /* batches queued in memory */
/* Lookups started ahead of the window at most: beyond, a batch's lookups
 * start when it is admitted. */
#define PREFETCH_MAX 4096

/* One input line made ready by the reader thread: checked, copied, its
 * lookups found.  Doing that work there puts the second core to use. */
struct prep {
	const char *line; /* trimmed, inside the batch's data */
	size_t loff;      /* line - data, to find it again after the spool */
	size_t len, lineno;
	size_t koff, nkeys; /* its lookups: records in the batch's keys */
	jv error;       /* invalid, or why the tool cannot handle the event */
	int key_absent; /* the tool's key is surely not in the line */
};

/* One lookup as keys() found it, in struct item's keys: the header, then
 * type and value as C strings, padded to a multiple of 8 bytes. */
struct krec {
	uint64_t hash;
	uint32_t tlen, vlen;
};

struct enrich_keys {
	struct buf *arena; /* the batch's records */
	size_t first, n;   /* this event's */
};

/* A batch of prepared lines: batching keeps the two threads from waking
 * each other per line. */
struct reject {
	const char *raw; /* the line as read, inside the batch's data */
	size_t rawlen, lineno, col;
	const char *msg; /* static text */
};

struct item {
	char *data; /* the batch's bytes: every line of it points here */
	struct reject *rej; /* lines that are not events, in order */
	size_t nrej;
	int refs; /* events still holding a line, plus one for the cursor */
	struct prep *v;
	struct buf keys; /* every event's lookups, as struct krec records */
	size_t n, next;  /* next: the main loop's cursor */
	int prefetched;  /* its lookups were started (main thread only) */
	/* Spooled: data, v and keys are in the spool file at spool_off
	 * (data NULL, v NULL); keys stays in memory until prefetched. */
	int spooled;
	size_t first_lineno; /* of its first line, for messages */
	off_t spool_off;
	size_t datalen, spool_len;
	struct item *next_item;
};

/* The readers: one or two threads take batches from fd 0 in turn (rmu),
 * prepare them at the same time, and publish them in input order: a
 * batch waits for its turn (seq == turn) to write its rejects and join
 * the queue, so the reject file and the log keep the input's order. */
struct queue {
	pthread_mutex_t mu;
	pthread_cond_t room; /* queue room, and a turn passed */
	pthread_mutex_t rmu; /* held while reading fd 0 */
	size_t next_seq;     /* under rmu */
	size_t turn;         /* the batch that publishes next */
	int done_reading;    /* under rmu: end of input or an error */
	struct item *head, *tail;
	size_t nmem;       /* batches queued in memory (at most QUEUE_MEM) */
	size_t nspool;     /* batches in the spool file, or being written */
	off_t spool_end;   /* where the next spooled batch goes */
	size_t nspool_new; /* spooled batches whose lookups wait to start */
	int spool_failed;  /* a write failed: no more spooling */
	size_t spool_live; /* bytes of batches in the spool file */
	int no_punch;      /* read-back space cannot be freed early */
	int halt;          /* read no more input; queue what is read */
	int busy;          /* readers holding input not yet queued */
	size_t nspooled;   /* batches ever spooled */
	size_t spool_peak; /* the most bytes in the spool file at once */
	int eof, err, stop;
	size_t nrejected; /* lines the reader rejected */
	int wake[2];      /* a byte in wake[1] wakes the main loop */
};

struct entry;

struct ev {
	const char *line; /* inside owner->data */
	struct item *owner;
	size_t len, lineno;
	int key_absent; /* see struct prep */
	size_t nkeys;
	int outstanding;
	jv error; /* invalid unless the event itself could not be handled */
	struct ev *prev, *next;
	struct entry *keys[]; /* nkeys */
};

enum { ENTRY_PENDING, ENTRY_DONE };

struct entry {
	char *type, *value;
	uint64_t hash;
	int state;
	enum enrich_verdict verdict;
	jv result;
	struct enrich_item it; /* rendered when done */
	struct buf text, errtext;
	char *message;
	struct ev **waiters;
	size_t nwait, capwait;
	struct entry *chain;
	struct engine *en;
};

struct engine {
	const struct enrich_config *cfg;
	const struct enrich_ops *ops;
	void *ctx;
	struct http *http;
	struct cache *cache;
	struct enrich_result *res;
	struct entry **table;
	size_t nbuckets, nentries;
	struct ev *head, *tail;
	size_t nwindow;
	int stopped, fatal;
	int out_failed;    /* writing stdout failed: nothing more is written */
	size_t ncompleted; /* lookups answered by the network */
	jv stop_result;    /* what lookups get once nothing more is sent */
	int reject_fd;
	struct ndjson_writer out;
	struct queue q;
	struct ndjson_reader *reader;
	int cache_warned;
	int spool_fd;         /* the spool file, or -1 */
	struct buf line, val; /* emit()'s, kept between events */
	struct item *pf_last; /* the last batch prefetched, while queued */
};

/* The reader thread: lines from fd 0 into the queue, over-long lines
 * reported and copied to the reject file. */
static void
item_free(struct item *it)
{
	if (it == NULL)
		return;
	for (size_t i = it->next; it->v != NULL && i < it->n; i++)
		jv_free(it->v[i].error);
	free(it->v);
	free(it->rej);
	buf_free(&it->keys);
	free(it->data);
	free(it);
}

/* Drops one reference to a batch; the last one frees it. */
static void
item_unref(struct item *it)
{
	if (it != NULL && --it->refs == 0)
		item_free(it);
}

/* On a reader thread: checks each line of a batch, setting aside what is
 * not an event, and finds the lookups of the others.  Returns the
 * prepared batch, or NULL on ENOMEM. */
static struct item *
prepare_batch(struct engine *en, struct buf *b, size_t first)
{
	struct item *it = calloc(1, sizeof(*it));
	const char *p, *end;
	size_t cap = 0, rcap = 0, lineno = first;

	if (it == NULL)
		return NULL;
	/* The item takes the buffer: lines are used where they lie. */
	it->data = b->data;
	it->first_lineno = first;
	it->refs = 1;
	p = it->data;
	end = p + b->len;
	*b = (struct buf)BUF_INIT;
	for (; p < end; lineno++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *raw = p, *line = p;
		size_t rawlen = (size_t)(nl - p), n = rawlen;
		struct json_err je;
		struct enrich_keys ks;
		struct prep *pr;

		p = nl + 1;
		if (!ndjson_trim(&line, &n))
			continue;
		if (json_check_object(line, n, &je) < 0) {
			/* Reported when the batch's turn comes (publish). */
			if (it->nrej == rcap) {
				size_t c = rcap ? rcap * 2 : 8;
				struct reject *r =
				        realloc(it->rej, c * sizeof(*r));

				if (r == NULL)
					goto fail;
				it->rej = r;
				rcap = c;
			}
			it->rej[it->nrej++] = (struct reject){.raw = raw,
			                                      .rawlen = rawlen,
			                                      .lineno = lineno,
			                                      .col = je.off + 1,
			                                      .msg = je.msg};
			continue;
		}
		if (it->n == cap) {
			size_t c = cap ? cap * 2 : 64;
			struct prep *v = realloc(it->v, c * sizeof(*v));

			if (v == NULL)
				goto fail;
			it->v = v;
			cap = c;
		}
		pr = &it->v[it->n];
		/* Padding too: the struct may go to the spool file. */
		memset(pr, 0, sizeof(*pr));
		pr->line = line;
		pr->loff = (size_t)(line - it->data);
		pr->len = n;
		pr->lineno = lineno;
		ks = (struct enrich_keys){.arena = &it->keys,
		                          .first = it->keys.len};
		pr->error = jv_invalid();
		if (en->ops->keys(en->ctx, pr->line, n, &ks, &pr->error) < 0) {
			if (!jv_is_valid(pr->error)) {
				it->n++; /* item_free() frees its error */
				goto fail;
			}
			/* The event fails whole: no lookup for it. */
			it->keys.len = ks.first;
			ks.n = 0;
		}
		pr->koff = ks.first;
		pr->nkeys = ks.n;
		/* Found here, the main thread need not search the line. */
		pr->key_absent = event_key_absent(line, n, en->cfg->key);
		it->n++;
	}
	return it;
fail:
	item_free(it);
	return NULL;
}

/* Waits, holding q->mu, until batch seq may publish.  Returns 0, or -1
 * once the run stops. */
static int
wait_turn(struct queue *q, size_t seq)
{
	while (q->turn != seq && !q->stop)
		pthread_cond_wait(&q->room, &q->mu);
	return q->stop ? -1 : 0;
}

static void
pass_turn(struct queue *q)
{
	q->turn++;
	pthread_cond_broadcast(&q->room);
}

/* In its turn: reports the batch's rejected lines, then queues it.
 * Returns 0, -1 with errno on a reject-file error, or 1 when the run
 * stopped (the batch is freed). */
static int
publish(struct engine *en, struct item *it)
{
	struct queue *q = &en->q;

	for (size_t i = 0; i < it->nrej; i++) {
		const struct reject *r = &it->rej[i];

		log_msg(en->cfg->log, LOG_ERROR, r->lineno, NULL,
		        "column %zu: %s; rejected", r->col, r->msg);
		q->nrejected++;
		if (en->reject_fd >= 0 &&
		    ndjson_write_all(en->reject_fd, r->raw, r->rawlen + 1) != 0)
			return -1;
	}
	if (it->n == 0) {
		item_free(it); /* nothing but rejects */
		return 0;
	}
	while (!it->spooled && q->nmem >= QUEUE_MEM && !q->stop)
		pthread_cond_wait(&q->room, &q->mu);
	if (q->stop) {
		item_free(it);
		return 1;
	}
	if (q->tail)
		q->tail->next_item = it;
	else
		q->head = it;
	q->tail = it;
	if (!it->spooled)
		q->nmem++;
	return 0;
}

/* Writes the three pieces at off, however many calls it takes.  Returns
 * 0, or -1 with errno. */
static ssize_t
pwritev_all(int fd, struct iovec iov[3], off_t off)
{
	int i = 0;

	while (i < 3) {
		ssize_t w = pwritev(fd, iov + i, 3 - i, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		off += w;
		while (i < 3 && (size_t)w >= iov[i].iov_len)
			w -= (ssize_t)iov[i++].iov_len;
		if (i < 3) {
			iov[i].iov_base = (char *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* On a reader thread: when the batches in memory fill their share, moves
 * a batch's bytes to the spool file and keeps only its lookups, so that
 * prefetch() can start them long before the window reaches the batch
 * while memory stays small.  Not for a batch with rejected lines or failed
 * events (their reports and errors live in memory), nor when the lookups
 * of many spooled batches wait to start (prefetch() is held back: reading
 * further ahead would gain nothing).  A failed write keeps the batch in
 * memory and ends spooling for the run. */
static void
spool(struct engine *en, struct item *it)
{
	struct queue *q = &en->q;
	size_t vlen = it->n * sizeof(*it->v), len;
	struct iovec iov[3];
	off_t off = 0;
	ssize_t w;
	int ok, err;

	if (en->spool_fd < 0 || it->nrej > 0)
		return;
	for (size_t i = 0; i < it->n; i++)
		if (jv_is_valid(it->v[i].error))
			return;
	it->datalen = it->v[it->n - 1].loff + it->v[it->n - 1].len;
	len = it->datalen + vlen + it->keys.len;
	pthread_mutex_lock(&q->mu);
	ok = !q->spool_failed && !q->stop && q->nmem >= QUEUE_MEM &&
	     q->nspool_new < QUEUE_MEM * 4 &&
	     (q->no_punch ? (size_t)q->spool_end : q->spool_live) + len <=
	             en->cfg->read_ahead;
	if (ok) {
		off = q->spool_end;
		q->spool_end += (off_t)len;
		q->spool_live += len;
		q->nspool++;
	}
	pthread_mutex_unlock(&q->mu);
	if (!ok)
		return;
	iov[0] = (struct iovec){it->data, it->datalen};
	iov[1] = (struct iovec){it->v, vlen};
	iov[2] = (struct iovec){it->keys.data, it->keys.len};
	w = pwritev_all(en->spool_fd, iov, off);
	err = errno;
	pthread_mutex_lock(&q->mu);
	if (w < 0) {
		q->nspool--;
		q->spool_live -= len;
		if (!q->spool_failed)
			log_msg(en->cfg->log, LOG_WARN, 0, NULL,
			        "spool file: %s; reading ahead in memory only",
			        strerror(err));
		q->spool_failed = 1;
	} else {
		q->nspool_new++;
		q->nspooled++;
		if (q->spool_live > q->spool_peak)
			q->spool_peak = q->spool_live;
		free(it->data);
		free(it->v);
		it->data = NULL;
		it->v = NULL;
		it->spooled = 1;
		it->spool_off = off;
		it->spool_len = len;
	}
	pthread_mutex_unlock(&q->mu);
}

/* Frees a batch's room in the spool file once it is read back (or lost):
 * a hole punched where it was, so the disk holds only what waits, and
 * the file emptied whenever nothing waits. */
static void
spool_release(struct engine *en, const struct item *it)
{
	struct queue *q = &en->q;
	int punched = fallocate(en->spool_fd,
	                        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	                        it->spool_off, (off_t)it->spool_len) == 0;

	pthread_mutex_lock(&q->mu);
	if (!punched)
		q->no_punch = 1; /* the budget then counts the file's size */
	q->spool_live -= it->spool_len;
	if (--q->nspool == 0 && q->spool_end > 0) {
		/* Empty: the next batch goes to the start again. */
		q->spool_end = 0;
		q->no_punch = 0;
		if (ftruncate(en->spool_fd, 0) < 0)
			q->spool_failed = 1;
	}
	pthread_mutex_unlock(&q->mu);
}

/* Reads a spooled batch back.  Returns 0, or -1 (logged) on a read error
 * or ENOMEM. */
static int
unspool(struct engine *en, struct item *it)
{
	size_t vlen = it->n * sizeof(*it->v), klen, got = 0;
	char *b = malloc(it->spool_len);
	ssize_t r = 0;

	while (b != NULL && got < it->spool_len) {
		r = pread(en->spool_fd, b + got, it->spool_len - got,
		          it->spool_off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (b == NULL || got < it->spool_len ||
	    (it->v = malloc(vlen)) == NULL) {
		log_msg(en->cfg->log, LOG_ERROR, 0, NULL,
		        "spool file: %s; the %zu events read from line %zu on "
		        "are lost",
		        b == NULL || got == it->spool_len ? strerror(ENOMEM)
		        : r < 0                           ? strerror(errno)
		                                          : "short read",
		        it->n, it->first_lineno);
		free(b);
		return -1;
	}
	memcpy(it->v, b + it->datalen, vlen);
	klen = it->spool_len - it->datalen - vlen;
	if (it->keys.len == 0 && klen > 0 &&
	    buf_append(&it->keys, b + it->datalen + vlen, klen) < 0) {
		log_msg(en->cfg->log, LOG_ERROR, 0, NULL,
		        "spool file: %s; the %zu events read from line %zu on "
		        "are lost",
		        strerror(ENOMEM), it->n, it->first_lineno);
		free(it->v);
		it->v = NULL;
		free(b);
		return -1;
	}
	it->data = b;
	for (size_t i = 0; i < it->n; i++)
		it->v[i].line = b + it->v[i].loff;
	it->spooled = 0;
	spool_release(en, it);
	return 0;
}

/* A reader thread: batches from fd 0, prepared here, queued in order;
 * over-long lines reported and copied to the reject file. */
static void *
reader_main(void *arg)
{
	struct engine *en = arg;
	struct queue *q = &en->q;
	struct buf b = BUF_INIT;
	int rc, st;

	for (;;) {
		struct item *it;
		size_t first, seq;

		pthread_mutex_lock(&q->rmu);
		pthread_mutex_lock(&q->mu);
		st = q->halt;
		pthread_mutex_unlock(&q->mu);
		if (q->done_reading || st) {
			pthread_mutex_unlock(&q->rmu);
			break;
		}
		buf_clear(&b);
		if (buf_reserve(&b, BATCH + BATCH / 4) < 0)
			rc = NDJSON_ERR;
		else
			rc = ndjson_read_batch(en->reader, &b, BATCH, &first);
		seq = q->next_seq++;
		if (rc == NDJSON_TOOLONG) {
			/* The line is copied from fd 0 as it is read, so the
			 * read lock is kept until it is through. */
			pthread_mutex_lock(&q->mu);
			if (wait_turn(q, seq) == 0) {
				log_msg(en->cfg->log, LOG_ERROR, first, NULL,
				        "line longer than --max-line; "
				        "rejected");
				q->nrejected++;
				if (ndjson_skip_line(en->reader,
				                     en->reject_fd) < 0) {
					q->done_reading = 1;
					q->eof = 1;
					q->err = errno ? errno : EIO;
				}
				pass_turn(q);
			}
			st = q->stop || q->eof;
			pthread_mutex_unlock(&q->mu);
			pthread_mutex_unlock(&q->rmu);
			if (st)
				break;
			continue;
		}
		if (rc != NDJSON_LINE) {
			int e = errno ? errno : EIO;

			q->done_reading = 1;
			pthread_mutex_unlock(&q->rmu);
			pthread_mutex_lock(&q->mu);
			if (wait_turn(q, seq) == 0) {
				q->eof = 1;
				if (rc == NDJSON_ERR)
					q->err = e;
				pass_turn(q);
			}
			pthread_mutex_unlock(&q->mu);
			break;
		}
		/* Read and not yet queued: the main loop waits for it before
		 * it ends a halted run. */
		pthread_mutex_lock(&q->mu);
		q->busy++;
		pthread_mutex_unlock(&q->mu);
		pthread_mutex_unlock(&q->rmu);
		it = prepare_batch(en, &b, first);
		if (it != NULL && it->n > 0)
			spool(en, it);
		pthread_mutex_lock(&q->mu);
		if (wait_turn(q, seq) < 0 || q->eof) {
			/* Stopped, or a reader failed: this batch is past
			 * the end the run reports. */
			q->busy--;
			pthread_mutex_unlock(&q->mu);
			item_free(it);
			break;
		}
		st = it == NULL ? -1 : publish(en, it);
		if (st < 0) {
			/* Out of memory, or the reject file failed: the run
			 * ends with what was queued before. */
			q->err = errno ? errno : ENOMEM;
			q->eof = 1;
		}
		q->busy--;
		pass_turn(q);
		pthread_mutex_unlock(&q->mu);
		if (st != 0)
			break;
		/* A full pipe means the main loop has wake-ups pending (and
		 * it polls the queue every second anyway). */
		if (write(q->wake[1], "", 1) < 0)
			continue;
	}
	buf_free(&b);
	if (write(q->wake[1], "", 1) < 0)
		return NULL;
	return NULL;
}

static struct item *
queue_pop(struct queue *q, int *eof)
{
	struct item *it;

	pthread_mutex_lock(&q->mu);
	it = q->head;
	if (it != NULL) {
		q->head = it->next_item;
		if (q->head == NULL)
			q->tail = NULL;
		/* room also carries turns: every waiter must see it. */
		if (!it->spooled && q->nmem-- == QUEUE_MEM)
			pthread_cond_broadcast(&q->room);
	}
	*eof = it == NULL && q->eof;
	pthread_mutex_unlock(&q->mu);
	return it;
}

/* Returns 1 when nothing read waits to be queued or taken. */
static int
queue_drained(struct queue *q)
{
	int r;

	pthread_mutex_lock(&q->mu);
	r = q->head == NULL && q->busy == 0;
	pthread_mutex_unlock(&q->mu);
	return r;
}

/* Returns 1 when a batch is queued. */
static int
queue_ready(struct queue *q)
{
	int r;

	pthread_mutex_lock(&q->mu);
	r = q->head != NULL;
	pthread_mutex_unlock(&q->mu);
	return r;
}

static uint64_t
hash(const char *type, const char *value)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (const char *p = type; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (const char *p = value; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

/* The bytes a struct krec record takes with its strings. */
static size_t
krec_size(uint32_t tlen, uint32_t vlen)
{
	return (sizeof(struct krec) + tlen + vlen + 2 + 7) & ~(size_t)7;
}

int
enrich_key(struct enrich_keys *ks, const char *type, const char *value)
{
	size_t tlen = strlen(type), vlen = strlen(value), at;
	struct krec k = {.hash = hash(type, value),
	                 .tlen = (uint32_t)tlen,
	                 .vlen = (uint32_t)vlen};
	const char *rec = ks->arena->data + ks->first;

	if (tlen > UINT32_MAX / 4 || vlen > UINT32_MAX / 4) {
		errno = E2BIG;
		return -1;
	}
	/* An event naming an indicator twice waits on it once. */
	for (size_t i = 0; i < ks->n; i++) {
		struct krec o;

		memcpy(&o, rec, sizeof(o));
		if (o.hash == k.hash && o.tlen == k.tlen && o.vlen == k.vlen &&
		    memcmp(rec + sizeof(o), type, tlen) == 0 &&
		    memcmp(rec + sizeof(o) + tlen + 1, value, vlen) == 0)
			return 0;
		rec += krec_size(o.tlen, o.vlen);
	}
	at = ks->arena->len;
	if (buf_reserve(ks->arena, krec_size(k.tlen, k.vlen)) < 0)
		return -1;
	memset(ks->arena->data + at, 0, krec_size(k.tlen, k.vlen));
	memcpy(ks->arena->data + at, &k, sizeof(k));
	memcpy(ks->arena->data + at + sizeof(k), type, tlen);
	memcpy(ks->arena->data + at + sizeof(k) + tlen + 1, value, vlen);
	ks->arena->len = at + krec_size(k.tlen, k.vlen);
	ks->n++;
	return 0;
}

static int
grow(struct engine *en)
{
	size_t n = en->nbuckets ? en->nbuckets * 2 : 1024;
	struct entry **t = calloc(n, sizeof(*t));

	if (t == NULL)
		return -1;
	for (size_t i = 0; i < en->nbuckets; i++) {
		struct entry *e = en->table[i], *next;

		for (; e != NULL; e = next) {
			size_t b = e->hash & (n - 1);

			next = e->chain;
			e->chain = t[b];
			t[b] = e;
		}
	}
	free(en->table);
	en->table = t;
	en->nbuckets = n;
	return 0;
}

static struct entry *
find(struct engine *en, const char *type, const char *value, uint64_t h)
{
	struct entry *e;

	if (en->nbuckets == 0)
		return NULL;
	e = en->table[h & (en->nbuckets - 1)];
	for (; e != NULL; e = e->chain)
		if (e->hash == h && strcmp(e->type, type) == 0 &&
		    strcmp(e->value, value) == 0)
			return e;
	return NULL;
}

/* Marks e answered and tells every event waiting on it. */
static void
resolve(struct engine *en, struct entry *e, enum enrich_verdict v, jv result)
{
	jv err = jv_getpath(jv_copy(result), JV_ARRAY(jv_string("error")));

	e->state = ENTRY_DONE;
	e->verdict = v;
	e->result = result;
	/* Rendered once here, used by every event that has the indicator. */
	memset(&e->it, 0, sizeof(e->it));
	if (en->ops->item(en->ctx, e->type, e->value, result, &e->text,
	                  &e->it) < 0)
		buf_puts(&e->text, "null");
	if (jv_get_kind(err) == JV_KIND_OBJECT) {
		jv m = jv_object_get(jv_copy(err), jv_string("message"));

		if (jv_get_kind(m) == JV_KIND_STRING)
			e->message = strdup(jv_string_value(m));
		jv_free(m);
		event_dump(jv_copy(err), &e->errtext);
	}
	jv_free(err);
	e->it.text = e->text.data;
	e->it.len = e->text.len;
	e->it.error = e->errtext.len ? e->errtext.data : NULL;
	e->it.errlen = e->errtext.len;
	e->it.message = e->message;
	if ((v == ENRICH_STOP || v == ENRICH_FATAL) && !en->stopped) {
		/* Nothing more goes out: what is queued gets this answer. */
		en->stopped = 1;
		en->stop_result = v == ENRICH_STOP ? en->ops->stopped(en->ctx)
		                                   : jv_copy(result);
		http_cancel_queued(en->http);
	}
	if (v == ENRICH_FATAL)
		en->fatal = 1;
	for (size_t i = 0; i < e->nwait; i++)
		e->waiters[i]->outstanding--;
	free(e->waiters);
	e->waiters = NULL;
	e->nwait = e->capwait = 0;
}

static void
cache_trouble(struct engine *en, const struct soar_error *err)
{
	if (!en->cache_warned)
		log_msg(en->cfg->log, LOG_WARN, 0, NULL,
		        "%s; going on without the cache", err->message);
	en->cache_warned = 1;
}

static void
on_done(void *arg, const struct http_response *resp,
        const struct soar_error *herr)
{
	struct entry *e = arg;
	struct engine *en = e->en;
	struct soar_error err;
	enum enrich_verdict v;
	jv result = jv_null();

	en->ncompleted++;

	if (herr != NULL && strcmp(herr->code, "cancelled") == 0) {
		resolve(en, e, ENRICH_STOP,
		        jv_is_valid(en->stop_result)
		                ? jv_copy(en->stop_result)
		                : en->ops->stopped(en->ctx));
		return;
	}
	v = en->ops->answer(en->ctx, e->type, e->value, resp, herr, &result);
	if (v == ENRICH_OK || v == ENRICH_NOTFOUND) {
		jv text = jv_dump_string(jv_copy(result), 0);

		if (cache_put(en->cache, en->ops->provider, e->type, e->value,
		              jv_string_value(text), v == ENRICH_NOTFOUND,
		              time(NULL),
		              v == ENRICH_OK ? en->cfg->ttl
		                             : en->cfg->negative_ttl,
		              &err) < 0)
			cache_trouble(en, &err);
		jv_free(text);
	}
	resolve(en, e, v, result);
}

/* Starts the lookup of a new entry: cache, or a request, or an error. */
static void
start(struct engine *en, struct entry *e)
{
	struct http_request req;
	struct soar_error err = {0};
	char *json = NULL;
	int neg = 0, rc;

	if (en->stopped) {
		resolve(en, e, ENRICH_STOP, jv_copy(en->stop_result));
		return;
	}
	rc = cache_get(en->cache, en->ops->provider, e->type, e->value,
	               time(NULL), &json, &neg, &err);
	if (rc < 0)
		cache_trouble(en, &err);
	if (rc == 1) {
		jv v = jv_parse(json);

		free(json);
		if (jv_is_valid(v)) {
			en->res->nhits++;
			resolve(en, e, neg ? ENRICH_NOTFOUND : ENRICH_OK, v);
			return;
		}
		jv_free(v);
	}
	memset(&req, 0, sizeof(req));
	if (en->ops->request(en->ctx, e->type, e->value, &req, &err) < 0 ||
	    http_submit(en->http, &req, NULL, on_done, e) < 0) {
		if (err.code[0] == '\0')
			soar_error_set(&err, "nomem", "out of memory");
		resolve(en, e, ENRICH_ERROR, event_error_jv(&err, jv_null()));
		return;
	}
	en->res->nrequests++;
}

static struct entry *
lookup(struct engine *en, const char *type, const char *value, uint64_t h)
{
	struct entry *e = find(en, type, value, h);
	size_t b;

	if (e != NULL)
		return e;
	if (en->nentries >= en->nbuckets && grow(en) < 0)
		return NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->type = strdup(type);
	e->value = strdup(value);
	if (e->type == NULL || e->value == NULL) {
		free(e->type);
		free(e->value);
		free(e);
		return NULL;
	}
	e->en = en;
	e->state = ENTRY_PENDING;
	e->result = jv_invalid();
	e->hash = h;
	b = h & (en->nbuckets - 1);
	e->chain = en->table[b];
	en->table[b] = e;
	en->nentries++;
	start(en, e);
	return e;
}

static int
wait_on(struct entry *e, struct ev *ev)
{
	if (e->state == ENTRY_DONE)
		return 0;
	if (e->nwait == e->capwait) {
		size_t cap = e->capwait ? e->capwait * 2 : 4;
		struct ev **w = realloc(e->waiters, cap * sizeof(*w));

		if (w == NULL)
			return -1;
		e->waiters = w;
		e->capwait = cap;
	}
	e->waiters[e->nwait++] = ev;
	ev->outstanding++;
	return 0;
}

/* Starts the lookups of a batch before its events are admitted, so that
 * requests go out as soon as its lines are read, not when the window
 * reaches them: an event at the head waiting on its answer no longer
 * holds back the discovery of the indicators behind it.  Returns 0, or
 * -1 on ENOMEM. */
static int
prefetch_item(struct engine *en, struct item *it)
{
	/* Every lookup of the batch, in input order (a failed event has
	 * none). */
	const char *rec = it->keys.data, *end = rec + it->keys.len;

	it->prefetched = 1;
	while (rec < end && !en->stopped) {
		const char *type = rec + sizeof(struct krec);
		struct krec k;

		memcpy(&k, rec, sizeof(k));
		rec += krec_size(k.tlen, k.vlen);
		if (lookup(en, type, type + k.tlen + 1, k.hash) == NULL)
			return -1;
	}
	if (it->spooled) {
		/* The spool has them for admit(). */
		buf_free(&it->keys);
		pthread_mutex_lock(&en->q.mu);
		en->q.nspool_new--;
		pthread_mutex_unlock(&en->q.mu);
	}
	return 0;
}

/* Prefetches the batches queued since the last call, in input order.
 * Only this thread takes batches out of the queue or frees them; the
 * readers only append, so the links read here were all written before
 * the tail was read under the lock. */
static int
prefetch(struct engine *en)
{
	struct item *it, *last;

	if (en->stopped)
		return 0;
	pthread_mutex_lock(&en->q.mu);
	it = en->pf_last ? en->pf_last->next_item : en->q.head;
	last = en->q.tail;
	pthread_mutex_unlock(&en->q.mu);
	while (it != NULL && !en->stopped &&
	       http_pending(en->http) < PREFETCH_MAX) {
		if (!it->prefetched && prefetch_item(en, it) < 0)
			return -1;
		en->pf_last = it;
		if (it == last)
			break;
		it = it->next_item;
	}
	return 0;
}

/* Takes the next batch to admit, read back from the spool, its lookups
 * started.  Returns it, or NULL when none is queued (*eof set at the
 * end) or its spooled bytes are lost; *nomem set on ENOMEM. */
static struct item *
take(struct engine *en, int *eof, int *nomem)
{
	struct item *it = queue_pop(&en->q, eof);

	if (it == NULL)
		return NULL;
	if (it == en->pf_last)
		en->pf_last = NULL;
	if (it->spooled && !it->prefetched) {
		pthread_mutex_lock(&en->q.mu);
		en->q.nspool_new--;
		pthread_mutex_unlock(&en->q.mu);
	}
	if (it->spooled && unspool(en, it) < 0) {
		/* Those events cannot be had again: said, counted, and the
		 * run ends (exit 3) after writing all the others read. */
		en->res->nfailed += it->n;
		en->fatal = 1;
		spool_release(en, it);
		item_free(it);
		return NULL;
	} else if (!it->prefetched && !en->stopped && prefetch_item(en, it) < 0)
		*nomem = 1;
	return it;
}

/* Adds a prepared event to the window (taking its line and lookups) and
 * starts or joins its lookups.  Returns 0, or -1 on ENOMEM. */
static int
admit(struct engine *en, struct item *owner, struct prep *pr)
{
	struct ev *ev;
	const char *rec = owner->keys.data + pr->koff;

	ev = calloc(1, sizeof(*ev) + pr->nkeys * sizeof(ev->keys[0]));
	if (ev == NULL)
		return -1;
	ev->line = pr->line;
	ev->len = pr->len;
	ev->lineno = pr->lineno;
	ev->key_absent = pr->key_absent;
	ev->owner = owner;
	owner->refs++;
	ev->error = jv_invalid();
	ev->prev = en->tail;
	if (en->tail)
		en->tail->next = ev;
	else
		en->head = ev;
	en->tail = ev;
	en->nwindow++;
	if (jv_is_valid(pr->error)) {
		jv msg = pr->error;

		pr->error = jv_invalid();
		if (jv_get_kind(msg) == JV_KIND_OBJECT) {
			ev->error = msg;
		} else {
			struct soar_error err;

			soar_error_set(&err, "input", "%s",
			               jv_get_kind(msg) == JV_KIND_STRING
			                       ? jv_string_value(msg)
			                       : "cannot read the event");
			jv_free(msg);
			ev->error = event_error_jv(&err, jv_null());
		}
		return 0;
	}
	/* keys() already dropped an event's repeated lookups. */
	for (size_t i = 0; i < pr->nkeys; i++) {
		const char *type = rec + sizeof(struct krec);
		struct krec k;
		struct entry *e;

		memcpy(&k, rec, sizeof(k));
		rec += krec_size(k.tlen, k.vlen);
		e = lookup(en, type, type + k.tlen + 1, k.hash);
		if (e == NULL)
			return -1;
		ev->keys[ev->nkeys++] = e;
		if (wait_on(e, ev) < 0)
			return -1;
	}
	return 0;
}

/* Standard output failed (a full disk, say): said once, the run stops
 * taking input and sending requests, and the lookups already in flight
 * finish, so their answers reach the cache instead of being paid for
 * again by the next run. */
static void
output_failed(struct engine *en)
{
	if (en->out_failed)
		return;
	log_msg(en->cfg->log, LOG_ERROR, 0, NULL, "standard output: %s",
	        strerror(errno));
	en->out_failed = 1;
	en->fatal = 1;
	if (!en->stopped) {
		struct soar_error e;

		soar_error_set(&e, "output", "standard output failed");
		en->stopped = 1;
		en->stop_result = event_error_jv(&e, jv_null());
	}
	http_cancel_queued(en->http);
}

/* Writes one finished event with the tool's key and frees it. */
static int
emit(struct engine *en, struct ev *ev)
{
	struct buf *out = &en->line, *val = &en->val;
	struct soar_error err;
	const char *line;
	size_t len;
	int failed = 0, rc;
	jv v;

	buf_clear(out);
	buf_clear(val);

	if (!jv_is_valid(ev->error) && ev->nkeys == 0) {
		/* Nothing to look up: the event goes on byte for byte. */
		v = jv_invalid();
	} else if (jv_is_valid(ev->error)) {
		char *id = event_get_string(ev->line, ev->len, "alert.id");
		jv msg = jv_getpath(
		        jv_copy(ev->error),
		        JV_ARRAY(jv_string("error"), jv_string("message")));

		log_msg(en->cfg->log, LOG_ERROR, ev->lineno, id, "%s",
		        jv_get_kind(msg) == JV_KIND_STRING
		                ? jv_string_value(msg)
		                : "failed");
		jv_free(msg);
		free(id);
		v = ev->error;
		ev->error = jv_invalid();
		failed = 1;
	} else {
		struct enrich_item stack[16], *items = stack;
		const char *msg = NULL;

		if (ev->nkeys > 16 &&
		    (items = calloc(ev->nkeys, sizeof(*items))) == NULL)
			return -1;
		for (size_t i = 0; i < ev->nkeys; i++) {
			items[i] = ev->keys[i]->it;
			if (msg == NULL)
				msg = items[i].message;
		}
		rc = en->ops->summary(en->ctx, items, ev->nkeys, val, &failed);
		if (items != stack)
			free(items);
		if (rc < 0)
			return -1;
		if (failed && log_enabled(en->cfg->log, LOG_ERROR)) {
			char *id =
			        event_get_string(ev->line, ev->len, "alert.id");

			log_msg(en->cfg->log, LOG_ERROR, ev->lineno, id,
			        "%s: %s", en->cfg->key,
			        msg ? msg : "a lookup failed");
			free(id);
		}
		v = jv_true(); /* the key's text is in val */
	}
	if (!jv_is_valid(v)) {
		/* Nothing added: the line goes out as it came. */
		rc = 0;
		line = ev->line;
		len = ev->len;
	} else {
		rc = (val->len == 0 && event_dump(v, val) < 0) ||
		     (ev->key_absent
		              ? event_add_key(ev->line, ev->len, en->cfg->key,
		                              val->data, val->len, out, &err)
		              : event_set_key(ev->line, ev->len, en->cfg->key,
		                              val->data, val->len, out, &err)) <
		             0;
		line = out->data;
		len = out->len;
	}
	if (rc == 0 && !en->out_failed) {
		int w = ndjson_write(&en->out, line, len);

		if (w == 0)
			w = ndjson_write(&en->out, "\n", 1);
		if (w == NDJSON_EPIPE) {
			en->res->epipe = 1;
			rc = -1;
		} else if (w != 0)
			output_failed(en); /* not an error of this event */
		else
			en->res->nevents++;
	} else if (rc != 0)
		log_msg(en->cfg->log, LOG_ERROR, ev->lineno, NULL,
		        "out of memory");
	en->res->nfailed += failed != 0;
	/* Unlink and free. */
	if (ev->prev)
		ev->prev->next = ev->next;
	else
		en->head = ev->next;
	if (ev->next)
		ev->next->prev = ev->prev;
	else
		en->tail = ev->prev;
	en->nwindow--;
	jv_free(ev->error);
	item_unref(ev->owner);
	free(ev);
	return rc ? -1 : 0;
}

/* Writes the events that are ready: from the head in order, or all. */
static int
emit_ready(struct engine *en)
{
	struct ev *ev = en->head, *next;

	for (; ev != NULL; ev = next) {
		next = ev->next;
		if (ev->outstanding > 0) {
			if (!en->cfg->unordered)
				break;
			continue;
		}
		if (emit(en, ev) < 0)
			return -1;
	}
	return 0;
}

static void
free_entries(struct engine *en)
{
	for (size_t i = 0; i < en->nbuckets; i++) {
		struct entry *e = en->table[i], *next;

		for (; e != NULL; e = next) {
			next = e->chain;
			jv_free(e->result);
			buf_free(&e->text);
			buf_free(&e->errtext);
			free(e->message);
			free(e->waiters);
			free(e->type);
			free(e->value);
			free(e);
		}
	}
	free(en->table);
}

static void
drain_wake(int fd)
{
	char b[256];

	while (read(fd, b, sizeof(b)) > 0)
		;
}

/* Opens an unlinked spool file in $TMPDIR, else /var/tmp (on disk where
 * /tmp is memory).  Returns its descriptor, or -1 (said at -v): the run
 * reads ahead in memory only. */
static int
spool_open(const struct log *log)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (dir == NULL || *dir == '\0')
		dir = "/var/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 &&
	    (size_t)snprintf(path, sizeof(path), "%s/soarutils-spool.XXXXXX",
	                     dir) < sizeof(path)) {
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		log_msg(log, LOG_INFO, 0, NULL,
		        "no spool file in %s (%s): reading ahead in memory "
		        "only",
		        dir, strerror(errno));
	return fd;
}

int
enrich_run(const struct enrich_config *cfg, const struct enrich_ops *ops,
           void *ctx, struct http *http, struct cache *cache,
           struct enrich_result *res)
{
	/* On the heap: a reader thread still blocked in read(2) at the end
	 * is left running with it, and the process exits soon after. */
	struct engine *en = calloc(1, sizeof(*en));
	size_t window = cfg->window ? cfg->window : 4096;
	pthread_t readers[2];
	struct item *cur = NULL; /* the batch being admitted */
	int eof = 0, rc = 0, started = 0, detached = 0, halted = 0, st;
	/* A second reader when keys() allows it and a core is there for it:
	 * the second core otherwise idles once the lookups are answered. */
	int nreaders = cfg->concurrent_keys && sysconf(_SC_NPROCESSORS_ONLN) > 1
	                       ? 2
	                       : 1;

	memset(res, 0, sizeof(*res));
	if (en == NULL)
		return -1;
	*en = (struct engine){.stop_result = jv_invalid(),
	                      .cfg = cfg,
	                      .ops = ops,
	                      .ctx = ctx,
	                      .http = http,
	                      .cache = cache,
	                      .res = res,
	                      .reject_fd = -1};
	en->spool_fd = cfg->read_ahead > 0 ? spool_open(cfg->log) : -1;
	pthread_mutex_init(&en->q.mu, NULL);
	pthread_mutex_init(&en->q.rmu, NULL);
	pthread_cond_init(&en->q.room, NULL);
	ndjson_writer_init(&en->out, 1, cfg->line_buffered);
	if (pipe2(en->q.wake, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    (en->reader = ndjson_reader_new(0, cfg->max_line)) == NULL)
		goto fail;
	if (cfg->reject_path != NULL &&
	    (en->reject_fd = open(cfg->reject_path,
	                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	                          0600)) < 0) {
		log_msg(cfg->log, LOG_ERROR, 0, NULL, "--reject %s: %s",
		        cfg->reject_path, strerror(errno));
		goto fail;
	}
	for (; started < nreaders; started++)
		if (pthread_create(&readers[started], NULL, reader_main, en) !=
		    0)
			goto fail;
	for (;;) {
		/* Admit lines while the window has room.  Once the run must
		 * end (credentials refused, say), no more input is read, but
		 * every event read is still written, its lookups answered with
		 * the stop result; only when the output failed is nothing more
		 * taken. */
		if (en->fatal && !halted) {
			pthread_mutex_lock(&en->q.mu);
			en->q.halt = 1;
			pthread_mutex_unlock(&en->q.mu);
			halted = 1;
		}
		if (prefetch(en) < 0)
			goto fail;
		while (!res->epipe && en->nwindow < window) {
			int nomem = 0;

			if (cur == NULL &&
			    (en->out_failed ||
			     (cur = take(en, &eof, &nomem)) == NULL))
				break;
			if (nomem)
				goto fail;
			if (cur->next < cur->n &&
			    admit(en, cur, &cur->v[cur->next++]) < 0)
				goto fail;
			if (cur->next >= cur->n) {
				item_unref(cur);
				cur = NULL;
			}
		}
		if (emit_ready(en) < 0 && !res->epipe)
			goto fail;
		if (res->epipe)
			break;
		/* Emitting made room and batches wait: no sleep (the readers
		 * may be done, with nobody left to wake the loop). */
		if (en->nwindow < window && !en->out_failed &&
		    (cur != NULL || queue_ready(&en->q)))
			continue;
		if ((eof || en->fatal) && cur == NULL && en->head == NULL &&
		    http_pending(http) == 0 &&
		    (eof || en->out_failed || queue_drained(&en->q)))
			break;
		/* Collect what is already done without waiting; only when there
		 * is nothing to do is the output flushed and the loop put to
		 * sleep, so a busy run makes no write per answer. */
		if (http_pending(http) > 0) {
			size_t done = en->ncompleted;

			http_poll(http, 0, -1);
			/* on_done(), called inside http_poll(), counts. */
			/* cppcheck-suppress knownConditionTrueFalse */
			if (en->ncompleted != done)
				continue;
		}
		if (!en->out_failed && (st = ndjson_flush(&en->out)) != 0) {
			if (st == NDJSON_EPIPE) {
				res->epipe = 1;
				break;
			}
			output_failed(en);
		}
		if (http_pending(http) > 0)
			http_poll(http, 1000, en->q.wake[0]);
		else if (!eof) {
			struct pollfd p = {.fd = en->q.wake[0],
			                   .events = POLLIN};

			poll(&p, 1, 1000);
		}
		drain_wake(en->q.wake[0]);
	}
	if (!en->out_failed) {
		st = ndjson_flush(&en->out);
		if (st == NDJSON_EPIPE)
			res->epipe = 1;
		else if (st != 0)
			output_failed(en);
	}
	if (en->q.err != 0) {
		log_msg(cfg->log, LOG_ERROR, 0, NULL,
		        "reading standard input: %s", strerror(en->q.err));
		res->fatal = 1;
	}
	if (en->fatal)
		res->fatal = 1;
	goto out;
fail:
	res->fatal = 1;
	rc = -1;
out:
	if (started) {
		pthread_mutex_lock(&en->q.mu);
		en->q.stop = 1;
		pthread_cond_broadcast(&en->q.room);
		pthread_mutex_unlock(&en->q.mu);
		/* A reader blocked in read(2) on a live pipe is not joined:
		 * the process is about to exit. */
		struct timespec until;

		/* A reader waiting for room ends at once; one blocked in
		 * read(2) on a live pipe does not, and is left behind. */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 200 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		for (int i = 0; i < started; i++)
			if (pthread_timedjoin_np(readers[i], NULL, &until) !=
			    0) {
				pthread_detach(readers[i]);
				detached = 1;
			}
		pthread_mutex_lock(&en->q.mu);
		res->nfailed += en->q.nrejected;
		if (en->q.nspooled > 0)
			log_msg(cfg->log, LOG_INFO, 0, NULL,
			        "read ahead: %zu batches through the spool "
			        "file, %.1f MB at most",
			        en->q.nspooled, (double)en->q.spool_peak / 1e6);
		pthread_mutex_unlock(&en->q.mu);
	}
	while (en->head != NULL) {
		struct ev *ev = en->head;

		en->head = ev->next;
		jv_free(ev->error);
		item_unref(ev->owner);
		free(ev);
	}
	item_unref(cur);
	for (struct item *it = en->q.head, *n; it != NULL; it = n) {
		n = it->next_item;
		item_free(it);
	}
	free_entries(en);
	jv_free(en->stop_result);
	buf_free(&en->out.buf);
	buf_free(&en->line);
	buf_free(&en->val);
	if (detached)
		return -1;
	if (en->reject_fd >= 0)
		close(en->reject_fd);
	if (en->spool_fd >= 0)
		close(en->spool_fd);
	ndjson_reader_free(en->reader);
	if (en->q.wake[0] > 0) {
		close(en->q.wake[0]);
		close(en->q.wake[1]);
	}
	pthread_mutex_destroy(&en->q.mu);
	pthread_mutex_destroy(&en->q.rmu);
	pthread_cond_destroy(&en->q.room);
	free(en);
	return rc || res->fatal || res->epipe ? -1 : 0;
}
