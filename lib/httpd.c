/* httpd.c: a small single-threaded HTTP/1.1 server core over poll(2). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "buf.h"
#include "httpd.h"

#define READ_CHUNK     (64 * 1024)
#define ACCEPT_BURST   64   /* accepts per poll round */
#define ACCEPT_PAUSE   100  /* ms without accepting after EMFILE */
#define LINGER_MS      2000 /* longest drain after a final answer */
#define LINGER_READS   16   /* reads of 4 KiB per drain step */
#define REALM_MAX      100
#define BACKLOG        128
#define PEER_MAX       (INET6_ADDRSTRLEN + 16)
#define MD_LEN         32   /* SHA-256 */
#define AUTH_TOKEN_MAX 4096 /* base64 credentials, before decoding */
#define LOG_PATH_MAX   200  /* path bytes shown in a log line */

enum conn_state {
	ST_HEAD,   /* reading a request line and headers */
	ST_BODY,   /* reading a body of known length */
	ST_WRITE,  /* sending an answer; nothing is read */
	ST_LINGER, /* answer sent, write side shut: draining, then close */
};

/* The request being received.  store holds a copy of the header block with
 * NULs between its parts, then a copy of the target split at '?'. */
struct parsed {
	char *store;
	struct httpd_header hdr[HTTPD_MAX_HEADERS];
	size_t nhdr;
	const char *method, *target, *path, *query;
	int version;
	unsigned mbit; /* enum httpd_method bit, 0 for another method */
	int keep_alive;
	int expect; /* Expect: 100-continue */
	int health;
	size_t head_len; /* header block bytes, blank line included */
	size_t body_len;
};

struct conn {
	int fd;
	enum conn_state state;
	char peer[PEER_MAX];
	struct buf in;  /* received and not yet consumed */
	size_t scanned; /* bytes of in searched for the end of the head */
	struct buf out; /* to send, from out_off */
	size_t out_off;
	int close_after; /* close once out is sent */
	int peer_eof;    /* the client shut its side */
	int started;     /* a byte of the current request arrived */
	long long deadline;
	long long opened; /* when it was accepted */
	struct parsed req;
};

struct httpd_response {
	int status; /* 0 until the handler answers */
	struct buf ctype;
	struct buf headers; /* "Name: value\r\n" lines */
	struct buf body;
	int close;
};

struct httpd {
	int fd;
	int port;
	char address[PEER_MAX];
	unsigned methods;
	char *health_path;
	int auth;
	unsigned char cred_md[MD_LEN]; /* SHA-256 of "user:password" */
	char *www_auth;                /* WWW-Authenticate header line */
	size_t max_header, max_body;
	long request_timeout_ms, idle_timeout_ms;
	int max_conns;
	const struct log *log;
	httpd_handler_fn handler;
	void *arg;
	struct conn **conns; /* max_conns slots, NULL when free */
	size_t nconns;
	struct pollfd *pfd; /* max_conns + 2 */
	int *pslot;         /* conns slot of each pfd entry, -1 for others */
	long long accept_paused_until;
	long long now;
	int dispatched;
};

static const struct {
	unsigned bit;
	const char *name;
} method_names[] = {
        {HTTPD_GET, "GET"}, {HTTPD_HEAD, "HEAD"},     {HTTPD_POST, "POST"},
        {HTTPD_PUT, "PUT"}, {HTTPD_DELETE, "DELETE"},
};

#define ALL_METHODS                                                            \
	(HTTPD_GET | HTTPD_HEAD | HTTPD_POST | HTTPD_PUT | HTTPD_DELETE)

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct {
	int status;
	const char *text;
} reasons[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {411, "Length Required"},
        {413, "Payload Too Large"},
        {415, "Unsupported Media Type"},
        {417, "Expectation Failed"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
};

static const char *
reason(int status)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].text;
	return "";
}

static int
is_tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int
is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!is_tchar((unsigned char)*s))
			return 0;
	return 1;
}

/* A header value: HTAB, SP, visible ASCII and bytes above 0x7f. */
static int
is_field_value(const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p != '\t' && (*p < 0x20 || *p == 0x7f))
			return 0;
	return 1;
}

/* Empties b, wiping its storage: request bytes may hold credentials. */
static void
wipe_clear(struct buf *b)
{
	if (b->data != NULL)
		explicit_bzero(b->data, b->cap);
	b->len = 0;
}

/* --- configuration and listening socket ---------------------------------- */

void
httpd_config_defaults(struct httpd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->methods = HTTPD_POST;
	cfg->max_header = 16 * 1024;
	cfg->max_body = 1024 * 1024;
	cfg->request_timeout_ms = 10000;
	cfg->idle_timeout_ms = 5000;
	cfg->max_conns = 64;
}

/* Splits "ADDR:PORT" or "[ADDR6]:PORT" into host and port; sets *v6 when
 * bracketed.  Returns 0, or -1 when the form is wrong. */
static int
split_listen(const char *s, char *host, size_t hostsz, char *port,
             size_t portsz, int *v6)
{
	const char *colon, *end;
	size_t hlen, i;

	*v6 = s[0] == '[';
	if (*v6) {
		end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		colon = end + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)))
			return -1;
		end = colon;
	}
	hlen = (size_t)(end - s);
	if (hlen == 0 || hlen >= hostsz)
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	colon++;
	for (i = 0; colon[i] != '\0'; i++)
		if (colon[i] < '0' || colon[i] > '9')
			return -1;
	if (i == 0 || i > 5 || i >= portsz || strtol(colon, NULL, 10) > 65535)
		return -1;
	memcpy(port, colon, i + 1);
	return 0;
}

