/* aws.c: endpoint, signature, retry rule and error envelope of AWS calls. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <expat.h>
#include <jv.h>

#include "aws.h"
#include "log.h"
#include "buf.h"
#include "sigv4.h"

/* Throttling codes of the AWS SDKs' standard retry mode. */
static const char *const throttle_codes[] = {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
};

int
aws_throttled(const char *code)
{
	for (size_t i = 0; i < sizeof(throttle_codes) / sizeof(*throttle_codes);
	     i++)
		if (strcmp(code, throttle_codes[i]) == 0)
			return 1;
	return 0;
}

int
aws_retry(void *arg, const struct http_response *resp)
{
	char code[128], msg[8];

	(void)arg;
	if (resp->status < 400)
		return -1;
	aws_error(resp, code, sizeof(code), msg, sizeof(msg));
	return aws_throttled(code) ? 1 : -1;
}

/* Copies s[0..n) into out as a C string, cut to fit. */
static void
copy(char *out, size_t outsz, const char *s, size_t n)
{
	if (outsz == 0)
		return;
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

/* The first <Code> and <Message> of an XML error document. */
struct xml_err {
	struct buf code, msg, *cur;
};

static void XMLCALL
xml_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct xml_err *x = ud;

	(void)attrs;
	x->cur = NULL;
	if (strcmp(name, "Code") == 0 && x->code.len == 0)
		x->cur = &x->code;
	else if (strcmp(name, "Message") == 0 && x->msg.len == 0)
		x->cur = &x->msg;
}

static void XMLCALL
xml_end(void *ud, const XML_Char *name)
{
	struct xml_err *x = ud;

	(void)name;
	x->cur = NULL;
}

static void XMLCALL
xml_text(void *ud, const XML_Char *s, int len)
{
	struct xml_err *x = ud;

	if (x->cur != NULL && x->cur->len < 1024)
		buf_append(x->cur, s, (size_t)len);
}

static void
xml_error(const struct http_response *resp, char *code, size_t codesz,
          char *msg, size_t msgsz)
{
	struct xml_err x = {BUF_INIT, BUF_INIT, NULL};
	XML_Parser p = XML_ParserCreate(NULL);

	if (p == NULL)
		return;
	XML_SetUserData(p, &x);
	XML_SetElementHandler(p, xml_start, xml_end);
	XML_SetCharacterDataHandler(p, xml_text);
	/* A malformed document still yields what was read before the fault. */
	XML_Parse(p, resp->body.data, (int)resp->body.len, 1);
	XML_ParserFree(p);
	if (code[0] == '\0' && x.code.len > 0)
		copy(code, codesz, x.code.data, x.code.len);
	if (x.msg.len > 0)
		copy(msg, msgsz, x.msg.data, x.msg.len);
	buf_free(&x.code);
	buf_free(&x.msg);
}

/* A member of a rest-json error body, by any of its spellings. */
static void
json_member(jv body, const char *const *names, char *out, size_t outsz)
{
	for (; *names != NULL && out[0] == '\0'; names++) {
		jv v = jv_object_get(jv_copy(body), jv_string(*names));

		if (jv_get_kind(v) == JV_KIND_STRING)
			copy(out, outsz, jv_string_value(v),
			     (size_t)jv_string_length_bytes(jv_copy(v)));
		jv_free(v);
	}
}

void
aws_error(const struct http_response *resp, char *code, size_t codesz,
          char *msg, size_t msgsz)
{
	static const char *const code_names[] = {"__type", "code", "Code",
	                                         NULL};
	static const char *const msg_names[] = {"message", "Message", NULL};
	const char *colon, *hash;

	if (codesz > 0)
		code[0] = '\0';
	if (msgsz > 0)
		msg[0] = '\0';
	/* The header wins; anything after ':' is not part of the code. */
	if (resp->error_type[0] != '\0') {
		colon = strchr(resp->error_type, ':');
		copy(code, codesz, resp->error_type,
		     colon ? (size_t)(colon - resp->error_type)
		           : strlen(resp->error_type));
	}
	if (resp->body.len == 0)
		return;
	if (resp->body.data[0] == '<' ||
	    strstr(resp->content_type, "xml") != NULL) {
		xml_error(resp, code, codesz, msg, msgsz);
		return;
	}
	jv body = jv_parse_sized(resp->body.data, (int)resp->body.len);

	if (jv_get_kind(body) == JV_KIND_OBJECT) {
		if (code[0] == '\0')
			json_member(body, code_names, code, codesz);
		json_member(body, msg_names, msg, msgsz);
	}
	jv_free(body);
	/* "__type" may be "namespace#Code". */
	if ((hash = strrchr(code, '#')) != NULL)
		memmove(code, hash + 1, strlen(hash + 1) + 1);
}

