/* vt-enrich: adds VirusTotal verdicts for the event's indicators as "vt". */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>

#include "lib/cache.h"
#include "lib/cli.h"
#include "lib/enrich.h"
#include "lib/event.h"
#include "lib/http.h"
#include "lib/indicator.h"
#include "lib/jqpath.h"
#include "lib/jqx.h"
#include "lib/json.h"
#include "lib/secret.h"

enum {
	OPT_JOBS = 'j',
	OPT_TYPES = 't',
	OPT_FIELD = CLI_TOOL_KEYS,
	OPT_CACHE,
	OPT_TTL,
	OPT_NEG_TTL,
	OPT_MAL,
	OPT_SUS,
	OPT_AS,
	OPT_UNORDERED,
	OPT_WHEN,
	OPT_READ_AHEAD,
};

static const struct cli_opt options[] = {
        {"types", OPT_TYPES, "LIST", "indicator types: ip,domain,hash,url"},
        {"field", OPT_FIELD, "EXPR", "jq expression giving the indicators"},
        {"when", OPT_WHEN, "EXPR", "look up only events where EXPR is true"},
        {"jobs", OPT_JOBS, "N", "requests in flight (default 4)"},
        CLI_OPT_RATE("request rate (default 4/m; 0: none)"),
        CLI_OPT_TIMEOUT,
        CLI_OPT_RETRIES,
        {"cache", OPT_CACHE, "FILE|none", "answer cache (default per user)"},
        {"ttl", OPT_TTL, "DUR", "keep answers this long (default 24h)"},
        {"negative-ttl", OPT_NEG_TTL, "DUR",
         "keep 'not found' this long (default 1h)"},
        {"malicious-threshold", OPT_MAL, "N",
         "engines for a malicious verdict (default 3)"},
        {"suspicious-threshold", OPT_SUS, "N",
         "engines for a suspicious verdict (default 1)"},
        {"as", OPT_AS, "KEY", "name of the added key (default vt)"},
        {"unordered", OPT_UNORDERED, NULL, "write events as soon as ready"},
        {"read-ahead", OPT_READ_AHEAD, "SIZE",
         "input spooled ahead, lookups started (default 256M; 0: none)"},
        CLI_OPT_REJECT,
        CLI_OPT_MAX_LINE,
        CLI_OPT_LINE_BUFFERED,
        CLI_OPT_LOG_FORMAT,
        CLI_OPT_QUIET,
        CLI_OPT_HELP,
        CLI_OPT_VERSION,
};

enum { T_IP = 1, T_DOMAIN = 2, T_HASH = 4, T_URL = 8 };

struct vt {
	struct cli cli;
	int types;
	const char *field, *when, *cache_path, *key;
	long long jobs, mal, sus;
	long ttl, neg_ttl;
	size_t read_ahead;
	int unordered;
	char *apikey, *base;
	struct jqx *jq;
	struct jqpath *paths;
	int field_idx, when_idx;
	int auth_logged; /* the refused key was reported */
	/* Storage for the request being built. */
	struct buf url;
	struct http_header hdr[2];
};

static void
parse_types(struct vt *v, const char *arg)
{
	char *list = strdup(arg), *save = NULL, *t;

	v->types = 0;
	for (t = strtok_r(list, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "ip") == 0)
			v->types |= T_IP;
		else if (strcmp(t, "domain") == 0)
			v->types |= T_DOMAIN;
		else if (strcmp(t, "hash") == 0)
			v->types |= T_HASH;
		else if (strcmp(t, "url") == 0)
			v->types |= T_URL;
		else
			cli_usage_error(&v->cli, "--types: unknown type '%s'",
			                t);
	}
	free(list);
	if (v->types == 0)
		cli_usage_error(&v->cli, "--types: empty list");
}

