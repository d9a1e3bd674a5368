/* test_json.c: the JSON checker and walker, on JSONTestSuite and by hand. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>

#include "json.h"
#include "unit.h"

static const char *
corpus_dir(void)
{
	const char *s = getenv("SHARED");
	static char path[4096];

	snprintf(path, sizeof(path), "%s/corpus/json/test_parsing",
	         s ? s : "../shared");
	return path;
}

static char *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long len;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)len + 1);
	if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*n = (size_t)len;
	return p;
}

static int
starts_object(const char *s, size_t n)
{
	size_t i = json_skip_ws(s, n, 0);

	return i < n && s[i] == '{';
}

/* Every n_ file is refused; every y_ object is accepted, as libjq accepts
 * it; every y_ non-object is refused as not an object; i_ files only must
 * not crash.  The corpus is third-party material read from shared/. */
static void
test_corpus(void)
{
	DIR *d = opendir(corpus_dir());
	struct dirent *e;
	int ny = 0, nn = 0, ni = 0;

	CHECK(d != NULL);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[8192];
		struct json_err err;
		size_t n;
		char *s;
		int rc;

		if (e->d_name[0] == '.' || strchr("iny", e->d_name[0]) == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", corpus_dir(), e->d_name);
		if ((s = slurp(path, &n)) == NULL)
			continue;
		rc = json_check_object(s, n, &err);
		if (e->d_name[0] == 'n') {
			nn++;
			if (rc == 0)
				printf("# accepted %s\n", e->d_name);
			CHECK(rc == -1);
			CHECK(rc == 0 || err.off <= n);
		} else if (e->d_name[0] == 'y') {
			ny++;
			if (starts_object(s, n)) {
				jv v = jv_parse_sized(s, (int)n);

				if (rc != 0)
					printf("# refused %s: %s\n", e->d_name,
					       err.msg);
				CHECK(rc == 0);
				CHECK(jv_get_kind(v) == JV_KIND_OBJECT);
				jv_free(v);
			} else {
				CHECK(rc == -1);
				CHECK_STR(err.msg, "not a JSON object");
			}
		} else
			ni++;
		free(s);
	}
	closedir(d);
	CHECK_INT(nn, 188);
	CHECK_INT(ny, 95);
	CHECK_INT(ni, 35);
}

static void
expect_err(const char *s, size_t off, const char *msg)
{
	struct json_err err = {0, NULL};

	if (json_check_object(s, strlen(s), &err) != -1) {
		printf("# accepted: %s\n", s);
		CHECK(0);
		return;
	}
	CHECK_INT(err.off, off);
	CHECK_STR(err.msg, msg);
}

static void
expect_ok(const char *s)
{
	struct json_err err = {0, NULL};
	int rc = json_check_object(s, strlen(s), &err);

	if (rc != 0)
		printf("# refused: %s: %s at %zu\n", s, err.msg, err.off);
	CHECK_INT(rc, 0);
}

static void
test_messages(void)
{
	expect_err("", 0, "empty line");
	expect_err("[1]", 0, "not a JSON object");
	expect_err("\"x\"", 0, "not a JSON object");
	expect_err("{\"a\":1", 6, "unexpected end of line (truncated value?)");
	expect_err("{\"a\":\"x", 7, "unfinished string (truncated value?)");
	expect_err("{\"a\" 1}", 5, "expected ':' after key");
	expect_err("{\"a\":1 \"b\":2}", 7, "expected ',' or '}' in object");
	expect_err("{\"a\":[1 2]}", 8, "expected ',' or ']' in array");
	expect_err("{a:1}", 1, "expected a string key");
	expect_err("{\"a\":01}", 6, "expected ',' or '}' in object");
	expect_err("{\"a\":1.}", 7, "invalid number: digits must follow '.'");
	expect_err("{\"a\":1e}", 7,
	           "invalid number: digits must follow the exponent");
	expect_err("{\"a\":tru}", 5, "invalid literal");
	expect_err("{\"a\":\"\\x\"}", 6, "invalid escape in string");
	expect_err("{\"a\":\"\\u12G4\"}", 6, "invalid \\u escape in string");
	expect_err("{\"a\":\"\x01\"}", 6, "control character in string");
	expect_err("{\"a\":\"\xC0\xAF\"}", 6, "invalid UTF-8 in string");
	expect_err("{\"a\":\"\xED\xA0\x80\"}", 6, "invalid UTF-8 in string");
	expect_err("{\"a\":\"\xF4\x90\x80\x80\"}", 6,
	           "invalid UTF-8 in string");
	expect_err("{\"a\":1} {}", 8, "unexpected data after the object");
	expect_err("{\"a\":1}x", 7, "unexpected data after the object");
	expect_err("{\"a\":]}", 5, "expected a value");
	expect_err("{\"a\":[1,]}", 8, "expected a value");
}

static void
test_accepts(void)
{
	expect_ok("{}");
	expect_ok("  {\"a\" : [ ] , \"b\":{ }}\t\r");
	expect_ok("{\"id\":18446744073709551615,\"q\":1.95e-7,\"z\":-0}");
	expect_ok("{\"s\":\"caf\xC3\xA9 \xF0\x9F\x98\x80 \\ud800\"}");
	expect_ok("{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"}");
	/* A long ASCII run exercises the 8-bytes-at-a-time path. */
	expect_ok("{\"k\":\"abcdefghijklmnopqrstuvwxyz0123456789abcdefghi\"}");
	expect_err("{\"k\":\"abcdefghijklmnop\x7f\x80qrstuvwxyz\"}", 23,
	           "invalid UTF-8 in string");
}

