/* es.c: Kibana and Elasticsearch endpoints, credentials and envelopes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "env.h"
#include "es.h"
#include "secret.h"

static char *
trimmed_url(const char *v)
{
	size_t n = strlen(v);

	while (n > 0 && v[n - 1] == '/')
		n--;
	return strndup(v, n);
}

static int
http_url(const char *v)
{
	return strncasecmp(v, "http://", 7) == 0 ||
	       strncasecmp(v, "https://", 8) == 0;
}

/* Whether an http(s) URL has user info (user:password@) before its host. */
static int
has_userinfo(const char *url)
{
	const char *host = strstr(url, "://"), *end;

	if (host == NULL)
		return 0;
	host += 3;
	end = host + strcspn(host, "/?#");
	return memchr(host, '@', (size_t)(end - host)) != NULL;
}

int
es_space_ok(const char *s)
{
	if (*s == '\0' || strlen(s) > 100)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* Base64 of len bytes of p, NUL-terminated, into a new string. */
static char *
base64(const char *p, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1);

	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)p,
		                (int)len);
	return out;
}

/* The Authorization header line from the credentials in envp. */
static int
auth_header(struct es *e, const char *const *envp, struct soar_error *err)
{
	char *key = NULL, *user = NULL, *pass = NULL;
	struct buf b = BUF_INIT;
	int rc = -1;

	if (secret_get("ES_API_KEY", envp, &key, err) < 0)
		return -1;
	if (key != NULL) {
		if (buf_printf(&b, "Authorization: ApiKey %s", key) < 0)
			goto nomem;
	} else {
		if (secret_get("ES_USER", envp, &user, err) < 0 ||
		    secret_get("ES_PASSWORD", envp, &pass, err) < 0)
			goto out;
		if (user == NULL || pass == NULL) {
			soar_error_set(
			        err, "usage",
			        "no Elastic credentials: set ES_API_KEY, "
			        "or ES_USER and ES_PASSWORD");
			goto out;
		}
		if (buf_printf(&b, "%s:%s", user, pass) < 0)
			goto nomem;
		char *enc = base64(b.data, b.len);

		if (enc == NULL)
			goto nomem;
		buf_clear(&b);
		if (buf_printf(&b, "Authorization: Basic %s", enc) < 0) {
			secret_free(enc);
			goto nomem;
		}
		secret_free(enc);
	}
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20 ||
		    (unsigned char)b.data[i] == 0x7f) {
			soar_error_set(err, "usage",
			               "the Elastic credentials hold a control "
			               "character (a stray newline?)");
			goto out;
		}
	if ((e->auth = strdup(b.data)) == NULL)
		goto nomem;
	rc = 0;
	goto out;
nomem:
	soar_error_set(err, "nomem", "out of memory");
out:
	buf_wipe(&b);
	secret_free(key);
	secret_free(user);
	secret_free(pass);
	return rc;
}

int
es_init(struct es *e, const char *space, const char *const *envp,
        struct soar_error *err)
{
	const char *url = env_get(envp, "ES_URL");
	const char *pub = env_get(envp, "KIBANA_PUBLIC_URL");

