/*
 * test_sns.c: the SNS message verifier.
 *
 * The test makes its own PKI with OpenSSL: a CA, an SNS signing
 * certificate for sns.amazonaws.com under it, and the bad certificates the
 * verifier must refuse (expired, not yet valid, wrong name, wildcard,
 * self-signed, from another CA, EC, short RSA).  Messages are signed here
 * over a string to sign the test writes out itself, so a wrong
 * sns_string_to_sign fails verification.  The AWS documentation messages
 * and the real (expired) AWS certificate come from
 * ../shared/corpus/vendor/aws-sns (or $SHARED/corpus/vendor/aws-sns); a
 * missing corpus fails the tests that read it.  test_fetch serves
 * certificates over HTTPS from a Python stand-in on loopback and checks
 * which requests reached it.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "error.h"
#include "http.h"
#include "sns.h"
#include "unit.h"

#define NOW ((time_t)1700000000) /* 2023-11-14T22:13:20Z */
#define DAY ((time_t)86400)
#define CERT_URL                                                               \
	"https://sns.us-east-1.amazonaws.com/"                                 \
	"SimpleNotificationService-0123456789abcdef.pem"
#define DOC_CERT_URL                                                           \
	"https://sns.us-west-2.amazonaws.com/"                                 \
	"SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
#define UNSUB_URL                                                              \
	"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&"             \
	"SubscriptionArn=arn:aws:sns:us-east-1:123456789012:soar:c9135db0"
#define SUB_URL                                                                \
	"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&"     \
	"TopicArn=arn:aws:sns:us-east-1:123456789012:soar&Token=2336412f37"

/* The test PKI, made once in main(): an RSA key for the SNS certificate,
 * a short one for the certificate refused for it (and for signatures by
 * the wrong key), EC keys for the rest (RSA keys are slow to make under
 * valgrind). */
static EVP_PKEY *ca_key, *leaf_key, *other_key, *short_key;
static X509 *ca_cert;
static struct buf leaf_pem = BUF_INIT;
static char tmpdir[64];
static char cafile[PATH_LEN];

static int
read_file(const char *path, struct buf *b)
{
	char chunk[4096];
	FILE *f = fopen(path, "rb");
	size_t n;

	buf_clear(b);
	if (f == NULL)
		return -1;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(b, chunk, n) < 0)
			break;
	fclose(f);
	return b->data != NULL ? 0 : -1;
}

static int
write_file(const char *path, const char *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int rc;

	if (f == NULL)
		return -1;
	rc = fwrite(p, 1, n, f) == n ? 0 : -1;
	return fclose(f) == 0 ? rc : -1;
}

static char *
corpus(char *p, const char *name)
{
	const char *s = getenv("SHARED");

	return pathf(p, "%s/corpus/vendor/aws-sns/%s", s ? s : "../shared",
	             name);
}

/* Makes a certificate for key named cn (and DNS:san when not NULL),
 * issued by issuer (NULL: self-signed) and valid from nb to na. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
          EVP_PKEY *issuer_key, time_t nb, time_t na, int is_ca)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	if (x == NULL)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	ASN1_TIME_set(X509_getm_notBefore(x), nb);
	ASN1_TIME_set(X509_getm_notAfter(x), na);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	                           (const unsigned char *)"soarutils test", -1,
	                           -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	                          is_ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (is_ca) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
		                          "critical,keyCertSign,cRLSign");
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (san != NULL) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Appends x as PEM to b; x is consumed. */
static void
put_pem(struct buf *b, X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;

	if (x != NULL && bio != NULL && PEM_write_bio_X509(bio, x) == 1) {
		n = BIO_get_mem_data(bio, &p);
		buf_append(b, p, (size_t)n);
	}
	BIO_free(bio);
	X509_free(x);
}

/* A certificate by the test CA, as PEM in b (cleared first). */
static void
leaf_cert(struct buf *b, EVP_PKEY *key, const char *cn, const char *san,
          time_t nb, time_t na)
{
	buf_clear(b);
	put_pem(b, make_cert(key, cn, san, ca_cert, ca_key, nb, na, 0));
}

/* Signs text with key, SHA1 for version 1, SHA256 for 2; writes the
 * base64 signature to out (1024 bytes). */
static void
sign_text(EVP_PKEY *key, int version, const struct buf *text, char *out)
{
	unsigned char sig[512];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	out[0] = '\0';
	if (md != NULL &&
	    EVP_DigestSignInit(md, NULL,
	                       version == 1 ? EVP_sha1() : EVP_sha256(), NULL,
	                       key) == 1 &&
	    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)text->data,
	                   text->len) == 1)
		EVP_EncodeBlock((unsigned char *)out, sig, (int)siglen);
	EVP_MD_CTX_free(md);
}

/* A message as the test writes it: decoded values (NULL: left out). */
struct fields {
	const char *type, *message_id, *topic_arn, *subject, *message;
	const char *timestamp, *signature_version, *signature, *cert_url;
	const char *subscribe_url, *unsubscribe_url, *token;
	const char *message_json; /* Message's literal in the body instead */
	const char *subject_json; /* Subject's literal in the body instead */
	const char *version_json; /* SignatureVersion's literal instead */
	const char *extra;        /* members added at the end, raw */
	int lambda;               /* "...Url" key spellings */
	int no_version;           /* leave SignatureVersion out */
};

static struct fields
notification(void)
{
	struct fields f = {
	        .type = "Notification",
	        .message_id = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
	        .topic_arn = "arn:aws:sns:us-east-1:123456789012:soar",
	        .subject = "Finding",
	        .message = "Hello world!",
	        .timestamp = "2023-11-14T22:13:20.123Z",
	        .cert_url = CERT_URL,
	        .unsubscribe_url = UNSUB_URL,
	};
	return f;
}

static struct fields
confirmation(const char *type)
{
	struct fields f = {
	        .type = type,
	        .message_id = "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
	        .token = "2336412f37",
	        .topic_arn = "arn:aws:sns:us-east-1:123456789012:soar",
	        .message = "You have chosen to subscribe.\nTo confirm, visit "
	                   "the SubscribeURL.",
	        .subscribe_url = SUB_URL,
	        .timestamp = "2023-11-14T22:13:20.123Z",
	        .cert_url = CERT_URL,
	};
	return f;
}

static void
put_kv(struct buf *b, const char *k, const char *v)
{
	if (v != NULL)
		buf_printf(b, "%s\n%s\n", k, v);
}

/* The string to sign, written out independently of lib/sns.c. */
static void
expected_sts(const struct fields *f, struct buf *b)
{
	int notif = strcmp(f->type, "Notification") == 0;

	buf_clear(b);
	put_kv(b, "Message", f->message);
	put_kv(b, "MessageId", f->message_id);
	if (notif && f->subject != NULL)
		put_kv(b, "Subject", f->subject);
	if (!notif)
		put_kv(b, "SubscribeURL", f->subscribe_url);
	put_kv(b, "Timestamp", f->timestamp);
	if (!notif)
		put_kv(b, "Token", f->token);
	put_kv(b, "TopicArn", f->topic_arn);
	put_kv(b, "Type", f->type);
}

/* Appends s as a JSON string literal. */
static void
put_json(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			buf_printf(b, "\\%c", c);
		else if (c == '\n')
			buf_puts(b, "\\n");
		else if (c < 0x20)
			buf_printf(b, "\\u%04x", c);
		else
			buf_putc(b, c);
	}
	buf_putc(b, '"');
}

static void
member(struct buf *b, const char *k, const char *v, const char *raw)
{
	if (v == NULL && raw == NULL)
		return;
	buf_printf(b, "%s\"%s\" : ", b->len > 1 ? ",\n  " : "\n  ", k);
	if (raw != NULL)
		buf_puts(b, raw);
	else
		put_json(b, v);
}

/* Writes f as a body (cleared first) signed with key (version 1 or 2)
 * unless f->signature is set; SignatureVersion is f's, or the version. */
static void
make_body(struct buf *b, const struct fields *f, EVP_PKEY *key, int version)
{
	struct buf sts = BUF_INIT;
	char sig[1024], ver[2] = {(char)('0' + version), '\0'};

	expected_sts(f, &sts);
	sign_text(key, version, &sts, sig);
	buf_free(&sts);
	buf_clear(b);
	buf_putc(b, '{');
	member(b, "Type", f->type, NULL);
	member(b, "MessageId", f->message_id, NULL);
	member(b, "Token", f->token, NULL);
	member(b, "TopicArn", f->topic_arn, NULL);
	member(b, "Subject", f->subject, f->subject_json);
	member(b, "Message", f->message, f->message_json);
	member(b, f->lambda ? "SubscribeUrl" : "SubscribeURL", f->subscribe_url,
	       NULL);
	member(b, "Timestamp", f->timestamp, NULL);
	if (!f->no_version)
		member(b, "SignatureVersion",
		       f->signature_version ? f->signature_version : ver,
		       f->version_json);
	member(b, "Signature", f->signature ? f->signature : sig, NULL);
	member(b, f->lambda ? "SigningCertUrl" : "SigningCertURL", f->cert_url,
	       NULL);
	member(b, f->lambda ? "UnsubscribeUrl" : "UnsubscribeURL",
	       f->unsubscribe_url, NULL);
	if (f->extra != NULL)
		buf_puts(b, f->extra);
	buf_puts(b, "\n}\n");
}