static void
parse_args(struct vt *v, int argc, char **argv)
{
	struct cli *c = &v->cli;
	const char *arg;
	int key;

	while ((key = cli_next(c, argc, argv, &arg)) != -1) {
		if (cli_common(c, key, arg))
			continue;
		switch (key) {
		case OPT_TYPES:
			parse_types(v, arg);
			break;
		case OPT_FIELD:
			v->field = arg;
			break;
		case OPT_WHEN:
			v->when = arg;
			break;
		case OPT_JOBS:
			if (cli_parse_long(arg, 1, 256, &v->jobs) < 0)
				cli_usage_error(c, "--jobs: 1 to 256");
			break;
		case OPT_CACHE:
			v->cache_path = arg;
			break;
		case OPT_TTL:
		case OPT_NEG_TTL:
			if (cli_parse_duration(
			            arg, key == OPT_TTL ? &v->ttl
			                                : &v->neg_ttl) < 0 ||
			    (key == OPT_TTL ? v->ttl : v->neg_ttl) < 1)
				cli_usage_error(c, "--%s: bad duration '%s'",
				                key == OPT_TTL ? "ttl"
				                               : "negative-ttl",
				                arg);
			break;
		case OPT_MAL:
		case OPT_SUS:
			if (cli_parse_long(arg, 1, 1000,
			                   key == OPT_MAL ? &v->mal : &v->sus) <
			    0)
				cli_usage_error(c, "thresholds: 1 to 1000");
			break;
		case OPT_AS:
			v->key = arg;
			break;
		case OPT_UNORDERED:
			v->unordered = 1;
			break;
		case OPT_READ_AHEAD:
			if (cli_parse_size(arg, &v->read_ahead) < 0)
				cli_usage_error(
				        c, "--read-ahead: '%s' is not a size",
				        arg);
			break;
		default:
			cli_usage_error(c, "unhandled option");
		}
	}
	if (optind < argc)
		cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
}

/* Adds (type, value) to the event's lookups when value is an indicator of
 * an enabled type; guess names the type from the value's shape.  Returns
 * 0, or -1 on ENOMEM. */
static int
add_key(const struct vt *v, struct enrich_keys *ks, const char *type,
        const char *value)
{
	char low[256];
	size_t n = strlen(value);

	if (strcmp(type, "guess") == 0) {
		if (indicator_is_ip(value))
			type = "ip";
		else if (indicator_hash_kind(value) != NULL)
			type = "hash";
		else if (strncmp(value, "http://", 7) == 0 ||
		         strncmp(value, "https://", 8) == 0)
			type = "url";
		else
			type = "domain";
	}
	if (strcmp(type, "ip") == 0) {
		/* Internal and reserved addresses are never sent. */
		if (!(v->types & T_IP) || !indicator_ip_public(value))
			return 0;
	} else if (strcmp(type, "hash") == 0 || strcmp(type, "domain") == 0) {
		if (!(v->types & (type[0] == 'h' ? T_HASH : T_DOMAIN)) ||
		    n >= sizeof(low))
			return 0;
		for (size_t i = 0; i <= n; i++)
			low[i] = (char)(value[i] >= 'A' && value[i] <= 'Z'
			                        ? value[i] + 32
			                        : value[i]);
		if (type[0] == 'd' && n > 1 && low[n - 1] == '.')
			low[n - 1] = '\0';
		if (type[0] == 'h' ? indicator_hash_kind(low) == NULL
		                   : !indicator_domain_ok(low))
			return 0;
		value = low;
	} else if (!(v->types & T_URL) || n == 0 || n > 8192)
		return 0;
	return enrich_key(ks, type, value);
}

/* Adds the indicators in val (borrowed): a string, or an array of strings,
 * one level of nested arrays allowed (--field outputs). */
static int
add_values(const struct vt *v, struct enrich_keys *ks, const char *type, jv val,
           int depth)
{
	int rc = 0, n;

	if (jv_get_kind(val) == JV_KIND_STRING)
		return add_key(v, ks, type, jv_string_value(val));
	if (jv_get_kind(val) != JV_KIND_ARRAY || depth >= 2)
		return 0;
	n = jv_array_length(jv_copy(val));
	for (int i = 0; i < n && rc == 0; i++) {
		jv x = jv_array_get(jv_copy(val), i);

		rc = add_values(v, ks, type, x, depth + 1);
		jv_free(x);
	}
	return rc;
}

