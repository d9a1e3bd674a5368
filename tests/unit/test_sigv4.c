/*
 * test_sigv4.c: SigV4 on both copies of the AWS test suite, and by hand.
 *
 * The suite is third-party data read from ../shared/corpus/sigv4 (or
 * $SHARED/corpus/sigv4); see its README.md.  Every case of both copies
 * runs, and a copy fails when fewer cases ran than it holds, so a missing
 * corpus or a harness bug cannot pass.  Unsupported cases: none.
 *
 * The harness parses the raw request files itself: a request line whose
 * target may hold spaces and UTF-8, repeated headers, values folded onto
 * indented lines (passed on as the wire carries them, CRLF and all), a
 * body after the first empty line, and files that end with or without a
 * newline.  Expected texts are compared byte for byte once a trailing
 * newline is dropped (canonical texts never end in one).
 *
 * aws4_testsuite/ keeps its inputs outside its files: the key, region,
 * service and time below; the session token of post-sts-token/ from its
 * readme.txt (signed in -before, added after signing in -after); and the
 * token of get-vanilla-with-session-token, which is the one its creq
 * shows (the same as in the other copy's context.json).  Its .sreq files
 * are not compared: get-vanilla-with-session-token.sreq carries another
 * case's signature.  The .authz files hold the Authorization exactly.
 *
 * aws-signing-test-suite/v4/ gives its inputs in context.json, read with
 * libjq: "normalize": false is keep_path, "sign_body" is sign_body,
 * "omit_session_token" is token_unsigned.  Header signing is checked on
 * the canonical request, string to sign, signature and the headers the
 * signed request carries; presigning on the same texts and on the request
 * line of the presigned request.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jv.h>

#include "buf.h"
#include "error.h"
#include "sigv4.h"
#include "unit.h"

#define CLASSIC_CASES 34 /* aws4_testsuite/ */
#define V4_CASES      38 /* aws-signing-test-suite/v4/ */
#define MAX_HEADERS   32

#define SUITE_KEY     "AKIDEXAMPLE"
#define SUITE_SECRET  "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_REGION  "us-east-1"
#define SUITE_SERVICE "service"
#define SUITE_TIME    "2015-08-30T12:36:00Z"
#define SESSION_TOKEN                                                          \
	"6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const char *
corpus_dir(void)
{
	const char *s = getenv("SHARED");
	static char path[PATH_LEN];

	return pathf(path, "%s/corpus/sigv4", s ? s : "../shared");
}

/* Returns the file's bytes, NUL-terminated (owned), with the length in
 * *n, or NULL. */
static char *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	long len;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)len + 1))) {
		if (fread(p, 1, (size_t)len, f) != (size_t)len) {
			free(p);
			p = NULL;
		} else {
			p[len] = '\0';
			*n = (size_t)len;
		}
	}
	fclose(f);
	return p;
}

/* Reads an expected text: the file without its trailing newlines. */
static char *
read_expected(const char *dir, const char *file)
{
	char path[PATH_LEN];
	size_t n = 0;
	char *s;

	pathf(path, "%s/%s", dir, file);
	if ((s = slurp(path, &n)) == NULL) {
		printf("# cannot read %s\n", path);
		return NULL;
	}
	while (n > 0 && s[n - 1] == '\n')
		s[--n] = '\0';
	return s;
}

static void
diag_text(const char *label, const char *s)
{
	const char *eol;

	printf("#   %s:\n", label);
	for (;;) {
		eol = strchr(s, '\n');
		printf("#     %.*s\n", eol ? (int)(eol - s) : (int)strlen(s),
		       s);
		if (eol == NULL)
			break;
		s = eol + 1;
	}
}

/* Returns 0 when got equals want; otherwise prints both and returns 1. */
static int
same(const char *name, const char *what, const char *got, const char *want)
{
	if (got != NULL && want != NULL && strcmp(got, want) == 0)
		return 0;
	printf("# %s: %s differs\n", name, what);
	diag_text("got", got ? got : "(none)");
	diag_text("want", want ? want : "(none)");
	return 1;
}

/* A request parsed from a suite file. */
struct req {
	char *text;      /* the file, cut into strings in place */
	struct buf url;  /* https:// + Host + the request target */
	struct buf line; /* the request line */
	const char *method;
	struct http_header h[MAX_HEADERS];
	struct buf values[MAX_HEADERS];
	size_t nh;
	const char *body;
	size_t body_len;
};

static void
req_free(struct req *q)
{
	size_t i;

	for (i = 0; i < MAX_HEADERS; i++)
		buf_free(&q->values[i]);
	buf_free(&q->url);
	buf_free(&q->line);
	free(q->text);
}

static void
trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* Parses the raw request in path into *q (zeroed here; release it with
 * req_free).  Lines end in LF or CRLF, or at the end of the file; an
 * indented line continues the previous header's value; the first empty
 * line starts the body.  Returns 0, or -1 after printing why. */