/* A cache that trusts the test CA and holds the SNS certificate under
 * CERT_URL. */
static struct sns_certs *
trusted(void)
{
	struct soar_error err;
	struct sns_certs *c = sns_certs_new(cafile, NULL, &err);

	CHECK(c != NULL);
	if (c != NULL)
		CHECK_INT(sns_certs_add_pem(c, CERT_URL, leaf_pem.data,
		                            leaf_pem.len, NOW, &err),
		          0);
	return c;
}

/* Parses and verifies body with c at NOW; on failure *err says why.
 * Returns 0 or -1. */
static int
check_body(struct sns_certs *c, const struct buf *body, struct soar_error *err)
{
	struct sns_msg m;
	int rc;

	soar_error_clear(err);
	if (sns_parse(body->data, body->len, &m, err) < 0)
		return -1;
	rc = sns_verify(c, NULL, &m, NOW, err);
	sns_msg_free(&m);
	return rc;
}

/* Flips the lowest bit of the byte at offset off into the first
 * occurrence of what in body.  Returns 0, or -1 when what is not there. */
static int
flip(struct buf *body, const char *what, size_t off)
{
	char *p = strstr(body->data, what);

	if (p == NULL)
		return -1;
	p[off] ^= 1;
	return 0;
}

static void
test_v1_and_v2(void)
{
	struct sns_certs *c = trusted();
	struct fields f = notification();
	struct buf body = BUF_INIT;
	struct soar_error err;

	make_body(&body, &f, leaf_key, 1);
	CHECK_INT(check_body(c, &body, &err), 0);
	make_body(&body, &f, leaf_key, 2);
	CHECK_INT(check_body(c, &body, &err), 0);
	/* A SHA256 signature labelled version 1, and the other way. */
	f.signature_version = "1";
	make_body(&body, &f, leaf_key, 2);
	CHECK_INT(check_body(c, &body, &err), -1);
	CHECK_STR(err.code, "signature");
	CHECK_STR(err.message, "signature does not verify");
	f.signature_version = "2";
	make_body(&body, &f, leaf_key, 1);
	CHECK_INT(check_body(c, &body, &err), -1);
	CHECK_STR(err.code, "signature");
	/* Signed by a key that is not the certificate's. */
	f.signature_version = NULL;
	make_body(&body, &f, short_key, 2);
	CHECK_INT(check_body(c, &body, &err), -1);
	CHECK_STR(err.code, "signature");
	buf_free(&body);
	sns_certs_free(c);
}

static void
test_flipped_bytes(void)
{
	static const struct {
		const char *what;
		size_t off;
	} flips[] = {
	        {"\"Hello world!\"", 5},              /* Message */
	        {"\"Finding\"", 1},                   /* Subject */
	        {"\"2023-11-14T22:13:20.123Z\"", 22}, /* Timestamp */
	        {"\"arn:aws:sns:us-east-1:123456789012:soar\"", 38}, /* Arn */
	        {"\"22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\"", 3},     /* Id */
	};
	struct sns_certs *c = trusted();
	struct fields f = notification();
	struct buf body = BUF_INIT;
	struct soar_error err;

	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		for (int v = 1; v <= 2; v++) {
			make_body(&body, &f, leaf_key, v);
			CHECK_INT(check_body(c, &body, &err), 0);
			CHECK_INT(flip(&body, flips[i].what, flips[i].off), 0);
			CHECK_INT(check_body(c, &body, &err), -1);
			CHECK_STR(err.code, "signature");
			CHECK_STR(err.message, "signature does not verify");
		}
	}
	/* A flip in the signature itself. */
	make_body(&body, &f, leaf_key, 2);
	CHECK_INT(flip(&body, "\"Signature\" : \"", 20), 0);
	CHECK_INT(check_body(c, &body, &err), -1);
	CHECK_STR(err.code, "signature");
	/* The unsigned UnsubscribeURL may change (it is only URL-checked). */
	make_body(&body, &f, leaf_key, 2);
	CHECK_INT(flip(&body, "c9135db0", 0), 0);
	CHECK_INT(check_body(c, &body, &err), 0);
	buf_free(&body);
	sns_certs_free(c);
}

static void
test_subject(void)
{
	struct sns_certs *c = trusted();
	struct fields f = notification(), g;
	struct buf body = BUF_INIT, sts = BUF_INIT, want = BUF_INIT;
	struct soar_error err;
	struct sns_msg m;

	/* Absent: no Subject line in the string to sign. */
	f.subject = NULL;
	make_body(&body, &f, leaf_key, 2);
	CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
	CHECK(m.subject == NULL);
	CHECK_INT(sns_string_to_sign(&m, &sts, &err), 0);
	CHECK_STR(sts.data,
	          "Message\nHello world!\n"
	          "MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
	          "Timestamp\n2023-11-14T22:13:20.123Z\n"
	          "TopicArn\narn:aws:sns:us-east-1:123456789012:soar\n"
	          "Type\nNotification\n");
	CHECK_INT(sns_verify(c, NULL, &m, NOW, &err), 0);
	sns_msg_free(&m);
	/* Present and empty differs from absent. */
	f.subject = "";
	make_body(&body, &f, leaf_key, 2);
	CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
	CHECK_STR(m.subject, "");
	CHECK_INT(sns_string_to_sign(&m, &sts, &err), 0);
	CHECK(strstr(sts.data, "MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf3"
	                       "24\nSubject\n\nTimestamp\n") != NULL);
	CHECK_INT(sns_verify(c, NULL, &m, NOW, &err), 0);
	sns_msg_free(&m);
	/* Signed without a subject, delivered with an empty one, and the
	 * other way round. */
	g = f;
	g.subject = NULL;
	expected_sts(&g, &want);
	{
		char sig[1024];

		sign_text(leaf_key, 2, &want, sig);
		f.signature = sig;
		make_body(&body, &f, leaf_key, 2);
		CHECK_INT(check_body(c, &body, &err), -1);
		CHECK_STR(err.code, "signature");
		/* Lambda's "Subject": null is an absent subject. */
		f.subject = NULL;
		f.subject_json = "null";
		make_body(&body, &f, leaf_key, 2);
		CHECK_INT(check_body(c, &body, &err), 0);
		f.subject_json = NULL;
		f.subject = "Finding";
		make_body(&body, &f, leaf_key, 2);
		CHECK_INT(check_body(c, &body, &err), -1);
		CHECK_STR(err.code, "signature");
	}
	buf_free(&body);
	buf_free(&sts);
	buf_free(&want);
	sns_certs_free(c);
}

static void
test_escapes(void)
{
	struct sns_certs *c = trusted();
	struct fields f = notification();
	struct buf body = BUF_INIT, sts = BUF_INIT, want = BUF_INIT;
	struct soar_error err;
	struct sns_msg m;

	/* The body carries escapes; the signature covers the characters. */
	f.message_json = "\"line1\\nline2\\r\\t \\\"quoted\\\" \\\\ \\/ "
	                 "caf\\u00e9 \\u0001\\u001f \\ud83d\\ude00 \xe2\x9c\x93"
	                 "\"";
	f.message = "line1\nline2\r\t \"quoted\" \\ / caf\xc3\xa9 \x01\x1f "
	            "\xf0\x9f\x98\x80 \xe2\x9c\x93";
	f.subject_json = "\"\\u00c9t\\u00e9 \\\"alert\\\"\\n\"";
	f.subject = "\xc3\x89t\xc3\xa9 \"alert\"\n";
	for (int v = 1; v <= 2; v++) {
		make_body(&body, &f, leaf_key, v);
		CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
		CHECK_STR(m.message, f.message);
		CHECK_STR(m.subject, f.subject);
		CHECK_INT(sns_string_to_sign(&m, &sts, &err), 0);
		expected_sts(&f, &want);
		CHECK_INT(sts.len, want.len);
		CHECK(sts.len == want.len &&
		      memcmp(sts.data, want.data, sts.len) == 0);
		CHECK_INT(sns_verify(c, NULL, &m, NOW, &err), 0);
		sns_msg_free(&m);
	}
	/* Other members are ignored, whatever their type. */
	f.message_json = NULL;
	f.extra = ",\"MessageAttributes\":{\"a\":{\"Type\":\"String\"}},"
	          "\"x\":[1,2,{\"Type\":3}]";
	make_body(&body, &f, leaf_key, 2);
	CHECK_INT(check_body(c, &body, &err), 0);
	/* U+0000 cannot be carried in a C string: refused. */
	f.message_json = "\"a\\u0000b\"";
	make_body(&body, &f, leaf_key, 2);
	CHECK_INT(sns_parse(body.data, body.len, &m, &err), -1);
	CHECK_STR(err.code, "parse");
	CHECK_STR(err.message, "Message holds a NUL character");
	buf_free(&body);
	buf_free(&sts);
	buf_free(&want);
	sns_certs_free(c);
}

