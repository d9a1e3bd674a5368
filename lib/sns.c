/* sns.c: parsing and verifying the messages AWS SNS delivers over HTTPS. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "error.h"
#include "http.h"
#include "json.h"
#include "sns.h"

#define MAX_SIG_BYTES 1024 /* room for RSA signatures up to 4096 bits */
#define MAX_EXTRA     8    /* intermediates taken from a fetched PEM */
#define MAX_ISSUERS   8    /* issuers fetched from AIA URLs, kept */
#define MIN_RSA_BITS  2048
#define SHOW_MAX      80 /* bytes of untrusted text quoted in a message */

/* The message fields, in the order a missing one is reported. */
enum field {
	F_TYPE,
	F_MESSAGE_ID,
	F_TOPIC_ARN,
	F_SUBJECT,
	F_MESSAGE,
	F_TIMESTAMP,
	F_SIGNATURE_VERSION,
	F_SIGNATURE,
	F_SIGNING_CERT_URL,
	F_SUBSCRIBE_URL,
	F_UNSUBSCRIBE_URL,
	F_TOKEN,
	F_COUNT
};

/* Keys as they appear in a body; Lambda spells the URLs "...Url". */
static const struct {
	const char *key;
	enum field f;
} keys[] = {
        {"Type", F_TYPE},
        {"MessageId", F_MESSAGE_ID},
        {"TopicArn", F_TOPIC_ARN},
        {"Subject", F_SUBJECT},
        {"Message", F_MESSAGE},
        {"Timestamp", F_TIMESTAMP},
        {"SignatureVersion", F_SIGNATURE_VERSION},
        {"Signature", F_SIGNATURE},
        {"SigningCertURL", F_SIGNING_CERT_URL},
        {"SigningCertUrl", F_SIGNING_CERT_URL},
        {"SubscribeURL", F_SUBSCRIBE_URL},
        {"SubscribeUrl", F_SUBSCRIBE_URL},
        {"UnsubscribeURL", F_UNSUBSCRIBE_URL},
        {"UnsubscribeUrl", F_UNSUBSCRIBE_URL},
        {"Token", F_TOKEN},
};

/* Canonical names, used in messages and in the string to sign. */
static const char *const field_names[F_COUNT] = {
        "Type",           "MessageId",    "TopicArn",         "Subject",
        "Message",        "Timestamp",    "SignatureVersion", "Signature",
        "SigningCertURL", "SubscribeURL", "UnsubscribeURL",   "Token",
};

/* The signed fields of each type, in byte order of their names. */
static const enum field notification_fields[] = {
        F_MESSAGE, F_MESSAGE_ID, F_SUBJECT, F_TIMESTAMP, F_TOPIC_ARN, F_TYPE,
};
static const enum field confirmation_fields[] = {
        F_MESSAGE, F_MESSAGE_ID, F_SUBSCRIBE_URL, F_TIMESTAMP,
        F_TOKEN,   F_TOPIC_ARN,  F_TYPE,
};

struct entry {
	char *url;
	X509 *cert; /* the accepted signing certificate */
};

struct sns_certs {
	X509_STORE *store;
	char *override; /* "HOST[:PORT]" replacing the AWS host rule */
	STACK_OF(X509) * issuers; /* fetched from AIA caIssuers URLs */
	int last_error;           /* the last chain check's X509_V_ERR_* */
	struct entry cache[SNS_CACHE_SIZE]; /* oldest first */
	size_t ncache;
};

static int
fail_nomem(struct soar_error *err)
{
	soar_error_set(err, "nomem", "sns: out of memory");
	return -1;
}

/* Copies untrusted text s[0..n) into out (SHOW_MAX + 4 bytes) for a
 * message: printable ASCII kept, other bytes shown as '?', long text cut
 * with "...", so a log line never carries control characters. */
