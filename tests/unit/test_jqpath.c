/*
 * test_jqpath.c: jqpath's analysis, checked against the canonical dumps it
 * must produce and against libjq itself: every program must give the same
 * outputs and errors on the projected event as on the full one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jq.h>

#include "jqpath.h"
#include "unit.h"

/*
 * libjq 1.6 itself leaks an object key whenever iterating an object of two
 * or more keys is cut short (an error, or first(.[])).  The runs through
 * libjq are therefore kept out of LeakSanitizer's sight; everything jqpath
 * allocates is also exercised where leaks are checked.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNIT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNIT_ASAN 1
#endif
#ifdef UNIT_ASAN
#include <sanitizer/lsan_interface.h>
#define LSAN_OFF() __lsan_disable()
#define LSAN_ON()  __lsan_enable()
#else
#define LSAN_OFF() ((void)0)
#define LSAN_ON()  ((void)0)
#endif

/* Programs and the paths they read; each rule of the analysis appears. */
static const struct {
	const char *prog;
	const char *want;
} cases[] = {
        /* paths and fields */
        {".alert.severity == \"high\"", "{alert:{severity:*}}"},
        {".a.b, .c", "{a:{b:*},c:*}"},
        {".a | .b, .c", "{a:{b:*,c:*}}"},
        {"(.a, .b) | .c", "{a:{c:*},b:{c:*}}"},
        {".a.b.c.d", "{a:{b:{c:{d:*}}}}"},
        {".a, .a.b", "{a:*}"},
        {".a.b, .a", "{a:*}"},
        {".a[\"b\"][\"c\"]", "{a:{b:{c:*}}}"},
        {".a | .[\"b\"] | .\"c\"", "{a:{b:{c:*}}}"},
        {".a . \"b\"", "{a:{b:*}}"},
        {". \"a\"", "{a:*}"},
        {".[(\"a\")]", "{a:*}"},
        {".[\"kibana.alert.rule.name\"] | test(\"x\")",
         "{\"kibana.alert.rule.name\":*}"},
        {".[\"a\\\"b\"]", "{\"a\\\"b\":*}"},
        {".a.\"b-c\"", "{a:{\"b-c\":*}}"},
        {".\"x y\"", "{\"x y\":*}"},
        {".[\"\\u00e9\"]", "{\"\xc3\xa9\":*}"},
        {".[\"\xc3\xa9\"]", "{\"\xc3\xa9\":*}"},
        {".[\"\\ud83d\\ude00\"]", "{\"\xf0\x9f\x98\x80\":*}"},
        {".[\"a\\u0000b\"]", "{\"a\\u0000b\":*}"},
        {".[\"\"]", "{\"\":*}"},
        {".a?.b?", "{a:{b:*}}"},
        {".a.b?", "{a:{b:*}}"},
        {".[\"a\"]?", "{a:*}"},
        {".alert | .severity, .score", "{alert:{score:*,severity:*}}"},
        {".if.end", "{if:{end:*}}"},
        /* the whole input */
        {".", "*"},
        {"", "*"},
        {"# nothing but a comment", "*"},
        {"keys", "*"},
        {"length", "*"},
        {"to_entries", "*"},
        {"..", "*"},
        {"[.[] | .x]", "*"},
        {"@base64", "*"},
        {"not", "*"},
        {"error", "*"},
        {"path(.a)", "*"},
        {"del(.a)", "*"},
        {"[range(3)]", "*"},
        {"any", "*"},
        {"first", "*"},
        {". as [$a, $b] | $a", "*"},
        {". as {a: $x} | $x", "*"},
        {"\"x\" as $k | .[$k]", "*"},
        {".\"\\(.k)\"", "*"},
        {"{\"\\(.k)\"}", "*"},
        {"{@base64 \"a\"}", "*"},
        /* nothing at all */
        {"true", "{}"},
        {"1 == 1", "{}"},
        {"empty", "{}"},
        {"error(\"x\")", "{}"},
        {"$__loc__", "{}"},
        {"$__loc__.line", "{}"},
        {"$ENV | type", "{}"},
        {"env | type", "{}"},
        {"now | type", "{}"},
        {"input_line_number", "{}"},
        {"nan | isnan", "{}"},
        {"infinite > 1", "{}"},
        {"[inputs]", "{}"},
        {"1, 2 | . * 3", "{}"},
        {"\"a\" | ascii_upcase", "{}"},
        {"{a: 1} | .a", "{}"},
        {"1 as $x | {$x}", "{}"},
        {".a | empty", "{}"},
        /* a path only touched keeps its type */
        {".a.b | empty", "{a:{}}"},
        {"[.a.b.c | 1]", "{a:{b:{}}}"},
        {"any(.a.b; true)", "{a:{}}"},
        /* operators */
        {".a.b and .c", "{a:{b:*},c:*}"},
        {".a or .b.c", "{a:*,b:{c:*}}"},
        {".a + 1 > 2", "{a:*}"},
        {"-.a", "{a:*}"},
        {"-(.a.b)", "{a:{b:*}}"},
        {".a | -.b * 2", "{a:{b:*}}"},
        {".x | not", "{x:*}"},
        {".vt.positives > 2 and .alert.severity == \"high\"",
         "{alert:{severity:*},vt:{positives:*}}"},
        {".a // .b | .c", "{a:*,b:{c:*}}"},
        {".a? // \"x\"", "{a:*}"},
        {".a // empty", "{a:*}"},
        {".a[]? // .b", "{a:*,b:*}"},
        {"$ENV.HOME // .a", "{a:*}"},
        {".a // (.b, .c) | 1", "{a:*}"},
        {"[.x // (1, 2)] | length", "{x:*}"},
        /* assignments read everything */
        {".a |= 1", "*"},
        {".a = .b", "*"},
        {".a += .b", "*"},
        {".a //= 1", "*"},
        {".a | .b |= 1", "{a:*}"},
        /* iteration, computed indexes and slices */
        {".a[] | .b", "{a:*}"},
        {".a[]?", "{a:*}"},
        {".a[.k]", "{a:*,k:*}"},
        {".a[.b[.c]]", "{a:*,b:*,c:*}"},
        {".a[0]", "{a:*}"},
        {".a[1:2]", "{a:*}"},
        {".a[:.n]", "{a:*,n:*}"},
        {".a.\"\\(.k)\"", "{a:*,k:*}"},
        /* constructors */
        {"{a}", "{a:*}"},
        {"{\"a\"}", "{a:*}"},
        {"{x: .a, y: .b | .c}", "{a:*,b:{c:*}}"},
        {"{(.k): .v}", "{k:*,v:*}"},
        {"{(.a, .b): 1}", "{a:*,b:*}"},
        {".a | {b}", "{a:{b:*}}"},
        {".a | {b: .c, d}", "{a:{c:*,d:*}}"},
        {"{a: -.b}", "{b:*}"},
        {"{a: - .b | .c}", "{b:*}"},
        {"{a: .x | - .b | .c}", "{x:{b:*}}"},
        {"- .b | .c", "{b:*}"},
        {"[.a, .b.c]", "{a:*,b:{c:*}}"},
        {"[.a] | .[0]", "{a:*}"},
        {"[.a.b, .a.c] | add", "{a:{b:*,c:*}}"},
        {"\"\\(.a.b)\"", "{a:{b:*}}"},
        {"\"\\(.a) and \\(.b.c)\"", "{a:*,b:{c:*}}"},
        {"@base64 \"v=\\(.a)\"", "{a:*}"},
        {"@json \"\\(.a.b)\"", "{a:{b:*}}"},
        /* conditionals and errors */
        {"if .x then .y.z else 1 end", "{x:*,y:{z:*}}"},
        {"if .x then .y elif .z then 1 else empty end", "{x:*,y:*,z:*}"},
        {"if .a.b then .a.c else .a.d end", "{a:{b:*,c:*,d:*}}"},
        {".a | if . then .b else .c end", "{a:*}"},
        {"try .a.b catch .", "{a:{b:*}}"},
        {"try .a catch .b", "{a:*}"},
        {".a | try .b", "{a:{b:*}}"},
        {"try error(.a)", "{a:*}"},
        {"try (.a | error) catch .", "{a:*}"},
        /* variables, reduce, foreach, labels */
        {".a as $v | .b", "{a:*,b:*}"},
        {".a as $x | $x.b", "{a:*}"},
        {".x as $x | .y as $y | $x + $y", "{x:*,y:*}"},
        {".a as [$p, $q] | $p", "{a:*}"},
        {".a as {b: $x, (.k): $y} | $y", "{a:*,k:*}"},
        {".a | .b as $x | .c", "{a:{b:*,c:*}}"},
        {"1 + .a as $x | $x", "{a:*}"},
        {"reduce .items[] as $i (0; . + $i.n)", "{items:*}"},
        {"reduce .a[] as $x (.b; . + $x)", "{a:*,b:*}"},
        {"reduce .a as $x (0; .)", "{a:*}"},
        {"foreach .a[] as $x (0; . + $x; [$x, .])", "{a:*}"},
        {"label $out | .a | ., break $out", "{a:*}"},
        /* builtins with narrower reads */
        {"select(.x)", "*"},
        {"select(.x) | .y", "{x:*,y:*}"},
        {".a | select(.b == 1)", "{a:*}"},
        {"[.a[] | select(.b)] | length", "{a:*}"},
        {"has(\"x\")", "{x:*}"},
        {".a | has(\"b\")", "{a:{b:*}}"},
        {"has(.k)", "*"},
        {"getpath([\"a\",\"b\"])", "{a:{b:*}}"},
        {".a | getpath([\"b\",\"c\"])", "{a:{b:{c:*}}}"},
        {"getpath([\"a\", .k])", "*"},
        {"getpath([])", "*"},
        {"any(.related.ip[]; . == \"1.2.3.4\")", "{related:{ip:*}}"},
        {"all(.a, .b; .c)", "{a:{c:*},b:{c:*}}"},
        {"isempty(.a.b)", "{a:{b:*}}"},
        {"first(.a, .b)", "{a:*,b:*}"},
        {"first(.a[])", "{a:*}"},
        {"last(.a.b)", "{a:{b:*}}"},
        {"limit(1; .a[])", "{a:*}"},
        {"limit(.n; .a)", "{a:*,n:*}"},
        {".a.b | keys", "{a:{b:*}}"},
        {".a | ..", "{a:*}"},
        {".a | tostring", "{a:*}"},
        {".a.b | tojson", "{a:{b:*}}"},
        {".a | ascii_downcase == \"x\"", "{a:*}"},
        {".a | length > 0 and .b", "{a:*}"},
        {"[.a, .b] | sort", "{a:*,b:*}"},
        /* comments and layout */
        {".a # the a\n| .b", "{a:{b:*}}"},
        {"#!\n.a\n|\t.b # c", "{a:{b:*}}"},
        /* fallbacks */
        {"def f: .; f", "*"},
        {"def f(g): g; f(.a)", "*"},
        {". as [$a] ?// $a | $a", "*"},
        {"{def: .a}", "*"},
};

