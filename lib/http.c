/* http.c: libcurl multi client with retries and per-host rate limits. */
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "env.h"
#include "http.h"
#include "secret.h"

enum { XFER_QUEUED, XFER_ACTIVE };

struct host {
	char *name;
	double tokens;
	long long last_ms;
	struct host *next;
};

struct xfer {
	struct http *h;
	CURL *easy;
	struct curl_slist *hdrs;
	char *method, *url, *body;
	char *shown; /* the URL as messages show it, when not url */
	size_t body_len;
	int idempotent;
	http_retry_fn retry;
	http_done_fn done;
	void *arg;
	struct http_response resp;
	char retry_after[64];
	struct host *host;
	long long due_ms;   /* earliest start of the next attempt */
	long long start_ms; /* start of the current attempt */
	int state;
	int too_big;
	char errbuf[CURL_ERROR_SIZE];
	struct xfer *next; /* queue of transfers not in flight */
};

/* url with its query, if any, shown as "?...".  Returns a new string, or
 * NULL on ENOMEM. */
static char *
shown_url(const char *url)
{
	size_t n = strcspn(url, "?#");
	char *s = malloc(n + 5);

	if (s != NULL)
		snprintf(s, n + 5, "%.*s%s", (int)n, url,
		         url[n] == '?' ? "?..." : "");
	return s;
}

static const char *
shown(const struct xfer *x)
{
	return x->shown ? x->shown : x->url;
}

struct http {
	struct http_config cfg;
	CURLM *multi;
	struct xfer *head, *tail; /* not in flight: new or backing off */
	struct xfer *active;      /* in flight, linked through next */
	size_t nactive, npending, nfinished;
	int epfd;           /* the sockets libcurl asked to watch */
	int wake_fd;        /* the caller's wake-up descriptor in epfd */
	long long timer_ms; /* when libcurl wants its timeout run; -1 */
	struct host *hosts;
	uint64_t rng;
	char *cainfo;
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
http_config_defaults(struct http_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->jobs = 8;
	cfg->burst = 1;
	cfg->connect_timeout_ms = 10000;
	cfg->timeout_ms = 30000;
	cfg->retries = 4;
	cfg->max_wait_ms = 60000;
	cfg->backoff_base_ms = 500;
	cfg->backoff_cap_ms = 20000;
	cfg->max_body = (size_t)8 << 20;
	cfg->user_agent = "soarutils";
}

/* libcurl's socket callback: keeps epfd in step with what it watches. */
static int
on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct http *h = userp;
	struct epoll_event ev = {.data.fd = s};

	(void)easy;
	(void)sockp;
	if (what == CURL_POLL_REMOVE) {
		/* The socket may be closed already: nothing to undo then. */
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) |
	            ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
	if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, s, &ev) < 0 &&
	    (errno != ENOENT || epoll_ctl(h->epfd, EPOLL_CTL_ADD, s, &ev) < 0))
		return -1;
	return 0;
}

/* libcurl's timer callback: when to call it back with no socket. */
static int
on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *h = userp;

	(void)multi;
	h->timer_ms = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	return 0;
}

struct http *
http_new(const struct http_config *cfg, struct soar_error *err)
{
	static const char *const ca_vars[] = {
	        "SOAR_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"};
	struct http *h;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		soar_error_set(err, "network", "libcurl failed to start");
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		soar_error_set(err, "nomem", "out of memory");
		return NULL;
	}
	h->cfg = *cfg;
	if (h->cfg.jobs < 1)
		h->cfg.jobs = 1;
	if (h->cfg.burst < 1)
		h->cfg.burst = 1;
	h->rng = cfg->seed ? cfg->seed
	                   : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	for (size_t i = 0; i < 3 && h->cainfo == NULL; i++) {
		const char *v = env_get(cfg->envp, ca_vars[i]);

		if (v != NULL && *v != '\0' && (h->cainfo = strdup(v)) == NULL)
			goto nomem;
	}
	h->wake_fd = -1;
	h->timer_ms = -1;
	if ((h->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		soar_error_set(err, "nomem", "epoll_create1: %s",
		               strerror(errno));
		free(h->cainfo);
		free(h);
		return NULL;
	}
	if ((h->multi = curl_multi_init()) == NULL)
		goto nomem;
	/* libcurl names the sockets to watch and when its timers are due;
	 * only transfers with activity are looked at (socket_action). */
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	                  (long)h->cfg.jobs);
	/* Keep every connection of a full round of jobs for the next one:
	 * the default cache shrinks as finished transfers are removed. */
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS,
	                  (long)h->cfg.jobs * 2);
	return h;