	memset(e, 0, sizeof(*e));
	if (url == NULL || *url == '\0') {
		soar_error_set(err, "usage",
		               "ES_URL is not set: the Kibana or "
		               "Elasticsearch base URL");
		return -1;
	}
	if (!http_url(url)) {
		soar_error_set(err, "usage",
		               "ES_URL must start with http:// or https://");
		return -1;
	}
	/* A password in the URL would travel into every log line and
	 * error that names the URL. */
	if (has_userinfo(url) || (pub != NULL && has_userinfo(pub))) {
		soar_error_set(err, "usage",
		               "%s holds credentials: put them in ES_API_KEY, "
		               "or ES_USER and ES_PASSWORD",
		               has_userinfo(url) ? "ES_URL"
		                                 : "KIBANA_PUBLIC_URL");
		return -1;
	}
	if (pub != NULL && *pub != '\0' && !http_url(pub)) {
		soar_error_set(err, "usage",
		               "KIBANA_PUBLIC_URL must start "
		               "with http:// or https://");
		return -1;
	}
	if (space != NULL && !es_space_ok(space)) {
		soar_error_set(err, "usage",
		               "--space: a Kibana space id (a-z, 0-9, _ and "
		               "-), got '%s'",
		               space);
		return -1;
	}
	if ((e->url = trimmed_url(url)) == NULL ||
	    (space != NULL && strcmp(space, "default") != 0 &&
	     (e->space = strdup(space)) == NULL) ||
	    (pub != NULL && *pub != '\0' &&
	     (e->public_url = trimmed_url(pub)) == NULL)) {
		soar_error_set(err, "nomem", "out of memory");
		es_free(e);
		return -1;
	}
	if (auth_header(e, envp, err) < 0) {
		/* lib/secret says "secret": to the tool, configuration. */
		if (strcmp(err->code, "secret") == 0)
			snprintf(err->code, sizeof(err->code), "config");
		es_free(e);
		return -1;
	}
	return 0;
}

void
es_free(struct es *e)
{
	free(e->url);
	free(e->space);
	free(e->public_url);
	secret_free(e->auth);
	memset(e, 0, sizeof(*e));
}

int
es_kibana_url(const struct es *e, const char *path, struct buf *out)
{
	return es_kibana_url_in(e, e->space, path, out);
}

int
es_kibana_url_in(const struct es *e, const char *space, const char *path,
                 struct buf *out)
{
	buf_clear(out);
	if (space != NULL && space[0] != '\0' && strcmp(space, "default") != 0)
		return buf_printf(out, "%s/s/%s%s", e->url, space, path);
	return buf_printf(out, "%s%s", e->url, path);
}

int
es_url(const struct es *e, const char *path, struct buf *out)
{
	buf_clear(out);
	return buf_printf(out, "%s%s", e->url, path);
}

const struct http_header *
es_headers(struct es *e, int kibana, const char *content_type, size_t *n)
{
	/* e->auth is "Authorization: value". */
	e->hdr[0] = (struct http_header){"Authorization",
	                                 e->auth + strlen("Authorization: ")};
	e->hdr[1] = (struct http_header){"Content-Type", content_type};
	e->nhdr = 2;
	if (kibana) {
		e->hdr[e->nhdr++] = (struct http_header){"kbn-xsrf", "true"};
		e->hdr[e->nhdr++] = (struct http_header){"elastic-api-version",
		                                         ES_API_VERSION};
	}
	*n = e->nhdr;
	return e->hdr;
}

static const char *
str_at(jv v, const char *k1, const char *k2)
{
	jv x;

	if (jv_get_kind(v) != JV_KIND_OBJECT)
		return NULL;
	x = jv_object_get(jv_copy(v), jv_string(k1));
	if (k2 != NULL) {
		if (jv_get_kind(x) != JV_KIND_OBJECT) {
			jv_free(x);
			return NULL;
		}
		x = jv_object_get(x, jv_string(k2));
	}
	if (jv_get_kind(x) != JV_KIND_STRING) {
		jv_free(x);
		return NULL;
	}
	/* Borrowed from v, which holds the string. */
	const char *s = jv_string_value(x);

	jv_free(x);
	return s;
}

