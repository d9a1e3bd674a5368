/*
 * httpd.h: a small HTTP/1.1 server core for receivers (sh-findings --listen).
 *
 * One struct httpd owns one listening socket and its connections, and runs
 * on the caller's thread: httpd_poll() waits with poll(2), accepts, reads,
 * parses, calls the handler for each complete request and writes the
 * answers, then returns so the caller can check a stop flag.  No threads,
 * no signals of its own; sends use MSG_NOSIGNAL.
 *
 * What reaches the handler has passed every check: a request line
 * "METHOD /target HTTP/1.x" (1.0 or 1.1), a header block of at most
 * max_header bytes (CRLF, or bare LF, line ends), a method listed in
 * `methods`, credentials when `user` is set, and a body of exactly
 * Content-Length bytes, at most max_body.  The core answers by itself,
 * without calling the handler, and then closes the connection:
 *   400  malformed request line or header, duplicate or invalid
 *        Content-Length, Content-Length with Transfer-Encoding, HTTP/1.1
 *        without Host;
 *   401  missing, malformed or wrong Basic credentials (WWW-Authenticate);
 *   405  a method not in `methods` (Allow);
 *   408  the request did not arrive within request_timeout_ms;
 *   411  a POST or PUT without Content-Length, or any Transfer-Encoding
 *        (chunked bodies are not supported, and say so);
 *   413  Content-Length above max_body (answered before the body is read);
 *   417  an Expect other than 100-continue;
 *   431  a header block above max_header, or more than HTTPD_MAX_HEADERS;
 *   503  a connection beyond max_conns when none can make room (answered
 *        once, then closed); otherwise the oldest connection still
 *        waiting for a request is closed to make room;
 *   505  an HTTP version other than 1.0 and 1.1.
 * Syntax and framing are checked first, then credentials, then the method
 * and the length, so a client without credentials learns nothing more.
 * Targets must be in origin form ("/path?query"): this is no proxy.
 * A client that sends "Expect: 100-continue" gets "100 Continue" once the
 * headers passed.  HTTP/1.1 connections stay open unless the client sends
 * "Connection: close"; HTTP/1.0 ones close unless it sends "keep-alive".
 * Pipelined requests are answered one at a time, in order.  Every answer
 * carries Content-Length (except 204 and 304) and "Connection: close" when
 * the connection ends after it.
 *
 * Time limits: a request (first byte to last body byte) must arrive within
 * request_timeout_ms, else 408 and close; a connection waiting for a
 * request (new, or kept alive) is closed after idle_timeout_ms; an answer the
 * client does not read within request_timeout_ms is dropped.  A slow
 * client therefore holds one connection slot for a bounded time and never
 * delays the others.  The handler itself runs on the caller's thread and
 * must be quick (acknowledge, then queue the work).
 *
 * Credentials are compared in constant time and never logged; the
 * Authorization header is wiped from memory after use and hidden from the
 * handler when the core checks it.  With log level debug, each request
 * gives one line: peer, method, path (never the query), status, bytes.
 */
#ifndef SOAR_HTTPD_H
#define SOAR_HTTPD_H

#include <stddef.h>

#include "error.h"
#include "log.h"

#define HTTPD_MAX_HEADERS 100 /* header lines in one request */

struct httpd;
struct httpd_request;
struct httpd_response;

/* Methods a server lets through to its handler (a bit set). */
enum httpd_method {
	HTTPD_GET = 1 << 0,
	HTTPD_HEAD = 1 << 1,
	HTTPD_POST = 1 << 2,
	HTTPD_PUT = 1 << 3,
	HTTPD_DELETE = 1 << 4,
};

/* Called once per accepted request, from httpd_poll().  req and resp are
 * borrowed for the call.  The handler answers with httpd_respond(); a
 * handler that does not gets a 500 for its client. */
typedef void (*httpd_handler_fn)(void *arg, const struct httpd_request *req,
                                 struct httpd_response *resp);

