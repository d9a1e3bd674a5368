/*
 * fuzz_sigv4.c: the SigV4 canonicaliser and signer (lib/sigv4.h):
 * sigv4_canonical_request, sigv4_string_to_sign, sigv4_sign,
 * sigv4_presign_texts and sigv4_presign, at the AWS suite's fixed time
 * with its fixed keys.
 *
 * The input is a raw HTTP request as in ../shared/corpus/sigv4: a request
 * line (METHOD target HTTP/1.1, the target may hold spaces), header lines
 * (an indented line continues the value), an empty line and the body.  The
 * URL is https:// + Host + target.  Every string goes to the signer in its
 * own exactly sized buffer, the body without a NUL.  Each request is
 * signed four ways: normalised path or S3's, with or without a session
 * token, signed or added after signing, with and without the payload hash
 * header.
 *
 * Invariants: the three header-signing calls succeed or fail together,
 * with the same error code ("input" when a header has no name), and two
 * calls give the same texts; a canonical request is method, URI, query,
 * headers, an empty line, signed headers and the payload hash; the URI
 * and query are exactly what sigv4.h describes (computed here again: path
 * normalised and encoded, or encoded once with escapes kept; parameters
 * decoded, encoded and sorted); the headers are the ones given, lower
 * case, without the ones never signed, values trimmed and folded, sorted,
 * repeats joined with ',', plus host, x-amz-date and what the signer adds;
 * the string to sign holds the SHA-256 of the canonical request; the
 * Authorization and the presigned URL's X-Amz-Signature are the HMAC
 * chain over it (computed here with OpenSSL); the headers returned are the
 * documented ones in order.
 */
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "error.h"
#include "fuzz.h"
#include "sigv4.h"

#define KEY         "AKIDEXAMPLE"
#define SECRET      "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN       "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa3"
#define REGION      "us-east-1"
#define SERVICE     "service"
#define NOW         1440938160 /* 2015-08-30T12:36:00Z */
#define AMZ_DATE    "20150830T123600Z"
#define SCOPE       "20150830/" REGION "/" SERVICE "/aws4_request"
#define MAX_HEADERS 32

struct req {
	char *method, *url, *body;
	size_t body_len;
	struct http_header h[MAX_HEADERS];
	size_t nh;
};

static void
req_free(struct req *q)
{
	free(q->method);
	free(q->url);
	free(q->body);
	for (size_t i = 0; i < q->nh; i++) {
		free((char *)q->h[i].name);
		free((char *)q->h[i].value);
	}
}

static void
put(struct buf *b, const void *p, size_t n)
{
	if (buf_append(b, p, n) < 0)
		abort();
}