static int
parse_request(const char *path, struct req *q)
{
	const char *host = NULL, *sp, *target = NULL;
	char *s, *end, *pos, *eol;
	size_t n = 0, host_len = 0, target_len = 0, i;
	int first = 1;

	memset(q, 0, sizeof(*q));
	if ((q->text = s = slurp(path, &n)) == NULL) {
		printf("# cannot read %s\n", path);
		return -1;
	}
	end = s + n;
	for (pos = s; pos < end; pos = eol < end ? eol + 1 : end) {
		size_t len;

		eol = memchr(pos, '\n', (size_t)(end - pos));
		if (eol == NULL)
			eol = end;
		len = (size_t)(eol - pos);
		if (len > 0 && pos[len - 1] == '\r')
			len--;
		if (first) {
			/* METHOD SP target SP version; the target may hold
			 * spaces of its own. */
			if (buf_append(&q->line, pos, len) < 0)
				return -1;
			sp = memchr(pos, ' ', len);
			target = sp ? sp + 1 : NULL;
			while (len > 0 && pos[len - 1] != ' ')
				len--;
			if (sp == NULL || len == 0 || pos + len - 1 <= sp) {
				printf("# %s: bad request line\n", path);
				return -1;
			}
			target_len = (size_t)(pos + len - 1 - target);
			pos[sp - pos] = '\0';
			q->method = pos;
			first = 0;
			continue;
		}
		if (len == 0) {
			pos = eol < end ? eol + 1 : end;
			break;
		}
		if (*pos == ' ' || *pos == '\t') {
			/* Obsolete line folding: the value goes on. */
			if (q->nh == 0 ||
			    buf_append(&q->values[q->nh - 1], "\r\n", 2) < 0 ||
			    buf_append(&q->values[q->nh - 1], pos, len) < 0) {
				printf("# %s: stray continuation line\n", path);
				return -1;
			}
			continue;
		}
		sp = memchr(pos, ':', len);
		if (sp == NULL || q->nh == MAX_HEADERS) {
			printf("# %s: bad or too many header lines\n", path);
			return -1;
		}
		pos[sp - pos] = '\0';
		q->h[q->nh].name = pos;
		if (buf_append(&q->values[q->nh], sp + 1,
		               len - (size_t)(sp + 1 - pos)) < 0)
			return -1;
		q->nh++;
	}
	for (i = 0; i < q->nh; i++) {
		q->h[i].value = q->values[i].data ? q->values[i].data : "";
		if (strcasecmp(q->h[i].name, "host") == 0) {
			host = q->h[i].value;
			host_len = strlen(host);
			trim(&host, &host_len);
		}
	}
	if (host == NULL) {
		printf("# %s: no Host header\n", path);
		return -1;
	}
	if (buf_puts(&q->url, "https://") < 0 ||
	    buf_append(&q->url, host, host_len) < 0 ||
	    buf_append(&q->url, target, target_len) < 0)
		return -1;
	q->body = pos < end ? pos : NULL;
	q->body_len = (size_t)(end - pos);
	return 0;
}

static int
parse_time(const char *s, time_t *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon,
	           &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*t = timegm(&tm);
	return 0;
}

static time_t
suite_time(void)
{
	time_t t = 0;

	parse_time(SUITE_TIME, &t);
	return t;
}

/* Returns the value after "Signature=" or "X-Amz-Signature=" in s. */
static const char *
signature_of(const char *s, const char *key)
{
	const char *p = s ? strstr(s, key) : NULL;

	return p ? p + strlen(key) : NULL;
}

/* Returns 1 when the request text holds the header name: value (name in
 * any case, value trimmed). */
static int
has_header(const char *text, const char *name, const char *value)
{
	size_t nlen = strlen(name), vlen = strlen(value);
	const char *line = text, *eol, *v;
	size_t len;

	for (; line != NULL && *line != '\0'; line = eol ? eol + 1 : NULL) {
		eol = strchr(line, '\n');
		len = eol ? (size_t)(eol - line) : strlen(line);
		if (len <= nlen || line[nlen] != ':' ||
		    strncasecmp(line, name, nlen) != 0)
			continue;
		v = line + nlen + 1;
		len -= nlen + 1;
		trim(&v, &len);
		if (len == vlen && memcmp(v, value, len) == 0)
			return 1;
	}
	return 0;
}

/* Header signing of one case: the canonical request and string to sign
 * against the files named, and the Authorization against authz (whole)
 * or the signature against sig.  Returns the number of mismatches. */
