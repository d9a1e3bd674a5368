/*
 * test_httpd.c: lib/httpd against raw loopback sockets.
 *
 * Server and clients share one thread: a client writes its bytes, then
 * httpd_poll() and non-blocking reads take turns until the answer is
 * complete, so every test is deterministic apart from the timeouts, which
 * are short (200 ms) and checked with generous margins.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/httpd.h"
#include "lib/log.h"
#include "tests/unit/unit.h"

#define TIMEOUT 200 /* ms: request and idle deadline in these tests */

/* What the handler saw, for the assertions. */
struct seen {
	int calls;
	char method[16];
	char path[256];
	char query[256];
	char peer[64];
	char sns_type[64];
	int version;
	int saw_auth;
	struct buf body;
	int api_checks;   /* httpd_add_header/httpd_respond misuse refused */
	int unterminated; /* bodies not followed by a NUL byte */
};

static long long
ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
handler(void *arg, const struct httpd_request *req, struct httpd_response *resp)
{
	struct seen *s = arg;
	const char *v;
	char out[300];

	s->calls++;
	snprintf(s->method, sizeof(s->method), "%s", req->method);
	snprintf(s->path, sizeof(s->path), "%s", req->path);
	snprintf(s->query, sizeof(s->query), "%s", req->query);
	snprintf(s->peer, sizeof(s->peer), "%s", req->peer);
	v = httpd_header(req, "x-amz-sns-message-type");
	snprintf(s->sns_type, sizeof(s->sns_type), "%s", v ? v : "");
	s->version = req->version;
	s->saw_auth = httpd_header(req, "Authorization") != NULL;
	buf_clear(&s->body);
	buf_append(&s->body, req->body, req->body_len);
	if (req->body[req->body_len] != '\0')
		s->unterminated++;
	if (strcmp(req->path, "/silent") == 0)
		return;
	if (strcmp(req->path, "/misuse") == 0) {
		s->api_checks =
		        (httpd_add_header(resp, "X-A", "v\r\nInjected: 1") <
		         0) +
		        (httpd_add_header(resp, "Bad Name", "v") < 0) +
		        (httpd_add_header(resp, "content-length", "1") < 0) +
		        (httpd_respond(resp, 99, NULL, NULL, 0) < 0) +
		        (httpd_respond(resp, 600, NULL, NULL, 0) < 0) +
		        (httpd_respond(resp, 200, "a\nb", NULL, 0) < 0);
	}
	if (strcmp(req->path, "/close") == 0)
		httpd_close_after(resp);
	if (strcmp(req->path, "/large") == 0) {
		size_t n = 4 << 20;
		char *big = malloc(n);

		if (big != NULL) {
			memset(big, 'z', n);
			httpd_respond(resp, 200, "text/plain", big, n);
			free(big);
			return;
		}
	}
	httpd_add_header(resp, "X-Seen", "yes");
	snprintf(out, sizeof(out), "path=%s", req->path);
	httpd_respond(resp, 200, "text/plain", out, strlen(out));
}

static void
config(struct httpd_config *c, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	httpd_config_defaults(c);
	c->listen = "127.0.0.1:0";
	c->request_timeout_ms = TIMEOUT;
	c->idle_timeout_ms = TIMEOUT;
	c->handler = handler;
	c->arg = s;
}

static struct httpd *
start(const struct httpd_config *c)
{
	struct soar_error err;
	struct httpd *h = httpd_new(c, &err);

	if (h == NULL)
		fprintf(stdout, "# httpd_new: %s: %s\n", err.code, err.message);
	return h;
}

/* Runs the server for about t milliseconds. */
static void
pump(struct httpd *h, long t)
{
	long long end = ms() + t;

	/* At least one round, however late this process gets the CPU. */
	do
		httpd_poll(h, end - ms() > 0 ? (long)(end - ms()) : 0, -1,
		           NULL);
	while (ms() < end);
}

/* A client: a connected non-blocking socket and what it received but did
 * not consume yet. */
struct client {
	int fd;
	struct buf in;
};

struct reply {
	int status;  /* 0: none arrived */
	int no_body; /* an answer to HEAD: Content-Length without a body */
	int got_continue;
	struct buf head;
	struct buf body;
};

/* Connects a client; sndbuf > 0 fixes its send buffer size first. */
static void
cli_open_sndbuf(struct client *cl, struct httpd *h, int sndbuf)
{
	struct sockaddr_in sa;

	memset(cl, 0, sizeof(*cl));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)httpd_port(h));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cl->fd >= 0 && sndbuf > 0)
		setsockopt(cl->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
		           sizeof(sndbuf));
	/* Loopback connects complete in the backlog, before any accept. */
	if (cl->fd < 0 ||
	    connect(cl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stdout, "# connect: %s\n", strerror(errno));
		return;
	}
	fcntl(cl->fd, F_SETFL, fcntl(cl->fd, F_GETFL) | O_NONBLOCK);
}

static void
cli_open(struct client *cl, struct httpd *h)
{
	cli_open_sndbuf(cl, h, 0);
}

static void
cli_close(struct client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	cl->fd = -1;
	buf_free(&cl->in);
}

/* Sends n bytes, letting the server run while the socket is full.
 * Returns 0, or -1 when the server closed or reset the connection. */