/* Events shaped like the ones decide sees, and the odd ones around them. */
static const char *const events[] = {
        "{\"alert\":{\"severity\":\"high\",\"score\":7.5,\"tags\":[\"t1\","
        "\"t2\"]},\"kibana.alert.rule.name\":\"xrule\",\"vt\":{\"positives\":3,"
        "\"total\":70},\"related\":{\"ip\":[\"1.2.3.4\",\"5.6.7.8\"]},\"a\":{"
        "\"b\":{\"c\":{\"d\":1},\"x\":2},\"c\":\"str\",\"d\":[1,2],\"k\":\"c\"}"
        ","
        "\"b\":{\"c\":\"bc\",\"e\":0},\"c\":3,\"items\":[{\"n\":1},{\"n\":2}],"
        "\"x\":"
        "true,"
        "\"y\":{\"z\":\"q\"},\"z\":0,\"k\":\"b\",\"n\":1,\"v\":\"val\","
        "\"a\\\"b\":"
        "\"quote\",\"b-c\":1,\"x "
        "y\":2,\"\xc3\xa9\":\"e\",\"noise\":{\"deep\":[1,"
        "{\"e\":2}]},\"if\":{\"end\":1}}",
        "{}",
        "{\"a\":null,\"b\":false,\"x\":false,\"alert\":null,\"items\":null,"
        "\"related\":null,\"k\":null,\"y\":null}",
        "{\"a\":\"str\",\"alert\":\"high\",\"items\":\"nope\",\"x\":0,"
        "\"related\":"
        "{\"ip\":\"1.2.3.4\"},\"k\":1,\"vt\":[1],\"b\":7}",
        "{\"a\":[1,2,{\"b\":1}],\"items\":[],\"y\":[{\"z\":1}],\"k\":0,\"b\":{"
        "\"c\":[1]},\"n\":1}",
        "{\"kibana.alert.rule.name\":\"n\",\"a.b\":1,\"a\\\"b\":2,\"\":3,\"a\":"
        "{"
        "\"b\":null,\"a\":{\"b\":1}},\"k\":\"a\",\"a\\u0000b\":4,"
        "\"\\ud83d\\ude00\":5}",
        "{\"a\":{\"b\":1e300,\"c\":-0.0,\"d\":{\"x\":1}},\"x\":1,\"k\":\"c\","
        "\"c\":2,\"n\":-1,\"b\":{\"c\":{\"d\":\"deep\"}},\"v\":[1,2]}",
        "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}},\"k\":\"b\",\"c\":[]},\"k\":"
        "\"a\","
        "\"y\":{\"z\":{\"w\":[1]}},\"x\":\"yes\",\"b\":{\"c\":true},\"alert\":{"
        "\"severity\":\"low\",\"score\":\"9\"},\"related\":{\"ip\":[\"1.2.3."
        "4\"]},"
        "\"v\":{\"x\":1},\"n\":2,\"z\":{\"a\":1}}",
        "{\"a\":{\"b\":[{\"c\":1}],\"c\":{},\"d\":\"\"},\"b\":{},\"c\":null,"
        "\"items\":[{\"n\":\"x\"},{\"n\":null}],\"x\":[],\"y\":{},\"v\":{}}",
        "[1,2,{\"a\":1}]",
        "\"scalar\"",
        "null",
};