static void
test_depth(void)
{
	char buf[2 * JSON_MAX_DEPTH + 64];
	struct json_err err;
	size_t n = 0;
	int d;

	buf[n++] = '{';
	buf[n++] = '"';
	buf[n++] = 'a';
	buf[n++] = '"';
	buf[n++] = ':';
	for (d = 1; d < JSON_MAX_DEPTH; d++)
		buf[n++] = '[';
	for (d = 1; d < JSON_MAX_DEPTH; d++)
		buf[n++] = ']';
	buf[n++] = '}';
	CHECK_INT(json_check_object(buf, n, &err), 0);
	/* libjq accepts what the checker accepts. */
	jv v = jv_parse_sized(buf, (int)n);
	CHECK(jv_is_valid(v));
	jv_free(v);

	n = 0;
	buf[n++] = '{';
	buf[n++] = '"';
	buf[n++] = 'a';
	buf[n++] = '"';
	buf[n++] = ':';
	for (d = 0; d < JSON_MAX_DEPTH; d++)
		buf[n++] = '[';
	CHECK_INT(json_check_object(buf, n, &err), -1);
	CHECK_STR(err.msg, "nesting too deep");
}

static void
test_walk(void)
{
	const char *s =
	        "{ \"a\" : {\"x\":[1,{\"y\":\"}\\\"\"}]} , \"b\\u0041\":"
	        "\"q\\\\\", \"c\":-1.5e3,\"d\":true}";
	struct json_iter it;
	struct json_member m;
	size_t n = strlen(s);
	int k = 0;

	json_iter_init(&it, s, n, 0);
	while (json_iter_next(&it, &m)) {
		switch (k++) {
		case 0:
			CHECK(m.keylen == 1 && m.key[0] == 'a');
			CHECK_INT(m.vallen,
			          strlen("{\"x\":[1,{\"y\":\"}\\\"\"}]}"));
			break;
		case 1:
			CHECK(m.key_escaped);
			CHECK(json_key_equals(&m, "bA", 2));
			CHECK(!json_key_equals(&m, "b\\u0041", 7));
			CHECK_INT(m.vallen, 5);
			break;
		case 2:
			CHECK(json_key_equals(&m, "c", 1));
			CHECK_INT(m.vallen, 6);
			break;
		case 3:
			CHECK(json_key_equals(&m, "d", 1));
			CHECK_INT(m.vallen, 4);
			break;
		}
	}
	CHECK_INT(k, 4);
	CHECK(s[it.i] == '}');
	CHECK_INT(json_value_end(s, n, 0), n);
}

static void
test_array(void)
{
	const char *s = "[ \"a\" , [1,2], {\"k\":[]},3 ]";
	const char *want[] = {"\"a\"", "[1,2]", "{\"k\":[]}", "3"};
	size_t n = strlen(s), pos = 0, off, len, k = 0;

	while (json_array_next(s, n, &pos, &off, &len)) {
		if (k < 4) {
			CHECK_INT(len, strlen(want[k]));
			CHECK(memcmp(s + off, want[k], len) == 0);
		}
		k++;
	}
	CHECK_INT(k, 4);
	CHECK(s[pos] == ']');
	/* Called again after the end, it stays at the end. */
	CHECK(!json_array_next(s, n, &pos, &off, &len));
	pos = 0;
	CHECK(!json_array_next("[ ]", 3, &pos, &off, &len));
	pos = 0;
	CHECK(!json_array_next("[]", 2, &pos, &off, &len));
}

static void
test_string_copy(void)
{
	char out[8];

	CHECK_INT(json_string_copy("\"8.8.8.8\"", 9, out, sizeof(out)), 7);
	CHECK_STR(out, "8.8.8.8");
	/* Seven bytes and the NUL fill out; eight do not fit. */
	CHECK_INT(json_string_copy("\"8.8.8.88\"", 10, out, sizeof(out)), -1);
	CHECK_INT(json_string_copy("\"\\u0041\\n\"", 10, out, sizeof(out)), 2);
	CHECK_STR(out, "A\n");
	CHECK_INT(json_string_copy("\"\\u00e9\"", 8, out, sizeof(out)), 2);
	CHECK_STR(out, "\xc3\xa9");
	/* A NUL character cannot be a C string. */
	CHECK_INT(json_string_copy("\"a\\u0000\"", 9, out, sizeof(out)), -1);
	CHECK_INT(json_string_copy("12", 2, out, sizeof(out)), -1);
	CHECK_INT(json_string_copy("\"\"", 2, out, sizeof(out)), 0);
	CHECK_STR(out, "");
}

int
main(void)
{
	UNIT_RUN(test_corpus);
	UNIT_RUN(test_messages);
	UNIT_RUN(test_accepts);
	UNIT_RUN(test_depth);
	UNIT_RUN(test_walk);
	UNIT_RUN(test_array);
	UNIT_RUN(test_string_copy);
	return UNIT_END();
}
