/*
 * fuzz_xml.c: the expat parsers of AWS XML answers: aws_error (lib/aws.h),
 * which reads <Code> and <Message> from an error body (and rest-json
 * error bodies too), and the STS AssumeRole reader of lib/awscreds.c
 * (sts_parse, sts_credentials, sts_refusal and the RFC 3339 parse_time
 * they use).  Those are static, so this file includes lib/awscreds.c
 * whole; the archive's awscreds.o is then never linked.  Nothing here
 * touches the network.
 *
 * The input is the response body.  aws_error gets it as a struct buf
 * (data[len] is NUL, as buf.h promises) with an XML and a JSON
 * Content-Type, with and without an x-amzn-ErrorType header, into exactly
 * sized code and message buffers.  Invariants: two calls agree; the
 * header's code (before ':') wins; the header never changes the message;
 * a smaller buffer gets a prefix of what a larger one gets; a JSON
 * "__type" keeps no namespace ('#'); aws_retry agrees with aws_throttled.
 *
 * sts_parse gets the body in an exactly sized buffer, not NUL-terminated,
 * the others in a struct http_reply as lib/http fills it.
 * Invariants: two parses agree; it succeeds exactly when expat alone finds
 * the document well-formed and without a DTD; after a success every
 * element was closed; it keeps only the credential and error fields, each
 * trimmed, without NUL, at most 64 KiB; sts_credentials succeeds exactly
 * when all four credential fields are there and Expiration parses, then
 * returns them unchanged, and otherwise names no secret in its error;
 * sts_refusal leaves an "auth" or "http" error that keeps the status.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "lib/awscreds.c"

#define ROLE_ARN   "arn:aws:iam::123456789012:role/fuzz"
#define THROTTLE   "ThrottlingException:http://internal.amazon.com/coral/"
#define BIG        1100 /* larger than anything aws_error keeps */
#define SECRET_MIN 8    /* shorter values may occur in text by chance */

struct answer {
	char code[BIG], msg[BIG];
};

/* Runs aws_error into exactly sized buffers and copies the result. */
static void
run_aws_error(const struct http_response *resp, size_t codesz, size_t msgsz,
              struct answer *a)
{
	char *code = malloc(codesz), *msg = malloc(msgsz);

	if (code == NULL || msg == NULL)
		abort();
	memset(code, 'X', codesz);
	memset(msg, 'X', msgsz);
	aws_error(resp, code, codesz, msg, msgsz);
	FUZZ_CHECK(memchr(code, '\0', codesz) != NULL);
	FUZZ_CHECK(memchr(msg, '\0', msgsz) != NULL);
	snprintf(a->code, sizeof(a->code), "%s", code);
	snprintf(a->msg, sizeof(a->msg), "%s", msg);
	free(code);
	free(msg);
}

static int
is_prefix(const char *small, const char *big, size_t sz)
{
	size_t n = strlen(big) < sz - 1 ? strlen(big) : sz - 1;

	return strlen(small) == n && memcmp(small, big, n) == 0;
}

static void
fuzz_aws_error(const uint8_t *data, size_t size)
{
	static const char *const types[] = {"text/xml",
	                                    "application/x-amz-json-1.1"};
	struct http_response resp;
	struct answer *a = malloc(4 * sizeof(*a));
	char *body = fuzz_str(data, size);

	if (a == NULL)
		abort();
	for (size_t t = 0; t < 2; t++) {
		int xml = (size > 0 && data[0] == '<') || t == 0;

		memset(&resp, 0, sizeof(resp));
		resp.status = 400;
		resp.body.data = body;
		resp.body.len = size;
		resp.body.cap = size + 1;
		snprintf(resp.content_type, sizeof(resp.content_type), "%s",
		         types[t]);
		run_aws_error(&resp, BIG, BIG, &a[0]);
		run_aws_error(&resp, BIG, BIG, &a[1]);
		FUZZ_CHECK(strcmp(a[0].code, a[1].code) == 0);
		FUZZ_CHECK(strcmp(a[0].msg, a[1].msg) == 0);
		/* What aws_retry passes: a message of 8 bytes. */
		run_aws_error(&resp, 128, 8, &a[2]);
		FUZZ_CHECK(is_prefix(a[2].msg, a[0].msg, 8));
		if (xml)
			FUZZ_CHECK(is_prefix(a[2].code, a[0].code, 128));
		else
			FUZZ_CHECK(strchr(a[0].code, '#') == NULL);
		FUZZ_CHECK(aws_retry(NULL, &resp) ==
		           (aws_throttled(a[2].code) ? 1 : -1));
		/* The header's code wins and leaves the message alone. */
		snprintf(resp.error_type, sizeof(resp.error_type), "%s",
		         THROTTLE);
		run_aws_error(&resp, BIG, BIG, &a[3]);
		FUZZ_CHECK(strcmp(a[3].code, "ThrottlingException") == 0);
		FUZZ_CHECK(strcmp(a[3].msg, a[0].msg) == 0);
		FUZZ_CHECK(aws_retry(NULL, &resp) == 1);
	}
	free(a);
	free(body);
}

/* Notes that the document has a DTD. */
static void XMLCALL
on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
           const XML_Char *pubid, int has_internal)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal;
	*(int *)ud = 1;
}

/* Parses body with a bare expat parser made as sts_parse makes its own.
 * Returns 1 when it is well-formed and has no DTD. */