/* add_key() for a field's text: a string or an array of strings, read
 * from the line without building values. */
static int
add_span(const struct vt *v, struct enrich_keys *ks, const char *type,
         const char *s, size_t len)
{
	char val[8200]; /* the longest URL looked up, and its NUL */
	size_t pos = 0, off, elen;

	if (s[0] == '"')
		return json_string_copy(s, len, val, sizeof(val)) < 0
		               ? 0
		               : add_key(v, ks, type, val);
	if (s[0] != '[')
		return 0;
	while (json_array_next(s, len, &pos, &off, &elen))
		if (s[off] == '"' &&
		    json_string_copy(s + off, elen, val, sizeof(val)) >= 0 &&
		    add_key(v, ks, type, val) < 0)
			return -1;
	return 0;
}

static int
vt_keys(void *ctx, const char *line, size_t n, struct enrich_keys *ks,
        jv *error)
{
	static const struct {
		const char *path, *type;
		int mask;
	} fields[] = {
	        {"related.ip", "ip", T_IP},
	        {"related.hash", "hash", T_HASH},
	        {"url.domain", "domain", T_DOMAIN},
	        {"destination.domain", "domain", T_DOMAIN},
	        {"dns.question.name", "domain", T_DOMAIN},
	        {"url.full", "url", T_URL},
	};
	struct vt *v = ctx;
	struct soar_error err;
	jv out = jv_null();

	if (v->jq != NULL) {
		jv ev = event_parse(line, n, v->paths);
		int t = 1, rc = 0;

		if (!jv_is_valid(ev)) {
			*error = jv_invalid_get_msg(ev);
			return -1;
		}
		if (v->when_idx >= 0)
			t = jqx_truthy(v->jq, v->when_idx, jv_copy(ev), &err);
		if (t > 0 && v->field_idx >= 0) {
			t = jqx_first(v->jq, v->field_idx, jv_copy(ev), &out,
			              &err);
			if (t > 0)
				rc = add_values(v, ks, "guess", out, 0);
			jv_free(out);
		}
		jv_free(ev);
		if (t < 0) {
			*error = event_error_jv(&err, jv_null());
			return -1;
		}
		if (rc < 0 || v->field_idx >= 0 || t == 0)
			return rc;
	}
	const char *paths[sizeof(fields) / sizeof(fields[0])];
	struct event_span sp[sizeof(fields) / sizeof(fields[0])];
	size_t np = 0;

	/* Only the fields of enabled types are looked for. */
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (v->types & fields[i].mask)
			paths[np++] = fields[i].path;
	if (event_find_many(line, n, paths, np, sp) > 0)
		for (size_t i = 0, k = 0;
		     i < sizeof(fields) / sizeof(fields[0]); i++) {
			if (!(v->types & fields[i].mask))
				continue;
			if (sp[k].len > 0 &&
			    add_span(v, ks, fields[i].type, line + sp[k].off,
			             sp[k].len) < 0)
				return -1;
			k++;
		}
	return 0;
}

static int
vt_request(void *ctx, const char *type, const char *value,
           struct http_request *req, struct soar_error *err)
{
	struct vt *v = ctx;
	char id[8192 / 3 * 4 + 8];
	const char *coll;

	if (strcmp(type, "ip") == 0)
		coll = "ip_addresses";
	else if (strcmp(type, "domain") == 0)
		coll = "domains";
	else if (strcmp(type, "hash") == 0)
		coll = "files";
	else {
		coll = "urls";
		if (indicator_base64url(value, strlen(value), id, sizeof(id)) <
		    0) {
			soar_error_set(err, "input", "URL too long");
			return -1;
		}
		value = id;
	}
	buf_clear(&v->url);
	if (buf_printf(&v->url, "%s/api/v3/%s/%s", v->base, coll, value) < 0) {
		soar_error_set(err, "nomem", "out of memory");
		return -1;
	}
	v->hdr[0] = (struct http_header){"x-apikey", v->apikey};
	v->hdr[1] = (struct http_header){"Accept", "application/json"};
	*req = (struct http_request){.method = "GET",
	                             .url = v->url.data,
	                             .headers = v->hdr,
	                             .nheaders = 2,
	                             .idempotent = 1};
	return 0;
}