void
es_error(const char *what, const struct http_response *resp,
         const struct soar_error *herr, struct soar_error *err)
{
	const char *msg = NULL, *type = NULL;
	jv body = jv_invalid();
	long st = resp != NULL ? resp->status : 0;

	if (resp != NULL && resp->body.len > 0 && resp->body.len < 1 << 20)
		body = jv_parse_sized(resp->body.data, (int)resp->body.len);
	if (jv_get_kind(body) == JV_KIND_OBJECT) {
		/* Elasticsearch: {"error": {"type", "reason"}} or a string;
		 * Kibana: {"statusCode", "error", "message"} or
		 * {"status_code", "message"}. */
		type = str_at(body, "error", "type");
		msg = str_at(body, "error", "reason");
		if (msg == NULL && type == NULL)
			msg = str_at(body, "message", NULL);
		if (msg == NULL && type == NULL)
			msg = str_at(body, "error", NULL);
	}
	if (st == 0 && herr != NULL)
		*err = *herr;
	else if (msg != NULL || type != NULL)
		soar_error_set(err, st == 401 || st == 403 ? "auth" : "http",
		               "%s: HTTP %ld: %s%s%s", what, st,
		               type ? type : "", type && msg ? ": " : "",
		               msg ? msg : "");
	else
		soar_error_set(err, st == 401 || st == 403 ? "auth" : "http",
		               "%s: HTTP %ld%s", what, st,
		               jv_is_valid(body) || resp == NULL ||
		                               resp->body.len == 0
		                       ? ""
		                       : " (the answer is not JSON)");
	err->status = st;
	if (resp != NULL)
		err->attempts = resp->attempts;
	jv_free(body);
}

jv
es_field(jv source, const char *path)
{
	const char *dot;
	jv v;

	if (jv_get_kind(source) != JV_KIND_OBJECT)
		return jv_invalid();
	/* The longest flat key first: "kibana.alert.rule.name" may be one
	 * key, or "kibana.alert" then "rule.name", and so on. */
	v = jv_object_get(jv_copy(source), jv_string(path));
	if (jv_is_valid(v))
		return v;
	for (dot = strrchr(path, '.'); dot != NULL;) {
		jv head =
		        jv_object_get(jv_copy(source),
		                      jv_string_sized(path, (int)(dot - path)));

		if (jv_get_kind(head) == JV_KIND_OBJECT) {
			v = es_field(head, dot + 1);
			jv_free(head);
			if (jv_is_valid(v))
				return v;
		} else
			jv_free(head);
		/* The previous dot, if any. */
		const char *p = dot;

		dot = NULL;
		while (p > path) {
			p--;
			if (*p == '.') {
				dot = p;
				break;
			}
		}
	}
	return jv_invalid();
}

/* Sets obj[key] to the first of the fields path1, path2 (may be NULL)
 * holding a value of the kind wanted. */
static jv
set_first(jv obj, const char *key, jv source, jv_kind want, const char *path1,
          const char *path2)
{
	const char *paths[2] = {path1, path2};

	for (int i = 0; i < 2 && paths[i] != NULL; i++) {
		jv v = es_field(source, paths[i]);

		if (jv_get_kind(v) == want)
			return jv_object_set(obj, jv_string(key), v);
		jv_free(v);
	}
	return obj;
}

jv
es_alert(const struct es *e, jv source, const char *id)
{
	jv a = jv_object(), v;

	a = jv_object_set(a, jv_string("id"), jv_string(id));
	a = jv_object_set(a, jv_string("source"), jv_string("elastic"));
	a = set_first(a, "title", source, JV_KIND_STRING,
	              "kibana.alert.rule.name", NULL);
	a = set_first(a, "severity", source, JV_KIND_STRING,
	              "kibana.alert.severity", "kibana.alert.rule.severity");
	a = set_first(a, "score", source, JV_KIND_NUMBER,
	              "kibana.alert.risk_score",
	              "kibana.alert.rule.risk_score");
	v = es_field(source, "kibana.alert.workflow_status");
	if (jv_get_kind(v) == JV_KIND_STRING) {
		const char *s = jv_string_value(v);

		a = jv_object_set(a, jv_string("status"),
		                  jv_string(strcmp(s, "in-progress") == 0
		                                    ? "acknowledged"
		                                    : s));
	}
	jv_free(v);
	a = set_first(a, "created", source, JV_KIND_STRING, "@timestamp", NULL);
	if (e != NULL && e->public_url != NULL) {
		struct buf u = BUF_INIT;

		if (buf_printf(&u, "%s%s%s/app/security/alerts/redirect/%s",
		               e->public_url, e->space ? "/s/" : "",
		               e->space ? e->space : "", id) == 0)
			a = jv_object_set(a, jv_string("url"),
			                  jv_string(u.data));
		buf_free(&u);
	}
	return a;
}