static int
cli_send(struct httpd *h, struct client *cl, const char *p, size_t n)
{
	ssize_t k;
	long long end = ms() + 3000;

	while (n > 0 && ms() < end) {
		k = send(cl->fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			httpd_poll(h, 5, -1, NULL);
			continue;
		}
		if (k < 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return n == 0 ? 0 : -1;
}

static int
cli_sends(struct httpd *h, struct client *cl, const char *s)
{
	return cli_send(h, cl, s, strlen(s));
}

/* Reads once.  Returns bytes read, 0 at end of stream, -1 for nothing yet,
 * -2 on reset. */
static ssize_t
cli_read(struct client *cl)
{
	char tmp[8192];
	ssize_t k = recv(cl->fd, tmp, sizeof(tmp), 0);

	if (k > 0)
		buf_append(&cl->in, tmp, (size_t)k);
	if (k < 0)
		return errno == EAGAIN ? -1 : -2;
	return k;
}

/* Finds header name in a head made of CRLF lines; returns its value (in a
 * static buffer) or NULL. */
static const char *
reply_header(const struct reply *r, const char *name)
{
	static char val[512];
	const char *p = r->head.data;
	size_t n = strlen(name), len;
	const char *e;

	while (p != NULL && (p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ')
				p++;
			e = strstr(p, "\r\n");
			len = e ? (size_t)(e - p) : strlen(p);
			if (len >= sizeof(val))
				len = sizeof(val) - 1;
			memcpy(val, p, len);
			val[len] = '\0';
			return val;
		}
	}
	return NULL;
}

/* Takes one complete answer off cl->in into r.  Returns 1 when one was
 * there. */
static int
take_reply(struct client *cl, struct reply *r)
{
	char *end;
	size_t head, cl_len = 0;
	const char *v;

	for (;;) {
		if (cl->in.data == NULL ||
		    (end = strstr(cl->in.data, "\r\n\r\n")) == NULL)
			return 0;
		head = (size_t)(end - cl->in.data) + 4;
		if (strncmp(cl->in.data, "HTTP/1.1 100 ", 13) != 0)
			break;
		r->got_continue = 1;
		memmove(cl->in.data, cl->in.data + head, cl->in.len - head + 1);
		cl->in.len -= head;
	}
	buf_clear(&r->head);
	buf_append(&r->head, cl->in.data, head);
	v = reply_header(r, "Content-Length");
	if (v != NULL && !r->no_body)
		cl_len = strtoul(v, NULL, 10);
	if (cl->in.len < head + cl_len)
		return 0;
	r->status = (int)strtol(cl->in.data + 9, NULL, 10);
	buf_clear(&r->body);
	buf_append(&r->body, cl->in.data + head, cl_len);
	memmove(cl->in.data, cl->in.data + head + cl_len,
	        cl->in.len - head - cl_len + 1);
	cl->in.len -= head + cl_len;
	return 1;
}

/* Waits up to t ms for one answer.  Returns its status, or 0. */
static int
cli_reply(struct httpd *h, struct client *cl, long t, struct reply *r)
{
	long long end = ms() + t;
	ssize_t k;

	r->status = 0;
	r->got_continue = 0;
	do {
		if (take_reply(cl, r))
			return r->status;
		httpd_poll(h, 5, -1, NULL);
		while ((k = cli_read(cl)) > 0)
			;
		if (k == 0 || k == -2)
			return take_reply(cl, r) ? r->status : 0;
	} while (ms() < end);
	return take_reply(cl, r) ? r->status : 0;
}

/* Waits up to t ms for the server to close.  Returns 1 (end of stream or
 * reset), 0 when still open. */
static int
cli_eof(struct httpd *h, struct client *cl, long t)
{
	long long end = ms() + t;
	ssize_t k;

	do {
		httpd_poll(h, 5, -1, NULL);
		while ((k = cli_read(cl)) > 0)
			;
		if (k == 0 || k == -2)
			return 1;
	} while (ms() < end);
	return 0;
}

static void
reply_free(struct reply *r)
{
	buf_free(&r->head);
	buf_free(&r->body);
}

/* One request on a fresh connection: its status, and in *closed (may be
 * NULL) whether the server closed right after the answer, well before the
 * idle limit would. */
static int
once(struct httpd *h, const char *req, struct reply *r, int *closed)
{
	struct client cl;
	int st;

	cli_open(&cl, h);
	cli_sends(h, &cl, req);
	r->no_body = strncmp(req, "HEAD ", 5) == 0;
	st = cli_reply(h, &cl, 2000, r);
	if (closed != NULL)
		*closed = cli_eof(h, &cl, TIMEOUT / 2);
	cli_close(&cl);
	return st;
}

#define POST_HELLO                                                             \
	"POST /sns/in?topic=a&b=2 HTTP/1.1\r\n"                                \
	"Host: localhost\r\n"                                                  \
	"x-amz-sns-message-type: Notification\r\n"                             \
	"Content-Type: text/plain; charset=UTF-8\r\n"                          \
	"Content-Length: 11\r\n\r\n"                                           \
	"hello world"

static void
test_listen(void)
{
	static const char *const bad[] = {
	        "127.0.0.1",    "localhost:80", "127.0.0.1:65536",
	        "::1:80",       "[::1]80",      "127.0.0.1:",
	        "127.0.0.1:8x", ":80",          "[127.0.0.1]:80",
	        "1.2.3:80",     "127.0.0.1:-1", "[::1]:123456",
	};
	struct httpd_config c;
	struct seen s;
	struct soar_error err;
	struct httpd *h, *h2;
	char want[64], listen_at[64];
	size_t i;

	config(&c, &s);
	h = start(&c);
	CHECK(h != NULL);
	if (h == NULL)
		return;
	CHECK(httpd_port(h) > 0);
	snprintf(want, sizeof(want), "127.0.0.1:%d", httpd_port(h));
	CHECK_STR(httpd_address(h), want);
	CHECK_INT(httpd_connections(h), 0);
	/* The same port again: bound already. */
	snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%d", httpd_port(h));
	c.listen = listen_at;
	h2 = httpd_new(&c, &err);
	CHECK(h2 == NULL);
	CHECK_STR(err.code, "listen");
	CHECK(strstr(err.message, listen_at) != NULL);
	httpd_free(h2);
	httpd_free(h);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c.listen = bad[i];
		memset(&err, 0, sizeof(err));
		h = httpd_new(&c, &err);
		CHECK(h == NULL);
		if (h != NULL || strcmp(err.code, "usage") != 0)
			fprintf(stdout, "# %s: %s\n", bad[i], err.code);
		CHECK_STR(err.code, "usage");
		httpd_free(h);
	}

	/* IPv6 loopback, when the machine has it. */
	c.listen = "[::1]:0";
	h = httpd_new(&c, &err);
	if (h != NULL) {
		CHECK(strncmp(httpd_address(h), "[::1]:", 6) == 0);
		CHECK(httpd_port(h) > 0);
	} else {
		CHECK_STR(err.code, "listen");
	}
	httpd_free(h);
	httpd_free(NULL);
}

static void
test_config_checks(void)
{
	struct httpd_config c;
	struct seen s;
	struct soar_error err;
	struct httpd *h;

	config(&c, &s);
	c.user = "sns";
	h = httpd_new(&c, &err);
	CHECK(h == NULL);
	CHECK_STR(err.code, "usage");
	c.password = "pw";
	c.user = "a:b";
	CHECK(httpd_new(&c, &err) == NULL);
	CHECK_STR(err.code, "usage");
	/* The message names the rule, never the secret. */
	CHECK(strstr(err.message, "pw") == NULL);
	c.user = "sns";
	c.realm = "a\"b";
	CHECK(httpd_new(&c, &err) == NULL);
	c.realm = NULL;
	c.max_conns = 0;
	CHECK(httpd_new(&c, &err) == NULL);
	c.max_conns = 4;
	c.health_path = "health";
	CHECK(httpd_new(&c, &err) == NULL);
	c.health_path = NULL;
	c.handler = NULL;
	CHECK(httpd_new(&c, &err) == NULL);
	c.handler = handler;
	h = httpd_new(&c, &err);
	CHECK(h != NULL);
	httpd_free(h);
}

static void
test_post(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct httpd *h;
	int closed = -1;

	config(&c, &s);
	c.idle_timeout_ms = 5000;
	if ((h = start(&c)) == NULL)
		return;
	CHECK_INT(once(h, POST_HELLO, &r, &closed), 200);
	CHECK_INT(s.calls, 1);
	CHECK_STR(s.method, "POST");
	CHECK_STR(s.path, "/sns/in");
	CHECK_STR(s.query, "topic=a&b=2");
	CHECK_STR(s.sns_type, "Notification");
	CHECK_INT(s.version, 11);
	CHECK(strncmp(s.peer, "127.0.0.1:", 10) == 0);
	CHECK_STR(s.body.data, "hello world");
	CHECK_STR(r.body.data, "path=/sns/in");
	CHECK_STR(reply_header(&r, "Content-Type"), "text/plain");
	CHECK_STR(reply_header(&r, "Content-Length"), "12");
	CHECK_STR(reply_header(&r, "X-Seen"), "yes");
	CHECK(reply_header(&r, "Connection") == NULL);
	CHECK(strncmp(r.head.data, "HTTP/1.1 200 OK\r\n", 17) == 0);
	/* Kept alive: still open after the answer.  Then the client
	 * closed, and the server follows. */
	CHECK_INT(closed, 0);
	pump(h, 20);
	CHECK_INT(httpd_connections(h), 0);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

static void
test_keepalive_and_pipelining(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct client cl;
	struct httpd *h;

	config(&c, &s);
	if ((h = start(&c)) == NULL)
		return;
	cli_open(&cl, h);
	cli_sends(h, &cl, POST_HELLO);
	CHECK_INT(cli_reply(h, &cl, 2000, &r), 200);
	cli_sends(h, &cl,
	          "POST /second HTTP/1.1\r\nHost: x\r\n"
	          "Content-Length: 2\r\n\r\nhi");
	CHECK_INT(cli_reply(h, &cl, 2000, &r), 200);
	CHECK_STR(r.body.data, "path=/second");
	CHECK_STR(s.body.data, "hi");
	CHECK_INT(s.calls, 2);
	CHECK_INT(httpd_connections(h), 1);

	/* Two requests in one segment: two answers, in order. */
	cli_sends(h, &cl,
	          "POST /p1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"
	          "POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nb");
	CHECK_INT(cli_reply(h, &cl, 2000, &r), 200);
	CHECK_STR(r.body.data, "path=/p1");
	CHECK_INT(cli_reply(h, &cl, 2000, &r), 200);
	CHECK_STR(r.body.data, "path=/p2");
	CHECK_STR(s.body.data, "b");
	CHECK_INT(s.calls, 4);
	/* "a" was followed by the next request, lent out as a NUL. */
	CHECK_INT(s.unterminated, 0);

	/* Connection: close is honoured after the answer. */
	cli_sends(h, &cl,
	          "POST /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	          "Content-Length: 0\r\n\r\n");
	CHECK_INT(cli_reply(h, &cl, 2000, &r), 200);
	CHECK_STR(reply_header(&r, "Connection"), "close");
	CHECK_INT(cli_eof(h, &cl, 1000), 1);
	cli_close(&cl);
	pump(h, 20);
	CHECK_INT(httpd_connections(h), 0);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

static void
test_http10(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct client cl;
	struct httpd *h;
	int closed = 0;

	config(&c, &s);
	if ((h = start(&c)) == NULL)
		return;
	/* 1.0 closes by default; no Host needed. */
	CHECK_INT(once(h, "POST /old HTTP/1.0\r\nContent-Length: 1\r\n\r\nx",
	               &r, &closed),
	          200);
	CHECK_STR(reply_header(&r, "Connection"), "close");
	CHECK_INT(closed, 1);
	CHECK_INT(s.version, 10);

	/* ... unless it asks for keep-alive. */
	cli_open(&cl, h);
	cli_sends(h, &cl,
	          "POST /old HTTP/1.0\r\nConnection: Keep-Alive\r\n"
	          "Content-Length: 1\r\n\r\nx");
	CHECK_INT(cli_reply(h, &cl, 2000, &r), 200);
	CHECK_STR(reply_header(&r, "Connection"), "keep-alive");
	cli_sends(h, &cl, "POST /again HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
	CHECK_INT(cli_reply(h, &cl, 2000, &r), 200);
	CHECK_STR(r.body.data, "path=/again");
	CHECK_INT(cli_eof(h, &cl, 1000), 1);
	cli_close(&cl);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

/* A client that promises more body than it sends gets 408 at the
 * deadline, and another client is served meanwhile. */
static void
test_slow_client(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0}, r2 = {0};
	struct client slow, hdr, fast;
	struct httpd *h;
	long long t0, t;
	long limit = 2 * TIMEOUT;

	config(&c, &s);
	c.request_timeout_ms = limit;
	if ((h = start(&c)) == NULL)
		return;
	t0 = ms();
	cli_open(&slow, h);
	cli_sends(h, &slow,
	          "POST /slow HTTP/1.1\r\nHost: x\r\n"
	          "Content-Length: 100\r\n\r\n0123456789");
	cli_open(&hdr, h);
	cli_sends(h, &hdr, "POST /slowhead HTTP/1.1\r\nHost: x\r\n");
	pump(h, 50);
	cli_open(&fast, h);
	cli_sends(h, &fast, POST_HELLO);
	CHECK_INT(cli_reply(h, &fast, 2000, &r2), 200);
	CHECK(ms() - t0 < limit);
	CHECK_INT(s.calls, 1);
	/* The fast one was served while the slow ones still waited. */
	CHECK_INT(cli_read(&slow), -1);
	CHECK_INT(cli_read(&hdr), -1);

	CHECK_INT(cli_reply(h, &slow, 2000, &r), 408);
	t = ms() - t0;
	CHECK(t >= limit - 20);
	CHECK(t < limit + 600);
	CHECK_STR(reply_header(&r, "Connection"), "close");
	CHECK_INT(cli_eof(h, &slow, 1000), 1);
	CHECK_INT(cli_reply(h, &hdr, 1000, &r), 408);
	CHECK_INT(cli_eof(h, &hdr, 1000), 1);
	CHECK_INT(s.calls, 1);
	cli_close(&slow);
	cli_close(&hdr);
	cli_close(&fast);
	pump(h, 20);
	CHECK_INT(httpd_connections(h), 0);
	reply_free(&r);
	reply_free(&r2);
	buf_free(&s.body);
	httpd_free(h);
}

/* A connection that sends nothing is closed quietly at the idle limit,
 * first or after a kept-alive answer. */
static void
test_idle(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct client a, b;
	struct httpd *h;
	long long t0;

	config(&c, &s);
	if ((h = start(&c)) == NULL)
		return;
	t0 = ms();
	cli_open(&a, h);
	cli_open(&b, h);
	cli_sends(h, &b, POST_HELLO);
	CHECK_INT(cli_reply(h, &b, 2000, &r), 200);
	CHECK_INT(httpd_connections(h), 2);
	CHECK_INT(cli_eof(h, &a, 2000), 1);
	CHECK(ms() - t0 >= TIMEOUT - 20);
	CHECK_INT(a.in.len, 0);
	CHECK_INT(cli_eof(h, &b, 2000), 1);
	CHECK_INT(b.in.len, 0);
	CHECK_INT(httpd_connections(h), 0);
	cli_close(&a);
	cli_close(&b);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

static void
test_body_limit(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct client cl;
	struct httpd *h;
	struct buf req = BUF_INIT;
	size_t head;

	config(&c, &s);
	c.max_body = 1000;
	if ((h = start(&c)) == NULL)
		return;
	/* Exactly the limit passes. */
	buf_printf(&req, "POST /max HTTP/1.1\r\nHost: x\r\n"
	                 "Content-Length: 1000\r\n\r\n");
	head = req.len;
	while (req.len < head + 1000)
		buf_putc(&req, 'a');
	CHECK_INT(once(h, req.data, &r, NULL), 200);
	CHECK_INT(s.body.len, 1000);

	/* One more is refused from the headers alone... */
	cli_open(&cl, h);
	cli_sends(h, &cl,
	          "POST /big HTTP/1.1\r\nHost: x\r\n"
	          "Content-Length: 1001\r\n\r\n");
	CHECK_INT(cli_reply(h, &cl, 2000, &r), 413);
	CHECK_STR(reply_header(&r, "Connection"), "close");
	CHECK_INT(cli_eof(h, &cl, 1000), 1);
	cli_close(&cl);

	/* ... and a client that sends a large body in one go can finish
	 * sending and still reads the answer: the server drains before it
	 * closes.  A fixed send buffer stops the kernel from absorbing the
	 * whole body, so closing at once would reset the sender; 256 KiB
	 * keeps several segments in flight, so delayed ACKs do not slow
	 * the transfer beyond the drain time. */
	buf_clear(&req);
	buf_printf(&req, "POST /huge HTTP/1.1\r\nHost: x\r\n"
	                 "Content-Length: 1048576\r\n\r\n");
	while (req.len < 1048576)
		buf_putc(&req, 'b');
	cli_open_sndbuf(&cl, h, 256 * 1024);
	CHECK_INT(cli_send(h, &cl, req.data, req.len), 0);
	CHECK_INT(cli_reply(h, &cl, 2000, &r), 413);
	CHECK_INT(cli_eof(h, &cl, 1000), 1);
	cli_close(&cl);
	CHECK_INT(s.calls, 1);
	CHECK_STR(s.path, "/max");
	buf_free(&req);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

static void
test_framing_errors(void)
{
	static const struct {
		const char *req;
		int status;
	} cases[] = {
	        /* No length on a POST. */
	        {"POST / HTTP/1.1\r\nHost: x\r\n\r\n", 411},
	        /* Chunked is refused, alone or with a length. */
	        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
	         "\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	         411},
	        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
	         "\r\nContent-Length: 3\r\n\r\nabc",
	         400},
	        /* Duplicate, conflicting and malformed lengths. */
	        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	         "Content-Length: 3\r\n\r\nabc",
	         400},
	        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	         "content-length: 4\r\n\r\nabcd",
	         400},
	        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, "
	         "3\r\n\r\nabc",
	         400},
	        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
	         400},
	        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
	         400},
	        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\nabc",
	         400},
	        {"POST / HTTP/1.1\r\nHost: x\r\n"
	         "Content-Length: 99999999999999999999999\r\n\r\n",
	         400},
	        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400},
	        /* An expectation the server cannot meet. */
	        {"POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n"
	         "Content-Length: 1\r\n\r\na",
	         417},
	};
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct httpd *h;
	size_t i;
	int st, closed;

	config(&c, &s);
	if ((h = start(&c)) == NULL)
		return;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		closed = 0;
		st = once(h, cases[i].req, &r, &closed);
		if (st != cases[i].status || !closed)
			fprintf(stdout, "# case %zu: %d closed %d\n", i, st,
			        closed);
		CHECK_INT(st, cases[i].status);
		CHECK_INT(closed, 1);
	}
	CHECK_INT(s.calls, 0);
	/* Blanks around a valid length are allowed. */
	CHECK_INT(once(h,
	               "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  3 \r\n"
	               "\r\nabc",
	               &r, NULL),
	          200);
	CHECK_STR(s.body.data, "abc");
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

