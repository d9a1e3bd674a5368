/*
 * http.h: the HTTP client every network tool shares.
 *
 * One struct http per process holds one libcurl multi handle, so all
 * requests share its connection pool (keep-alive, HTTP/2 multiplexing where
 * the server offers it).  At most `jobs` requests are in flight; each host
 * has a token bucket (`rate` requests per second, `burst` at once).  A
 * request is retried on connect errors, timeouts, 429 and 500/502/503/504
 * with exponential backoff and full jitter, honouring Retry-After (seconds
 * or an HTTP date), within `retries` and a total wait of `max_wait_ms`.  A
 * request that is not idempotent is retried only when it surely did not
 * reach the server (connection refused or unresolved, or 429).
 *
 * TLS verification is always on: SOAR_CA_BUNDLE (or CURL_CA_BUNDLE,
 * SSL_CERT_FILE) names a private CA, never a way to turn checks off.  Proxy
 * variables are honoured by libcurl.  Redirects are not followed, so a
 * credential header never travels to another host.  Bodies are capped.
 *
 * Completion callbacks run inside http_poll(), on the caller's thread.
 * libcurl reports which sockets to watch (epoll) and when its timers are
 * due, so each wake-up touches only the transfers with activity.
 */
#ifndef SOAR_HTTP_H
#define SOAR_HTTP_H

#include <stddef.h>

#include "buf.h"
#include "error.h"
#include "log.h"

struct http;

struct http_config {
	int jobs;     /* requests in flight, >= 1 */
	double rate;  /* requests per second per host; 0: no limit */
	double burst; /* bucket size, >= 1 */
	long connect_timeout_ms;
	long timeout_ms;      /* one attempt, from start to last byte */
	int retries;          /* attempts = retries + 1 */
	long max_wait_ms;     /* total backoff one request may spend */
	long backoff_base_ms; /* first backoff ceiling (doubles each time) */
	long backoff_cap_ms;  /* largest backoff ceiling */
	size_t max_body;      /* largest response body accepted */
	const char *user_agent;
	const struct log *log;   /* -vv: one line per attempt; -vvv: headers */
	const char *const *envp; /* for SOAR_CA_BUNDLE; NULL: the process's */
	unsigned long seed;      /* jitter seed; 0 picks one */
};

/* Fills cfg with the defaults: 8 jobs, no rate limit, 10 s connect,
 * 30 s per attempt, 4 retries, 60 s of waiting, 500 ms to 20 s backoff,
 * 8 MiB bodies. */
void http_config_defaults(struct http_config *cfg);

struct http_header {
	const char *name;
	const char *value;
};

struct http_request {
	const char *method; /* "GET", "POST", ... */
	const char *url;
	const struct http_header *headers; /* nheaders entries */
	size_t nheaders;
	const char *body; /* NULL for none */
	size_t body_len;
	int idempotent; /* safe to repeat after it may have arrived */
	/* The URL's query is a secret (a confirmation token): messages and
	 * traces show it as "?...". */
	int secret_query;
};

struct http_response {
	long status;     /* last HTTP status, 0 when none arrived */
	struct buf body; /* last response body */
	char content_type[128];
	char error_type[128]; /* x-amzn-ErrorType: AWS's error code, when sent
	                       */
	int attempts;
	long waited_ms; /* total backoff spent */
};

/* Decides whether a final-looking answer should be retried anyway (AWS
 * throttling in a 400 body, say) or a retryable one accepted.  Returns 1 to
 * retry, 0 not to, -1 for the default rule. */
typedef int (*http_retry_fn)(void *arg, const struct http_response *resp);

/* Called once per request when it is finished: err is NULL on a 2xx answer
 * and set otherwise (code "network", "timeout", "tls", "http", "body");
 * resp holds the last attempt's status and body either way.  Both are
 * borrowed for the call. */
typedef void (*http_done_fn)(void *arg, const struct http_response *resp,
                             const struct soar_error *err);

/* Returns a client, or NULL with err set (libcurl could not start). */
struct http *http_new(const struct http_config *cfg, struct soar_error *err);
void http_free(struct http *h);

/* Queues a request; strings in req are copied.  done(arg, ...) runs from a
 * later http_poll().  retry may be NULL.  Returns 0 or -1 (ENOMEM). */
int http_submit(struct http *h, const struct http_request *req,
                http_retry_fn retry, http_done_fn done, void *arg);

/* Runs transfers and timers for at most timeout_ms (0: do what is ready
 * and return; also returns early when a request finished or `wake_fd`
 * becomes readable).  wake_fd may be -1.  Returns the number of requests
 * not yet finished. */
size_t http_poll(struct http *h, long timeout_ms, int wake_fd);

/* Finishes every request not yet in flight (new or backing off) at once,
 * calling its done callback with error code "cancelled"; requests in flight
 * complete as usual.  Used when an answer means that nothing more should
 * be sent (quota gone, credentials refused). */
void http_cancel_queued(struct http *h);

/* Returns the number of requests queued, waiting or in flight. */
size_t http_pending(const struct http *h);

/* One request sent and waited for, by a caller with nothing else to do
 * meanwhile (credentials, a certificate, a confirmation, a page). */
struct http_reply {
	struct http_response resp; /* the last answer; body owned here */
	struct soar_error err;     /* code empty on a 2xx answer */
};

/* Submits req on h and runs h until it is answered (other requests of h
 * go on meanwhile).  Returns 0 on a 2xx answer, or -1 with out->err set
 * (lib/http's error, "nomem", or "network" when h ran dry without an
 * answer).  out->resp holds the last answer either way; release it with
 * http_reply_free(), which wipes the body (it may hold credentials). */
int http_fetch(struct http *h, const struct http_request *req,
               http_retry_fn retry, struct http_reply *out);
void http_reply_free(struct http_reply *r);

/* Parses a Retry-After value (delta seconds or an HTTP date) against now
 * (epoch seconds).  Returns the wait in milliseconds, or -1 when the value
 * is not valid (it is then ignored). */
long http_retry_after_ms(const char *value, long now);

#endif