static const char *
show(char *out, const char *s, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n && k < SHOW_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		out[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (i < n) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
	return out;
}

static char **
slot(struct sns_msg *m, enum field f)
{
	switch (f) {
	case F_TYPE:
		return &m->type_name;
	case F_MESSAGE_ID:
		return &m->message_id;
	case F_TOPIC_ARN:
		return &m->topic_arn;
	case F_SUBJECT:
		return &m->subject;
	case F_MESSAGE:
		return &m->message;
	case F_TIMESTAMP:
		return &m->timestamp;
	case F_SIGNATURE_VERSION:
		return &m->signature_version;
	case F_SIGNATURE:
		return &m->signature;
	case F_SIGNING_CERT_URL:
		return &m->signing_cert_url;
	case F_SUBSCRIBE_URL:
		return &m->subscribe_url;
	case F_UNSUBSCRIBE_URL:
		return &m->unsubscribe_url;
	case F_TOKEN:
	default:
		return &m->token;
	}
}

static const char *
field_value(const struct sns_msg *m, enum field f)
{
	return *slot((struct sns_msg *)m, f);
}

void
sns_msg_free(struct sns_msg *m)
{
	int f;

	if (m == NULL)
		return;
	for (f = 0; f < F_COUNT; f++)
		free(*slot(m, (enum field)f));
	memset(m, 0, sizeof(*m));
}

/* Stores the member value v[0..n) (checked JSON) as field f.  Returns 0,
 * or -1 with err set. */
static int
take_field(struct sns_msg *m, enum field f, const char *v, size_t n,
           struct soar_error *err)
{
	char *s;

	if (f == F_SUBJECT && n == 4 && memcmp(v, "null", 4) == 0)
		return 0; /* Lambda's way of saying "no subject" */
	if (n < 2 || v[0] != '"') {
		soar_error_set(err, "parse", "%s is not a string",
		               field_names[f]);
		return -1;
	}
	/* Decoding never makes a string longer than its literal. */
	if ((s = malloc(n)) == NULL)
		return fail_nomem(err);
	if (json_string_copy(v, n, s, n) < 0) {
		free(s);
		soar_error_set(err, "parse", "%s holds a NUL character",
		               field_names[f]);
		return -1;
	}
	*slot(m, f) = s;
	return 0;
}

/* Reads the members of the checked object body into m. */
static int
read_members(const char *body, size_t len, struct sns_msg *m,
             struct soar_error *err)
{
	int seen[F_COUNT] = {0};
	struct json_member jm;
	struct json_iter it;
	size_t k;

	json_iter_init(&it, body, len, json_skip_ws(body, len, 0));
	while (json_iter_next(&it, &jm)) {
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (json_key_equals(&jm, keys[k].key,
			                    strlen(keys[k].key)))
				break;
		if (k == sizeof(keys) / sizeof(keys[0]))
			continue;
		if (seen[keys[k].f]) {
			soar_error_set(err, "parse", "%s given twice",
			               field_names[keys[k].f]);
			return -1;
		}
		seen[keys[k].f] = 1;
		if (take_field(m, keys[k].f, jm.val, jm.vallen, err) < 0)
			return -1;
	}
	return 0;
}

/* Frees field f: it is not signed in messages of this type. */
static void
drop(struct sns_msg *m, enum field f)
{
	free(*slot(m, f));
	*slot(m, f) = NULL;
}

/* Sets m->type from m->type_name and drops the unsigned fields. */
static int
classify(struct sns_msg *m, struct soar_error *err)
{
	char shown[SHOW_MAX + 4];

	if (m->type_name == NULL) {
		soar_error_set(err, "parse", "missing Type");
		return -1;
	}
	if (strcmp(m->type_name, "Notification") == 0) {
		m->type = SNS_NOTIFICATION;
		drop(m, F_SUBSCRIBE_URL);
		drop(m, F_TOKEN);
	} else if (strcmp(m->type_name, "SubscriptionConfirmation") == 0 ||
	           strcmp(m->type_name, "UnsubscribeConfirmation") == 0) {
		m->type = m->type_name[0] == 'S' ? SNS_SUBSCRIPTION_CONFIRMATION
		                                 : SNS_UNSUBSCRIBE_CONFIRMATION;
		drop(m, F_SUBJECT);
	} else {
		soar_error_set(err, "parse", "unknown Type: %s",
		               show(shown, m->type_name, strlen(m->type_name)));
		return -1;
	}
	return 0;
}

/* Checks that the fields the type needs are present. */
static int
check_required(const struct sns_msg *m, struct soar_error *err)
{
	static const enum field common[] = {
	        F_MESSAGE_ID,       F_TOPIC_ARN,         F_MESSAGE,
	        F_TIMESTAMP,        F_SIGNATURE_VERSION, F_SIGNATURE,
	        F_SIGNING_CERT_URL,
	};
	static const enum field confirmation[] = {F_TOKEN, F_SUBSCRIBE_URL};
	size_t i;

	for (i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		if (field_value(m, common[i]) == NULL)
			goto missing;
	if (m->type == SNS_NOTIFICATION)
		return 0;
	for (i = 0; i < sizeof(confirmation) / sizeof(confirmation[0]); i++)
		if (field_value(m, confirmation[i]) == NULL) {
			soar_error_set(err, "parse", "missing %s in %s",
			               field_names[confirmation[i]],
			               m->type_name);
			return -1;
		}
	return 0;
missing:
	soar_error_set(err, "parse", "missing %s", field_names[common[i]]);
	return -1;
}

int
sns_parse(const char *body, size_t len, struct sns_msg *m,
          struct soar_error *err)
{
	char shown[SHOW_MAX + 4];
	struct json_err jerr;

	memset(m, 0, sizeof(*m));
	if (len > SNS_MAX_BODY) {
		soar_error_set(err, "parse", "body larger than %d bytes",
		               SNS_MAX_BODY);
		return -1;
	}
	if (json_check_object(body, len, &jerr) < 0) {
		soar_error_set(err, "parse",
		               "body is not a JSON object: %s at byte %zu",
		               jerr.msg, jerr.off);
		return -1;
	}
	if (read_members(body, len, m, err) < 0 || classify(m, err) < 0 ||
	    check_required(m, err) < 0)
		goto fail;
	if (strcmp(m->signature_version, "1") == 0) {
		m->version = 1;
	} else if (strcmp(m->signature_version, "2") == 0) {
		m->version = 2;
	} else {
		soar_error_set(err, "parse",
		               "SignatureVersion not supported: %s",
		               show(shown, m->signature_version,
		                    strlen(m->signature_version)));
		goto fail;
	}
	if (sns_timestamp(m->timestamp, &m->timestamp_ms) < 0) {
		soar_error_set(err, "parse",
		               "Timestamp is not ISO 8601 UTC: %s",
		               show(shown, m->timestamp, strlen(m->timestamp)));
		goto fail;
	}
	return 0;
fail:
	sns_msg_free(m);
	return -1;
}

int
sns_string_to_sign(const struct sns_msg *m, struct buf *out,
                   struct soar_error *err)
{
	const enum field *fields;
	size_t n, i;

	buf_clear(out);
	if (m->type == SNS_NOTIFICATION) {
		fields = notification_fields;
		n = sizeof(notification_fields) /
		    sizeof(notification_fields[0]);
	} else if (m->type == SNS_SUBSCRIPTION_CONFIRMATION ||
	           m->type == SNS_UNSUBSCRIBE_CONFIRMATION) {
		fields = confirmation_fields;
		n = sizeof(confirmation_fields) /
		    sizeof(confirmation_fields[0]);
	} else {
		soar_error_set(err, "parse", "unknown Type");
		return -1;
	}
	for (i = 0; i < n; i++) {
		const char *v = field_value(m, fields[i]);

		if (v == NULL && fields[i] == F_SUBJECT)
			continue;
		if (v == NULL) {
			soar_error_set(err, "parse", "missing %s",
			               field_names[fields[i]]);
			buf_clear(out);
			return -1;
		}
		if (buf_puts(out, field_names[fields[i]]) < 0 ||
		    buf_putc(out, '\n') < 0 || buf_puts(out, v) < 0 ||
		    buf_putc(out, '\n') < 0) {
			buf_clear(out);
			return fail_nomem(err);
		}
	}
	return 0;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads n digits at s into *v.  Returns 0 or -1. */
static int
digits(const char *s, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

static int
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Leap years in 1..y. */
static long
leaps_through(long y)
{
	return y / 4 - y / 100 + y / 400;
}

int
sns_timestamp(const char *s, long long *ms)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30,
	                            31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, m, frac = 0, i;
	long long days;

	if (s == NULL || strlen(s) < 20 || s[4] != '-' || s[7] != '-' ||
	    s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
	    digits(s, 4, &y) < 0 || digits(s + 5, 2, &mo) < 0 ||
	    digits(s + 8, 2, &d) < 0 || digits(s + 11, 2, &h) < 0 ||
	    digits(s + 14, 2, &mi) < 0 || digits(s + 17, 2, &sec) < 0)
		return -1;
	s += 19;
	if (*s == '.') {
		for (i = 1; is_digit(s[i]); i++)
			if (i <= 3)
				frac = frac * 10 + (s[i] - '0');
		if (i == 1 || i > 10)
			return -1;
		for (; i <= 3; i++)
			frac *= 10;
		s += strspn(s + 1, "0123456789") + 1;
	}
	if (strcmp(s, "Z") != 0 || y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && is_leap(y)) || h > 23 || mi > 59 ||
	    sec > 59)
		return -1;
	days = 365LL * (y - 1970) + leaps_through(y - 1) - leaps_through(1969);
	for (m = 1; m < mo; m++)
		days += mdays[m - 1] + (m == 2 && is_leap(y));
	days += d - 1;
	*ms = ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + frac;
	return 0;
}

/* Checks one path segment s[0..n): its escapes well formed and decoding
 * to no separator, and the decoded segment not "." or "..". */
static const char *
check_segment(const char *s, size_t n)
{
	char dec[3];
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
			int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;

			if (hi < 0 || lo < 0)
				return "has a bad percent escape";
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
			if (c == '/' || c == '\\' || c == '%' || c < 0x20 ||
			    c == 0x7f)
				return "has an encoded separator or control "
				       "character";
		}
		if (k < sizeof(dec))
			dec[k] = (char)c;
		k++;
	}
	if ((k == 1 && dec[0] == '.') ||
	    (k == 2 && dec[0] == '.' && dec[1] == '.'))
		return "path has a dot segment";
	return NULL;
}

