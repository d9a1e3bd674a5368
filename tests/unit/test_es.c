/*
 * test_es.c: lib/es, the Kibana and Elasticsearch endpoints, credentials,
 * headers, error envelopes and the alert summary.
 *
 * Every es_init() gets its own envp array: the real environment and the
 * user's config file are never read (no HOME nor XDG_CONFIG_HOME in the
 * arrays, so lib/secret finds no config file).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jv.h>

#include "buf.h"
#include "es.h"
#include "http.h"
#include "unit.h"

/* base64("simid:simkey") and base64("elastic:changeme"), computed with
 * coreutils' base64, not with the code under test. */
#define SIM_APIKEY    "c2ltaWQ6c2lta2V5"
#define ELASTIC_BASIC "ZWxhc3RpYzpjaGFuZ2VtZQ=="

static char tmpdir[64];

/* ---- helpers --------------------------------------------------------- */

/* Writes text to tmpdir/name and returns the path in p (PATH_LEN). */
static char *
tmp_file(char *p, const char *name, const char *text)
{
	FILE *f;

	pathf(p, "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		perror(p);
		exit(1);
	}
	return p;
}

/* es_init() that must succeed; on failure prints why and marks the test. */
static int
init_ok(struct es *e, const char *space, const char *const *envp)
{
	struct soar_error err = {0};

	if (es_init(e, space, envp, &err) == 0)
		return 1;
	printf("# es_init failed: %s: %s\n", err.code, err.message);
	unit_failed = 1;
	return 0;
}

/* es_init() that must fail with code; returns the message through msg. */
static void
init_fails(const char *space, const char *const *envp, const char *code,
           const char *msg_part)
{
	struct soar_error err = {0};
	struct es e;

	CHECK_INT(es_init(&e, space, envp, &err), -1);
	CHECK_STR(err.code, code);
	if (msg_part != NULL && strstr(err.message, msg_part) == NULL) {
		printf("# message \"%s\" lacks \"%s\"\n", err.message,
		       msg_part);
		unit_failed = 1;
	}
	/* A failed init leaves nothing to free, and es_free() takes it. */
	CHECK(e.url == NULL && e.auth == NULL && e.space == NULL);
	es_free(&e);
}

/* The value of header name among es_headers()' answer, or NULL. */
static const char *
header(const struct http_header *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(h[i].name, name) == 0)
			return h[i].value;
	return NULL;
}

/* The compact JSON text of v (consumed) into out (n bytes). */
static const char *
dump(jv v, char *out, size_t n)
{
	jv s = jv_dump_string(v, JV_PRINT_SORTED);

	snprintf(out, n, "%s", jv_string_value(s));
	jv_free(s);
	return out;
}

static jv
parse(const char *text)
{
	jv v = jv_parse(text);

	if (!jv_is_valid(v)) {
		printf("# test JSON does not parse: %s\n", text);
		exit(1);
	}
	return v;
}

/* ---- es_init ----------------------------------------------------------- */