/* Returns the dump of prog's paths, having projected every event with them. */
static char *
dump_of(const char *prog, int *rc)
{
	struct jqpath *p = jqpath_new();
	size_t i;
	char *s;

	if (p == NULL)
		return NULL;
	*rc = jqpath_add_program(p, prog);
	s = jqpath_dump(p);
	for (i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		jv_free(jqpath_project_jv(p, jv_parse(events[i])));
	jqpath_free(p);
	return s;
}

static void
test_dumps(void)
{
	size_t i;
	char *got;
	int rc;

	CHECK(sizeof(cases) / sizeof(cases[0]) >= 60);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		got = dump_of(cases[i].prog, &rc);
		if (got == NULL || strcmp(got, cases[i].want) != 0)
			printf("# program: %s\n", cases[i].prog);
		CHECK_STR(got, cases[i].want);
		CHECK(rc == 0 || strcmp(cases[i].want, "*") == 0);
		free(got);
	}
}

static void
quiet(void *data, jv msg)
{
	(void)data;
	jv_free(msg);
}

/*
 * libjq 1.6's jq_init() leaves the input callback unset, and input then
 * reads uninitialised memory; a callback with nothing to give avoids that.
 */
static jv
no_input(jq_state *jq, void *data)
{
	(void)jq;
	(void)data;
	return jv_invalid();
}