/* Returns 1 when host[0..n) matches
 * ^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$. */
static int
aws_host(const char *host, size_t n)
{
	static const char *const suffixes[] = {".amazonaws.com.cn",
	                                       ".amazonaws.com"};
	size_t i, k, sl;

	if (n < 4 || memcmp(host, "sns.", 4) != 0)
		return 0;
	for (k = 0; k < 2; k++) {
		sl = strlen(suffixes[k]);
		if (n < 4 + 3 + sl ||
		    memcmp(host + n - sl, suffixes[k], sl) != 0)
			continue;
		for (i = 4; i < n - sl; i++) {
			char c = host[i];

			if (!(is_digit(c) || (c >= 'a' && c <= 'z') ||
			      (c >= 'A' && c <= 'Z') || c == '-'))
				break;
		}
		if (i == n - sl)
			return 1;
	}
	return 0;
}

/* sns_url_check, with the field's name in the messages. */
static int
url_check(const char *what, const char *url, const char *override, int want_pem,
          struct soar_error *err)
{
	char shown[SHOW_MAX + 4];
	const char *auth, *rest, *p, *path, *why;
	size_t alen, hlen, plen, n, i;

	if (url == NULL) {
		soar_error_set(err, "url", "missing %s", what);
		return -1;
	}
	n = strlen(url);
	if (n > SNS_MAX_URL) {
		soar_error_set(err, "url", "%s longer than %d bytes", what,
		               SNS_MAX_URL);
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)url[i];