static void
test_init_url(void)
{
	const char *none[] = {"ES_API_KEY=k", NULL};
	const char *empty[] = {"ES_URL=", "ES_API_KEY=k", NULL};
	const char *ftp[] = {"ES_URL=ftp://kibana:5601", "ES_API_KEY=k", NULL};
	const char *bare[] = {"ES_URL=kibana:5601", "ES_API_KEY=k", NULL};
	const char *slashes[] = {"ES_URL=https://kibana:5601///",
	                         "ES_API_KEY=k", NULL};
	const char *path[] = {"ES_URL=http://h/kibana/", "ES_API_KEY=k", NULL};
	struct es e;

	init_fails(NULL, none, "usage", "ES_URL is not set");
	init_fails(NULL, empty, "usage", "ES_URL is not set");
	{
		const char *userinfo[] = {
		        "ES_URL=https://elastic:hunter2@kibana:5601",
		        "ES_API_KEY=k", NULL};
		const char *pubinfo[] = {
		        "ES_URL=https://kibana:5601",
		        "KIBANA_PUBLIC_URL=https://u:p@kibana/x",
		        "ES_API_KEY=k", NULL};
		const char *at_in_path[] = {"ES_URL=https://kibana:5601/a@b",
		                            "ES_API_KEY=k", NULL};
		struct soar_error e2;
		struct es ok;

		init_fails(NULL, userinfo, "usage", "ES_URL holds credentials");
		init_fails(NULL, pubinfo, "usage",
		           "KIBANA_PUBLIC_URL holds credentials");
		CHECK_INT(es_init(&ok, NULL, at_in_path, &e2), 0);
		es_free(&ok);
	}
	init_fails(NULL, ftp, "usage", "http:// or https://");
	init_fails(NULL, bare, "usage", "http:// or https://");
	if (init_ok(&e, NULL, slashes)) {
		CHECK_STR(e.url, "https://kibana:5601");
		CHECK(e.space == NULL);
		CHECK(e.public_url == NULL);
		es_free(&e);
	}
	if (init_ok(&e, NULL, path)) {
		CHECK_STR(e.url, "http://h/kibana");
		es_free(&e);
	}
}

static void
test_init_public_url(void)
{
	const char *bad[] = {"ES_URL=http://k", "ES_API_KEY=k",
	                     "KIBANA_PUBLIC_URL=kibana.example", NULL};
	const char *good[] = {"ES_URL=http://k", "ES_API_KEY=k",
	                      "KIBANA_PUBLIC_URL=https://kibana.example/",
	                      NULL};
	const char *empty[] = {"ES_URL=http://k", "ES_API_KEY=k",
	                       "KIBANA_PUBLIC_URL=", NULL};
	struct es e;

	init_fails(NULL, bad, "usage", "KIBANA_PUBLIC_URL");
	if (init_ok(&e, NULL, good)) {
		CHECK_STR(e.public_url, "https://kibana.example");
		es_free(&e);
	}
	if (init_ok(&e, NULL, empty)) {
		CHECK(e.public_url == NULL);
		es_free(&e);
	}
}

static void
test_init_apikey(void)
{
	/* The API key wins over a user and password. */
	const char *envp[] = {"ES_URL=http://k", "ES_USER=elastic",
	                      "ES_PASSWORD=changeme", "ES_API_KEY=" SIM_APIKEY,
	                      NULL};
	struct es e;

	if (init_ok(&e, NULL, envp)) {
		CHECK_STR(e.auth, "Authorization: ApiKey " SIM_APIKEY);
		es_free(&e);
		/* es_free() leaves a zeroed struct behind. */
		CHECK(e.auth == NULL && e.url == NULL);
	}
}

static void
test_init_basic(void)
{
	const char *envp[] = {"ES_URL=http://k", "ES_USER=elastic",
	                      "ES_PASSWORD=changeme", NULL};
	/* An empty API key counts as unset. */
	const char *empty_key[] = {"ES_URL=http://k",
	                           "ES_API_KEY=", "ES_USER=elastic",
	                           "ES_PASSWORD=changeme", NULL};
	/* "elastic:changeme" (16 bytes), "ab:cd" (5) and "a:b" (3) end in
	 * two, one and no '=' of padding; the expected texts come from
	 * coreutils' base64. */
	const char *pad1[] = {"ES_URL=http://k", "ES_USER=ab", "ES_PASSWORD=cd",
	                      NULL};
	const char *pad0[] = {"ES_URL=http://k", "ES_USER=a", "ES_PASSWORD=b",
	                      NULL};
	/* A long pair: EVP_EncodeBlock must not break lines at 64. */
	const char *longer[] = {
	        "ES_URL=http://k", "ES_USER=soar-automation-service-account",
	        "ES_PASSWORD=a-long-password-with:colon-01234", NULL};
	struct es e;

	if (init_ok(&e, NULL, envp)) {
		CHECK_STR(e.auth, "Authorization: Basic " ELASTIC_BASIC);
		es_free(&e);
	}
	if (init_ok(&e, NULL, empty_key)) {
		CHECK_STR(e.auth, "Authorization: Basic " ELASTIC_BASIC);
		es_free(&e);
	}
	if (init_ok(&e, NULL, pad1)) {
		CHECK_STR(e.auth, "Authorization: Basic YWI6Y2Q=");
		es_free(&e);
	}
	if (init_ok(&e, NULL, pad0)) {
		CHECK_STR(e.auth, "Authorization: Basic YTpi");
		es_free(&e);
	}
	if (init_ok(&e, NULL, longer)) {
		CHECK_STR(e.auth,
		          "Authorization: Basic "
		          "c29hci1hdXRvbWF0aW9uLXNlcnZpY2UtYWNjb3VudDphLWxvbm"
		          "ctcGFzc3dvcmQtd2l0aDpjb2xvbi0wMTIzNA==");
		es_free(&e);
	}
}