/* The VirusTotal GUI page of an indicator, for analysts to click. */
static jv
gui_link(const char *type, const char *value)
{
	char id[8192 / 3 * 4 + 8];
	const char *kind = strcmp(type, "ip") == 0       ? "ip-address"
	                   : strcmp(type, "domain") == 0 ? "domain"
	                   : strcmp(type, "hash") == 0   ? "file"
	                                                 : "url";

	if (kind[0] == 'u' &&
	    indicator_base64url(value, strlen(value), id, sizeof(id)) >= 0)
		value = id;
	return jv_string_fmt("https://www.virustotal.com/gui/%s/%s", kind,
	                     value);
}

static jv
vt_error(const char *code, const struct http_response *resp, const char *what,
         const char *detail)
{
	struct soar_error e;

	soar_error_set(&e, code, "%s%s", what, detail);
	e.status = resp ? resp->status : 0;
	e.attempts = resp ? resp->attempts : 0;
	return event_error_jv(&e, jv_null());
}

/* The fields of a VirusTotal body the tool reads.  Bodies run to tens of
 * kilobytes, so they are checked by the scanner and only these few values
 * are parsed, not the whole object. */
struct vt_body {
	int valid;     /* one well-formed JSON object */
	char code[64]; /* error.code, or "" */
	int attrs;     /* data.attributes is an object */
	jv stat[4];    /* malicious, suspicious, harmless, undetected */
	jv reputation, date;
};

/* The number at s[sp] (null when absent or not a number). */
static jv
span_number(const char *s, const struct event_span *sp)
{
	jv x;

	if (sp->len == 0 ||
	    !(s[sp->off] == '-' || (s[sp->off] >= '0' && s[sp->off] <= '9')))
		return jv_null();
	x = jv_parse_sized(s + sp->off, (int)sp->len);
	if (jv_get_kind(x) == JV_KIND_NUMBER)
		return x;
	jv_free(x);
	return jv_null();
}

static void
body_scan(const struct http_response *resp, struct vt_body *b)
{
	static const char *const top[] = {"data.attributes", "error.code"};
	static const char *const attr[] = {"last_analysis_stats", "reputation",
	                                   "last_analysis_date"};
	static const char *const stat[] = {"malicious", "suspicious",
	                                   "harmless", "undetected"};
	const char *s = resp->body.data ? resp->body.data : "";
	struct event_span t[2], a[3], st[4];
	struct json_err jerr;

	memset(b, 0, sizeof(*b));
	for (size_t i = 0; i < 4; i++)
		b->stat[i] = jv_null();
	b->reputation = b->date = jv_null();
	if (json_check_object(s, resp->body.len, &jerr) < 0)
		return;
	b->valid = 1;
	event_find_many(s, resp->body.len, top, 2, t);
	if (t[1].len > 0 && s[t[1].off] == '"') {
		jv c = jv_parse_sized(s + t[1].off, (int)t[1].len);

		snprintf(b->code, sizeof(b->code), "%s",
		         jv_get_kind(c) == JV_KIND_STRING ? jv_string_value(c)
		                                          : "");
		jv_free(c);
	}
	if (t[0].len == 0 || s[t[0].off] != '{')
		return;
	b->attrs = 1;
	s += t[0].off;
	event_find_many(s, t[0].len, attr, 3, a);
	b->reputation = span_number(s, &a[1]);
	b->date = span_number(s, &a[2]);
	/* Objects analysed long ago may lack the statistics. */
	if (a[0].len == 0 || s[a[0].off] != '{')
		return;
	s += a[0].off;
	event_find_many(s, a[0].len, stat, 4, st);
	for (size_t i = 0; i < 4; i++)
		b->stat[i] = span_number(s, &st[i]);
}