struct httpd_config {
	const char *listen; /* "127.0.0.1:8080", "0.0.0.0:0", "[::1]:8080":
	                       numeric address, port 0 picks a free one */
	unsigned methods;   /* enum httpd_method bits; 0 means HTTPD_POST */
	const char *health_path; /* GET/HEAD on it: "200 ok" from the core,
	                            without credentials; NULL: none */
	const char *user;        /* Basic auth: both user and password, or */
	const char *password;    /* neither (NULL); copied, never kept plain */
	const char *realm;       /* WWW-Authenticate realm; NULL: "soarutils" */
	size_t max_header;       /* request line and headers, bytes */
	size_t max_body;         /* largest request body */
	long request_timeout_ms; /* one request, first byte to last */
	long idle_timeout_ms;    /* keep-alive wait between requests */
	int max_conns;           /* open connections, >= 1 */
	const struct log *log;   /* may be NULL; debug: one line per request */
	httpd_handler_fn handler;
	void *arg; /* passed to handler */
};

/* Fills cfg with the defaults: listen NULL (must be set), POST only, no
 * health path, no auth, 16 KiB of headers, 1 MiB of body, 10 s per
 * request, 5 s idle, 64 connections. */
void httpd_config_defaults(struct httpd_config *cfg);

/* Opens the listening socket (SO_REUSEADDR, close-on-exec, non-blocking).
 * Strings in cfg are copied; log and arg are borrowed for the server's
 * life.  Returns the server, or NULL with err set: code "usage" for a bad
 * address or setting (the message names it), "listen" when the socket
 * could not be bound (address in use, no such interface), "memory". */
struct httpd *httpd_new(const struct httpd_config *cfg, struct soar_error *err);

/* Closes the listener and every connection at once (answers still being
 * written are dropped) and wipes the stored credentials.  NULL is
 * accepted. */
void httpd_free(struct httpd *h);

/* Returns the bound port (the chosen one when the config said 0). */
int httpd_port(const struct httpd *h);

/* Returns the bound address as "127.0.0.1:41234" or "[::1]:41234";
 * borrowed from h. */
const char *httpd_address(const struct httpd *h);

/* Returns the number of open client connections. */
size_t httpd_connections(const struct httpd *h);

/* Waits at most timeout_ms (negative: until something happens; 0: only
 * what is ready) for network activity, handles all of it and the expired
 * deadlines, and returns.  It also returns early when wake_fd (-1: none)
 * becomes readable, which it does not read: a signal handler writes to a
 * pipe, the caller drains it and checks its flag.  An interrupted poll
 * (EINTR) returns 0.  Returns the number of complete requests answered
 * by the handler or the health check, or -1 with err set (code "poll")
 * when poll(2) itself failed. */
int httpd_poll(struct httpd *h, long timeout_ms, int wake_fd,
               struct soar_error *err);

/* The request a handler sees.  All strings are NUL-terminated and borrowed
 * for the handler call.  method, target and path hold only visible ASCII;
 * path is the target up to '?', not percent-decoded; query is what follows
 * '?' ("" when there is none). */
struct httpd_header {
	const char *name;  /* as the client spelled it */
	const char *value; /* leading and trailing blanks removed */
};

struct httpd_request {
	const char *method;
	const char *target;
	const char *path;
	const char *query;
	int version;                        /* 10 or 11 */
	const struct httpd_header *headers; /* in arrival order; without
	                                       Authorization when the core
	                                       checked it */
	size_t nheaders;
	const char *body; /* body_len bytes, followed by a NUL byte */
	size_t body_len;
	const char *peer; /* "127.0.0.1:53211", "[::1]:53211" */
};

/* Returns the value of the first header called name (any case), or NULL.
 * Content-Length, Host and Authorization occur at most once (else 400). */
const char *httpd_header(const struct httpd_request *req, const char *name);

/* Sets the answer: status 200-599, content_type (NULL: none), and len
 * bytes of body, which are copied.  A second call replaces the first.
 * Returns 0, or -1 for a status out of range or a content type that is
 * empty or holds a control character (EINVAL), or ENOMEM. */
int httpd_respond(struct httpd_response *resp, int status,
                  const char *content_type, const void *body, size_t len);

/* Adds a header line to the answer (WWW-Authenticate, Retry-After, ...).
 * The name must be a token and the value free of control characters
 * (no CR or LF: no header injection); Content-Length, Content-Type,
 * Connection and Transfer-Encoding belong to the core.  Returns 0, or -1
 * (EINVAL, ENOMEM). */
int httpd_add_header(struct httpd_response *resp, const char *name,
                     const char *value);

/* Asks the core to close the connection after this answer. */
void httpd_close_after(struct httpd_response *resp);

#endif