/*
 * Returns the sorted dumps of what the compiled program yields on in,
 * ending with its error if any.  Runaway programs are cut at the same count
 * on both sides.
 */
static jv
run(jq_state *jq, jv in)
{
	jv out = jv_array(), r;
	int n;

	jq_start(jq, in, 0);
	for (n = 0; n < 2000 && jv_is_valid(r = jq_next(jq)); n++)
		out = jv_array_append(out, jv_dump_string(r, JV_PRINT_SORTED));
	if (n == 2000)
		return out;
	if (jv_invalid_has_msg(jv_copy(r)))
		out = jv_array_append(
		        out,
		        jv_string_concat(jv_string("error: "),
		                         jv_dump_string(jv_invalid_get_msg(r),
		                                        JV_PRINT_SORTED)));
	else
		jv_free(r);
	return out;
}

/*
 * Under valgrind (tests/run sets SOAR_VALGRIND=1) the runs through libjq are
 * left out: they take minutes there, and valgrind would count libjq's own
 * leaks.  The analysis and the projection still run.
 */
static int
under_valgrind(void)
{
	const char *v = getenv("SOAR_VALGRIND");

	return v != NULL && strcmp(v, "1") == 0;
}

struct tally {
	int programs, pairs, cut, bounded, uncompiled;
};

/*
 * Runs prog on every event and on its projection; returns 0 when all
 * outputs and errors agree.
 */
static int
same_on_projection(const char *prog, struct tally *t)
{
	jq_state *jq = jq_init();
	struct jqpath *p = jqpath_new();
	jv ev, proj, a, b;
	size_t i;
	int bad = 0;

	if (jq == NULL || p == NULL) {
		jq_teardown(&jq);
		jqpath_free(p);
		return -1;
	}
	jq_set_error_cb(jq, quiet, NULL);
	jq_set_input_cb(jq, no_input, NULL);
	if (!jq_compile(jq, prog)) {
		t->uncompiled++;
		bad = -1;
		goto out;
	}
	t->programs++;
	if (jqpath_add_program(p, prog) == 0 && !jqpath_is_whole(p))
		t->bounded++;
	for (i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		LSAN_OFF();
		ev = jv_parse(events[i]);
		proj = jqpath_project_jv(p, jv_copy(ev));
		if (!jv_equal(jv_copy(ev), jv_copy(proj)))
			t->cut++;
		t->pairs++;
		a = run(jq, ev);
		b = run(jq, proj);
		if (!jv_equal(jv_copy(a), jv_copy(b))) {
			bad = 1;
			a = jv_dump_string(a, 0);
			b = jv_dump_string(b, 0);
			printf("# %s on event %zu\n#  full: %s\n#  proj: %s\n",
			       prog, i, jv_string_value(a), jv_string_value(b));
		}
		jv_free(a);
		jv_free(b);
		LSAN_ON();
	}
out:
	jq_teardown(&jq);
	jqpath_free(p);
	return bad;
}

static void
test_projection_table(void)
{
	struct tally t = {0, 0, 0, 0, 0};
	size_t i;

	if (under_valgrind()) {
		printf("# libjq runs skipped under valgrind\n");
		return;
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (same_on_projection(cases[i].prog, &t) != 0) {
			printf("# program: %s\n", cases[i].prog);
			CHECK(0);
		}
	}
	CHECK_INT(t.uncompiled, 0);
	/* The property must not hold merely because nothing was cut. */
	CHECK(t.cut > t.pairs / 3);
	printf("# %d programs, %d bounded, %d of %d events cut\n", t.programs,
	       t.bounded, t.cut, t.pairs);
}