nomem:
	soar_error_set(err, "nomem", "out of memory");
	http_free(h);
	return NULL;
}

static void
xfer_free(struct xfer *x)
{
	if (x == NULL)
		return;
	if (x->easy != NULL)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->hdrs);
	free(x->method);
	free(x->url);
	free(x->shown);
	free(x->body);
	buf_free(&x->resp.body);
	free(x);
}

void
http_free(struct http *h)
{
	struct host *hs, *hn;
	struct xfer *x, *xn;

	if (h == NULL)
		return;
	for (x = h->head; x != NULL; x = xn) {
		xn = x->next;
		xfer_free(x);
	}
	for (x = h->active; x != NULL; x = xn) {
		xn = x->next;
		curl_multi_remove_handle(h->multi, x->easy);
		xfer_free(x);
	}
	if (h->multi != NULL)
		curl_multi_cleanup(h->multi);
	close(h->epfd);
	for (hs = h->hosts; hs != NULL; hs = hn) {
		hn = hs->next;
		free(hs->name);
		free(hs);
	}
	free(h->cainfo);
	free(h);
	curl_global_cleanup();
}

/* Returns the bucket of the URL's host, made on first use. */
static struct host *
host_of(struct http *h, const char *url)
{
	CURLU *u = curl_url();
	char *name = NULL;
	struct host *hs = NULL;

	if (u == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &name, 0) != CURLUE_OK)
		goto out;
	for (hs = h->hosts; hs != NULL; hs = hs->next)
		if (strcmp(hs->name, name) == 0)
			goto out;
	if ((hs = calloc(1, sizeof(*hs))) == NULL ||
	    (hs->name = strdup(name)) == NULL) {
		free(hs);
		hs = NULL;
		goto out;
	}
	hs->tokens = h->cfg.burst;
	hs->last_ms = now_ms();
	hs->next = h->hosts;
	h->hosts = hs;
out:
	curl_free(name);
	curl_url_cleanup(u);
	return hs;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;

	n *= size;
	/* Returning less than n makes libcurl fail the transfer. */
	if (x->resp.body.len + n > x->h->cfg.max_body) {
		x->too_big = 1;
		return 0;
	}
	return buf_append(&x->resp.body, p, n) == 0 ? n : 0;
}

/* Copies the value of header line p if it is `name: value`. */
static void
header_value(const char *p, size_t n, const char *name, char *out, size_t outsz)
{
	size_t k = strlen(name), v;

	if (n <= k || strncasecmp(p, name, k) != 0 || p[k] != ':')
		return;
	p += k + 1;
	n -= k + 1;
	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n > 0 &&
	       (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' '))
		n--;
	v = n < outsz - 1 ? n : outsz - 1;
	memcpy(out, p, v);
	out[v] = '\0';
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;

	n *= size;
	/* A new status line (after a 100 Continue, say) starts afresh. */
	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		x->retry_after[0] = '\0';
		x->resp.content_type[0] = '\0';
		x->resp.error_type[0] = '\0';
	}
	header_value(p, n, "Retry-After", x->retry_after,
	             sizeof(x->retry_after));
	header_value(p, n, "Content-Type", x->resp.content_type,
	             sizeof(x->resp.content_type));
	header_value(p, n, "x-amzn-ErrorType", x->resp.error_type,
	             sizeof(x->resp.error_type));
	return n;
}

