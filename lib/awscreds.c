/* awscreds.c: AWS credentials, region and endpoints, as the AWS CLI finds
 * them. */
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <expat.h>
#include <jv.h>

#include "aws.h"
#include "awscreds.h"
#include "buf.h"
#include "env.h"
#include "error.h"
#include "http.h"
#include "log.h"
#include "sigv4.h"

extern char **environ;

#define FILE_MAX     (1024 * 1024) /* largest credentials/config file */
#define PROC_OUT_MAX (64 * 1024)   /* largest credential_process output */
#define PROC_ERR_MAX 512           /* stderr kept for the error message */
#define TOKEN_MAX    (16 * 1024)   /* largest container/IMDS token */
#define XML_TEXT_MAX (64 * 1024)   /* largest text of one STS element */
#define CHAIN_MAX    16            /* source_profile links followed */
#define REFRESH_SECS 300           /* fetch again this long before expiry */
#define RETRY_SECS   30            /* least time between two fetches */
#define ECS_BASE     "http://169.254.170.2"
#define IMDS_BASE    "http://169.254.169.254"
#define IMDS_BASE_V6 "http://[fd00:ec2::254]"
#define STS_GLOBAL   "https://sts.amazonaws.com"
#define DEFAULT_UA   "soarutils"

/* One "key = value" line of an INI file; keys are lower-cased, as the CLI
 * reads them.  A value continued on indented lines holds them after a
 * '\n' (a nested sub-section such as "s3 =" starts with one). */
struct ini_kv {
	char *key;
	char *val;
};

struct ini_sec {
	char *name;    /* between the brackets, trimmed */
	char *profile; /* the profile it holds, or NULL (sso-session ...) */
	struct ini_kv *kv;
	size_t nkv;
};

struct ini {
	char *path; /* the file read, or NULL when none was looked for */
	struct ini_sec *sec;
	size_t nsec;
};

enum { F_CREDS, F_CONFIG, F_N };

/* Credentials owned by this module: wiped when freed. */
struct creds {
	char *ak;
	char *sk;
	char *token;    /* or NULL */
	time_t expires; /* 0: never */
};

/* Each kind of credential request has its own client, because lib/http
 * timeouts and retries are per client: IMDS answers within a second or
 * is not there, STS may be slow. */
enum net { NET_IMDS, NET_CONTAINER, NET_STS, NET_N };

/* A role to assume and where it was configured. */
struct role {
	const char *arn;
	const char *external_id;  /* or NULL */
	const char *session_name; /* NULL: soarutils-<unix time> */
	long duration;            /* 0: 3600 */
	const char *profile;      /* for messages; NULL for --role-arn */
};

/* The roles a profile's role_arn leads to and where the first
 * credentials come from. */
struct plan {
	const char *roles[CHAIN_MAX]; /* profiles, outermost role first */
	size_t nroles;
	const char *base;        /* profile whose own keys start the chain */
	const char *cred_source; /* or this credential_source */
};

struct awscreds {
	const char *const *envp; /* borrowed */
	time_t (*now)(void);
	const struct log *log; /* borrowed */
	char *user_agent;
	char *home;
	char *profile;
	int explicit_profile; /* --profile given: environment keys skipped */
	char *region;
	struct role role; /* --role-arn, strings owned */
	char *role_arn;
	char *external_id;
	char *session_name;
	struct ini files[F_N];
	int ignore_endpoints;
	long imds_timeout_ms;
	int imds_attempts;
	char *ecs_base;
	struct http *net[NET_N];
	struct creds cur;
	int have;
	time_t tried_at; /* last refresh attempt */
	const char *source;
	char desc[256]; /* where cur came from, for log lines */
};