/* Parses the raw request p[0..n) into q (each string exactly sized). */
static void
parse_request(const char *p, size_t n, struct req *q)
{
	const char *end = p + n, *eol, *sp, *target = "/", *host = NULL;
	size_t len, tlen = 1, hlen = 0;
	struct buf url = BUF_INIT, val = BUF_INIT;

	memset(q, 0, sizeof(*q));
	eol = memchr(p, '\n', n);
	len = (size_t)((eol ? eol : end) - p);
	if (len > 0 && p[len - 1] == '\r')
		len--;
	sp = memchr(p, ' ', len);
	q->method = fuzz_str(p, sp ? (size_t)(sp - p) : len);
	if (sp != NULL) {
		const char *last = p + len;

		while (last > sp + 1 && last[-1] != ' ')
			last--;
		target = sp + 1;
		tlen = (size_t)(last > sp + 1 ? last - 1 - target
		                              : p + len - target);
	}
	for (p = eol ? eol + 1 : end; p < end; p = eol ? eol + 1 : end) {
		const char *colon;
		size_t k, skip;

		eol = memchr(p, '\n', (size_t)(end - p));
		len = (size_t)((eol ? eol : end) - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0) {
			p = eol ? eol + 1 : end;
			break;
		}
		if ((*p == ' ' || *p == '\t') && q->nh > 0) {
			/* A folded line goes on with the value, CRLF too. */
			char *v = (char *)q->h[q->nh - 1].value;

			buf_clear(&val);
			put(&val, v, strlen(v));
			put(&val, "\r\n", 2);
			put(&val, p, len);
			free(v);
			q->h[q->nh - 1].value = fuzz_str(val.data, val.len);
			continue;
		}
		if (q->nh == MAX_HEADERS)
			continue;
		/* Without a ':', the line is a name with an empty value. */
		colon = memchr(p, ':', len);
		k = colon ? (size_t)(colon - p) : len;
		skip = colon ? 1 : 0;
		q->h[q->nh].name = fuzz_str(p, k);
		q->h[q->nh].value = fuzz_str(p + k + skip, len - k - skip);
		q->nh++;
	}
	/* The first Host header names the host, trimmed. */
	for (size_t i = 0; i < q->nh && host == NULL; i++)
		if (strcasecmp(q->h[i].name, "host") == 0) {
			host = q->h[i].value;
			hlen = strlen(host);
			while (hlen > 0 && (*host == ' ' || *host == '\t')) {
				host++;
				hlen--;
			}
			while (hlen > 0 && (host[hlen - 1] == ' ' ||
			                    host[hlen - 1] == '\t'))
				hlen--;
		}
	put(&url, "https://", 8);
	if (host != NULL)
		put(&url, host, hlen);
	else
		put(&url, "example.amazonaws.com", 21);
	put(&url, target, tlen);
	q->url = fuzz_str(url.data, url.len);
	if (p < end) {
		q->body = fuzz_bytes(p, (size_t)(end - p));
		q->body_len = (size_t)(end - p);
	}
	buf_free(&url);
	buf_free(&val);
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void
sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	FUZZ_CHECK(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) == 1);
	hex(md, len, out);
}

static void
hmac(const void *key, size_t klen, const char *msg, size_t mlen,
     unsigned char out[32])
{
	unsigned int len = 0;

	FUZZ_CHECK(HMAC(EVP_sha256(), key, (int)klen,
	                (const unsigned char *)msg, mlen, out, &len) != NULL);
}

/* The signature of the string to sign sts, by the HMAC chain. */
static void
signature(const char *sts, char out[65])
{
	unsigned char k1[32], k2[32];

	hmac("AWS4" SECRET, strlen("AWS4" SECRET), "20150830", 8, k1);
	hmac(k1, 32, REGION, strlen(REGION), k2);
	hmac(k2, 32, SERVICE, strlen(SERVICE), k1);
	hmac(k1, 32, "aws4_request", 12, k2);
	hmac(k2, 32, sts, strlen(sts), k1);
	hex(k1, 32, out);
}

static int
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

/* sigv4.h's URI encoding of s[0..n): unreserved bytes kept, '/' too when
 * slash (unless it came from an escape), escapes decoded first when
 * decode, every other byte %XX. */
static void
encode(struct buf *b, const char *s, size_t n, int slash, int decode)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int esc = 0;
		char e[4];

		if (decode && c == '%' && i + 2 < n &&
		    hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
			c = (unsigned char)(hex_value(s[i + 1]) * 16 +
			                    hex_value(s[i + 2]));
			i += 2;
			esc = 1;
		}
		if (unreserved(c) || (slash && c == '/' && !esc)) {
			put(b, &c, 1);
		} else {
			snprintf(e, sizeof(e), "%%%02X", c);
			put(b, e, 3);
		}
	}
}

/* The canonical URI of path[0..n), as sigv4.h describes it. */
static void
want_path(struct buf *b, const char *path, size_t n, int keep_path)
{
	size_t(*seg)[2] = calloc(n / 2 + 1, sizeof(*seg));
	size_t nseg = 0, i = 0, start;

	if (seg == NULL)
		abort();
	if (keep_path)
		encode(b, path, n, 1, 1);
	while (!keep_path && i < n) {
		while (i < n && path[i] == '/')
			i++;
		start = i;
		while (i < n && path[i] != '/')
			i++;
		if (i == start || (i - start == 1 && path[start] == '.'))
			continue;
		if (i - start == 2 && path[start] == '.' &&
		    path[start + 1] == '.') {
			nseg -= nseg > 0;
			continue;
		}
		seg[nseg][0] = start;
		seg[nseg][1] = i - start;
		nseg++;
	}
	for (i = 0; i < nseg; i++) {
		put(b, "/", 1);
		encode(b, path + seg[i][0], seg[i][1], 0, 0);
	}
	if (!keep_path && (nseg == 0 || path[n - 1] == '/'))
		put(b, "/", 1);
	free(seg);
}

