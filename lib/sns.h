/*
 * sns.h: checking that a message AWS SNS delivered over HTTPS is authentic.
 *
 * A receiver hands each POST body to sns_parse, then to sns_verify, and acts
 * on the message only when both return 0.  sns_parse checks the shape: one
 * JSON object, the fields of the message's Type all present as strings, no
 * field given twice (also not under both spellings, SigningCertURL and the
 * Lambda-style SigningCertUrl), SignatureVersion "1" or "2", a Timestamp in
 * SNS's ISO 8601 form.  sns_verify checks, in this order and so before any
 * network access: every URL in the message (sns_url_check), the Signature's
 * base64; then it takes the signing certificate from the cache or fetches
 * it (sns_certs_fetch) and checks the RSA signature over the string to sign
 * (sns_string_to_sign).  Freshness is the caller's: it compares
 * m->timestamp_ms with its own clock.
 *
 * A certificate is accepted (sns_certs_add_pem) when it parses, is valid at
 * the caller's `now`, names sns.amazonaws.com as its subject CN or in a DNS
 * subjectAltName (exactly, no wildcard), carries an RSA key of at least
 * 2048 bits and chains to the trust store: the CA file given, or OpenSSL's
 * default paths.  Any certificate of the store is an anchor, so a file
 * holding Amazon's intermediate CA is enough; certificates after the first
 * in a fetched PEM are used as untrusted intermediates.  Accepted keys are
 * cached per URL, at most SNS_CACHE_SIZE of them; the oldest goes first.
 *
 * Failures fill struct soar_error with a short reason fit for a log line
 * and a 4xx body (it never holds the signature or the token), and a code
 * the receiver maps to its answer:
 *   "parse"     the body is not an SNS message (400);
 *   "url"       a URL in the message is not allowed (400 or 403);
 *   "signature" the Signature is not base64 or does not verify (403);
 *   "cert"      the signing certificate is not acceptable (403);
 *   "fetch"     the certificate could not be fetched: timeout, TLS, HTTP
 *               status (in err->status), too large (the receiver may answer
 *               5xx so that SNS delivers again later);
 *   "config"    the CA file cannot be loaded (sns_certs_new);
 *   "nomem", "crypto" local faults (500).
 *
 * Nothing here is safe to share between threads without a lock.
 */
#ifndef SOAR_SNS_H
#define SOAR_SNS_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "error.h"
#include "http.h"

#define SNS_MAX_BODY   (1024 * 1024) /* a 256 KiB message, escaped */
#define SNS_MAX_URL    2048          /* longest URL accepted */
#define SNS_MAX_CERT   (64 * 1024)   /* largest certificate PEM accepted */
#define SNS_CACHE_SIZE 16            /* certificates cached */
#define SNS_CERT_NAME  "sns.amazonaws.com"

enum sns_type {
	SNS_NOTIFICATION = 1,
	SNS_SUBSCRIPTION_CONFIRMATION,
	SNS_UNSUBSCRIBE_CONFIRMATION,
};

/* A parsed message.  Every string is owned, NUL-terminated and JSON-decoded
 * (so "\n" in the body is a newline here).  A field the body lacks is NULL.
 * Only signed fields are kept: Subject (absent, or JSON null, is NULL;
 * present and empty is "") only in a Notification, SubscribeURL and Token
 * only in the confirmations.  UnsubscribeURL is never signed by SNS: it is
 * checked as a URL but not authenticated. */
struct sns_msg {
	enum sns_type type;
	char *type_name; /* "Notification", ..., as sent */
	char *message_id;
	char *topic_arn;
	char *subject;
	char *message;
	char *timestamp; /* as sent, e.g. "2012-04-26T20:45:04.751Z" */
	char *signature_version;
	char *signature; /* base64, as sent */
	char *signing_cert_url;
	char *subscribe_url;
	char *unsubscribe_url;
	char *token;
	int version;            /* 1: RSA-SHA1, 2: RSA-SHA256 */
	long long timestamp_ms; /* Timestamp as epoch milliseconds */
};

/* Parses body[0..len) into *m (overwritten; release it with sns_msg_free).
 * Members other than the message's fields are ignored, whatever their
 * type.  Returns 0, or -1 with *m empty and err set: "parse" (not one JSON
 * object, larger than SNS_MAX_BODY, a field not a string or holding
 * U+0000, a field given twice, unknown Type, a field of the type missing,
 * SignatureVersion other than "1" or "2", Timestamp malformed) or
 * "nomem". */
int sns_parse(const char *body, size_t len, struct sns_msg *m,
              struct soar_error *err);

/* Releases the strings of m and empties it; accepts an empty or freed
 * message. */
void sns_msg_free(struct sns_msg *m);

