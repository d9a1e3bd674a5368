/*
 * test_http.c: lib/http against the vendor simulator.
 *
 * The test starts tests/sim/sim.py on a free loopback port, scripts its
 * faults through /_sim/faults and checks both what the client reports and
 * what the simulator received (/_sim/requests).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jv.h>

#include "http.h"
#include "sim.h"
#include "unit.h"

static long long
ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
fault(const char *json)
{
	free(sim_control("POST", "/_sim/faults", json, NULL));
}

static int
requests_to(const char *path)
{
	char q[256];
	char *s;
	jv v;
	int n;

	snprintf(q, sizeof(q), "/_sim/requests?path=%s", path);
	s = sim_control("GET", q, NULL, NULL);
	v = jv_parse(s);
	free(s);
	n = jv_get_kind(v) == JV_KIND_ARRAY ? jv_array_length(jv_copy(v)) : -1;
	jv_free(v);
	return n;
}

static void
reset(void)
{
	free(sim_control("POST", "/_sim/reset", NULL, NULL));
}

struct result {
	int done;
	long status;
	int attempts;
	long waited;
	char code[32];
	char message[512];
	struct buf body;
};

static void
on_done(void *arg, const struct http_response *resp,
        const struct soar_error *err)
{
	struct result *r = arg;

	r->done++;
	r->status = resp->status;
	r->attempts = resp->attempts;
	r->waited = resp->waited_ms;
	snprintf(r->code, sizeof(r->code), "%s", err ? err->code : "");
	snprintf(r->message, sizeof(r->message), "%s", err ? err->message : "");
	buf_append(&r->body, resp->body.data ? resp->body.data : "",
	           resp->body.len);
}

static struct http_config
config(void)
{
	struct http_config c;

	http_config_defaults(&c);
	c.backoff_base_ms = 20;
	c.backoff_cap_ms = 80;
	c.timeout_ms = 5000;
	c.seed = 42;
	return c;
}

/* Runs one request to path on a client made from cfg. */
static void
run1(const struct http_config *cfg, const char *method, const char *path,
     int idempotent, struct result *r)
{
	struct soar_error err;
	struct http *h = http_new(cfg, &err);
	char url[256];
	struct http_request req = {
	        .method = method, .url = url, .idempotent = idempotent};

	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "%s%s", sim_url, path);
	CHECK(h != NULL);
	if (h == NULL)
		return;
	CHECK_INT(http_submit(h, &req, NULL, on_done, r), 0);
	while (http_poll(h, 1000, -1) > 0)
		;
	http_free(h);
	CHECK_INT(r->done, 1);
}

static void
test_get(void)
{
	struct http_config c = config();
	struct result r;

	reset();
	run1(&c, "GET", "/echo/a?x=1", 1, &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.attempts, 1);
	CHECK_STR(r.code, "");
	CHECK(r.body.data && strstr(r.body.data, "\"/echo/a\"") != NULL);
	CHECK_INT(requests_to("/echo/a"), 1);
	buf_free(&r.body);
}

/* http_fetch: one request waited for; the answer is kept on success and
 * on failure, and other requests of the client go on meanwhile. */