static void
test_init_no_credentials(void)
{
	const char *none[] = {"ES_URL=http://k", NULL};
	const char *user_only[] = {"ES_URL=http://k", "ES_USER=elastic", NULL};
	const char *pass_only[] = {"ES_URL=http://k", "ES_PASSWORD=x", NULL};

	init_fails(NULL, none, "usage", "ES_API_KEY");
	init_fails(NULL, user_only, "usage", "ES_USER and ES_PASSWORD");
	init_fails(NULL, pass_only, "usage", "ES_USER and ES_PASSWORD");
}

static void
test_init_credential_files(void)
{
	char kf[PATH_LEN], pf[PATH_LEN], kv[PATH_LEN + 32], pv[PATH_LEN + 32];
	struct es e;

	/* Trailing newlines are dropped, as lib/secret does. */
	tmp_file(kf, "apikey", SIM_APIKEY "\n");
	tmp_file(pf, "password", "changeme\r\n");
	snprintf(kv, sizeof(kv), "ES_API_KEY_FILE=%s", kf);
	snprintf(pv, sizeof(pv), "ES_PASSWORD_FILE=%s", pf);
	{
		const char *envp[] = {"ES_URL=http://k", kv, NULL};

		if (init_ok(&e, NULL, envp)) {
			CHECK_STR(e.auth, "Authorization: ApiKey " SIM_APIKEY);
			es_free(&e);
		}
	}
	{
		const char *envp[] = {"ES_URL=http://k", "ES_USER=elastic", pv,
		                      NULL};

		if (init_ok(&e, NULL, envp)) {
			CHECK_STR(e.auth,
			          "Authorization: Basic " ELASTIC_BASIC);
			es_free(&e);
		}
	}
	{
		/* The variable wins over its _FILE. */
		const char *envp[] = {"ES_URL=http://k", "ES_API_KEY=direct",
		                      kv, NULL};

		if (init_ok(&e, NULL, envp)) {
			CHECK_STR(e.auth, "Authorization: ApiKey direct");
			es_free(&e);
		}
	}
}

/* A credential file that cannot be read fails es_init() with code
 * "config", and a message that names the variable and not the value. */
static void
test_init_credential_file_unreadable(void)
{
	char missing[PATH_LEN], var[PATH_LEN + 32];
	struct soar_error err = {0};
	struct es e;

	pathf(missing, "%s/no-such-file", tmpdir);
	snprintf(var, sizeof(var), "ES_API_KEY_FILE=%s", missing);
	{
		const char *envp[] = {"ES_URL=http://k", var, NULL};

		CHECK_INT(es_init(&e, NULL, envp, &err), -1);
		CHECK(strstr(err.message, "ES_API_KEY_FILE") != NULL);
		CHECK_STR(err.code, "config");
		es_free(&e);
	}
}

