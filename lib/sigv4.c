/* sigv4.c: AWS Signature Version 4, by header and by presigned URL. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "error.h"
#include "sigv4.h"

#define ALGORITHM   "AWS4-HMAC-SHA256"
#define EXPIRES_MAX 604800L /* seven days, the longest AWS accepts */
#define SHA256_LEN  32

/* Headers never signed: hop-by-hop headers a proxy may rewrite, headers
 * curl or a load balancer may add or drop, and the Authorization header
 * the signature goes into. */
static const char *const unsigned_headers[] = {
        "authorization",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
};

/* The parts of the URL the signature covers, borrowed from the URL. */
struct url {
	size_t base_len;  /* the URL up to its fragment */
	const char *path; /* path_len bytes; "/" when the URL has none */
	size_t path_len;
	const char *query; /* query_len bytes after '?' */
	size_t query_len;
	int has_query; /* the URL has a '?' */
};

/* A name and a value stored in an arena as offsets (the arena may move
 * while it grows); idx is the input order, which breaks ties. */
struct pair {
	size_t name, name_len, value, value_len, idx;
	const char *base; /* the arena, set once it is complete */
};

struct pairs {
	struct buf text;
	struct pair *v;
	size_t n, cap;
};

/* One signing: the inputs, and the texts computed from them. */
struct ctx {
	const struct sigv4_request *r;
	const struct sigv4_creds *c;
	int presign;
	long expires;
	const char *token;        /* the session token, or NULL */
	const char *signed_token; /* token when it is signed, or NULL */
	char amz_date[17];
	char date[9];
	char payload_hash[2 * SHA256_LEN + 1];
	char signature[2 * SHA256_LEN + 1];
	struct url url;
	struct buf host;
	struct buf scope;
	struct buf signed_headers;
	struct buf creq;
	struct buf sts;
};

static int
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Appends s[0..n) URI-encoded: unreserved bytes as they are, '/' too when
 * keep_slash, every other byte as %XX.  With decode, an escape %XX in s
 * is decoded first, so an escaped '/' stays escaped.  Returns 0 or -1
 * (ENOMEM). */
static int
uri_encode(struct buf *b, const char *s, size_t n, int keep_slash, int decode)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int escaped = 0, rc;

		if (decode && c == '%' && n - i > 2 &&
		    hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
			c = (unsigned char)(hex_value(s[i + 1]) * 16 +
			                    hex_value(s[i + 2]));
			i += 2;
			escaped = 1;
		}
		if (is_unreserved(c) || (keep_slash && c == '/' && !escaped)) {
			rc = buf_putc(b, c);
		} else {
			char e[3] = {'%', digits[c >> 4], digits[c & 15]};

			rc = buf_append(b, e, 3);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Appends the header value s with leading and trailing whitespace removed
 * and each inner run of whitespace (line folding included) made one
 * space.  Returns 0 or -1 (ENOMEM). */
static int
put_header_value(struct buf *b, const char *s)
{
	int started = 0, space = 0;

	for (; *s != '\0'; s++) {
		if (is_ws(*s)) {
			space = started;
			continue;
		}
		if ((space && buf_putc(b, ' ') < 0) || buf_putc(b, *s) < 0)
			return -1;
		started = 1;
		space = 0;
	}
	return 0;
}

static int
put_lower(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++)
		if (buf_putc(b, *s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s) <
		    0)
			return -1;
	return 0;
}

/* Returns a new entry at the end of p, its name and value starting at the
 * arena's end, or NULL on ENOMEM. */
static struct pair *
pair_new(struct pairs *p)
{
	struct pair *e;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;

		if (cap > SIZE_MAX / sizeof(*e))
			return NULL;
		e = realloc(p->v, cap * sizeof(*e));
		if (e == NULL)
			return NULL;
		p->v = e;
		p->cap = cap;
	}
	e = &p->v[p->n];
	memset(e, 0, sizeof(*e));
	e->idx = p->n++;
	e->name = p->text.len;
	return e;
}

static void
pairs_free(struct pairs *p)
{
	buf_free(&p->text);
	free(p->v);
}