static int
expat_accepts(const char *body, size_t len)
{
	XML_Parser p = XML_ParserCreateNS(NULL, '|');
	int dtd = 0, ok;

	if (p == NULL)
		abort();
	XML_SetUserData(p, &dtd);
	XML_SetStartDoctypeDeclHandler(p, on_doctype);
	ok = XML_Parse(p, body, (int)len, 1) == XML_STATUS_OK;
	XML_ParserFree(p);
	return ok && !dtd;
}

/* Whether two kept values are the same (or both absent). */
static int
same_value(const struct buf *a, const struct buf *b)
{
	if (a->data == NULL || b->data == NULL)
		return a->data == b->data;
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* An error message must not quote a secret that is long enough to be
 * told apart from the text around it. */
static void
check_no_secret(const char *message, const struct sts_xml *x, int id)
{
	const char *s = x->v[id].data;

	if (s == NULL || x->v[id].len < SECRET_MIN ||
	    strstr(ROLE_ARN, s) != NULL ||
	    (x->v[X_EXP].data != NULL && strstr(x->v[X_EXP].data, s) != NULL))
		return;
	FUZZ_CHECK(strstr(message, s) == NULL);
}

static void
fuzz_sts(const uint8_t *data, size_t size)
{
	const struct role r = {.arn = ROLE_ARN};
	char *body = fuzz_bytes(data, size), *cbody = fuzz_str(data, size);
	struct sts_xml x, y;
	struct http_reply f;
	struct creds out;
	struct soar_error err;
	time_t t = 0, t2 = 0;
	int rc, rc2, times_ok = -1;

	rc = sts_parse(body, size, &x);
	rc2 = sts_parse(body, size, &y);
	FUZZ_CHECK(rc == 0 || rc == -1);
	FUZZ_CHECK(rc == rc2);
	for (int i = 0; i < X_N; i++)
		FUZZ_CHECK(same_value(&x.v[i], &y.v[i]));
	if (size < XML_TEXT_MAX)
		FUZZ_CHECK((rc == 0) == expat_accepts(body, size));
	if (rc == 0)
		FUZZ_CHECK(x.depth == 0);
	FUZZ_CHECK(x.v[X_OTHER].data == NULL);
	FUZZ_CHECK(x.v[X_CREDENTIALS].data == NULL);
	FUZZ_CHECK(x.v[X_ERROR].data == NULL);
	for (int i = 0; i < X_N; i++) {
		const struct buf *v = &x.v[i];

		if (v->data == NULL)
			continue;
		FUZZ_CHECK(v->len <= XML_TEXT_MAX && strlen(v->data) == v->len);
		FUZZ_CHECK(v->len == 0 ||
		           (strchr(" \t\r\n", v->data[0]) == NULL &&
		            strchr(" \t\r\n", v->data[v->len - 1]) == NULL));
	}
	if (x.v[X_EXP].data != NULL) {
		times_ok = parse_time(x.v[X_EXP].data, &t) == 0;
		FUZZ_CHECK(times_ok == (parse_time(x.v[X_EXP].data, &t2) == 0));
		FUZZ_CHECK(!times_ok || t == t2);
	}

	/* The readers of an AssumeRole answer, on this body (a struct buf:
	 * NUL-terminated). */
	memset(&f, 0, sizeof(f));
	f.resp.status = 200;
	f.resp.body.data = cbody;
	f.resp.body.len = size;
	f.resp.body.cap = size + 1;
	memset(&out, 0, sizeof(out));
	soar_error_clear(&err);
	rc2 = sts_credentials(&r, &f, &out, &err);
	FUZZ_CHECK(rc2 == 0 || rc2 == -1);
	FUZZ_CHECK((rc2 == 0) == (rc == 0 && x.v[X_AK].len > 0 &&
	                          x.v[X_SK].len > 0 && x.v[X_TOKEN].len > 0 &&
	                          x.v[X_EXP].len > 0 && times_ok == 1));
	if (rc2 == 0) {
		FUZZ_CHECK(strcmp(out.ak, x.v[X_AK].data) == 0);
		FUZZ_CHECK(strcmp(out.sk, x.v[X_SK].data) == 0);
		FUZZ_CHECK(out.token &&
		           strcmp(out.token, x.v[X_TOKEN].data) == 0);
		FUZZ_CHECK(out.expires == t);
		creds_free(&out);
	} else {
		FUZZ_CHECK(strcmp(err.code, "credentials") == 0);
		check_no_secret(err.message, &x, X_SK);
		check_no_secret(err.message, &x, X_TOKEN);
	}

	f.resp.status = 400;
	soar_error_set(&err, "http", "HTTP 400");
	err.status = 400;
	err.attempts = 1;
	sts_refusal(&r, &f, &err);
	FUZZ_CHECK(strcmp(err.code, "http") == 0 ||
	           strcmp(err.code, "auth") == 0);
	FUZZ_CHECK(err.status == 400 && err.attempts == 1);
	if (rc == 0 && x.v[X_CODE].data != NULL)
		FUZZ_CHECK(strncmp(err.message, "STS AssumeRole " ROLE_ARN ": ",
		                   strlen("STS AssumeRole " ROLE_ARN ": ")) ==
		           0);

	sts_xml_free(&x);
	sts_xml_free(&y);
	free(body);
	free(cbody);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_aws_error(data, size);
	fuzz_sts(data, size);
	return 0;
}