/* Wipes and frees a NUL-terminated secret (NULL is accepted). */
static void
wipe_str(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void
creds_free(struct creds *c)
{
	wipe_str(c->ak);
	wipe_str(c->sk);
	wipe_str(c->token);
	memset(c, 0, sizeof(*c));
}

/* Returns an owned copy of p[0..n), or NULL on ENOMEM. */
static char *
copy(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s != NULL) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* Copies s (NULL stays NULL) into *out.  Returns 0 or -1 on ENOMEM. */
static int
dup_opt(const char *s, char **out)
{
	*out = NULL;
	return s == NULL || (*out = strdup(s)) != NULL ? 0 : -1;
}

/* Fills c with copies.  Returns 0, or -1 with err set (ENOMEM). */
static int
creds_set(struct creds *c, const char *ak, const char *sk, const char *token,
          time_t expires, struct soar_error *err)
{
	memset(c, 0, sizeof(*c));
	if ((c->ak = strdup(ak)) == NULL || (c->sk = strdup(sk)) == NULL ||
	    dup_opt(token != NULL && *token != '\0' ? token : NULL,
	            &c->token) != 0) {
		creds_free(c);
		soar_error_set(err, "nomem", "out of memory");
		return -1;
	}
	c->expires = expires;
	return 0;
}

static int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

static time_t
ac_now(const struct awscreds *ac)
{
	return ac->now != NULL ? ac->now() : time(NULL);
}

/* Returns s, or NULL when it is NULL or empty. */
static const char *
nonempty(const char *s)
{
	return s != NULL && *s != '\0' ? s : NULL;
}

/* Returns the variable's value, or NULL when it is unset or empty. */
static const char *
env(const struct awscreds *ac, const char *name)
{
	const char *v = env_get(ac->envp, name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* Returns 1 for "true" in any case, as the CLI reads boolean settings. */
static int
is_true(const char *v)
{
	return v != NULL && strcasecmp(v, "true") == 0;
}

/* Returns 1 when url starts with http:// or https:// and has a host. */
static int
has_scheme(const char *url)
{
	size_t n = strncasecmp(url, "https://", 8) == 0  ? 8
	           : strncasecmp(url, "http://", 7) == 0 ? 7
	                                                 : 0;

	return n > 0 && url[n] != '\0' && url[n] != '/';
}

/* ---- INI files ---------------------------------------------------- */

static void
ini_free(struct ini *f)
{
	for (size_t i = 0; i < f->nsec; i++) {
		struct ini_sec *s = &f->sec[i];

		for (size_t j = 0; j < s->nkv; j++) {
			free(s->kv[j].key);
			wipe_str(s->kv[j].val);
		}
		free(s->kv);
		free(s->name);
		free(s->profile);
	}
	free(f->sec);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

/* Sets *out to the profile a section holds: in the credentials file every
 * section is one; in the config file "[default]" and "[profile NAME]"
 * are, other sections ("[sso-session x]", "[services x]") are not.
 * Returns 0, or -1 on ENOMEM. */
static int
section_profile(const char *name, int config, char **out)
{
	const char *p;

	*out = NULL;
	if (!config || strcmp(name, "default") == 0)
		return dup_opt(name, out);
	if (strncmp(name, "profile", 7) != 0 || !is_blank(name[7]))
		return 0;
	for (p = name + 8; is_blank(*p); p++)
		;
	if (*p == '\0' || strpbrk(p, " \t") != NULL)
		return 0;
	return dup_opt(p, out);
}

/* Adds the section named p[0..q) (blanks around it trimmed) to f.
 * Returns 0, or -1 with err set (a repeated section, ENOMEM). */
static int
ini_add_section(struct ini *f, const char *p, const char *q, int config,
                size_t lineno, struct soar_error *err)
{
	struct ini_sec *s;
	void *grown;

	while (p < q && is_blank(*p))
		p++;
	while (q > p && is_blank(q[-1]))
		q--;
	for (size_t i = 0; i < f->nsec; i++)
		if (strlen(f->sec[i].name) == (size_t)(q - p) &&
		    memcmp(f->sec[i].name, p, (size_t)(q - p)) == 0) {
			soar_error_set(err, "config",
			               "%s:%zu: section repeated", f->path,
			               lineno);
			return -1;
		}
	if ((grown = realloc(f->sec, (f->nsec + 1) * sizeof(*f->sec))) == NULL)
		goto nomem;
	f->sec = grown;
	s = &f->sec[f->nsec++];
	memset(s, 0, sizeof(*s));
	if ((s->name = copy(p, (size_t)(q - p))) != NULL &&
	    section_profile(s->name, config, &s->profile) == 0)
		return 0;
nomem:
	soar_error_set(err, "nomem", "out of memory");
	return -1;
}

/* Adds "key = value" (the line p[0..q), its delimiter at d) to s, the key
 * lower-cased.  Returns the entry, or NULL with err set (no key, a
 * repeated key, ENOMEM). */
static struct ini_kv *
ini_add_key(const struct ini *f, struct ini_sec *s, const char *p,
            const char *d, const char *q, size_t lineno, struct soar_error *err)
{
	const char *ke = d, *vs = d + 1;
	struct ini_kv *kv;
	void *grown;

	while (ke > p && is_blank(ke[-1]))
		ke--;
	while (vs < q && is_blank(*vs))
		vs++;
	if (ke == p) {
		soar_error_set(err, "config", "%s:%zu: a value without a key",
		               f->path, lineno);
		return NULL;
	}
	for (size_t j = 0; j < s->nkv; j++)
		if (strlen(s->kv[j].key) == (size_t)(ke - p) &&
		    strncasecmp(s->kv[j].key, p, (size_t)(ke - p)) == 0) {
			soar_error_set(err, "config",
			               "%s:%zu: key repeated in [%s]", f->path,
			               lineno, s->name);
			return NULL;
		}
	if ((grown = realloc(s->kv, (s->nkv + 1) * sizeof(*s->kv))) == NULL)
		goto nomem;
	s->kv = grown;
	kv = &s->kv[s->nkv++];
	memset(kv, 0, sizeof(*kv));
	if ((kv->key = copy(p, (size_t)(ke - p))) == NULL ||
	    (kv->val = copy(vs, (size_t)(q - vs))) == NULL)
		goto nomem;
	for (char *k = kv->key; *k != '\0'; k++)
		if (*k >= 'A' && *k <= 'Z')
			*k = (char)(*k - 'A' + 'a');
	return kv;
nomem:
	soar_error_set(err, "nomem", "out of memory");
	return NULL;
}

/* Appends a continuation line p[0..q) to kv's value, after a newline, as
 * configparser does.  Returns 0, or -1 on ENOMEM. */
static int
ini_continue(struct ini_kv *kv, const char *p, const char *q)
{
	size_t vl = strlen(kv->val), n = (size_t)(q - p);
	char *v = realloc(kv->val, vl + 1 + n + 1);

	if (v == NULL)
		return -1;
	v[vl] = '\n';
	memcpy(v + vl + 1, p, n);
	v[vl + 1 + n] = '\0';
	kv->val = v;
	return 0;
}

/* Parses b[0..n) read from f->path as Python's configparser does for the
 * CLI: "[section]" lines, "key = value" or "key: value" with blanks around
 * the delimiter and keys lower-cased, whole-line comments starting with
 * '#' or ';', lines indented deeper than their key continuing its value,
 * and a duplicate section or key refused.  Messages name the line, never
 * its text: it may hold a key.  Returns 0, or -1 with err set. */
static int
ini_parse(struct ini *f, const char *b, size_t n, int config,
          struct soar_error *err)
{
	const char *line = b, *end = b + n, *eol, *p, *q, *d;
	size_t lineno = 0, indent, key_indent = 0;
	struct ini_kv *kv = NULL;

	if (memchr(b, '\0', n) != NULL) {
		soar_error_set(err, "config", "%s: holds a NUL byte", f->path);
		return -1;
	}
	/* A UTF-8 byte order mark (Windows editors) is not part of a line. */
	if (n >= 3 && memcmp(b, "\xef\xbb\xbf", 3) == 0)
		line += 3;
	for (; line < end; line = eol < end ? eol + 1 : end) {
		lineno++;
		if ((eol = memchr(line, '\n', (size_t)(end - line))) == NULL)
			eol = end;
		for (p = line; p < eol && is_blank(*p); p++)
			;
		indent = (size_t)(p - line);
		for (q = eol; q > p && (is_blank(q[-1]) || q[-1] == '\r'); q--)
			;
		if (p == q || *p == '#' || *p == ';')
			continue;
		if (kv != NULL && indent > key_indent) {
			if (ini_continue(kv, p, q) != 0) {
				soar_error_set(err, "nomem", "out of memory");
				return -1;
			}
			continue;
		}
		kv = NULL;
		if (*p == '[') {
			/* configparser takes up to the last ']' and ignores
			 * what follows it. */
			d = memrchr(p, ']', (size_t)(q - p));
			if (d == NULL || d - p < 2)
				goto bad;
			if (ini_add_section(f, p + 1, d, config, lineno, err))
				return -1;
			continue;
		}
		if (f->nsec == 0) {
			soar_error_set(err, "config",
			               "%s:%zu: a key before any [section]",
			               f->path, lineno);
			return -1;
		}
		for (d = p; d < q && *d != '=' && *d != ':'; d++)
			;
		if (d == q)
			goto bad;
		kv = ini_add_key(f, &f->sec[f->nsec - 1], p, d, q, lineno, err);
		if (kv == NULL)
			return -1;
		key_indent = indent;
	}
	return 0;
bad:
	soar_error_set(err, "config",
	               "%s:%zu: expected [section], key = value or a comment",
	               f->path, lineno);
	return -1;
}

/* Reads fd (at most max bytes) into *out, NUL-terminated; wipe it.
 * Returns 0, -1 on a read error or ENOMEM (errno set), or -2 when the
 * data is larger than max. */
static int
read_fd(int fd, size_t max, char **out, size_t *len)
{
	char *b = malloc(max + 1);
	size_t n = 0;
	ssize_t r;

	if (b == NULL)
		return -1;
	for (;;) {
		r = read(fd, b + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n > max) {
			explicit_bzero(b, n);
			free(b);
			return -2;
		}
	}
	if (r < 0) {
		int e = errno;

		explicit_bzero(b, n);
		free(b);
		errno = e;
		return -1;
	}
	b[n] = '\0';
	*out = b;
	*len = n;
	return 0;
}

/* Opens path as a regular file (never a FIFO that would hang us) and reads
 * it.  Returns 0 with *out owned, 1 when it does not exist, or -1 with err
 * set (code "config"). */
static int
read_file(const char *path, size_t max, char **out, size_t *len,
          struct soar_error *err)
{
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 1;
		soar_error_set(err, "config", "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		soar_error_set(err, "config", "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	rc = read_fd(fd, max, out, len);
	close(fd);
	if (rc == -2)
		soar_error_set(err, "config", "%s: larger than %zu bytes", path,
		               max);
	else if (rc != 0)
		soar_error_set(err, "config", "%s: %s", path, strerror(errno));
	return rc == 0 ? 0 : -1;
}

/* Loads the file into f: a missing file is an empty one, as for the CLI.
 * Takes path (owned).  Returns 0 or -1 with err set. */
static int
ini_load(struct ini *f, char *path, int config, struct soar_error *err)
{
	char *b;
	size_t n;
	int rc;

	f->path = path;
	if (path == NULL)
		return 0;
	rc = read_file(path, FILE_MAX, &b, &n, err);
	if (rc != 0)
		return rc > 0 ? 0 : -1;
	rc = ini_parse(f, b, n, config, err);
	explicit_bzero(b, n);
	free(b);
	return rc;
}

/* Returns the last section holding profile, or NULL. */
static const struct ini_sec *
ini_find(const struct ini *f, const char *profile)
{
	for (size_t i = f->nsec; i-- > 0;)
		if (f->sec[i].profile != NULL &&
		    strcmp(f->sec[i].profile, profile) == 0)
			return &f->sec[i];
	return NULL;
}

/* Returns a non-empty value of key in s, or NULL. */
static const char *
sec_get(const struct ini_sec *s, const char *key)
{
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < s->nkv; i++)
		if (strcmp(s->kv[i].key, key) == 0)
			return s->kv[i].val[0] != '\0' ? s->kv[i].val : NULL;
	return NULL;
}

/* A profile setting: the credentials file wins over the config file, as
 * in the CLI's merged view of both. */
static const char *
prof_get(const struct awscreds *ac, const char *profile, const char *key)
{
	const char *v = sec_get(ini_find(&ac->files[F_CREDS], profile), key);

	return v != NULL
	               ? v
	               : sec_get(ini_find(&ac->files[F_CONFIG], profile), key);
}

static int
prof_exists(const struct awscreds *ac, const char *profile)
{
	return ini_find(&ac->files[F_CREDS], profile) != NULL ||
	       ini_find(&ac->files[F_CONFIG], profile) != NULL;
}

/* Finds "key = value" in a nested value ("\nkey = value\n...").  Returns
 * an owned copy, NULL when absent, or NULL with *nomem set. */
static char *
nested_get(const char *val, const char *key, int *nomem)
{
	size_t kl = strlen(key);
	const char *p = val, *e, *v;

	*nomem = 0;
	while (p != NULL && *p != '\0') {
		if (*p == '\n')
			p++;
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		if ((size_t)(e - p) > kl && strncasecmp(p, key, kl) == 0) {
			for (v = p + kl; v < e && is_blank(*v); v++)
				;
			if (v < e && (*v == '=' || *v == ':')) {
				for (v++; v < e && is_blank(*v); v++)
					;
				char *s = copy(v, (size_t)(e - v));

				*nomem = s == NULL;
				return s;
			}
		}
		p = e;
	}
	return NULL;
}

/* Expands a leading "~" or "~/" with home.  Returns an owned path, or NULL
 * (no home to expand with, or ENOMEM with *nomem set). */
static char *
expand_path(const char *path, const char *home, int *nomem)
{
	struct buf b = BUF_INIT;
	int rc;

	*nomem = 0;
	if (path[0] == '~' && (path[1] == '\0' || path[1] == '/')) {
		if (home == NULL || home[0] == '\0')
			return NULL;
		rc = buf_printf(&b, "%s%s", home, path + 1);
	} else {
		rc = buf_puts(&b, path);
	}
	if (rc != 0) {
		buf_free(&b);
		*nomem = 1;
		return NULL;
	}
	return b.data;
}

/* ---- times -------------------------------------------------------- */

static int
digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

/* Parses an RFC 3339 time ("2025-01-17T09:00:00Z", fractions and a
 * numeric offset allowed) into *out.  Returns 0 or -1. */
static int
parse_time(const char *s, time_t *out)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
	const char *p = s;
	time_t t;

	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) ||
	    *p++ != '-' || digits(&p, 2, &d) ||
	    (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) ||
	    *p++ != ':' || digits(&p, 2, &se))
		return -1;
	if (*p == '.') {
		if (*++p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (digits(&p, 2, &oh))
			return -1;
		if (*p == ':')
			p++;
		if (digits(&p, 2, &om))
			return -1;
	} else {
		return -1;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || se > 60 || oh > 23 || om > 59)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*out = t - (time_t)sign * (oh * 3600 + om * 60);
	return 0;
}

/* ---- HTTP --------------------------------------------------------- */

/* What one blocking request got. */
/* The client for one kind of request, made on first use. */
static struct http *
net_client(struct awscreds *ac, enum net kind, struct soar_error *err)
{
	struct http_config c;

	if (ac->net[kind] != NULL)
		return ac->net[kind];
	http_config_defaults(&c);
	c.jobs = 1;
	c.log = ac->log;
	c.envp = ac->envp;
	c.user_agent = ac->user_agent;
	c.max_body = 64 * 1024;
	switch (kind) {
	case NET_IMDS:
		/* The CLI's defaults: AWS_METADATA_SERVICE_TIMEOUT (1 s) for
		 * connecting and answering, AWS_METADATA_SERVICE_NUM_ATTEMPTS
		 * (1) attempts. */
		c.connect_timeout_ms = ac->imds_timeout_ms;
		c.timeout_ms = ac->imds_timeout_ms;
		c.retries = ac->imds_attempts - 1;
		c.backoff_base_ms = 100;
		c.backoff_cap_ms = 1000;
		c.max_wait_ms = 2000;
		break;
	case NET_CONTAINER:
		/* The CLI waits 2 s and makes 3 attempts a second apart. */
		c.connect_timeout_ms = 2000;
		c.timeout_ms = 2000;
		c.retries = 2;
		c.backoff_base_ms = 1000;
		c.backoff_cap_ms = 1000;
		c.max_wait_ms = 3000;
		break;
	default:
		c.retries = 2; /* the SDKs' "standard" mode: 3 attempts */
		c.max_body = 1024 * 1024;
		break;
	}
	ac->net[kind] = http_new(&c, err);
	return ac->net[kind];
}

/* Sends req and waits for its answer.  Returns 0 on a 2xx answer, or -1
 * with err set (from lib/http; f->resp tells more).  Release f with
 * http_reply_free() either way. */
static int
fetch(struct awscreds *ac, enum net kind, const struct http_request *req,
      http_retry_fn retry, struct http_reply *f, struct soar_error *err)
{
	struct http *h;

	memset(f, 0, sizeof(*f));
	if ((h = net_client(ac, kind, err)) == NULL)
		return -1;
	if (http_fetch(h, req, retry, f) < 0) {
		*err = f->err;
		return -1;
	}
	return 0;
}

/* ---- JSON answers ------------------------------------------------- */

/* Returns the string member key of obj (borrowed from obj), or NULL. */
static const char *
jstr(jv obj, const char *key)
{
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	const char *s = NULL;

	/* obj keeps its own reference, so the string outlives v. */
	if (jv_get_kind(v) == JV_KIND_STRING)
		s = jv_string_value(v);
	jv_free(v);
	return s;
}

/* Reads credentials from a JSON answer (credential_process, container,
 * IMDS): AccessKeyId, SecretAccessKey, token_key, Expiration.  With
 * process set, Version must be 1.  what names the source in messages.
 * Returns 0, or -1 with err set (code "credentials"). */
static int
json_creds(const char *what, const struct buf *body, const char *token_key,
           int process, struct creds *out, struct soar_error *err)
{
	const char *ak, *sk, *code, *exp;
	time_t t = 0;
	jv v, ver;
	int rc = -1;

	if (body->len == 0 || body->len > INT_MAX) {
		soar_error_set(err, "credentials", "%s: empty answer", what);
		return -1;
	}
	/* libjq's parse error quotes the text, which holds secrets: only
	 * the fact is reported. */
	v = jv_parse_sized(body->data, (int)body->len);
	if (jv_get_kind(v) != JV_KIND_OBJECT) {
		soar_error_set(err, "credentials",
		               "%s: the answer is not a JSON object", what);
		jv_free(v);
		return -1;
	}
	if (process) {
		ver = jv_object_get(jv_copy(v), jv_string("Version"));
		if (jv_get_kind(ver) != JV_KIND_NUMBER ||
		    jv_number_value(ver) != 1) {
			soar_error_set(err, "credentials",
			               "%s: Version is not 1", what);
			jv_free(ver);
			goto out;
		}
		jv_free(ver);
	}
	code = jstr(v, "Code");
	if (code != NULL && strcmp(code, "Success") != 0) {
		const char *msg = jstr(v, "Message");

		soar_error_set(err, "credentials", "%s: %.64s%s%.200s", what,
		               code, msg ? ": " : "", msg ? msg : "");
		goto out;
	}
	ak = jstr(v, "AccessKeyId");
	sk = jstr(v, "SecretAccessKey");
	exp = jstr(v, "Expiration");
	if (ak == NULL || sk == NULL || *ak == '\0' || *sk == '\0') {
		soar_error_set(err, "credentials",
		               "%s: no AccessKeyId and SecretAccessKey in the"
		               " answer",
		               what);
		goto out;
	}
	if (exp != NULL && parse_time(exp, &t) != 0) {
		soar_error_set(
		        err, "credentials",
		        "%s: Expiration \"%.40s\" is not an RFC 3339 time",
		        what, exp);
		goto out;
	}
	rc = creds_set(out, ak, sk, jstr(v, token_key), t, err);
out:
	jv_free(v);
	return rc;
}

/* ---- environment and files ---------------------------------------- */

/* Returns 1 with *out filled, 0 when the variables are not set, or -1
 * (one key without the other: code "config"). */
static int
from_env(struct awscreds *ac, struct creds *out, struct soar_error *err)
{
	const char *ak = env(ac, "AWS_ACCESS_KEY_ID");
	const char *sk = env(ac, "AWS_SECRET_ACCESS_KEY");
	const char *tok = env(ac, "AWS_SESSION_TOKEN");

	if (ak == NULL && sk == NULL)
		return 0;
	if (ak == NULL || sk == NULL) {
		soar_error_set(
		        err, "config", "%s is set but %s is not",
		        ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		        ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -1;
	}
	if (tok == NULL)
		tok = env(ac, "AWS_SECURITY_TOKEN");
	return creds_set(out, ak, sk, tok, 0, err) == 0 ? 1 : -1;
}

/* Static keys of profile in one file.  Returns 1, 0 when it has none, or
 * -1 (one key without the other: code "config"). */
static int
from_file(struct awscreds *ac, int which, const char *profile,
          struct creds *out, struct soar_error *err)
{
	const struct ini_sec *s = ini_find(&ac->files[which], profile);
	const char *ak = sec_get(s, "aws_access_key_id");
	const char *sk = sec_get(s, "aws_secret_access_key");
	const char *tok = sec_get(s, "aws_session_token");

	if (ak == NULL && sk == NULL)
		return 0;
	if (ak == NULL || sk == NULL) {
		soar_error_set(
		        err, "config", "%s: profile %s has %s but no %s",
		        ac->files[which].path, profile,
		        ak ? "aws_access_key_id" : "aws_secret_access_key",
		        ak ? "aws_secret_access_key" : "aws_access_key_id");
		return -1;
	}
	if (tok == NULL)
		tok = sec_get(s, "aws_security_token");
	return creds_set(out, ak, sk, tok, 0, err) == 0 ? 1 : -1;
}

/* ---- credential_process ------------------------------------------- */

/* Starts /bin/sh -c cmd with stdin from /dev/null (stdin is the tool's
 * event stream), stdout and stderr to outfd and errfd, and
 * SIGPIPE and SIGXFSZ back to their defaults (tools ignore them).  Returns
 * 0 with *pid, or an errno value. */
static int
spawn_sh(const struct awscreds *ac, const char *cmd, int outfd, int errfd,
         pid_t *pid)
{
	char sh[] = "sh", dash_c[] = "-c";
	char *argv[] = {sh, dash_c, (char *)cmd, NULL};
	char *const *envp = ac->envp ? (char *const *)ac->envp : environ;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	sigset_t none, dfl;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, outfd, 1);
	posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	posix_spawnattr_init(&sa);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGXFSZ);
	posix_spawnattr_setsigmask(&sa, &none);
	posix_spawnattr_setsigdefault(&sa, &dfl);
	posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGMASK |
	                                      POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(pid, "/bin/sh", &fa, &sa, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&sa);
	return rc;
}

/* Reads the child's stdout (fds[0]) into out, at most PROC_OUT_MAX bytes,
 * and the start of its stderr (fds[1]) into errtext, until both end;
 * closes both.  Kills the child when its output is too large (*too_big). */
static void
drain(pid_t pid, const int fds[2], struct buf *out, char *errtext, size_t errsz,
      int *too_big)
{
	struct pollfd pf[2] = {{.fd = fds[0], .events = POLLIN},
	                       {.fd = fds[1], .events = POLLIN}};
	size_t elen = 0, k;
	char tmp[4096];
	ssize_t r;

	while (pf[0].fd >= 0 || pf[1].fd >= 0) {
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (pf[i].fd < 0 || pf[i].revents == 0)
				continue;
			r = read(pf[i].fd, tmp, sizeof(tmp));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r > 0 && i == 0 &&
			    out->len + (size_t)r <= PROC_OUT_MAX &&
			    buf_append(out, tmp, (size_t)r) == 0)
				continue;
			if (r > 0 && i == 1) {
				k = (size_t)r < errsz - 1 - elen
				            ? (size_t)r
				            : errsz - 1 - elen;
				memcpy(errtext + elen, tmp, k);
				elen += k;
				continue;
			}
			if (r > 0) {
				/* Too much output (or ENOMEM): no use
				 * reading on. */
				*too_big = 1;
				kill(pid, SIGKILL);
			}
			close(pf[i].fd);
			pf[i].fd = -1;
		}
	}
	explicit_bzero(tmp, sizeof(tmp));
	for (int i = 0; i < 2; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
	errtext[elen] = '\0';
}