static int
cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
	int d = memcmp(a, b, an < bn ? an : bn);

	if (d != 0)
		return d;
	return an < bn ? -1 : an > bn;
}

static int
cmp_name(const struct pair *a, const struct pair *b)
{
	return cmp_bytes(a->base + a->name, a->name_len, b->base + b->name,
	                 b->name_len);
}

/* Headers: by name, repeated names in the order given. */
static int
cmp_header(const void *va, const void *vb)
{
	const struct pair *a = va, *b = vb;
	int d = cmp_name(a, b);

	if (d != 0)
		return d;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Query parameters: by name, then by value. */
static int
cmp_param(const void *va, const void *vb)
{
	const struct pair *a = va, *b = vb;
	int d = cmp_name(a, b);

	if (d != 0)
		return d;
	d = cmp_bytes(a->base + a->value, a->value_len, b->base + b->value,
	              b->value_len);
	if (d != 0)
		return d;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static void
pairs_sort(struct pairs *p, int (*cmp)(const void *, const void *))
{
	size_t i;

	for (i = 0; i < p->n; i++)
		p->v[i].base = p->text.data;
	if (p->n > 1)
		qsort(p->v, p->n, sizeof(*p->v), cmp);
}

static int
fail_nomem(struct soar_error *err)
{
	soar_error_set(err, "nomem", "sigv4: out of memory");
	return -1;
}

/* Splits the URL s into the parts the signature covers and sets host to
 * its host[:port], the port left out when it is the scheme's default.
 * Returns 0, or -1 with err set ("input"). */
static int
parse_url(const char *s, struct url *u, struct buf *host,
          struct soar_error *err)
{
	const char *auth, *end, *hend, *p;
	long port = -1;
	int https;

	if (strncasecmp(s, "https://", 8) == 0) {
		https = 1;
		auth = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		https = 0;
		auth = s + 7;
	} else {
		soar_error_set(err, "input",
		               "sigv4: URL does not start with http:// or "
		               "https://");
		return -1;
	}
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			soar_error_set(err, "input",
			               "sigv4: URL holds a control character");
			return -1;
		}
	end = auth + strcspn(auth, "/?#");
	if (auth < end && *auth == '[') {
		/* An IPv6 literal: its colons are not a port. */
		hend = memchr(auth, ']', (size_t)(end - auth));
		if (hend == NULL) {
			soar_error_set(err, "input",
			               "sigv4: URL has an unclosed '['");
			return -1;
		}
		hend++;
		if (hend < end && *hend != ':') {
			soar_error_set(err, "input",
			               "sigv4: URL host has bytes after ']'");
			return -1;
		}
	} else {
		for (p = auth; p < end && *p != ':'; p++)
			;
		hend = p;
	}
	if (hend == auth || memchr(auth, '@', (size_t)(end - auth)) != NULL ||
	    memchr(auth, ' ', (size_t)(end - auth)) != NULL) {
		soar_error_set(err, "input",
		               "sigv4: URL has no host, or user info or a "
		               "space in its authority");
		return -1;
	}
	if (hend < end) {
		/* ":port": 1 to 65535, digits only. */
		port = 0;
		for (p = hend + 1; p < end && *p >= '0' && *p <= '9'; p++)
			port = port > 65535 ? port : port * 10 + (*p - '0');
		if (p != end || p == hend + 1 || port < 1 || port > 65535) {
			soar_error_set(err, "input",
			               "sigv4: URL has a bad port number");
			return -1;
		}
	}
	if (buf_append(host, auth, (size_t)(hend - auth)) < 0 ||
	    (port != -1 && port != (https ? 443 : 80) &&
	     buf_printf(host, ":%ld", port) < 0))
		return fail_nomem(err);
	u->path = end;
	u->path_len = strcspn(end, "?#");
	u->has_query = end[u->path_len] == '?';
	u->query = end + u->path_len + (u->has_query ? 1 : 0);
	u->query_len = u->has_query ? strcspn(u->query, "#") : 0;
	u->base_len = (size_t)(u->query + u->query_len - s);
	if (u->path_len == 0) {
		u->path = "/";
		u->path_len = 1;
	}
	return 0;
}

/* Appends the canonical URI of path[0..n): normalised and encoded again
 * (every service but S3), or as sent, encoded once (keep_path).  Returns
 * 0 or -1 (ENOMEM). */
static int
put_canonical_path(struct buf *b, const char *path, size_t n, int keep_path)
{
	struct {
		size_t off, len;
	} * seg;
	size_t nseg = 0, i = 0, j, start;
	int rc = 0;

	if (keep_path)
		return uri_encode(b, path, n, 1, 1);
	/* At most n/2 + 1 segments, since each but one follows a '/'. */
	seg = calloc(n / 2 + 1, sizeof(*seg));
	if (seg == NULL)
		return -1;
	while (i < n) {
		while (i < n && path[i] == '/')
			i++;
		start = i;
		while (i < n && path[i] != '/')
			i++;
		if (i == start || (i - start == 1 && path[start] == '.'))
			continue;
		if (i - start == 2 && path[start] == '.' &&
		    path[start + 1] == '.') {
			if (nseg > 0)
				nseg--;
			continue;
		}
		seg[nseg].off = start;
		seg[nseg].len = i - start;
		nseg++;
	}
	for (j = 0; j < nseg && rc == 0; j++)
		if (buf_putc(b, '/') < 0 ||
		    uri_encode(b, path + seg[j].off, seg[j].len, 0, 0) < 0)
			rc = -1;
	/* A trailing slash stays; an empty path is "/". */
	if (rc == 0 && (nseg == 0 || path[n - 1] == '/'))
		rc = buf_putc(b, '/');
	free(seg);
	return rc;
}

static int
skip_header(const struct ctx *x, const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(unsigned_headers) / sizeof(*unsigned_headers);
	     i++)
		if (strcasecmp(name, unsigned_headers[i]) == 0)
			return 1;
	/* The signer sets these itself. */
	if (strcasecmp(name, "host") == 0 ||
	    strcasecmp(name, "x-amz-date") == 0)
		return 1;
	if (x->token != NULL && strcasecmp(name, "x-amz-security-token") == 0)
		return 1;
	return !x->presign && x->r->sign_body &&
	       strcasecmp(name, "x-amz-content-sha256") == 0;
}