static enum enrich_verdict
vt_answer(void *ctx, const char *type, const char *value,
          const struct http_response *resp, const struct soar_error *herr,
          jv *result)
{
	static const char *const stat[] = {"malicious", "suspicious",
	                                   "harmless", "undetected"};
	struct vt *v = ctx;
	struct vt_body b;
	const char *code;
	jv r;

	body_scan(resp, &b);
	code = b.code;
	if (herr != NULL || !b.valid || !b.attrs) {
		for (size_t i = 0; i < 4; i++)
			jv_free(b.stat[i]);
		jv_free(b.reputation);
		jv_free(b.date);
	}
	if (herr != NULL) {
		/* Only VirusTotal's own 404 says "not found": a proxy's or a
		 * wrong VT_URL's must not be cached as an answer. */
		if (resp->status == 404 && strcmp(code, "NotFoundError") == 0) {
			r = jv_object_set(jv_object(), jv_string("found"),
			                  jv_false());
			*result = jv_object_set(r, jv_string("link"),
			                        gui_link(type, value));
			return ENRICH_NOTFOUND;
		}
		if (resp->status == 401 || resp->status == 403) {
			if (!v->auth_logged++)
				log_msg(&v->cli.log, LOG_ERROR, 0, NULL,
				        "VirusTotal refused the API key (HTTP "
				        "%ld "
				        "%s): check VT_API_KEY",
				        resp->status, code);
			*result = vt_error("auth", resp,
			                   "VirusTotal refused the API key: ",
			                   code[0] ? code : "unauthorized");
			return ENRICH_FATAL;
		}
		if (resp->status == 429) {
			*result = vt_error("quota", resp,
			                   "VirusTotal quota exhausted: ",
			                   code[0] ? code : "HTTP 429");
			return ENRICH_STOP;
		}
		*result = vt_error(herr->code, resp, "", herr->message);
		return ENRICH_ERROR;
	}
	if (!b.valid || !b.attrs) {
		*result = vt_error("malformed", resp,
		                   "VirusTotal answered HTTP 200 with ",
		                   "a body that is not a VirusTotal object");
		return ENRICH_ERROR;
	}
	r = jv_object_set(jv_object(), jv_string("found"), jv_true());
	for (size_t i = 0; i < 4; i++)
		r = jv_object_set(r, jv_string(stat[i]), b.stat[i]);
	r = jv_object_set(r, jv_string("reputation"), b.reputation);
	r = jv_object_set(r, jv_string("last_analysis_date"), b.date);
	*result = jv_object_set(r, jv_string("link"), gui_link(type, value));
	return ENRICH_OK;
}

static double
num(jv o, const char *k)
{
	jv x = jv_get_kind(o) == JV_KIND_OBJECT
	               ? jv_object_get(jv_copy(o), jv_string(k))
	               : jv_invalid();
	double d = jv_get_kind(x) == JV_KIND_NUMBER ? jv_number_value(x) : 0;

	jv_free(x);
	return d;
}

/* Renders one indicator's entry: its type and value, then its answer's
 * fields or its error. */
static int
vt_item(void *ctx, const char *type, const char *value, jv result,
        struct buf *text, struct enrich_item *it)
{
	jv item = jv_object(), e;

	(void)ctx;
	item = jv_object_set(item, jv_string("type"), jv_string(type));
	item = jv_object_set(item, jv_string("value"), jv_string(value));
	e = jv_getpath(jv_copy(result), JV_ARRAY(jv_string("error")));
	if (jv_get_kind(e) == JV_KIND_OBJECT) {
		item = jv_object_set(item, jv_string("error"), e);
	} else {
		jv f = jv_getpath(jv_copy(result),
		                  JV_ARRAY(jv_string("found")));

		jv_free(e);
		it->found = jv_get_kind(f) == JV_KIND_TRUE;
		jv_free(f);
		it->num[0] = num(result, "malicious");
		it->num[1] = num(result, "suspicious");
		if (jv_get_kind(result) == JV_KIND_OBJECT)
			item = jv_object_merge(item, jv_copy(result));
	}
	return event_dump(item, text);
}