		if (c <= 0x20 || c >= 0x7f || c == '\\') {
			soar_error_set(
			        err, "url",
			        "%s holds a backslash, space, control or "
			        "non-ASCII byte",
			        what);
			return -1;
		}
	}
	if (strncmp(url, "https://", 8) != 0) {
		soar_error_set(err, "url", "%s is not https: %s", what,
		               show(shown, url, strcspn(url, "/")));
		return -1;
	}
	auth = url + 8;
	alen = strcspn(auth, "/?#");
	if (memchr(auth, '@', alen) != NULL) {
		soar_error_set(err, "url", "%s has user info", what);
		return -1;
	}
	if (alen == 0) {
		soar_error_set(err, "url", "%s has no host", what);
		return -1;
	}
	p = memchr(auth, ':', alen);
	hlen = p ? (size_t)(p - auth) : alen;
	if (override != NULL) {
		if (alen != strlen(override) ||
		    memcmp(auth, override, alen) != 0)
			goto bad_host;
	} else {
		if (!aws_host(auth, hlen))
			goto bad_host;
		if (p != NULL &&
		    (alen - hlen != 4 || memcmp(p, ":443", 4) != 0)) {
			soar_error_set(err, "url", "%s port not allowed: %s",
			               what, show(shown, auth, alen));
			return -1;
		}
	}
	rest = auth + alen;
	if (strchr(rest, '#') != NULL) {
		soar_error_set(err, "url", "%s has a fragment", what);
		return -1;
	}
	path = rest;
	plen = strcspn(rest, "?");
	for (i = 0; i < plen;) {
		size_t sl;

		i++; /* the '/' */
		sl = strcspn(path + i, "/?");
		if ((why = check_segment(path + i, sl)) != NULL) {
			soar_error_set(err, "url", "%s %s", what, why);
			return -1;
		}
		i += sl;
	}
	if (want_pem && (plen < 4 || memcmp(path + plen - 4, ".pem", 4) != 0 ||
	                 path[plen] != '\0')) {
		soar_error_set(err, "url",
		               "%s is not a .pem path without query", what);
		return -1;
	}
	return 0;
bad_host:
	soar_error_set(err, "url", "%s host not allowed: %s", what,
	               show(shown, auth, alen));
	return -1;
}

int
sns_url_check(const char *url, const char *override, int want_pem,
              struct soar_error *err)
{
	return url_check("URL", url, override, want_pem, err);
}

/* Decodes standard base64 strictly: length a multiple of 4, '=' only as
 * the last one or two characters, unused bits zero.  Returns the length
 * written to out (outsz bytes), or -1. */