/* Runs cmd and collects its stdout and the start of its stderr.  Returns 0
 * with *wstatus set (*too_big when the output was cut and the process
 * killed), or -1 with err set. */
static int
run_process(struct awscreds *ac, const char *cmd, struct buf *out,
            char *errtext, size_t errsz, int *wstatus, int *too_big,
            struct soar_error *err)
{
	int op[2] = {-1, -1}, ep[2] = {-1, -1}, fds[2], rc;
	pid_t pid;

	*too_big = 0;
	if (pipe2(op, O_CLOEXEC) != 0 || pipe2(ep, O_CLOEXEC) != 0) {
		soar_error_set(err, "credentials", "credential_process: %s",
		               strerror(errno));
		if (op[0] >= 0) {
			close(op[0]);
			close(op[1]);
		}
		return -1;
	}
	rc = spawn_sh(ac, cmd, op[1], ep[1], &pid);
	close(op[1]);
	close(ep[1]);
	if (rc != 0) {
		close(op[0]);
		close(ep[0]);
		soar_error_set(err, "credentials",
		               "credential_process: /bin/sh: %s", strerror(rc));
		return -1;
	}
	fds[0] = op[0];
	fds[1] = ep[0];
	drain(pid, fds, out, errtext, errsz, too_big);
	while (waitpid(pid, wstatus, 0) < 0)
		if (errno != EINTR) {
			soar_error_set(err, "credentials",
			               "credential_process: waitpid: %s",
			               strerror(errno));
			return -1;
		}
	return 0;
}

/* Keeps the first line of s, with control characters replaced, so it can
 * be quoted in a one-line message. */