/* vt.score: 10 points per engine calling the indicator malicious and 3 per
 * suspicious, capped at 100, the worst indicator counting. */
static int
vt_summary(void *ctx, const struct enrich_item *items, size_t n,
           struct buf *out, int *failed)
{
	struct vt *v = ctx;
	double mal = 0, sus = 0, score = 0;
	const struct enrich_item *error = NULL;
	int found = 0, rc = 0;

	rc |= buf_puts(out, "{\"indicators\":[");
	for (size_t i = 0; i < n; i++) {
		const struct enrich_item *it = &items[i];

		if (i > 0)
			rc |= buf_putc(out, ',');
		rc |= buf_append(out, it->text, it->len);
		if (it->error != NULL) {
			if (error == NULL)
				error = it;
			continue;
		}
		found |= it->found;
		mal = fmax(mal, it->num[0]);
		sus = fmax(sus, it->num[1]);
		score = fmax(score,
		             fmin(100, 10 * it->num[0] + 3 * it->num[1]));
	}
	/* Engine counts are whole numbers, printed as such. */
	rc |= buf_printf(out,
	                 "],\"malicious\":%lld,\"score\":%lld,"
	                 "\"verdict\":\"%s\"",
	                 (long long)mal, (long long)round(score),
	                 mal >= (double)v->mal               ? "malicious"
	                 : mal >= 1 || sus >= (double)v->sus ? "suspicious"
	                 : found                             ? "clean"
	                                                     : "unknown");
	if (error != NULL) {
		rc |= buf_puts(out, ",\"error\":");
		rc |= buf_append(out, error->error, error->errlen);
		*failed = 1;
	}
	rc |= buf_putc(out, '}');
	return rc ? -1 : 0;
}

static jv
vt_stopped(void *ctx)
{
	(void)ctx;
	return vt_error("quota", NULL,
	                "not sent: ", "the VirusTotal quota is exhausted");
}

/* Reads the key and the base URL; exits 2 when there is no key. */
static void
configure(struct vt *v)
{
	struct soar_error err = {0};
	char *base = NULL;
	int rc;

	rc = secret_get("VT_API_KEY", NULL, &v->apikey, &err);
	if (rc < 0) {
		log_error(&v->cli.log, "%s", err.message);
		exit(SOAR_EXIT_USAGE);
	}
	if (rc == 0) {
		log_error(&v->cli.log, "no API key: set VT_API_KEY, "
		                       "VT_API_KEY_FILE or VT_API_KEY in the "
		                       "config file");
		exit(SOAR_EXIT_USAGE);
	}
	if (config_get("VT_URL", NULL, &base, &err) < 0) {
		log_error(&v->cli.log, "%s", err.message);
		exit(SOAR_EXIT_USAGE);
	}
	v->base = base ? base : strdup("https://www.virustotal.com");
	/* The tool appends /api/v3/...: a trailing slash would double. */
	for (size_t n = strlen(v->base); n > 0 && v->base[n - 1] == '/'; n--)
		v->base[n - 1] = '\0';
}