static int
check_header_signing(const char *name, const struct sigv4_request *r,
                     const struct sigv4_creds *c, const char *want_creq,
                     const char *want_sts, const char *want_authz,
                     const char *want_sig, const char *signed_req)
{
	struct buf creq = BUF_INIT, sts = BUF_INIT;
	struct sigv4_signed out;
	struct soar_error err = {"", "", 0, 0};
	const char *authz = NULL;
	size_t i;
	int bad = 0;

	sigv4_signed_init(&out);
	if (sigv4_canonical_request(r, c, &creq, &err) < 0 ||
	    sigv4_string_to_sign(r, c, &sts, &err) < 0 ||
	    sigv4_sign(r, c, &out, &err) < 0) {
		printf("# %s: signing failed: %s: %s\n", name, err.code,
		       err.message);
		bad = 1;
		goto out;
	}
	bad += same(name, "canonical request", creq.data, want_creq);
	bad += same(name, "string to sign", sts.data, want_sts);
	for (i = 0; i < out.nheaders; i++)
		if (strcmp(out.headers[i].name, "Authorization") == 0)
			authz = out.headers[i].value;
	if (want_authz != NULL)
		bad += same(name, "Authorization", authz, want_authz);
	if (want_sig != NULL)
		bad += same(name, "signature",
		            signature_of(authz, "Signature="), want_sig);
	for (i = 0; signed_req != NULL && i < out.nheaders; i++)
		if (!has_header(signed_req, out.headers[i].name,
		                out.headers[i].value)) {
			printf("# %s: the signed request lacks %s: %s\n", name,
			       out.headers[i].name, out.headers[i].value);
			bad++;
		}
out:
	buf_free(&creq);
	buf_free(&sts);
	sigv4_signed_free(&out);
	return bad != 0;
}

/* aws4_testsuite/<group/>name/: header signing. */
static int
run_classic(const char *dir, const char *group, const char *name)
{
	struct sigv4_request r;
	struct sigv4_creds c = {SUITE_KEY, SUITE_SECRET, NULL};
	struct req q;
	char path[PATH_LEN], file[PATH_LEN];
	char *creq, *sts, *authz, *readme = NULL;
	int bad = 1;

	pathf(path, "%s/%s.req", dir, name);
	pathf(file, "%s.creq", name);
	creq = read_expected(dir, file);
	pathf(file, "%s.sts", name);
	sts = read_expected(dir, file);
	pathf(file, "%s.authz", name);
	authz = read_expected(dir, file);
	if (parse_request(path, &q) < 0 || !creq || !sts || !authz)
		goto out;
	memset(&r, 0, sizeof(r));
	r.method = q.method;
	r.url = q.url.data;
	r.headers = q.h;
	r.nheaders = q.nh;
	r.body = q.body;
	r.body_len = q.body_len;
	r.region = SUITE_REGION;
	r.service = SUITE_SERVICE;
	r.now = suite_time();
	if (group != NULL && strcmp(group, "post-sts-token") == 0) {
		/* The token is the readme's last line. */
		char *p;

		if ((readme = read_expected(pathf(path, "%s/..", dir),
		                            "readme.txt")) == NULL)
			goto out;
		p = strrchr(readme, '\n');
		c.token = p ? p + 1 : readme;
		r.token_unsigned = strstr(name, "-after") != NULL;
	} else if (strcmp(name, "get-vanilla-with-session-token") == 0)
		c.token = SESSION_TOKEN;
	bad = check_header_signing(name, &r, &c, creq, sts, authz, NULL, NULL);
out:
	req_free(&q);
	free(creq);
	free(sts);
	free(authz);
	free(readme);
	return bad;
}

static int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Runs every case under dir: a directory holding <name>/<name>.req is a
 * case, any other directory a group of cases.  Counts cases in *ncases
 * and mismatches in *nbad. */
static void
walk_classic(const char *dir, const char *group, int depth, int *ncases,
             int *nbad)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	CHECK(d != NULL);
	if (d == NULL) {
		printf("# cannot open %s\n", dir);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char sub[PATH_LEN], req[PATH_LEN];

		if (e->d_name[0] == '.')
			continue;
		pathf(sub, "%s/%s", dir, e->d_name);
		if (!is_dir(sub))
			continue;
		pathf(req, "%s/%s.req", sub, e->d_name);
		if (access(req, R_OK) == 0) {
			(*ncases)++;
			*nbad += run_classic(sub, group, e->d_name);
		} else if (depth == 0)
			walk_classic(sub, e->d_name, 1, ncases, nbad);
		else
			printf("# %s: neither a case nor a group\n", sub);
	}
	closedir(d);
}

static void
test_aws4_testsuite(void)
{
	char dir[PATH_LEN];
	int ncases = 0, nbad = 0;

	pathf(dir, "%s/aws4_testsuite", corpus_dir());
	walk_classic(dir, NULL, 0, &ncases, &nbad);
	printf("# aws4_testsuite: %d cases, %d failed\n", ncases, nbad);
	CHECK_INT(ncases, CLASSIC_CASES);
	CHECK_INT(nbad, 0);
}

/* The inputs of an aws-signing-test-suite case (strings owned). */
struct context {
	char *key, *secret, *token, *region, *service;
	long expires;
	int normalize, sign_body, omit_token;
	time_t now;
};

static void
context_free(struct context *x)
{
	free(x->key);
	free(x->secret);
	free(x->token);
	free(x->region);
	free(x->service);
}

/* Returns a copy of the string member key of obj (borrowed), or NULL. */
static char *
member_str(jv obj, const char *key)
{
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	char *s = NULL;

	if (jv_get_kind(v) == JV_KIND_STRING)
		s = strdup(jv_string_value(v));
	jv_free(v);
	return s;
}

/* Returns 1 when the member key of obj (borrowed) is true. */
static int
member_true(jv obj, const char *key)
{
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	int t = jv_get_kind(v) == JV_KIND_TRUE;

	jv_free(v);
	return t;
}