static int
add_header(struct pairs *h, const char *name, const char *value)
{
	struct pair *e = pair_new(h);

	if (e == NULL || put_lower(&h->text, name) < 0)
		return -1;
	e->name_len = h->text.len - e->name;
	e->value = h->text.len;
	if (put_header_value(&h->text, value) < 0)
		return -1;
	e->value_len = h->text.len - e->value;
	return 0;
}

/* Appends the canonical headers (each "name:value\n") to out and sets
 * x->signed_headers.  Returns 0 or -1 with err set. */
static int
canonical_headers(struct ctx *x, struct buf *out, struct soar_error *err)
{
	const struct sigv4_request *r = x->r;
	struct pairs h = {BUF_INIT, NULL, 0, 0};
	size_t i;
	int rc = -1;

	for (i = 0; i < r->nheaders; i++) {
		const struct http_header *g = &r->headers[i];

		if (g->name == NULL || g->name[0] == '\0' || g->value == NULL) {
			soar_error_set(err, "input",
			               "sigv4: header %zu has no name or value",
			               i + 1);
			goto out;
		}
		if (!skip_header(x, g->name) &&
		    add_header(&h, g->name, g->value) < 0)
			goto nomem;
	}
	if (add_header(&h, "host", x->host.data) < 0)
		goto nomem;
	if (!x->presign) {
		if (add_header(&h, "x-amz-date", x->amz_date) < 0 ||
		    (r->sign_body && add_header(&h, "x-amz-content-sha256",
		                                x->payload_hash) < 0) ||
		    (x->signed_token != NULL &&
		     add_header(&h, "x-amz-security-token", x->signed_token) <
		             0))
			goto nomem;
	}
	pairs_sort(&h, cmp_header);
	for (i = 0; i < h.n; i++) {
		const struct pair *e = &h.v[i];
		const char *name = h.text.data + e->name;
		int again = i > 0 && cmp_name(&h.v[i - 1], e) == 0;

		/* A repeated header: its values joined with ','. */
		if (again) {
			if (buf_putc(out, ',') < 0)
				goto nomem;
		} else if ((i > 0 && buf_putc(out, '\n') < 0) ||
		           buf_append(out, name, e->name_len) < 0 ||
		           buf_putc(out, ':') < 0 ||
		           (i > 0 && buf_putc(&x->signed_headers, ';') < 0) ||
		           buf_append(&x->signed_headers, name, e->name_len) <
		                   0)
			goto nomem;
		if (buf_append(out, h.text.data + e->value, e->value_len) < 0)
			goto nomem;
	}
	if (buf_putc(out, '\n') < 0)
		goto nomem;
	rc = 0;
	goto out;
nomem:
	fail_nomem(err);
out:
	pairs_free(&h);
	return rc;
}