static void
test_fetch(void)
{
	struct http_config c = config();
	struct soar_error err;
	struct http *h = http_new(&c, &err);
	char url[256], other[256];
	struct http_request req = {
	        .method = "GET", .url = url, .idempotent = 1};
	struct http_request req2 = {
	        .method = "GET", .url = other, .idempotent = 1};
	struct http_reply a;
	struct result r = {0};

	reset();
	CHECK(h != NULL);
	if (h == NULL)
		return;
	snprintf(url, sizeof(url), "%s/echo/f1", sim_url);
	snprintf(other, sizeof(other), "%s/echo/f2", sim_url);
	CHECK_INT(http_submit(h, &req2, NULL, on_done, &r), 0);
	CHECK_INT(http_fetch(h, &req, NULL, &a), 0);
	CHECK_INT(a.resp.status, 200);
	CHECK_STR(a.err.code, "");
	CHECK(a.resp.body.data && strstr(a.resp.body.data, "/echo/f1"));
	http_reply_free(&a);
	CHECK(a.resp.body.data == NULL);
	while (http_poll(h, 1000, -1) > 0)
		;
	CHECK_INT(r.done, 1);
	buf_free(&r.body);
	/* A refusal: -1, the error, and the body kept for the caller. */
	fault("{\"path\": \"^/echo/f3\", \"status\": 404, \"body\": "
	      "\"{\\\"why\\\": \\\"gone\\\"}\"}");
	snprintf(url, sizeof(url), "%s/echo/f3", sim_url);
	CHECK_INT(http_fetch(h, &req, NULL, &a), -1);
	CHECK_INT(a.resp.status, 404);
	CHECK_STR(a.err.code, "http");
	CHECK(a.resp.body.data && strstr(a.resp.body.data, "gone"));
	http_reply_free(&a);
	http_free(h);
}

static void
test_5xx_then_ok(void)
{
	struct http_config c = config();
	struct result r;

	reset();
	fault("{\"path\":\"^/echo/b\",\"status\":503,\"count\":2}");
	run1(&c, "GET", "/echo/b", 1, &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.attempts, 3);
	CHECK_INT(requests_to("/echo/b"), 3);
	CHECK(r.waited <= 20 + 40);
	buf_free(&r.body);
}

static void
test_5xx_storm(void)
{
	struct http_config c = config();
	struct result r;

	reset();
	c.retries = 3;
	fault("{\"path\":\"^/echo/c\",\"status\":500}");
	run1(&c, "GET", "/echo/c", 1, &r);
	CHECK_STR(r.code, "http");
	CHECK_INT(r.status, 500);
	CHECK_INT(r.attempts, 4);
	CHECK_INT(requests_to("/echo/c"), 4);
	/* Full jitter within the caps 20, 40, 80 ms. */
	CHECK(r.waited >= 0 && r.waited <= 20 + 40 + 80);
	CHECK(strstr(r.message, "HTTP 500 after 4 attempts") != NULL);
	buf_free(&r.body);
}

static void
test_retry_after(void)
{
	struct http_config c = config();
	struct result r;
	long long t0;

	reset();
	fault("{\"path\":\"^/echo/d\",\"status\":429,\"count\":1,"
	      "\"headers\":{\"Retry-After\":\"1\"}}");
	t0 = ms();
	run1(&c, "GET", "/echo/d", 1, &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.attempts, 2);
	CHECK_INT(r.waited, 1000);
	CHECK(ms() - t0 >= 1000);
	buf_free(&r.body);
}

static void
test_retry_after_beyond_budget(void)
{
	struct http_config c = config();
	struct result r;
	long long t0;

	reset();
	c.max_wait_ms = 5000;
	fault("{\"path\":\"^/echo/e\",\"status\":429,"
	      "\"headers\":{\"Retry-After\":\"200\"}}");
	t0 = ms();
	run1(&c, "GET", "/echo/e", 1, &r);
	CHECK_STR(r.code, "http");
	CHECK_INT(r.status, 429);
	CHECK_INT(r.attempts, 1);
	CHECK(strstr(r.message, "Retry-After 200 is beyond") != NULL);
	CHECK(ms() - t0 < 1000);
	buf_free(&r.body);
}

static void
test_retry_after_parse(void)
{
	CHECK_INT(http_retry_after_ms("3", 0), 3000);
	CHECK_INT(http_retry_after_ms(" 0 ", 0), 0);
	CHECK_INT(http_retry_after_ms("-1", 0), -1);
	CHECK_INT(http_retry_after_ms("soon", 0), -1);
	CHECK_INT(http_retry_after_ms("1.5", 0), -1);
	/* Wed, 21 Oct 2015 07:28:00 GMT is 1445412480. */
	CHECK_INT(http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT",
	                              1445412470L),
	          10000);
	CHECK_INT(http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT",
	                              1445412490L),
	          0);
	/* A date further than the delta form's cap of 366 days is refused,
	 * not turned into milliseconds that overflow (found by fuzzing). */
	CHECK_INT(http_retry_after_ms("Wed, 21 Oct 2147483647 07:28:00 GMT",
	                              1445412470L),
	          -1);
	CHECK_INT(http_retry_after_ms("Fri, 21 Oct 2016 07:28:00 GMT",
	                              1445412470L),
	          -1);
}