static int
read_context(const char *dir, struct context *x)
{
	char *text = read_expected(dir, "context.json"), *stamp = NULL;
	jv json, cred, num;
	int rc = -1;

	memset(x, 0, sizeof(*x));
	if (text == NULL)
		return -1;
	json = jv_parse(text);
	free(text);
	if (jv_get_kind(json) != JV_KIND_OBJECT) {
		printf("# %s/context.json: not a JSON object\n", dir);
		jv_free(json);
		return -1;
	}
	cred = jv_object_get(jv_copy(json), jv_string("credentials"));
	if (jv_get_kind(cred) == JV_KIND_OBJECT) {
		x->key = member_str(cred, "access_key_id");
		x->secret = member_str(cred, "secret_access_key");
		x->token = member_str(cred, "token");
	}
	jv_free(cred);
	x->region = member_str(json, "region");
	x->service = member_str(json, "service");
	num = jv_object_get(jv_copy(json), jv_string("expiration_in_seconds"));
	if (jv_get_kind(num) == JV_KIND_NUMBER)
		x->expires = (long)jv_number_value(num);
	jv_free(num);
	x->normalize = member_true(json, "normalize");
	x->sign_body = member_true(json, "sign_body");
	x->omit_token = member_true(json, "omit_session_token");
	stamp = member_str(json, "timestamp");
	jv_free(json);
	if (!x->key || !x->secret || !x->region || !x->service ||
	    parse_time(stamp, &x->now) < 0)
		printf("# %s/context.json: missing inputs\n", dir);
	else
		rc = 0;
	free(stamp);
	return rc;
}

/* Presigning of one case.  Returns 1 on a mismatch. */
static int
check_presign(const char *name, const char *dir, const struct sigv4_request *r,
              const struct sigv4_creds *c, long expires)
{
	char *want_creq = read_expected(dir, "query-canonical-request.txt");
	char *want_sts = read_expected(dir, "query-string-to-sign.txt");
	char *want_sig = read_expected(dir, "query-signature.txt");
	char path[PATH_LEN];
	struct buf creq = BUF_INIT, sts = BUF_INIT, url = BUF_INIT;
	struct buf line = BUF_INIT;
	struct soar_error err = {"", "", 0, 0};
	struct req signed_req;
	const char *target;
	int bad = 0;

	pathf(path, "%s/query-signed-request.txt", dir);
	if (parse_request(path, &signed_req) < 0 || !want_creq || !want_sts ||
	    !want_sig) {
		bad = 1;
		goto out;
	}
	if (sigv4_presign_texts(r, c, expires, &creq, &sts, &err) < 0 ||
	    sigv4_presign(r, c, expires, &url, &err) < 0) {
		printf("# %s: presigning failed: %s: %s\n", name, err.code,
		       err.message);
		bad = 1;
		goto out;
	}
	bad += same(name, "presigned canonical request", creq.data, want_creq);
	bad += same(name, "presigned string to sign", sts.data, want_sts);
	bad += same(name, "presigned signature",
	            signature_of(url.data, "X-Amz-Signature="), want_sig);
	/* The URL is https://, the host, then the target of the presigned
	 * request's request line. */
	target = url.data + 8 + strcspn(url.data + 8, "/?");
	if (buf_printf(&line, "%s %s HTTP/1.1", r->method, target) < 0)
		bad++;
	else
		bad += same(name, "presigned request line", line.data,
		            signed_req.line.data);
out:
	req_free(&signed_req);
	buf_free(&creq);
	buf_free(&sts);
	buf_free(&url);
	buf_free(&line);
	free(want_creq);
	free(want_sts);
	free(want_sig);
	return bad != 0;
}

/* aws-signing-test-suite/v4/name/: header signing and presigning. */
static int
run_v4(const char *dir, const char *name)
{
	struct sigv4_request r;
	struct sigv4_creds c;
	struct context x;
	struct req q;
	char path[PATH_LEN];
	char *creq = read_expected(dir, "header-canonical-request.txt");
	char *sts = read_expected(dir, "header-string-to-sign.txt");
	char *sig = read_expected(dir, "header-signature.txt");
	char *sreq = read_expected(dir, "header-signed-request.txt");
	int bad = 1;

	pathf(path, "%s/request.txt", dir);
	memset(&q, 0, sizeof(q));
	if (read_context(dir, &x) < 0 || parse_request(path, &q) < 0 || !creq ||
	    !sts || !sig || !sreq)
		goto out;
	memset(&r, 0, sizeof(r));
	r.method = q.method;
	r.url = q.url.data;
	r.headers = q.h;
	r.nheaders = q.nh;
	r.body = q.body;
	r.body_len = q.body_len;
	r.region = x.region;
	r.service = x.service;
	r.now = x.now;
	r.keep_path = !x.normalize;
	r.sign_body = x.sign_body;
	r.token_unsigned = x.omit_token;
	c.access_key = x.key;
	c.secret_key = x.secret;
	c.token = x.token;
	bad = check_header_signing(name, &r, &c, creq, sts, NULL, sig, sreq);
	bad |= check_presign(name, dir, &r, &c, x.expires);
out:
	context_free(&x);
	req_free(&q);
	free(creq);
	free(sts);
	free(sig);
	free(sreq);
	return bad;
}

