/*
 * test_awscreds.c: lib/awscreds, the AWS credential chain.
 *
 * Every test writes its own credentials and config files into a temporary
 * directory and passes an explicit environment, so neither the real
 * environment nor ~/.aws is ever read.  IMDS is disabled in the
 * environment unless a test points it at the simulator.  STS, IMDS and
 * container credentials are tested against tests/sim/sim.py started on a
 * free loopback port; without its AWS routes those tests are skipped.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jv.h>

#include "awscreds.h"
#include "buf.h"
#include "log.h"
#include "sim.h"
#include "unit.h"

#define AKID   "AKIDSIMULATOR"
#define SECRET "simulator-secret-key"

static char tmpdir[64];
static int have_sim; /* the simulator runs and has its AWS routes */

static time_t fake_now = 1700000000;
static time_t clock_offset;

static time_t
fake_clock(void)
{
	return fake_now;
}

/* Wall time moved by clock_offset, for tests against the simulator, whose
 * signature check wants a clock within five minutes of its own. */
static time_t
offset_clock(void)
{
	return time(NULL) + clock_offset;
}

/* ---- files and environments --------------------------------------- */

/* Returns tmpdir/name in one of a few rotating buffers. */
static const char *
path_of(const char *name)
{
	static char bufs[8][256];
	static int next;
	char *p = bufs[next++ % 8];

	snprintf(p, 256, "%.63s/%.180s", tmpdir, name);
	return p;
}

/* Writes text to tmpdir/name (NULL: removes it). */
static void
put(const char *name, const char *text, int mode)
{
	const char *p = path_of(name);
	FILE *f;

	unlink(p);
	if (text == NULL)
		return;
	f = fopen(p, "w");
	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
	chmod(p, (mode_t)mode);
}

/* Sets both files of a test (NULL: no such file). */
static void
files(const char *credentials, const char *config)
{
	put("credentials", credentials, 0600);
	put("config", config, 0600);
}

static char *
slurp(const char *name)
{
	struct buf b = BUF_INIT;
	char tmp[4096];
	size_t n;
	FILE *f = fopen(path_of(name), "r");

	if (f == NULL)
		return NULL;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	buf_putc(&b, '\0');
	return b.data;
}

/* A test's environment: NAME=value strings, NULL-terminated. */
struct envb {
	char *v[48];
	int n;
};

static void
eb_add(struct envb *e, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (e->n < 47)
		e->v[e->n++] = b.data;
	else
		free(b.data);
	e->v[e->n] = NULL;
}

/* The environment every test starts from: the files in tmpdir, HOME there,
 * IMDS off (no test may reach 169.254.169.254). */
static void
eb_base(struct envb *e)
{
	memset(e, 0, sizeof(*e));
	eb_add(e, "HOME=%s", tmpdir);
	eb_add(e, "AWS_SHARED_CREDENTIALS_FILE=%s", path_of("credentials"));
	eb_add(e, "AWS_CONFIG_FILE=%s", path_of("config"));
	eb_add(e, "AWS_EC2_METADATA_DISABLED=true");
}

static void
eb_free(struct envb *e)
{
	for (int i = 0; i < e->n; i++)
		free(e->v[i]);
	e->n = 0;
}

static struct awscreds_config
cfg_of(const struct envb *e)
{
	struct awscreds_config c = {0};

	c.envp = (const char *const *)e->v;
	c.home = tmpdir;
	c.now = fake_clock;
	return c;
}

/* Makes a struct awscreds and gets credentials.  Returns the result of
 * awscreds_get (or -2 when awscreds_new failed), with *out and err. */
static int
get_with(const struct awscreds_config *c, struct awscreds **ac,
         struct sigv4_creds *out, struct soar_error *err)
{
	memset(out, 0, sizeof(*out));
	soar_error_clear(err);
	*ac = awscreds_new(c, err);
	if (*ac == NULL)
		return -2;
	return awscreds_get(*ac, out, err);
}

/* ---- tests without the network ------------------------------------ */

static void
test_env(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	eb_base(&e);
	files(NULL, NULL);
	eb_add(&e, "AWS_ACCESS_KEY_ID=AKIAENV");
	eb_add(&e, "AWS_SECRET_ACCESS_KEY=envsecret");
	eb_add(&e, "AWS_SESSION_TOKEN=envtoken");
	c = cfg_of(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIAENV");
	CHECK_STR(cr.secret_key, "envsecret");
	CHECK_STR(cr.token, "envtoken");
	CHECK_STR(awscreds_source(ac), "environment");
	awscreds_free(ac);
	eb_free(&e);
}

static void
test_env_legacy_token(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	eb_base(&e);
	files(NULL, NULL);
	eb_add(&e, "AWS_ACCESS_KEY_ID=AKIAENV");
	eb_add(&e, "AWS_SECRET_ACCESS_KEY=envsecret");
	eb_add(&e, "AWS_SECURITY_TOKEN=legacytoken");
	c = cfg_of(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.token, "legacytoken");
	awscreds_free(ac);

	/* AWS_SESSION_TOKEN wins over the legacy name. */
	eb_add(&e, "AWS_SESSION_TOKEN=newtoken");
	c = cfg_of(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.token, "newtoken");
	awscreds_free(ac);
	eb_free(&e);
}

static void
test_env_half_set(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	files("[prod]\naws_access_key_id = AKIAPROD\n"
	      "aws_secret_access_key = prodsecret\n",
	      NULL);
	eb_base(&e);
	eb_add(&e, "AWS_ACCESS_KEY_ID=AKIAENV");
	c = cfg_of(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), -2);
	CHECK_STR(err.code, "config");
	CHECK(strstr(err.message, "AWS_SECRET_ACCESS_KEY") != NULL);
	CHECK(strstr(err.message, "AKIAENV") == NULL);

	/* With --profile the environment is not consulted at all. */
	c.profile = "prod";
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIAPROD");
	awscreds_free(ac);
	eb_free(&e);

	eb_base(&e);
	eb_add(&e, "AWS_SECRET_ACCESS_KEY=envsecret");
	c = cfg_of(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), -2);
	CHECK_STR(err.code, "config");
	CHECK(strstr(err.message, "AWS_SECRET_ACCESS_KEY is set but"
	                          " AWS_ACCESS_KEY_ID is not") != NULL);
	CHECK(strstr(err.message, "envsecret") == NULL);
	eb_free(&e);
}