static void
test_confirmations(void)
{
	static const char *const types[] = {"SubscriptionConfirmation",
	                                    "UnsubscribeConfirmation"};
	struct sns_certs *c = trusted();
	struct buf body = BUF_INIT, sts = BUF_INIT;
	struct soar_error err;
	struct sns_msg m;
	char want[512];

	for (int i = 0; i < 2; i++) {
		struct fields f = confirmation(types[i]);

		make_body(&body, &f, leaf_key, 1);
		CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
		CHECK_INT(m.type, i == 0 ? SNS_SUBSCRIPTION_CONFIRMATION
		                         : SNS_UNSUBSCRIBE_CONFIRMATION);
		CHECK_STR(m.token, "2336412f37");
		CHECK_STR(m.subscribe_url, SUB_URL);
		CHECK_INT(sns_string_to_sign(&m, &sts, &err), 0);
		snprintf(want, sizeof(want),
		         "Message\nYou have chosen to subscribe.\nTo confirm, "
		         "visit the SubscribeURL.\nMessageId\n"
		         "165545c9-2a5c-472c-8df2-7ff2be2b3b1b\nSubscribeURL\n"
		         "%s\nTimestamp\n2023-11-14T22:13:20.123Z\nToken\n"
		         "2336412f37\nTopicArn\n"
		         "arn:aws:sns:us-east-1:123456789012:soar\nType\n%s\n",
		         SUB_URL, types[i]);
		CHECK_STR(sts.data, want);
		CHECK_INT(sns_verify(c, NULL, &m, NOW, &err), 0);
		sns_msg_free(&m);
		/* The token is signed. */
		CHECK_INT(flip(&body, "\"2336412f37\"", 4), 0);
		CHECK_INT(check_body(c, &body, &err), -1);
		CHECK_STR(err.code, "signature");
		/* A Subject is not signed in a confirmation: dropped. */
		f.subject = "unsigned";
		make_body(&body, &f, leaf_key, 2);
		CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
		CHECK(m.subject == NULL);
		CHECK_INT(sns_verify(c, NULL, &m, NOW, &err), 0);
		sns_msg_free(&m);
		/* SubscribeURL on a foreign host. */
		f.subscribe_url = "https://evil.example/?Action=Confirm";
		make_body(&body, &f, leaf_key, 2);
		CHECK_INT(check_body(c, &body, &err), -1);
		CHECK_STR(err.code, "url");
		CHECK_STR(err.message,
		          "SubscribeURL host not allowed: evil.example");
		/* Lambda-style keys. */
		f = confirmation(types[i]);
		f.lambda = 1;
		make_body(&body, &f, leaf_key, 2);
		CHECK_INT(check_body(c, &body, &err), 0);
		/* Required fields. */
		f.token = NULL;
		make_body(&body, &f, leaf_key, 2);
		CHECK_INT(check_body(c, &body, &err), -1);
		CHECK_STR(err.code, "parse");
		CHECK(strncmp(err.message, "missing Token in ", 17) == 0);
		f = confirmation(types[i]);
		f.subscribe_url = NULL;
		make_body(&body, &f, leaf_key, 2);
		CHECK_INT(check_body(c, &body, &err), -1);
		CHECK(strncmp(err.message, "missing SubscribeURL", 20) == 0);
	}
	/* A Notification's Token and SubscribeURL are unsigned: dropped. */
	{
		struct fields f = notification();

		f.token = "t";
		f.subscribe_url = "https://evil.example/";
		make_body(&body, &f, leaf_key, 2);
		CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
		CHECK(m.token == NULL && m.subscribe_url == NULL);
		CHECK_INT(sns_verify(c, NULL, &m, NOW, &err), 0);
		sns_msg_free(&m);
	}
	buf_free(&body);
	buf_free(&sts);
	sns_certs_free(c);
}

static void
test_lambda_keys(void)
{
	struct sns_certs *c = trusted();
	struct fields f = notification();
	struct buf body = BUF_INIT;
	struct soar_error err;
	struct sns_msg m;

	f.lambda = 1;
	make_body(&body, &f, leaf_key, 1);
	CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
	CHECK_STR(m.signing_cert_url, CERT_URL);
	CHECK_STR(m.unsubscribe_url, UNSUB_URL);
	CHECK_INT(sns_verify(c, NULL, &m, NOW, &err), 0);
	sns_msg_free(&m);
	/* Both spellings at once is one key given twice. */
	f.extra = ",\"SigningCertURL\":\"" CERT_URL "\"";
	make_body(&body, &f, leaf_key, 1);
	CHECK_INT(sns_parse(body.data, body.len, &m, &err), -1);
	CHECK_STR(err.code, "parse");
	CHECK_STR(err.message, "SigningCertURL given twice");
	buf_free(&body);
	sns_certs_free(c);
}

/* Checks that body is refused by sns_parse with message want. */
static void
parse_fails(const char *body, const char *want)
{
	struct soar_error err;
	struct sns_msg m;

	CHECK_INT(sns_parse(body, strlen(body), &m, &err), -1);
	CHECK_STR(err.code, "parse");
	CHECK_STR(err.message, want);
	CHECK(m.message == NULL && m.type_name == NULL);
}

static void
test_parse_rejects(void)
{
	struct fields f = notification();
	struct buf body = BUF_INIT;
	struct soar_error err;
	struct sns_msg m;
	char *big;

	parse_fails("", "body is not a JSON object: empty line at byte 0");
	parse_fails("Hello", "body is not a JSON object: not a JSON object "
	                     "at byte 0");
	parse_fails("[]", "body is not a JSON object: not a JSON object at "
	                  "byte 0");
	parse_fails("{\"Type\":\"Notification\"",
	            "body is not a JSON object: unexpected end of line "
	            "(truncated value?) at byte 22");
	parse_fails("{}", "missing Type");
	parse_fails("{\"Type\":\"Notice\"}", "unknown Type: Notice");
	parse_fails("{\"Type\":\"Not\\u0001\"}", "unknown Type: Not?");
	parse_fails("{\"Type\":1}", "Type is not a string");
	parse_fails("{\"Type\":null}", "Type is not a string");
	parse_fails("{\"Type\":\"Notification\",\"Message\":[\"a\"]}",
	            "Message is not a string");
	parse_fails("{\"Type\":\"Notification\",\"Message\":\"a\","
	            "\"Message\":\"b\"}",
	            "Message given twice");
	parse_fails("{\"Type\":\"Notification\",\"Message\":\"a\","
	            "\"Mess\\u0061ge\":\"b\"}",
	            "Message given twice");
	parse_fails("{\"Type\":\"Notification\",\"Type\":\"Notification\"}",
	            "Type given twice");
	parse_fails("{\"Type\":\"Notification\",\"Subject\":null,"
	            "\"Subject\":\"x\"}",
	            "Subject given twice");
	/* Each field of a Notification is required (but Subject). */
	f.message = NULL;
	make_body(&body, &f, leaf_key, 1);
	parse_fails(body.data, "missing Message");
	f = notification();
	f.timestamp = NULL;
	make_body(&body, &f, leaf_key, 1);
	parse_fails(body.data, "missing Timestamp");
	f = notification();
	f.cert_url = NULL;
	make_body(&body, &f, leaf_key, 1);
	parse_fails(body.data, "missing SigningCertURL");
	f = notification();
	f.message_id = NULL;
	make_body(&body, &f, leaf_key, 1);
	parse_fails(body.data, "missing MessageId");
	f = notification();
	f.topic_arn = NULL;
	make_body(&body, &f, leaf_key, 1);
	parse_fails(body.data, "missing TopicArn");
	/* UnsubscribeURL is optional. */
	f = notification();
	f.unsubscribe_url = NULL;
	make_body(&body, &f, leaf_key, 1);
	CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
	sns_msg_free(&m);
	/* A bad Timestamp. */
	f = notification();
	f.timestamp = "2023-11-14 22:13:20Z";
	make_body(&body, &f, leaf_key, 1);
	parse_fails(body.data,
	            "Timestamp is not ISO 8601 UTC: 2023-11-14 22:13:20Z");
	/* Larger than SNS_MAX_BODY, even if valid. */
	big = malloc(SNS_MAX_BODY + 2);
	CHECK(big != NULL);
	if (big != NULL) {
		memset(big, ' ', SNS_MAX_BODY + 1);
		big[0] = '{';
		big[SNS_MAX_BODY] = '}';
		big[SNS_MAX_BODY + 1] = '\0';
		CHECK_INT(sns_parse(big, SNS_MAX_BODY + 1, &m, &err), -1);
		CHECK_STR(err.code, "parse");
		CHECK_STR(err.message, "body larger than 1048576 bytes");
		/* One byte less is parsed (and found empty). */
		big[SNS_MAX_BODY - 1] = '}';
		CHECK_INT(sns_parse(big, SNS_MAX_BODY, &m, &err), -1);
		CHECK_STR(err.message, "missing Type");
		free(big);
	}
	/* sns_msg_free on an empty message, twice. */
	memset(&m, 0, sizeof(m));
	sns_msg_free(&m);
	sns_msg_free(&m);
	sns_msg_free(NULL);
	buf_free(&body);
}