static void
test_aws_signing_test_suite(void)
{
	char dir[PATH_LEN];
	DIR *d;
	struct dirent *e;
	int ncases = 0, nbad = 0;

	pathf(dir, "%s/aws-signing-test-suite/v4", corpus_dir());
	d = opendir(dir);
	CHECK(d != NULL);
	if (d == NULL) {
		printf("# cannot open %s\n", dir);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char sub[PATH_LEN];

		if (e->d_name[0] == '.')
			continue;
		pathf(sub, "%s/%s", dir, e->d_name);
		if (!is_dir(sub))
			continue;
		ncases++;
		nbad += run_v4(sub, e->d_name);
	}
	closedir(d);
	printf("# aws-signing-test-suite/v4: %d cases, %d failed\n", ncases,
	       nbad);
	CHECK_INT(ncases, V4_CASES);
	CHECK_INT(nbad, 0);
}

/* A request at the suite's time with the suite's keys. */
static struct sigv4_request
request(const char *method, const char *url)
{
	struct sigv4_request r;

	memset(&r, 0, sizeof(r));
	r.method = method;
	r.url = url;
	r.region = SUITE_REGION;
	r.service = SUITE_SERVICE;
	r.now = suite_time();
	return r;
}

static const struct sigv4_creds suite_creds = {SUITE_KEY, SUITE_SECRET, NULL};

/* Copies line n (from 0) of the canonical request of r into out. */
static void
creq_line(const struct sigv4_request *r, const struct sigv4_creds *c, int n,
          struct buf *out)
{
	struct buf creq = BUF_INIT;
	struct soar_error err;
	const char *p;

	buf_clear(out);
	if (sigv4_canonical_request(r, c, &creq, &err) < 0) {
		printf("# %s: %s: %s\n", r->url, err.code, err.message);
		CHECK(0);
		buf_puts(out, "(error)");
		buf_free(&creq);
		return;
	}
	for (p = creq.data; n > 0 && p != NULL; n--)
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	if (p != NULL)
		buf_append(out, p, strcspn(p, "\n"));
	buf_free(&creq);
}

static const char *
header_value(const struct sigv4_signed *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nheaders; i++)
		if (strcmp(s->headers[i].name, name) == 0)
			return s->headers[i].value;
	return NULL;
}

/* The two vectors API.md 2.2 works out by hand, without the corpus. */
static void
test_api_md_vectors(void)
{
	struct sigv4_request r =
	        request("GET", "https://example.amazonaws.com/");
	struct http_header ct = {"Content-Type",
	                         "application/x-www-form-urlencoded"};
	struct sigv4_signed s;
	struct soar_error err;

	sigv4_signed_init(&s);
	CHECK_INT(sigv4_sign(&r, &suite_creds, &s, &err), 0);
	CHECK_INT(s.nheaders, 2);
	CHECK_STR(header_value(&s, "X-Amz-Date"), "20150830T123600Z");
	CHECK_STR(header_value(&s, "Authorization"),
	          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
	          "service/aws4_request, SignedHeaders=host;x-amz-date, "
	          "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9"
	          "b8aae1d763fbf31");
	r = request("POST", "https://example.amazonaws.com/");
	r.headers = &ct;
	r.nheaders = 1;
	r.body = "Param1=value1";
	r.body_len = 13;
	/* The same request object may be signed again into the same out. */
	CHECK_INT(sigv4_sign(&r, &suite_creds, &s, &err), 0);
	CHECK_STR(header_value(&s, "Authorization"),
	          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
	          "service/aws4_request, SignedHeaders=content-type;host;"
	          "x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc"
	          "38421b1da7b9d196a0fe09473a");
	sigv4_signed_free(&s);
	sigv4_signed_free(&s);
	sigv4_signed_free(NULL);
}

static void
test_host_port(void)
{
	static const struct {
		const char *url, *host;
	} cases[] = {
	        {"http://127.0.0.1:8080/x", "host:127.0.0.1:8080"},
	        {"https://127.0.0.1:4566", "host:127.0.0.1:4566"},
	        {"https://h.example:443/", "host:h.example"},
	        {"http://h.example:80/", "host:h.example"},
	        {"https://h.example:80/", "host:h.example:80"},
	        {"http://h.example:443/", "host:h.example:443"},
	        {"HTTPS://h.example:0443/", "host:h.example"},
	        {"http://[::1]:9000/", "host:[::1]:9000"},
	        {"https://[::1]/", "host:[::1]"},
	        {"https://h.example?a=b", "host:h.example"},
	};
	struct buf line = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct sigv4_request r = request("GET", cases[i].url);

		creq_line(&r, &suite_creds, 3, &line);
		CHECK_STR(line.data, cases[i].host);
	}
	buf_free(&line);
}