static void
test_env_over_profile(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	files("[default]\naws_access_key_id = AKIADEF\n"
	      "aws_secret_access_key = defsecret\n"
	      "[prod]\naws_access_key_id = AKIAPROD\n"
	      "aws_secret_access_key = prodsecret\n",
	      NULL);
	eb_base(&e);
	eb_add(&e, "AWS_ACCESS_KEY_ID=AKIAENV");
	eb_add(&e, "AWS_SECRET_ACCESS_KEY=envsecret");
	c = cfg_of(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIAENV");
	awscreds_free(ac);

	/* AWS_PROFILE picks the profile but does not skip the
	 * environment (the CLI's rule)... */
	eb_add(&e, "AWS_PROFILE=prod");
	c = cfg_of(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIAENV");
	awscreds_free(ac);

	/* ... --profile does. */
	c.profile = "prod";
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIAPROD");
	CHECK(cr.token == NULL);
	CHECK_STR(awscreds_source(ac), "shared-credentials-file");
	awscreds_free(ac);
	eb_free(&e);

	/* Without environment keys, AWS_PROFILE selects. */
	eb_base(&e);
	eb_add(&e, "AWS_PROFILE=prod");
	c = cfg_of(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIAPROD");
	awscreds_free(ac);
	eb_free(&e);
}

static void
test_credentials_over_config(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	files("[prod]\naws_access_key_id = AKIACRED\n"
	      "aws_secret_access_key = credsecret\n",
	      "[profile prod]\naws_access_key_id = AKIACONF\n"
	      "aws_secret_access_key = confsecret\n"
	      "[profile only]\naws_access_key_id = AKIAONLY\n"
	      "aws_secret_access_key = onlysecret\n"
	      "aws_session_token = onlytoken\n"
	      "[default]\naws_access_key_id = AKIADEF\n"
	      "aws_secret_access_key = defsecret\n"
	      "[bare]\naws_access_key_id = AKIABARE\n"
	      "aws_secret_access_key = baresecret\n");
	eb_base(&e);
	c = cfg_of(&e);
	c.profile = "prod";
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIACRED");
	CHECK_STR(awscreds_source(ac), "shared-credentials-file");
	awscreds_free(ac);

	c.profile = "only";
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIAONLY");
	CHECK_STR(cr.token, "onlytoken");
	CHECK_STR(awscreds_source(ac), "config-file");
	awscreds_free(ac);

	/* [default] in the config file needs no "profile " prefix. */
	c.profile = NULL;
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIADEF");
	awscreds_free(ac);

	/* In the config file [bare] is not a profile. */
	c.profile = "bare";
	CHECK_INT(get_with(&c, &ac, &cr, &err), -2);
	CHECK_STR(err.code, "config");
	CHECK(strstr(err.message, "profile bare not found") != NULL);
	eb_free(&e);
}

static void
test_ini_syntax(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	files("\xef\xbb\xbf# comment\r\n"
	      "; another\r\n"
	      "[ prod ]\r\n"
	      "  ; indented comment\r\n"
	      "AWS_Access_Key_Id=AKIAINI   \r\n"
	      "aws_secret_access_key   :   ini secret = with # and ;\r\n"
	      "\r\n",
	      "[profile prod]\n"
	      "s3 =\n"
	      "  region = us-west-1\n"
	      "  max_concurrent_requests = 20\n"
	      "region = eu-central-1\n");
	eb_base(&e);
	c = cfg_of(&e);
	c.profile = "prod";
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIAINI");
	CHECK_STR(cr.secret_key, "ini secret = with # and ;");
	/* The nested s3 region is not the profile's region. */
	CHECK_STR(awscreds_region(ac), "eu-central-1");
	awscreds_free(ac);
	eb_free(&e);
}

static void
test_ini_errors(void)
{
	static const char *const bad[] = {
	        "[prod]\naws_access_key_id = A\naws_access_key_id = "
	        "TOPSECRET\n",
	        "aws_access_key_id = TOPSECRET\n[prod]\n",
	        "[prod]\nTOPSECRET\n",
	        "[prod]\n= TOPSECRET\n",
	        "[prod]\n[prod]\n",
	};
	const char *want[] = {":3: key repeated", ":1: a key before",
	                      ":2: expected", ":2: a value without a key",
	                      ":2: section repeated"};
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	eb_base(&e);
	c = cfg_of(&e);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		files(bad[i], NULL);
		CHECK_INT(get_with(&c, &ac, &cr, &err), -2);
		CHECK_STR(err.code, "config");
		CHECK(strstr(err.message, want[i]) != NULL);
		CHECK(strstr(err.message, "TOPSECRET") == NULL);
		if (strstr(err.message, want[i]) == NULL)
			printf("# %zu: %s\n", i, err.message);
	}
	/* A directory where the file should be. */
	files(NULL, NULL);
	mkdir(path_of("credentials"), 0700);
	CHECK_INT(get_with(&c, &ac, &cr, &err), -2);
	CHECK_STR(err.code, "config");
	CHECK(strstr(err.message, "not a regular file") != NULL);
	rmdir(path_of("credentials"));
	eb_free(&e);
}

static void
test_missing_profile(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	files("[prod]\naws_access_key_id = A\naws_secret_access_key = B\n",
	      NULL);
	eb_base(&e);
	c = cfg_of(&e);
	c.profile = "nope";
	CHECK_INT(get_with(&c, &ac, &cr, &err), -2);
	CHECK_STR(err.code, "config");
	CHECK(strstr(err.message, "profile nope not found") != NULL);

	eb_add(&e, "AWS_PROFILE=gone");
	c = cfg_of(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), -2);
	CHECK(strstr(err.message, "profile gone not found") != NULL);
	eb_free(&e);

	/* An absent default profile is no error: the chain goes on and
	 * finds nothing. */
	files(NULL, NULL);
	eb_base(&e);
	c = cfg_of(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "credentials");
	CHECK(strstr(err.message, "no AWS credentials found") != NULL);
	CHECK(strstr(err.message, "AWS_EC2_METADATA_DISABLED") != NULL);
	CHECK_STR(awscreds_source(ac), "");
	awscreds_free(ac);
	eb_free(&e);
}

static void
test_home_files(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	/* ~/.aws/credentials by default; ~ in the variables. */
	mkdir(path_of(".aws"), 0700);
	put(".aws/credentials",
	    "[default]\naws_access_key_id = AKIAHOME\n"
	    "aws_secret_access_key = homesecret\n",
	    0600);
	put("tilde",
	    "[t]\naws_access_key_id = AKIATILDE\n"
	    "aws_secret_access_key = tildesecret\n",
	    0600);
	memset(&e, 0, sizeof(e));
	eb_add(&e, "AWS_EC2_METADATA_DISABLED=true");
	c = cfg_of(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIAHOME");
	awscreds_free(ac);

	eb_add(&e, "AWS_SHARED_CREDENTIALS_FILE=~/tilde");
	c = cfg_of(&e);
	c.profile = "t";
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIATILDE");
	awscreds_free(ac);

	/* HOME from the environment when the config has none. */
	c.home = NULL;
	eb_add(&e, "HOME=%s", tmpdir);
	c.envp = (const char *const *)e.v;
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIATILDE");
	awscreds_free(ac);
	put(".aws/credentials", NULL, 0);
	put("tilde", NULL, 0);
	rmdir(path_of(".aws"));
	eb_free(&e);
}

static void
test_partial_file_keys(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	files("[prod]\naws_access_key_id = AKIAHALF\n", NULL);
	eb_base(&e);
	c = cfg_of(&e);
	c.profile = "prod";
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "config");
	CHECK(strstr(err.message, "profile prod has aws_access_key_id but no"
	                          " aws_secret_access_key") != NULL);
	awscreds_free(ac);
	eb_free(&e);
}

/* A credential_process script: prints body and exits with status. */
static void
script(const char *name, const char *body)
{
	put(name, body, 0700);
}

static void
test_process(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	struct buf cfgtext = BUF_INIT;

	/* stdin must be /dev/null: the tool's stdin is its event stream. */
	script("proc.sh",
	       "#!/bin/sh\n"
	       "if read line; then echo 'read stdin' >&2; exit 9; fi\n"
	       "printf '%s' '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC\","
	       " \"SecretAccessKey\": \"procsecret\", \"SessionToken\":"
	       " \"proctoken\", \"Expiration\": \"2023-11-14T23:13:20Z\"}'\n"
	       "echo \"arg=$1 env=$SOAR_TEST_VAR\" >&2\n");
	buf_printf(&cfgtext, "[profile p]\ncredential_process = %s 'one arg'\n",
	           path_of("proc.sh"));
	files(NULL, cfgtext.data);
	eb_base(&e);
	eb_add(&e, "SOAR_TEST_VAR=fromenvp");
	c = cfg_of(&e);
	c.profile = "p";
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIAPROC");
	CHECK_STR(cr.secret_key, "procsecret");
	CHECK_STR(cr.token, "proctoken");
	CHECK_STR(awscreds_source(ac), "process");
	if (strcmp(err.code, "") != 0)
		printf("# %s\n", err.message);
	awscreds_free(ac);
	buf_free(&cfgtext);
	eb_free(&e);
}

static void
test_process_failures(void)
{
	static const struct {
		const char *body;
		const char *want;
	} cases[] = {
	        {"#!/bin/sh\necho 'first line' >&2\necho 'second' >&2\n"
	         "echo '{\"AccessKeyId\":\"LEAKED\"}'\nexit 3\n",
	         "credential_process: exit status 3: first line"},
	        {"#!/bin/sh\necho 'not json LEAKED'\necho 'bad output' >&2\n",
	         "the answer is not a JSON object (stderr: bad output)"},
	        {"#!/bin/sh\necho '{\"Version\": 2, \"AccessKeyId\": "
	         "\"LEAKED\","
	         " \"SecretAccessKey\": \"LEAKED\"}'\n",
	         "Version is not 1"},
	        {"#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": "
	         "\"LEAKED\"}'\n",
	         "no AccessKeyId and SecretAccessKey"},
	        {"#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": "
	         "\"LEAKED\","
	         " \"SecretAccessKey\": \"LEAKED\", \"Expiration\": "
	         "\"soon\"}'\n",
	         "Expiration \"soon\" is not an RFC 3339 time"},
	        {"#!/bin/sh\nkill -9 $$\n", "killed by signal 9"},
	        {"#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' x\n",
	         "more than 65536 bytes"},
	};
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	struct buf cfgtext = BUF_INIT;

	/* exec: the script is the process waited for (dash would fork). */
	buf_printf(&cfgtext, "[profile p]\ncredential_process = exec %s\n",
	           path_of("bad.sh"));
	files(NULL, cfgtext.data);
	eb_base(&e);
	c = cfg_of(&e);
	c.profile = "p";
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		script("bad.sh", cases[i].body);
		CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
		CHECK_STR(err.code, "credentials");
		CHECK(strstr(err.message, cases[i].want) != NULL);
		CHECK(strstr(err.message, "LEAKED") == NULL);
		CHECK(strstr(err.message, "second") == NULL);
		if (strstr(err.message, cases[i].want) == NULL)
			printf("# case %zu: %s\n", i, err.message);
		awscreds_free(ac);
	}
	buf_free(&cfgtext);
	eb_free(&e);
}