static void
test_init_space(void)
{
	const char *envp[] = {"ES_URL=http://k/", "ES_API_KEY=k", NULL};
	struct es e;

	init_fails("Soc", envp, "usage", "--space");
	init_fails("", envp, "usage", "--space");
	init_fails("a/b", envp, "usage", "--space");
	init_fails("../x", envp, "usage", "--space");
	init_fails("s p", envp, "usage", "--space");
	{
		char big[102];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		init_fails(big, envp, "usage", "--space");
	}
	if (init_ok(&e, "default", envp)) {
		CHECK(e.space == NULL);
		es_free(&e);
	}
	if (init_ok(&e, "soc_2-eu", envp)) {
		CHECK_STR(e.space, "soc_2-eu");
		es_free(&e);
	}
}

/* ---- URLs and headers ------------------------------------------------- */

static void
test_urls(void)
{
	const char *envp[] = {"ES_URL=https://kibana:5601//", "ES_API_KEY=k",
	                      NULL};
	struct buf b = BUF_INIT;
	struct es e;

	if (init_ok(&e, "soc", envp)) {
		buf_puts(&b, "left over");
		CHECK_INT(es_kibana_url(&e,
		                        "/api/detection_engine/signals/"
		                        "status",
		                        &b),
		          0);
		CHECK_STR(b.data, "https://kibana:5601/s/soc/api/"
		                  "detection_engine/signals/status");
		CHECK_INT(
		        es_url(&e, "/.alerts-security.alerts-soc/_search", &b),
		        0);
		CHECK_STR(b.data, "https://kibana:5601/.alerts-security."
		                  "alerts-soc/_search");
		es_free(&e);
	}
	/* "default" is the space without a prefix. */
	if (init_ok(&e, "default", envp)) {
		CHECK_INT(es_kibana_url(&e,
		                        "/api/detection_engine/signals/"
		                        "search",
		                        &b),
		          0);
		CHECK_STR(b.data, "https://kibana:5601/api/detection_engine/"
		                  "signals/search");
		es_free(&e);
	}
	if (init_ok(&e, NULL, envp)) {
		CHECK_INT(es_kibana_url(&e, "/api/x", &b), 0);
		CHECK_STR(b.data, "https://kibana:5601/api/x");
		es_free(&e);
	}
	buf_free(&b);
}

static void
test_headers(void)
{
	const char *envp[] = {"ES_URL=http://k", "ES_API_KEY=" SIM_APIKEY,
	                      NULL};
	const struct http_header *h;
	size_t n = 99;
	struct es e;

	if (!init_ok(&e, NULL, envp))
		return;
	h = es_headers(&e, 1, "application/json", &n);
	CHECK_INT(n, 4);
	CHECK_STR(header(h, n, "Authorization"), "ApiKey " SIM_APIKEY);
	CHECK_STR(header(h, n, "Content-Type"), "application/json");
	CHECK_STR(header(h, n, "kbn-xsrf"), "true");
	CHECK_STR(header(h, n, "elastic-api-version"), "2023-10-31");
	/* Elasticsearch gets neither Kibana header. */
	h = es_headers(&e, 0, "application/x-ndjson", &n);
	CHECK_INT(n, 2);
	CHECK_STR(header(h, n, "Authorization"), "ApiKey " SIM_APIKEY);
	CHECK_STR(header(h, n, "Content-Type"), "application/x-ndjson");
	CHECK(header(h, n, "kbn-xsrf") == NULL);
	CHECK(header(h, n, "elastic-api-version") == NULL);
	es_free(&e);
}

/* ---- es_error ---------------------------------------------------------- */

/* es_error() on an answer with status and body text. */
static void
answer_error(long status, const char *body, struct soar_error *err)
{
	struct http_response r = {.status = status, .attempts = 2};

	if (body != NULL)
		buf_puts(&r.body, body);
	memset(err, 0, sizeof(*err));
	es_error("signals status", &r, NULL, err);
	buf_free(&r.body);
}