static void
test_session_token(void)
{
	struct sigv4_creds c = {SUITE_KEY, SUITE_SECRET, "tok/en+="};
	struct http_header stale = {"X-Amz-Security-Token", "stale"};
	struct sigv4_request r = request("GET", "https://h.example/");
	struct buf creq = BUF_INIT, url = BUF_INIT;
	struct sigv4_signed s;
	struct soar_error err;

	r.headers = &stale;
	r.nheaders = 1;
	sigv4_signed_init(&s);
	CHECK_INT(sigv4_sign(&r, &c, &s, &err), 0);
	CHECK_INT(s.nheaders, 3);
	CHECK_STR(s.headers[0].name, "X-Amz-Date");
	CHECK_STR(s.headers[1].name, "X-Amz-Security-Token");
	CHECK_STR(s.headers[1].value, "tok/en+=");
	CHECK(strstr(s.headers[2].value,
	             "SignedHeaders=host;x-amz-date;x-amz-security-token,") !=
	      NULL);
	CHECK_INT(sigv4_canonical_request(&r, &c, &creq, &err), 0);
	CHECK(strstr(creq.data, "\nx-amz-security-token:tok/en+=\n\n") != NULL);
	CHECK(strstr(creq.data, "stale") == NULL);

	/* Added after signing: sent, not signed. */
	r.token_unsigned = 1;
	CHECK_INT(sigv4_sign(&r, &c, &s, &err), 0);
	CHECK_STR(header_value(&s, "X-Amz-Security-Token"), "tok/en+=");
	CHECK(strstr(header_value(&s, "Authorization"),
	             "SignedHeaders=host;x-amz-date,") != NULL);

	/* Presigned: in the query, encoded, signed unless added after. */
	r.token_unsigned = 0;
	r.nheaders = 0;
	CHECK_INT(sigv4_presign_texts(&r, &c, 60, &creq, NULL, &err), 0);
	CHECK(strstr(creq.data, "&X-Amz-Security-Token=tok%2Fen%2B%3D&") !=
	      NULL);
	CHECK_INT(sigv4_presign(&r, &c, 60, &url, &err), 0);
	CHECK(strstr(url.data, "&X-Amz-Expires=60&X-Amz-Security-Token=tok%"
	                       "2Fen%2B%3D&X-Amz-Signature=") != NULL);
	r.token_unsigned = 1;
	CHECK_INT(sigv4_presign_texts(&r, &c, 60, &creq, NULL, &err), 0);
	CHECK(strstr(creq.data, "Security-Token") == NULL);
	CHECK_INT(sigv4_presign(&r, &c, 60, &url, &err), 0);
	CHECK(strstr(url.data, "&X-Amz-Security-Token=tok%2Fen%2B%3D&") !=
	      NULL);
	/* An empty token is no token. */
	c.token = "";
	CHECK_INT(sigv4_sign(&r, &c, &s, &err), 0);
	CHECK_INT(s.nheaders, 2);
	buf_free(&creq);
	buf_free(&url);
	sigv4_signed_free(&s);
}

static void
test_unsigned_headers(void)
{
	static const struct http_header h[] = {
	        {"User-Agent", "soarutils/0.1"},
	        {"Expect", "100-continue"},
	        {"Connection", "keep-alive"},
	        {"Keep-Alive", "timeout=5"},
	        {"TE", "trailers"},
	        {"Trailer", "x"},
	        {"Transfer-Encoding", "chunked"},
	        {"Upgrade", "h2c"},
	        {"Proxy-Authorization", "Basic eA=="},
	        {"Proxy-Authenticate", "Basic"},
	        {"X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793"},
	        {"Authorization", "AWS4-HMAC-SHA256 stale"},
	        {"Host", "elsewhere.example"},
	        {"X-Amz-Date", "19700101T000000Z"},
	        {"Content-Type", "application/json"},
	        {"X-Amz-Target", "SecurityHub.GetFindings"},
	};
	struct sigv4_request r = request(
	        "POST", "https://securityhub.us-east-1.amazonaws.com/x");
	struct buf creq = BUF_INIT;
	struct sigv4_signed s;
	struct soar_error err;

	r.headers = h;
	r.nheaders = sizeof(h) / sizeof(*h);
	sigv4_signed_init(&s);
	CHECK_INT(sigv4_sign(&r, &suite_creds, &s, &err), 0);
	CHECK(strstr(header_value(&s, "Authorization"),
	             "SignedHeaders=content-type;host;x-amz-date;x-amz-"
	             "target,") != NULL);
	CHECK_INT(sigv4_canonical_request(&r, &suite_creds, &creq, &err), 0);
	CHECK_STR(creq.data,
	          "POST\n/x\n\n"
	          "content-type:application/json\n"
	          "host:securityhub.us-east-1.amazonaws.com\n"
	          "x-amz-date:20150830T123600Z\n"
	          "x-amz-target:SecurityHub.GetFindings\n\n"
	          "content-type;host;x-amz-date;x-amz-target\n" EMPTY_SHA256);
	buf_free(&creq);
	sigv4_signed_free(&s);
}