/* Formats "a.b.c.d:port" or "[v6]:port" for sa into out. */
static void
format_addr(const struct sockaddr_storage *sa, char *out, size_t outsz)
{
	char ip[INET6_ADDRSTRLEN];
	int n = -1;

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		if (inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip)) != NULL)
			n = snprintf(out, outsz, "%s:%u", ip,
			             (unsigned)ntohs(s4->sin_port));
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip)) != NULL)
			n = snprintf(out, outsz, "[%s]:%u", ip,
			             (unsigned)ntohs(s6->sin6_port));
	}
	/* PEER_MAX holds the longest form, so only a failure lands here. */
	if (n < 0 || (size_t)n >= outsz)
		snprintf(out, outsz, "%s", "?");
}

static int
open_listener(struct httpd *h, const char *listen_at, struct soar_error *err)
{
	char host[INET6_ADDRSTRLEN + 64], port[8];
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	struct in_addr a4;
	int v6, one = 1, rc, fd;

	/* inet_pton, unlike getaddrinfo, refuses the old "127.1" forms. */
	if (split_listen(listen_at, host, sizeof(host), port, sizeof(port),
	                 &v6) < 0 ||
	    (!v6 && inet_pton(AF_INET, host, &a4) != 1)) {
		soar_error_set(
		        err, "usage",
		        "%s: not ADDR:PORT or [ADDR]:PORT with a numeric "
		        "address and a port up to 65535",
		        listen_at);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	memset(&ss, 0, sizeof(ss));
	hints.ai_family = v6 ? AF_INET6 : AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0 || ai == NULL) {
		soar_error_set(err, "usage", "%s: not a numeric %s address",
		               listen_at, v6 ? "IPv6" : "IPv4");
		if (ai != NULL)
			freeaddrinfo(ai);
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		soar_error_set(err, "listen", "%s: %s", listen_at,
		               strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	h->fd = fd;
	format_addr(&ss, h->address, sizeof(h->address));
	h->port = ntohs(ss.ss_family == AF_INET
	                        ? ((struct sockaddr_in *)&ss)->sin_port
	                        : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

/* Checks the settings that are not the address.  Returns 0 or -1. */
static int
check_config(const struct httpd_config *cfg, struct soar_error *err)
{
	const char *realm = cfg->realm ? cfg->realm : "soarutils";
	const char *p;

	if (cfg->listen == NULL || cfg->handler == NULL) {
		soar_error_set(err, "usage",
		               "httpd: listen and handler needed");
		return -1;
	}
	if ((cfg->methods & ~(unsigned)ALL_METHODS) != 0 ||
	    cfg->max_header < 256 || cfg->max_header > 1024 * 1024 ||
	    cfg->request_timeout_ms <= 0 || cfg->idle_timeout_ms <= 0 ||
	    cfg->max_conns < 1 || cfg->max_conns > 65536 ||
	    cfg->max_body > SIZE_MAX / 4) {
		soar_error_set(err, "usage", "httpd: setting out of range");
		return -1;
	}
	if (cfg->health_path != NULL &&
	    (cfg->health_path[0] != '/' || strchr(cfg->health_path, '?'))) {
		soar_error_set(err, "usage",
		               "%s: health path must start with /"
		               " and hold no query",
		               cfg->health_path);
		return -1;
	}
	if ((cfg->user == NULL) != (cfg->password == NULL)) {
		soar_error_set(
		        err, "usage",
		        "httpd: Basic auth needs both user and password");
		return -1;
	}
	/* A ':' in the user would make "user:password" ambiguous. */
	if (cfg->user != NULL &&
	    (cfg->user[0] == '\0' || cfg->password[0] == '\0' ||
	     strchr(cfg->user, ':') || !is_field_value(cfg->user) ||
	     strchr(cfg->user, '\t') || !is_field_value(cfg->password))) {
		soar_error_set(err, "usage",
		               "httpd: Basic auth user or password is empty or "
		               "holds ':' (user) or a control character");
		return -1;
	}
	for (p = realm; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
			break;
	if (*p != '\0' || realm[0] == '\0' || strlen(realm) > REALM_MAX) {
		soar_error_set(err, "usage",
		               "httpd: realm must be 1 to %d printable ASCII "
		               "characters without quotes or backslashes",
		               REALM_MAX);
		return -1;
	}
	return 0;
}

/* Keeps only a digest of the credentials, so no plain copy lingers. */
static int
set_credentials(struct httpd *h, const struct httpd_config *cfg)
{
	struct buf pair = BUF_INIT;
	unsigned int mdlen = 0;
	int rc = 0;

	if (buf_printf(&pair, "%s:%s", cfg->user, cfg->password) < 0 ||
	    EVP_Digest(pair.data, pair.len, h->cred_md, &mdlen, EVP_sha256(),
	               NULL) != 1 ||
	    mdlen != MD_LEN)
		rc = -1;
	buf_wipe(&pair);
	h->auth = rc == 0;
	return rc;
}

struct httpd *
httpd_new(const struct httpd_config *cfg, struct soar_error *err)
{
	struct httpd *h;
	struct buf wa = BUF_INIT;
	size_t n;

	if (check_config(cfg, err) < 0)
		return NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		goto nomem;
	h->fd = -1;
	h->methods = cfg->methods ? cfg->methods : HTTPD_POST;
	h->max_header = cfg->max_header;
	h->max_body = cfg->max_body;
	h->request_timeout_ms = cfg->request_timeout_ms;
	h->idle_timeout_ms = cfg->idle_timeout_ms;
	h->max_conns = cfg->max_conns;
	h->log = cfg->log;
	h->handler = cfg->handler;
	h->arg = cfg->arg;
	n = (size_t)cfg->max_conns;
	h->conns = calloc(n, sizeof(*h->conns));
	h->pfd = calloc(n + 2, sizeof(*h->pfd));
	h->pslot = calloc(n + 2, sizeof(*h->pslot));
	if (h->conns == NULL || h->pfd == NULL || h->pslot == NULL)
		goto nomem;
	if (cfg->health_path != NULL &&
	    (h->health_path = strdup(cfg->health_path)) == NULL)
		goto nomem;
	if (buf_printf(&wa, "WWW-Authenticate: Basic realm=\"%s\"\r\n",
	               cfg->realm ? cfg->realm : "soarutils") < 0)
		goto nomem;
	h->www_auth = wa.data;
	if (cfg->user != NULL && set_credentials(h, cfg) < 0)
		goto nomem;
	if (open_listener(h, cfg->listen, err) < 0) {
		httpd_free(h);
		return NULL;
	}
	return h;
nomem:
	soar_error_set(err, "memory", "httpd: out of memory");
	httpd_free(h);
	return NULL;
}

/* --- connections ---------------------------------------------------------- */

static void
parsed_reset(struct parsed *r)
{
	if (r->store != NULL) {
		explicit_bzero(r->store, 2 * r->head_len + 2);
		free(r->store);
	}
	memset(r, 0, sizeof(*r));
}

static void
conn_close(struct httpd *h, size_t slot)
{
	struct conn *c = h->conns[slot];

	if (c == NULL)
		return;
	close(c->fd);
	parsed_reset(&c->req);
	buf_wipe(&c->in);
	buf_free(&c->out);
	free(c);
	h->conns[slot] = NULL;
	h->nconns--;
}

/* Drops the first n bytes of c->in, wiping what they leave behind. */
static void
consume(struct conn *c, size_t n)
{
	size_t rest = c->in.len - n;

	memmove(c->in.data, c->in.data + n, rest);
	explicit_bzero(c->in.data + rest, n);
	c->in.len = rest;
	c->scanned = 0;
}

/* Appends a whole answer to c->out.  extra holds header lines; body is
 * left out for HEAD, and body and Content-Length for 204 and 304. */
static int
put_response(struct conn *c, int status, const char *ctype, const char *extra,
             const char *body, size_t len, int head_only)
{
	struct buf *o = &c->out;
	int bodyless = status == 204 || status == 304;
	int rc;

	rc = buf_printf(o, "HTTP/1.1 %d %s\r\n", status, reason(status));
	if (rc == 0 && ctype != NULL && !bodyless)
		rc = buf_printf(o, "Content-Type: %s\r\n", ctype);
	if (rc == 0 && extra != NULL)
		rc = buf_puts(o, extra);
	if (rc == 0 && !bodyless)
		rc = buf_printf(o, "Content-Length: %zu\r\n", len);
	if (rc == 0 && c->close_after)
		rc = buf_puts(o, "Connection: close\r\n");
	else if (rc == 0 && c->req.version == 10)
		rc = buf_puts(o, "Connection: keep-alive\r\n");
	if (rc == 0)
		rc = buf_puts(o, "\r\n");
	if (rc == 0 && !head_only && !bodyless)
		rc = buf_append(o, body, len);
	return rc;
}

static int
is_head(const struct conn *c)
{
	return c->req.method != NULL && strcmp(c->req.method, "HEAD") == 0;
}

/* Answers status by the core and closes the connection afterwards: the
 * rest of the request is not read, so its framing is lost. */
static void
conn_fail(struct httpd *h, struct conn *c, int status, const char *extra)
{
	char body[64];

	log_debug(h->log, "%s: %s %.*s: %d %s", c->peer,
	          c->req.method ? c->req.method : "-", LOG_PATH_MAX,
	          c->req.path ? c->req.path : "-", status, reason(status));
	snprintf(body, sizeof(body), "%d %s\n", status, reason(status));
	c->close_after = 1;
	if (put_response(c, status, "text/plain", extra, body, strlen(body),
	                 is_head(c)) < 0) {
		/* Without memory for an answer the connection just ends. */
		buf_clear(&c->out);
		c->out_off = 0;
	}
	parsed_reset(&c->req);
	wipe_clear(&c->in);
	c->scanned = 0;
	c->state = ST_WRITE;
	c->deadline = h->now + h->request_timeout_ms;
}

/* Sends what is pending.  Returns 0 (all sent or the socket is full), or
 * -1 when the connection failed (reset, broken pipe). */
static int
conn_flush(struct conn *c)
{
	ssize_t n;

	while (c->out_off < c->out.len) {
		n = send(c->fd, c->out.data + c->out_off,
		         c->out.len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -1;
		c->out_off += (size_t)n;
	}
	buf_clear(&c->out);
	c->out_off = 0;
	return 0;
}

/* Reads what the state allows: a header block of up to max_header bytes,
 * or the rest of the body; in ST_LINGER everything, into a scratch buffer.
 * Returns 0, or -1 when the connection failed. */
static int
conn_read(struct httpd *h, struct conn *c)
{
	char scratch[4096];
	size_t want, need, drained = 0;
	ssize_t n;

	for (;;) {
		if (c->state == ST_LINGER) {
			/* A fast sender must not keep the loop here. */
			if (drained++ == LINGER_READS)
				return 0;
			n = recv(c->fd, scratch, sizeof(scratch), 0);
		} else {
			need = c->state == ST_HEAD
			               ? h->max_header
			               : c->req.head_len + c->req.body_len;
			want = c->in.len < need ? need - c->in.len : 0;
			if (want == 0)
				return 0;
			if (want > READ_CHUNK)
				want = READ_CHUNK;
			if (buf_reserve(&c->in, want) < 0)
				return -1;
			n = recv(c->fd, c->in.data + c->in.len, want, 0);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -1;
		if (n == 0) {
			c->peer_eof = 1;
			return 0;
		}
		if (c->state == ST_LINGER)
			continue;
		c->in.len += (size_t)n;
		c->in.data[c->in.len] = '\0';
		if (!c->started) {
			/* A kept-alive connection now owes a whole request. */
			c->started = 1;
			c->deadline = h->now + h->request_timeout_ms;
		}
	}
}

/* Finds the blank line that ends the head within the first max_header
 * bytes; LF and CRLF line ends both count.  Returns its end offset, or 0
 * when it has not arrived. */
static size_t
find_head_end(struct conn *c, size_t max)
{
	const char *p = c->in.data;
	size_t n = c->in.len < max ? c->in.len : max;
	size_t i = c->scanned > 2 ? c->scanned - 2 : 0;

	for (; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < n && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	c->scanned = n;
	return 0;
}

/* Cuts the line at p (ending before `end`) in place; returns the start of
 * the next line, or NULL when the line holds a CR other than before its
 * LF. */
static char *
cut_line(char *p, char *end)
{
	char *nl = memchr(p, '\n', (size_t)(end - p));
	char *le = nl;

	if (le > p && le[-1] == '\r')
		le--;
	*le = '\0';
	*nl = '\0';
	if (memchr(p, '\r', (size_t)(le - p)) != NULL)
		return NULL;
	return nl + 1;
}

/* Parses the request line of r->store.  Returns the next line, or NULL
 * with *status set. */
static char *
parse_request_line(struct parsed *r, char *end, int *status)
{
	char *line = r->store, *next, *sp, *target, *v;
	const char *t;
	size_t i;

	*status = 400;
	if ((next = cut_line(line, end)) == NULL)
		return NULL;
	if ((sp = strchr(line, ' ')) == NULL)
		return NULL;
	*sp = '\0';
	target = sp + 1;
	if ((sp = strchr(target, ' ')) == NULL)
		return NULL;
	*sp = '\0';
	v = sp + 1;
	if (!is_token(line) || target[0] != '/')
		return NULL;
	for (t = target; *t != '\0'; t++)
		if (*t < 0x21 || *t > 0x7e || *t == '#')
			return NULL;
	/* Only checked text is kept: method and path go into log lines. */
	r->method = line;
	r->target = target;
	if (strlen(v) != 8 || strncmp(v, "HTTP/", 5) != 0 || v[5] < '0' ||
	    v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9')
		return NULL;
	if (strcmp(v + 5, "1.1") == 0)
		r->version = 11;
	else if (strcmp(v + 5, "1.0") == 0)
		r->version = 10;
	else {
		*status = 505;
		return NULL;
	}
	for (i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
		if (strcmp(r->method, method_names[i].name) == 0)
			r->mbit = method_names[i].bit;
	return next;
}

/* Parses header lines from p up to the blank line.  Returns 0 or a status
 * (400, 431). */
static int
parse_headers(struct parsed *r, char *p, char *end)
{
	char *next, *colon, *v, *e;
	const char *q;

	while (p < end) {
		if ((next = cut_line(p, end)) == NULL)
			return 400;
		if (*p == '\0')
			return 0;
		/* A folded line (obs-fold) starts with a blank, which no
		 * name holds: it is refused, as RFC 9112 allows. */
		if ((colon = strchr(p, ':')) == NULL || colon == p)
			return 400;
		for (q = p; q < colon; q++)
			if (!is_tchar((unsigned char)*q))
				return 400;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		e = v + strlen(v);
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (!is_field_value(v))
			return 400;
		if (r->nhdr == HTTPD_MAX_HEADERS)
			return 431;
		r->hdr[r->nhdr].name = p;
		r->hdr[r->nhdr].value = v;
		r->nhdr++;
		p = next;
	}
	return 400;
}

/* Returns the value of the only header called name (NULL when absent) and
 * its count in *count. */
static const char *
find_header(const struct parsed *r, const char *name, int *count)
{
	const char *v = NULL;
	size_t i;

	*count = 0;
	for (i = 0; i < r->nhdr; i++)
		if (strcasecmp(r->hdr[i].name, name) == 0) {
			if (v == NULL)
				v = r->hdr[i].value;
			(*count)++;
		}
	return v;
}

/* Returns 1 when a comma-separated header list holds token (any case). */
static int
has_token(const struct parsed *r, const char *name, const char *token)
{
	size_t i, n = strlen(token);
	const char *p;

	for (i = 0; i < r->nhdr; i++) {
		if (strcasecmp(r->hdr[i].name, name) != 0)
			continue;
		for (p = r->hdr[i].value; *p != '\0';) {
			while (*p == ' ' || *p == '\t' || *p == ',')
				p++;
			if (strncasecmp(p, token, n) == 0 &&
			    (p[n] == '\0' || p[n] == ',' || p[n] == ' ' ||
			     p[n] == '\t'))
				return 1;
			while (*p != '\0' && *p != ',')
				p++;
		}
	}
	return 0;
}

/* Parses a Content-Length value: digits only, no sign, no list. */
static int
parse_length(const char *s, size_t *out)
{
	size_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (SIZE_MAX - 9) / 10)
			return -1;
		v = v * 10 + (size_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static int
b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes standard base64 strictly: padded to a multiple of 4, '=' only
 * at the end, unused bits zero.  Returns the length, or -1. */
static long
b64_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
	size_t i, o = 0;
	unsigned long x;
	int j, pad, v;

	if (n == 0 || n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		x = 0;
		pad = 0;
		for (j = 0; j < 4; j++) {
			if (s[i + j] == '=') {
				if (i + 4 != n || j < 2)
					return -1;
				pad++;
				x <<= 6;
				continue;
			}
			v = b64_value(s[i + j]);
			if (pad > 0 || v < 0)
				return -1;
			x = x << 6 | (unsigned long)v;
		}
		if ((pad == 2 && (x & 0xffff) != 0) ||
		    (pad == 1 && (x & 0xff) != 0) || o + 3 - pad > cap)
			return -1;
		out[o++] = (unsigned char)(x >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(x >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)x;
	}
	return (long)o;
}

/* Returns 1 when value is "Basic <base64 of user:password>" for the
 * configured pair.  Digests are compared, in constant time, so neither the
 * content nor the length of the secret shows in the timing. */
static int
auth_ok(const struct httpd *h, const char *value)
{
	unsigned char dec[AUTH_TOKEN_MAX], md[MD_LEN];
	unsigned int mdlen = 0;
	const char *p;
	long n;
	int ok;

	if (value == NULL || strncasecmp(value, "Basic ", 6) != 0)
		return 0;
	for (p = value + 6; *p == ' '; p++)
		;
	n = b64_decode(p, strlen(p), dec, sizeof(dec));
	if (n < 0)
		return 0;
	ok = EVP_Digest(dec, (size_t)n, md, &mdlen, EVP_sha256(), NULL) == 1 &&
	     mdlen == MD_LEN && CRYPTO_memcmp(md, h->cred_md, MD_LEN) == 0;
	explicit_bzero(dec, sizeof(dec));
	explicit_bzero(md, sizeof(md));
	return ok;
}

/* Appends "Allow: ..." for the methods this path takes. */
static void
allow_header(const struct httpd *h, const struct parsed *r, char *out,
             size_t outsz)
{
	unsigned bits = h->methods;
	size_t i, n;

	if (h->health_path != NULL && strcmp(r->path, h->health_path) == 0)
		bits |= HTTPD_GET | HTTPD_HEAD;
	n = (size_t)snprintf(out, outsz, "Allow:");
	for (i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
		if (bits & method_names[i].bit)
			n += (size_t)snprintf(out + n, outsz - n, "%s %s",
			                      n > 6 ? "," : "",
			                      method_names[i].name);
	snprintf(out + n, outsz - n, "\r\n");
}

/* Applies the framing and access rules to a parsed head.  Returns 0 when
 * the request may go on, or the status to answer; *extra then names a
 * header line to add (buffer of extrasz bytes). */
static int
check_request(const struct httpd *h, struct parsed *r, char *extra,
              size_t extrasz)
{
	const char *cl, *expect;
	int ncl, nhost, nauth, nte, nexp;

	cl = find_header(r, "Content-Length", &ncl);
	(void)find_header(r, "Host", &nhost);
	(void)find_header(r, "Authorization", &nauth);
	(void)find_header(r, "Transfer-Encoding", &nte);
	expect = find_header(r, "Expect", &nexp);
	if (ncl > 1 || nhost > 1 || nauth > 1 || (ncl == 1 && nte > 0) ||
	    (r->version == 11 && nhost == 0))
		return 400;
	if (cl != NULL && parse_length(cl, &r->body_len) < 0)
		return 400;
	/* Chunked bodies are not supported: say so instead of guessing. */
	if (nte > 0)
		return 411;
	if (r->version == 11 && nexp > 0) {
		if (nexp > 1 || strcasecmp(expect, "100-continue") != 0)
			return 417;
		r->expect = 1;
	}
	r->keep_alive = r->version == 11
	                        ? !has_token(r, "Connection", "close")
	                        : has_token(r, "Connection", "keep-alive");
	r->health = h->health_path != NULL &&
	            (r->mbit & (HTTPD_GET | HTTPD_HEAD)) &&
	            strcmp(r->path, h->health_path) == 0;
	if (!r->health && h->auth &&
	    !auth_ok(h, find_header(r, "Authorization", &nauth))) {
		snprintf(extra, extrasz, "%s", h->www_auth);
		return 401;
	}
	if (!r->health && (r->mbit & h->methods) == 0) {
		allow_header(h, r, extra, extrasz);
		return 405;
	}
	if (cl == NULL && (r->mbit & (HTTPD_POST | HTTPD_PUT)))
		return 411;
	if (r->body_len > h->max_body)
		return 413;
	return 0;
}

/* Parses the head that ends at offset head_len of c->in into c->req.
 * Returns 0, or the status to answer with *extra filled. */
static int
parse_head(struct httpd *h, struct conn *c, size_t head_len, char *extra,
           size_t extrasz)
{
	struct parsed *r = &c->req;
	char *next, *q;
	int status;

	extra[0] = '\0';
	r->head_len = head_len;
	if (memchr(c->in.data, '\0', head_len) != NULL)
		return 400;
	if ((r->store = malloc(2 * head_len + 2)) == NULL)
		return 500;
	memcpy(r->store, c->in.data, head_len);
	r->store[head_len] = '\0';
	next = parse_request_line(r, r->store + head_len, &status);
	if (next == NULL)
		return status;
	if ((status = parse_headers(r, next, r->store + head_len)) != 0)
		return status;
	/* The target stays whole; path and query come from a second copy. */
	q = r->store + head_len + 1;
	memcpy(q, r->target, strlen(r->target) + 1);
	r->path = q;
	if ((q = strchr(q, '?')) != NULL) {
		*q = '\0';
		r->query = q + 1;
	} else {
		r->query = "";
	}
	return check_request(h, r, extra, extrasz);
}

/* Strips empty lines before a request line, as RFC 9112 asks. */
static void
skip_blank_lines(struct conn *c)
{
	size_t n = 0;

	while (n < c->in.len) {
		if (c->in.data[n] == '\n')
			n++;
		else if (c->in.data[n] == '\r' && n + 1 < c->in.len &&
		         c->in.data[n + 1] == '\n')
			n += 2;
		else
			break;
	}
	if (n > 0)
		consume(c, n);
}

/* --- responses from the handler ------------------------------------------- */

int
httpd_respond(struct httpd_response *resp, int status, const char *content_type,
              const void *body, size_t len)
{
	if (status < 200 || status > 599 || (body == NULL && len > 0) ||
	    (content_type != NULL &&
	     (!is_field_value(content_type) || content_type[0] == '\0'))) {
		errno = EINVAL;
		return -1;
	}
	buf_clear(&resp->ctype);
	buf_clear(&resp->body);
	if ((content_type != NULL &&
	     buf_puts(&resp->ctype, content_type) < 0) ||
	    buf_append(&resp->body, body ? body : "", len) < 0) {
		resp->status = 0;
		return -1;
	}
	resp->status = status;
	return 0;
}

int
httpd_add_header(struct httpd_response *resp, const char *name,
                 const char *value)
{
	static const char *const reserved[] = {"Content-Length", "Content-Type",
	                                       "Connection",
	                                       "Transfer-Encoding"};
	size_t i;

	if (!is_token(name) || !is_field_value(value)) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcasecmp(name, reserved[i]) == 0) {
			errno = EINVAL;
			return -1;
		}
	return buf_printf(&resp->headers, "%s: %s\r\n", name, value);
}

void
httpd_close_after(struct httpd_response *resp)
{
	resp->close = 1;
}

const char *
httpd_header(const struct httpd_request *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

/* Runs the handler (or the health answer) on the complete request at the
 * start of c->in and queues its answer. */
static void
dispatch(struct httpd *h, struct conn *c)
{
	struct parsed *r = &c->req;
	struct httpd_header view[HTTPD_MAX_HEADERS];
	struct httpd_request req;
	struct httpd_response resp;
	char *body = c->in.data + r->head_len;
	char saved;
	size_t i, n = 0;

	memset(&resp, 0, sizeof(resp));
	/* Credentials the core checked are none of the handler's business. */
	for (i = 0; i < r->nhdr; i++)
		if (!h->auth || strcasecmp(r->hdr[i].name, "Authorization"))
			view[n++] = r->hdr[i];
	req = (struct httpd_request){
	        .method = r->method,
	        .target = r->target,
	        .path = r->path,
	        .query = r->query,
	        .version = r->version,
	        .headers = view,
	        .nheaders = n,
	        .body = body,
	        .body_len = r->body_len,
	        .peer = c->peer,
	};
	/* The byte after the body may start the next pipelined request; it
	 * is lent out as the body's terminating NUL for the call. */
	saved = body[r->body_len];
	body[r->body_len] = '\0';
	h->dispatched++;
	if (r->health)
		(void)httpd_respond(&resp, 200, "text/plain", "ok\n", 3);
	else
		h->handler(h->arg, &req, &resp);
	/* The handler may have taken long: deadlines count from now. */
	h->now = now_ms();
	body[r->body_len] = saved;
	if (resp.status == 0) {
		buf_clear(&resp.headers);
		(void)httpd_respond(&resp, 500, "text/plain",
		                    "500 Internal Server Error\n", 26);
	}
	c->close_after = !r->keep_alive || resp.close || c->peer_eof;
	if (resp.status == 0 ||
	    put_response(
	            c, resp.status, resp.ctype.len ? resp.ctype.data : NULL,
	            resp.headers.data, resp.body.data ? resp.body.data : "",
	            resp.body.len, is_head(c)) < 0) {
		buf_clear(&c->out);
		c->out_off = 0;
		c->close_after = 1;
	}
	log_debug(h->log, "%s: %s %.*s: %d, %zu bytes in, %zu out", c->peer,
	          r->method, LOG_PATH_MAX, r->path, resp.status, r->body_len,
	          resp.body.len);
	buf_free(&resp.ctype);
	buf_free(&resp.headers);
	buf_free(&resp.body);
	consume(c, r->head_len + r->body_len);
	parsed_reset(r);
	c->state = ST_WRITE;
	c->deadline = h->now + h->request_timeout_ms;
}

/* Takes a head from c->in when one is complete.  Returns 1 when the state
 * moved on, 0 when more bytes are needed. */
static int
head_step(struct httpd *h, struct conn *c)
{
	char extra[256];
	size_t end;
	int status;

	skip_blank_lines(c);
	if (c->in.len == 0)
		return 0;
	end = find_head_end(c, h->max_header);
	if (end == 0) {
		if (c->in.len < h->max_header)
			return 0;
		conn_fail(h, c, 431, NULL);
		return 1;
	}
	status = parse_head(h, c, end, extra, sizeof(extra));
	if (status != 0) {
		conn_fail(h, c, status, extra[0] ? extra : NULL);
		return 1;
	}
	c->state = ST_BODY;
	/* The client waits for "100 Continue" only until body bytes come. */
	if (c->req.expect && c->req.body_len > 0 && c->in.len == end &&
	    buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") < 0)
		return -1;
	return 1;
}

/* Shuts the write side after a final answer and drains what the client
 * still sends, so that closing does not reset the answer away. */
static void
start_linger(struct httpd *h, struct conn *c)
{
	long t = h->request_timeout_ms < LINGER_MS ? h->request_timeout_ms
	                                           : LINGER_MS;

	shutdown(c->fd, SHUT_WR);
	wipe_clear(&c->in);
	c->scanned = 0;
	c->state = ST_LINGER;
	c->deadline = h->now + t;
}

/* Moves the connection on as far as the bytes at hand allow.  Returns 0,
 * or -1 when it is to be closed. */
static int
conn_advance(struct httpd *h, struct conn *c)
{
	for (;;) {
		if (c->out.len > 0 && conn_flush(c) < 0)
			return -1;
		switch (c->state) {
		case ST_WRITE:
			if (c->out.len > 0)
				return 0;
			if (c->close_after) {
				start_linger(h, c);
				return c->peer_eof ? -1 : 0;
			}
			c->state = ST_HEAD;
			c->started = c->in.len > 0;
			c->deadline =
			        h->now + (c->started ? h->request_timeout_ms
			                             : h->idle_timeout_ms);
			break;
		case ST_LINGER:
			return c->peer_eof ? -1 : 0;
		case ST_HEAD:
			switch (head_step(h, c)) {
			case 1:
				break;
			case 0:
				return c->peer_eof ? -1 : 0;
			default:
				return -1;
			}
			break;
		case ST_BODY:
			if (c->in.len < c->req.head_len + c->req.body_len) {
				if (!c->peer_eof)
					return 0;
				/* The client ended short of its
				 * Content-Length: say so before closing. */
				conn_fail(h, c, 400, NULL);
				break;
			}
			dispatch(h, c);
			break;
		}
	}
}

/* Handles poll events and an expired deadline for one connection. */
static void
conn_event(struct httpd *h, size_t slot, short revents)
{
	struct conn *c = h->conns[slot];
	int reading = c->state != ST_WRITE && !c->peer_eof;

	if (reading && (revents & (POLLIN | POLLHUP | POLLERR)) &&
	    conn_read(h, c) < 0) {
		conn_close(h, slot);
		return;
	}
	/* Bytes that just arrived count before the deadline is judged. */
	if (conn_advance(h, c) < 0) {
		conn_close(h, slot);
		return;
	}
	if (c->deadline > h->now)
		return;
	if (c->state == ST_WRITE || c->state == ST_LINGER ||
	    (c->state == ST_HEAD && !c->started)) {
		conn_close(h, slot);
		return;
	}
	conn_fail(h, c, 408, NULL);
	if (conn_advance(h, c) < 0)
		conn_close(h, slot);
}

static void
conn_open(struct httpd *h, int fd, const struct sockaddr_storage *ss)
{
	struct conn *c;
	size_t slot;

	for (slot = 0; h->conns[slot] != NULL; slot++)
		;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->state = ST_HEAD;
	c->deadline = h->now + h->idle_timeout_ms;
	format_addr(ss, c->peer, sizeof(c->peer));
	h->conns[slot] = c;
	h->nconns++;
}

/* Answers a connection beyond max_conns with 503 as far as the socket
 * takes it without waiting, and closes it. */
static void
refuse(struct httpd *h, int fd, const struct sockaddr_storage *ss)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
	                           "Content-Type: text/plain\r\n"
	                           "Content-Length: 24\r\n"
	                           "Retry-After: 1\r\n"
	                           "Connection: close\r\n\r\n"
	                           "503 Service Unavailable\n";
	char peer[PEER_MAX], scratch[4096];
	ssize_t n;

	format_addr(ss, peer, sizeof(peer));
	log_debug(h->log, "%s: refused: %zu connections open", peer, h->nconns);
	do
		n = send(fd, busy, sizeof(busy) - 1,
		         MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	/* Unread input would turn the close into a reset that can overtake
	 * the answer; take what already arrived. */
	(void)recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
	shutdown(fd, SHUT_WR);
	close(fd);
}

/* Makes room for a new connection when every slot is taken: the oldest
 * one still waiting for (the rest of) a request goes, so that clients
 * holding connections open cannot lock a sender out.  Returns 1 when a
 * slot was freed. */
static int
evict(struct httpd *h)
{
	size_t victim = SIZE_MAX;

	for (size_t i = 0; i < (size_t)h->max_conns; i++) {
		const struct conn *c = h->conns[i];

		if (c == NULL || (c->state != ST_HEAD && c->state != ST_BODY))
			continue;
		if (victim == SIZE_MAX || c->opened < h->conns[victim]->opened)
			victim = i;
	}
	if (victim == SIZE_MAX)
		return 0;
	log_debug(h->log, "%s: closed to make room for a new connection",
	          h->conns[victim]->peer);
	conn_close(h, victim);
	return 1;
}

static void
accept_some(struct httpd *h)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int i, fd;

	for (i = 0; i < ACCEPT_BURST; i++) {
		memset(&ss, 0, sizeof(ss));
		len = sizeof(ss);
		fd = accept4(h->fd, (struct sockaddr *)&ss, &len,
		             SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* The backlog keeps the client; retrying at
				 * once would spin. */
				log_warn(h->log, "%s: accept: %s", h->address,
				         strerror(errno));
				h->accept_paused_until = h->now + ACCEPT_PAUSE;
			}
			return;
		}
		if (h->nconns >= (size_t)h->max_conns && !evict(h))
			refuse(h, fd, &ss);
		else
			conn_open(h, fd, &ss);
	}
}

/* --- the loop ------------------------------------------------------------- */

static short
conn_events(const struct conn *c)
{
	short ev = 0;

	if (c->out.len > 0)
		ev |= POLLOUT;
	if (c->state != ST_WRITE && !c->peer_eof)
		ev |= POLLIN;
	return ev;
}

int
httpd_poll(struct httpd *h, long timeout_ms, int wake_fd,
           struct soar_error *err)
{
	long long wait, next;
	size_t i, n = 0, listen_at = SIZE_MAX;
	int rc;

	h->now = now_ms();
	h->dispatched = 0;
	next = timeout_ms < 0 ? LLONG_MAX : h->now + timeout_ms;
	if (wake_fd >= 0) {
		h->pfd[n] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
		h->pslot[n++] = -1;
	}
	if (h->accept_paused_until <= h->now) {
		listen_at = n;
		h->pfd[n] = (struct pollfd){.fd = h->fd, .events = POLLIN};
		h->pslot[n++] = -1;
	} else if (h->accept_paused_until < next) {
		next = h->accept_paused_until;
	}
	for (i = 0; i < (size_t)h->max_conns; i++) {
		const struct conn *c = h->conns[i];

		if (c == NULL)
			continue;
		h->pfd[n] =
		        (struct pollfd){.fd = c->fd, .events = conn_events(c)};
		h->pslot[n++] = (int)i;
		if (c->deadline < next)
			next = c->deadline;
	}
	wait = next == LLONG_MAX ? -1 : next - h->now;
	if (wait < 0 && next != LLONG_MAX)
		wait = 0;
	if (wait > INT_MAX)
		wait = INT_MAX;
	rc = poll(h->pfd, n, (int)wait);
	if (rc < 0 && errno == EINTR)
		return 0;
	if (rc < 0) {
		soar_error_set(err, "poll", "%s: poll: %s", h->address,
		               strerror(errno));
		return -1;
	}
	h->now = now_ms();
	for (i = 0; i < n; i++)
		if (h->pslot[i] >= 0)
			conn_event(h, (size_t)h->pslot[i], h->pfd[i].revents);
	if (listen_at != SIZE_MAX && (h->pfd[listen_at].revents & POLLIN))
		accept_some(h);
	return h->dispatched;
}

/* --- accessors ------------------------------------------------------------ */

int
httpd_port(const struct httpd *h)
{
	return h->port;
}

const char *
httpd_address(const struct httpd *h)
{
	return h->address;
}

size_t
httpd_connections(const struct httpd *h)
{
	return h->nconns;
}

void
httpd_free(struct httpd *h)
{
	size_t i;

	if (h == NULL)
		return;
	if (h->conns != NULL)
		for (i = 0; i < (size_t)h->max_conns; i++)
			conn_close(h, i);
	if (h->fd >= 0)
		close(h->fd);
	explicit_bzero(h->cred_md, sizeof(h->cred_md));
	free(h->conns);
	free(h->pfd);
	free(h->pslot);
	free(h->health_path);
	free(h->www_auth);
	free(h);
}