/* -vvv: headers both ways, with credentials redacted. */
static int
on_debug(CURL *easy, curl_infotype type, char *data, size_t n, void *arg)
{
	struct xfer *x = arg;
	const char *dir = type == CURLINFO_HEADER_OUT ? ">" : "<";
	struct buf red = BUF_INIT;

	(void)easy;
	if (type != CURLINFO_HEADER_OUT && type != CURLINFO_HEADER_IN)
		return 0;
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t k = nl ? (size_t)(nl - data) : n, c = k;

		if (c > 0 && data[c - 1] == '\r')
			c--;
		buf_clear(&red);
		if (x->shown != NULL && type == CURLINFO_HEADER_OUT &&
		    memchr(data, '?', c) != NULL &&
		    strncmp(data, x->method, strlen(x->method)) == 0) {
			/* The request line: its query is the secret. */
			const char *q = memchr(data, '?', c);
			const char *v = data + c;

			while (v > q && v[-1] != ' ')
				v--;
			log_msg(x->h->cfg.log, LOG_TRACE, 0, NULL,
			        "%s %.*s?... %.*s", dir, (int)(q - data), data,
			        (int)(data + c - v), v);
		} else if (c > 0 && secret_redact(data, c, &red) == 0)
			log_msg(x->h->cfg.log, LOG_TRACE, 0, NULL, "%s %.*s",
			        dir, (int)red.len, red.data);
		data += nl ? k + 1 : k;
		n -= nl ? k + 1 : k;
	}
	buf_free(&red);
	return 0;
}

static int
setup_easy(struct http *h, struct xfer *x)
{
	CURL *e = curl_easy_init();
	CURLcode rc = CURLE_OK;

	if (e == NULL)
		return -1;
	x->easy = e;
#define SET(opt, val)                                                          \
	do {                                                                   \
		if (rc == CURLE_OK)                                            \
			rc = curl_easy_setopt(e, opt, val);                    \
	} while (0)
	SET(CURLOPT_URL, x->url);
	SET(CURLOPT_PRIVATE, x);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (h->cainfo != NULL)
		SET(CURLOPT_CAINFO, h->cainfo);
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	SET(CURLOPT_ACCEPT_ENCODING, "");
	SET(CURLOPT_CONNECTTIMEOUT_MS, h->cfg.connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, h->cfg.timeout_ms);
	SET(CURLOPT_USERAGENT, h->cfg.user_agent);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_HTTPHEADER, x->hdrs);
	if (strcmp(x->method, "GET") != 0) {
		if (strcmp(x->method, "HEAD") == 0)
			SET(CURLOPT_NOBODY, 1L);
		else
			SET(CURLOPT_CUSTOMREQUEST, x->method);
	}
	if (x->body != NULL) {
		SET(CURLOPT_POSTFIELDS, x->body);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
	}
	if (h->cfg.log != NULL && log_enabled(h->cfg.log, LOG_TRACE)) {
		SET(CURLOPT_DEBUGFUNCTION, on_debug);
		SET(CURLOPT_DEBUGDATA, x);
		SET(CURLOPT_VERBOSE, 1L);
	}
#undef SET
	return rc == CURLE_OK ? 0 : -1;
}

static void finish(struct http *h, struct xfer *x,
                   const struct soar_error *err);

static void
enqueue(struct http *h, struct xfer *x)
{
	x->state = XFER_QUEUED;
	x->next = NULL;
	if (h->tail != NULL)
		h->tail->next = x;
	else
		h->head = x;
	h->tail = x;
}

int
http_submit(struct http *h, const struct http_request *req, http_retry_fn retry,
            http_done_fn done, void *arg)
{
	struct xfer *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return -1;
	x->h = h;
	x->method = strdup(req->method);
	x->url = strdup(req->url);
	x->shown = req->secret_query ? shown_url(req->url) : NULL;
	x->idempotent = req->idempotent;
	x->retry = retry;
	x->done = done;
	x->arg = arg;
	if (x->method == NULL || x->url == NULL ||
	    (req->secret_query && x->shown == NULL))
		goto fail;
	if (req->body != NULL) {
		/* One spare byte: libcurl may read a NUL-terminated body. */
		if ((x->body = malloc(req->body_len + 1)) == NULL)
			goto fail;
		memcpy(x->body, req->body, req->body_len);
		x->body[req->body_len] = '\0';
		x->body_len = req->body_len;
	}
	for (size_t i = 0; i < req->nheaders; i++) {
		struct buf line = BUF_INIT;
		struct curl_slist *l;

		if (buf_printf(&line, "%s: %s", req->headers[i].name,
		               req->headers[i].value) < 0)
			goto fail;
		l = curl_slist_append(x->hdrs, line.data);
		/* The header may hold a credential: wipe our copy. */
		explicit_bzero(line.data, line.len);
		buf_free(&line);
		if (l == NULL)
			goto fail;
		x->hdrs = l;
	}
	/* A POST of a large body must not stall on 100-continue. */
	struct curl_slist *l = curl_slist_append(x->hdrs, "Expect:");

	if (l == NULL)
		goto fail;
	x->hdrs = l;
	if ((x->host = host_of(h, x->url)) == NULL || setup_easy(h, x) < 0)
		goto fail;
	x->due_ms = now_ms();
	enqueue(h, x);
	h->npending++;
	return 0;
fail:
	xfer_free(x);
	return -1;
}