/* Writes the text SNS signs for m to out (cleared first): "Key\nValue\n"
 * for Message, MessageId, Subject (when present), Timestamp, TopicArn, Type
 * in a Notification, and for Message, MessageId, SubscribeURL, Timestamp,
 * Token, TopicArn, Type in a confirmation.  Returns 0, or -1 with err set:
 * "parse" (a field of the type is missing, unknown type) or "nomem". */
int sns_string_to_sign(const struct sns_msg *m, struct buf *out,
                       struct soar_error *err);

/* Parses an SNS Timestamp, "YYYY-MM-DDTHH:MM:SS[.f]Z" with 1 to 9 digits
 * of fraction, years 1970 to 9999, into epoch milliseconds (the fraction
 * cut to milliseconds).  Returns 0, or -1 when s is not of that form or
 * names no real time (month 13, February 30, second 60). */
int sns_timestamp(const char *s, long long *ms);

/* Checks a URL that a message names, before anything is fetched from it:
 * scheme "https" exactly; no user info; a host matching
 * ^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$ with no port or 443, or,
 * when override ("HOST[:PORT]", for tests) is not NULL, host[:port] equal
 * to override byte for byte instead; a path without "." or ".." segments
 * (percent-encoded ones too), escapes only of the form %XX and none of
 * '/', '\', '%' or control characters; no backslash, space, control or
 * non-ASCII byte anywhere; no fragment; at most SNS_MAX_URL bytes.  With
 * want_pem (SigningCertURL) the path also ends in ".pem" and there is no
 * query.  Returns 0, or -1 with err set ("url"), its message naming the
 * rule broken and the host, e.g. "URL host not allowed: evil.example". */
int sns_url_check(const char *url, const char *override, int want_pem,
                  struct soar_error *err);

/* Whether an issuer certificate may be fetched from url, the caIssuers
 * URL of a signing certificate whose issuer the trust store lacks: http or
 * https on a host under amazontrust.com (where AWS's certificates point),
 * or, with override, https on that host[:port].  What is fetched is
 * trusted only if it chains to the store. */
int sns_issuer_url_ok(const char *override, const char *url);

struct sns_certs;

/* Returns an empty certificate cache whose trust store is cafile (PEM, one
 * or more certificates) or, when cafile is NULL, OpenSSL's default paths.
 * override is as in sns_url_check (copied; NULL for AWS hosts).  Returns
 * NULL with err set: "config" (cafile cannot be read or holds no
 * certificate) or "nomem". */
struct sns_certs *sns_certs_new(const char *cafile, const char *override,
                                struct soar_error *err);

/* Releases c; accepts NULL. */
void sns_certs_free(struct sns_certs *c);

/* Checks the certificate pem[0..len) (borrowed) fetched from url, as
 * described at the top, at time now, and caches its key under url,
 * replacing an entry for url and evicting the oldest when the cache is
 * full.  url is checked first (sns_url_check with want_pem).  Returns 0,
 * or -1 with err set: "url"; "cert" ("certificate expired", "certificate
 * not yet valid", "certificate is not for sns.amazonaws.com", "certificate
 * does not chain to a trusted CA: <reason>", not PEM, not RSA, larger than
 * SNS_MAX_CERT); "nomem". */
int sns_certs_add_pem(struct sns_certs *c, const char *url, const char *pem,
                      size_t len, time_t now, struct soar_error *err);

/* Checks url (sns_url_check with want_pem), fetches it with a GET through
 * h, and adds the answer with sns_certs_add_pem.  Runs http_poll(h) until
 * the request is finished, so the callbacks of other requests queued on h
 * run meanwhile; h's timeouts and retries bound the wait (SNS waits 15 s
 * for the receiver's answer).  The answer must be HTTP 200 with at most
 * SNS_MAX_CERT bytes.  Returns 0, or -1 with err set as
 * sns_certs_add_pem, or "fetch" (err->status and err->attempts as the
 * client saw them). */
int sns_certs_fetch(struct sns_certs *c, struct http *h, const char *url,
                    time_t now, struct soar_error *err);

/* Returns 1 when a key for url is cached, else 0. */
int sns_certs_cached(const struct sns_certs *c, const char *url);

/* Verifies m (from sns_parse) at time now: checks SigningCertURL,
 * SubscribeURL and UnsubscribeURL (sns_url_check, with c's override), and
 * the Signature's base64 (strict: padded, no whitespace, canonical); then
 * takes the key cached for SigningCertURL, or, when none is cached or the
 * cached certificate is no longer valid at now, fetches it with
 * sns_certs_fetch through h (h NULL: the cache only, "fetch" when the key
 * is missing); then checks the RSA PKCS#1 v1.5 signature, SHA1 for
 * version 1 and SHA256 for version 2, over sns_string_to_sign.  Returns 0
 * when m is authentic, or -1 with err set ("signature does not verify",
 * or as described at the top). */
int sns_verify(struct sns_certs *c, struct http *h, const struct sns_msg *m,
               time_t now, struct soar_error *err);

#endif