static long
base64_decode(const char *s, unsigned char *out, size_t outsz)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
	                               "nopqrstuvwxyz0123456789+/";
	size_t n = strlen(s), i, k = 0, pad = 0;
	unsigned long acc = 0;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > outsz)
		return -1;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (i = 0; i < n - pad; i++) {
		const char *p = s[i] ? strchr(alphabet, s[i]) : NULL;

		if (p == NULL)
			return -1;
		acc = (acc << 6) | (unsigned long)(p - alphabet);
		if (i % 4 == 3) {
			out[k++] = (unsigned char)(acc >> 16);
			out[k++] = (unsigned char)(acc >> 8);
			out[k++] = (unsigned char)acc;
			acc = 0;
		}
	}
	if (pad == 2) {
		if (acc & 0xf)
			return -1;
		out[k++] = (unsigned char)(acc >> 4);
	} else if (pad == 1) {
		if (acc & 0x3)
			return -1;
		out[k++] = (unsigned char)(acc >> 10);
		out[k++] = (unsigned char)(acc >> 2);
	}
	return (long)k;
}

struct sns_certs *
sns_certs_new(const char *cafile, const char *override, struct soar_error *err)
{
	struct sns_certs *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		fail_nomem(err);
		return NULL;
	}
	if ((c->store = X509_STORE_new()) == NULL ||
	    (override != NULL && (c->override = strdup(override)) == NULL)) {
		sns_certs_free(c);
		fail_nomem(err);
		return NULL;
	}
	/* SNS serves the leaf alone, and Amazon's intermediate is in no
	 * system store: let an operator trust the intermediate itself. */
	X509_STORE_set_flags(c->store, X509_V_FLAG_PARTIAL_CHAIN);
	if (cafile != NULL ? X509_STORE_load_file(c->store, cafile) != 1
	                   : X509_STORE_set_default_paths(c->store) != 1) {
		ERR_clear_error();
		soar_error_set(
		        err, "config",
		        cafile ? "sns: cannot load CA file %s"
		               : "sns: cannot load the default CA paths%s",
		        cafile ? cafile : "");
		sns_certs_free(c);
		return NULL;
	}
	return c;
}

static void
entry_free(struct entry *e)
{
	free(e->url);
	X509_free(e->cert);
	e->url = NULL;
	e->cert = NULL;
}

/* Removes cache entry i, keeping the others in age order. */
static void
cache_remove(struct sns_certs *c, size_t i)
{
	entry_free(&c->cache[i]);
	memmove(&c->cache[i], &c->cache[i + 1],
	        (c->ncache - i - 1) * sizeof(c->cache[0]));
	c->ncache--;
	memset(&c->cache[c->ncache], 0, sizeof(c->cache[0]));
}

void
sns_certs_free(struct sns_certs *c)
{
	if (c == NULL)
		return;
	while (c->ncache > 0)
		cache_remove(c, c->ncache - 1);
	X509_STORE_free(c->store);
	sk_X509_pop_free(c->issuers, X509_free);
	free(c->override);
	free(c);
}

static long
cache_find(const struct sns_certs *c, const char *url)
{
	size_t i;

	for (i = 0; i < c->ncache; i++)
		if (strcmp(c->cache[i].url, url) == 0)
			return (long)i;
	return -1;
}

int
sns_certs_cached(const struct sns_certs *c, const char *url)
{
	return url != NULL && cache_find(c, url) >= 0;
}

/* Compares an ASN.1 string with SNS_CERT_NAME, ignoring ASCII case. */
static int
is_sns_name(const ASN1_STRING *s)
{
	size_t n = strlen(SNS_CERT_NAME);

	return s != NULL && ASN1_STRING_length(s) == (int)n &&
	       strncasecmp((const char *)ASN1_STRING_get0_data(s),
	                   SNS_CERT_NAME, n) == 0;
}

/* Returns 1 when x names SNS_CERT_NAME as a DNS subjectAltName or as its
 * subject CN. */
static int
names_sns(X509 *x)
{
	GENERAL_NAMES *san =
	        X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	X509_NAME *subject = X509_get_subject_name(x);
	int i, found = 0;

	for (i = 0; san != NULL && i < sk_GENERAL_NAME_num(san); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);

		if (g->type == GEN_DNS && is_sns_name(g->d.dNSName))
			found = 1;
	}
	GENERAL_NAMES_free(san);
	i = -1;
	while (!found && subject != NULL &&
	       (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >=
	               0)
		found = is_sns_name(X509_NAME_ENTRY_get_data(
		        X509_NAME_get_entry(subject, i)));
	return found;
}

/* Reads the certificates of pem: the first into *leaf, the others into
 * *extra.  Returns 0 or -1 with err set. */