void
http_cancel_queued(struct http *h)
{
	struct xfer *x, *next;
	struct soar_error err;

	x = h->head;
	h->head = h->tail = NULL;
	for (; x != NULL; x = next) {
		next = x->next;
		soar_error_set(&err, "cancelled", "%s %s: not sent", x->method,
		               shown(x));
		err.attempts = x->resp.attempts;
		finish(h, x, &err);
	}
}

size_t
http_pending(const struct http *h)
{
	return h->npending;
}

struct fetch {
	struct http_reply *out;
	int done;
};

static void
fetch_done(void *arg, const struct http_response *resp,
           const struct soar_error *err)
{
	struct fetch *f = arg;
	struct buf body = f->out->resp.body;

	f->done = 1;
	f->out->resp = *resp;
	f->out->resp.body = body;
	if (err != NULL)
		f->out->err = *err;
	if (resp->body.len > 0 &&
	    buf_append(&f->out->resp.body, resp->body.data, resp->body.len) <
	            0 &&
	    err == NULL)
		soar_error_set(&f->out->err, "nomem", "out of memory");
}

int
http_fetch(struct http *h, const struct http_request *req, http_retry_fn retry,
           struct http_reply *out)
{
	struct fetch f = {.out = out};

	memset(out, 0, sizeof(*out));
	if (http_submit(h, req, retry, fetch_done, &f) < 0) {
		soar_error_set(&out->err, "nomem", "out of memory");
		return -1;
	}
	/* fetch_done sets f.done from inside http_poll. */
	while (!f.done && http_pending(h) > 0)
		http_poll(h, 1000, -1);
	if (!f.done)
		soar_error_set(&out->err, "network", "%s %.*s: no answer",
		               req->method,
		               req->secret_query ? (int)strcspn(req->url, "?#")
		                                 : (int)strlen(req->url),
		               req->url);
	return out->err.code[0] == '\0' ? 0 : -1;
}

void
http_reply_free(struct http_reply *r)
{
	buf_wipe(&r->resp.body);
}

long
http_retry_after_ms(const char *value, long now)
{
	char *end;
	long v;
	time_t t;

	while (*value == ' ')
		value++;
	if (*value >= '0' && *value <= '9') {
		errno = 0;
		v = strtol(value, &end, 10);
		while (*end == ' ')
			end++;
		if (errno != 0 || *end != '\0' || v > 86400L * 366)
			return -1;
		return v * 1000;
	}
	if ((t = curl_getdate(value, NULL)) < 0)
		return -1;
	if (t <= now)
		return 0;
	/* The delta form's cap, which also keeps the product in range:
	 * curl_getdate takes any year up to INT_MAX. */
	if (t - now > 86400L * 366)
		return -1;
	return ((long)t - now) * 1000;
}

/* Takes a token from the host's bucket.  Returns 0 when the request may
 * start now, else the milliseconds until a token will be there. */
static long long
take_token(struct http *h, struct host *hs, long long now)
{
	double rate = h->cfg.rate;

	if (rate <= 0)
		return 0;
	hs->tokens += (double)(now - hs->last_ms) * rate / 1000.0;
	if (hs->tokens > h->cfg.burst)
		hs->tokens = h->cfg.burst;
	hs->last_ms = now;
	if (hs->tokens >= 1.0) {
		hs->tokens -= 1.0;
		return 0;
	}
	return (long long)((1.0 - hs->tokens) * 1000.0 / rate) + 1;
}

/* Moves due transfers into flight while slots and tokens allow.  Returns
 * the milliseconds until the next queued transfer could start, or -1. */