struct rng {
	uint64_t s;
};

static unsigned
rnd(struct rng *r, unsigned n)
{
	r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(r->s >> 33) % n;
}

struct sbuf {
	char s[16384];
	size_t len;
};

static void
put(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (n < sizeof(b->s) - b->len) {
		memcpy(b->s + b->len, s, n + 1);
		b->len += n;
	}
}

/*
 * Writes a random program built from leaves and templates, where each '%'
 * in a template stands for a parenthesised random subprogram.  When bare,
 * half the parentheses are left out, so that jq's precedence decides; some
 * of those programs do not compile.
 */
static void
gen(struct rng *r, struct sbuf *b, int depth, int bare)
{
	static const char *const leaves[] = {
	        ".",
	        ".a",
	        ".a.b",
	        ".a.b.c",
	        ".b.c",
	        ".c",
	        ".k",
	        ".x",
	        ".y.z",
	        ".items",
	        ".items[]?",
	        ".alert.severity",
	        ".alert",
	        ".related.ip",
	        ".n",
	        ".[\"kibana.alert.rule.name\"]",
	        ".[\"a\\\"b\"]",
	        ".\"b-c\"",
	        ".a?",
	        "1",
	        "\"b\"",
	        "null",
	        "false",
	        "$__loc__",
	        "..",
	        ".[]?",
	        "keys?",
	        "length",
	        "type",
	        "empty",
	        "has(\"a\")?",
	        "getpath([\"a\",\"b\"])?",
	        ".a[0]?",
	        ".a[.k]?",
	        ".[.k]?",
	        "input?",
	        ".v",
	        ".a.d",
	        ".z.a",
	};
	static const char *const tmpl[] = {
	        "% | %",
	        "%, %",
	        "% // %",
	        "% == %",
	        "% != %",
	        "% < %",
	        "% and %",
	        "% or %",
	        "% + %",
	        "select(%)",
	        "if % then % else % end",
	        "if % then % elif % then % else % end",
	        "try % catch %",
	        "try %",
	        "%?",
	        "[%]",
	        "{a: %}",
	        "{a: %, b: %}",
	        "{(% | tostring): 1}",
	        "\"x\\(%)y\"",
	        "% as $v | %",
	        "% as $v | $v",
	        "% as [$p, $q] | $q",
	        "% as {a: $p} | $p",
	        "reduce % as $i (0; . + 1)",
	        "reduce % as $i (%; [$i])",
	        "foreach % as $i (0; . + 1)",
	        "first(%)",
	        "last(%)",
	        "limit(1; %)",
	        "limit(%; %)",
	        "any(%; %)",
	        "all(%; %)",
	        "isempty(%)",
	        "%[]?",
	        "%[%]?",
	        "%.a",
	        "%.b?",
	        "%[\"c\"]",
	        "%[1:]?",
	        "% | keys?",
	        "% | length",
	        "% | tostring",
	        "% | not",
	        "error(%)",
	        "% |= 1",
	        "label $out | % | ., break $out",
	        "[% | ..]",
	        "@base64 \"\\(%)\"",
	        "-(%)",
	        "{a: %} | .a",
	        "% | has(\"b\")?",
	        "% | getpath([\"b\"])?",
	        "% | .a, .b",
	        "% | {b, c}",
	        "% | select(.c)",
	        "% | .[\"d\"] // .c",
	        "[% // (%, %) | 1]",
	        "% | getpath([\"a\", \"b\"]) | 2",
	        "- %",
	        "% * %",
	        "{a: - %}",
	        "label $out | %",
	        "% as [$p] | %",
	        "%, % as $v | %",
	        "try % catch % | %",
	        "% // % | %",
	};
	const char *t;
	char one[2] = {0, 0};

	if (depth <= 0 || rnd(r, 4) == 0) {
		put(b, leaves[rnd(r, sizeof(leaves) / sizeof(leaves[0]))]);
		return;
	}
	for (t = tmpl[rnd(r, sizeof(tmpl) / sizeof(tmpl[0]))]; *t; t++) {
		if (*t == '%' && bare && rnd(r, 2)) {
			gen(r, b, depth - 1, bare);
		} else if (*t == '%') {
			put(b, "(");
			gen(r, b, depth - 1, bare);
			put(b, ")");
		} else {
			one[0] = *t;
			put(b, one);
		}
	}
}

