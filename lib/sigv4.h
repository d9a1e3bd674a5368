/*
 * sigv4.h: AWS Signature Version 4 for requests sent with lib/http.
 *
 * The signer sees the request exactly as it will go on the wire (method,
 * URL, the headers the tool sets, body) and returns the headers to add:
 * X-Amz-Date, X-Amz-Content-Sha256 when asked for, X-Amz-Security-Token
 * when there is a session token, and Authorization.  It signs host (from
 * the URL, with a port that is not the scheme's default), the headers
 * given, x-amz-date and the token; never hop-by-hop headers (Connection,
 * Keep-Alive, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
 * Transfer-Encoding, Upgrade), User-Agent, Expect or X-Amzn-Trace-Id,
 * which curl or a proxy may change.  A Host, X-Amz-Date or Authorization
 * header given is ignored, and so is a given X-Amz-Security-Token (or
 * X-Amz-Content-Sha256) when the signer adds its own: the caller sends the
 * returned headers instead.  The clock is passed in, so tests sign at the
 * suite's fixed time.  HMAC and SHA-256 come from OpenSSL.
 *
 * The canonical URI is the URL's path URI-encoded (A-Za-z0-9-_.~ and '/'
 * kept, every other byte %XX).  Every service but S3 expects the path as
 * sent to be encoded once more, so with keep_path 0 a '%' in the URL
 * becomes %25 ("/a%3Ab" is signed as "/a%253Ab"), after "." and ".."
 * segments and repeated slashes were removed.  S3 (keep_path 1) signs the
 * path as sent, unnormalised and encoded once: an escape in the URL is
 * kept (upper-cased) and raw bytes are encoded.  Query names and values
 * are decoded and encoded again, so a URL may carry them either way; '+'
 * is a literal plus, not a space.
 *
 * Both copies of the AWS test suite in ../shared/corpus/sigv4 pass in full
 * (tests/unit/test_sigv4.c); no case is unsupported.
 */
#ifndef SOAR_SIGV4_H
#define SOAR_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "error.h"
#include "http.h"

struct sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *token; /* session token, or NULL */
};

struct sigv4_request {
	const char *method; /* "GET", "POST", ... */
	const char *url;    /* scheme://host[:port]/path[?query] */
	const struct http_header *headers; /* headers the request carries */
	size_t nheaders;
	const char *body; /* NULL for none */
	size_t body_len;
	const char *region;  /* e.g. "us-east-1" */
	const char *service; /* signing name, e.g. "securityhub" */
	time_t now;          /* signing time (UTC seconds) */
	int keep_path;       /* 1: the path is signed as sent (S3); 0: it
	                      * is normalised ("." and ".." segments, repeated
	                      * slashes) and encoded again, as every other
	                      * service expects */
	int sign_body;       /* 1: add and sign X-Amz-Content-Sha256, the
	                      * payload hash (S3 requires it) */
	int token_unsigned;  /* 1: the session token is added after signing,
	                      * not signed (the few services that want it so);
	                      * 0: it is signed */
};

/* The signing result: headers to add to the request, in this order. */
struct sigv4_signed {
	struct http_header headers[4]; /* X-Amz-Date,
	                                * [X-Amz-Content-Sha256,]
	                                * [X-Amz-Security-Token,]
	                                * Authorization */
	size_t nheaders;
	char amz_date[17];        /* YYYYMMDDTHHMMSSZ */
	char content_sha256[65];  /* hex payload hash, with sign_body */
	struct buf authorization; /* storage for the Authorization value */
};

/* Signs r with c.  Fills *out (initialise it with sigv4_signed_init and
 * release it with sigv4_signed_free, which accepts a freed one; it may be
 * reused).  The header values point into *out, except the token's, which
 * borrows c->token.  Returns 0, or -1 with err set: code "input" for a
 * malformed URL or missing field, "nomem" for ENOMEM, "crypto" when
 * OpenSSL fails. */
void sigv4_signed_init(struct sigv4_signed *out);
void sigv4_signed_free(struct sigv4_signed *out);
int sigv4_sign(const struct sigv4_request *r, const struct sigv4_creds *c,
               struct sigv4_signed *out, struct soar_error *err);

/* The intermediate texts of the algorithm, for tests and -vvv traces:
 * the canonical request and the string to sign (NUL-terminated in the
 * bufs, which are cleared first).  Returns 0 or -1 as sigv4_sign. */
int sigv4_canonical_request(const struct sigv4_request *r,
                            const struct sigv4_creds *c, struct buf *creq,
                            struct soar_error *err);
int sigv4_string_to_sign(const struct sigv4_request *r,
                         const struct sigv4_creds *c, struct buf *sts,
                         struct soar_error *err);

/* Presigns r as a URL valid for expires seconds (1 to 604800): the URL
 * without its fragment, followed in its query by X-Amz-Algorithm,
 * X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Expires,
 * [X-Amz-Security-Token,] X-Amz-Signature.  Host and the headers given
 * are signed (the client must send them); the payload hash is that of the
 * body, as in sigv4_sign, and sign_body is ignored.  Writes the URL to out
 * (cleared first).  Returns 0 or -1 as sigv4_sign, with code "input" for
 * expires out of range too. */
int sigv4_presign(const struct sigv4_request *r, const struct sigv4_creds *c,
                  long expires, struct buf *out, struct soar_error *err);

/* The canonical request and string to sign behind sigv4_presign (either
 * buf may be NULL; both are cleared first).  Returns 0 or -1 as
 * sigv4_presign. */
int sigv4_presign_texts(const struct sigv4_request *r,
                        const struct sigv4_creds *c, long expires,
                        struct buf *creq, struct buf *sts,
                        struct soar_error *err);

#endif