static void
test_error_siem_shape(void)
{
	struct soar_error err;

	answer_error(500,
	             "{\"status_code\":500,\"message\":\"index_not_found\"}",
	             &err);
	CHECK_STR(err.code, "http");
	CHECK_STR(err.message, "signals status: HTTP 500: index_not_found");
	CHECK_INT(err.status, 500);
	CHECK_INT(err.attempts, 2);
	answer_error(409,
	             "{\"message\":\"Response Error\",\"status_code\":409}",
	             &err);
	CHECK_STR(err.message, "signals status: HTTP 409: Response Error");
}

static void
test_error_es_shape(void)
{
	struct soar_error err;

	answer_error(401,
	             "{\"error\":{\"root_cause\":[{\"type\":\"security_"
	             "exception\",\"reason\":\"r\"}],\"type\":\"security_"
	             "exception\",\"reason\":\"missing authentication "
	             "credentials\"},\"status\":401}",
	             &err);
	CHECK_STR(err.code, "auth");
	CHECK_STR(err.message, "signals status: HTTP 401: security_exception: "
	                       "missing authentication credentials");
	CHECK_INT(err.status, 401);
	answer_error(403, "{\"error\":{\"reason\":\"no privilege\"}}", &err);
	CHECK_STR(err.code, "auth");
	CHECK_STR(err.message, "signals status: HTTP 403: no privilege");
	answer_error(404,
	             "{\"error\":{\"type\":\"index_not_found_exception\"}}",
	             &err);
	CHECK_STR(err.code, "http");
	CHECK_STR(err.message,
	          "signals status: HTTP 404: index_not_found_exception");
}

/* Kibana's platform shape {"statusCode","error","message"}: the message
 * is what tells the user what is wrong.  Elasticsearch's plain-string
 * error is said once. */
static void
test_error_platform_shape(void)
{
	struct soar_error err;

	answer_error(
	        400,
	        "{\"statusCode\":400,\"error\":\"Bad Request\",\"message\":"
	        "\"Request must contain a kbn-xsrf header.\"}",
	        &err);
	CHECK_STR(err.code, "http");
	CHECK_INT(err.status, 400);
	CHECK(strstr(err.message, "Request must contain a kbn-xsrf header.") !=
	      NULL);
	answer_error(401,
	             "{\"statusCode\":401,\"error\":\"Unauthorized\","
	             "\"message\":\"unable to authenticate user [elastic]\"}",
	             &err);
	CHECK_STR(err.code, "auth");
	CHECK(strstr(err.message, "unable to authenticate user [elastic]") !=
	      NULL);
	/* Elasticsearch's error as a plain string, said once. */
	answer_error(406,
	             "{\"error\":\"Content-Type header [text/plain] is not "
	             "supported\",\"status\":406}",
	             &err);
	CHECK_STR(err.message, "signals status: HTTP 406: Content-Type header "
	                       "[text/plain] is not supported");
}

static void
test_error_not_json(void)
{
	struct soar_error err;

	answer_error(502, "<html>Bad Gateway</html>", &err);
	CHECK_STR(err.code, "http");
	CHECK_STR(err.message,
	          "signals status: HTTP 502 (the answer is not JSON)");
	CHECK_INT(err.status, 502);
	answer_error(503, NULL, &err);
	CHECK_STR(err.message, "signals status: HTTP 503");
	/* JSON that is not one of the shapes. */
	answer_error(400, "{\"unexpected\":true}", &err);
	CHECK_STR(err.message, "signals status: HTTP 400");
	answer_error(403, "[1,2]", &err);
	CHECK_STR(err.code, "auth");
	CHECK_STR(err.message, "signals status: HTTP 403");
}