static void
test_projection_random(void)
{
	struct tally t = {0, 0, 0, 0, 0}, u = {0, 0, 0, 0, 0};
	struct rng r = {20240611};
	struct sbuf b;
	int i, rc, bad = 0, vg = under_valgrind();

	for (i = 0; i < 500; i++) {
		b.len = 0;
		b.s[0] = '\0';
		gen(&r, &b, 1 + (int)rnd(&r, 3), i % 2);
		if (!vg && same_on_projection(b.s, i % 2 ? &u : &t) > 0)
			bad++;
		/* The same analysis again, where leaks are not suppressed. */
		free(dump_of(b.s, &rc));
		CHECK(rc == 0 || rc == 1);
	}
	if (vg) {
		printf("# libjq runs skipped under valgrind\n");
		return;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(t.uncompiled, 0);
	CHECK(u.programs > 125);
	CHECK(t.bounded > t.programs / 3 && u.bounded > u.programs / 3);
	CHECK(t.cut > t.pairs / 4 && u.cut > u.pairs / 4);
	printf("# %d random programs, %d bounded, %d of %d events cut\n",
	       t.programs, t.bounded, t.cut, t.pairs);
	printf("# %d more without parentheses, %d bounded, %d of %d events "
	       "cut, %d did not compile\n",
	       u.programs, u.bounded, u.cut, u.pairs, u.uncompiled);
}

static int
falls_back(const char *prog)
{
	struct jqpath *p = jqpath_new();
	int rc;

	if (p == NULL)
		return 0;
	rc = jqpath_add_program(p, prog);
	rc = rc == 1 && jqpath_is_whole(p);
	jqpath_free(p);
	return rc;
}

/* Returns an owned string of n copies of s followed by tail. */
static char *
repeat(const char *head, const char *s, size_t n, const char *tail)
{
	size_t hl = strlen(head), sl = strlen(s), tl = strlen(tail), i;
	char *out = malloc(hl + sl * n + tl + 1), *p = out;

	if (out == NULL)
		return NULL;
	memcpy(p, head, hl);
	p += hl;
	for (i = 0; i < n; i++, p += sl)
		memcpy(p, s, sl);
	memcpy(p, tail, tl + 1);
	return out;
}

static void
test_fallback(void)
{
	static const char *const progs[] = {
	        "import \"foo\" as f; .a",
	        "include \"x\"; .a",
	        "module {a: 1}; .a",
	        ". as [$a] ?// $a | $a",
	        ".a?//1",
	        "\"abc",
	        ".a[",
	        "(.a",
	        "{a:",
	        "{a: .b",
	        "if .a then .b",
	        "if .a then .b else .c",
	        "\"\\(.a",
	        "\"\\(.a)",
	        ".a | ",
	        "\"\\u12\"",
	        "\"\\q\"",
	        "foo::bar",
	        ".a !",
	        "@",
	        "{(.a)}",
	        ".a as",
	        ".a as $x",
	        "reduce .a",
	        "reduce .a as $x (0",
	        "foreach .a as $x (0; 1; 2; 3)",
	        "def f: .; .a",
	        "}",
	        ")",
	        "]",
	        "\"\\",
	        "$",
	        ".[",
	        ". .",
	        "..a",
	        ".a.[0]",
	        "label | 1",
	        "break",
	        "try",
	        "[.a,]",
	        ",",
	        "|",
	        "1 +",
	        "`",
	        "\\",
	};
	size_t i;
	char *s;

	for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		if (!falls_back(progs[i]))
			printf("# kept: %s\n", progs[i]);
		CHECK(falls_back(progs[i]));
	}
	CHECK(falls_back(NULL));
	if ((s = repeat("", "(", 1000, ".a")) != NULL) {
		CHECK(falls_back(s));
		free(s);
	}
	if ((s = repeat("", "[", 1000, "")) != NULL) {
		CHECK(falls_back(s));
		free(s);
	}
	if ((s = repeat("", "{a:", 1000, "1")) != NULL) {
		CHECK(falls_back(s));
		free(s);
	}
	if ((s = repeat("", "- ", 1000, ".a")) != NULL) {
		CHECK(falls_back(s));
		free(s);
	}
	if ((s = repeat("", "\"\\(", 1000, ".a")) != NULL) {
		CHECK(falls_back(s));
		free(s);
	}
	if ((s = repeat("if .a then 1 ", "elif .a then 1 ", 1000,
	                "else 2 end")) != NULL) {
		CHECK(falls_back(s));
		free(s);
	}
	/* Long chains give up instead of recursing without bound. */
	if ((s = repeat(".", "a.", 5000, "a")) != NULL) {
		CHECK(falls_back(s));
		free(s);
	}
	if ((s = repeat("1", " + .a", 2000, "")) != NULL) {
		CHECK(falls_back(s));
		free(s);
	}
}

