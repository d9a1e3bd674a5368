/* test_event.c: dotted paths, splicing and projection of event text. */
#include <stdlib.h>
#include <string.h>

#include <jv.h>

#include "event.h"
#include "jqpath.h"
#include "unit.h"

static const char *const alert =
        "{\"@timestamp\":\"2025-01-17T08:00:00.000Z\","
        "\"kibana.alert.rule.name\":\"Suspicious PowerShell\","
        "\"kibana.alert.risk_score\":73,"
        "\"kibana\":{\"alert\":{\"severity\":\"high\"}},"
        "\"host\":{\"name\":\"web-01\"},\"id\":18446744073709551615,"
        "\"alert\":{\"id\":\"a-1\",\"score\":73}}";

static char *
find(const char *line, const char *path)
{
	struct event_span sp;

	if (!event_find(line, strlen(line), path, &sp))
		return NULL;
	return strndup(line + sp.off, sp.len);
}

static void
check_find(const char *line, const char *path, const char *want)
{
	char *got = find(line, path);

	if (want == NULL) {
		if (got != NULL)
			printf("# %s: found %s, want nothing\n", path, got);
		CHECK(got == NULL);
	} else
		CHECK_STR(got, want);
	free(got);
}

static void
test_find(void)
{
	check_find(alert, "host.name", "\"web-01\"");
	check_find(alert, ".host.name", "\"web-01\"");
	check_find(alert, "kibana.alert.rule.name",
	           "\"Suspicious PowerShell\"");
	check_find(alert, "kibana.alert.severity", "\"high\"");
	check_find(alert, "kibana.alert.risk_score", "73");
	check_find(alert, "id", "18446744073709551615");
	check_find(alert, "host.name.x", NULL);
	check_find(alert, "host.ip", NULL);
	check_find(alert, "nope", NULL);
	check_find(alert, "", NULL);
	check_find(alert, "a..b", NULL);
	check_find(alert, "host.", NULL);
	/* A flat key at a nested level, and the flat form preferred. */
	check_find("{\"a\":{\"b.c\":1}}", "a.b.c", "1");
	check_find("{\"a.b\":1,\"a\":{\"b\":2}}", "a.b", "1");
	check_find("{\"a\":{\"b\":2},\"a.b\":1}", "a.b", "1");
	/* Duplicate keys: the last one counts, as in libjq. */
	check_find("{\"a\":1,\"a\":2}", "a", "2");
}

static void
test_get_string(void)
{
	char *s = event_get_string(alert, strlen(alert), "alert.id");

	CHECK_STR(s, "a-1");
	free(s);
	CHECK(event_get_string(alert, strlen(alert), "alert.score") == NULL);
	s = event_get_string("{\"a\":\"x\\u00e9\\\"\"}", 17, "a");
	CHECK_STR(s, "x\xC3\xA9\"");
	free(s);
}

static void
check_set(const char *line, const char *path, const char *val, const char *want)
{
	struct buf out = BUF_INIT;
	struct soar_error err = {0};
	int rc = event_set(line, strlen(line), path, val, strlen(val), &out,
	                   &err);

	if (want == NULL) {
		CHECK_INT(rc, -1);
		CHECK_STR(err.code, "path");
	} else {
		CHECK_INT(rc, 0);
		CHECK_STR(out.data, want);
	}
	buf_free(&out);
}

static void
test_set(void)
{
	check_set("{}", "a", "1", "{\"a\":1}");
	check_set("{ }", "a", "1", "{ \"a\":1}");
	check_set("{\"x\":1}", "a", "true", "{\"x\":1,\"a\":true}");
	check_set("{\"x\":1} ", "a.b.c", "2",
	          "{\"x\":1,\"a\":{\"b\":{\"c\":2}}} ");
	check_set("{\"a\":{\"z\":0}}", "a.b", "2", "{\"a\":{\"z\":0,\"b\":2}}");
	check_set("{\"a\":{\"b\":1},\"n\":12345678901234567890}", "a.b",
	          "\"x\"", "{\"a\":{\"b\":\"x\"},\"n\":12345678901234567890}");
	check_set("{\"kibana.alert.x\":1}", "kibana.alert.x", "2",
	          "{\"kibana.alert.x\":2}");
	check_set("{\"a\":\"str\"}", "a.b", "1", NULL);
	check_set("{\"a\":[1]}", "a.b", "1", NULL);
	check_set("{\"a\":1}", "a..b", "1", NULL);
}

static void
test_set_key(void)
{
	struct buf out = BUF_INIT;
	const char *line = "{\"decision\":{\"old\":1},\"n\":1e+300}";

	CHECK_INT(event_set_key(line, strlen(line), "decision", "{\"a\":2}", 7,
	                        &out, NULL),
	          0);
	CHECK_STR(out.data, "{\"decision\":{\"a\":2},\"n\":1e+300}");
	CHECK_INT(event_set_key("{\"a\":{\"b\":1}}", 13, "a.b", "3", 1, &out,
	                        NULL),
	          0);
	CHECK_STR(out.data, "{\"a\":{\"b\":1},\"a.b\":3}");
	buf_free(&out);
}