static void
test_header_values(void)
{
	static const struct http_header h[] = {
	        {"My-H", "  a \t b  "},
	        {"X-Fold", "one\r\n   two\r\n\tthree"},
	        {"my-h", "c"},
	        {"X-Empty", "   "},
	        {"X-Quoted", "\"a   b\""},
	        {"MY-H", ""},
	};
	struct sigv4_request r = request("GET", "https://h.example/");
	struct buf creq = BUF_INIT;
	struct soar_error err;

	r.headers = h;
	r.nheaders = sizeof(h) / sizeof(*h);
	CHECK_INT(sigv4_canonical_request(&r, &suite_creds, &creq, &err), 0);
	CHECK_STR(
	        creq.data,
	        "GET\n/\n\n"
	        "host:h.example\n"
	        "my-h:a b,c,\n"
	        "x-amz-date:20150830T123600Z\n"
	        "x-empty:\n"
	        "x-fold:one two three\n"
	        "x-quoted:\"a b\"\n\n"
	        "host;my-h;x-amz-date;x-empty;x-fold;x-quoted\n" EMPTY_SHA256);
	buf_free(&creq);
}

static void
test_paths(void)
{
	static const struct {
		const char *url;
		int keep_path;
		const char *path;
	} cases[] = {
	        /* Every service but S3: normalised, then encoded again. */
	        {"https://h/a%3Ab", 0, "/a%253Ab"},
	        {"https://h/a b/~x", 0, "/a%20b/~x"},
	        {"https://h/\xc3\xa9", 0, "/%C3%A9"},
	        {"https://h/a/./b/../c//d/", 0, "/a/c/d/"},
	        {"https://h/../..", 0, "/"},
	        {"https://h/a/b/..", 0, "/a"},
	        {"https://h/a/b/../", 0, "/a/"},
	        {"https://h/.a/..b/...", 0, "/.a/..b/..."},
	        {"https://h", 0, "/"},
	        {"https://h?x=1", 0, "/"},
	        {"https://h/p#frag", 0, "/p"},
	        {"https://h/a:b@c!$&'()*+,;=", 0,
	         "/a%3Ab%40c%21%24%26%27%28%29%2A%2B%2C%3B%3D"},
	        /* S3: as sent, encoded once. */
	        {"https://h/a%3ab", 1, "/a%3Ab"},
	        {"https://h/a%2Fb", 1, "/a%2Fb"},
	        {"https://h/a%41", 1, "/aA"},
	        {"https://h//a/../b/./", 1, "//a/../b/./"},
	        {"https://h/a b", 1, "/a%20b"},
	        {"https://h/100%", 1, "/100%25"},
	        {"https://h/1%2", 1, "/1%252"},
	        {"https://h/%zz", 1, "/%25zz"},
	        {"https://h", 1, "/"},
	};
	struct buf line = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct sigv4_request r = request("GET", cases[i].url);

		r.keep_path = cases[i].keep_path;
		creq_line(&r, &suite_creds, 1, &line);
		if (strcmp(line.data, cases[i].path) != 0)
			printf("# %s (keep_path %d)\n", cases[i].url,
			       cases[i].keep_path);
		CHECK_STR(line.data, cases[i].path);
	}
	buf_free(&line);
}

static void
test_query(void)
{
	static const struct {
		const char *url, *query;
	} cases[] = {
	        {"https://h/?b=2&a=1&a=0", "a=0&a=1&b=2"},
	        {"https://h/?a+b=c%2fd/e", "a%2Bb=c%2Fd%2Fe"},
	        {"https://h/?flag&x=", "flag=&x="},
	        {"https://h/?&&a=1&", "a=1"},
	        {"https://h/?=v", "=v"},
	        {"https://h/?a=%zz&b=%4", "a=%25zz&b=%254"},
	        {"https://h/?a=%e1%88%b4&%41=%7e", "A=~&a=%E1%88%B4"},
	        {"https://h/?a=b=c", "a=b%3Dc"},
	        {"https://h/?Param-3=1&Param=2", "Param=2&Param-3=1"},
	        {"https://h/?", ""},
	        {"https://h/?a=1#b=2", "a=1"},
	};
	struct buf line = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct sigv4_request r = request("GET", cases[i].url);

		creq_line(&r, &suite_creds, 2, &line);
		CHECK_STR(line.data, cases[i].query);
	}
	buf_free(&line);
}