/* A long but flat program is analysed in full. */
static void
test_long_program(void)
{
	struct jqpath *p = jqpath_new();
	char *s = malloc(20000), key[16];
	size_t len = 0, i, n = 0;
	int w;

	if (p == NULL || s == NULL) {
		CHECK(0);
		goto out;
	}
	s[len++] = '[';
	for (i = 0; len < 10000; i++) {
		w = snprintf(s + len, 20000 - len, "%s.f%zu", i ? ", " : "", i);
		CHECK(w > 0 && (size_t)w < 20000 - len);
		len += (size_t)w;
		n++;
	}
	memcpy(s + len, "] | length", 11);
	CHECK(strlen(s) >= 10000);
	CHECK_INT(jqpath_add_program(p, s), 0);
	CHECK_INT(jqpath_node_nchildren(jqpath_root(p)), n);
	for (i = 0; i < n; i += 97) {
		w = snprintf(key, sizeof(key), "f%zu", i);
		CHECK(w > 0 && (size_t)w < sizeof(key));
		CHECK(jqpath_node_child(jqpath_root(p), key, (size_t)w) !=
		      NULL);
	}
	CHECK(jqpath_node_child(jqpath_root(p), "g0", 2) == NULL);
out:
	free(s);
	jqpath_free(p);
}

/* Neither random bytes nor random token soup may crash the parser. */
static void
test_garbage(void)
{
	static const char *const toks[] = {
	        ".",       "..",       ".a",      "[",          "]",
	        "{",       "}",        "(",       ")",          "|",
	        ",",       ":",        ";",       "?",          "//",
	        "=",       "|=",       "==",      "+",          "-",
	        "*",       "as",       "$x",      "if",         "then",
	        "elif",    "else",     "end",     "try",        "catch",
	        "reduce",  "foreach",  "label",   "break",      "\"",
	        "\\(",     "\"s\"",    "@base64", "select",     "has",
	        "getpath", "any",      "1",       "#",          "\n",
	        " ",       "def",      "?//",     "\\u",        "and",
	        "or",      "$__loc__", "not",     "\"\\(.a)\"",
	};
	struct rng r = {7};
	char s[512];
	size_t len, n, i, k;
	int rc, bad = 0;
	struct jqpath *p;

	for (i = 0; i < 6000; i++) {
		len = 0;
		n = rnd(&r, 60);
		for (k = 0; k < n; k++) {
			const char *t;

			if (i % 2) {
				s[len++] = (char)(1 + rnd(&r, 255));
				continue;
			}
			t = toks[rnd(&r, sizeof(toks) / sizeof(toks[0]))];
			if (strlen(t) + 1 >= sizeof(s) - len)
				break;
			memcpy(s + len, t, strlen(t));
			len += strlen(t);
			if (rnd(&r, 2))
				s[len++] = ' ';
		}
		s[len] = '\0';
		if ((p = jqpath_new()) == NULL)
			break;
		rc = jqpath_add_program(p, s);
		if (rc != 0 && !(rc == 1 && jqpath_is_whole(p)))
			bad++;
		jqpath_free(p);
	}
	CHECK_INT(bad, 0);
}