static void
test_signature_version(void)
{
	static const char *const bad[] = {"3",  "1 ",  " 1", "",
	                                  "01", "2.0", "v1"};
	struct fields f = notification();
	struct buf body = BUF_INIT;
	struct soar_error err;
	struct sns_msg m;
	char want[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f.signature_version = bad[i];
		make_body(&body, &f, leaf_key, 1);
		snprintf(want, sizeof(want),
		         "SignatureVersion not supported: %s", bad[i]);
		parse_fails(body.data, want);
	}
	/* Missing, and a number instead of a string. */
	f.signature_version = NULL;
	f.no_version = 1;
	make_body(&body, &f, leaf_key, 1);
	parse_fails(body.data, "missing SignatureVersion");
	f.no_version = 0;
	f.version_json = "1";
	make_body(&body, &f, leaf_key, 1);
	parse_fails(body.data, "SignatureVersion is not a string");
	f.version_json = NULL;
	/* A hand-made message with another version is refused too. */
	make_body(&body, &f, leaf_key, 1);
	CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
	m.version = 3;
	{
		struct sns_certs *c = trusted();

		CHECK_INT(sns_verify(c, NULL, &m, NOW, &err), -1);
		CHECK_STR(err.code, "parse");
		sns_certs_free(c);
	}
	sns_msg_free(&m);
	buf_free(&body);
}

static void
test_bad_base64(void)
{
	static const char *const bad[] = {
	        "abc",
	        "ab=c",
	        "====",
	        "abc!",
	        "QUJD\nREVG",
	        "QUJD REVG",
	        "QUJ=",
	        "QR==",
	        "Q===",
	        "QUJD=",
	        "=QUJ",
	        "QUJDRA",
	        "EXAMPLEw6JRN...",
	};
	struct sns_certs *c = trusted();
	struct fields f = notification();
	struct buf body = BUF_INIT;
	struct soar_error err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f.signature = bad[i];
		make_body(&body, &f, leaf_key, 1);
		CHECK_INT(check_body(c, &body, &err), -1);
		CHECK_STR(err.code, "signature");
		CHECK_STR(err.message, "Signature is not base64");
	}
	/* Well-formed base64 of the wrong bytes: decoded, then refused. */
	f.signature = "QUJDRA==";
	make_body(&body, &f, leaf_key, 1);
	CHECK_INT(check_body(c, &body, &err), -1);
	CHECK_STR(err.message, "signature does not verify");
	buf_free(&body);
	sns_certs_free(c);
}

/* Checks that url is refused by sns_url_check and returns its message. */
static const char *
url_fails(const char *url, const char *override, int want_pem)
{
	static struct soar_error err;

	soar_error_clear(&err);
	CHECK_INT(sns_url_check(url, override, want_pem, &err), -1);
	CHECK_STR(err.code, "url");
	if (err.code[0] == '\0')
		fprintf(stdout, "# accepted: %s\n", url);
	return err.message;
}

static void
test_urls(void)
{
	static const char *const bad[] = {
	        /* FAULTS 33 */
	        "http://sns.us-east-1.amazonaws.com/x.pem",
	        "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
	        "https://sns.us-east-1.amazonaws.com@evil.example/x.pem",
	        "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
	        "https://127.0.0.1/x.pem",
	        "https://sns.us-east-1.amazonaws.com/../x.pem",
	        "https://sns.us-east-1.amazonaws.com/x.txt",
	        "https://sns.us-east-1.amazonaws.com/x.pem.txt",
	        /* and their relatives */
	        "https://sns.us-east-1.amazonaws.com/a/../../x.pem",
	        "https://sns.us-east-1.amazonaws.com/%2e%2e/x.pem",
	        "https://sns.us-east-1.amazonaws.com/.%2E/x.pem",
	        "https://sns.us-east-1.amazonaws.com/a/%2E%2e/x.pem",
	        "https://sns.us-east-1.amazonaws.com/./x.pem",
	        "https://sns.us-east-1.amazonaws.com/a%2f..%2fx.pem",
	        "https://sns.us-east-1.amazonaws.com/a%5c..%5cx.pem",
	        "https://sns.us-east-1.amazonaws.com/%252e%252e/x.pem",
	        "https://sns.us-east-1.amazonaws.com/x%zz.pem",
	        "https://sns.us-east-1.amazonaws.com/x%2.pem",
	        "https://sns.us-east-1.amazonaws.com/x.pem%",
	        "https://sns.us-east-1.amazonaws.com/x%00.pem",
	        "https://sns.us-east-1.amazonaws.com/a\\..\\x.pem",
	        "https://sns.us-east-1.amazonaws.com\\@evil.example/x.pem",
	        "https://sns.us-east-1.amazonaws.com:443@evil.example/x.pem",
	        "https://user:pw@sns.us-east-1.amazonaws.com/x.pem",
	        "https://sns.us-east-1.amazonaws.com:8443/x.pem",
	        "https://sns.us-east-1.amazonaws.com:0443/x.pem",
	        "https://sns.us-east-1.amazonaws.com:/x.pem",
	        "https://sns.us-east-1.amazonaws.com./x.pem",
	        "https://SNS.us-east-1.amazonaws.com/x.pem",
	        "https://sns.us.amazonaws.com/x.pem",
	        "https://sns..amazonaws.com/x.pem",
	        "https://sns.a.b.amazonaws.com/x.pem",
	        "https://sns.us_east.amazonaws.com/x.pem",
	        "https://s3.amazonaws.com/x.pem",
	        "https://sns-us-east-1.amazonaws.com/x.pem",
	        "https://sns.us-east-1.amazonaws.com.cn.evil/x.pem",
	        "https://sns.us-east-1.amazonaws.co/x.pem",
	        "https://sns.us-east-1.amazonaws.com%2eevil.example/x.pem",
	        "https://[::1]/x.pem",
	        "HTTPS://sns.us-east-1.amazonaws.com/x.pem",
	        "https:/sns.us-east-1.amazonaws.com/x.pem",
	        "https:///x.pem",
	        "https://",
	        "//sns.us-east-1.amazonaws.com/x.pem",
	        "file:///etc/x.pem",
	        "https://sns.us-east-1.amazonaws.com/x.pem?a=b",
	        "https://sns.us-east-1.amazonaws.com/x.pem#frag",
	        "https://sns.us-east-1.amazonaws.com/x.pem ",
	        "https://sns.us-east-1.amazonaws.com/x\t.pem",
	        "https://sns.us-east-1.amazonaws.com/caf\xc3\xa9.pem",
	        "https://sns.us-east-1.amazonaws.com",
	        "https://sns.us-east-1.amazonaws.com/",
	        "",
	};
	static const char *const good[] = {
	        CERT_URL,
	        "https://sns.us-east-1.amazonaws.com:443/x.pem",
	        "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
	        "https://sns.us-gov-west-1.amazonaws.com/a/b/x.pem",
	        "https://sns.US-EAST-1.amazonaws.com/x%41.pem",
	        "https://sns.abc.amazonaws.com/.pem",
	};
	char longurl[SNS_MAX_URL + 16];
	struct soar_error err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		url_fails(bad[i], NULL, 1);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK_INT(sns_url_check(good[i], NULL, 1, &err), 0);
		if (sns_url_check(good[i], NULL, 1, &err) != 0)
			fprintf(stdout, "# %s: %s\n", good[i], err.message);
	}
	CHECK_INT(sns_url_check(NULL, NULL, 1, &err), -1);
	/* The messages name the rule and the host. */
	CHECK_STR(url_fails("https://evil.example/x.pem", NULL, 1),
	          "URL host not allowed: evil.example");
	CHECK_STR(
	        url_fails("http://sns.us-east-1.amazonaws.com/x.pem", NULL, 1),
	        "URL is not https: http:");
	CHECK_STR(url_fails("https://a@evil.example/x.pem", NULL, 1),
	          "URL has user info");
	CHECK_STR(url_fails("https://sns.us-east-1.amazonaws.com/../x.pem",
	                    NULL, 1),
	          "URL path has a dot segment");
	CHECK_STR(url_fails("https://sns.us-east-1.amazonaws.com:8443/x.pem",
	                    NULL, 1),
	          "URL port not allowed: sns.us-east-1.amazonaws.com:8443");
	/* SubscribeURL and UnsubscribeURL: a query, no .pem. */
	CHECK_INT(sns_url_check(SUB_URL, NULL, 0, &err), 0);
	CHECK_INT(sns_url_check(UNSUB_URL, NULL, 0, &err), 0);
	CHECK_INT(sns_url_check("https://sns.us-east-1.amazonaws.com?a=1", NULL,
	                        0, &err),
	          0);
	url_fails(SUB_URL, NULL, 1);
	url_fails("https://evil.example/?Action=Unsubscribe", NULL, 0);
	url_fails("https://sns.us-east-1.amazonaws.com.evil.example/?A=1", NULL,
	          0);
	url_fails("https://sns.us-east-1.amazonaws.com/../?Action=x", NULL, 0);
	url_fails("http://sns.us-east-1.amazonaws.com/?Action=x", NULL, 0);
	url_fails("https://sns.us-east-1.amazonaws.com/?Action=x#f", NULL, 0);
	/* The override replaces the host rule, and only it. */
	CHECK_INT(sns_url_check("https://127.0.0.1:8443/x.pem",
	                        "127.0.0.1:8443", 1, &err),
	          0);
	CHECK_INT(
	        sns_url_check("https://localhost/x.pem", "localhost", 1, &err),
	        0);
	CHECK_STR(
	        url_fails("https://127.0.0.1:8444/x.pem", "127.0.0.1:8443", 1),
	        "URL host not allowed: 127.0.0.1:8444");
	url_fails("https://127.0.0.1/x.pem", "127.0.0.1:8443", 1);
	url_fails("https://127.0.0.1:443/x.pem", "127.0.0.1", 1);
	url_fails("https://127.0.0.1:8443/../x.pem", "127.0.0.1:8443", 1);
	url_fails("https://127.0.0.1:8443/a/%2E%2E/x.pem", "127.0.0.1:8443", 1);
	url_fails("http://127.0.0.1:8443/x.pem", "127.0.0.1:8443", 1);
	url_fails("https://u@127.0.0.1:8443/x.pem", "127.0.0.1:8443", 1);
	url_fails("https://127.0.0.1:8443/x.txt", "127.0.0.1:8443", 1);
	url_fails("https://127.0.0.1:84430/x.pem", "127.0.0.1:8443", 1);
	url_fails(CERT_URL, "127.0.0.1:8443", 1);
	/* Length. */
	memset(longurl, 'a', sizeof(longurl));
	memcpy(longurl, "https://sns.us-east-1.amazonaws.com/", 36);
	memcpy(longurl + SNS_MAX_URL - 4, ".pem", 5);
	CHECK_INT(sns_url_check(longurl, NULL, 1, &err), 0);
	memcpy(longurl + SNS_MAX_URL - 3, ".pem", 5);
	url_fails(longurl, NULL, 1);
}