int
aws_submit(struct awscreds *ac, struct http *h, const struct aws_call *c,
           http_done_fn done, void *arg, struct soar_error *err)
{
	struct sigv4_creds cr;
	struct sigv4_signed sig;
	struct http_header hdr[5];
	struct http_request req;
	size_t nh = 0;
	char *base;
	struct buf url = BUF_INIT;
	int rc = -1;

	/* The region becomes part of a host name: never from an event
	 * unchecked, or a signed request could go anywhere. */
	if (c->region != NULL && !awscreds_region_ok(c->region)) {
		soar_error_set(err, "input", "'%.64s' is not a region name",
		               c->region);
		return -1;
	}
	if (awscreds_get(ac, &cr, err) < 0)
		return -1;
	base = awscreds_endpoint(ac, c->service_id, c->host_prefix, c->region);
	if (base == NULL) {
		soar_error_set(err, "nomem", "out of memory");
		return -1;
	}
	/* A base URL ending in '/' and a path starting with one make one. */
	size_t bl = strlen(base);

	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	if (buf_append(&url, base, bl) < 0 || buf_puts(&url, c->path) < 0) {
		soar_error_set(err, "nomem", "out of memory");
		free(base);
		buf_free(&url);
		return -1;
	}
	free(base);
	if (c->content_type != NULL)
		hdr[nh++] =
		        (struct http_header){"Content-Type", c->content_type};
	sigv4_signed_init(&sig);
	struct sigv4_request sr = {
	        .method = c->method,
	        .url = url.data,
	        .headers = hdr,
	        .nheaders = nh,
	        .body = c->body,
	        .body_len = c->body_len,
	        .region = c->region ? c->region : "us-east-1",
	        .service = c->signing_name,
	        .now = time(NULL),
	};
	if (sigv4_sign(&sr, &cr, &sig, err) < 0)
		goto out;
	for (size_t i = 0; i < sig.nheaders && nh < 5; i++)
		hdr[nh++] = sig.headers[i];
	req = (struct http_request){.method = c->method,
	                            .url = url.data,
	                            .headers = hdr,
	                            .nheaders = nh,
	                            .body = c->body,
	                            .body_len = c->body_len,
	                            .idempotent = c->idempotent};
	if (http_submit(h, &req, aws_retry, done, arg) < 0) {
		soar_error_set(err, "nomem", "out of memory");
		goto out;
	}
	rc = 0;
out:
	sigv4_signed_free(&sig);
	buf_free(&url);
	return rc;
}

int
aws_cli_option(struct aws_cli *o, int key, const char *arg)
{
	switch (key) {
	case AWS_OPT_PROFILE:
		o->profile = arg;
		return 1;
	case AWS_OPT_ROLE_ARN:
		o->role_arn = arg;
		return 1;
	case AWS_OPT_EXTERNAL_ID:
		o->external_id = arg;
		return 1;
	default:
		return 0;
	}
}

void
aws_cli_check(const struct cli *c, const struct aws_cli *o)
{
	if (o->external_id != NULL && o->role_arn == NULL)
		cli_usage_error(c, "--external-id needs --role-arn");
}

struct awscreds *
aws_cli_creds(struct cli *c, const struct aws_cli *o, const char *user_agent,
              int probe, int *status)
{
	struct awscreds_config ac = {.profile = o->profile,
	                             .region = o->region,
	                             .role_arn = o->role_arn,
	                             .external_id = o->external_id,
	                             .log = &c->log,
	                             .user_agent = user_agent};
	struct soar_error err = {0};
	struct sigv4_creds probe_creds;
	struct awscreds *creds = awscreds_new(&ac, &err);

	if (creds == NULL) {
		log_error(&c->log, "%s", err.message);
		*status = SOAR_EXIT_USAGE;
		return NULL;
	}
	if (probe && awscreds_get(creds, &probe_creds, &err) < 0) {
		log_error(&c->log, "%s", err.message);
		*status = strcmp(err.code, "credentials") == 0 ||
		                          strcmp(err.code, "config") == 0
		                  ? SOAR_EXIT_USAGE
		                  : SOAR_EXIT_FATAL;
		awscreds_free(creds);
		return NULL;
	}
	return creds;
}
