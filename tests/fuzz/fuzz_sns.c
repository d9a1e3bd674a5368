/*
 * fuzz_sns.c: the SNS message verifier (lib/sns.h) without a network:
 * sns_parse, sns_string_to_sign, sns_timestamp, sns_url_check,
 * sns_issuer_url_ok, sns_certs_add_pem and sns_verify with a certificate
 * cache and no HTTP client, so nothing can be fetched.
 *
 * At start the target makes a PKI in memory: a CA (the cache's trust
 * store) and an RSA signing certificate for sns.amazonaws.com under it,
 * cached for CERT_URL; the clock is fixed.  Each input is used three ways:
 * as a POST body, as a URL or timestamp, and as a PEM certificate.
 *
 * Invariants.  Parsing: two parses agree; a failure leaves the message
 * empty with code "parse"; a success has every field its Type needs and
 * only the signed ones, a version matching SignatureVersion and the
 * Timestamp's value; the string to sign is the documented "Key\nValue\n"
 * list (rebuilt here).  Verifying: a message as given never verifies; the
 * error code is a documented one, URL faults come first, then base64, then
 * the missing certificate ("fetch"); the message is printable ASCII and
 * quotes neither Signature nor Token.  The same message signed here with
 * the cached key verifies exactly when its other URLs are allowed, and no
 * longer once a signed field changes.  URLs: two checks agree; an
 * accepted URL obeys every rule of sns_url_check (checked here again, the
 * host by a matcher of its own) and of sns_issuer_url_ok.  Timestamps: an
 * accepted one names a real time, which gmtime gives back.  Certificates: none
 * made by the fuzzer is accepted or cached.
 */
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "error.h"
#include "fuzz.h"
#include "sns.h"

#define NOW ((time_t)1700000000) /* 2023-11-14T22:13:20Z */
#define DAY ((time_t)86400)
#define CERT_URL                                                               \
	"https://sns.us-east-1.amazonaws.com/"                                 \
	"SimpleNotificationService-0123456789abcdef.pem"
#define PEM_URL    "https://sns.eu-west-1.amazonaws.com/fuzz.pem"
#define OVERRIDE   "127.0.0.1:8443"
#define SECRET_MIN 8

static struct sns_certs *certs;  /* the signing certificate, cached */
static struct sns_certs *others; /* for certificates from the input */
static EVP_PKEY *leaf_key;

static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
          int is_ca)
{
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	FUZZ_CHECK(x != NULL);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), is_ca ? 1 : 2);
	ASN1_TIME_set(X509_getm_notBefore(x), NOW - 30 * DAY);
	ASN1_TIME_set(X509_getm_notAfter(x), NOW + 365 * DAY);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	                          is_ca ? "critical,CA:TRUE" : "CA:FALSE");
	FUZZ_CHECK(ext != NULL && X509_add_ext(x, ext, -1) == 1);
	X509_EXTENSION_free(ext);
	if (is_ca) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
		                          "critical,keyCertSign,cRLSign");
		FUZZ_CHECK(ext != NULL && X509_add_ext(x, ext, -1) == 1);
		X509_EXTENSION_free(ext);
	}
	FUZZ_CHECK(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) >
	           0);
	return x;
}