/* A message naming a bad URL is refused before any fetch: with a client
 * that would fetch, the error is still the URL's. */
static void
test_urls_before_fetch(void)
{
	static const char *const bad[] = {
	        "http://sns.us-east-1.amazonaws.com/x.pem",
	        "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
	        "https://sns.us-east-1.amazonaws.com@evil.example/x.pem",
	        "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
	        "https://127.0.0.1/x.pem",
	        "https://sns.us-east-1.amazonaws.com/../x.pem",
	        "https://sns.us-east-1.amazonaws.com/x",
	};
	struct http_config cfg;
	struct soar_error err;
	struct sns_certs *c = sns_certs_new(cafile, NULL, &err);
	struct http *h;
	struct buf body = BUF_INIT;
	struct sns_msg m;

	http_config_defaults(&cfg);
	cfg.retries = 0;
	cfg.connect_timeout_ms = 200;
	cfg.timeout_ms = 200;
	h = http_new(&cfg, &err);
	CHECK(c != NULL && h != NULL);
	if (c == NULL || h == NULL)
		goto out;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fields f = notification();

		f.cert_url = bad[i];
		make_body(&body, &f, leaf_key, 1);
		CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
		CHECK_INT(sns_verify(c, h, &m, NOW, &err), -1);
		CHECK_STR(err.code, "url");
		CHECK(strncmp(err.message, "SigningCertURL ", 15) == 0);
		CHECK_INT(http_pending(h), 0);
		sns_msg_free(&m);
		CHECK_INT(sns_certs_fetch(c, h, bad[i], NOW, &err), -1);
		CHECK_STR(err.code, "url");
	}
	/* A foreign UnsubscribeURL in a Notification, before the fetch. */
	{
		struct fields f = notification();

		f.cert_url =
		        "https://sns.us-east-1.amazonaws.com/not-cached.pem";
		f.unsubscribe_url = "https://evil.example/?Action=Unsubscribe";
		make_body(&body, &f, leaf_key, 1);
		CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
		CHECK_INT(sns_verify(c, h, &m, NOW, &err), -1);
		CHECK_STR(err.code, "url");
		CHECK_STR(err.message,
		          "UnsubscribeURL host not allowed: evil.example");
		sns_msg_free(&m);
	}
out:
	buf_free(&body);
	http_free(h);
	sns_certs_free(c);
}

/* Adds pem under CERT_URL to a fresh cache trusting store (a CA file) at
 * now; returns the error message, "" on success. */
static const char *
add_with(const char *store, const struct buf *pem, time_t now)
{
	static struct soar_error err;
	struct sns_certs *c = sns_certs_new(store, NULL, &err);

	CHECK(c != NULL);
	if (c == NULL)
		return "no cache";
	soar_error_clear(&err);
	if (sns_certs_add_pem(c, CERT_URL, pem->data ? pem->data : "", pem->len,
	                      now, &err) == 0) {
		CHECK_INT(sns_certs_cached(c, CERT_URL), 1);
	} else {
		CHECK_STR(err.code, "cert");
		CHECK_INT(sns_certs_cached(c, CERT_URL), 0);
	}
	sns_certs_free(c);
	return err.message;
}

static void
test_cert_checks(void)
{
	struct buf pem = BUF_INIT;
	char path[PATH_LEN];
	X509 *inter, *other_ca;

	CHECK_STR(add_with(cafile, &leaf_pem, NOW), "");
	/* Validity at the injected time. */
	CHECK_STR(add_with(cafile, &leaf_pem, NOW + 400 * DAY),
	          "certificate expired");
	CHECK_STR(add_with(cafile, &leaf_pem, NOW - 40 * DAY),
	          "certificate not yet valid");
	leaf_cert(&pem, leaf_key, SNS_CERT_NAME, NULL, NOW - 10 * DAY,
	          NOW - DAY);
	CHECK_STR(add_with(cafile, &pem, NOW), "certificate expired");
	leaf_cert(&pem, leaf_key, SNS_CERT_NAME, NULL, NOW + DAY,
	          NOW + 10 * DAY);
	CHECK_STR(add_with(cafile, &pem, NOW), "certificate not yet valid");
	/* Names. */
	leaf_cert(&pem, leaf_key, "sns.amazonaws.com.evil.example", NULL,
	          NOW - DAY, NOW + DAY);
	CHECK_STR(add_with(cafile, &pem, NOW),
	          "certificate is not for sns.amazonaws.com");
	leaf_cert(&pem, leaf_key, "evil.example", "DNS:*.amazonaws.com",
	          NOW - DAY, NOW + DAY);
	CHECK_STR(add_with(cafile, &pem, NOW),
	          "certificate is not for sns.amazonaws.com");
	leaf_cert(&pem, leaf_key, "evil.example",
	          "DNS:evil.example,DNS:SNS.amazonaws.com", NOW - DAY,
	          NOW + DAY);
	CHECK_STR(add_with(cafile, &pem, NOW), "");
	leaf_cert(&pem, leaf_key, SNS_CERT_NAME, "DNS:evil.example", NOW - DAY,
	          NOW + DAY);
	CHECK_STR(add_with(cafile, &pem, NOW), "");
	/* Keys. */
	leaf_cert(&pem, other_key, SNS_CERT_NAME, NULL, NOW - DAY, NOW + DAY);
	CHECK_STR(add_with(cafile, &pem, NOW), "certificate key is not RSA");
	leaf_cert(&pem, short_key, SNS_CERT_NAME, NULL, NOW - DAY, NOW + DAY);
	CHECK_STR(add_with(cafile, &pem, NOW),
	          "certificate RSA key shorter than 2048 bits");
	/* Chains: self-signed, from a CA of the same name but another key,
	 * through an intermediate. */
	buf_clear(&pem);
	put_pem(&pem, make_cert(leaf_key, SNS_CERT_NAME, NULL, NULL, NULL,
	                        NOW - DAY, NOW + DAY, 0));
	CHECK(strncmp(add_with(cafile, &pem, NOW),
	              "certificate does not chain to a trusted CA: ", 44) == 0);
	other_ca = make_cert(other_key, "soarutils test CA", NULL, NULL, NULL,
	                     NOW - DAY, NOW + DAY, 1);
	buf_clear(&pem);
	put_pem(&pem, make_cert(leaf_key, SNS_CERT_NAME, NULL, other_ca,
	                        other_key, NOW - DAY, NOW + DAY, 0));
	CHECK(strncmp(add_with(cafile, &pem, NOW),
	              "certificate does not chain to a trusted CA: ", 44) == 0);
	X509_free(other_ca);
	inter = make_cert(other_key, "soarutils test intermediate", NULL,
	                  ca_cert, ca_key, NOW - DAY, NOW + DAY, 1);
	buf_clear(&pem);
	put_pem(&pem, make_cert(leaf_key, SNS_CERT_NAME, NULL, inter, other_key,
	                        NOW - DAY, NOW + DAY, 0));
	CHECK(strncmp(add_with(cafile, &pem, NOW),
	              "certificate does not chain to a trusted CA: ", 44) == 0);
	/* The intermediate in the trust store anchors the leaf alone. */
	{
		struct buf inter_pem = BUF_INIT;

		X509_up_ref(inter);
		put_pem(&inter_pem, inter);
		CHECK_INT(write_file(pathf(path, "%s/inter.pem", tmpdir),
		                     inter_pem.data, inter_pem.len),
		          0);
		CHECK_STR(add_with(path, &pem, NOW), "");
		CHECK(strncmp(add_with(path, &leaf_pem, NOW),
		              "certificate does not chain to a trusted CA: ",
		              44) == 0);
		/* The leaf with its intermediate chains to the root. */
		buf_append(&pem, inter_pem.data, inter_pem.len);
		CHECK_STR(add_with(cafile, &pem, NOW), "");
		buf_free(&inter_pem);
	}
	X509_free(inter);
	/* Not a certificate. */
	buf_clear(&pem);
	buf_puts(&pem, "garbage");
	CHECK_STR(add_with(cafile, &pem, NOW), "certificate is not PEM X.509");
	buf_clear(&pem);
	buf_puts(&pem, "-----BEGIN CERTIFICATE-----\nMIIB\n"
	               "-----END CERTIFICATE-----\n");
	CHECK_STR(add_with(cafile, &pem, NOW), "certificate is not PEM X.509");
	buf_clear(&pem);
	CHECK_STR(add_with(cafile, &pem, NOW), "certificate is not PEM X.509");
	/* Too large, even when valid. */
	buf_clear(&pem);
	buf_append(&pem, leaf_pem.data, leaf_pem.len);
	while (pem.len <= SNS_MAX_CERT)
		buf_puts(&pem, "# padding padding padding padding padding\n");
	CHECK_STR(add_with(cafile, &pem, NOW),
	          "certificate larger than 65536 bytes");
	/* The trust store itself. */
	{
		struct soar_error err;

		CHECK(sns_certs_new("/nonexistent/ca.pem", NULL, &err) == NULL);
		CHECK_STR(err.code, "config");
		/* OpenSSL's default paths do not hold the test CA. */
		CHECK(strncmp(add_with(NULL, &leaf_pem, NOW),
		              "certificate does not chain to a trusted CA: ",
		              44) == 0);
	}
	buf_free(&pem);
}