static int
read_pem(const char *pem, size_t len, X509 **leaf, STACK_OF(X509) * *extra,
         struct soar_error *err)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x;

	*leaf = NULL;
	*extra = NULL;
	if (b == NULL)
		return fail_nomem(err);
	*leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (*leaf == NULL) {
		BIO_free(b);
		ERR_clear_error();
		soar_error_set(err, "cert", "certificate is not PEM X.509");
		return -1;
	}
	if ((*extra = sk_X509_new_null()) == NULL)
		goto nomem;
	while (sk_X509_num(*extra) < MAX_EXTRA &&
	       (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(*extra, x) <= 0) {
			X509_free(x);
			goto nomem;
		}
	/* The end of the text ends the loop with an error queued. */
	ERR_clear_error();
	BIO_free(b);
	return 0;
nomem:
	BIO_free(b);
	X509_free(*leaf);
	sk_X509_pop_free(*extra, X509_free);
	*leaf = NULL;
	*extra = NULL;
	return fail_nomem(err);
}

/* Checks that x is valid at now.  Returns 0 or -1 with err set. */
static int
check_validity(X509 *x, time_t now, struct soar_error *err)
{
	int before = X509_cmp_time(X509_get0_notBefore(x), &now);
	int after = X509_cmp_time(X509_get0_notAfter(x), &now);

	if (before == 0 || after == 0) {
		soar_error_set(err, "cert",
		               "certificate has a bad validity "
		               "time");
		return -1;
	}
	if (after < 0) {
		soar_error_set(err, "cert", "certificate expired");
		return -1;
	}
	if (before > 0) {
		soar_error_set(err, "cert", "certificate not yet valid");
		return -1;
	}
	return 0;
}

/* Checks the leaf's key, name and chain at now. */
static int
check_cert(struct sns_certs *c, X509 *leaf, STACK_OF(X509) * extra, time_t now,
           struct soar_error *err)
{
	EVP_PKEY *key = X509_get0_pubkey(leaf);
	X509_STORE_CTX *ctx;
	int rc = -1;

	c->last_error = X509_V_OK;
	if (check_validity(leaf, now, err) < 0)
		return -1;
	if (!names_sns(leaf)) {
		soar_error_set(err, "cert", "certificate is not for %s",
		               SNS_CERT_NAME);
		return -1;
	}
	if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
		ERR_clear_error();
		soar_error_set(err, "cert", "certificate key is not RSA");
		return -1;
	}
	if (EVP_PKEY_get_bits(key) < MIN_RSA_BITS) {
		soar_error_set(err, "cert",
		               "certificate RSA key shorter than %d bits",
		               MIN_RSA_BITS);
		return -1;
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL)
		return fail_nomem(err);
	/* Issuers fetched earlier help build the chain; they are no
	 * anchors: only the store is trusted. */
	for (int i = 0; c->issuers != NULL && i < sk_X509_num(c->issuers); i++)
		if (sk_X509_num(extra) < MAX_EXTRA + MAX_ISSUERS) {
			X509 *x = sk_X509_value(c->issuers, i);

			if (X509_up_ref(x) != 1 ||
			    sk_X509_push(extra, x) <= 0) {
				X509_free(x);
				X509_STORE_CTX_free(ctx);
				return fail_nomem(err);
			}
		}
	if (X509_STORE_CTX_init(ctx, c->store, leaf, extra) != 1) {
		soar_error_set(err, "crypto", "sns: cannot start verifying");
		goto out;
	}
	X509_STORE_CTX_set_time(ctx, 0, now);
	if (X509_verify_cert(ctx) != 1) {
		int e = X509_STORE_CTX_get_error(ctx);

		c->last_error = e;
		soar_error_set(err, "cert",
		               "certificate does not chain to a trusted CA: %s",
		               X509_verify_cert_error_string(e));
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	return rc;
}

/* Adds leaf (consumed) to the cache under url. */
static int
cache_put(struct sns_certs *c, const char *url, X509 *leaf,
          struct soar_error *err)
{
	long i = cache_find(c, url);
	char *u;

	if (i >= 0)
		cache_remove(c, (size_t)i);
	if ((u = strdup(url)) == NULL) {
		X509_free(leaf);
		return fail_nomem(err);
	}
	if (c->ncache == SNS_CACHE_SIZE)
		cache_remove(c, 0);
	c->cache[c->ncache].url = u;
	c->cache[c->ncache].cert = leaf;
	c->ncache++;
	return 0;
}

/* sns_certs_add_pem, with the field's name in URL messages. */
static int
add_pem(struct sns_certs *c, const char *what, const char *url, const char *pem,
        size_t len, time_t now, struct soar_error *err)
{
	STACK_OF(X509) * extra;
	X509 *leaf;

	if (url_check(what, url, c->override, 1, err) < 0)
		return -1;
	if (len > SNS_MAX_CERT || len > INT_MAX) {
		soar_error_set(err, "cert", "certificate larger than %d bytes",
		               SNS_MAX_CERT);
		return -1;
	}
	if (read_pem(pem, len, &leaf, &extra, err) < 0)
		return -1;
	if (check_cert(c, leaf, extra, now, err) < 0) {
		X509_free(leaf);
		sk_X509_pop_free(extra, X509_free);
		return -1;
	}
	sk_X509_pop_free(extra, X509_free);
	return cache_put(c, url, leaf, err);
}