static void
pem_of(X509 *x, struct buf *b)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;

	FUZZ_CHECK(bio != NULL && PEM_write_bio_X509(bio, x) == 1);
	n = BIO_get_mem_data(bio, &p);
	FUZZ_CHECK(n > 0 && buf_append(b, p, (size_t)n) == 0);
	BIO_free(bio);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char cafile[4096];
	struct buf pem = BUF_INIT;
	struct soar_error err;
	EVP_PKEY *ca_key;
	X509 *ca, *leaf;
	int fd;

	(void)argc;
	(void)argv;
	ca_key = EVP_EC_gen("P-256");
	leaf_key = EVP_RSA_gen(2048);
	FUZZ_CHECK(ca_key != NULL && leaf_key != NULL);
	ca = make_cert(ca_key, "soarutils fuzz CA", NULL, NULL, 1);
	leaf = make_cert(leaf_key, SNS_CERT_NAME, ca, ca_key, 0);

	/* The trust store is read from a file: a private one, gone once
	 * read. */
	snprintf(cafile, sizeof(cafile), "%s/fuzz_sns.XXXXXX",
	         tmp ? tmp : "/tmp");
	FUZZ_CHECK((fd = mkstemp(cafile)) >= 0);
	pem_of(ca, &pem);
	FUZZ_CHECK(write(fd, pem.data, pem.len) == (ssize_t)pem.len);
	close(fd);
	certs = sns_certs_new(cafile, NULL, &err);
	others = sns_certs_new(cafile, NULL, &err);
	unlink(cafile);
	FUZZ_CHECK(certs != NULL && others != NULL);
	buf_clear(&pem);
	pem_of(leaf, &pem);
	FUZZ_CHECK(sns_certs_add_pem(certs, CERT_URL, pem.data, pem.len, NOW,
	                             &err) == 0);
	FUZZ_CHECK(sns_certs_cached(certs, CERT_URL));
	buf_free(&pem);
	X509_free(ca);
	X509_free(leaf);
	EVP_PKEY_free(ca_key);
	return 0;
}