static void
test_corpus_cert(void)
{
	struct buf pem = BUF_INIT;
	char path[PATH_LEN];

	CHECK_INT(
	        read_file(corpus(path, "real-sns-signing-cert-"
	                               "SimpleNotificationService-"
	                               "56e67fcb41f6fec09b0196692625d385.pem"),
	                  &pem),
	        0);
	if (pem.data == NULL)
		return;
	/* Not After: 2023-06-03; today it is expired, whatever the store. */
	CHECK_STR(add_with(cafile, &pem, time(NULL)), "certificate expired");
	CHECK_STR(add_with(NULL, &pem, time(NULL)), "certificate expired");
	/* Within its validity, it does not chain to the test CA. */
	CHECK_STR(add_with(cafile, &pem, (time_t)1672531200),
	          "certificate does not chain to a trusted CA: unable to get "
	          "local issuer certificate");
	buf_free(&pem);
}

static void
test_corpus_messages(void)
{
	static const char *const names[] = {
	        "awsdocs-notification-body.json",
	        "awsdocs-subscription-confirmation-body.json",
	        "awsdocs-unsubscribe-confirmation-body.json",
	        "awsdocs-http-post-notification.http",
	        "awsdocs-http-post-subscription-confirmation.http",
	        "awsdocs-http-post-unsubscribe-confirmation.http",
	};
	static const long long stamps[] = {1335920046655LL, 1335473104751LL,
	                                   1335470801581LL};
	struct soar_error err;
	struct sns_certs *c = sns_certs_new(cafile, NULL, &err);
	struct buf text = BUF_INIT, sts = BUF_INIT;
	char path[PATH_LEN];
	struct sns_msg m;

	CHECK(c != NULL);
	if (c == NULL)
		return;
	/* Our key under the documents' URL: their signatures are refused by
	 * the check, not for lack of a certificate. */
	CHECK_INT(sns_certs_add_pem(c, DOC_CERT_URL, leaf_pem.data,
	                            leaf_pem.len, NOW, &err),
	          0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *body;

		CHECK_INT(read_file(corpus(path, names[i]), &text), 0);
		if (text.data == NULL)
			continue;
		body = strstr(text.data, "\n\n");
		body = i >= 3 && body ? body + 2 : text.data;
		CHECK_INT(sns_parse(body, strlen(body), &m, &err), 0);
		CHECK_INT(m.type, (int)(i % 3) + 1);
		CHECK_INT(m.version, 1);
		CHECK_INT(m.timestamp_ms, stamps[i % 3]);
		CHECK_STR(m.signing_cert_url, DOC_CERT_URL);
		if (i % 3 == 0) {
			CHECK_STR(m.subject, "My First Message");
			CHECK_INT(sns_string_to_sign(&m, &sts, &err), 0);
			CHECK_STR(sts.data,
			          "Message\nHello world!\nMessageId\n"
			          "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
			          "Subject\nMy First Message\nTimestamp\n"
			          "2012-05-02T00:54:06.655Z\nTopicArn\n"
			          "arn:aws:sns:us-west-2:123456789012:MyTopic\n"
			          "Type\nNotification\n");
		} else {
			CHECK(m.subject == NULL);
			CHECK(strchr(m.message, '\n') != NULL);
		}
		soar_error_clear(&err);
		CHECK_INT(sns_verify(c, NULL, &m, NOW, &err), -1);
		/* "EXAMPLEw6JRN..." is not base64; the confirmation's
		 * long example is, and does not verify. */
		CHECK_STR(err.code, "signature");
		CHECK_STR(err.message, i % 3 == 1 ? "signature does not verify"
		                                  : "Signature is not base64");
		sns_msg_free(&m);
	}
	buf_free(&text);
	buf_free(&sts);
	sns_certs_free(c);
}

static void
test_cache(void)
{
	struct soar_error err;
	struct sns_certs *c = sns_certs_new(cafile, NULL, &err);
	struct fields f = notification();
	struct buf body = BUF_INIT;
	char urls[SNS_CACHE_SIZE + 2][96];
	struct sns_msg m;
	int i;

	CHECK(c != NULL);
	if (c == NULL)
		return;
	for (i = 0; i < SNS_CACHE_SIZE + 2; i++) {
		snprintf(urls[i], sizeof(urls[i]),
		         "https://sns.us-east-1.amazonaws.com/c%02d.pem", i);
		CHECK_INT(sns_certs_cached(c, urls[i]), 0);
	}
	for (i = 0; i <= SNS_CACHE_SIZE; i++)
		CHECK_INT(sns_certs_add_pem(c, urls[i], leaf_pem.data,
		                            leaf_pem.len, NOW, &err),
		          0);
	/* 17 added: the first is gone, the other 16 stay. */
	CHECK_INT(sns_certs_cached(c, urls[0]), 0);
	for (i = 1; i <= SNS_CACHE_SIZE; i++)
		CHECK_INT(sns_certs_cached(c, urls[i]), 1);
	/* Re-adding a cached URL makes it the newest, evicting none. */
	CHECK_INT(sns_certs_add_pem(c, urls[1], leaf_pem.data, leaf_pem.len,
	                            NOW, &err),
	          0);
	CHECK_INT(sns_certs_cached(c, urls[2]), 1);
	CHECK_INT(sns_certs_add_pem(c, urls[SNS_CACHE_SIZE + 1], leaf_pem.data,
	                            leaf_pem.len, NOW, &err),
	          0);
	CHECK_INT(sns_certs_cached(c, urls[2]), 0);
	CHECK_INT(sns_certs_cached(c, urls[1]), 1);
	CHECK_INT(sns_certs_cached(c, urls[3]), 1);
	/* A cached key verifies without a client; an evicted one needs a
	 * fetch. */
	f.cert_url = urls[5];
	make_body(&body, &f, leaf_key, 2);
	CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
	CHECK_INT(sns_verify(c, NULL, &m, NOW, &err), 0);
	CHECK_INT(sns_verify(c, NULL, &m, NOW + 1, &err), 0);
	/* Once its certificate expires, the entry goes. */
	CHECK_INT(sns_verify(c, NULL, &m, NOW + 400 * DAY, &err), -1);
	CHECK_STR(err.code, "cert");
	CHECK_STR(err.message, "certificate expired");
	CHECK_INT(sns_certs_cached(c, urls[5]), 0);
	sns_msg_free(&m);
	f.cert_url = urls[0];
	make_body(&body, &f, leaf_key, 2);
	CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
	CHECK_INT(sns_verify(c, NULL, &m, NOW, &err), -1);
	CHECK_STR(err.code, "fetch");
	CHECK_STR(err.message,
	          "SigningCertURL not cached and no client to fetch it");
	sns_msg_free(&m);
	/* A refused certificate does not touch the cache, not even the
	 * entry of its URL. */
	CHECK_INT(sns_certs_add_pem(c, urls[3], "garbage", 7, NOW, &err), -1);
	CHECK_INT(sns_certs_cached(c, urls[3]), 1);
	/* Cache keys are checked URLs. */
	CHECK_INT(sns_certs_add_pem(c, "https://evil.example/x.pem",
	                            leaf_pem.data, leaf_pem.len, NOW, &err),
	          -1);
	CHECK_STR(err.code, "url");
	CHECK_INT(sns_certs_cached(c, "https://evil.example/x.pem"), 0);
	CHECK_INT(sns_certs_cached(c, NULL), 0);
	buf_free(&body);
	sns_certs_free(c);
	sns_certs_free(NULL);
}

