/*
 * es.h: what the Elastic tools share: the Kibana and Elasticsearch
 * endpoints, their authentication and headers, their error envelopes, and
 * the alert summary of a detection alert.
 *
 * ES_URL is Kibana's base URL (the detection engine routes), or the
 * Elasticsearch URL when a tool is told to talk to Elasticsearch directly.
 * Credentials: ES_API_KEY (the encoded API key, sent as
 * "Authorization: ApiKey ..."), else ES_USER and ES_PASSWORD (Basic); each
 * also from NAME_FILE or the config file (lib/secret).  A Kibana space
 * (--space) prefixes Kibana paths with /s/SPACE; "default" is no prefix.
 */
#ifndef SOAR_ES_H
#define SOAR_ES_H

#include <stddef.h>

#include <jv.h>

#include "buf.h"
#include "error.h"
#include "http.h"

#define ES_API_VERSION "2023-10-31" /* Kibana's public routes */

struct es {
	char *url;        /* ES_URL, without a trailing '/' */
	char *space;      /* Kibana space; NULL for the default space */
	char *auth;       /* the Authorization header line (a secret) */
	char *public_url; /* KIBANA_PUBLIC_URL for alert links, or NULL */
	struct http_header hdr[5];
	size_t nhdr;
};

/* Reads ES_URL, the credentials and KIBANA_PUBLIC_URL from envp (NULL:
 * the process's environment).  space may be NULL.  Returns 0, or -1 with
 * err set: code "usage" (ES_URL unset or not http(s), no credentials or
 * credentials holding a control character, a bad space name) or "config"
 * (a credential file that cannot be read);
 * messages name variables, never values. */
int es_init(struct es *e, const char *space, const char *const *envp,
            struct soar_error *err);

/* Releases e (the credentials wiped). */
void es_free(struct es *e);

/* Writes to out (cleared first) the URL of a Kibana route: ES_URL, the
 * space prefix, then path ("/api/detection_engine/..."). */
int es_kibana_url(const struct es *e, const char *path, struct buf *out);

/* The same for a space named here (NULL, "" or "default": none), for
 * tools whose events come from several spaces. */
int es_kibana_url_in(const struct es *e, const char *space, const char *path,
                     struct buf *out);

/* Whether s is a Kibana space id: 1 to 100 of a-z, 0-9, '_' and '-'. */
int es_space_ok(const char *s);

/* Writes to out (cleared first) ES_URL followed by path. */
int es_url(const struct es *e, const char *path, struct buf *out);

/* The headers of a request with a JSON body (or of an Elasticsearch
 * request with kibana 0): Authorization, Content-Type, and for Kibana
 * kbn-xsrf and elastic-api-version.  Borrowed from e; *n is set. */
const struct http_header *es_headers(struct es *e, int kibana,
                                     const char *content_type, size_t *n);

/* Turns a failed answer into err: the message of Kibana's
 * {"statusCode","error","message"}, the security solution's
 * {"status_code","message"} or Elasticsearch's {"error":{"type",
 * "reason"},"status"}, prefixed with what ("signals search").  herr is
 * lib/http's error (transport failures), NULL when an answer came.  The
 * code is "auth" for 401/403, "http" otherwise, or herr's code. */
void es_error(const char *what, const struct http_response *resp,
              const struct soar_error *herr, struct soar_error *err);

/* Looks up a dotted field of an alert _source, flat ("kibana.alert.uuid"
 * as one key) or nested ({"kibana":{"alert":{...}}}) or any mix of the
 * two.  Returns the value (a copy), or jv_invalid() when absent. */
jv es_field(jv source, const char *path);

/* The alert summary (DESIGN.md §2) of an alert: id (its _id), source
 * "elastic", title (the rule name), severity, score (risk score), status
 * (open/acknowledged/closed, "in-progress" as acknowledged), created,
 * and url (KIBANA_PUBLIC_URL's alert page) when e has a public URL.
 * source is borrowed. */
jv es_alert(const struct es *e, jv source, const char *id);

#endif