struct param {
	char *text; /* "name=value", both encoded */
	size_t name_len;
};

static int
cmp_param(const void *va, const void *vb)
{
	const struct param *a = va, *b = vb;
	size_t an = a->name_len, bn = b->name_len;
	int d = memcmp(a->text, b->text, an < bn ? an : bn);

	if (d != 0 || an != bn)
		return d != 0 ? d : (an < bn ? -1 : 1);
	return strcmp(a->text + an, b->text + bn);
}

/* The canonical query of q[0..n): parameters decoded, encoded again and
 * sorted by name, then value. */
static void
want_query(struct buf *b, const char *q, size_t n)
{
	struct param *v = calloc(n / 2 + 1, sizeof(*v));
	size_t nv = 0, i;
	const char *p = q, *end = q + n;

	if (v == NULL)
		abort();
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *eq;
		struct buf t = BUF_INIT;

		amp = amp ? amp : end;
		if (amp > p) {
			eq = memchr(p, '=', (size_t)(amp - p));
			eq = eq ? eq : amp;
			encode(&t, p, (size_t)(eq - p), 0, 1);
			v[nv].name_len = t.len;
			put(&t, "=", 1);
			if (eq < amp)
				encode(&t, eq + 1, (size_t)(amp - eq - 1), 0,
				       1);
			v[nv++].text = t.data;
		}
		p = amp + 1;
	}
	qsort(v, nv, sizeof(*v), cmp_param);
	for (i = 0; i < nv; i++) {
		if (i > 0)
			put(b, "&", 1);
		put(b, v[i].text, strlen(v[i].text));
		free(v[i].text);
	}
	free(v);
}

static const char *const never_signed[] = {
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
        "host",
        "x-amz-date",
};

struct hdr {
	char *name, *value;
	size_t idx;
};

static int
cmp_hdr(const void *va, const void *vb)
{
	const struct hdr *a = va, *b = vb;
	int d = strcmp(a->name, b->name);

	return d != 0 ? d : (a->idx < b->idx ? -1 : a->idx > b->idx);
}