static void
test_post_not_repeated(void)
{
	struct http_config c = config();
	struct result r;

	reset();
	fault("{\"path\":\"^/echo/f\",\"status\":503}");
	run1(&c, "POST", "/echo/f", 0, &r);
	CHECK_INT(r.attempts, 1);
	CHECK_INT(requests_to("/echo/f"), 1);
	buf_free(&r.body);
	/* 429 means "not processed": a POST may go again. */
	reset();
	fault("{\"path\":\"^/echo/g\",\"status\":429,\"count\":1}");
	run1(&c, "POST", "/echo/g", 0, &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.attempts, 2);
	buf_free(&r.body);
}

static void
test_timeout(void)
{
	struct http_config c = config();
	struct result r;

	reset();
	c.timeout_ms = 300;
	c.retries = 1;
	fault("{\"path\":\"^/echo/h\",\"latency_ms\":1500}");
	run1(&c, "GET", "/echo/h", 1, &r);
	CHECK_STR(r.code, "timeout");
	CHECK_INT(r.attempts, 2);
	buf_free(&r.body);
}

static void
test_refused(void)
{
	struct http_config c = config();
	struct result r;
	char saved[64];

	/* A port nothing listens on: the simulator's, after it stopped. */
	memcpy(saved, sim_url, sizeof(saved));
	snprintf(sim_url, sizeof(sim_url), "http://127.0.0.1:9");
	c.retries = 2;
	run1(&c, "POST", "/x", 0, &r);
	memcpy(sim_url, saved, sizeof(saved));
	CHECK_STR(r.code, "network");
	CHECK_INT(r.attempts, 3); /* never reached a server: retried */
	CHECK_INT(r.status, 0);
	buf_free(&r.body);
}

static void
test_reset_and_short_body(void)
{
	struct http_config c = config();
	struct result r;

	reset();
	fault("{\"path\":\"^/echo/i\",\"reset\":true,\"count\":1}");
	run1(&c, "GET", "/echo/i", 1, &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.attempts, 2);
	buf_free(&r.body);

	reset();
	c.retries = 1;
	fault("{\"path\":\"^/echo/j\",\"short_body\":true}");
	run1(&c, "GET", "/echo/j", 1, &r);
	CHECK_STR(r.code, "network");
	CHECK_INT(r.attempts, 2);
	buf_free(&r.body);
}

static void
test_body_cap(void)
{
	struct http_config c = config();
	struct result r;

	reset();
	c.max_body = 50;
	run1(&c, "GET", "/echo/k-with-a-long-path-to-make-the-body-long", 1,
	     &r);
	CHECK_STR(r.code, "body");
	CHECK_INT(r.attempts, 1);
	CHECK(r.body.len <= 50);
	buf_free(&r.body);
}

static void
test_headers_sent(void)
{
	struct http_config c = config();
	struct soar_error err;
	struct http *h = http_new(&c, &err);
	struct http_header hd[] = {{"x-apikey", "k-123"}};
	char url[128];
	struct http_request req = {.method = "POST",
	                           .url = url,
	                           .headers = hd,
	                           .nheaders = 1,
	                           .body = "{\"a\":1}",
	                           .body_len = 7};
	struct result r = {0};
	char *log;

	reset();
	snprintf(url, sizeof(url), "%s/echo/l", sim_url);
	http_submit(h, &req, NULL, on_done, &r);
	while (http_poll(h, 1000, -1) > 0)
		;
	http_free(h);
	log = sim_control("GET", "/_sim/requests?path=/echo/l", NULL, NULL);
	CHECK(strstr(log, "\"x-apikey\": \"k-123\"") != NULL);
	CHECK(strstr(log, "\"body\": \"{\\\"a\\\":1}\"") != NULL);
	CHECK(strstr(log, "expect") == NULL);
	free(log);
	buf_free(&r.body);
}