int
sns_certs_add_pem(struct sns_certs *c, const char *url, const char *pem,
                  size_t len, time_t now, struct soar_error *err)
{
	return add_pem(c, "URL", url, pem, len, now, err);
}

/* GETs url through h into body (at most SNS_MAX_CERT bytes, HTTP 200).
 * what names the URL in messages.  Returns 0, or -1 with err set. */
static int
get(struct http *h, const char *what, const char *url, struct buf *body,
    struct soar_error *err)
{
	struct http_request req = {
	        .method = "GET", .url = url, .idempotent = 1};
	struct http_reply f;
	int rc = http_fetch(h, &req, NULL, &f);

	if (rc < 0 && strcmp(f.err.code, "nomem") == 0) {
		buf_free(&f.resp.body);
		return fail_nomem(err);
	} else if (rc < 0) {
		soar_error_set(err, "fetch", "%s fetch failed (%s): %s", what,
		               f.err.code, f.err.message);
	} else if (f.resp.body.len > SNS_MAX_CERT) {
		soar_error_set(err, "fetch", "%s answer larger than %d bytes",
		               what, SNS_MAX_CERT);
	} else if (f.resp.status != 200) {
		soar_error_set(err, "fetch", "%s fetch: HTTP %ld", what,
		               f.resp.status);
	} else {
		*body = f.resp.body;
		return 0;
	}
	if (err != NULL) {
		err->status = f.resp.status;
		err->attempts = f.resp.attempts;
	}
	buf_free(&f.resp.body);
	return -1;
}

int
sns_issuer_url_ok(const char *override, const char *url)
{
	const char *host, *end;
	size_t n;

	if (override != NULL) {
		n = strlen(override);
		return strncmp(url, "https://", 8) == 0 &&
		       strncmp(url + 8, override, n) == 0 && url[8 + n] == '/';
	}
	if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return 0;
	end = host + strcspn(host, "/:?#@");
	if (*end != '/')
		return 0;
	n = (size_t)(end - host);
	for (size_t i = 0; i < n; i++)
		if (!((host[i] >= 'a' && host[i] <= 'z') ||
		      (host[i] >= '0' && host[i] <= '9') || host[i] == '-' ||
		      host[i] == '.'))
			return 0;
	return n > 16 && memcmp(end - 16, ".amazontrust.com", 16) == 0;
}

/* The caIssuers URL in the AIA extension of the first certificate of
 * pem, as a new string; NULL when there is none. */
static char *
issuer_url(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	AUTHORITY_INFO_ACCESS *aia =
	        x ? X509_get_ext_d2i(x, NID_info_access, NULL, NULL) : NULL;
	char *url = NULL;

	for (int i = 0;
	     aia != NULL && url == NULL && i < sk_ACCESS_DESCRIPTION_num(aia);
	     i++) {
		ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);

		if (OBJ_obj2nid(ad->method) == NID_ad_ca_issuers &&
		    ad->location->type == GEN_URI) {
			const ASN1_IA5STRING *u =
			        ad->location->d.uniformResourceIdentifier;

			if (u->length > 0 && u->length < SNS_MAX_URL &&
			    memchr(u->data, '\0', (size_t)u->length) == NULL)
				url = strndup((const char *)u->data,
				              (size_t)u->length);
		}
	}
	AUTHORITY_INFO_ACCESS_free(aia);
	X509_free(x);
	BIO_free(b);
	ERR_clear_error();
	return url;
}

/* Fetches the issuer certificate (DER or PEM) named by the AIA of pem
 * and keeps it for chain building.  Returns 0 when one was added. */
static int
fetch_issuer(struct sns_certs *c, struct http *h, const char *pem, size_t len)
{
	char *url = issuer_url(pem, len);
	struct buf body = BUF_INIT;
	struct soar_error e;
	X509 *x = NULL;
	int rc = -1;

	if (url == NULL || !sns_issuer_url_ok(c->override, url) ||
	    (c->issuers != NULL && sk_X509_num(c->issuers) >= MAX_ISSUERS) ||
	    get(h, "issuer certificate", url, &body, &e) < 0)
		goto out;
	{
		const unsigned char *p = (const unsigned char *)body.data;
		BIO *b;

		if (body.len > 0)
			x = d2i_X509(NULL, &p, (long)body.len);
		if (x == NULL && body.len > 0 &&
		    (b = BIO_new_mem_buf(body.data, (int)body.len)) != NULL) {
			x = PEM_read_bio_X509(b, NULL, NULL, NULL);
			BIO_free(b);
		}
	}
	if (x == NULL ||
	    (c->issuers == NULL && (c->issuers = sk_X509_new_null()) == NULL))
		goto out;
	if (sk_X509_push(c->issuers, x) > 0) {
		x = NULL;
		rc = 0;
	}
out:
	ERR_clear_error();
	X509_free(x);
	buf_free(&body);
	free(url);
	return rc;
}