/* Adds name=value (value_len bytes) to q, both encoded; decode says
 * whether escapes in them are decoded first (they come from the URL). */
static int
add_param(struct pairs *q, const char *name, size_t name_len, const char *value,
          size_t value_len, int decode)
{
	struct pair *e = pair_new(q);

	if (e == NULL || uri_encode(&q->text, name, name_len, 0, decode) < 0)
		return -1;
	e->name_len = q->text.len - e->name;
	e->value = q->text.len;
	if (uri_encode(&q->text, value, value_len, 0, decode) < 0)
		return -1;
	e->value_len = q->text.len - e->value;
	return 0;
}

/* Adds the parameter name=value, both NUL-terminated and not escaped. */
static int
add_param_str(struct pairs *q, const char *name, const char *value)
{
	return add_param(q, name, strlen(name), value, strlen(value), 0);
}

/* Adds the X-Amz-* parameters of a presigned URL but the signature to
 * q, in the order the URL carries them; with_token says whether the token
 * is among them (it is not in the signed query when it is added after
 * signing).  Returns 0 or -1 (ENOMEM). */
static int
presign_params(const struct ctx *x, struct pairs *q, int with_token)
{
	char expires[24];
	struct buf cred = BUF_INIT;
	int rc = -1, n;

	n = snprintf(expires, sizeof(expires), "%ld", x->expires);
	if (n < 0 || (size_t)n >= sizeof(expires) ||
	    buf_printf(&cred, "%s/%s", x->c->access_key, x->scope.data) < 0)
		goto out;
	if (add_param_str(q, "X-Amz-Algorithm", ALGORITHM) < 0 ||
	    add_param_str(q, "X-Amz-Credential", cred.data) < 0 ||
	    add_param_str(q, "X-Amz-Date", x->amz_date) < 0 ||
	    add_param_str(q, "X-Amz-SignedHeaders", x->signed_headers.data) <
	            0 ||
	    add_param_str(q, "X-Amz-Expires", expires) < 0)
		goto out;
	if (with_token && x->token != NULL &&
	    add_param_str(q, "X-Amz-Security-Token", x->token) < 0)
		goto out;
	rc = 0;
out:
	buf_free(&cred);
	return rc;
}

/* Appends the canonical query string to out: the URL's parameters
 * and, when presigning, the X-Amz-* ones, sorted.  Returns 0 or -1 with
 * err set. */
static int
canonical_query(const struct ctx *x, struct buf *out, struct soar_error *err)
{
	struct pairs q = {BUF_INIT, NULL, 0, 0};
	const char *p = x->url.query, *end = p + x->url.query_len;
	size_t i;
	int rc = -1;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *eq;

		if (amp == NULL)
			amp = end;
		if (amp > p) {
			/* A name without '=' has an empty value. */
			eq = memchr(p, '=', (size_t)(amp - p));
			if (eq == NULL)
				eq = amp;
			if (add_param(&q, p, (size_t)(eq - p),
			              eq < amp ? eq + 1 : amp,
			              (size_t)(amp - (eq < amp ? eq + 1 : amp)),
			              1) < 0)
				goto out;
		}
		p = amp + 1;
	}
	if (x->presign && presign_params(x, &q, x->signed_token != NULL) < 0)
		goto out;
	pairs_sort(&q, cmp_param);
	for (i = 0; i < q.n; i++)
		if ((i > 0 && buf_putc(out, '&') < 0) ||
		    buf_append(out, q.text.data + q.v[i].name,
		               q.v[i].name_len) < 0 ||
		    buf_putc(out, '=') < 0 ||
		    buf_append(out, q.text.data + q.v[i].value,
		               q.v[i].value_len) < 0)
			goto out;
	rc = 0;