static void
test_add_key(void)
{
	struct buf out = BUF_INIT;
	const char *nested = "{\"x\":{\"vt\":1}}";

	/* Absent only when the quoted key occurs nowhere: a nested member or
	 * a string value with that text makes it "maybe present". */
	CHECK(event_key_absent("{\"a\":1}", 7, "vt"));
	CHECK(!event_key_absent(nested, strlen(nested), "vt"));
	CHECK(!event_key_absent("{\"a\":\"vt\"}", 10, "vt"));
	CHECK(event_key_absent("{\"a\":\"vt2\"}", 11, "vt"));
	/* A key holding a quote or backslash is never declared absent. */
	CHECK(!event_key_absent("{}", 2, "a\"b"));
	CHECK(!event_key_absent("{}", 2, "a\\b"));

	CHECK_INT(event_add_key("{\"a\":1}", 7, "vt", "{}", 2, &out, NULL), 0);
	CHECK_STR(out.data, "{\"a\":1,\"vt\":{}}");
	CHECK_INT(event_add_key("{ }", 3, "vt", "1", 1, &out, NULL), 0);
	CHECK_STR(out.data, "{ \"vt\":1}");
	CHECK_INT(event_add_key("{\"a\":1}\r", 8, "vt", "1", 1, &out, NULL), 0);
	CHECK_STR(out.data, "{\"a\":1,\"vt\":1}\r");
	/* A nested "vt" stays where it is; the new one is top-level. */
	CHECK_INT(
	        event_set_key(nested, strlen(nested), "vt", "2", 1, &out, NULL),
	        0);
	CHECK_STR(out.data, "{\"x\":{\"vt\":1},\"vt\":2}");
	buf_free(&out);
}

static void
test_error_jv(void)
{
	struct soar_error e;
	jv v, s;

	soar_error_set(&e, "http", "GET %s: HTTP %d", "/x", 429);
	e.status = 429;
	e.attempts = 4;
	v = event_error_jv(&e, jv_object_set(jv_object(), jv_string("rule"),
	                                     jv_string("r:1")));
	s = jv_dump_string(v, JV_PRINT_SORTED);
	CHECK_STR(jv_string_value(s),
	          "{\"error\":{\"attempts\":4,\"code\":\"http\",\"message\":"
	          "\"GET /x: HTTP 429\",\"rule\":\"r:1\",\"status\":429}}");
	jv_free(s);
	soar_error_set(&e, "jq", "x");
	s = jv_dump_string(event_error_jv(&e, jv_null()), 0);
	CHECK_STR(jv_string_value(s),
	          "{\"error\":{\"code\":\"jq\",\"message\":\"x\"}}");
	jv_free(s);
}

static void
check_parse(const char *program, const char *line, const char *want)
{
	struct jqpath *p = jqpath_new();
	jv v, s;

	jqpath_add_program(p, program);
	v = event_parse(line, strlen(line), p);
	s = jv_dump_string(v, JV_PRINT_SORTED);
	CHECK_STR(jv_string_value(s), want);
	jv_free(s);
	jqpath_free(p);
}

static void
test_parse(void)
{
	check_parse(".alert.score", alert, "{\"alert\":{\"score\":73}}");
	check_parse(".[\"kibana.alert.rule.name\"]", alert,
	            "{\"kibana.alert.rule.name\":\"Suspicious PowerShell\"}");
	check_parse(".host, .kibana.alert.severity", alert,
	            "{\"host\":{\"name\":\"web-01\"},\"kibana\":{\"alert\":"
	            "{\"severity\":\"high\"}}}");
	check_parse("true", alert, "{}");
	check_parse(".", "{\"a\":1,\"b\":[2]}", "{\"a\":1,\"b\":[2]}");
	check_parse(".a.b", "{\"a\":[1,2],\"c\":1}", "{\"a\":[1,2]}");
	check_parse(".a.b", "{\"a\":{\"c\":1}}", "{\"a\":{}}");
	check_parse(".a", "{\"a\":\"x\\ty\",\"b\":1}", "{\"a\":\"x\\ty\"}");
	check_parse(".[\"k\\\"q\"]", "{\"k\\\"q\":1,\"b\":1}",
	            "{\"k\\\"q\":1}");
	check_parse(".a", "{\"a\":1,\"a\":2}", "{\"a\":2}");
	check_parse(".a", "{\"a\":-1.5e3}", "{\"a\":-1500}");
	check_parse(".a", "{\"a\":null,\"b\":false}", "{\"a\":null}");
	check_parse(".b", "{\"a\":null,\"b\":false}", "{\"b\":false}");
	/* Unparseable text comes back invalid, with libjq's message. */
	jv v = event_parse("{\"a\":", 5, NULL);
	CHECK(!jv_is_valid(v));
	jv_free(v);
}

int
main(void)
{
	UNIT_RUN(test_find);
	UNIT_RUN(test_get_string);
	UNIT_RUN(test_set);
	UNIT_RUN(test_set_key);
	UNIT_RUN(test_add_key);
	UNIT_RUN(test_error_jv);
	UNIT_RUN(test_parse);
	return UNIT_END();
}