static void
test_header_limits(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct httpd *h;
	struct buf req = BUF_INIT;
	int closed = 0, i;

	config(&c, &s);
	c.max_header = 4096;
	if ((h = start(&c)) == NULL)
		return;
	buf_puts(&req, "POST / HTTP/1.1\r\nHost: x\r\nX-Big: ");
	while (req.len < 5000)
		buf_putc(&req, 'x');
	buf_puts(&req, "\r\nContent-Length: 0\r\n\r\n");
	CHECK_INT(once(h, req.data, &r, &closed), 431);
	CHECK_INT(closed, 1);

	/* A head just under the limit passes. */
	buf_clear(&req);
	buf_puts(&req, "POST / HTTP/1.1\r\nHost: x\r\nX-Big: ");
	while (req.len < 4096 - 25)
		buf_putc(&req, 'x');
	buf_puts(&req, "\r\nContent-Length: 0\r\n\r\n");
	CHECK(req.len <= 4096);
	CHECK_INT(once(h, req.data, &r, NULL), 200);

	/* Too many header lines. */
	buf_clear(&req);
	buf_puts(&req, "POST / HTTP/1.1\r\nHost: x\r\n");
	for (i = 0; i < HTTPD_MAX_HEADERS; i++)
		buf_printf(&req, "X-%d: 1\r\n", i);
	buf_puts(&req, "Content-Length: 0\r\n\r\n");
	CHECK(req.len < 4096);
	CHECK_INT(once(h, req.data, &r, NULL), 431);

	/* A request line that never ends. */
	buf_clear(&req);
	buf_puts(&req, "GET /");
	while (req.len < 8000)
		buf_putc(&req, 'a');
	CHECK_INT(once(h, req.data, &r, NULL), 431);
	CHECK_INT(s.calls, 1);
	buf_free(&req);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

static void
test_bad_requests(void)
{
	static const struct {
		const char *req;
		int status;
	} cases[] = {
	        {"GET\r\n\r\n", 400},
	        {"GET /\r\n\r\n", 400},
	        {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	        {"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
	        {"GET x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	        {"GET http://a/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	        {"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	        {"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	        {"GET / http/1.1\r\nHost: x\r\n\r\n", 400},
	        {"GET / HTTP/1.1x\r\nHost: x\r\n\r\n", 400},
	        {"GET / HTTP/11\r\nHost: x\r\n\r\n", 400},
	        /* A TLS ClientHello start on the plain port. */
	        {"\x16\x03\x01\x02\x01\xfc\x03\x03\r\n\r\n", 400},
	        /* HTTP/1.1 needs exactly one Host. */
	        {"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400},
	        {"POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\n"
	         "Content-Length: 0\r\n\r\n",
	         400},
	        /* Header syntax. */
	        {"POST / HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n", 400},
	        {"POST / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
	        {"POST / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400},
	        {"POST / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400},
	        {"POST / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400},
	        {"POST / HTTP/1.1\r\nHost: x\r\nX: a\x01z\r\n\r\n", 400},
	        {"POST / HTTP/1.1\r\nHost: x\r\nX\x7f: a\r\n\r\n", 400},
	        /* Versions other than 1.0 and 1.1. */
	        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
	        {"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505},
	        {"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505},
	};
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct httpd *h;
	size_t i;
	int st, closed;

	config(&c, &s);
	if ((h = start(&c)) == NULL)
		return;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		closed = 0;
		st = once(h, cases[i].req, &r, &closed);
		if (st != cases[i].status || !closed)
			fprintf(stdout, "# case %zu: %d closed %d\n", i, st,
			        closed);
		CHECK_INT(st, cases[i].status);
		CHECK_INT(closed, 1);
	}
	/* A NUL inside the head (strlen would stop at it). */
	{
		static const char nul[] = "POST / HTTP/1.1\r\nHost: x\0y\r\n"
		                          "Content-Length: 0\r\n\r\n";
		struct client cl;

		cli_open(&cl, h);
		cli_send(h, &cl, nul, sizeof(nul) - 1);
		CHECK_INT(cli_reply(h, &cl, 2000, &r), 400);
		cli_close(&cl);
	}
	CHECK_INT(s.calls, 0);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

static void
test_bare_lf(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct httpd *h;

	config(&c, &s);
	if ((h = start(&c)) == NULL)
		return;
	CHECK_INT(once(h,
	               "\r\n\nPOST /lf HTTP/1.1\nHost: x\n"
	               "x-amz-sns-message-type:SubscriptionConfirmation\n"
	               "Content-Length: 3\n\nabc",
	               &r, NULL),
	          200);
	CHECK_STR(s.path, "/lf");
	CHECK_STR(s.sns_type, "SubscriptionConfirmation");
	CHECK_STR(s.body.data, "abc");
	CHECK_STR(s.query, "");
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

static void
test_methods(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct client cl;
	struct httpd *h;
	int closed = 0;

	config(&c, &s);
	if ((h = start(&c)) == NULL)
		return;
	CHECK_INT(once(h,
	               "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	               &r, &closed),
	          405);
	CHECK_STR(reply_header(&r, "Allow"), "POST");
	CHECK_INT(closed, 1);
	CHECK_INT(once(h, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r, NULL), 405);
	CHECK_INT(once(h, "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", &r, NULL),
	          405);
	CHECK_INT(once(h, "post / HTTP/1.1\r\nHost: x\r\n\r\n", &r, NULL), 405);
	CHECK_INT(s.calls, 0);
	httpd_free(h);

	/* HEAD, once allowed, gets the length of the body it does not get. */
	config(&c, &s);
	c.methods = HTTPD_POST | HTTPD_HEAD;
	if ((h = start(&c)) == NULL)
		return;
	CHECK_INT(once(h, "DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n", &r, NULL),
	          405);
	CHECK_STR(reply_header(&r, "Allow"), "HEAD, POST");
	/* No body follows: the next answer on the connection starts clean. */
	cli_open(&cl, h);
	cli_sends(h, &cl, "HEAD /hd HTTP/1.1\r\nHost: x\r\n\r\n");
	r.no_body = 1;
	CHECK_INT(cli_reply(h, &cl, 2000, &r), 200);
	CHECK_STR(reply_header(&r, "Content-Length"), "8");
	CHECK_INT(s.calls, 1);
	CHECK_STR(s.method, "HEAD");
	r.no_body = 0;
	cli_sends(h, &cl,
	          "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	CHECK_INT(cli_reply(h, &cl, 2000, &r), 200);
	CHECK_STR(r.body.data, "path=/p");
	CHECK_INT(cl.in.len, 0);
	cli_close(&cl);
	/* A chunked body on a method that needs no length is refused too,
	 * not taken as empty with its chunks read as the next request. */
	CHECK_INT(once(h,
	               "HEAD /te HTTP/1.1\r\nHost: x\r\n"
	               "Transfer-Encoding: chunked\r\n\r\n"
	               "1c\r\nHEAD /smuggled HTTP/1.1\r\n\r\n\r\n0\r\n\r\n",
	               &r, NULL),
	          411);
	CHECK_INT(s.calls, 2);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

#define AUTH_REQ(path, line)                                                   \
	"POST " path " HTTP/1.1\r\nHost: x\r\n" line                           \
	"Content-Length: 2\r\n\r\nok"

static void
test_basic_auth(void)
{
	/* "c25zOnMzY3I6ZXQ=" is "sns:s3cr:et". */
	static const char *const refused[] = {
	        AUTH_REQ("/", ""),
	        AUTH_REQ("/", "Authorization: Basic c25zOndyb25n\r\n"),
	        AUTH_REQ("/", "Authorization: Basic c256OnMzY3I6ZXQ=\r\n"),
	        /* Same bytes, but non-zero padding bits. */
	        AUTH_REQ("/", "Authorization: Basic c25zOnMzY3I6ZXR=\r\n"),
	        /* Padding missing, a blank inside, a bad letter, no colon. */
	        AUTH_REQ("/", "Authorization: Basic c25zOnMzY3I6ZXQ\r\n"),
	        AUTH_REQ("/", "Authorization: Basic c25zOnMz Y3I6ZXQ=\r\n"),
	        AUTH_REQ("/", "Authorization: Basic c25zOnMzY3I6ZX!=\r\n"),
	        AUTH_REQ("/", "Authorization: Basic c25z\r\n"),
	        AUTH_REQ("/", "Authorization: Basic =25zOnMzY3I6ZXQ=\r\n"),
	        AUTH_REQ("/", "Authorization: Basic\r\n"),
	        AUTH_REQ("/", "Authorization: Bearer c25zOnMzY3I6ZXQ=\r\n"),
	        AUTH_REQ("/", "Authorization: Basicc25zOnMzY3I6ZXQ=\r\n"),
	        /* Wrong method: credentials are checked first. */
	        "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	};
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct httpd *h;
	size_t i;
	int st, closed;

	config(&c, &s);
	c.user = "sns";
	c.password = "s3cr:et";
	c.realm = "soarutils-test";
	if ((h = start(&c)) == NULL)
		return;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		closed = 0;
		st = once(h, refused[i], &r, &closed);
		if (st != 401)
			fprintf(stdout, "# case %zu: %d\n", i, st);
		CHECK_INT(st, 401);
		CHECK_STR(reply_header(&r, "WWW-Authenticate"),
		          "Basic realm=\"soarutils-test\"");
		CHECK_INT(closed, 1);
	}
	CHECK_INT(s.calls, 0);
	/* Two Authorization headers are ambiguous. */
	CHECK_INT(once(h,
	               AUTH_REQ("/", "Authorization: Basic c25zOnMzY3I6ZXQ=\r\n"
	                             "Authorization: Basic c25zOnMzY3I6ZXQ="
	                             "\r\n"),
	               &r, NULL),
	          400);

	CHECK_INT(once(h,
	               AUTH_REQ("/in",
	                        "Authorization: Basic c25zOnMzY3I6ZXQ=\r\n"),
	               &r, NULL),
	          200);
	CHECK_INT(s.calls, 1);
	CHECK_INT(s.saw_auth, 0);
	CHECK_STR(s.body.data, "ok");
	/* The scheme is case-insensitive; a right answer still needs the
	 * allowed method. */
	CHECK_INT(once(h,
	               AUTH_REQ("/in2",
	                        "authorization: basic c25zOnMzY3I6ZXQ=\r\n"),
	               &r, NULL),
	          200);
	CHECK_INT(once(h,
	               "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
	               "Authorization: Basic c25zOnMzY3I6ZXQ=\r\n\r\n",
	               &r, NULL),
	          405);
	CHECK_INT(s.calls, 2);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

/* The debug log has one line per request and never the credentials or
 * the query string. */
static void
test_log(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct httpd *h;
	struct log lg;
	char text[4096];
	FILE *f = tmpfile();
	size_t n;

	CHECK(f != NULL);
	if (f == NULL)
		return;
	log_init(&lg, "test");
	lg.level = LOG_DEBUG;
	lg.fd = fileno(f);
	config(&c, &s);
	c.user = "sns";
	c.password = "s3cr:et";
	c.log = &lg;
	if ((h = start(&c)) == NULL)
		return;
	CHECK_INT(once(h,
	               AUTH_REQ("/in?token=hunter2",
	                        "Authorization: Basic c25zOnMzY3I6ZXQ=\r\n"),
	               &r, NULL),
	          200);
	CHECK_INT(once(h,
	               AUTH_REQ("/in", "Authorization: Basic c25zOndyb25n\r\n"),
	               &r, NULL),
	          401);
	httpd_free(h);
	rewind(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	CHECK(strstr(text, "test: debug: 127.0.0.1:") != NULL);
	CHECK(strstr(text, "POST /in: 200, 2 bytes in, 8 out") != NULL);
	CHECK(strstr(text, "POST /in: 401 Unauthorized") != NULL);
	CHECK(strstr(text, "c25z") == NULL);
	CHECK(strstr(text, "s3cr") == NULL);
	CHECK(strstr(text, "hunter2") == NULL);
	reply_free(&r);
	buf_free(&s.body);
}

static void
test_expect_continue(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct client cl;
	struct httpd *h;

	config(&c, &s);
	c.max_body = 100;
	if ((h = start(&c)) == NULL)
		return;
	cli_open(&cl, h);
	cli_sends(h, &cl,
	          "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
	          "Content-Length: 5\r\n\r\n");
	pump(h, 30);
	while (cli_read(&cl) > 0)
		;
	CHECK_STR(cl.in.data, "HTTP/1.1 100 Continue\r\n\r\n");
	CHECK_INT(s.calls, 0);
	cli_sends(h, &cl, "abcde");
	CHECK_INT(cli_reply(h, &cl, 2000, &r), 200);
	CHECK_INT(r.got_continue, 1);
	CHECK_STR(s.body.data, "abcde");
	cli_close(&cl);

	/* Too large: the final answer comes instead of 100. */
	CHECK_INT(once(h,
	               "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
	               "Content-Length: 101\r\n\r\n",
	               &r, NULL),
	          413);
	CHECK_INT(r.got_continue, 0);
	/* HTTP/1.0 clients get no 100. */
	CHECK_INT(once(h,
	               "POST /e HTTP/1.0\r\nExpect: 100-continue\r\n"
	               "Content-Length: 1\r\n\r\nz",
	               &r, NULL),
	          200);
	CHECK_INT(r.got_continue, 0);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

/* Clients that vanish mid-request, reset, or half-close. */
static void
test_client_gone(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct client a, b, d;
	struct linger lin = {1, 0};
	struct httpd *h;
	int calls;

	config(&c, &s);
	if ((h = start(&c)) == NULL)
		return;
	cli_open(&a, h);
	cli_sends(h, &a,
	          "POST /gone HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n"
	          "\r\nonly part");
	pump(h, 20);
	CHECK_INT(httpd_connections(h), 1);
	cli_close(&a);
	pump(h, 30);
	CHECK_INT(httpd_connections(h), 0);

	/* A reset right after a complete request: whether the server saw
	 * the request first is up to the kernel; either way it goes on. */
	calls = s.calls;
	cli_open(&b, h);
	cli_sends(h, &b, POST_HELLO);
	setsockopt(b.fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
	cli_close(&b);
	pump(h, 30);
	CHECK_INT(httpd_connections(h), 0);
	CHECK(s.calls - calls <= 1);

	/* A reset while a large answer is being written, after the client
	 * shut its side: the server's socket is in CLOSE_WAIT, so its next
	 * send fails with EPIPE, which raises SIGPIPE (ending this test)
	 * unless the send asked for MSG_NOSIGNAL. */
	calls = s.calls;
	cli_open(&b, h);
	cli_sends(h, &b,
	          "POST /large HTTP/1.1\r\nHost: x\r\n"
	          "Content-Length: 0\r\n\r\n");
	shutdown(b.fd, SHUT_WR);
	while (b.in.len == 0 && cli_eof(h, &b, 10) == 0)
		;
	CHECK(b.in.len > 0);
	setsockopt(b.fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
	cli_close(&b);
	pump(h, 50);
	CHECK_INT(httpd_connections(h), 0);
	CHECK_INT(s.calls - calls, 1);

	/* A request followed by shutdown(SHUT_WR) is still answered. */
	cli_open(&d, h);
	cli_sends(h, &d, POST_HELLO);
	shutdown(d.fd, SHUT_WR);
	CHECK_INT(cli_reply(h, &d, 2000, &r), 200);
	CHECK_STR(reply_header(&r, "Connection"), "close");
	CHECK_INT(cli_eof(h, &d, 1000), 1);
	cli_close(&d);
	pump(h, 20);
	CHECK_INT(httpd_connections(h), 0);

	/* And the server still serves. */
	calls = s.calls;
	CHECK_INT(once(h, POST_HELLO, &r, NULL), 200);
	CHECK_INT(s.calls - calls, 1);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

/* Every slot taken: the oldest connection still waiting for a request
 * makes room, so clients that hold connections open cannot lock a
 * sender out. */
static void
test_max_conns(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct client a, b, x;
	struct httpd *h;

	config(&c, &s);
	c.max_conns = 2;
	c.idle_timeout_ms = 5000;
	if ((h = start(&c)) == NULL)
		return;
	cli_open(&a, h);
	pump(h, 20);
	cli_open(&b, h);
	pump(h, 20);
	CHECK_INT(httpd_connections(h), 2);
	cli_open(&x, h);
	cli_sends(h, &x, POST_HELLO);
	CHECK_INT(cli_reply(h, &x, 2000, &r), 200);
	/* a, the oldest, was closed for x; b still works. */
	CHECK_INT(cli_eof(h, &a, 1000), 1);
	CHECK_INT(httpd_connections(h), 2);
	cli_sends(h, &b, POST_HELLO);
	CHECK_INT(cli_reply(h, &b, 2000, &r), 200);
	CHECK_INT(s.calls, 2);
	cli_close(&a);
	cli_close(&b);
	cli_close(&x);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

static void
test_handler_answers(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct httpd *h;
	int closed = 0;

	config(&c, &s);
	if ((h = start(&c)) == NULL)
		return;
	/* A handler that does not answer yields 500. */
	CHECK_INT(once(h,
	               "POST /silent HTTP/1.1\r\nHost: x\r\n"
	               "Content-Length: 0\r\n\r\n",
	               &r, NULL),
	          500);
	/* Header injection and reserved headers are refused. */
	CHECK_INT(once(h,
	               "POST /misuse HTTP/1.1\r\nHost: x\r\n"
	               "Content-Length: 0\r\n\r\n",
	               &r, NULL),
	          200);
	CHECK_INT(s.api_checks, 6);
	CHECK(reply_header(&r, "Injected") == NULL);
	CHECK_STR(reply_header(&r, "Content-Length"), "12");
	/* The handler may end the connection. */
	CHECK_INT(once(h,
	               "POST /close HTTP/1.1\r\nHost: x\r\n"
	               "Content-Length: 0\r\n\r\n",
	               &r, &closed),
	          200);
	CHECK_STR(reply_header(&r, "Connection"), "close");
	CHECK_INT(closed, 1);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

static void
test_health(void)
{
	struct httpd_config c;
	struct seen s;
	struct reply r = {0};
	struct httpd *h;

	config(&c, &s);
	c.user = "sns";
	c.password = "s3cr:et";
	c.health_path = "/healthz";
	if ((h = start(&c)) == NULL)
		return;
	CHECK_INT(once(h, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r, NULL),
	          200);
	CHECK_STR(r.body.data, "ok\n");
	CHECK_INT(once(h, "HEAD /healthz?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", &r,
	               NULL),
	          200);
	CHECK_STR(reply_header(&r, "Content-Length"), "3");
	CHECK_INT(r.body.len, 0);
	/* Anywhere else, credentials first, then the method. */
	CHECK_INT(once(h, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n", &r, NULL),
	          401);
	CHECK_INT(once(h,
	               "GET /other HTTP/1.1\r\nHost: x\r\n"
	               "Authorization: Basic c25zOnMzY3I6ZXQ=\r\n\r\n",
	               &r, NULL),
	          405);
	CHECK_STR(reply_header(&r, "Allow"), "POST");
	CHECK_INT(once(h,
	               "DELETE /healthz HTTP/1.1\r\nHost: x\r\n"
	               "Authorization: Basic c25zOnMzY3I6ZXQ=\r\n\r\n",
	               &r, NULL),
	          405);
	CHECK_STR(reply_header(&r, "Allow"), "GET, HEAD, POST");
	CHECK_INT(s.calls, 0);
	reply_free(&r);
	buf_free(&s.body);
	httpd_free(h);
}

static void
test_poll_returns(void)
{
	struct httpd_config c;
	struct seen s;
	struct soar_error err;
	struct httpd *h;
	long long t0, t;
	int p[2];

	config(&c, &s);
	if ((h = start(&c)) == NULL)
		return;
	t0 = ms();
	CHECK_INT(httpd_poll(h, 50, -1, &err), 0);
	t = ms() - t0;
	CHECK(t >= 45 && t < 1000);
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], "x", 1) == 1);
	t0 = ms();
	CHECK_INT(httpd_poll(h, 5000, p[0], &err), 0);
	CHECK(ms() - t0 < 1000);
	/* Requests handled are counted. */
	{
		struct client cl;
		struct reply r = {0};
		int got = 0;

		cli_open(&cl, h);
		cli_sends(h, &cl, POST_HELLO);
		t0 = ms();
		while (got == 0 && ms() - t0 < 2000)
			got = httpd_poll(h, 10, -1, &err);
		CHECK_INT(got, 1);
		CHECK_INT(cli_reply(h, &cl, 2000, &r), 200);
		cli_close(&cl);
		reply_free(&r);
	}
	close(p[0]);
	close(p[1]);
	buf_free(&s.body);
	httpd_free(h);
}

int
main(void)
{
	UNIT_RUN(test_listen);
	UNIT_RUN(test_config_checks);
	UNIT_RUN(test_post);
	UNIT_RUN(test_keepalive_and_pipelining);
	UNIT_RUN(test_http10);
	UNIT_RUN(test_slow_client);
	UNIT_RUN(test_idle);
	UNIT_RUN(test_body_limit);
	UNIT_RUN(test_framing_errors);
	UNIT_RUN(test_header_limits);
	UNIT_RUN(test_bad_requests);
	UNIT_RUN(test_bare_lf);
	UNIT_RUN(test_methods);
	UNIT_RUN(test_basic_auth);
	UNIT_RUN(test_log);
	UNIT_RUN(test_expect_continue);
	UNIT_RUN(test_client_gone);
	UNIT_RUN(test_max_conns);
	UNIT_RUN(test_handler_answers);
	UNIT_RUN(test_health);
	UNIT_RUN(test_poll_returns);
	return UNIT_END();
}