out:
	if (rc < 0)
		fail_nomem(err);
	pairs_free(&q);
	return rc;
}

static int
sha256_hex(const void *p, size_t n, char *out, struct soar_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 ||
	    len != SHA256_LEN) {
		soar_error_set(err, "crypto", "sigv4: SHA-256 failed");
		return -1;
	}
	hex(md, len, out);
	return 0;
}

static int
hmac(const void *key, size_t key_len, const char *msg, size_t msg_len,
     unsigned char out[SHA256_LEN])
{
	unsigned int len = 0;

	if (key_len > INT_MAX ||
	    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg,
	         msg_len, out, &len) == NULL ||
	    len != SHA256_LEN)
		return -1;
	return 0;
}

/* Computes x->signature from x->sts: the signing key is the HMAC chain
 * "AWS4"+secret, date, region, service, "aws4_request".  Key material is
 * wiped.  Returns 0 or -1 with err set. */
static int
sign_sts(struct ctx *x, struct soar_error *err)
{
	const struct sigv4_request *r = x->r;
	unsigned char k1[SHA256_LEN], k2[SHA256_LEN], sig[SHA256_LEN];
	size_t slen = strlen(x->c->secret_key);
	char *secret;
	int rc = -1;

	if (slen > SIZE_MAX - 4 || (secret = malloc(slen + 4)) == NULL)
		return fail_nomem(err);
	memcpy(secret, "AWS4", 4);
	memcpy(secret + 4, x->c->secret_key, slen);
	if (hmac(secret, slen + 4, x->date, 8, k1) == 0 &&
	    hmac(k1, sizeof(k1), r->region, strlen(r->region), k2) == 0 &&
	    hmac(k2, sizeof(k2), r->service, strlen(r->service), k1) == 0 &&
	    hmac(k1, sizeof(k1), "aws4_request", 12, k2) == 0 &&
	    hmac(k2, sizeof(k2), x->sts.data, x->sts.len, sig) == 0) {
		hex(sig, sizeof(sig), x->signature);
		rc = 0;
	} else
		soar_error_set(err, "crypto", "sigv4: HMAC-SHA256 failed");
	explicit_bzero(secret, slen + 4);
	free(secret);
	explicit_bzero(k1, sizeof(k1));
	explicit_bzero(k2, sizeof(k2));
	return rc;
}

static int
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static int
check_inputs(const struct sigv4_request *r, const struct sigv4_creds *c,
             struct soar_error *err)
{
	const char *what = NULL;

	if (r == NULL || c == NULL)
		what = "request or credentials";
	else if (!nonempty(r->method) || strpbrk(r->method, " \t\r\n") != NULL)
		what = "method";
	else if (r->url == NULL)
		what = "URL";
	else if (!nonempty(r->region) || strchr(r->region, '/') != NULL)
		what = "region";
	else if (!nonempty(r->service) || strchr(r->service, '/') != NULL)
		what = "service";
	else if (!nonempty(c->access_key) || !nonempty(c->secret_key))
		what = "access key or secret key";
	else if (r->body == NULL && r->body_len > 0)
		what = "body";
	else if (r->headers == NULL && r->nheaders > 0)
		what = "headers";
	if (what == NULL)
		return 0;
	soar_error_set(err, "input", "sigv4: missing or bad %s", what);
	return -1;
}

static void
ctx_free(struct ctx *x)
{
	buf_free(&x->host);
	buf_free(&x->scope);
	buf_free(&x->signed_headers);
	buf_free(&x->creq);
	buf_free(&x->sts);
}