static void
test_sign_body(void)
{
	static const struct http_header h[] = {
	        {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}};
	struct sigv4_request r = request("PUT", "https://h.example/k");
	struct buf creq = BUF_INIT;
	struct sigv4_signed s;
	struct soar_error err;

	r.sign_body = 1;
	r.headers = h;
	r.nheaders = 1;
	sigv4_signed_init(&s);
	CHECK_INT(sigv4_sign(&r, &suite_creds, &s, &err), 0);
	CHECK_INT(s.nheaders, 3);
	CHECK_STR(s.headers[1].name, "X-Amz-Content-Sha256");
	CHECK_STR(s.headers[1].value, EMPTY_SHA256);
	CHECK_INT(sigv4_canonical_request(&r, &suite_creds, &creq, &err), 0);
	CHECK_STR(creq.data,
	          "PUT\n/k\n\nhost:h.example\n"
	          "x-amz-content-sha256:" EMPTY_SHA256 "\n"
	          "x-amz-date:20150830T123600Z\n\n"
	          "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
	/* Without sign_body a given header is signed as it is. */
	r.sign_body = 0;
	CHECK_INT(sigv4_canonical_request(&r, &suite_creds, &creq, &err), 0);
	CHECK(strstr(creq.data, "\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n") !=
	      NULL);
	buf_free(&creq);
	sigv4_signed_free(&s);
}

static void
test_presign_url(void)
{
	struct sigv4_request r =
	        request("GET", "https://h.example/p%20q?x=1&y#frag");
	struct buf url = BUF_INIT;
	struct soar_error err;
	const char *want = "https://h.example/p%20q?x=1&y&X-Amz-Algorithm="
	                   "AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F"
	                   "20150830%2Fus-east-1%2Fservice%2Faws4_request&"
	                   "X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders="
	                   "host&X-Amz-Expires=604800&X-Amz-Signature=";

	CHECK_INT(sigv4_presign(&r, &suite_creds, 604800, &url, &err), 0);
	CHECK(strncmp(url.data, want, strlen(want)) == 0);
	CHECK_INT(strlen(url.data), strlen(want) + 64);
	CHECK(strchr(url.data, '#') == NULL);
	r.url = "https://h.example/?";
	CHECK_INT(sigv4_presign(&r, &suite_creds, 1, &url, &err), 0);
	CHECK(strncmp(url.data, "https://h.example/?X-Amz-Algorithm=", 35) ==
	      0);
	r.url = "https://h.example";
	CHECK_INT(sigv4_presign(&r, &suite_creds, 1, &url, &err), 0);
	CHECK(strncmp(url.data, "https://h.example?X-Amz-Algorithm=", 34) == 0);
	buf_free(&url);
}

static void
expect_input_error(const struct sigv4_request *r, const struct sigv4_creds *c,
                   long expires)
{
	struct sigv4_signed s;
	struct soar_error err = {"", "", 0, 0};
	struct buf out = BUF_INIT;
	int rc;

	sigv4_signed_init(&s);
	rc = expires ? sigv4_presign(r, c, expires, &out, &err)
	             : sigv4_sign(r, c, &s, &err);
	if (rc != -1 || strcmp(err.code, "input") != 0)
		printf("# %s: rc %d, code \"%s\"\n", r->url ? r->url : "(null)",
		       rc, err.code);
	CHECK_INT(rc, -1);
	CHECK_STR(err.code, "input");
	CHECK(err.message[0] != '\0');
	CHECK_INT(s.nheaders, 0);
	CHECK_INT(out.len, 0);
	buf_free(&out);
	sigv4_signed_free(&s);
}

static void
test_bad_input(void)
{
	static const char *const urls[] = {
	        "",
	        "h.example/x",
	        "ftp://h.example/",
	        "https:/h.example/",
	        "https://",
	        "https:///x",
	        "https://:443/",
	        "https://h.example:/",
	        "https://h.example:0/",
	        "https://h.example:65536/",
	        "https://h.example:99999999999999999999/",
	        "https://h.example:12a/",
	        "https://h.example:-1/",
	        "https://user@h.example/",
	        "https://h.example/\r\nX-Injected: 1",
	        "https://h.example/\x7f",
	        "https://[::1/",
	        "https://[::1]x/",
	        "http://h example/",
	};
	struct sigv4_creds nokey = {"", SUITE_SECRET, NULL};
	struct http_header noname = {"", "v"};
	struct sigv4_request r;
	size_t i;

	for (i = 0; i < sizeof(urls) / sizeof(*urls); i++) {
		r = request("GET", urls[i]);
		expect_input_error(&r, &suite_creds, 0);
		expect_input_error(&r, &suite_creds, 60);
	}
	r = request("GET", NULL);
	expect_input_error(&r, &suite_creds, 0);
	r = request("GET", "https://h.example/");
	expect_input_error(&r, &nokey, 0);
	expect_input_error(&r, &suite_creds, -1);
	expect_input_error(&r, &suite_creds, 604801);
	r.region = "";
	expect_input_error(&r, &suite_creds, 0);
	r = request("", "https://h.example/");
	expect_input_error(&r, &suite_creds, 0);
	r = request("GET", "https://h.example/");
	r.body_len = 1;
	expect_input_error(&r, &suite_creds, 0);
	r = request("GET", "https://h.example/");
	r.headers = &noname;
	r.nheaders = 1;
	expect_input_error(&r, &suite_creds, 0);
	/* Year 10000 and later do not fit X-Amz-Date. */
	if (sizeof(time_t) > 4) {
		r = request("GET", "https://h.example/");
		r.now = (time_t)253402300800LL;
		expect_input_error(&r, &suite_creds, 0);
	}
}

int
main(void)
{
	UNIT_RUN(test_aws4_testsuite);
	UNIT_RUN(test_aws_signing_test_suite);
	UNIT_RUN(test_api_md_vectors);
	UNIT_RUN(test_host_port);
	UNIT_RUN(test_session_token);
	UNIT_RUN(test_unsigned_headers);
	UNIT_RUN(test_header_values);
	UNIT_RUN(test_paths);
	UNIT_RUN(test_query);
	UNIT_RUN(test_sign_body);
	UNIT_RUN(test_presign_url);
	UNIT_RUN(test_bad_input);
	return UNIT_END();
}