static void
test_concurrency_and_rate(void)
{
	struct http_config c = config();
	struct soar_error err;
	struct result r[12];
	struct http *h;
	char url[128];
	struct http_request req = {
	        .method = "GET", .url = url, .idempotent = 1};
	long long t0;

	/* 12 requests of 300 ms each over 6 jobs: two rounds, not twelve. */
	reset();
	fault("{\"path\":\"^/echo/m\",\"latency_ms\":300}");
	c.jobs = 6;
	h = http_new(&c, &err);
	snprintf(url, sizeof(url), "%s/echo/m", sim_url);
	memset(r, 0, sizeof(r));
	t0 = ms();
	for (int i = 0; i < 12; i++)
		http_submit(h, &req, NULL, on_done, &r[i]);
	while (http_poll(h, 1000, -1) > 0)
		;
	CHECK(ms() - t0 < 12 * 300 / 2);
	for (int i = 0; i < 12; i++) {
		CHECK_INT(r[i].status, 200);
		buf_free(&r[i].body);
	}
	http_free(h);

	/* 5 per second with a burst of 1: six requests span a second. */
	reset();
	c = config();
	c.rate = 5;
	h = http_new(&c, &err);
	snprintf(url, sizeof(url), "%s/echo/n", sim_url);
	memset(r, 0, sizeof(r));
	t0 = ms();
	for (int i = 0; i < 6; i++)
		http_submit(h, &req, NULL, on_done, &r[i]);
	while (http_poll(h, 1000, -1) > 0)
		;
	CHECK(ms() - t0 >= 950);
	CHECK_INT(requests_to("/echo/n"), 6);
	for (int i = 0; i < 6; i++)
		buf_free(&r[i].body);
	http_free(h);
}

static void
test_bad_ca_bundle(void)
{
	struct http_config c = config();
	const char *env[] = {"SOAR_CA_BUNDLE=/nonexistent/ca.pem", NULL};
	struct result r;

	char saved[sizeof(sim_url)];

	c.envp = env;
	/* The bundle only matters for https; the loopback port speaks
	 * plain HTTP, so the handshake fails: never a fallback. */
	memcpy(saved, sim_url, sizeof(saved));
	if (snprintf(sim_url, sizeof(sim_url), "https%.50s", saved + 4) < 0)
		return;
	c.retries = 0;
	run1(&c, "GET", "/echo/o", 1, &r);
	memcpy(sim_url, saved, sizeof(saved));
	CHECK(strcmp(r.code, "tls") == 0 || strcmp(r.code, "network") == 0);
	CHECK_INT(r.status, 0);
	buf_free(&r.body);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (sim_start_quiet(0) < 0) {
		printf("not ok 1 - the simulator did not start\n");
		sim_stop();
		return 1;
	}
	UNIT_RUN(test_get);
	UNIT_RUN(test_fetch);
	UNIT_RUN(test_5xx_then_ok);
	UNIT_RUN(test_5xx_storm);
	UNIT_RUN(test_retry_after);
	UNIT_RUN(test_retry_after_beyond_budget);
	UNIT_RUN(test_retry_after_parse);
	UNIT_RUN(test_post_not_repeated);
	UNIT_RUN(test_timeout);
	UNIT_RUN(test_refused);
	UNIT_RUN(test_reset_and_short_body);
	UNIT_RUN(test_body_cap);
	UNIT_RUN(test_headers_sent);
	UNIT_RUN(test_concurrency_and_rate);
	UNIT_RUN(test_bad_ca_bundle);
	sim_stop();
	return UNIT_END();
}