static long long
start_due(struct http *h, long long now)
{
	struct xfer **pp = &h->head, *x, *prev = NULL;
	long long next = -1;

	while ((x = *pp) != NULL) {
		long long wait = x->due_ms - now;

		if (wait <= 0 && h->nactive < (size_t)h->cfg.jobs)
			wait = take_token(h, x->host, now);
		else if (wait <= 0)
			return next; /* no free slot: a completion frees one */
		if (wait > 0) {
			if (next < 0 || wait < next)
				next = wait;
			prev = x;
			pp = &x->next;
			continue;
		}
		*pp = x->next;
		if (h->tail == x)
			h->tail = prev;
		x->state = XFER_ACTIVE;
		x->start_ms = now;
		x->next = h->active;
		h->active = x;
		x->resp.attempts++;
		buf_clear(&x->resp.body);
		x->too_big = 0;
		x->errbuf[0] = '\0';
		if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
			/* Try again on the next round rather than lose it. */
			h->active = x->next;
			x->resp.attempts--;
			enqueue(h, x);
			return 10;
		}
		h->nactive++;
	}
	return next;
}

static uint64_t
next_rand(struct http *h)
{
	/* xorshift64*: jitter only, not security. */
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	return h->rng * 2685821657736338717ULL;
}

static void
finish(struct http *h, struct xfer *x, const struct soar_error *err)
{
	if (h->cfg.log != NULL)
		log_msg(h->cfg.log, LOG_DEBUG, 0, NULL,
		        "%s %s: %s%ld after %d attempt%s", x->method, shown(x),
		        err ? "failed, HTTP " : "HTTP ", x->resp.status,
		        x->resp.attempts, x->resp.attempts == 1 ? "" : "s");
	x->done(x->arg, &x->resp, err);
	h->npending--;
	h->nfinished++;
	xfer_free(x);
}

/* Classifies a finished attempt.  Returns 1 to retry, 0 when final, with
 * err filled for a failure (code left empty for success). */
static int
classify(struct xfer *x, CURLcode rc, struct soar_error *err)
{
	long st = x->resp.status;
	int again, verdict;

	soar_error_clear(err);
	if (x->too_big) {
		soar_error_set(err, "body",
		               "%s %s: response body over %zu bytes", x->method,
		               shown(x), x->h->cfg.max_body);
		return 0;
	}
	switch (rc) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		/* The request never left: safe to send again. */
		soar_error_set(err, "network", "%s %s: %s", x->method, shown(x),
		               x->errbuf[0] ? x->errbuf
		                            : curl_easy_strerror(rc));
		return 1;
	case CURLE_OPERATION_TIMEDOUT:
		soar_error_set(err, "timeout", "%s %s: %s", x->method, shown(x),
		               x->errbuf[0] ? x->errbuf
		                            : curl_easy_strerror(rc));
		return x->idempotent;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		soar_error_set(err, "tls", "%s %s: %s", x->method, shown(x),
		               x->errbuf[0] ? x->errbuf
		                            : curl_easy_strerror(rc));
		return 0;
	default:
		soar_error_set(err, "network", "%s %s: %s", x->method, shown(x),
		               x->errbuf[0] ? x->errbuf
		                            : curl_easy_strerror(rc));
		return x->idempotent &&
		       (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
		        rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE ||
		        rc == CURLE_HTTP2_STREAM || rc == CURLE_HTTP2);
	}
	if (st >= 200 && st < 300)
		again = 0;
	else if (st == 429)
		again = 1;
	else if (st == 500 || st == 502 || st == 503 || st == 504)
		again = x->idempotent;
	else
		again = 0;
	if (x->retry != NULL && (verdict = x->retry(x->arg, &x->resp)) >= 0)
		again = verdict;
	if (st >= 200 && st < 300 && !again)
		return 0;
	soar_error_set(err, "http", "%s %s: HTTP %ld", x->method, shown(x), st);
	return again;
}