static void
test_error_transport(void)
{
	struct http_response r = {.status = 0, .attempts = 5};
	struct soar_error herr = {0}, err = {0};

	soar_error_set(&herr, "network", "connect to 127.0.0.1:9: refused");
	herr.attempts = 5;
	es_error("signals status", &r, &herr, &err);
	CHECK_STR(err.code, "network");
	CHECK(strstr(err.message, "connect to 127.0.0.1:9: refused") != NULL);
	CHECK_INT(err.status, 0);
	CHECK_INT(err.attempts, 5);
	/* Without a response at all. */
	memset(&err, 0, sizeof(err));
	soar_error_set(&herr, "timeout", "no answer in 30 s");
	es_error("signals status", NULL, &herr, &err);
	CHECK_STR(err.code, "timeout");
	CHECK_INT(err.status, 0);
}

/* ---- es_field ---------------------------------------------------------- */

static void
check_field(jv src, const char *path, const char *want)
{
	char got[512];
	jv v = es_field(src, path);

	if (want == NULL) {
		if (jv_is_valid(v))
			printf("# %s: found %s, want nothing\n", path,
			       dump(jv_copy(v), got, sizeof(got)));
		CHECK(!jv_is_valid(v));
		jv_free(v);
		return;
	}
	if (!jv_is_valid(v)) {
		printf("# %s: absent, want %s\n", path, want);
		unit_failed = 1;
		jv_free(v);
		return;
	}
	CHECK_STR(dump(v, got, sizeof(got)), want);
}

static void
test_field(void)
{
	jv flat = parse("{\"kibana.alert.rule.name\":\"R\","
	                "\"kibana.alert.severity\":\"high\","
	                "\"@timestamp\":\"2025-01-17T08:00:00.000Z\"}");
	jv nested = parse("{\"kibana\":{\"alert\":{\"rule\":{\"name\":\"N\"},"
	                  "\"severity\":\"low\"}},\"host\":{\"name\":\"h\"}}");
	/* Kibana 8 writes flat kibana.* beside nested ECS objects, and may
	 * split a path anywhere. */
	jv mixed = parse("{\"kibana.alert\":{\"rule.name\":\"M1\"},"
	                 "\"kibana\":{\"alert.severity\":\"medium\","
	                 "\"alert\":{\"risk_score\":42}},"
	                 "\"event.kind\":\"signal\",\"event\":{\"kind\":"
	                 "\"other\",\"category\":[\"process\"]},"
	                 "\"n\":null,\"a\":{\"b\":{\"c.d\":{\"e\":1}}}}");

	check_field(flat, "kibana.alert.rule.name", "\"R\"");
	check_field(flat, "kibana.alert.severity", "\"high\"");
	check_field(flat, "@timestamp", "\"2025-01-17T08:00:00.000Z\"");
	check_field(flat, "kibana.alert.rule", NULL);
	check_field(flat, "kibana", NULL);
	check_field(nested, "kibana.alert.rule.name", "\"N\"");
	check_field(nested, "kibana.alert.severity", "\"low\"");
	check_field(nested, "host.name", "\"h\"");
	check_field(nested, "kibana.alert",
	            "{\"rule\":{\"name\":\"N\"},"
	            "\"severity\":\"low\"}");
	check_field(nested, "host.name.x", NULL);
	check_field(nested, "host.ip", NULL);
	check_field(mixed, "kibana.alert.rule.name", "\"M1\"");
	check_field(mixed, "kibana.alert.severity", "\"medium\"");
	check_field(mixed, "kibana.alert.risk_score", "42");
	/* The flat key wins over the nested one. */
	check_field(mixed, "event.kind", "\"signal\"");
	check_field(mixed, "event.category", "[\"process\"]");
	check_field(mixed, "a.b.c.d.e", "1");
	/* A null value is present. */
	check_field(mixed, "n", "null");
	check_field(mixed, "kibana.alert.uuid", NULL);
	check_field(mixed, "", NULL);
	check_field(mixed, "nope.x", NULL);
	/* Not an object at all. */
	check_field(jv_number(1), "a", NULL);
	check_field(jv_null(), "a", NULL);
	jv_free(flat);
	jv_free(nested);
	jv_free(mixed);
}