static void
test_timestamp(void)
{
	static const struct {
		const char *s;
		long long ms;
	} good[] = {
	        {"1970-01-01T00:00:00Z", 0},
	        {"1970-01-01T00:00:00.001Z", 1},
	        {"2012-04-26T20:45:04.751Z", 1335473104751LL},
	        {"2012-05-02T00:54:06.655Z", 1335920046655LL},
	        {"2000-02-29T00:00:00.5Z", 951782400500LL},
	        {"2000-02-29T00:00:00.05Z", 951782400050LL},
	        {"2023-11-14T22:13:20.123456789Z", 1700000000123LL},
	        {"2023-11-14T22:13:20Z", 1700000000000LL},
	        {"2024-12-31T23:59:59.999Z", 1735689599999LL},
	        {"9999-12-31T23:59:59Z", 253402300799000LL},
	};
	static const char *const bad[] = {
	        "",
	        "2012-04-26",
	        "2012-04-26 20:45:04.751Z",
	        "2012-04-26T20:45:04.751",
	        "2012-04-26T20:45:04.751z",
	        "2012-04-26T20:45:04.751+00:00",
	        "2012-04-26T20:45:04.751Zx",
	        "2012-04-26T20:45:04.Z",
	        "2012-04-26T20:45:04.1234567890Z",
	        "2012-04-26T20:45:04,751Z",
	        "2012-4-26T20:45:04.751Z",
	        "2012-04-26T20:45:4.751Z",
	        "+012-04-26T20:45:04Z",
	        "2012-00-26T20:45:04Z",
	        "2012-13-01T00:00:00Z",
	        "2012-04-00T00:00:00Z",
	        "2012-04-31T00:00:00Z",
	        "2001-02-29T00:00:00Z",
	        "1900-02-29T00:00:00Z",
	        "2012-04-26T24:00:00Z",
	        "2012-04-26T20:60:00Z",
	        "2012-04-26T20:45:60Z",
	        "1969-12-31T23:59:59Z",
	        "2012-04-26T2O:45:04Z",
	        " 2012-04-26T20:45:04Z",
	};
	long long ms;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = -1;
		CHECK_INT(sns_timestamp(good[i].s, &ms), 0);
		CHECK_INT(ms, good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(sns_timestamp(bad[i], &ms), -1);
		if (sns_timestamp(bad[i], &ms) == 0)
			fprintf(stdout, "# accepted: %s\n", bad[i]);
	}
	CHECK_INT(sns_timestamp(NULL, &ms), -1);
}

/* The HTTPS stand-in for sns.<region>.amazonaws.com: serves the files of
 * DIR/www, logs each request's path to DIR/log, answers /slow.pem late. */
static const char server_py[] =
        "import http.server, os, ssl, sys, time\n"
        "d = sys.argv[1]\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        with open(os.path.join(d, 'log'), 'a') as f:\n"
        "            f.write(self.path + '\\n')\n"
        "        if self.path == '/slow.pem':\n"
        "            time.sleep(2)\n"
        "        p = os.path.join(d, 'www', self.path.lstrip('/'))\n"
        "        if '/' in self.path[1:] or not os.path.isfile(p):\n"
        "            self.send_response(404)\n"
        "            self.send_header('Content-Length', '0')\n"
        "            self.end_headers()\n"
        "            return\n"
        "        body = open(p, 'rb').read()\n"
        "        self.send_response(203 if 'partial' in p else 200)\n"
        "        self.send_header('Content-Length', str(len(body)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "    def log_message(self, *a):\n"
        "        pass\n"
        "class S(http.server.ThreadingHTTPServer):\n"
        "    daemon_threads = True\n"
        "    def server_bind(self):\n"
        "        self.socket.bind(self.server_address)\n"
        "        self.server_address = self.socket.getsockname()\n"
        "s = S(('127.0.0.1', 0), H)\n"
        "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
        "ctx.load_cert_chain(os.path.join(d, 'server.pem'),\n"
        "                    os.path.join(d, 'server.key'))\n"
        "s.socket = ctx.wrap_socket(s.socket, server_side=True)\n"
        "with open(os.path.join(d, 'port.tmp'), 'w') as f:\n"
        "    f.write(str(s.server_address[1]))\n"
        "os.rename(os.path.join(d, 'port.tmp'), os.path.join(d, 'port'))\n"
        "s.serve_forever()\n";

/* Starts the stand-in; returns its pid and sets *port, or -1. */
static pid_t
server_start(int *port)
{
	char path[PATH_LEN], www[PATH_LEN];
	struct buf b = BUF_INIT;
	X509 *x;
	BIO *bio;
	pid_t pid;
	int ok;

	/* Its TLS certificate: 127.0.0.1, by the test CA. */
	x = make_cert(other_key, "127.0.0.1", "IP:127.0.0.1", ca_cert, ca_key,
	              NOW - DAY, time(NULL) + 365 * DAY, 0);
	put_pem(&b, x);
	ok = write_file(pathf(path, "%s/server.pem", tmpdir), b.data, b.len) ==
	     0;
	buf_clear(&b);
	bio = BIO_new(BIO_s_mem());
	if (bio != NULL && PEM_write_bio_PrivateKey(bio, other_key, NULL, NULL,
	                                            0, NULL, NULL) == 1) {
		char *p;
		long n = BIO_get_mem_data(bio, &p);

		buf_append(&b, p, (size_t)n);
	}
	BIO_free(bio);
	ok = ok && b.data != NULL &&
	     write_file(pathf(path, "%s/server.key", tmpdir), b.data, b.len) ==
	             0;
	buf_free(&b);
	ok = ok && mkdir(pathf(www, "%s/www", tmpdir), 0700) == 0 &&
	     write_file(pathf(path, "%s/good.pem", www), leaf_pem.data,
	                leaf_pem.len) == 0 &&
	     write_file(pathf(path, "%s/other.pem", www), leaf_pem.data,
	                leaf_pem.len) == 0 &&
	     write_file(pathf(path, "%s/partial.pem", www), leaf_pem.data,
	                leaf_pem.len) == 0 &&
	     write_file(pathf(path, "%s/empty.pem", www), "", 0) == 0;
	buf_clear(&b);
	while (b.len <= SNS_MAX_CERT)
		buf_puts(&b, "# padding padding padding padding padding\n");
	ok = ok &&
	     write_file(pathf(path, "%s/big.pem", www), b.data, b.len) == 0;
	buf_free(&b);
	if (!ok)
		return -1;
	if ((pid = fork()) == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, 2);
		execlp("python3", "python3", "-c", server_py, tmpdir,
		       (char *)NULL);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 500; i++) {
		FILE *f;

		usleep(20000);
		if ((f = fopen(pathf(path, "%s/port", tmpdir), "r")) != NULL) {
			ok = fscanf(f, "%d", port) == 1;
			fclose(f);
			if (ok)
				return pid;
		}
	}
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	return -1;
}

/* Counts the requests for path the stand-in logged. */
static int
served(const char *path)
{
	char p[PATH_LEN], line[256];
	FILE *f = fopen(pathf(p, "%s/log", tmpdir), "r");
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		n += strcmp(line, path) == 0;
	}
	fclose(f);
	return n;
}

static void
count_done(void *arg, const struct http_response *resp,
           const struct soar_error *err)
{
	(void)resp;
	(void)err;
	++*(int *)arg;
}