static int
same_str(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static int
same_msg(const struct sns_msg *a, const struct sns_msg *b)
{
	return a->type == b->type && a->version == b->version &&
	       a->timestamp_ms == b->timestamp_ms &&
	       same_str(a->type_name, b->type_name) &&
	       same_str(a->message_id, b->message_id) &&
	       same_str(a->topic_arn, b->topic_arn) &&
	       same_str(a->subject, b->subject) &&
	       same_str(a->message, b->message) &&
	       same_str(a->timestamp, b->timestamp) &&
	       same_str(a->signature_version, b->signature_version) &&
	       same_str(a->signature, b->signature) &&
	       same_str(a->signing_cert_url, b->signing_cert_url) &&
	       same_str(a->subscribe_url, b->subscribe_url) &&
	       same_str(a->unsubscribe_url, b->unsubscribe_url) &&
	       same_str(a->token, b->token);
}

static int
is_empty(const struct sns_msg *m)
{
	static const struct sns_msg empty;

	return same_msg(m, &empty) && m->type_name == NULL;
}

static void
kv(struct buf *b, const char *k, const char *v)
{
	FUZZ_CHECK(buf_printf(b, "%s\n%s\n", k, v) == 0);
}

/* The string to sign, as sns.h lists it. */
static void
want_sts(const struct sns_msg *m, struct buf *b)
{
	kv(b, "Message", m->message);
	kv(b, "MessageId", m->message_id);
	if (m->type == SNS_NOTIFICATION) {
		if (m->subject != NULL)
			kv(b, "Subject", m->subject);
	} else {
		kv(b, "SubscribeURL", m->subscribe_url);
	}
	kv(b, "Timestamp", m->timestamp);
	if (m->type != SNS_NOTIFICATION)
		kv(b, "Token", m->token);
	kv(b, "TopicArn", m->topic_arn);
	kv(b, "Type", m->type_name);
}

/* An error fit for a log line and a 4xx body. */
static void
check_error(const struct soar_error *err, const struct sns_msg *m)
{
	static const char *const codes[] = {"parse",  "url",   "signature",
	                                    "cert",   "fetch", "nomem",
	                                    "crypto", NULL};
	const char *const secrets[] = {m ? m->signature : NULL,
	                               m ? m->token : NULL};
	int known = 0;

	for (size_t i = 0; codes[i] != NULL; i++)
		known |= strcmp(err->code, codes[i]) == 0;
	FUZZ_CHECK(known);
	for (const char *p = err->message; *p != '\0'; p++)
		FUZZ_CHECK(*p >= 0x20 && *p < 0x7f);
	for (size_t i = 0; i < 2; i++) {
		const char *s = secrets[i];

		/* Text that is part of a URL or a name may be shown as
		 * that. */
		if (s == NULL || strlen(s) < SECRET_MIN ||
		    (m->signing_cert_url && strstr(m->signing_cert_url, s)) ||
		    (m->subscribe_url && strstr(m->subscribe_url, s)) ||
		    (m->unsubscribe_url && strstr(m->unsubscribe_url, s)) ||
		    strstr(m->type_name, s) || strstr(m->signature_version, s))
			continue;
		FUZZ_CHECK(strstr(err->message, s) == NULL);
	}
}

/* Whether the host h matches
 * ^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$ (regex.h is not used:
 * libonig, linked for libjq, has its own regcomp). */
static int
sns_host(const char *h)
{
	static const char *const tails[] = {".amazonaws.com",
	                                    ".amazonaws.com.cn"};
	static const char label[] = "abcdefghijklmnopqrstuvwxyz"
	                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
	size_t n = strlen(h), mid;

	if (strncmp(h, "sns.", 4) != 0)
		return 0;
	mid = strspn(h + 4, label);
	for (size_t i = 0; i < 2; i++)
		if (mid >= 3 && strcmp(h + 4 + mid, tails[i]) == 0 &&
		    n == 4 + mid + strlen(tails[i]))
			return 1;
	return 0;
}

/* Whether url matches ^https?://[a-z0-9.-]+\.amazontrust\.com/ */
static int
issuer_url(const char *url)
{
	const char *h;
	size_t n;

	if (strncmp(url, "http://", 7) == 0)
		h = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		h = url + 8;
	else
		return 0;
	n = strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789.-");
	return h[n] == '/' && n > 16 &&
	       memcmp(h + n - 16, ".amazontrust.com", 16) == 0;
}

/* Checks that url, which sns_url_check accepted, obeys its rules. */
static void
check_url_rules(const char *url, const char *override, int want_pem)
{
	const char *auth = url + 8, *path, *p;
	size_t alen, hlen, plen, i;
	char *host;

	FUZZ_CHECK(strlen(url) <= SNS_MAX_URL);
	FUZZ_CHECK(strncmp(url, "https://", 8) == 0);
	for (p = url; *p != '\0'; p++)
		FUZZ_CHECK((unsigned char)*p > 0x20 &&
		           (unsigned char)*p < 0x7f && *p != '\\' && *p != '#');
	alen = strcspn(auth, "/?");
	FUZZ_CHECK(alen > 0 && memchr(auth, '@', alen) == NULL);
	if (override != NULL) {
		FUZZ_CHECK(alen == strlen(override) &&
		           memcmp(auth, override, alen) == 0);
	} else {
		p = memchr(auth, ':', alen);
		hlen = p ? (size_t)(p - auth) : alen;
		FUZZ_CHECK(p == NULL ||
		           (alen - hlen == 4 && memcmp(p, ":443", 4) == 0));
		host = fuzz_str(auth, hlen);
		FUZZ_CHECK(sns_host(host));
		free(host);
	}
	path = auth + alen;
	plen = strcspn(path, "?");
	for (i = 0; i < plen;) {
		size_t k = 0;
		char dec[3] = {0, 0, 0};

		i++; /* the '/' */

		for (; i < plen && path[i] != '/'; i++, k++) {
			int c = (unsigned char)path[i];

			if (c == '%') {
				FUZZ_CHECK(i + 2 < plen &&
				           hex_value(path[i + 1]) >= 0 &&
				           hex_value(path[i + 2]) >= 0);
				c = hex_value(path[i + 1]) * 16 +
				    hex_value(path[i + 2]);
				i += 2;
				FUZZ_CHECK(c != '/' && c != '\\' && c != '%' &&
				           c >= 0x20 && c != 0x7f);
			}
			if (k < 3)
				dec[k] = (char)c;
		}
		FUZZ_CHECK(!(k == 1 && dec[0] == '.'));
		FUZZ_CHECK(!(k == 2 && dec[0] == '.' && dec[1] == '.'));
	}
	if (want_pem)
		FUZZ_CHECK(path[plen] == '\0' && plen >= 4 &&
		           memcmp(path + plen - 4, ".pem", 4) == 0);
}

/* The input as a URL and as a timestamp. */
static void
fuzz_text(const char *s)
{
	struct soar_error e1, e2;
	long long ms = 0, ms2 = 0;
	int rc, rc2;

	for (int pem = 0; pem < 2; pem++)
		for (int o = 0; o < 2; o++) {
			const char *override = o ? OVERRIDE : NULL;

			rc = sns_url_check(s, override, pem, &e1);
			rc2 = sns_url_check(s, override, pem, &e2);
			FUZZ_CHECK(rc == rc2 && (rc == 0 || rc == -1));
			if (rc == 0) {
				check_url_rules(s, override, pem);
			} else {
				FUZZ_CHECK(strcmp(e1.code, "url") == 0);
				FUZZ_CHECK(strcmp(e1.message, e2.message) == 0);
				check_error(&e1, NULL);
			}
		}
	rc = sns_issuer_url_ok(NULL, s);
	FUZZ_CHECK(rc == sns_issuer_url_ok(NULL, s));
	FUZZ_CHECK(rc == issuer_url(s));
	if (sns_issuer_url_ok(OVERRIDE, s))
		FUZZ_CHECK(strncmp(s, "https://" OVERRIDE "/",
		                   strlen("https://" OVERRIDE "/")) == 0);

	rc = sns_timestamp(s, &ms);
	FUZZ_CHECK(rc == sns_timestamp(s, &ms2));
	if (rc == 0) {
		struct tm tm;
		time_t t = (time_t)(ms / 1000);
		char again[20];

		FUZZ_CHECK(ms == ms2 && ms >= 0);
		FUZZ_CHECK(gmtime_r(&t, &tm) != NULL);
		FUZZ_CHECK(strftime(again, sizeof(again), "%Y-%m-%dT%H:%M:%S",
		                    &tm) == 19);
		FUZZ_CHECK(memcmp(again, s, 19) == 0);
	}
}

static char *
base64(const unsigned char *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	FUZZ_CHECK(out != NULL);
	FUZZ_CHECK(EVP_EncodeBlock((unsigned char *)out, p, (int)n) >= 0);
	return out;
}

/* Signs text as SNS does for version (1: SHA1, 2: SHA256); base64. */
static char *
sign(const struct buf *text, int version)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[512];
	size_t n = sizeof(sig);
	char *out;

	FUZZ_CHECK(md != NULL);
	FUZZ_CHECK(EVP_DigestSignInit(md, NULL,
	                              version == 1 ? EVP_sha1() : EVP_sha256(),
	                              NULL, leaf_key) == 1);
	FUZZ_CHECK(EVP_DigestSign(md, sig, &n,
	                          (const unsigned char *)text->data,
	                          text->len) == 1);
	EVP_MD_CTX_free(md);
	out = base64(sig, n);
	return out;
}