static char *
lower(const char *s)
{
	char *t = fuzz_str(s, strlen(s));

	for (char *p = t; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return t;
}

/* The value trimmed, each run of whitespace one space. */
static char *
fold(const char *s)
{
	struct buf b = BUF_INIT;
	int space = 0;
	char *t;

	for (; *s; s++) {
		if (strchr(" \t\r\n", *s) != NULL) {
			space = b.len > 0;
			continue;
		}
		if (space)
			put(&b, " ", 1);
		put(&b, s, 1);
		space = 0;
	}
	t = fuzz_str(b.data ? b.data : "", b.len);
	buf_free(&b);
	return t;
}

/* The canonical headers (each "name:value\n", but host's line) and the
 * signed header names (host's too), as sigv4.h describes them. */
static void
want_headers(const struct sigv4_request *r, const char *token,
             const char *payload_hash, struct buf *lines, struct buf *names)
{
	struct hdr *h = calloc(r->nheaders + 4, sizeof(*h));
	size_t n = 0, i, k;

	if (h == NULL)
		abort();
	for (i = 0; i < r->nheaders; i++) {
		char *name = lower(r->headers[i].name);
		int skip = 0;

		for (k = 0; k < sizeof(never_signed) / sizeof(*never_signed);
		     k++)
			skip |= strcmp(name, never_signed[k]) == 0;
		skip |= token != NULL &&
		        strcmp(name, "x-amz-security-token") == 0;
		skip |= r->sign_body &&
		        strcmp(name, "x-amz-content-sha256") == 0;
		if (skip) {
			free(name);
			continue;
		}
		h[n].name = name;
		h[n].value = fold(r->headers[i].value);
		h[n].idx = n;
		n++;
	}
	h[n].name = lower("host");
	h[n].value = NULL;
	h[n].idx = n;
	n++;
	h[n].name = lower("x-amz-date");
	h[n].value = fold(AMZ_DATE);
	h[n].idx = n;
	n++;
	if (r->sign_body) {
		h[n].name = lower("x-amz-content-sha256");
		h[n].value = fold(payload_hash);
		h[n].idx = n;
		n++;
	}
	if (token != NULL && !r->token_unsigned) {
		h[n].name = lower("x-amz-security-token");
		h[n].value = fold(token);
		h[n].idx = n;
		n++;
	}
	qsort(h, n, sizeof(*h), cmp_hdr);
	for (i = 0; i < n; i++) {
		int again = i > 0 && strcmp(h[i - 1].name, h[i].name) == 0;

		if (!again) {
			if (i > 0)
				put(names, ";", 1);
			put(names, h[i].name, strlen(h[i].name));
		}
		if (h[i].value == NULL)
			continue;
		if (again) {
			put(lines, ",", 1);
		} else {
			if (lines->len > 0)
				put(lines, "\n", 1);
			put(lines, h[i].name, strlen(h[i].name));
			put(lines, ":", 1);
		}
		put(lines, h[i].value, strlen(h[i].value));
	}
	put(lines, "\n", 1);
	for (i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

/* Returns the next line of s[0..n) at *pos (without its '\n') as a new
 * string, or NULL after the last. */
static char *
next_line(const char *s, size_t n, size_t *pos)
{
	const char *p = s + *pos, *nl;
	size_t len;

	if (*pos > n)
		return NULL;
	nl = memchr(p, '\n', n - *pos);
	len = nl ? (size_t)(nl - p) : n - *pos;
	*pos += len + 1;
	return fuzz_str(p, len);
}

/* Checks the canonical request creq of r against sigv4.h. */
static void
check_creq(const struct sigv4_request *r, const char *token,
           const struct buf *creq, const char *payload_hash)
{
	const char *auth = r->url + 8, *path, *query = "";
	size_t alen = strcspn(auth, "/?#"), plen, qlen = 0, pos = 0;
	struct buf b = BUF_INIT, names = BUF_INIT, rest = BUF_INIT;
	char *line, *host = NULL;

	line = next_line(creq->data, creq->len, &pos);
	FUZZ_CHECK(strcmp(line, r->method) == 0);
	free(line);

	path = auth + alen;
	plen = strcspn(path, "?#");
	if (path[plen] == '?') {
		query = path + plen + 1;
		qlen = strcspn(query, "#");
	}
	if (plen == 0) {
		path = "/";
		plen = 1;
	}
	want_path(&b, path, plen, r->keep_path);
	line = next_line(creq->data, creq->len, &pos);
	FUZZ_CHECK(b.data != NULL && strcmp(line, b.data) == 0);
	free(line);

	buf_clear(&b);
	want_query(&b, query, qlen);
	line = next_line(creq->data, creq->len, &pos);
	FUZZ_CHECK(strlen(line) == b.len &&
	           (b.len == 0 || strcmp(line, b.data) == 0));
	free(line);

	/* The header lines up to the empty one, host's taken out. */
	while ((line = next_line(creq->data, creq->len, &pos)) != NULL &&
	       line[0] != '\0') {
		if (strncmp(line, "host:", 5) == 0) {
			FUZZ_CHECK(host == NULL);
			host = line;
			continue;
		}
		if (rest.len > 0)
			put(&rest, "\n", 1);
		put(&rest, line, strlen(line));
		free(line);
	}
	put(&rest, "\n", 1);
	FUZZ_CHECK(line != NULL && host != NULL);
	free(line);
	/* Host as the URL has it, when it has no port or IPv6 literal. */
	if (memchr(auth, ':', alen) == NULL && memchr(auth, '[', alen) == NULL)
		FUZZ_CHECK(strlen(host) == 5 + alen &&
		           memcmp(host + 5, auth, alen) == 0);
	free(host);
	buf_clear(&b);
	want_headers(r, token, payload_hash, &b, &names);
	FUZZ_CHECK(rest.len == b.len && strcmp(rest.data, b.data) == 0);

	line = next_line(creq->data, creq->len, &pos);
	FUZZ_CHECK(line != NULL && strcmp(line, names.data) == 0);
	free(line);
	line = next_line(creq->data, creq->len, &pos);
	FUZZ_CHECK(line != NULL && strcmp(line, payload_hash) == 0);
	free(line);
	FUZZ_CHECK(next_line(creq->data, creq->len, &pos) == NULL);
	buf_free(&b);
	buf_free(&names);
	buf_free(&rest);
}

static int
same(const struct buf *a, const struct buf *b)
{
	if (a->len != b->len)
		return 0;
	return a->len == 0 || memcmp(a->data, b->data, a->len) == 0;
}

/* The string to sign over creq. */
static void
want_sts(const struct buf *creq, struct buf *sts)
{
	char h[65];

	sha256_hex(creq->data, creq->len, h);
	buf_clear(sts);
	if (buf_printf(sts, "AWS4-HMAC-SHA256\n" AMZ_DATE "\n" SCOPE "\n%s",
	               h) < 0)
		abort();
}

static void
check_header(const struct http_header *h, const char *name, const char *value)
{
	FUZZ_CHECK(strcmp(h->name, name) == 0 && strcmp(h->value, value) == 0);
}

/* Header signing of r: the three calls agree with each other, with a
 * second run and with sigv4.h. */
static void
check_sign(const struct sigv4_request *r, const struct sigv4_creds *c,
           const char *payload_hash, int no_name)
{
	struct buf creq = BUF_INIT, creq2 = BUF_INIT, sts = BUF_INIT,
	           want = BUF_INIT;
	struct soar_error e1, e2, e3, e4;
	struct sigv4_signed out;
	const char *token = c->token;
	char sig[65];
	int rc1, rc2, rc3, rc4;
	size_t k = 0;

	sigv4_signed_init(&out);
	rc1 = sigv4_canonical_request(r, c, &creq, &e1);
	rc2 = sigv4_canonical_request(r, c, &creq2, &e2);
	rc3 = sigv4_string_to_sign(r, c, &sts, &e3);
	rc4 = sigv4_sign(r, c, &out, &e4);
	FUZZ_CHECK(rc1 == 0 || rc1 == -1);
	FUZZ_CHECK(rc1 == rc2 && rc1 == rc3 && rc1 == rc4);
	if (no_name)
		FUZZ_CHECK(rc1 == -1 && strcmp(e1.code, "input") == 0);
	if (rc1 < 0) {
		FUZZ_CHECK(strcmp(e1.code, e2.code) == 0 &&
		           strcmp(e1.code, e3.code) == 0 &&
		           strcmp(e1.code, e4.code) == 0);
		FUZZ_CHECK(strcmp(e1.message, e4.message) == 0);
		FUZZ_CHECK(out.nheaders == 0);
		goto out;
	}
	FUZZ_CHECK(same(&creq, &creq2));
	FUZZ_CHECK(creq.len == strlen(creq.data));
	check_creq(r, token, &creq, payload_hash);
	want_sts(&creq, &want);
	FUZZ_CHECK(same(&sts, &want));

	FUZZ_CHECK(out.nheaders ==
	           2 + (size_t)(r->sign_body != 0) + (size_t)(token != NULL));
	check_header(&out.headers[k++], "X-Amz-Date", AMZ_DATE);
	if (r->sign_body)
		check_header(&out.headers[k++], "X-Amz-Content-Sha256",
		             payload_hash);
	if (token != NULL)
		check_header(&out.headers[k++], "X-Amz-Security-Token", token);
	signature(sts.data, sig);
	{
		/* The signed headers are the creq's last line but one. */
		const char *last = strrchr(creq.data, '\n'), *prev = last;

		while (prev > creq.data && prev[-1] != '\n')
			prev--;
		buf_clear(&want);
		if (buf_printf(&want,
		               "AWS4-HMAC-SHA256 Credential=" KEY "/" SCOPE
		               ", SignedHeaders=%.*s, Signature=%s",
		               (int)(last - prev), prev, sig) < 0)
			abort();
	}
	check_header(&out.headers[k], "Authorization", want.data);
out:
	sigv4_signed_free(&out);
	buf_free(&creq);
	buf_free(&creq2);
	buf_free(&sts);
	buf_free(&want);
}

/* Presigning r: the texts and the URL agree with each other and with
 * sigv4.h; an expiry out of range is refused. */
static void
check_presign(const struct sigv4_request *r, const struct sigv4_creds *c,
              long expires, const char *payload_hash)
{
	struct buf creq = BUF_INIT, sts = BUF_INIT, url = BUF_INIT,
	           want = BUF_INIT;
	struct soar_error e1, e2;
	char sig[65], date[64];
	int rc1, rc2;

	rc1 = sigv4_presign_texts(r, c, expires, &creq, &sts, &e1);
	rc2 = sigv4_presign(r, c, expires, &url, &e2);
	FUZZ_CHECK(rc1 == rc2);
	if (rc1 < 0) {
		FUZZ_CHECK(strcmp(e1.code, e2.code) == 0);
		goto out;
	}
	want_sts(&creq, &want);
	FUZZ_CHECK(same(&sts, &want));
	FUZZ_CHECK(strcmp(strrchr(creq.data, '\n') + 1, payload_hash) == 0);
	snprintf(date, sizeof(date), "X-Amz-Date=%s&", AMZ_DATE);
	FUZZ_CHECK(strstr(creq.data, date) != NULL);
	FUZZ_CHECK(strstr(creq.data,
	                  "X-Amz-Credential=" KEY "%2F20150830%2F" REGION
	                  "%2F" SERVICE "%2Faws4_request&") != NULL);
	/* The URL: the request's, then the parameters, the signature last. */
	signature(sts.data, sig);
	FUZZ_CHECK(strncmp(url.data, r->url, strcspn(r->url, "#")) == 0);
	FUZZ_CHECK(url.len > 81 &&
	           strncmp(url.data + url.len - 81, "&X-Amz-Signature=", 17) ==
	                   0 &&
	           strcmp(url.data + url.len - 64, sig) == 0);
	FUZZ_CHECK(sigv4_presign(r, c, 0, &url, &e2) == -1 &&
	           strcmp(e2.code, "input") == 0 && url.len == 0);
out:
	buf_free(&creq);
	buf_free(&sts);
	buf_free(&url);
	buf_free(&want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		int keep_path, sign_body, token, token_unsigned;
	} ways[] = {{0, 0, 0, 0}, {0, 0, 1, 0}, {1, 1, 1, 1}, {1, 1, 0, 0}};
	struct sigv4_request r;
	struct sigv4_creds c = {KEY, SECRET, NULL};
	struct req q;
	char payload_hash[65];
	int no_name = 0;

	parse_request((const char *)data, size, &q);
	for (size_t i = 0; i < q.nh; i++)
		no_name |= q.h[i].name[0] == '\0';
	sha256_hex(q.body ? q.body : "", q.body_len, payload_hash);
	for (size_t w = 0; w < sizeof(ways) / sizeof(ways[0]); w++) {
		memset(&r, 0, sizeof(r));
		r.method = q.method;
		r.url = q.url;
		r.headers = q.h;
		r.nheaders = q.nh;
		r.body = q.body;
		r.body_len = q.body_len;
		r.region = REGION;
		r.service = SERVICE;
		r.now = NOW;
		r.keep_path = ways[w].keep_path;
		r.sign_body = ways[w].sign_body;
		r.token_unsigned = ways[w].token_unsigned;
		c.token = ways[w].token ? TOKEN : NULL;
		check_sign(&r, &c, payload_hash, no_name);
		if (w % 2 == 0)
			check_presign(&r, &c, w == 0 ? 3600 : 604800,
			              payload_hash);
	}
	req_free(&q);
	return 0;
}