/* ---- es_alert ---------------------------------------------------------- */

static void
check_alert(const struct es *e, const char *source, const char *id,
            const char *want)
{
	char got[1024], exp[1024];
	jv src = parse(source);
	jv a = es_alert(e, src, id);

	/* Compared sorted, so key order does not matter. */
	dump(a, got, sizeof(got));
	dump(parse(want), exp, sizeof(exp));
	CHECK_STR(got, exp);
	/* source was borrowed: still ours and intact. */
	CHECK(jv_get_kind(src) == JV_KIND_OBJECT);
	jv_free(src);
}

static void
test_alert_summary(void)
{
	check_alert(NULL,
	            "{\"@timestamp\":\"2025-01-17T08:00:00.000Z\","
	            "\"kibana.alert.uuid\":\"u1\","
	            "\"kibana.alert.rule.name\":\"Suspicious PowerShell\","
	            "\"kibana.alert.severity\":\"high\","
	            "\"kibana.alert.risk_score\":73,"
	            "\"kibana.alert.workflow_status\":\"open\"}",
	            "u1",
	            "{\"id\":\"u1\",\"source\":\"elastic\",\"title\":"
	            "\"Suspicious PowerShell\",\"severity\":\"high\","
	            "\"score\":73,\"status\":\"open\",\"created\":"
	            "\"2025-01-17T08:00:00.000Z\"}");
	/* Nested layout. */
	check_alert(NULL,
	            "{\"@timestamp\":\"2025-01-17T08:00:00.000Z\",\"kibana\":"
	            "{\"alert\":{\"rule\":{\"name\":\"R\"},\"severity\":"
	            "\"critical\",\"risk_score\":99,\"workflow_status\":"
	            "\"closed\"}}}",
	            "id-2",
	            "{\"id\":\"id-2\",\"source\":\"elastic\",\"title\":\"R\","
	            "\"severity\":\"critical\",\"score\":99,\"status\":"
	            "\"closed\",\"created\":\"2025-01-17T08:00:00.000Z\"}");
}

static void
test_alert_status(void)
{
	check_alert(NULL, "{\"kibana.alert.workflow_status\":\"in-progress\"}",
	            "x",
	            "{\"id\":\"x\",\"source\":\"elastic\",\"status\":"
	            "\"acknowledged\"}");
	check_alert(NULL, "{\"kibana.alert.workflow_status\":\"acknowledged\"}",
	            "x",
	            "{\"id\":\"x\",\"source\":\"elastic\",\"status\":"
	            "\"acknowledged\"}");
	check_alert(NULL,
	            "{\"kibana\":{\"alert\":{\"workflow_status\":\"closed\"}}}",
	            "x",
	            "{\"id\":\"x\",\"source\":\"elastic\",\"status\":"
	            "\"closed\"}");
	/* No status, or one that is not a string: none in the summary. */
	check_alert(NULL, "{\"kibana.alert.workflow_status\":3}", "x",
	            "{\"id\":\"x\",\"source\":\"elastic\"}");
	check_alert(NULL, "{}", "x", "{\"id\":\"x\",\"source\":\"elastic\"}");
}