/* Runs the algorithm up to the signature.  On return (0, or -1 with err
 * set) *x holds what was computed; release it with ctx_free. */
static int
ctx_run(struct ctx *x, const struct sigv4_request *r,
        const struct sigv4_creds *c, int presign, long expires,
        struct soar_error *err)
{
	struct tm tm;
	char creq_hash[2 * SHA256_LEN + 1];
	struct buf headers = BUF_INIT;
	int rc = -1;

	memset(x, 0, sizeof(*x));
	if (check_inputs(r, c, err) < 0)
		return -1;
	x->r = r;
	x->c = c;
	x->presign = presign;
	x->expires = expires;
	if (presign && (expires < 1 || expires > EXPIRES_MAX)) {
		soar_error_set(
		        err, "input",
		        "sigv4: expiry of %ld seconds is not within 1 to "
		        "%ld",
		        expires, EXPIRES_MAX);
		return -1;
	}
	x->token = nonempty(c->token) ? c->token : NULL;
	x->signed_token = r->token_unsigned ? NULL : x->token;
	/* Not strftime(3): it reads the time zone file, a cost at start-up
	 * for a UTC stamp. */
	if (gmtime_r(&r->now, &tm) == NULL || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900 ||
	    snprintf(x->amz_date, sizeof(x->amz_date),
	             "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900,
	             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	             tm.tm_sec) != 16) {
		soar_error_set(err, "input",
		               "sigv4: signing time out of range");
		return -1;
	}
	memcpy(x->date, x->amz_date, 8);
	x->date[8] = '\0';
	if (parse_url(r->url, &x->url, &x->host, err) < 0)
		return -1;
	if (sha256_hex(r->body ? r->body : "", r->body_len, x->payload_hash,
	               err) < 0)
		return -1;
	if (buf_printf(&x->scope, "%s/%s/%s/aws4_request", x->date, r->region,
	               r->service) < 0)
		return fail_nomem(err);
	/* The headers come first: a presigned query lists their names. */
	if (canonical_headers(x, &headers, err) < 0)
		goto out;
	if (buf_puts(&x->creq, r->method) < 0 || buf_putc(&x->creq, '\n') < 0 ||
	    put_canonical_path(&x->creq, x->url.path, x->url.path_len,
	                       r->keep_path) < 0 ||
	    buf_putc(&x->creq, '\n') < 0) {
		fail_nomem(err);
		goto out;
	}
	if (canonical_query(x, &x->creq, err) < 0)
		goto out;
	if (buf_putc(&x->creq, '\n') < 0 ||
	    buf_append(&x->creq, headers.data, headers.len) < 0 ||
	    buf_printf(&x->creq, "\n%s\n%s", x->signed_headers.data,
	               x->payload_hash) < 0) {
		fail_nomem(err);
		goto out;
	}
	if (sha256_hex(x->creq.data, x->creq.len, creq_hash, err) < 0)
		goto out;
	if (buf_printf(&x->sts, ALGORITHM "\n%s\n%s\n%s", x->amz_date,
	               x->scope.data, creq_hash) < 0) {
		fail_nomem(err);
		goto out;
	}
	rc = sign_sts(x, err);
out:
	buf_free(&headers);
	return rc;
}

void
sigv4_signed_init(struct sigv4_signed *out)
{
	memset(out, 0, sizeof(*out));
	out->authorization = (struct buf)BUF_INIT;
}

void
sigv4_signed_free(struct sigv4_signed *out)
{
	if (out == NULL)
		return;
	buf_free(&out->authorization);
	out->nheaders = 0;
}

int
sigv4_sign(const struct sigv4_request *r, const struct sigv4_creds *c,
           struct sigv4_signed *out, struct soar_error *err)
{
	struct ctx x;
	size_t n = 0;
	int rc = -1;