/* The CLI's order: credentials file, credential_process, config file. */
static void
test_process_order(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	struct buf cfgtext = BUF_INIT;

	script("proc.sh", "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\":"
	                  " \"AKIAPROC\", \"SecretAccessKey\": \"s\"}'\n");
	buf_printf(&cfgtext,
	           "[profile p]\ncredential_process = %s\n"
	           "aws_access_key_id = AKIACONF\naws_secret_access_key = s\n",
	           path_of("proc.sh"));
	files(NULL, cfgtext.data);
	eb_base(&e);
	c = cfg_of(&e);
	c.profile = "p";
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIAPROC");
	CHECK(cr.token == NULL);
	awscreds_free(ac);

	files("[p]\naws_access_key_id = AKIACRED\naws_secret_access_key = s\n",
	      cfgtext.data);
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIACRED");
	awscreds_free(ac);
	buf_free(&cfgtext);
	eb_free(&e);
}

static int
count_runs(void)
{
	char *s = slurp("runs");
	int n = s ? (int)strlen(s) : 0;

	free(s);
	return n;
}

static void
test_refresh(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	struct buf b = BUF_INIT;

	/* Each run appends to "runs" and hands out a new key; all expire at
	 * 2023-11-15T00:00:00Z (1700006400). */
	buf_printf(&b,
	           "#!/bin/sh\nprintf x >> %s\n"
	           "n=$(wc -c < %s | tr -d ' ')\n"
	           "[ -e %s ] && { echo 'refresh refused' >&2; exit 1; }\n"
	           "echo '{\"Version\": 1, \"AccessKeyId\": \"AKIA'$n'\","
	           " \"SecretAccessKey\": \"s\", \"Expiration\":"
	           " \"2023-11-15T00:00:00.000+00:00\"}'\n",
	           path_of("runs"), path_of("runs"), path_of("fail"));
	script("refresh.sh", b.data);
	buf_clear(&b);
	buf_printf(&b, "[default]\ncredential_process = %s\n",
	           path_of("refresh.sh"));
	files(NULL, b.data);
	put("runs", NULL, 0);
	put("fail", NULL, 0);
	eb_base(&e);
	c = cfg_of(&e);
	fake_now = 1700006400 - 3600;
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIA1");
	CHECK_INT(count_runs(), 1);

	/* More than five minutes left: the cache serves. */
	fake_now = 1700006400 - 301;
	CHECK_INT(awscreds_get(ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIA1");
	CHECK_INT(count_runs(), 1);

	/* Within five minutes: fetched again. */
	fake_now = 1700006400 - 299;
	CHECK_INT(awscreds_get(ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIA2");
	CHECK_INT(count_runs(), 2);

	/* The new ones expire as soon: not asked again at once... */
	fake_now += 10;
	CHECK_INT(awscreds_get(ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIA2");
	CHECK_INT(count_runs(), 2);

	/* ... but after a while; a failed refresh keeps the old ones while
	 * they last... */
	put("fail", "", 0600);
	fake_now += 60;
	CHECK_INT(awscreds_get(ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIA2");
	CHECK_INT(count_runs(), 3);

	/* ... and fails once they expired. */
	fake_now = 1700006400;
	CHECK_INT(awscreds_get(ac, &cr, &err), -1);
	CHECK_STR(err.code, "credentials");
	CHECK(strstr(err.message, "refresh refused") != NULL);
	awscreds_free(ac);

	/* Static keys never expire. */
	files("[default]\naws_access_key_id = AKIASTATIC\n"
	      "aws_secret_access_key = s\n",
	      NULL);
	fake_now = 1700000000;
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	fake_now = 2000000000;
	CHECK_INT(awscreds_get(ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIASTATIC");
	awscreds_free(ac);
	fake_now = 1700000000;
	put("runs", NULL, 0);
	put("fail", NULL, 0);
	buf_free(&b);
	eb_free(&e);
}

static void
test_region(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct soar_error err;

	files(NULL, "[default]\nregion = eu-west-3\n"
	            "[profile other]\nregion = ap-south-1\n");
	eb_base(&e);
	c = cfg_of(&e);
	ac = awscreds_new(&c, &err);
	CHECK(ac != NULL);
	CHECK_STR(awscreds_region(ac), "eu-west-3");
	awscreds_free(ac);

	c.profile = "other";
	ac = awscreds_new(&c, &err);
	CHECK_STR(awscreds_region(ac), "ap-south-1");
	awscreds_free(ac);

	eb_add(&e, "AWS_DEFAULT_REGION=us-west-2");
	c.envp = (const char *const *)e.v;
	ac = awscreds_new(&c, &err);
	CHECK_STR(awscreds_region(ac), "us-west-2");
	awscreds_free(ac);

	eb_add(&e, "AWS_REGION=eu-north-1");
	c.envp = (const char *const *)e.v;
	ac = awscreds_new(&c, &err);
	CHECK_STR(awscreds_region(ac), "eu-north-1");
	awscreds_free(ac);

	c.region = "ca-central-1";
	ac = awscreds_new(&c, &err);
	CHECK_STR(awscreds_region(ac), "ca-central-1");
	awscreds_free(ac);

	c.region = "evil.example.com/";
	CHECK(awscreds_new(&c, &err) == NULL);
	CHECK_STR(err.code, "config");
	eb_free(&e);

	files(NULL, NULL);
	eb_base(&e);
	c = cfg_of(&e);
	ac = awscreds_new(&c, &err);
	CHECK(ac != NULL && awscreds_region(ac) == NULL);
	awscreds_free(ac);
	eb_free(&e);
}

/* Checks awscreds_endpoint(ac, id, prefix, region) == want. */
static void
check_endpoint(struct awscreds *ac, const char *id, const char *prefix,
               const char *region, const char *want)
{
	char *s = awscreds_endpoint(ac, id, prefix, region);

	CHECK_STR(s, want);
	free(s);
}

static void
test_endpoint(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct soar_error err;

	files(NULL, "[default]\nendpoint_url = http://profile.example/\n"
	            "services = local\n"
	            "[services local]\n"
	            "elastic_load_balancing =\n"
	            "  endpoint_url = http://services.example:4566\n"
	            "[profile plain]\nregion = us-east-1\n");
	eb_base(&e);
	c = cfg_of(&e);
	c.profile = "plain";
	ac = awscreds_new(&c, &err);
	check_endpoint(ac, "SecurityHub", "securityhub", "eu-west-1",
	               "https://securityhub.eu-west-1.amazonaws.com");
	check_endpoint(ac, "STS", "sts", NULL, "https://sts.amazonaws.com");
	check_endpoint(ac, "EC2", "ec2", "cn-north-1",
	               "https://ec2.cn-north-1.amazonaws.com.cn");
	awscreds_free(ac);

	/* The profile's endpoint_url, its services section for one id. */
	c.profile = NULL;
	ac = awscreds_new(&c, &err);
	check_endpoint(ac, "STS", "sts", NULL, "http://profile.example");
	check_endpoint(ac, "Elastic Load Balancing", "elasticloadbalancing",
	               "eu-west-1", "http://services.example:4566");
	awscreds_free(ac);

	eb_add(&e, "AWS_ENDPOINT_URL=http://global.example:1/");
	eb_add(&e, "AWS_ENDPOINT_URL_SECURITYHUB=https://sh.example");
	eb_add(&e,
	       "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING=http://elb.example");
	c.envp = (const char *const *)e.v;
	ac = awscreds_new(&c, &err);
	check_endpoint(ac, "SecurityHub", "securityhub", "eu-west-1",
	               "https://sh.example");
	check_endpoint(ac, "Elastic Load Balancing", "elasticloadbalancing",
	               "eu-west-1", "http://elb.example");
	check_endpoint(ac, "Security Hub", "securityhub", "eu-west-1",
	               "http://global.example:1");
	check_endpoint(ac, "IAM", "iam", NULL, "http://global.example:1");
	awscreds_free(ac);

	eb_add(&e, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=TRUE");
	c.envp = (const char *const *)e.v;
	ac = awscreds_new(&c, &err);
	check_endpoint(ac, "SecurityHub", "securityhub", "eu-west-1",
	               "https://securityhub.eu-west-1.amazonaws.com");
	awscreds_free(ac);
	eb_free(&e);

	/* A URL without a scheme is a configuration error. */
	eb_base(&e);
	eb_add(&e, "AWS_ENDPOINT_URL_STS=localhost:4566");
	c = cfg_of(&e);
	CHECK(awscreds_new(&c, &err) == NULL);
	CHECK_STR(err.code, "config");
	CHECK(strstr(err.message, "AWS_ENDPOINT_URL_STS") != NULL);
	eb_free(&e);

	files(NULL, "[default]\nendpoint_url = profile.example\n");
	eb_base(&e);
	c = cfg_of(&e);
	CHECK(awscreds_new(&c, &err) == NULL);
	CHECK_STR(err.code, "config");
	CHECK(strstr(err.message, "endpoint_url") != NULL);
	eb_free(&e);
}

/* Role configurations that are wrong before anything is fetched. */
static void
test_role_config_errors(void)
{
	static const struct {
		const char *config;
		const char *want;
	} cases[] = {
	        {"[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n"
	         "source_profile = b\n"
	         "[profile b]\nrole_arn = arn:aws:iam::123456789012:role/B\n"
	         "source_profile = a\n",
	         "profile b: source_profile a makes a cycle"},
	        {"[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n"
	         "source_profile = a\n",
	         "profile a: source_profile a makes a cycle"},
	        {"[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n"
	         "source_profile = ghost\n",
	         "source_profile ghost not found"},
	        {"[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n"
	         "source_profile = b\ncredential_source = Environment\n"
	         "[profile b]\n",
	         "both source_profile and credential_source"},
	        {"[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n",
	         "role_arn needs source_profile or credential_source"},
	        {"[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n"
	         "credential_source = environment\n",
	         "credential_source environment is not Environment"},
	        {"[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n"
	         "credential_source = Environment\nmfa_serial = arn:x\n",
	         "mfa_serial"},
	        {"[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n"
	         "credential_source = Environment\nduration_seconds = 60\n",
	         "duration_seconds 60 is not within 900 and 43200"},
	        {"[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n"
	         "credential_source = Environment\nduration_seconds = 1h\n",
	         "duration_seconds is not a number"},
	        {"[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n"
	         "credential_source = Environment\nrole_session_name = a b\n",
	         "role_session_name must be"},
	        {"[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n"
	         "web_identity_token_file = /t\n",
	         "web_identity_token_file"},
	};
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	eb_base(&e);
	c = cfg_of(&e);
	c.profile = "a";
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		files(NULL, cases[i].config);
		CHECK_INT(get_with(&c, &ac, &cr, &err), -2);
		CHECK_STR(err.code, "config");
		CHECK(strstr(err.message, cases[i].want) != NULL);
		if (strstr(err.message, cases[i].want) == NULL)
			printf("# case %zu: %s\n", i, err.message);
	}

	/* The environment supersedes the profile, so its role settings
	 * do not matter then (AWS_PROFILE, not --profile). */
	files(NULL, cases[0].config);
	eb_add(&e, "AWS_PROFILE=a");
	eb_add(&e, "AWS_ACCESS_KEY_ID=AKIAENV");
	eb_add(&e, "AWS_SECRET_ACCESS_KEY=s");
	c = cfg_of(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, "AKIAENV");
	awscreds_free(ac);

	/* --role-arn settings are checked too. */
	c.role_arn = "arn:aws:iam::123456789012:role/A";
	c.duration_seconds = 50000;
	CHECK_INT(get_with(&c, &ac, &cr, &err), -2);
	CHECK(strstr(err.message, "--role-arn: duration_seconds") != NULL);
	eb_free(&e);
}

/* A source profile without keys is found out when fetching. */
static void
test_source_without_keys(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	files(NULL, "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n"
	            "source_profile = b\n[profile b]\nregion = us-east-1\n");
	eb_base(&e);
	c = cfg_of(&e);
	c.profile = "a";
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "config");
	CHECK(strstr(err.message, "source_profile b has no credentials") !=
	      NULL);
	awscreds_free(ac);

	/* credential_source Environment without environment keys. */
	files(NULL, "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/A\n"
	            "credential_source = Environment\n");
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "credentials");
	CHECK(strstr(err.message, "credential_source Environment has no"
	                          " credentials") != NULL);
	awscreds_free(ac);
	eb_free(&e);
}

static void
test_container_refused(void)
{
	static const char *const refused[] = {
	        "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://example.com/creds",
	        "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://10.1.2.3/creds",
	        "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://[fd00:ec2::24]/c",
	        "AWS_CONTAINER_CREDENTIALS_FULL_URI=ftp://127.0.0.1/c",
	        "AWS_CONTAINER_CREDENTIALS_FULL_URI=no scheme",
	        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=@evil.example/x",
	};
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	files(NULL, NULL);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		eb_base(&e);
		eb_add(&e, "%s", refused[i]);
		c = cfg_of(&e);
		CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
		CHECK_STR(err.code, "config");
		CHECK(strstr(err.message, "AWS_CONTAINER_CREDENTIALS") != NULL);
		awscreds_free(ac);
		eb_free(&e);
	}
}

/* STS out of reach: lib/http's error, after its retries. */
static void
test_sts_unreachable(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	files(NULL, NULL);
	eb_base(&e);
	eb_add(&e, "AWS_ENDPOINT_URL_STS=http://127.0.0.1:1");
	eb_add(&e, "AWS_ACCESS_KEY_ID=" AKID);
	eb_add(&e, "AWS_SECRET_ACCESS_KEY=" SECRET);
	c = cfg_of(&e);
	c.role_arn = "arn:aws:iam::123456789012:role/A";
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "network");
	CHECK_INT(err.attempts, 3);
	CHECK(strstr(err.message, "POST http://127.0.0.1:1/") != NULL);
	awscreds_free(ac);
	eb_free(&e);
}

/* Log lines name the source, never a secret. */
static void
test_log_names_source(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	struct log lg;
	char *text;
	int fd;

	files("[prod]\naws_access_key_id = AKIALOGGED\n"
	      "aws_secret_access_key = logsecret\naws_session_token = logtok\n",
	      NULL);
	fd = open(path_of("log"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	log_init(&lg, "test");
	lg.level = LOG_TRACE;
	lg.fd = fd;
	eb_base(&e);
	c = cfg_of(&e);
	c.profile = "prod";
	c.log = &lg;
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	awscreds_free(ac);
	close(fd);
	text = slurp("log");
	CHECK(text != NULL &&
	      strstr(text, "credentials from the shared credentials file,"
	                   " profile prod") != NULL);
	CHECK(text != NULL && strstr(text, "logsecret") == NULL);
	CHECK(text != NULL && strstr(text, "logtok") == NULL);
	free(text);
	eb_free(&e);
}

/* ---- the simulator ------------------------------------------------ */

static void
sim_state(const char *name, const char *json)
{
	char path[128];

	snprintf(path, sizeof(path), "/_sim/state/%s", name);
	free(sim_control("POST", path, json, NULL));
}

static void
sim_reset(void)
{
	free(sim_control("POST", "/_sim/reset", NULL, NULL));
}

/* The requests the simulator received under path, as a jv array. */
static jv
requests(const char *path)
{
	char q[256];
	char *s;
	jv v;

	snprintf(q, sizeof(q), "/_sim/requests?path=%s", path);
	s = sim_control("GET", q, NULL, NULL);
	v = jv_parse(s);
	free(s);
	return jv_get_kind(v) == JV_KIND_ARRAY ? v : (jv_free(v), jv_array());
}

/* The signed AWS calls the simulator verified, as a jv array. */
static jv
aws_calls(void)
{
	char *s = sim_control("GET", "/__aws/calls", NULL, NULL);
	jv v = jv_parse(s);

	free(s);
	return jv_get_kind(v) == JV_KIND_ARRAY ? v : (jv_free(v), jv_array());
}

/* Returns the string at a.[i].k1[.k2] (a copy in a static buffer) or "". */
static const char *
jget(jv a, int i, const char *k1, const char *k2)
{
	static char out[2048];
	jv v = jv_array_get(jv_copy(a), i);

	if (jv_get_kind(v) == JV_KIND_OBJECT)
		v = jv_object_get(v, jv_string(k1));
	if (k2 != NULL && jv_get_kind(v) == JV_KIND_OBJECT)
		v = jv_object_get(v, jv_string(k2));
	out[0] = '\0';
	if (jv_get_kind(v) == JV_KIND_STRING)
		snprintf(out, sizeof(out), "%s", jv_string_value(v));
	else if (jv_get_kind(v) == JV_KIND_NUMBER)
		snprintf(out, sizeof(out), "%.0f", jv_number_value(v));
	else if (jv_get_kind(v) == JV_KIND_TRUE)
		snprintf(out, sizeof(out), "true");
	else if (jv_get_kind(v) == JV_KIND_FALSE)
		snprintf(out, sizeof(out), "false");
	jv_free(v);
	return out;
}

static int
jlen(jv a)
{
	return jv_array_length(jv_copy(a));
}

/* Runs a simulator test, or reports it skipped in TAP ("# SKIP"); with
 * CI=true a skipped test fails, as the house rules want. */
#define UNIT_RUN_SIM(fn)                                                       \
	do {                                                                   \
		if (have_sim) {                                                \
			sim_reset();                                           \
			clock_offset = 0;                                      \
			UNIT_RUN(fn);                                          \
			break;                                                 \
		}                                                              \
		unit_count++;                                                  \
		if (ci) {                                                      \
			unit_nfailed++;                                        \
			printf("not ok %d - %s # simulator has no AWS routes"  \
			       " and CI=true\n",                               \
			       unit_count, #fn);                               \
		} else {                                                       \
			printf("ok %d - %s # SKIP simulator has no AWS"        \
			       " routes\n",                                    \
			       unit_count, #fn);                               \
		}                                                              \
	} while (0)

/* The environment of a simulator test: STS at the simulator. */
static void
eb_sim(struct envb *e)
{
	eb_base(e);
	eb_add(e, "AWS_ENDPOINT_URL_STS=%s", sim_url);
}

static struct awscreds_config
cfg_sim(const struct envb *e)
{
	struct awscreds_config c = cfg_of(e);

	c.now = offset_clock;
	return c;
}

#define ROLE_A "arn:aws:iam::123456789012:role/SocResponder"
#define ROLE_B "arn:aws:iam::123456789012:role/Middle"

static void
test_sts_source_profile(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	jv reqs, calls;

	files("[base]\naws_access_key_id = " AKID "\n"
	      "aws_secret_access_key = " SECRET "\n",
	      "[profile prod]\nrole_arn = " ROLE_A "\nsource_profile = base\n"
	      "role_session_name = soc-run\nduration_seconds = 1800\n"
	      "external_id = ext-1234\n");
	eb_sim(&e);
	c = cfg_sim(&e);
	c.profile = "prod";
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	if (err.code[0] != '\0')
		printf("# %s: %s\n", err.code, err.message);
	CHECK_STR(awscreds_source(ac), "assume-role");
	CHECK(cr.access_key != NULL && strncmp(cr.access_key, "ASIA", 4) == 0);
	CHECK(cr.token != NULL && cr.secret_key != NULL);

	reqs = requests("/");
	CHECK_INT(jlen(reqs), 1);
	CHECK_STR(jget(reqs, 0, "method", NULL), "POST");
	CHECK_STR(jget(reqs, 0, "body", NULL),
	          "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam"
	          "%3A%3A123456789012%3Arole%2FSocResponder&RoleSessionName="
	          "soc-run&DurationSeconds=1800&ExternalId=ext-1234");
	CHECK_STR(jget(reqs, 0, "headers", "content-type"),
	          "application/x-www-form-urlencoded; charset=utf-8");
	calls = aws_calls();
	CHECK_INT(jlen(calls), 1);
	CHECK_STR(jget(calls, 0, "access_key", NULL), AKID);
	CHECK_STR(jget(calls, 0, "service", NULL), "sts");
	CHECK_STR(jget(calls, 0, "operation", NULL), "AssumeRole");
	/* A configured endpoint without a region signs for us-east-1. */
	CHECK_STR(jget(calls, 0, "region", NULL), "us-east-1");
	CHECK_STR(jget(calls, 0, "status", NULL), "200");
	jv_free(reqs);
	jv_free(calls);
	awscreds_free(ac);
	eb_free(&e);
}

/* role_arn wins over the profile's own static keys, which it may name as
 * its source; the region of the profile signs. */
static void
test_sts_role_over_static(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	jv calls, reqs;

	files("[prod]\naws_access_key_id = " AKID "\n"
	      "aws_secret_access_key = " SECRET "\n",
	      "[profile prod]\nrole_arn = " ROLE_A "\nsource_profile = prod\n"
	      "region = eu-west-1\n");
	eb_sim(&e);
	c = cfg_sim(&e);
	c.profile = "prod";
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(awscreds_source(ac), "assume-role");
	CHECK(cr.access_key != NULL && strncmp(cr.access_key, "ASIA", 4) == 0);
	calls = aws_calls();
	CHECK_STR(jget(calls, 0, "region", NULL), "eu-west-1");
	reqs = requests("/");
	CHECK(strstr(jget(reqs, 0, "body", NULL),
	             "&RoleSessionName=soarutils-") != NULL);
	CHECK(strstr(jget(reqs, 0, "body", NULL), "&DurationSeconds=3600") !=
	      NULL);
	CHECK(strstr(jget(reqs, 0, "body", NULL), "ExternalId") == NULL);
	jv_free(calls);
	jv_free(reqs);
	awscreds_free(ac);
	eb_free(&e);
}

static void
test_sts_chain(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	jv calls;

	files("[base]\naws_access_key_id = " AKID "\n"
	      "aws_secret_access_key = " SECRET "\n",
	      "[profile prod]\nrole_arn = " ROLE_A "\nsource_profile = mid\n"
	      "[profile mid]\nrole_arn = " ROLE_B "\nsource_profile = base\n");
	eb_sim(&e);
	c = cfg_sim(&e);
	c.profile = "prod";
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	if (err.code[0] != '\0')
		printf("# %s: %s\n", err.code, err.message);
	calls = aws_calls();
	CHECK_INT(jlen(calls), 2);
	/* Innermost first: base assumes Middle, Middle assumes the role. */
	CHECK_STR(jget(calls, 0, "access_key", NULL), AKID);
	CHECK(strstr(jget(calls, 1, "principal", NULL),
	             "assumed-role/Middle") != NULL);
	CHECK_STR(jget(calls, 1, "session_token", NULL), "true");
	CHECK_STR(jget(calls, 1, "token_signed", NULL), "true");
	jv_free(calls);
	awscreds_free(ac);
	eb_free(&e);
}

static void
test_sts_refused(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	sim_state("aws_roles",
	          "{\"" ROLE_A "\": {\"external_id\": \"right-id\"}}");
	files("[base]\naws_access_key_id = " AKID "\n"
	      "aws_secret_access_key = " SECRET "\n",
	      "[profile prod]\nrole_arn = " ROLE_A "\nsource_profile = base\n"
	      "external_id = wrong-id\n");
	eb_sim(&e);
	c = cfg_sim(&e);
	c.profile = "prod";
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "auth");
	CHECK_INT(err.status, 403);
	CHECK(strstr(err.message, "STS AssumeRole " ROLE_A ": AccessDenied") !=
	      NULL);
	CHECK(strstr(err.message, SECRET) == NULL);
	awscreds_free(ac);

	/* An unknown key. */
	files("[base]\naws_access_key_id = AKIAUNKNOWN\n"
	      "aws_secret_access_key = x\n",
	      "[profile prod]\nrole_arn = " ROLE_A "\nsource_profile = base\n"
	      "external_id = right-id\n");
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "auth");
	CHECK(strstr(err.message, "InvalidClientTokenId") != NULL);
	awscreds_free(ac);
	eb_free(&e);
}

/* STS throttling (a 400 with a throttling code) is retried; an answer
 * without credentials, or with a DTD, is refused. */
static void
test_sts_answers(void)
{
	static const char *const refused[] = {
	        "<AssumeRoleResponse><AssumeRoleResult><Credentials>"
	        "<AccessKeyId>ASIAX</AccessKeyId></Credentials>",
	        "<!DOCTYPE r [<!ENTITY k \\\"ASIAX\\\">]><AssumeRoleResponse>"
	        "<AssumeRoleResult><Credentials><AccessKeyId>&k;</AccessKeyId>"
	        "<SecretAccessKey>s</SecretAccessKey><SessionToken>t"
	        "</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>"
	        "</Credentials></AssumeRoleResult></AssumeRoleResponse>",
	};
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	struct buf rule = BUF_INIT;
	jv reqs;

	files("[base]\naws_access_key_id = " AKID "\n"
	      "aws_secret_access_key = " SECRET "\n",
	      "[profile prod]\nrole_arn = " ROLE_A "\nsource_profile = base\n");
	eb_sim(&e);
	c = cfg_sim(&e);
	c.profile = "prod";
	free(sim_control(
	        "POST", "/_sim/faults",
	        "{\"method\": \"POST\", \"path\": \"^/$\", \"count\": 1,"
	        " \"status\": 400, \"body\": \"<ErrorResponse><Error><Type>"
	        "Sender</Type><Code>Throttling</Code><Message>Rate exceeded"
	        "</Message></Error></ErrorResponse>\"}",
	        NULL));
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	reqs = requests("/");
	CHECK_INT(jlen(reqs), 2);
	jv_free(reqs);
	awscreds_free(ac);

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		sim_reset();
		buf_clear(&rule);
		buf_printf(&rule,
		           "{\"method\": \"POST\", \"path\": \"^/$\","
		           " \"status\": 200, \"body\": \"%s\"}",
		           refused[i]);
		free(sim_control("POST", "/_sim/faults", rule.data, NULL));
		CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
		CHECK_STR(err.code, "credentials");
		CHECK(strstr(err.message, "no Credentials in the answer") !=
		      NULL);
		awscreds_free(ac);
	}
	buf_free(&rule);
	eb_free(&e);
}

/* --role-arn over whatever the chain found (here the environment). */
static void
test_sts_role_arn_option(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	jv reqs, calls;

	files(NULL, NULL);
	eb_sim(&e);
	eb_add(&e, "AWS_ACCESS_KEY_ID=" AKID);
	eb_add(&e, "AWS_SECRET_ACCESS_KEY=" SECRET);
	eb_add(&e, "AWS_REGION=ap-southeast-2");
	c = cfg_sim(&e);
	c.role_arn = ROLE_A;
	c.external_id = "ext-9";
	c.session_name = "ticket-42";
	c.duration_seconds = 900;
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(awscreds_source(ac), "assume-role");
	CHECK(cr.access_key != NULL && strncmp(cr.access_key, "ASIA", 4) == 0);
	reqs = requests("/");
	CHECK(strstr(jget(reqs, 0, "body", NULL),
	             "&RoleSessionName=ticket-42&DurationSeconds=900"
	             "&ExternalId=ext-9") != NULL);
	calls = aws_calls();
	CHECK_STR(jget(calls, 0, "region", NULL), "ap-southeast-2");
	jv_free(reqs);
	jv_free(calls);
	awscreds_free(ac);
	eb_free(&e);
}

/* Temporary credentials are fetched again near their expiry. */
static void
test_sts_refresh(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	char first[64];
	jv calls;

	files(NULL, NULL);
	eb_sim(&e);
	eb_add(&e, "AWS_ACCESS_KEY_ID=" AKID);
	eb_add(&e, "AWS_SECRET_ACCESS_KEY=" SECRET);
	c = cfg_sim(&e);
	c.role_arn = ROLE_A;
	c.duration_seconds = 900;
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	snprintf(first, sizeof(first), "%s",
	         cr.access_key ? cr.access_key : "");
	clock_offset = 500; /* 400 s left: not yet */
	sim_state("aws_clock_skew_s", "500");
	CHECK_INT(awscreds_get(ac, &cr, &err), 0);
	CHECK_STR(cr.access_key, first);
	clock_offset = 700; /* 200 s left: refresh */
	sim_state("aws_clock_skew_s", "700");
	CHECK_INT(awscreds_get(ac, &cr, &err), 0);
	if (err.code[0] != '\0')
		printf("# %s: %s\n", err.code, err.message);
	CHECK(cr.access_key != NULL && strcmp(cr.access_key, first) != 0);
	calls = aws_calls();
	CHECK_INT(jlen(calls), 2);
	jv_free(calls);
	clock_offset = 0;
	awscreds_free(ac);
	eb_free(&e);
}

static void
test_imds_v2(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	jv reqs;

	files(NULL, NULL);
	memset(&e, 0, sizeof(e));
	eb_add(&e, "AWS_SHARED_CREDENTIALS_FILE=%s", path_of("credentials"));
	eb_add(&e, "AWS_CONFIG_FILE=%s", path_of("config"));
	eb_add(&e, "AWS_EC2_METADATA_SERVICE_ENDPOINT=%s/", sim_url);
	c = cfg_sim(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	if (err.code[0] != '\0')
		printf("# %s: %s\n", err.code, err.message);
	CHECK_STR(awscreds_source(ac), "imds");
	CHECK(cr.access_key != NULL && strncmp(cr.access_key, "ASIA", 4) == 0);
	CHECK(cr.token != NULL);
	reqs = requests("/latest/");
	CHECK_INT(jlen(reqs), 3);
	CHECK_STR(jget(reqs, 0, "method", NULL), "PUT");
	CHECK_STR(jget(reqs, 0, "path", NULL), "/latest/api/token");
	CHECK_STR(jget(reqs, 0, "headers",
	               "x-aws-ec2-metadata-token-ttl-seconds"),
	          "21600");
	CHECK_STR(jget(reqs, 1, "path", NULL),
	          "/latest/meta-data/iam/security-credentials/");
	CHECK(jget(reqs, 1, "headers", "x-aws-ec2-metadata-token")[0] != '\0');
	CHECK_STR(jget(reqs, 2, "path", NULL),
	          "/latest/meta-data/iam/security-credentials/"
	          "soar-instance-role");
	CHECK(jget(reqs, 2, "headers", "x-aws-ec2-metadata-token")[0] != '\0');
	jv_free(reqs);
	awscreds_free(ac);
	eb_free(&e);
}

/* The IMDS environment of a test: no files, IMDS at the simulator. */
static void
eb_imds(struct envb *e)
{
	memset(e, 0, sizeof(*e));
	eb_add(e, "AWS_SHARED_CREDENTIALS_FILE=%s", path_of("credentials"));
	eb_add(e, "AWS_CONFIG_FILE=%s", path_of("config"));
	eb_add(e, "AWS_EC2_METADATA_SERVICE_ENDPOINT=%s", sim_url);
}

static void
test_imds_v1_fallback(void)
{
	static const char *const statuses[] = {"403", "404", "405"};
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	jv reqs;

	files(NULL, NULL);
	eb_imds(&e);
	c = cfg_sim(&e);
	for (int i = 0; i < 3; i++) {
		sim_reset();
		sim_state("imds_token_status", statuses[i]);
		sim_state("imds_v1", "true");
		CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
		CHECK_STR(awscreds_source(ac), "imds");
		reqs = requests("/latest/meta-data/");
		CHECK_INT(jlen(reqs), 2);
		CHECK_STR(jget(reqs, 0, "headers", "x-aws-ec2-metadata-token"),
		          "");
		jv_free(reqs);
		awscreds_free(ac);
	}

	/* IMDSv1 disabled on our side: an error. */
	eb_add(&e, "AWS_EC2_METADATA_V1_DISABLED=true");
	c = cfg_sim(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "credentials");
	CHECK(strstr(err.message, "IMDSv1 is disabled") != NULL);
	awscreds_free(ac);
	eb_free(&e);
}

static void
test_imds_errors(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;

	files(NULL, NULL);
	eb_imds(&e);
	c = cfg_sim(&e);

	sim_state("imds_token_status", "400");
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "credentials");
	CHECK(strstr(err.message, "HTTP 400") != NULL);
	awscreds_free(ac);

	sim_reset();
	sim_state("imds_role", "null");
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "credentials");
	CHECK(strstr(err.message, "no AWS credentials found") != NULL);
	CHECK(strstr(err.message, "no instance role") != NULL);
	awscreds_free(ac);

	sim_reset();
	sim_state("imds_credentials_error",
	          "{\"Code\": \"AssumeRoleUnauthorizedAccess\","
	          " \"Message\": \"EC2 cannot assume the role\"}");
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "credentials");
	CHECK(strstr(err.message, "IMDS role soar-instance-role:"
	                          " AssumeRoleUnauthorizedAccess") != NULL);
	awscreds_free(ac);

	/* Disabled: never asked. */
	sim_reset();
	eb_add(&e, "AWS_EC2_METADATA_DISABLED=TRUE");
	c = cfg_sim(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "credentials");
	{
		jv reqs = requests("/latest/");

		CHECK_INT(jlen(reqs), 0);
		jv_free(reqs);
	}
	awscreds_free(ac);
	eb_free(&e);
}

static void
test_container(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	jv reqs;

	files(NULL, NULL);

	/* The relative URI (ECS), its base moved to the simulator. */
	eb_base(&e);
	eb_add(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/"
	           "abc-123");
	c = cfg_sim(&e);
	c.ecs_base_url = sim_url;
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	if (err.code[0] != '\0')
		printf("# %s: %s\n", err.code, err.message);
	CHECK_STR(awscreds_source(ac), "container");
	CHECK(cr.access_key != NULL && strncmp(cr.access_key, "ASIA", 4) == 0);
	CHECK(cr.token != NULL);
	reqs = requests("/v2/credentials/abc-123");
	CHECK_INT(jlen(reqs), 1);
	CHECK_STR(jget(reqs, 0, "headers", "authorization"), "");
	jv_free(reqs);
	awscreds_free(ac);
	eb_free(&e);

	/* The full URI (EKS) on localhost, with a token. */
	sim_reset();
	sim_state("container_auth_token", "\"pod-token-1\"");
	eb_base(&e);
	eb_add(&e,
	       "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://localhost:%s"
	       "/container-credentials/x",
	       strrchr(sim_url, ':') + 1);
	eb_add(&e, "AWS_CONTAINER_AUTHORIZATION_TOKEN=pod-token-1");
	c = cfg_sim(&e);
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	CHECK_STR(awscreds_source(ac), "container");
	reqs = requests("/container-credentials/x");
	CHECK_STR(jget(reqs, 0, "headers", "authorization"), "pod-token-1");
	jv_free(reqs);
	awscreds_free(ac);

	/* The token file wins over the variable and is read each time. */
	put("token", "pod-token-1\n", 0600);
	eb_add(&e, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%s",
	       path_of("token"));
	c = cfg_sim(&e);
	sim_state("container_auth_token", "\"pod-token-2\"");
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "auth");
	CHECK_INT(err.status, 401);
	awscreds_free(ac);
	put("token", "pod-token-2", 0600);
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	awscreds_free(ac);
	put("token", "bad\ntoken", 0600);
	CHECK_INT(get_with(&c, &ac, &cr, &err), -1);
	CHECK_STR(err.code, "config");
	CHECK(strstr(err.message, "line break") != NULL);
	awscreds_free(ac);
	put("token", NULL, 0);
	eb_free(&e);
}

/* credential_source: Environment, Ec2InstanceMetadata, EcsContainer. */
static void
test_credential_source(void)
{
	static const char *const sources[] = {
	        "Environment", "Ec2InstanceMetadata", "EcsContainer"};
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	struct buf b = BUF_INIT;
	jv calls;

	for (int i = 0; i < 3; i++) {
		sim_reset();
		buf_clear(&b);
		buf_printf(&b,
		           "[profile r]\nrole_arn = " ROLE_A "\n"
		           "credential_source = %s\n",
		           sources[i]);
		files(NULL, b.data);
		memset(&e, 0, sizeof(e));
		eb_add(&e, "AWS_CONFIG_FILE=%s", path_of("config"));
		eb_add(&e, "AWS_SHARED_CREDENTIALS_FILE=%s",
		       path_of("credentials"));
		eb_add(&e, "AWS_ENDPOINT_URL_STS=%s", sim_url);
		if (i == 0) {
			eb_add(&e, "AWS_ACCESS_KEY_ID=" AKID);
			eb_add(&e, "AWS_SECRET_ACCESS_KEY=" SECRET);
		} else if (i == 1) {
			eb_add(&e, "AWS_EC2_METADATA_SERVICE_ENDPOINT=%s",
			       sim_url);
		} else {
			eb_add(&e, "AWS_EC2_METADATA_DISABLED=true");
			eb_add(&e,
			       "AWS_CONTAINER_CREDENTIALS_FULL_URI=%s"
			       "/container-credentials/r",
			       sim_url);
		}
		c = cfg_sim(&e);
		/* An explicit profile: the environment keys are still its
		 * credential_source. */
		c.profile = "r";
		CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
		if (err.code[0] != '\0')
			printf("# %s: %s: %s\n", sources[i], err.code,
			       err.message);
		CHECK_STR(awscreds_source(ac), "assume-role");
		calls = aws_calls();
		CHECK_INT(jlen(calls), 1);
		if (i == 0)
			CHECK_STR(jget(calls, 0, "access_key", NULL), AKID);
		else
			CHECK(strncmp(jget(calls, 0, "access_key", NULL),
			              "ASIA", 4) == 0);
		jv_free(calls);
		awscreds_free(ac);
		eb_free(&e);
	}
	buf_free(&b);
}

/* -vvv traces of the STS exchange hold no secret. */
static void
test_sts_log_redacted(void)
{
	struct envb e;
	struct awscreds_config c;
	struct awscreds *ac;
	struct sigv4_creds cr;
	struct soar_error err;
	struct log lg;
	char *text;
	char secret[256] = "", token[2048] = "";
	int fd;

	files("[base]\naws_access_key_id = " AKID "\n"
	      "aws_secret_access_key = " SECRET "\n",
	      "[profile prod]\nrole_arn = " ROLE_A "\nsource_profile = base\n");
	fd = open(path_of("log"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	log_init(&lg, "test");
	lg.level = LOG_TRACE;
	lg.fd = fd;
	eb_sim(&e);
	c = cfg_sim(&e);
	c.profile = "prod";
	c.log = &lg;
	CHECK_INT(get_with(&c, &ac, &cr, &err), 0);
	if (cr.secret_key != NULL)
		snprintf(secret, sizeof(secret), "%s", cr.secret_key);
	if (cr.token != NULL)
		snprintf(token, sizeof(token), "%s", cr.token);
	awscreds_free(ac);
	close(fd);
	text = slurp("log");
	CHECK(text != NULL &&
	      strstr(text, "credentials from assuming role " ROLE_A
	                   ", profile prod, valid until") != NULL);
	CHECK(text != NULL && strstr(text, SECRET) == NULL);
	CHECK(text != NULL && secret[0] && strstr(text, secret) == NULL);
	CHECK(text != NULL && token[0] && strstr(text, token) == NULL);
	free(text);
	eb_free(&e);
}

/* Removes the temporary directory and what the tests left in it. */
static void
cleanup(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			unlink(path_of(de->d_name));
	if (d != NULL)
		closedir(d);
	rmdir(tmpdir);
}

int
main(void)
{
	const char *ci_env = getenv("CI");
	int ci = ci_env != NULL && strcmp(ci_env, "true") == 0;

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/soar-test-awscreds-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		printf("not ok 1 - no temporary directory\n");
		return 1;
	}
	if (access("tests/sim/simlib/vendors/aws_sts.py", R_OK) == 0 &&
	    access("tests/sim/simlib/vendors/aws_imds.py", R_OK) == 0 &&
	    sim_start_quiet(1) == 0) {
		long status = 0;

		free(sim_control("GET", "/__aws/calls", NULL, &status));
		have_sim = status == 200;
	}
	UNIT_RUN(test_env);
	UNIT_RUN(test_env_legacy_token);
	UNIT_RUN(test_env_half_set);
	UNIT_RUN(test_env_over_profile);
	UNIT_RUN(test_credentials_over_config);
	UNIT_RUN(test_ini_syntax);
	UNIT_RUN(test_ini_errors);
	UNIT_RUN(test_missing_profile);
	UNIT_RUN(test_home_files);
	UNIT_RUN(test_partial_file_keys);
	UNIT_RUN(test_process);
	UNIT_RUN(test_process_failures);
	UNIT_RUN(test_process_order);
	UNIT_RUN(test_refresh);
	UNIT_RUN(test_region);
	UNIT_RUN(test_endpoint);
	UNIT_RUN(test_role_config_errors);
	UNIT_RUN(test_source_without_keys);
	UNIT_RUN(test_container_refused);
	UNIT_RUN(test_sts_unreachable);
	UNIT_RUN(test_log_names_source);
	UNIT_RUN_SIM(test_sts_source_profile);
	UNIT_RUN_SIM(test_sts_role_over_static);
	UNIT_RUN_SIM(test_sts_chain);
	UNIT_RUN_SIM(test_sts_refused);
	UNIT_RUN_SIM(test_sts_answers);
	UNIT_RUN_SIM(test_sts_role_arn_option);
	UNIT_RUN_SIM(test_sts_refresh);
	UNIT_RUN_SIM(test_imds_v2);
	UNIT_RUN_SIM(test_imds_v1_fallback);
	UNIT_RUN_SIM(test_imds_errors);
	UNIT_RUN_SIM(test_container);
	UNIT_RUN_SIM(test_credential_source);
	UNIT_RUN_SIM(test_sts_log_redacted);
	sim_stop();
	cleanup();
	return UNIT_END();
}
