/*
 * par.h: input batches processed on worker threads, written in input order.
 *
 * The calling thread reads batches of whole lines and writes results; up to
 * nthreads workers turn each batch into output text.  A small input never
 * starts a thread: batches are processed inline until one comes in full,
 * which is when a second core pays for itself.  Before the reader would wait
 * for input, everything already processed is written out and flushed, so a
 * slow stream (tail -f) is not held back.  Memory stays bounded: a fixed ring
 * of batch slots, each about one batch (or one maximal line) in size.
 */
#ifndef SOAR_PAR_H
#define SOAR_PAR_H

#include <stddef.h>

#include "buf.h"
#include "log.h"
#include "ndjson.h"

#define PAR_MAX_ROUTES 32

/* What processing one batch produced, written out in input order. */
struct par_out {
	struct buf out;                    /* events for stdout */
	struct buf routes[PAR_MAX_ROUTES]; /* events for each route */
	struct buf reject;                 /* rejected lines, verbatim */
	struct buf log;                    /* formatted log lines */
	size_t nfailed;                    /* events failed or rejected */
};

/* Processes the lines batch[0..len) (each ends with '\n'; the first is line
 * number first) into out, which arrives empty.  Returns 0, or -1 to stop
 * the run (a fatal error, already logged into out->log). */
typedef int (*par_fn)(void *ctx, const char *batch, size_t len, size_t first,
                      struct par_out *out);

struct par_config {
	int nthreads; /* most workers to run; 1 processes everything inline */
	size_t batch; /* target batch size in bytes */
	size_t nroutes;
	par_fn fn;
	void *ctx0; /* context for the calling thread or the first worker */
	/* Makes the context of worker i >= 1 (called on that worker's thread);
	 * NULL when it cannot, and that worker does not run. */
	void *(*ctx_new)(void *ctx0, int i);
	void (*ctx_free)(void *ctx);
};

struct par_sinks {
	struct ndjson_writer *out;
	struct ndjson_writer *routes; /* nroutes writers */
	const char *const *route_names;
	int reject_fd; /* -1: rejected lines are only logged */
	const struct log *log;
};

struct par_result {
	size_t nfailed; /* events failed or rejected */
	int epipe;      /* stdout's reader went away */
	int fatal;      /* a write or read failed, or fn stopped the run */
};

/* Reads r to the end through cfg->fn into sinks.  Over-long lines are
 * logged, copied to the reject file and counted.  Fills *res; returns 0 when
 * the whole input was handled, -1 when the run stopped early. */
int par_run(struct ndjson_reader *r, const struct par_config *cfg,
            const struct par_sinks *sinks, struct par_result *res);

#endif
