/*
 * enrich.h: the stream engine every enricher shares.
 *
 * An enricher reads events, finds indicators in each (IPs, hashes, host
 * ids), looks each one up at a vendor, and writes every event with its own
 * key added.  This engine does everything but the vendor part:
 *
 *   - events leave in input order (or as soon as ready with unordered),
 *     held in a bounded window so memory stays constant;
 *   - lookups start as soon as their lines are read, up to read_ahead
 *     bytes ahead of the window (kept in an unlinked spool file), so an
 *     event at the head waiting on an answer does not hold back the
 *     requests of the events behind it;
 *   - a lookup is made once per run: every event waiting on the same
 *     indicator is served by one request (in-run dedup), and answers come
 *     from and go to the persistent cache (lib/cache) first;
 *   - requests run concurrently through lib/http;
 *   - a vendor answer can stop all further calls (quota gone) or end the
 *     run (credentials refused) after writing what was read.
 *
 * The tool describes its vendor with struct enrich_ops.  Threads: keys()
 * runs on the reader threads (lines are checked and their lookups found
 * there, so the second core does half the work; with concurrent_keys two
 * readers prepare alternate batches); every other callback runs on the
 * calling thread.  keys() must therefore touch nothing the other
 * callbacks change, and with concurrent_keys nothing at all but the
 * line and its own keys.
 */
#ifndef SOAR_ENRICH_H
#define SOAR_ENRICH_H

#include <jv.h>

#include "cache.h"
#include "http.h"
#include "log.h"
#include "ndjson.h"

/* What the tool makes of one lookup's answer. */
enum enrich_verdict {
	ENRICH_OK,       /* result holds the answer; cached */
	ENRICH_NOTFOUND, /* result holds the answer; cached with the short TTL
	                  */
	ENRICH_ERROR,    /* this lookup failed; result holds the error object */
	ENRICH_STOP,     /* failed, and no further lookup must be sent */
	ENRICH_FATAL,    /* failed, and the run must end (exit 3) */
};

/* One finished lookup as the summary sees it.  Rendered once when the
 * answer arrives, so an indicator shared by many events costs one
 * rendering, not one per event. */
struct enrich_item {
	const char *text; /* the indicator's entry, JSON text */
	size_t len;
	const char *error; /* its {"code", "message", ...} text, or NULL */
	size_t errlen;
	const char *message; /* the error message, or NULL */
	double num[4];       /* numbers the tool's summary needs */
	int found;
};

/* The lookups of one event, as keys() adds them. */
struct enrich_keys;

/* Adds the lookup (type, value) to the event's, unless it is there
 * already.  Returns 0, or -1 on ENOMEM. */
int enrich_key(struct enrich_keys *ks, const char *type, const char *value);

struct enrich_ops {
	const char *provider; /* cache namespace, e.g. "vt" */
	/* Adds the lookups this event needs with enrich_key() (none: the
	 * event passes unchanged) and returns 0.  For an event the tool
	 * cannot handle, returns -1 with *error set to an {"error": ...}
	 * object or a message string; -1 with *error left invalid means out
	 * of memory.  Called on the reader thread, in input order; line is
	 * not NUL-terminated. */
	int (*keys)(void *ctx, const char *line, size_t n,
	            struct enrich_keys *ks, jv *error);
	/* Fills req (strings owned by ctx until the next call) for a lookup.
	 * Returns 0, or -1 to fail this lookup with err. */
	int (*request)(void *ctx, const char *type, const char *value,
	               struct http_request *req, struct soar_error *err);
	/* Judges a finished request (herr NULL on a 2xx) and sets *result:
	 * the answer to cache, or an error object. */
	enum enrich_verdict (*answer)(void *ctx, const char *type,
	                              const char *value,
	                              const struct http_response *resp,
	                              const struct soar_error *herr,
	                              jv *result);
	/* Renders one finished lookup, once per indicator per run: appends
	 * the JSON text of the indicator's entry to text and fills it->num
	 * and it->found (result borrowed).  Returns 0, or -1 on ENOMEM. */
	int (*item)(void *ctx, const char *type, const char *value, jv result,
	            struct buf *text, struct enrich_item *it);
	/* Appends the JSON text of the tool's key for an event with these
	 * lookups, and sets *failed when the event counts as failed.
	 * Returns 0, or -1 on ENOMEM. */
	int (*summary)(void *ctx, const struct enrich_item *items, size_t n,
	               struct buf *out, int *failed);
	/* The error object every lookup gets once the run stopped calling. */
	jv (*stopped)(void *ctx);
};

struct enrich_config {
	const char *key; /* the tool's output key ("vt") */
	int unordered;
	int concurrent_keys; /* keys() may run on two threads at once */
	size_t window;       /* events held at most (default 4096) */
	size_t read_ahead;   /* bytes of input kept in the spool file ahead of
	                        the window, lookups started (0: none) */
	long ttl;            /* seconds an answer is cached */
	long negative_ttl;   /* seconds a "not found" is cached */
	int line_buffered;
	const char *reject_path;
	size_t max_line;
	const struct log *log;
};

struct enrich_result {
	size_t nevents;   /* events written */
	size_t nfailed;   /* events failed or rejected */
	size_t nrequests; /* HTTP requests sent (after dedup and cache) */
	size_t nhits;     /* lookups answered by the persistent cache */
	int fatal;        /* the run ended early: exit 3 */
	int epipe;        /* our reader went away */
};

/* Runs the whole stream from fd 0 to fd 1.  cache may be disabled (never
 * NULL).  Returns 0, or -1 when the run ended early (see res). */
int enrich_run(const struct enrich_config *cfg, const struct enrich_ops *ops,
               void *ctx, struct http *http, struct cache *cache,
               struct enrich_result *res);

#endif