static void
test_alert_fallbacks(void)
{
	/* Severity and score from the rule when the alert has none. */
	check_alert(NULL,
	            "{\"kibana.alert.rule.severity\":\"medium\","
	            "\"kibana.alert.rule.risk_score\":47}",
	            "x",
	            "{\"id\":\"x\",\"source\":\"elastic\",\"severity\":"
	            "\"medium\",\"score\":47}");
	/* The alert's own values win over the rule's. */
	check_alert(NULL,
	            "{\"kibana.alert.severity\":\"low\","
	            "\"kibana.alert.rule.severity\":\"high\","
	            "\"kibana.alert.risk_score\":21,"
	            "\"kibana\":{\"alert\":{\"rule\":{\"risk_score\":73}}}}",
	            "x",
	            "{\"id\":\"x\",\"source\":\"elastic\",\"severity\":"
	            "\"low\",\"score\":21}");
	/* A value of the wrong kind falls back too. */
	check_alert(NULL,
	            "{\"kibana.alert.risk_score\":\"73\","
	            "\"kibana.alert.rule.risk_score\":50,"
	            "\"kibana.alert.severity\":null,"
	            "\"kibana.alert.rule.severity\":\"high\","
	            "\"kibana.alert.rule.name\":7,\"@timestamp\":1}",
	            "x",
	            "{\"id\":\"x\",\"source\":\"elastic\",\"severity\":"
	            "\"high\",\"score\":50}");
}

static void
test_alert_url(void)
{
	const char *noenv[] = {"ES_URL=http://k", "ES_API_KEY=k", NULL};
	const char *pub[] = {"ES_URL=http://k", "ES_API_KEY=k",
	                     "KIBANA_PUBLIC_URL=https://kibana.example//",
	                     NULL};
	const char *src = "{\"kibana.alert.workflow_status\":\"open\"}";
	struct es e;

	/* No public URL: no link, space or not. */
	if (init_ok(&e, "soc", noenv)) {
		check_alert(&e, src, "abc",
		            "{\"id\":\"abc\",\"source\":\"elastic\",\"status\":"
		            "\"open\"}");
		es_free(&e);
	}
	if (init_ok(&e, NULL, pub)) {
		check_alert(&e, src, "abc",
		            "{\"id\":\"abc\",\"source\":\"elastic\",\"status\":"
		            "\"open\",\"url\":\"https://kibana.example/app/"
		            "security/alerts/redirect/abc\"}");
		es_free(&e);
	}
	if (init_ok(&e, "default", pub)) {
		check_alert(&e, src, "abc",
		            "{\"id\":\"abc\",\"source\":\"elastic\",\"status\":"
		            "\"open\",\"url\":\"https://kibana.example/app/"
		            "security/alerts/redirect/abc\"}");
		es_free(&e);
	}
	if (init_ok(&e, "soc", pub)) {
		check_alert(&e, src, "abc",
		            "{\"id\":\"abc\",\"source\":\"elastic\",\"status\":"
		            "\"open\",\"url\":\"https://kibana.example/s/soc/"
		            "app/security/alerts/redirect/abc\"}");
		es_free(&e);
	}
}

int
main(void)
{
	char cmd[PATH_LEN];
	int rc;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/soar-test-es.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	UNIT_RUN(test_init_url);
	UNIT_RUN(test_init_public_url);
	UNIT_RUN(test_init_apikey);
	UNIT_RUN(test_init_basic);
	UNIT_RUN(test_init_no_credentials);
	UNIT_RUN(test_init_credential_files);
	UNIT_RUN(test_init_credential_file_unreadable);
	UNIT_RUN(test_init_space);
	UNIT_RUN(test_urls);
	UNIT_RUN(test_headers);
	UNIT_RUN(test_error_siem_shape);
	UNIT_RUN(test_error_es_shape);
	UNIT_RUN(test_error_platform_shape);
	UNIT_RUN(test_error_not_json);
	UNIT_RUN(test_error_transport);
	UNIT_RUN(test_field);
	UNIT_RUN(test_alert_summary);
	UNIT_RUN(test_alert_status);
	UNIT_RUN(test_alert_fallbacks);
	UNIT_RUN(test_alert_url);
	rc = UNIT_END();
	unlink(pathf(cmd, "%s/apikey", tmpdir));
	unlink(pathf(cmd, "%s/password", tmpdir));
	rmdir(tmpdir);
	return rc;
}