static void
first_line(char *s)
{
	s[strcspn(s, "\r\n")] = '\0';
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* credential_process of profile.  Returns 1, 0 when there is none, or -1
 * with err set (code "credentials").  Its stdout holds secrets and never
 * appears in a message; its stderr's first line does. */
static int
from_process(struct awscreds *ac, const char *profile, struct creds *out,
             struct soar_error *err)
{
	const char *cmd = prof_get(ac, profile, "credential_process");
	char errtext[PROC_ERR_MAX], what[160];
	struct buf o = BUF_INIT;
	int ws, too_big, rc = -1;

	if (cmd == NULL)
		return 0;
	log_debug(ac->log, "profile %s: running credential_process", profile);
	if (run_process(ac, cmd, &o, errtext, sizeof(errtext), &ws, &too_big,
	                err) != 0)
		goto out;
	first_line(errtext);
	snprintf(what, sizeof(what), "profile %s: credential_process", profile);
	if (too_big) {
		soar_error_set(err, "credentials",
		               "%s: more than %d bytes of"
		               " output",
		               what, PROC_OUT_MAX);
	} else if (WIFSIGNALED(ws)) {
		soar_error_set(err, "credentials",
		               "%s: killed by signal %d%s%s", what,
		               WTERMSIG(ws), errtext[0] ? ": " : "", errtext);
	} else if (WEXITSTATUS(ws) != 0) {
		soar_error_set(err, "credentials", "%s: exit status %d%s%s",
		               what, WEXITSTATUS(ws), errtext[0] ? ": " : "",
		               errtext);
	} else if (json_creds(what, &o, "SessionToken", 1, out, err) != 0) {
		if (errtext[0] != '\0') {
			size_t n = strlen(err->message);

			snprintf(err->message + n, sizeof(err->message) - n,
			         " (stderr: %s)", errtext);
		}
	} else {
		rc = 1;
	}
out:
	buf_wipe(&o);
	return rc;
}

/* ---- container ---------------------------------------------------- */

/* Returns 1 when url may serve container credentials: any https host; over
 * http only a loopback address, localhost, the ECS host 169.254.170.2 or
 * the EKS hosts 169.254.170.23 and fd00:ec2::23. */
static int
container_host_ok(const char *scheme, const char *host)
{
	static const unsigned char eks6[16] = {0xfd, 0x00, 0x0e,
	                                       0xc2, [15] = 0x23};
	struct in_addr a4;
	struct in6_addr a6;
	char h[64];
	size_t n = strlen(host);

	if (strcasecmp(scheme, "https") == 0)
		return 1;
	if (strcasecmp(scheme, "http") != 0)
		return 0;
	if (strcasecmp(host, "localhost") == 0 ||
	    strcmp(host, "169.254.170.2") == 0 ||
	    strcmp(host, "169.254.170.23") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']' &&
	    n - 2 < sizeof(h)) {
		memcpy(h, host + 1, n - 2);
		h[n - 2] = '\0';
	} else if (n < sizeof(h)) {
		memcpy(h, host, n + 1);
	} else {
		return 0;
	}
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       memcmp(&a6, eks6, sizeof(eks6)) == 0;
	return 0;
}

/* Builds the container endpoint's URL.  Returns 1, 0 when neither
 * variable is set, or -1 with err set (code "config"). */
static int
container_url(struct awscreds *ac, struct buf *url, struct soar_error *err)
{
	const char *rel = env(ac, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env(ac, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
	char *scheme = NULL, *host = NULL;
	CURLU *u;
	int ok;

	if (rel != NULL) {
		/* A path only: anything else could change the host. */
		if (rel[0] != '/') {
			soar_error_set(err, "config",
			               "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:"
			               " not a path starting with '/'");
			return -1;
		}
		if (buf_printf(url, "%s%s", ac->ecs_base, rel) != 0)
			goto nomem;
		return 1;
	}
	if (full == NULL)
		return 0;
	if ((u = curl_url()) == NULL)
		goto nomem;
	ok = curl_url_set(u, CURLUPART_URL, full, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK;
	if (!ok)
		soar_error_set(err, "config",
		               "AWS_CONTAINER_CREDENTIALS_FULL_URI: not a URL");
	else if (!(ok = container_host_ok(scheme, host)))
		soar_error_set(err, "config",
		               "AWS_CONTAINER_CREDENTIALS_FULL_URI: host %.64s"
		               " is not allowed over %.8s (only loopback,"
		               " 169.254.170.2, 169.254.170.23, fd00:ec2::23;"
		               " or use https)",
		               host, scheme);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	if (!ok)
		return -1;
	if (buf_puts(url, full) != 0)
		goto nomem;
	return 1;
nomem:
	soar_error_set(err, "nomem", "out of memory");
	return -1;
}

/* The container endpoint's Authorization value: the file named by
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read each time: EKS rotates it),
 * else AWS_CONTAINER_AUTHORIZATION_TOKEN.  Returns 0 with *out owned or
 * NULL, or -1 with err set (code "config"). */
static int
container_token(struct awscreds *ac, char **out, struct soar_error *err)
{
	const char *file = env(ac, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = env(ac, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
	const char *var = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
	size_t n;
	int rc;

	*out = NULL;
	if (file != NULL) {
		var = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
		rc = read_file(file, TOKEN_MAX, out, &n, err);
		if (rc != 0) {
			if (rc > 0)
				soar_error_set(err, "config", "%s: %s: %s", var,
				               file, strerror(ENOENT));
			return -1;
		}
		while (n > 0 &&
		       ((*out)[n - 1] == '\n' || (*out)[n - 1] == '\r'))
			(*out)[--n] = '\0';
	} else if (tok != NULL) {
		if ((*out = strdup(tok)) == NULL) {
			soar_error_set(err, "nomem", "out of memory");
			return -1;
		}
	} else {
		return 0;
	}
	if ((*out)[0] == '\0' || strpbrk(*out, "\r\n") != NULL) {
		soar_error_set(err, "config", "%s: %s", var,
		               (*out)[0] ? "the token holds a line break"
		                         : "empty token");
		wipe_str(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* Container credentials (ECS task role, EKS Pod Identity).  Returns 1, 0
 * when the container variables are not set, or -1 with err set. */
static int
from_container(struct awscreds *ac, struct creds *out, struct soar_error *err)
{
	struct buf url = BUF_INIT;
	struct http_header hdr[1];
	struct http_request req = {.method = "GET", .idempotent = 1};
	struct http_reply f;
	char *token = NULL;
	int rc;

	if ((rc = container_url(ac, &url, err)) <= 0)
		return rc;
	rc = -1;
	if (container_token(ac, &token, err) != 0)
		goto out;
	req.url = url.data;
	if (token != NULL) {
		hdr[0] = (struct http_header){"Authorization", token};
		req.headers = hdr;
		req.nheaders = 1;
	}
	log_debug(ac->log, "fetching container credentials from %s", url.data);
	if (fetch(ac, NET_CONTAINER, &req, NULL, &f, err) != 0) {
		size_t n = strlen(err->message);

		if (f.resp.status == 401 || f.resp.status == 403)
			memcpy(err->code, "auth", sizeof("auth"));
		snprintf(err->message + n, sizeof(err->message) - n,
		         " (container credentials)");
	} else if (json_creds("container credentials", &f.resp.body, "Token", 0,
	                      out, err) == 0) {
		rc = 1;
	}
	http_reply_free(&f);
out:
	wipe_str(token);
	buf_free(&url);
	return rc;
}

/* ---- IMDS --------------------------------------------------------- */

/* IMDS's base URL: AWS_EC2_METADATA_SERVICE_ENDPOINT or the profile's
 * ec2_metadata_service_endpoint, else the IPv4 or IPv6 address by the
 * endpoint mode.  Returns it (borrowed or static), or NULL with err set
 * (code "config") when it has no http(s) scheme. */
static const char *
imds_base(struct awscreds *ac, struct soar_error *err)
{
	const char *v = env(ac, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = env(ac, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");

	if (v == NULL)
		v = prof_get(ac, ac->profile, "ec2_metadata_service_endpoint");
	if (v != NULL) {
		if (!has_scheme(v)) {
			soar_error_set(err, "config",
			               "IMDS endpoint %.100s: not an http(s)"
			               " URL",
			               v);
			return NULL;
		}
		return v;
	}
	if (mode == NULL)
		mode = prof_get(ac, ac->profile,
		                "ec2_metadata_service_endpoint_mode");
	return mode != NULL && strcasecmp(mode, "IPv6") == 0 ? IMDS_BASE_V6
	                                                     : IMDS_BASE;
}

/* Trims blanks and line ends from both sides of b. */
static void
trim_buf(struct buf *b)
{
	size_t i = 0;

	while (b->len > 0 && strchr(" \t\r\n", b->data[b->len - 1]) != NULL)
		b->data[--b->len] = '\0';
	while (i < b->len && strchr(" \t\r\n", b->data[i]) != NULL)
		i++;
	memmove(b->data, b->data + i, b->len - i + 1);
	b->len -= i;
}

#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"

/* Asks IMDS at base[0..bl) for an IMDSv2 session token into *token.
 * Returns 0 (token left empty for IMDSv1 after a 403, 404 or 405 or no
 * answer, as the CLI does), or -1 with err set (a 400, an unusable token,
 * IMDSv1 needed but disabled). */
static int
imds_token(struct awscreds *ac, const char *base, size_t bl, struct buf *token,
           struct soar_error *err)
{
	struct http_header hdr[1] = {
	        {"x-aws-ec2-metadata-token-ttl-seconds", "21600"}};
	struct http_request req = {.method = "PUT",
	                           .headers = hdr,
	                           .nheaders = 1,
	                           .idempotent = 1};
	struct buf url = BUF_INIT;
	struct soar_error e;
	struct http_reply f;
	int rc = -1;

	if (buf_printf(&url, "%.*s/latest/api/token", (int)bl, base) != 0) {
		soar_error_set(err, "nomem", "out of memory");
		return -1;
	}
	req.url = url.data;
	if (fetch(ac, NET_IMDS, &req, NULL, &f, &e) == 0) {
		trim_buf(&f.resp.body);
		if (f.resp.body.len > 0 && f.resp.body.len <= TOKEN_MAX &&
		    buf_puts(token, f.resp.body.data) == 0)
			rc = 0;
		else
			soar_error_set(err, "credentials",
			               "IMDS: PUT %s: unusable token",
			               url.data);
	} else if (f.resp.status == 400) {
		soar_error_set(err, "credentials",
		               "IMDS: PUT %s: HTTP 400 (bad token request)",
		               url.data);
		err->status = 400;
	} else if (is_true(env(ac, "AWS_EC2_METADATA_V1_DISABLED")) ||
	           is_true(prof_get(ac, ac->profile,
	                            "ec2_metadata_v1_disabled"))) {
		soar_error_set(err, "credentials",
		               "IMDS: no IMDSv2 token and IMDSv1 is disabled: "
		               "%.300s",
		               e.message);
	} else {
		log_debug(ac->log, "IMDS: no IMDSv2 token (%s); trying IMDSv1",
		          e.message);
		rc = 0;
	}
	http_reply_free(&f);
	buf_free(&url);
	return rc;
}

/* Asks IMDS for the instance role's name into *role.  Returns 1, 0 when
 * there is none or IMDS did not answer (why says which), or -1 (ENOMEM). */
static int
imds_role(struct awscreds *ac, const char *base, size_t bl,
          const struct http_request *proto, struct buf *role, char *why,
          size_t whysz, struct soar_error *err)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyz"
	                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                              "0123456789+=,.@_-";
	struct http_request req = *proto;
	struct buf url = BUF_INIT;
	struct soar_error e;
	struct http_reply f;
	size_t n;
	int rc = 0;

	if (buf_printf(&url, "%.*s%s", (int)bl, base, IMDS_CREDS_PATH) != 0) {
		soar_error_set(err, "nomem", "out of memory");
		return -1;
	}
	req.url = url.data;
	if (fetch(ac, NET_IMDS, &req, NULL, &f, &e) != 0) {
		snprintf(why, whysz, "IMDS: %.200s%s", e.message,
		         f.resp.status == 404 ? " (no instance role)" : "");
	} else {
		/* One role per instance profile: the first line. */
		trim_buf(&f.resp.body);
		n = f.resp.body.len > 0 ? strcspn(f.resp.body.data, "\r\n") : 0;
		if (n == 0 || n > 128 || strspn(f.resp.body.data, allowed) != n)
			snprintf(why, whysz,
			         "IMDS: no usable instance role name");
		else if (buf_append(role, f.resp.body.data, n) != 0)
			rc = -1;
		else
			rc = 1;
	}
	http_reply_free(&f);
	buf_free(&url);
	if (rc < 0)
		soar_error_set(err, "nomem", "out of memory");
	return rc;
}

/* Instance role credentials from IMDS: a session token (IMDSv2, else
 * IMDSv1), the role name, then its credentials.  Returns 1, 0 when IMDS
 * is disabled, absent or has no role (why says which), or -1 with err
 * set. */
static int
from_imds(struct awscreds *ac, struct creds *out, char *why, size_t whysz,
          struct soar_error *err)
{
	struct buf url = BUF_INIT, token = BUF_INIT, role = BUF_INIT;
	struct http_header hdr[1];
	struct http_request req = {.method = "GET", .idempotent = 1};
	const char *base;
	struct http_reply f;
	char what[160];
	size_t bl;
	int rc;

	if (is_true(env(ac, "AWS_EC2_METADATA_DISABLED"))) {
		snprintf(why, whysz,
		         "IMDS disabled by AWS_EC2_METADATA_DISABLED");
		return 0;
	}
	if ((base = imds_base(ac, err)) == NULL)
		return -1;
	for (bl = strlen(base); bl > 0 && base[bl - 1] == '/'; bl--)
		;
	if (imds_token(ac, base, bl, &token, err) != 0) {
		rc = -1;
		goto out;
	}
	if (token.len > 0) {
		hdr[0] = (struct http_header){"x-aws-ec2-metadata-token",
		                              token.data};
		req.headers = hdr;
		req.nheaders = 1;
	}
	if ((rc = imds_role(ac, base, bl, &req, &role, why, whysz, err)) <= 0)
		goto out;
	rc = -1;
	if (buf_printf(&url, "%.*s%s%s", (int)bl, base, IMDS_CREDS_PATH,
	               role.data) != 0) {
		soar_error_set(err, "nomem", "out of memory");
		goto out;
	}
	req.url = url.data;
	snprintf(what, sizeof(what), "IMDS role %s", role.data);
	if (fetch(ac, NET_IMDS, &req, NULL, &f, err) != 0) {
		size_t n = strlen(err->message);

		snprintf(err->message + n, sizeof(err->message) - n, " (%s)",
		         what);
	} else if (json_creds(what, &f.resp.body, "Token", 0, out, err) == 0) {
		snprintf(ac->desc, sizeof(ac->desc), "IMDS, role %s",
		         role.data);
		rc = 1;
	}
	http_reply_free(&f);
out:
	buf_free(&url);
	buf_wipe(&token);
	buf_free(&role);
	return rc;
}

/* ---- STS AssumeRole ----------------------------------------------- */

enum {
	X_OTHER,
	X_CREDENTIALS,
	X_ERROR,
	X_AK,
	X_SK,
	X_TOKEN,
	X_EXP,
	X_CODE,
	X_MESSAGE,
	X_N
};

static const char *const x_names[X_N] = {
        NULL,
        "Credentials",
        "Error",
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
        "Code",
        "Message",
};

#define X_DEPTH 16

/* What is kept of an STS answer: the credentials of a success, the Code
 * and Message of an error. */
struct sts_xml {
	XML_Parser p;
	int stack[X_DEPTH];
	int depth;
	int refused; /* too large a value, or a DTD */
	struct buf *target;
	struct buf v[X_N];
};

static void XMLCALL
sts_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct sts_xml *x = ud;
	const char *local = strrchr(name, '|');
	int id = X_OTHER, parent;

	(void)attrs;
	local = local != NULL ? local + 1 : name;
	for (int i = 1; i < X_N; i++)
		if (strcmp(local, x_names[i]) == 0)
			id = i;
	parent = x->depth > 0 && x->depth <= X_DEPTH ? x->stack[x->depth - 1]
	                                             : X_OTHER;
	x->target = NULL;
	if ((parent == X_CREDENTIALS && id >= X_AK && id <= X_EXP) ||
	    (parent == X_ERROR && (id == X_CODE || id == X_MESSAGE))) {
		x->target = &x->v[id];
		buf_clear(x->target);
	}
	if (x->depth < X_DEPTH)
		x->stack[x->depth] = id;
	x->depth++;
}

static void XMLCALL
sts_end(void *ud, const XML_Char *name)
{
	struct sts_xml *x = ud;

	(void)name;
	x->depth--;
	x->target = NULL;
}

static void XMLCALL
sts_text(void *ud, const XML_Char *s, int len)
{
	struct sts_xml *x = ud;

	if (x->target == NULL || len <= 0)
		return;
	if (x->target->len + (size_t)len > XML_TEXT_MAX ||
	    buf_append(x->target, s, (size_t)len) != 0) {
		x->refused = 1;
		XML_StopParser(x->p, XML_FALSE);
	}
}

/* STS never sends a DTD; refusing one rules out entity tricks. */
static void XMLCALL
sts_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
            const XML_Char *pubid, int has_internal)
{
	struct sts_xml *x = ud;

	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal;
	x->refused = 1;
	XML_StopParser(x->p, XML_FALSE);
}

static void
sts_xml_free(struct sts_xml *x)
{
	for (int i = 0; i < X_N; i++)
		buf_wipe(&x->v[i]);
}

/* Parses an STS answer into x (released with sts_xml_free either way).
 * Returns 0, or -1 when it is not well-formed XML. */
static int
sts_parse(const char *body, size_t len, struct sts_xml *x)
{
	int ok;

	memset(x, 0, sizeof(*x));
	if (len > INT_MAX || (x->p = XML_ParserCreateNS(NULL, '|')) == NULL)
		return -1;
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, sts_start, sts_end);
	XML_SetCharacterDataHandler(x->p, sts_text);
	XML_SetStartDoctypeDeclHandler(x->p, sts_doctype);
	ok = XML_Parse(x->p, body ? body : "", (int)len, 1) == XML_STATUS_OK &&
	     !x->refused;
	XML_ParserFree(x->p);
	x->p = NULL;
	for (int i = 0; i < X_N; i++)
		if (x->v[i].data != NULL)
			trim_buf(&x->v[i]);
	return ok ? 0 : -1;
}

/* Appends "&key=value" (no '&' first) form-encoded to b.  Returns 0 or -1
 * (ENOMEM). */
static int
form_add(struct buf *b, const char *key, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	if (b->len > 0)
		rc |= buf_putc(b, '&');
	rc |= buf_puts(b, key);
	rc |= buf_putc(b, '=');
	for (const unsigned char *p = (const unsigned char *)val; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-_.~", *p) != NULL) {
			rc |= buf_putc(b, *p);
		} else {
			rc |= buf_putc(b, '%');
			rc |= buf_putc(b, hex[*p >> 4]);
			rc |= buf_putc(b, hex[*p & 15]);
		}
	return rc != 0 ? -1 : 0;
}

/* Returns 1 when s is a valid RoleSessionName: 2 to 64 of [\w+=,.@-]. */
static int
session_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 2 && n <= 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "0123456789_+=,.@-") == n;
}

/* Checks a role's session name and duration (STS would refuse them later
 * with a less helpful message).  Returns 0 or -1 (code "config"). */
static int
role_check(const struct role *r, struct soar_error *err)
{
	const char *where = r->profile ? r->profile : "--role-arn";

	if (r->session_name != NULL && !session_name_ok(r->session_name)) {
		soar_error_set(err, "config",
		               "%s: role_session_name must be 2 to 64 of"
		               " letters, digits and _+=,.@-",
		               where);
		return -1;
	}
	if (r->duration != 0 && (r->duration < 900 || r->duration > 43200)) {
		soar_error_set(err, "config",
		               "%s: duration_seconds %ld is not within 900 and"
		               " 43200",
		               where, r->duration);
		return -1;
	}
	return 0;
}

/* The code an STS refusal becomes: "auth" when the credentials or the
 * role were refused. */
static const char *
sts_error_code(long status, const char *code)
{
	static const char *const auth[] = {
	        "AccessDenied",
	        "InvalidClientTokenId",
	        "SignatureDoesNotMatch",
	        "ExpiredToken",
	        "ExpiredTokenException",
	        "RegionDisabledException",
	        "IncompleteSignature",
	        "MissingAuthenticationToken",
	        "UnrecognizedClientException",
	};

	if (status == 401 || status == 403)
		return "auth";
	for (size_t i = 0; code != NULL && i < sizeof(auth) / sizeof(auth[0]);
	     i++)
		if (strcmp(code, auth[i]) == 0)
			return "auth";
	return "http";
}

/* Writes the AssumeRole form for r into body.  Returns 0 or -1 (ENOMEM). */
static int
sts_form(const struct role *r, time_t now, struct buf *body)
{
	char session[40], dur[24];
	int rc = 0;

	snprintf(session, sizeof(session), "soarutils-%lld", (long long)now);
	snprintf(dur, sizeof(dur), "%ld", r->duration ? r->duration : 3600);
	rc |= form_add(body, "Action", "AssumeRole");
	rc |= form_add(body, "Version", "2011-06-15");
	rc |= form_add(body, "RoleArn", r->arn);
	rc |= form_add(body, "RoleSessionName",
	               r->session_name ? r->session_name : session);
	rc |= form_add(body, "DurationSeconds", dur);
	if (r->external_id != NULL)
		rc |= form_add(body, "ExternalId", r->external_id);
	return rc != 0 ? -1 : 0;
}

/* Signs body with src and posts it to STS: the endpoint
 * awscreds_endpoint() gives, signed for us-east-1 when it is the global
 * one, else for the configured region.  Returns 0 with f filled, or -1
 * with err set (f then holds what STS answered, if anything). */
static int
sts_post(struct awscreds *ac, const struct creds *src, const struct buf *body,
         struct http_reply *f, struct soar_error *err)
{
	struct sigv4_creds sc = {src->ak, src->sk, src->token};
	struct http_header hdr[4] = {
	        {"Content-Type",
	         "application/x-www-form-urlencoded; charset=utf-8"}};
	struct sigv4_request sr = {.method = "POST",
	                           .headers = hdr,
	                           .nheaders = 1,
	                           .body = body->data,
	                           .body_len = body->len,
	                           .service = "sts",
	                           .now = ac_now(ac)};
	struct http_request req = {.method = "POST",
	                           .headers = hdr,
	                           .body = body->data,
	                           .body_len = body->len,
	                           .idempotent = 1};
	struct sigv4_signed sig;
	struct buf url = BUF_INIT;
	size_t nh = 1;
	char *ep;
	int rc = -1;

	memset(f, 0, sizeof(*f));
	if ((ep = awscreds_endpoint(ac, "STS", "sts", NULL)) == NULL ||
	    buf_printf(&url, "%s/", ep) != 0) {
		soar_error_set(err, "nomem", "out of memory");
		free(ep);
		return -1;
	}
	sr.url = req.url = url.data;
	sr.region = strcmp(ep, STS_GLOBAL) != 0 && ac->region ? ac->region
	                                                      : "us-east-1";
	sigv4_signed_init(&sig);
	if (sigv4_sign(&sr, &sc, &sig, err) == 0) {
		for (size_t i = 0; i < sig.nheaders && nh < 4; i++)
			hdr[nh++] = sig.headers[i];
		req.nheaders = nh;
		log_debug(ac->log, "STS AssumeRole at %s, signed for %s",
		          url.data, sr.region);
		/* STS says "slow down" with a 400: aws_retry retries those. */
		rc = fetch(ac, NET_STS, &req, aws_retry, f, err);
	}
	sigv4_signed_free(&sig);
	free(ep);
	buf_free(&url);
	return rc;
}

/* Turns a refused AssumeRole into err: STS's Code and Message, code
 * "auth" when the credentials or the role were refused. */
static void
sts_refusal(const struct role *r, const struct http_reply *f,
            struct soar_error *err)
{
	long status = err->status;
	int attempts = err->attempts;
	struct sts_xml x = {0};

	if (f->resp.status > 0 &&
	    sts_parse(f->resp.body.data, f->resp.body.len, &x) == 0 &&
	    x.v[X_CODE].data != NULL) {
		soar_error_set(err, sts_error_code(status, x.v[X_CODE].data),
		               "STS AssumeRole %s: %.64s%s%.200s", r->arn,
		               x.v[X_CODE].data,
		               x.v[X_MESSAGE].data ? ": " : "",
		               x.v[X_MESSAGE].data ? x.v[X_MESSAGE].data : "");
		err->status = status;
		err->attempts = attempts;
	} else if (f->resp.status == 401 || f->resp.status == 403) {
		memcpy(err->code, "auth", sizeof("auth"));
	}
	sts_xml_free(&x);
}

/* Reads the credentials of an AssumeRole answer.  Returns 0 or -1 with err
 * set (code "credentials"). */
static int
sts_credentials(const struct role *r, const struct http_reply *f,
                struct creds *out, struct soar_error *err)
{
	struct sts_xml x;
	time_t t;
	int rc = -1;

	if (sts_parse(f->resp.body.data, f->resp.body.len, &x) != 0 ||
	    x.v[X_AK].len == 0 || x.v[X_SK].len == 0 || x.v[X_TOKEN].len == 0 ||
	    x.v[X_EXP].len == 0)
		soar_error_set(
		        err, "credentials",
		        "STS AssumeRole %s: no Credentials in the answer",
		        r->arn);
	else if (parse_time(x.v[X_EXP].data, &t) != 0)
		soar_error_set(err, "credentials",
		               "STS AssumeRole %s: Expiration \"%.40s\" is not"
		               " an RFC 3339 time",
		               r->arn, x.v[X_EXP].data);
	else
		rc = creds_set(out, x.v[X_AK].data, x.v[X_SK].data,
		               x.v[X_TOKEN].data, t, err);
	sts_xml_free(&x);
	return rc;
}

/* Assumes role r with src.  Returns 0 with *out filled, or -1 with err
 * set. */
static int
assume_role(struct awscreds *ac, const struct creds *src, const struct role *r,
            struct creds *out, struct soar_error *err)
{
	struct buf body = BUF_INIT;
	struct http_reply f;
	int rc = -1;

	if (role_check(r, err) != 0)
		return -1;
	if (sts_form(r, ac_now(ac), &body) != 0) {
		soar_error_set(err, "nomem", "out of memory");
		buf_free(&body);
		return -1;
	}
	log_debug(ac->log, "assuming role %s", r->arn);
	if (sts_post(ac, src, &body, &f, err) != 0)
		sts_refusal(r, &f, err);
	else
		rc = sts_credentials(r, &f, out, err);
	http_reply_free(&f);
	buf_free(&body);
	return rc;
}

/* ---- profiles with role_arn --------------------------------------- */

/* A profile leads to a role when it has role_arn; one with
 * web_identity_token_file is a web identity profile instead. */
static int
has_role(const struct awscreds *ac, const char *profile)
{
	return prof_get(ac, profile, "role_arn") != NULL &&
	       prof_get(ac, profile, "web_identity_token_file") == NULL;
}

static int
has_static(const struct awscreds *ac, const char *profile)
{
	return prof_get(ac, profile, "aws_access_key_id") != NULL ||
	       prof_get(ac, profile, "aws_secret_access_key") != NULL;
}

/* Reads the role of profile into r (strings borrowed from the files).
 * Returns 0 or -1 (code "config"). */
static int
role_of(const struct awscreds *ac, const char *profile, struct role *r,
        struct soar_error *err)
{
	const char *d = prof_get(ac, profile, "duration_seconds");
	char *end;

	memset(r, 0, sizeof(*r));
	r->arn = prof_get(ac, profile, "role_arn");
	r->external_id = prof_get(ac, profile, "external_id");
	r->session_name = prof_get(ac, profile, "role_session_name");
	r->profile = profile;
	if (d != NULL) {
		errno = 0;
		r->duration = strtol(d, &end, 10);
		if (errno != 0 || *end != '\0' || end == d) {
			soar_error_set(err, "config",
			               "profile %s: duration_seconds is not a"
			               " number",
			               profile);
			return -1;
		}
	}
	if (prof_get(ac, profile, "mfa_serial") != NULL) {
		soar_error_set(err, "config",
		               "profile %s: mfa_serial needs an interactive MFA"
		               " prompt, which soarutils does not offer",
		               profile);
		return -1;
	}
	return role_check(r, err);
}

/* Follows top's role_arn through source_profile links, as the CLI does:
 * a source profile with keys of its own (or no role_arn) starts the chain
 * with its keys; one with only a role assumes it in turn; a profile may
 * name itself as its source when it has keys; any other repeat is a
 * cycle.  Fetches nothing.  Returns 0, or -1 with err set (code
 * "config"). */
static int
plan_build(const struct awscreds *ac, const char *top, struct plan *pl,
           struct soar_error *err)
{
	const char *name = top, *src, *cs;
	struct role r;
	size_t i;

	memset(pl, 0, sizeof(*pl));
	for (;;) {
		if (pl->nroles == CHAIN_MAX) {
			soar_error_set(err, "config",
			               "profile %s: more than %d source_profile"
			               " links",
			               top, CHAIN_MAX);
			return -1;
		}
		if (role_of(ac, name, &r, err) != 0)
			return -1;
		pl->roles[pl->nroles++] = name;
		src = prof_get(ac, name, "source_profile");
		cs = prof_get(ac, name, "credential_source");
		if (src != NULL && cs != NULL) {
			soar_error_set(err, "config",
			               "profile %s: both source_profile and"
			               " credential_source are set",
			               name);
			return -1;
		}
		if (cs != NULL) {
			if (strcmp(cs, "Environment") != 0 &&
			    strcmp(cs, "Ec2InstanceMetadata") != 0 &&
			    strcmp(cs, "EcsContainer") != 0) {
				soar_error_set(err, "config",
				               "profile %s: credential_source"
				               " %.40s is not Environment,"
				               " Ec2InstanceMetadata or"
				               " EcsContainer",
				               name, cs);
				return -1;
			}
			pl->cred_source = cs;
			return 0;
		}
		if (src == NULL) {
			soar_error_set(
			        err, "config",
			        "profile %s: role_arn needs source_profile"
			        " or credential_source",
			        name);
			return -1;
		}
		if (!prof_exists(ac, src)) {
			soar_error_set(
			        err, "config",
			        "profile %s: source_profile %s not found", name,
			        src);
			return -1;
		}
		for (i = 0; i < pl->nroles; i++)
			if (strcmp(pl->roles[i], src) == 0)
				break;
		if (i < pl->nroles) {
			if (strcmp(src, name) == 0 && has_static(ac, src)) {
				pl->base = src;
				return 0;
			}
			soar_error_set(err, "config",
			               "profile %s: source_profile %s makes a"
			               " cycle",
			               name, src);
			return -1;
		}
		if (has_static(ac, src) || !has_role(ac, src)) {
			pl->base = src;
			return 0;
		}
		name = src;
	}
}

/* The keys a profile holds itself: the credentials file, then
 * credential_process, then the config file, the CLI's order.  Returns 1,
 * 0 when it has none, or -1 with err set. */
static int
profile_keys(struct awscreds *ac, const char *profile, struct creds *out,
             const char **source, struct soar_error *err)
{
	int rc;

	if ((rc = from_file(ac, F_CREDS, profile, out, err)) != 0) {
		*source = "shared-credentials-file";
		snprintf(ac->desc, sizeof(ac->desc),
		         "the shared credentials file, profile %s", profile);
	} else if ((rc = from_process(ac, profile, out, err)) != 0) {
		*source = "process";
		snprintf(ac->desc, sizeof(ac->desc),
		         "credential_process, profile %s", profile);
	} else if ((rc = from_file(ac, F_CONFIG, profile, out, err)) != 0) {
		*source = "config-file";
		snprintf(ac->desc, sizeof(ac->desc),
		         "the config file, profile %s", profile);
	}
	return rc;
}

/* Fetches what a plan starts from and assumes its roles, innermost
 * first.  Returns 0 or -1 with err set. */
static int
plan_run(struct awscreds *ac, const struct plan *pl, struct creds *out,
         struct soar_error *err)
{
	const char *last = pl->roles[pl->nroles - 1], *source;
	struct creds cur = {0}, next;
	char why[256] = "";
	struct role r;
	int rc;

	if (pl->cred_source != NULL) {
		if (strcmp(pl->cred_source, "Environment") == 0)
			rc = from_env(ac, &cur, err);
		else if (strcmp(pl->cred_source, "EcsContainer") == 0)
			rc = from_container(ac, &cur, err);
		else
			rc = from_imds(ac, &cur, why, sizeof(why), err);
		if (rc == 0)
			soar_error_set(err, "credentials",
			               "profile %s: credential_source %s has no"
			               " credentials%s%s",
			               last, pl->cred_source,
			               why[0] ? ": " : "", why);
	} else {
		rc = profile_keys(ac, pl->base, &cur, &source, err);
		if (rc == 0)
			soar_error_set(err, "config",
			               "profile %s: source_profile %s has no"
			               " credentials",
			               last, pl->base);
	}
	if (rc <= 0)
		return -1;
	for (size_t i = pl->nroles; i-- > 0;) {
		if (role_of(ac, pl->roles[i], &r, err) != 0 ||
		    assume_role(ac, &cur, &r, &next, err) != 0) {
			creds_free(&cur);
			return -1;
		}
		creds_free(&cur);
		cur = next;
	}
	*out = cur;
	return 0;
}

/* ---- the chain ---------------------------------------------------- */

/* Checks the selected profile's role configuration without fetching.
 * Returns 0 or -1 (code "config"). */
static int
role_config_check(const struct awscreds *ac, struct soar_error *err)
{
	const char *p = ac->profile;
	struct plan pl;

	if (prof_get(ac, p, "role_arn") != NULL &&
	    prof_get(ac, p, "web_identity_token_file") != NULL) {
		soar_error_set(err, "config",
		               "profile %s: web_identity_token_file"
		               " (AssumeRoleWithWebIdentity) is not supported",
		               p);
		return -1;
	}
	return has_role(ac, p) ? plan_build(ac, p, &pl, err) : 0;
}

/* Finds credentials along the chain.  Returns 0 with *out, ac->source and
 * ac->desc set, or -1 with err set. */
static int
resolve(struct awscreds *ac, struct creds *out, struct soar_error *err)
{
	const char *p = ac->profile, *source = NULL;
	struct creds base = {0};
	struct plan pl;
	char why[256] = "";
	int rc = 0;

	if (!ac->explicit_profile && (rc = from_env(ac, &base, err)) != 0) {
		source = "environment";
		snprintf(ac->desc, sizeof(ac->desc), "the environment");
	}
	if (rc == 0 && role_config_check(ac, err) != 0)
		return -1;
	if (rc == 0 && has_role(ac, p)) {
		if (plan_build(ac, p, &pl, err) != 0 ||
		    plan_run(ac, &pl, &base, err) != 0)
			return -1;
		source = "assume-role";
		snprintf(ac->desc, sizeof(ac->desc),
		         "assuming role %s, profile %s",
		         prof_get(ac, p, "role_arn"), p);
		rc = 1;
	}
	if (rc == 0)
		rc = profile_keys(ac, p, &base, &source, err);
	if (rc == 0 && (rc = from_container(ac, &base, err)) > 0) {
		source = "container";
		snprintf(ac->desc, sizeof(ac->desc), "the container endpoint");
	}
	if (rc == 0 && (rc = from_imds(ac, &base, why, sizeof(why), err)) > 0)
		source = "imds"; /* from_imds names the role in desc */
	if (rc < 0)
		return -1;
	if (rc == 0) {
		soar_error_set(err, "credentials",
		               "no AWS credentials found (environment, profile"
		               " %s, container%s%s)",
		               p, why[0] ? "; " : "", why);
		return -1;
	}
	if (ac->role.arn != NULL) {
		/* --role-arn: what the chain found assumes that role. */
		log_debug(ac->log, "base credentials from %s", ac->desc);
		rc = assume_role(ac, &base, &ac->role, out, err);
		creds_free(&base);
		if (rc != 0)
			return -1;
		source = "assume-role";
		snprintf(ac->desc, sizeof(ac->desc), "assuming role %s",
		         ac->role.arn);
	} else {
		*out = base;
	}
	ac->source = source;
	return 0;
}

/* ---- the interface ------------------------------------------------ */

/* Checks every endpoint URL the configuration holds: AWS_ENDPOINT_URL and
 * AWS_ENDPOINT_URL_*, the profile's endpoint_url and those of its
 * services section.  Returns 0 or -1 (code "config"). */
static int
check_endpoints(const struct awscreds *ac, struct soar_error *err)
{
	const char *const *e =
	        ac->envp ? ac->envp : (const char *const *)environ;
	const char *v, *svc;
	const struct ini_sec *s = NULL;
	char name[160];

	for (; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		size_t n = eq ? (size_t)(eq - *e) : 0;

		if (n < 16 || strncmp(*e, "AWS_ENDPOINT_URL", 16) != 0 ||
		    (n > 16 && (*e)[16] != '_') || eq[1] == '\0' ||
		    has_scheme(eq + 1))
			continue;
		soar_error_set(err, "config",
		               "%.*s: not an http:// or https:// URL",
		               (int)(n > 64 ? 64 : n), *e);
		return -1;
	}
	v = prof_get(ac, ac->profile, "endpoint_url");
	if (v != NULL && !has_scheme(v)) {
		soar_error_set(err, "config",
		               "profile %s: endpoint_url is not an http:// or"
		               " https:// URL",
		               ac->profile);
		return -1;
	}
	if ((svc = prof_get(ac, ac->profile, "services")) != NULL &&
	    snprintf(name, sizeof(name), "services %s", svc) <
	            (int)sizeof(name))
		for (size_t i = 0; i < ac->files[F_CONFIG].nsec; i++)
			if (strcmp(ac->files[F_CONFIG].sec[i].name, name) == 0)
				s = &ac->files[F_CONFIG].sec[i];
	for (size_t i = 0; s != NULL && i < s->nkv; i++) {
		int nomem;
		char *u = nested_get(s->kv[i].val, "endpoint_url", &nomem);
		int ok = u == NULL || has_scheme(u);

		free(u);
		if (!ok) {
			soar_error_set(err, "config",
			               "[%s] %s: endpoint_url is not an http://"
			               " or https:// URL",
			               s->name, s->kv[i].key);
			return -1;
		}
	}
	return 0;
}

/* Returns 1 when a region name can go into a host name. */
int
awscreds_region_ok(const char *r)
{
	size_t n = strlen(r);

	return n > 0 && n <= 64 &&
	       strspn(r, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* Reads a whole positive number no larger than max.  Returns 0 or -1. */
static int
parse_count(const char *s, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Picks the profile and reads both files.  A profile named by --profile or
 * AWS_PROFILE must exist in one of them, as for the CLI.  Returns 0 or -1
 * with err set. */
static int
setup_files(struct awscreds *ac, const struct awscreds_config *cfg,
            struct soar_error *err)
{
	const char *v, *home = cfg->home ? cfg->home : env(ac, "HOME");
	char *path;
	int nomem, named;

	ac->explicit_profile = nonempty(cfg->profile) != NULL;
	v = ac->explicit_profile ? cfg->profile : env(ac, "AWS_PROFILE");
	named = v != NULL;
	if (dup_opt(home, &ac->home) != 0 ||
	    dup_opt(v ? v : "default", &ac->profile) != 0)
		goto nomem;
	v = env(ac, "AWS_SHARED_CREDENTIALS_FILE");
	path = expand_path(v ? v : "~/.aws/credentials", ac->home, &nomem);
	if (nomem)
		goto nomem;
	if (ini_load(&ac->files[F_CREDS], path, 0, err) != 0)
		return -1;
	v = env(ac, "AWS_CONFIG_FILE");
	path = expand_path(v ? v : "~/.aws/config", ac->home, &nomem);
	if (nomem)
		goto nomem;
	if (ini_load(&ac->files[F_CONFIG], path, 1, err) != 0)
		return -1;
	if (named && !prof_exists(ac, ac->profile)) {
		soar_error_set(err, "config",
		               "profile %s not found in %s or %s", ac->profile,
		               ac->files[F_CREDS].path ? ac->files[F_CREDS].path
		                                       : "~/.aws/credentials",
		               ac->files[F_CONFIG].path
		                       ? ac->files[F_CONFIG].path
		                       : "~/.aws/config");
		return -1;
	}
	return 0;
nomem:
	soar_error_set(err, "nomem", "out of memory");
	return -1;
}

/* The region, the endpoint settings and the IMDS settings.  Returns 0 or
 * -1 with err set. */
static int
setup_settings(struct awscreds *ac, const struct awscreds_config *cfg,
               struct soar_error *err)
{
	const char *v;
	long n;

	if ((v = nonempty(cfg->region)) == NULL &&
	    (v = env(ac, "AWS_REGION")) == NULL &&
	    (v = env(ac, "AWS_DEFAULT_REGION")) == NULL)
		v = prof_get(ac, ac->profile, "region");
	if (v != NULL && !awscreds_region_ok(v)) {
		soar_error_set(err, "config", "region %.64s: not a region name",
		               v);
		return -1;
	}
	if (dup_opt(v, &ac->region) != 0) {
		soar_error_set(err, "nomem", "out of memory");
		return -1;
	}
	ac->ignore_endpoints =
	        is_true(env(ac, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) ||
	        is_true(prof_get(ac, ac->profile,
	                         "ignore_configured_endpoint_urls"));
	if (!ac->ignore_endpoints && check_endpoints(ac, err) != 0)
		return -1;
	ac->imds_timeout_ms = 1000;
	ac->imds_attempts = 1;
	if ((v = env(ac, "AWS_METADATA_SERVICE_TIMEOUT")) != NULL ||
	    (v = prof_get(ac, ac->profile, "metadata_service_timeout")) !=
	            NULL) {
		if (parse_count(v, 3600, &n) != 0) {
			soar_error_set(err, "config",
			               "metadata_service_timeout: not a number"
			               " of seconds");
			return -1;
		}
		ac->imds_timeout_ms = n * 1000;
	}
	if ((v = env(ac, "AWS_METADATA_SERVICE_NUM_ATTEMPTS")) != NULL ||
	    (v = prof_get(ac, ac->profile, "metadata_service_num_attempts")) !=
	            NULL) {
		if (parse_count(v, 10, &n) != 0) {
			soar_error_set(err, "config",
			               "metadata_service_num_attempts: not a"
			               " number from 1 to 10");
			return -1;
		}
		ac->imds_attempts = (int)n;
	}
	return 0;
}

/* Reads the configuration and reports as a configuration error what can
 * be known before fetching: half-set environment keys, then a broken role
 * chain when the environment does not supersede it. */
static int
setup(struct awscreds *ac, const struct awscreds_config *cfg,
      struct soar_error *err)
{
	struct creds probe = {0};
	int rc;

	if (dup_opt(cfg->user_agent ? cfg->user_agent : DEFAULT_UA,
	            &ac->user_agent) != 0 ||
	    dup_opt(nonempty(cfg->role_arn), &ac->role_arn) != 0 ||
	    dup_opt(nonempty(cfg->external_id), &ac->external_id) != 0 ||
	    dup_opt(nonempty(cfg->session_name), &ac->session_name) != 0 ||
	    dup_opt(cfg->ecs_base_url ? cfg->ecs_base_url : ECS_BASE,
	            &ac->ecs_base) != 0) {
		soar_error_set(err, "nomem", "out of memory");
		return -1;
	}
	if (setup_files(ac, cfg, err) != 0 || setup_settings(ac, cfg, err) != 0)
		return -1;
	ac->role = (struct role){.arn = ac->role_arn,
	                         .external_id = ac->external_id,
	                         .session_name = ac->session_name,
	                         .duration = cfg->duration_seconds};
	if (ac->role.arn != NULL && role_check(&ac->role, err) != 0)
		return -1;
	if (!ac->explicit_profile) {
		rc = from_env(ac, &probe, err);
		creds_free(&probe);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
	}
	return role_config_check(ac, err);
}

struct awscreds *
awscreds_new(const struct awscreds_config *cfg, struct soar_error *err)
{
	struct awscreds *ac = calloc(1, sizeof(*ac));

	if (ac == NULL) {
		soar_error_set(err, "nomem", "out of memory");
		return NULL;
	}
	ac->envp = cfg->envp;
	ac->now = cfg->now;
	ac->log = cfg->log;
	ac->source = "";
	if (setup(ac, cfg, err) != 0) {
		awscreds_free(ac);
		return NULL;
	}
	return ac;
}

void
awscreds_free(struct awscreds *ac)
{
	if (ac == NULL)
		return;
	creds_free(&ac->cur);
	for (int i = 0; i < NET_N; i++)
		http_free(ac->net[i]);
	for (int i = 0; i < F_N; i++)
		ini_free(&ac->files[i]);
	free(ac->user_agent);
	free(ac->home);
	free(ac->profile);
	free(ac->region);
	free(ac->role_arn);
	free(ac->external_id);
	free(ac->session_name);
	free(ac->ecs_base);
	free(ac);
}

int
awscreds_get(struct awscreds *ac, struct sigv4_creds *out,
             struct soar_error *err)
{
	time_t now = ac_now(ac), exp = ac->cur.expires;
	struct creds fresh = {0};
	char when[32];
	struct tm tm;

	/* Fresh enough, or fetched a moment ago (a source that hands out
	 * credentials close to their expiry is not asked on every call). */
	if (!ac->have || (exp != 0 && now >= exp) ||
	    (exp != 0 && now + REFRESH_SECS >= exp &&
	     now >= ac->tried_at + RETRY_SECS)) {
		ac->tried_at = now;
		if (resolve(ac, &fresh, err) != 0) {
			if (!ac->have || (exp != 0 && now >= exp))
				return -1;
			log_warn(ac->log,
			         "refreshing AWS credentials failed (%s);"
			         " keeping those that expire in %lld s",
			         err->message, (long long)(exp - now));
			soar_error_clear(err);
		} else {
			creds_free(&ac->cur);
			ac->cur = fresh;
			ac->have = 1;
			if (ac->cur.expires != 0 &&
			    gmtime_r(&ac->cur.expires, &tm) != NULL &&
			    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
			             &tm) > 0)
				log_info(ac->log,
				         "credentials from %s, valid until %s",
				         ac->desc, when);
			else
				log_info(ac->log, "credentials from %s",
				         ac->desc);
		}
	}
	out->access_key = ac->cur.ak;
	out->secret_key = ac->cur.sk;
	out->token = ac->cur.token;
	return 0;
}

const char *
awscreds_source(const struct awscreds *ac)
{
	return ac->source;
}

const char *
awscreds_region(const struct awscreds *ac)
{
	return ac->region;
}

/* Writes service_id as a setting name: spaces become underscores, letters
 * upper case (AWS_ENDPOINT_URL_<ID>) or lower case (services sections). */
static void
service_key(const char *id, int upper, char *out, size_t n)
{
	size_t i;

	for (i = 0; id[i] != '\0' && i + 1 < n; i++) {
		char c = id[i];

		if (c == ' ')
			c = '_';
		else if (upper && c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (!upper && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[i] = c;
	}
	out[i] = '\0';
}

/* The entry for service_id in the services section the profile names
 * ("services = NAME", "[services NAME]"), or NULL. */
static const struct ini_kv *
services_entry(const struct awscreds *ac, const char *service_id)
{
	const char *svc = prof_get(ac, ac->profile, "services");
	const struct ini_sec *s = NULL;
	char name[160], key[96];
	size_t i;

	if (svc == NULL || snprintf(name, sizeof(name), "services %s", svc) >=
	                           (int)sizeof(name))
		return NULL;
	for (i = 0; i < ac->files[F_CONFIG].nsec; i++)
		if (strcmp(ac->files[F_CONFIG].sec[i].name, name) == 0)
			s = &ac->files[F_CONFIG].sec[i];
	service_key(service_id, 0, key, sizeof(key));
	for (i = 0; s != NULL && i < s->nkv; i++)
		if (strcmp(s->kv[i].key, key) == 0)
			return &s->kv[i];
	return NULL;
}

char *
awscreds_endpoint(const struct awscreds *ac, const char *service_id,
                  const char *host_prefix, const char *region)
{
	const struct ini_kv *kv;
	struct buf b = BUF_INIT;
	char var[128], *nested = NULL;
	const char *v = NULL;
	size_t n;
	int rc, nomem = 0;

	if (!ac->ignore_endpoints) {
		memcpy(var, "AWS_ENDPOINT_URL_", 17);
		service_key(service_id, 1, var + 17, sizeof(var) - 17);
		if ((v = env(ac, var)) == NULL)
			v = env(ac, "AWS_ENDPOINT_URL");
		if (v == NULL &&
		    (kv = services_entry(ac, service_id)) != NULL) {
			nested = nested_get(kv->val, "endpoint_url", &nomem);
			if (nomem)
				return NULL;
			v = nested;
		}
		if (v == NULL)
			v = prof_get(ac, ac->profile, "endpoint_url");
	}
	if (v != NULL) {
		n = strlen(v);
		while (n > 0 && v[n - 1] == '/')
			n--;
		rc = buf_append(&b, v, n);
	} else if (region == NULL) {
		rc = buf_printf(&b, "https://%s.amazonaws.com", host_prefix);
	} else {
		rc = buf_printf(&b, "https://%s.%s.amazonaws.com%s",
		                host_prefix, region,
		                strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
	}
	free(nested);
	if (rc != 0 || b.data == NULL) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}