	out->nheaders = 0;
	buf_clear(&out->authorization);
	if (ctx_run(&x, r, c, 0, 0, err) < 0)
		goto out;
	if (buf_printf(&out->authorization,
	               ALGORITHM " Credential=%s/%s, SignedHeaders=%s, "
	                         "Signature=%s",
	               c->access_key, x.scope.data, x.signed_headers.data,
	               x.signature) < 0) {
		fail_nomem(err);
		goto out;
	}
	memcpy(out->amz_date, x.amz_date, sizeof(out->amz_date));
	out->headers[n++] = (struct http_header){"X-Amz-Date", out->amz_date};
	if (r->sign_body) {
		memcpy(out->content_sha256, x.payload_hash,
		       sizeof(out->content_sha256));
		out->headers[n++] = (struct http_header){"X-Amz-Content-Sha256",
		                                         out->content_sha256};
	}
	if (x.token != NULL)
		out->headers[n++] =
		        (struct http_header){"X-Amz-Security-Token", x.token};
	out->headers[n++] =
	        (struct http_header){"Authorization", out->authorization.data};
	out->nheaders = n;
	rc = 0;
out:
	ctx_free(&x);
	return rc;
}

/* Copies src to dst (cleared first) when dst is not NULL. */
static int
copy_text(struct buf *dst, const struct buf *src, struct soar_error *err)
{
	if (dst == NULL)
		return 0;
	if (buf_append(dst, src->data, src->len) < 0)
		return fail_nomem(err);
	return 0;
}

int
sigv4_canonical_request(const struct sigv4_request *r,
                        const struct sigv4_creds *c, struct buf *creq,
                        struct soar_error *err)
{
	struct ctx x;
	int rc;

	buf_clear(creq);
	rc = ctx_run(&x, r, c, 0, 0, err);
	if (rc == 0)
		rc = copy_text(creq, &x.creq, err);
	ctx_free(&x);
	return rc;
}

int
sigv4_string_to_sign(const struct sigv4_request *r, const struct sigv4_creds *c,
                     struct buf *sts, struct soar_error *err)
{
	struct ctx x;
	int rc;

	buf_clear(sts);
	rc = ctx_run(&x, r, c, 0, 0, err);
	if (rc == 0)
		rc = copy_text(sts, &x.sts, err);
	ctx_free(&x);
	return rc;
}

int
sigv4_presign_texts(const struct sigv4_request *r, const struct sigv4_creds *c,
                    long expires, struct buf *creq, struct buf *sts,
                    struct soar_error *err)
{
	struct ctx x;
	int rc;

	if (creq != NULL)
		buf_clear(creq);
	if (sts != NULL)
		buf_clear(sts);
	rc = ctx_run(&x, r, c, 1, expires, err);
	if (rc == 0)
		rc = copy_text(creq, &x.creq, err);
	if (rc == 0)
		rc = copy_text(sts, &x.sts, err);
	ctx_free(&x);
	return rc;
}

int
sigv4_presign(const struct sigv4_request *r, const struct sigv4_creds *c,
              long expires, struct buf *out, struct soar_error *err)
{
	struct pairs q = {BUF_INIT, NULL, 0, 0};
	struct ctx x;
	size_t i;
	int rc = -1;

	buf_clear(out);
	if (ctx_run(&x, r, c, 1, expires, err) < 0)
		goto out;
	/* The URL's own query first, then the X-Amz-* parameters; the token
	 * is there even when it was not signed. */
	if (presign_params(&x, &q, 1) < 0 ||
	    add_param_str(&q, "X-Amz-Signature", x.signature) < 0 ||
	    buf_append(out, r->url, x.url.base_len) < 0 ||
	    (x.url.query_len > 0 && buf_putc(out, '&') < 0) ||
	    (!x.url.has_query && buf_putc(out, '?') < 0))
		goto nomem;
	for (i = 0; i < q.n; i++)
		if ((i > 0 && buf_putc(out, '&') < 0) ||
		    buf_append(out, q.text.data + q.v[i].name,
		               q.v[i].name_len) < 0 ||
		    buf_putc(out, '=') < 0 ||
		    buf_append(out, q.text.data + q.v[i].value,
		               q.v[i].value_len) < 0)
			goto nomem;
	rc = 0;
	goto out;
nomem:
	fail_nomem(err);
	buf_clear(out);
out:
	pairs_free(&q);
	ctx_free(&x);
	return rc;
}