static void
test_fetch(void)
{
	char env_ca[PATH_LEN + 32], host[64], url[128], path[PATH_LEN];
	const char *env[] = {env_ca, NULL};
	struct http_config cfg;
	struct soar_error err;
	struct sns_certs *c = NULL;
	struct http *h = NULL, *h_short = NULL;
	struct buf body = BUF_INIT;
	struct sns_msg m;
	int port = 0;
	pid_t pid = server_start(&port);

	CHECK(pid > 0);
	if (pid <= 0)
		return;
	snprintf(env_ca, sizeof(env_ca), "SOAR_CA_BUNDLE=%s", cafile);
	snprintf(host, sizeof(host), "127.0.0.1:%d", port);
	http_config_defaults(&cfg);
	cfg.envp = env;
	cfg.retries = 0;
	cfg.connect_timeout_ms = 10000;
	cfg.timeout_ms = 10000;
	h = http_new(&cfg, &err);
	cfg.timeout_ms = 500;
	h_short = http_new(&cfg, &err);
	c = sns_certs_new(cafile, host, &err);
	CHECK(h != NULL && h_short != NULL && c != NULL);
	if (h == NULL || h_short == NULL || c == NULL)
		goto out;
	/* Fetched once, then served from the cache. */
	snprintf(url, sizeof(url), "https://%s/good.pem", host);
	CHECK_INT(sns_certs_fetch(c, h, url, NOW, &err), 0);
	CHECK_INT(sns_certs_cached(c, url), 1);
	CHECK_INT(served("/good.pem"), 1);
	{
		struct fields f = notification();

		snprintf(url, sizeof(url), "https://%s/other.pem", host);
		f.cert_url = url;
		f.unsubscribe_url = NULL;
		make_body(&body, &f, leaf_key, 2);
		CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
		CHECK_INT(sns_verify(c, h, &m, NOW, &err), 0);
		CHECK_INT(sns_verify(c, h, &m, NOW, &err), 0);
		CHECK_INT(served("/other.pem"), 1);
		/* An AWS URL is not the override's host: no fetch. */
		sns_msg_free(&m);
		f.cert_url = CERT_URL;
		make_body(&body, &f, leaf_key, 2);
		CHECK_INT(sns_parse(body.data, body.len, &m, &err), 0);
		CHECK_INT(sns_verify(c, h, &m, NOW, &err), -1);
		CHECK_STR(err.code, "url");
		sns_msg_free(&m);
	}
	/* Failures. */
	snprintf(url, sizeof(url), "https://%s/missing.pem", host);
	CHECK_INT(sns_certs_fetch(c, h, url, NOW, &err), -1);
	CHECK_STR(err.code, "fetch");
	CHECK_INT(err.status, 404);
	CHECK_INT(served("/missing.pem"), 1);
	snprintf(url, sizeof(url), "https://%s/big.pem", host);
	CHECK_INT(sns_certs_fetch(c, h, url, NOW, &err), -1);
	CHECK_STR(err.code, "fetch");
	CHECK(strstr(err.message, "larger than 65536 bytes") != NULL);
	snprintf(url, sizeof(url), "https://%s/partial.pem", host);
	CHECK_INT(sns_certs_fetch(c, h, url, NOW, &err), -1);
	CHECK_STR(err.code, "fetch");
	CHECK_STR(err.message, "URL fetch: HTTP 203");
	CHECK_INT(err.status, 203);
	snprintf(url, sizeof(url), "https://%s/empty.pem", host);
	CHECK_INT(sns_certs_fetch(c, h, url, NOW, &err), -1);
	CHECK_STR(err.code, "cert");
	snprintf(url, sizeof(url), "https://%s/slow.pem", host);
	CHECK_INT(sns_certs_fetch(c, h_short, url, NOW, &err), -1);
	CHECK_STR(err.code, "fetch");
	CHECK(strstr(err.message, "(timeout)") != NULL);
	CHECK_INT(sns_certs_cached(c, url), 0);
	/* Another request on the client does not hold the fetch up. */
	{
		struct http_request req = {
		        .method = "GET", .url = url, .idempotent = 1};
		int other_done = 0;

		CHECK_INT(http_submit(h, &req, NULL, count_done, &other_done),
		          0);
		snprintf(url, sizeof(url), "https://%s/third.pem", host);
		CHECK_INT(sns_certs_fetch(c, h, url, NOW, &err), -1);
		CHECK_INT(err.status, 404);
		CHECK_INT(other_done, 0);
		CHECK_INT(http_pending(h), 1);
		while (http_poll(h, 1000, -1) > 0)
			;
		CHECK_INT(other_done, 1);
	}
	/* The fetched certificate is checked like any other. */
	snprintf(url, sizeof(url), "https://%s/good.pem", host);
	CHECK_INT(sns_certs_fetch(c, h, url, NOW + 400 * DAY, &err), -1);
	CHECK_STR(err.message, "certificate expired");
	CHECK_INT(served("/good.pem"), 2);
	/* Refused before any request. */
	snprintf(url, sizeof(url), "https://%s/../good.pem", host);
	CHECK_INT(sns_certs_fetch(c, h, url, NOW, &err), -1);
	CHECK_STR(err.code, "url");
	snprintf(url, sizeof(url), "http://%s/good.pem", host);
	CHECK_INT(sns_certs_fetch(c, h, url, NOW, &err), -1);
	CHECK_STR(err.code, "url");
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/good.pem", port + 1);
	CHECK_INT(sns_certs_fetch(c, h, url, NOW, &err), -1);
	CHECK_STR(err.code, "url");
	CHECK_INT(served("/good.pem"), 2);
	CHECK_INT(served("/../good.pem"), 0);
	/* TLS: a server the trust store does not know. */
	{
		const char *noenv[] = {"SOAR_CA_BUNDLE=/nonexistent/ca.pem",
		                       NULL};
		struct http *h2;

		cfg.envp = noenv;
		h2 = http_new(&cfg, &err);
		CHECK(h2 != NULL);
		if (h2 != NULL) {
			snprintf(url, sizeof(url), "https://%s/other.pem",
			         host);
			CHECK_INT(sns_certs_fetch(c, h2, url, NOW, &err), -1);
			CHECK_STR(err.code, "fetch");
			CHECK_INT(err.status, 0);
			http_free(h2);
		}
	}
out:
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(pathf(path, "%s/log", tmpdir));
	unlink(pathf(path, "%s/port", tmpdir));
	buf_free(&body);
	http_free(h);
	http_free(h_short);
	sns_certs_free(c);
}

/* Makes the test PKI and writes the CA to a file.  Returns 0 or -1. */
static int
setup(void)
{
	struct buf b = BUF_INIT;
	int rc;

	if (mkdtemp(memcpy(tmpdir, "/tmp/soar-test-sns-XXXXXX", 26)) == NULL)
		return -1;
	ca_key = EVP_EC_gen("P-256");
	leaf_key = EVP_RSA_gen(2048);
	other_key = EVP_EC_gen("P-256");
	short_key = EVP_RSA_gen(1024);
	if (ca_key == NULL || leaf_key == NULL || other_key == NULL ||
	    short_key == NULL)
		return -1;
	ca_cert = make_cert(ca_key, "soarutils test CA", NULL, NULL, NULL,
	                    NOW - 1000 * DAY, time(NULL) + 1000 * DAY, 1);
	if (ca_cert == NULL)
		return -1;
	X509_up_ref(ca_cert);
	put_pem(&b, ca_cert);
	rc = write_file(pathf(cafile, "%s/ca.pem", tmpdir), b.data, b.len);
	buf_free(&b);
	leaf_cert(&leaf_pem, leaf_key, SNS_CERT_NAME, "DNS:" SNS_CERT_NAME,
	          NOW - 30 * DAY, NOW + 365 * DAY);
	return rc == 0 && leaf_pem.data != NULL ? 0 : -1;
}

static void
teardown(void)
{
	static const char *const files[] = {
	        "ca.pem",      "inter.pem",     "server.pem",
	        "server.key",  "www/good.pem",  "www/other.pem",
	        "www/big.pem", "www/empty.pem", "www/partial.pem",
	};
	char path[PATH_LEN];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(pathf(path, "%s/%s", tmpdir, files[i]));
	rmdir(pathf(path, "%s/www", tmpdir));
	rmdir(tmpdir);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(leaf_key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(short_key);
	X509_free(ca_cert);
	buf_free(&leaf_pem);
}

/* Where an untrusted issuer may be fetched from: AWS's certificate host,
 * or the test host. */
static void
test_issuer_url(void)
{
	static const char *const good[] = {
	        "http://crt.sca1b.amazontrust.com/sca1b.crt",
	        "https://crt.r2m02.amazontrust.com/r2m02.cer",
	};
	static const char *const bad[] = {
	        "http://amazontrust.com/x.crt",
	        "http://crt.sca1b.amazontrust.com.evil.example/x.crt",
	        "http://crt.sca1b.amazontrust.com@evil.example/x.crt",
	        "http://evil.example/crt.sca1b.amazontrust.com/x.crt",
	        "http://crt.sca1b.amazontrust.com:8080/x.crt",
	        "http://crt.sca1b.evilamazontrust.com/x.crt",
	        "ftp://crt.sca1b.amazontrust.com/x.crt",
	        "http://CRT.sca1b.amazontrust.com/x.crt",
	        "http://crt.sca1b.amazontrust.com",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK(sns_issuer_url_ok(NULL, good[i]) == 1);
		CHECK(sns_issuer_url_ok("127.0.0.1:8443", good[i]) == 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(sns_issuer_url_ok(NULL, bad[i]) == 0);
	CHECK(sns_issuer_url_ok("127.0.0.1:8443",
	                        "https://127.0.0.1:8443/inter.pem") == 1);
	CHECK(sns_issuer_url_ok("127.0.0.1:8443",
	                        "http://127.0.0.1:8443/inter.pem") == 0);
	CHECK(sns_issuer_url_ok("127.0.0.1:8443",
	                        "https://127.0.0.1:84430/inter.pem") == 0);
	CHECK(sns_issuer_url_ok("127.0.0.1:8443",
	                        "https://127.0.0.1:8443@evil/inter.pem") == 0);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (setup() < 0) {
		printf("not ok 1 - the test PKI could not be made\n");
		teardown();
		return 1;
	}
	UNIT_RUN(test_v1_and_v2);
	UNIT_RUN(test_flipped_bytes);
	UNIT_RUN(test_subject);
	UNIT_RUN(test_escapes);
	UNIT_RUN(test_confirmations);
	UNIT_RUN(test_lambda_keys);
	UNIT_RUN(test_parse_rejects);
	UNIT_RUN(test_signature_version);
	UNIT_RUN(test_bad_base64);
	UNIT_RUN(test_urls);
	UNIT_RUN(test_urls_before_fetch);
	UNIT_RUN(test_cert_checks);
	UNIT_RUN(test_corpus_cert);
	UNIT_RUN(test_corpus_messages);
	UNIT_RUN(test_cache);
	UNIT_RUN(test_timestamp);
	UNIT_RUN(test_fetch);
	UNIT_RUN(test_issuer_url);
	teardown();
	return UNIT_END();
}