/* Compiles --field and --when, only when given. */
static void
compile(struct vt *v)
{
	struct buf msgs = BUF_INIT, wrapped = BUF_INIT;

	v->field_idx = v->when_idx = -1;
	if (v->field == NULL && v->when == NULL)
		return;
	if ((v->jq = jqx_new()) == NULL || (v->paths = jqpath_new()) == NULL)
		exit(SOAR_EXIT_FATAL);
	if (v->when != NULL) {
		v->when_idx = jqx_add(v->jq, v->when, "--when");
		jqpath_add_program(v->paths, v->when);
	}
	if (v->field != NULL) {
		/* All outputs of the expression, as one array. */
		buf_printf(&wrapped, "[%s\n]", v->field);
		v->field_idx = jqx_add(v->jq, wrapped.data, "--field");
		jqpath_add_program(v->paths, v->field);
	}
	buf_free(&wrapped);
	if (jqx_compile(v->jq, &msgs) < 0) {
		log_error(&v->cli.log, "cannot compile the jq program:");
		log_flush_buf(&v->cli.log, &msgs);
		exit(SOAR_EXIT_USAGE);
	}
	buf_free(&msgs);
}

int
main(int argc, char *argv[])
{
	struct vt v = {.types = T_IP | T_DOMAIN | T_HASH | T_URL,
	               .key = "vt",
	               .jobs = 4,
	               .mal = 3,
	               .sus = 1,
	               .ttl = 86400,
	               .neg_ttl = 3600,
	               .read_ahead = (size_t)256 << 20};
	struct enrich_ops ops = {
	        .provider = "vt",
	        .keys = vt_keys,
	        .request = vt_request,
	        .answer = vt_answer,
	        .item = vt_item,
	        .summary = vt_summary,
	        .stopped = vt_stopped,
	};
	struct http_config hc;
	struct enrich_config ec = {0};
	struct enrich_result res;
	struct soar_error err = {0};
	struct cache *cache;
	struct http *http;
	int status;

	cli_hygiene();
	if (cli_init(&v.cli, "vt-enrich", "[-t TYPES] [--field EXPR] [options]",
	             "Add VirusTotal verdicts for each event's indicators.",
	             options, sizeof(options) / sizeof(options[0])) < 0)
		return SOAR_EXIT_FATAL;
	v.cli.rate = 4.0 / 60; /* the public API: 4 a minute */
	parse_args(&v, argc, argv);
	cli_check_stdin(&v.cli);
	configure(&v);
	compile(&v);
	cache = cache_open(v.cache_path, NULL, &err);
	if (cache == NULL)
		return SOAR_EXIT_FATAL;
	if (!cache_enabled(cache) && err.code[0] != '\0')
		log_warn(&v.cli.log, "%s; going on without the cache",
		         err.message);
	http_config_defaults(&hc);
	hc.jobs = (int)v.jobs;
	hc.rate = v.cli.rate;
	hc.timeout_ms = v.cli.timeout * 1000;
	hc.retries = (int)v.cli.retries;
	hc.user_agent = "soarutils-vt-enrich/" SOAR_VERSION;
	hc.log = &v.cli.log;
	if ((http = http_new(&hc, &err)) == NULL) {
		log_error(&v.cli.log, "%s", err.message);
		return SOAR_EXIT_FATAL;
	}
	ec.key = v.key;
	ec.unordered = v.unordered;
	ec.read_ahead = v.read_ahead;
	/* Without --field or --when, keys() reads the line alone. */
	ec.concurrent_keys = v.jq == NULL;
	ec.ttl = v.ttl;
	ec.negative_ttl = v.neg_ttl;
	ec.line_buffered = v.cli.line_buffered;
	ec.reject_path = v.cli.reject_path;
	ec.max_line = v.cli.max_line;
	ec.log = &v.cli.log;
	enrich_run(&ec, &ops, &v, http, cache, &res);
	log_info(&v.cli.log,
	         "%zu events, %zu failed, %zu requests, %zu cache hits",
	         res.nevents, res.nfailed, res.nrequests, res.nhits);
	status = res.fatal     ? SOAR_EXIT_FATAL
	         : res.nfailed ? SOAR_EXIT_PARTIAL
	                       : SOAR_EXIT_OK;
	http_free(http);
	cache_close(cache);
	secret_free(v.apikey);
	free(v.base);
	buf_free(&v.url);
	jqx_free(v.jq);
	jqpath_free(v.paths);
	cli_free(&v.cli);
	return status;
}