/* Handles one finished attempt: success, a retry later, or failure. */
static void
completed(struct http *h, struct xfer *x, CURLcode rc, long long now)
{
	struct soar_error err;
	struct xfer **pp;
	long long delay;
	int again;

	curl_multi_remove_handle(h->multi, x->easy);
	for (pp = &h->active; *pp != NULL; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	h->nactive--;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->resp.status);
	again = classify(x, rc, &err);
	if (!again || x->resp.attempts > h->cfg.retries) {
		if (err.code[0] != '\0') {
			err.status = x->resp.status;
			err.attempts = x->resp.attempts;
			if (x->resp.attempts > 1) {
				size_t n = strlen(err.message);

				snprintf(err.message + n,
				         sizeof(err.message) - n,
				         " after %d attempts",
				         x->resp.attempts);
			}
		}
		finish(h, x, err.code[0] ? &err : NULL);
		return;
	}
	delay = x->retry_after[0]
	                ? http_retry_after_ms(x->retry_after, (long)time(NULL))
	                : -1;
	if (delay >= 0 && x->resp.waited_ms + delay > h->cfg.max_wait_ms) {
		size_t n = strlen(err.message);

		snprintf(err.message + n, sizeof(err.message) - n,
		         "; Retry-After %s is beyond the wait budget of %ld ms",
		         x->retry_after, h->cfg.max_wait_ms);
		err.status = x->resp.status;
		err.attempts = x->resp.attempts;
		finish(h, x, &err);
		return;
	}
	if (delay < 0) {
		/* Full jitter: anywhere up to an exponentially growing cap. */
		long long cap = h->cfg.backoff_base_ms;

		for (int i = 1;
		     i < x->resp.attempts && cap < h->cfg.backoff_cap_ms; i++)
			cap *= 2;
		if (cap > h->cfg.backoff_cap_ms)
			cap = h->cfg.backoff_cap_ms;
		delay = cap > 0 ? (long long)(next_rand(h) %
		                              (uint64_t)(cap + 1))
		                : 0;
		if (x->resp.waited_ms + delay > h->cfg.max_wait_ms)
			delay = h->cfg.max_wait_ms - x->resp.waited_ms;
	}
	log_msg(h->cfg.log, LOG_INFO, 0, NULL, "%s; retrying in %lld ms",
	        err.message, delay);
	x->resp.waited_ms += (long)delay;
	x->due_ms = now + delay;
	enqueue(h, x);
}

/* Runs libcurl's timeout handling when due: new handles start there. */
static void
run_timer(struct http *h, long long now)
{
	int running;

	if (h->timer_ms >= 0 && now >= h->timer_ms) {
		h->timer_ms = -1;
		curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0,
		                         &running);
	}
}

/* Hands finished transfers to completed(). */
static void
collect(struct http *h, long long now)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		struct xfer *x = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &x);
		completed(h, x, m->data.result, now);
	}
}

/* Makes the caller's wake-up descriptor (or none) the one in epfd. */
static int
watch_wake(struct http *h, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	if (fd == h->wake_fd)
		return 0;
	if (h->wake_fd >= 0)
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, h->wake_fd, NULL);
	h->wake_fd = -1;
	if (fd >= 0 && epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	h->wake_fd = fd;
	return 0;
}

size_t
http_poll(struct http *h, long timeout_ms, int wake_fd)
{
	struct epoll_event evs[64];
	long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	size_t finished = h->nfinished;
	int woken = 0;

	/* A wake-up descriptor that cannot be watched is polled instead:
	 * the wait is then cut to short slices. */
	int wake_ok = watch_wake(h, wake_fd) == 0;

	for (int first = 1;; first = 0) {
		long long now = now_ms(), next, wait;
		int n, running;

		start_due(h, now);
		run_timer(h, now);
		collect(h, now);
		if (h->npending == 0 || h->nfinished != finished || woken)
			break;
		now = now_ms();
		if (!first && now >= deadline)
			break;
		next = start_due(h, now);
		wait = deadline > now ? deadline - now : 0;
		if (next >= 0 && next < wait)
			wait = next;
		if (h->timer_ms >= 0 && h->timer_ms - now < wait)
			wait = h->timer_ms > now ? h->timer_ms - now : 0;
		if (!wake_ok && wake_fd >= 0 && wait > 10)
			wait = 10;
		n = epoll_wait(h->epfd, evs, 64, (int)wait);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, mask = 0;

			if (fd == h->wake_fd) {
				woken = 1;
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP))
				mask |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				mask |= CURL_CSELECT_OUT;
			if (evs[i].events & EPOLLERR)
				mask |= CURL_CSELECT_ERR;
			curl_multi_socket_action(h->multi, fd, mask, &running);
		}
		if (!wake_ok && wake_fd >= 0) {
			struct pollfd p = {.fd = wake_fd, .events = POLLIN};

			woken = poll(&p, 1, 0) > 0;
		}
	}
	return h->npending;
}