static int
url_ok(const char *url)
{
	struct soar_error e;

	return url == NULL || sns_url_check(url, NULL, 0, &e) == 0;
}

/* A parsed message: what was parsed, its string to sign, its
 * verification as given and signed here. */
static void
check_parsed(const struct sns_msg *m)
{
	struct buf sts = BUF_INIT, sts2 = BUF_INIT, want = BUF_INIT;
	char cert_url[] = CERT_URL;
	struct soar_error err;
	struct sns_msg s;
	long long ms;
	int rc;
	char *ts;

	FUZZ_CHECK(m->message_id && m->topic_arn && m->message &&
	           m->timestamp && m->signature_version && m->signature &&
	           m->signing_cert_url);
	switch (m->type) {
	case SNS_NOTIFICATION:
		FUZZ_CHECK(strcmp(m->type_name, "Notification") == 0);
		FUZZ_CHECK(!m->subscribe_url && !m->token);
		break;
	case SNS_SUBSCRIPTION_CONFIRMATION:
	case SNS_UNSUBSCRIBE_CONFIRMATION:
		FUZZ_CHECK(strcmp(m->type_name,
		                  m->type == SNS_SUBSCRIPTION_CONFIRMATION
		                          ? "SubscriptionConfirmation"
		                          : "UnsubscribeConfirmation") == 0);
		FUZZ_CHECK(m->subscribe_url && m->token && !m->subject);
		break;
	default:
		FUZZ_CHECK(m->type == SNS_NOTIFICATION);
	}
	FUZZ_CHECK(
	        (m->version == 1 && strcmp(m->signature_version, "1") == 0) ||
	        (m->version == 2 && strcmp(m->signature_version, "2") == 0));
	FUZZ_CHECK(sns_timestamp(m->timestamp, &ms) == 0 &&
	           ms == m->timestamp_ms);

	FUZZ_CHECK(sns_string_to_sign(m, &sts, &err) == 0);
	FUZZ_CHECK(sns_string_to_sign(m, &sts2, &err) == 0);
	want_sts(m, &want);
	FUZZ_CHECK(sts.len == want.len &&
	           memcmp(sts.data, want.data, want.len) == 0);
	FUZZ_CHECK(sts2.len == sts.len &&
	           memcmp(sts2.data, sts.data, sts.len) == 0);

	/* As given: never authentic, and faults reported in order. */
	rc = sns_verify(certs, NULL, m, NOW, &err);
	FUZZ_CHECK(rc == -1);
	check_error(&err, m);
	if (sns_url_check(m->signing_cert_url, NULL, 1, &err) < 0 ||
	    !url_ok(m->subscribe_url) || !url_ok(m->unsubscribe_url)) {
		FUZZ_CHECK(sns_verify(certs, NULL, m, NOW, &err) == -1 &&
		           strcmp(err.code, "url") == 0);
	} else if (strcmp(m->signing_cert_url, CERT_URL) != 0) {
		FUZZ_CHECK(sns_verify(certs, NULL, m, NOW, &err) == -1);
		FUZZ_CHECK(strcmp(err.code, "signature") == 0 ||
		           strcmp(err.code, "fetch") == 0);
	}

	/* Signed with the cached key: authentic when its URLs are allowed,
	 * and not once the Timestamp changed. */
	s = *m;
	s.signing_cert_url = cert_url;
	s.signature = sign(&sts, m->version);
	rc = sns_verify(certs, NULL, &s, NOW, &err);
	FUZZ_CHECK((rc == 0) ==
	           (url_ok(m->subscribe_url) && url_ok(m->unsubscribe_url)));
	if (rc == 0) {
		ts = fuzz_str(m->timestamp, strlen(m->timestamp));
		ts[0] ^= 1;
		s.timestamp = ts;
		FUZZ_CHECK(sns_verify(certs, NULL, &s, NOW, &err) == -1 &&
		           strcmp(err.code, "signature") == 0);
		free(ts);
	}
	FUZZ_CHECK(sns_certs_cached(certs, CERT_URL));
	free(s.signature);
	buf_free(&sts);
	buf_free(&sts2);
	buf_free(&want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = fuzz_bytes(data, size), *text = fuzz_str(data, size);
	struct sns_msg m, m2;
	struct soar_error e1, e2;
	int rc, rc2;

	/* As a POST body. */
	rc = sns_parse(body, size, &m, &e1);
	rc2 = sns_parse(body, size, &m2, &e2);
	FUZZ_CHECK(rc == rc2 && (rc == 0 || rc == -1));
	FUZZ_CHECK(same_msg(&m, &m2));
	if (rc == 0) {
		check_parsed(&m);
	} else {
		FUZZ_CHECK(is_empty(&m));
		FUZZ_CHECK(strcmp(e1.code, "parse") == 0 &&
		           strcmp(e1.message, e2.message) == 0);
		check_error(&e1, NULL);
	}
	sns_msg_free(&m);
	sns_msg_free(&m2);

	/* As a URL or a timestamp. */
	fuzz_text(text);

	/* As a certificate: nothing the fuzzer makes chains to the CA. */
	rc = sns_certs_add_pem(others, PEM_URL, body, size, NOW, &e1);
	FUZZ_CHECK(rc == -1 && !sns_certs_cached(others, PEM_URL));
	FUZZ_CHECK(strcmp(e1.code, "cert") == 0 ||
	           strcmp(e1.code, "nomem") == 0);
	check_error(&e1, NULL);

	free(body);
	free(text);
	return 0;
}