/* sns_certs_fetch, with the field's name in messages.  A certificate
 * whose issuer is not in the store (SNS serves the leaf alone, and
 * Amazon's intermediates are in no system store) gets its issuer from its
 * AIA caIssuers URL, once, and is checked again. */
static int
fetch(struct sns_certs *c, struct http *h, const char *what, const char *url,
      time_t now, struct soar_error *err)
{
	struct buf body = BUF_INIT;
	int rc;

	if (url_check(what, url, c->override, 1, err) < 0)
		return -1;
	if (get(h, what, url, &body, err) < 0)
		return -1;
	rc = add_pem(c, what, url, body.data ? body.data : "", body.len, now,
	             err);
	if (rc < 0 &&
	    c->last_error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY &&
	    fetch_issuer(c, h, body.data, body.len) == 0)
		rc = add_pem(c, what, url, body.data, body.len, now, err);
	buf_free(&body);
	return rc;
}

int
sns_certs_fetch(struct sns_certs *c, struct http *h, const char *url,
                time_t now, struct soar_error *err)
{
	return fetch(c, h, "URL", url, now, err);
}

/* Returns the certificate cached for url and still valid at now, fetching
 * it through h when needed; NULL with err set when there is none. */
static X509 *
signing_cert(struct sns_certs *c, struct http *h, const char *url, time_t now,
             struct soar_error *err)
{
	const char *what = "SigningCertURL";
	long i = cache_find(c, url);

	if (i >= 0 && check_validity(c->cache[i].cert, now, err) < 0) {
		cache_remove(c, (size_t)i);
		if (h == NULL)
			return NULL;
		i = -1;
	}
	if (i < 0) {
		if (h == NULL) {
			soar_error_set(
			        err, "fetch",
			        "%s not cached and no client to fetch it",
			        what);
			return NULL;
		}
		if (fetch(c, h, what, url, now, err) < 0)
			return NULL;
		i = cache_find(c, url);
	}
	return i >= 0 ? c->cache[i].cert : NULL;
}

/* Checks sig[0..siglen) over text with the key of cert. */
static int
check_signature(X509 *cert, int version, const unsigned char *sig,
                size_t siglen, const struct buf *text, struct soar_error *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int rc = -1;

	if (md == NULL)
		return fail_nomem(err);
	if (EVP_DigestVerifyInit(md, &pctx,
	                         version == 1 ? EVP_sha1() : EVP_sha256(), NULL,
	                         X509_get0_pubkey(cert)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
		soar_error_set(err, "crypto",
		               "sns: cannot start verifying "
		               "the signature");
		goto out;
	}
	if (EVP_DigestVerify(md, sig, siglen, (const unsigned char *)text->data,
	                     text->len) != 1) {
		soar_error_set(err, "signature", "signature does not verify");
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	return rc;
}

int
sns_verify(struct sns_certs *c, struct http *h, const struct sns_msg *m,
           time_t now, struct soar_error *err)
{
	unsigned char sig[MAX_SIG_BYTES];
	struct buf text = BUF_INIT;
	long siglen;
	X509 *cert;
	int rc = -1;

	if (url_check("SigningCertURL", m->signing_cert_url, c->override, 1,
	              err) < 0 ||
	    (m->subscribe_url != NULL &&
	     url_check("SubscribeURL", m->subscribe_url, c->override, 0, err) <
	             0) ||
	    (m->unsubscribe_url != NULL &&
	     url_check("UnsubscribeURL", m->unsubscribe_url, c->override, 0,
	               err) < 0))
		return -1;
	if (m->version != 1 && m->version != 2) {
		soar_error_set(err, "parse", "SignatureVersion not supported");
		return -1;
	}
	if (m->signature == NULL ||
	    (siglen = base64_decode(m->signature, sig, sizeof(sig))) <= 0) {
		soar_error_set(err, "signature", "Signature is not base64");
		return -1;
	}
	if (sns_string_to_sign(m, &text, err) < 0)
		goto out;
	if ((cert = signing_cert(c, h, m->signing_cert_url, now, err)) == NULL)
		goto out;
	rc = check_signature(cert, m->version, sig, (size_t)siglen, &text, err);
out:
	buf_free(&text);
	return rc;
}