static void
test_trie(void)
{
	static const char *const ab[] = {"a", "b"},
	                         *const abc[] = {"a", "b", "c"},
	                         *const ad[] = {"a", "d"};
	static const char *const many[] = {"b", "a", "B", "aa", "", "a b"};
	const char *deep[300];
	struct jqpath *p = jqpath_new();
	const struct jqpath_node *n;
	char *s;
	size_t i;

	if (p == NULL) {
		CHECK(0);
		return;
	}
	s = jqpath_dump(p);
	CHECK_STR(s, "{}");
	free(s);
	CHECK_INT(jqpath_add_path(p, abc, 3), 0);
	CHECK_INT(jqpath_add_path(p, ad, 2), 0);
	s = jqpath_dump(p);
	CHECK_STR(s, "{a:{b:{c:*},d:*}}");
	free(s);
	/* A whole node swallows what was recorded below it... */
	CHECK_INT(jqpath_add_path(p, ab, 2), 0);
	s = jqpath_dump(p);
	CHECK_STR(s, "{a:{b:*,d:*}}");
	free(s);
	/* ...and stays whole when a deeper path is added. */
	CHECK_INT(jqpath_add_path(p, abc, 3), 0);
	s = jqpath_dump(p);
	CHECK_STR(s, "{a:{b:*,d:*}}");
	free(s);

	/* Lookups take keys that are not NUL-terminated. */
	n = jqpath_node_child(jqpath_root(p), "abc", 1);
	CHECK(n != NULL && !jqpath_node_whole(n));
	CHECK_INT(jqpath_node_nchildren(n), 2);
	CHECK(jqpath_node_child(jqpath_root(p), "abc", 2) == NULL);
	CHECK(jqpath_node_child(jqpath_root(p), "abc", 0) == NULL);
	CHECK(n != NULL && jqpath_node_whole(jqpath_node_child(n, "bx", 1)));
	CHECK(n != NULL && jqpath_node_child(n, "c", 1) == NULL);
	CHECK_INT(jqpath_node_nchildren(jqpath_root(p)), 1);
	CHECK(!jqpath_is_whole(p));

	/* Programs add to what is there. */
	CHECK_INT(jqpath_add_program(p, ".c | .x, .y"), 0);
	s = jqpath_dump(p);
	CHECK_STR(s, "{a:{b:*,d:*},c:{x:*,y:*}}");
	free(s);
	CHECK_INT(jqpath_add_program(p, "def f: 1; f"), 1);
	CHECK(jqpath_is_whole(p));
	s = jqpath_dump(p);
	CHECK_STR(s, "*");
	free(s);
	CHECK_INT(jqpath_node_nchildren(jqpath_root(p)), 0);
	CHECK_INT(jqpath_add_program(p, ".a"), 0);
	CHECK(jqpath_is_whole(p));
	jqpath_free(p);

	/* Keys sort bytewise and quote unless they are identifiers. */
	if ((p = jqpath_new()) == NULL)
		return;
	for (i = 0; i < sizeof(many) / sizeof(many[0]); i++)
		CHECK_INT(jqpath_add_path(p, &many[i], 1), 0);
	s = jqpath_dump(p);
	CHECK_STR(s, "{\"\":*,B:*,a:*,\"a b\":*,aa:*,b:*}");
	free(s);
	CHECK_INT(jqpath_add_path(p, NULL, 0), 0);
	CHECK(jqpath_is_whole(p));
	jqpath_free(p);

	/* A path too deep to walk safely reads everything. */
	if ((p = jqpath_new()) == NULL)
		return;
	for (i = 0; i < sizeof(deep) / sizeof(deep[0]); i++)
		deep[i] = "k";
	CHECK_INT(jqpath_add_path(p, deep, 256), 0);
	CHECK(!jqpath_is_whole(p));
	CHECK_INT(jqpath_add_path(p, deep, 300), 0);
	CHECK(jqpath_is_whole(p));
	jqpath_free(p);

	/* A key holding a NUL byte is found by its bytes. */
	if ((p = jqpath_new()) == NULL)
		return;
	CHECK_INT(jqpath_add_program(p, ".[\"a\\u0000b\"].c"), 0);
	n = jqpath_node_child(jqpath_root(p), "a\0b", 3);
	CHECK(n != NULL && jqpath_node_child(n, "c", 1) != NULL);
	CHECK(jqpath_node_child(jqpath_root(p), "a", 1) == NULL);
	jqpath_free(p);
	jqpath_free(NULL);
}

static int
projects_to(const char *prog, const char *event, const char *want)
{
	struct jqpath *p = jqpath_new();
	jv got, w;
	int ok;

	if (p == NULL)
		return 0;
	jqpath_add_program(p, prog);
	got = jqpath_project_jv(p, jv_parse(event));
	w = jv_parse(want);
	ok = jv_equal(jv_copy(got), jv_copy(w));
	if (!ok) {
		got = jv_dump_string(got, 0);
		printf("# %s on %s: %s\n", prog, event, jv_string_value(got));
	}
	jv_free(got);
	jv_free(w);
	jqpath_free(p);
	return ok;
}

static void
test_project(void)
{
	CHECK(projects_to(".a.b", "{\"a\":{\"b\":{\"x\":1},\"c\":2},\"d\":3}",
	                  "{\"a\":{\"b\":{\"x\":1}}}"));
	CHECK(projects_to(".a.b", "{\"a\":[1],\"d\":3}", "{\"a\":[1]}"));
	CHECK(projects_to(".a.b", "{\"a\":\"s\"}", "{\"a\":\"s\"}"));
	CHECK(projects_to(".a.b", "{\"d\":3}", "{}"));
	CHECK(projects_to(".a.b", "[{\"a\":1}]", "[{\"a\":1}]"));
	CHECK(projects_to(".a.b", "7", "7"));
	CHECK(projects_to(".a.b | empty", "{\"a\":{\"c\":1},\"d\":3}",
	                  "{\"a\":{}}"));
	CHECK(projects_to("true", "{\"a\":1}", "{}"));
	CHECK(projects_to(".", "{\"a\":1}", "{\"a\":1}"));
	CHECK(projects_to(".[\"a.b\"], .a",
	                  "{\"a.b\":1,\"a\":{\"b\":2},\"c\":3}",
	                  "{\"a.b\":1,\"a\":{\"b\":2}}"));
}

int
main(void)
{
	UNIT_RUN(test_trie);
	UNIT_RUN(test_project);
	UNIT_RUN(test_dumps);
	UNIT_RUN(test_fallback);
	UNIT_RUN(test_long_program);
	UNIT_RUN(test_garbage);
	UNIT_RUN(test_projection_table);
	UNIT_RUN(test_projection_random);
	return UNIT_END();
}
