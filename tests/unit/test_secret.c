/* test_secret.c: secrets from env, NAME_FILE and config; redaction. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/error.h"
#include "lib/secret.h"
#include "tests/unit/unit.h"

#define PATHSZ 512 /* temporary paths are short */

/* Secret values the tests look for in error messages. */
#define ENV_SECRET  "env-s3cret-1111"
#define FILE_SECRET "file-s3cret-2222"
#define CONF_SECRET "conf-s3cret-3333"

/* A home directory with a config file, and the environment pointing to
 * it. */
struct home {
	char dir[PATHSZ];    /* temporary directory */
	char home[PATHSZ];   /* $HOME */
	char config[PATHSZ]; /* $HOME/.config/soarutils/config */
	char env_home[PATHSZ + 8];
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Writes "dir/name" into out (of size n). */
static void
join(char *out, size_t n, const char *dir, const char *name)
{
	if ((size_t)snprintf(out, n, "%s/%s", dir, name) >= n) {
		fprintf(stderr, "path too long\n");
		exit(1);
	}
}

/* Writes n bytes of text to path with mode. */
static void
write_file(const char *path, const char *text, size_t n, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n) {
		perror(path);
		exit(1);
	}
	close(fd);
	if (chmod(path, mode) != 0) {
		perror(path);
		exit(1);
	}
}

static void
write_str(const char *path, const char *text, mode_t mode)
{
	write_file(path, text, strlen(text), mode);
}

/* Makes a home directory with a config file holding text (mode 0600). */
static void
home_init(struct home *h, const char *text)
{
	char p[PATHSZ];

	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "/tmp/test_secret.XXXXXX");
	if (mkdtemp(h->dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	join(h->home, sizeof(h->home), h->dir, "home");
	join(p, sizeof(p), h->home, ".config");
	if (mkdir(h->home, 0700) != 0 || mkdir(p, 0700) != 0) {
		perror("mkdir");
		exit(1);
	}
	join(p, sizeof(p), h->home, ".config/soarutils");
	if (mkdir(p, 0700) != 0) {
		perror("mkdir");
		exit(1);
	}
	join(h->config, sizeof(h->config), p, "config");
	if (text != NULL)
		write_str(h->config, text, 0600);
	snprintf(h->env_home, sizeof(h->env_home), "HOME=%s", h->home);
}

static void
home_rm(struct home *h)
{
	nftw(h->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Checks that a failed lookup left a message without any of the secrets. */
#define CHECK_NO_LEAK(err)                                                     \
	do {                                                                   \
		CHECK((err).message[0] != '\0');                               \
		CHECK(strstr((err).message, ENV_SECRET) == NULL);              \
		CHECK(strstr((err).message, FILE_SECRET) == NULL);             \
		CHECK(strstr((err).message, CONF_SECRET) == NULL);             \
		CHECK(strstr((err).message, "s3cret") == NULL);                \
	} while (0)

static void
test_precedence(void)
{
	struct home h;
	char file[PATHSZ], env_file[PATHSZ + 32];
	struct soar_error err;
	char *s;

	home_init(&h, "VT_API_KEY=" CONF_SECRET "\n");
	join(file, sizeof(file), h.dir, "vt.key");
	write_str(file, FILE_SECRET "\n", 0600);
	snprintf(env_file, sizeof(env_file), "VT_API_KEY_FILE=%s", file);
	{
		const char *envp[] = {"VT_API_KEY=" ENV_SECRET, env_file,
		                      h.env_home, NULL};

		CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), 1);
		CHECK_STR(s, ENV_SECRET);
		secret_free(s);
	}
	{
		/* An empty variable is not set (docker compose makes them). */
		const char *envp[] = {"VT_API_KEY=", env_file, h.env_home,
		                      NULL};

		CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), 1);
		CHECK_STR(s, FILE_SECRET);
		secret_free(s);
	}
	{
		const char *envp[] = {h.env_home, "VT_API_KEY_FILE=", NULL};

		CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), 1);
		CHECK_STR(s, CONF_SECRET);
		secret_free(s);
	}
	{
		/* Only the whole name matches. */
		const char *envp[] = {"VT_API_KEY_X=no", "VT_API=no",
		                      h.env_home, NULL};

		CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), 1);
		CHECK_STR(s, CONF_SECRET);
		secret_free(s);
		/* Set nowhere: not an error. */
		soar_error_clear(&err);
		s = (char *)"untouched";
		CHECK_INT(secret_get("FALCON_CLIENT_ID", envp, &s, &err), 0);
		CHECK(s == NULL);
		CHECK_STR(err.code, "");
	}
	{
		/* No HOME at all: nothing to read, nothing wrong. */
		const char *envp[] = {"PATH=/bin", NULL};

		CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), 0);
	}
	home_rm(&h);

	/* envp NULL reads the process environment. */
	CHECK_INT(setenv("SOAR_TEST_SECRET", ENV_SECRET, 1), 0);
	CHECK_INT(secret_get("SOAR_TEST_SECRET", NULL, &s, &err), 1);
	CHECK_STR(s, ENV_SECRET);
	secret_free(s);
	unsetenv("SOAR_TEST_SECRET");
	secret_free(NULL);
}

/* Looks up VT_API_KEY with VT_API_KEY_FILE=path and no config. */
static int
from_file(const char *path, char **s, struct soar_error *err)
{
	char env_file[PATHSZ + 32];
	const char *envp[] = {env_file, "HOME=/nonexistent", NULL};

	snprintf(env_file, sizeof(env_file), "VT_API_KEY_FILE=%s", path);
	soar_error_clear(err);
	return secret_get("VT_API_KEY", envp, s, err);
}

static void
test_file(void)
{
	struct home h;
	char file[PATHSZ], *big, *s;
	struct soar_error err;

	home_init(&h, NULL);
	join(file, sizeof(file), h.dir, "key");
	write_str(file, FILE_SECRET "\r\n\n", 0600);
	CHECK_INT(from_file(file, &s, &err), 1);
	CHECK_STR(s, FILE_SECRET);
	secret_free(s);
	write_str(file, FILE_SECRET, 0600);
	CHECK_INT(from_file(file, &s, &err), 1);
	CHECK_STR(s, FILE_SECRET);
	secret_free(s);
	/* Only the end is trimmed: the rest is the secret's business. */
	write_str(file, " a\nb \n", 0600);
	CHECK_INT(from_file(file, &s, &err), 1);
	CHECK_STR(s, " a\nb ");
	secret_free(s);

	write_str(file, "", 0600);
	CHECK_INT(from_file(file, &s, &err), -1);
	CHECK(s == NULL);
	CHECK_STR(err.code, "secret");
	CHECK(strstr(err.message, "empty") != NULL);
	CHECK(strstr(err.message, file) != NULL);
	write_str(file, "\r\n\n", 0600);
	CHECK_INT(from_file(file, &s, &err), -1);
	CHECK(strstr(err.message, "empty") != NULL);

	write_file(file, FILE_SECRET "\0x\n", sizeof(FILE_SECRET) + 2, 0600);
	CHECK_INT(from_file(file, &s, &err), -1);
	CHECK(strstr(err.message, "NUL") != NULL);
	CHECK_NO_LEAK(err);

	/* The size cap, and exactly at the cap. */
	big = malloc(SECRET_FILE_MAX + 2);
	CHECK(big != NULL);
	memset(big, 'k', SECRET_FILE_MAX + 1);
	memcpy(big, FILE_SECRET, strlen(FILE_SECRET));
	write_file(file, big, SECRET_FILE_MAX + 1, 0600);
	CHECK_INT(from_file(file, &s, &err), -1);
	CHECK(strstr(err.message, "larger") != NULL);
	CHECK_NO_LEAK(err);
	write_file(file, big, SECRET_FILE_MAX, 0600);
	CHECK_INT(from_file(file, &s, &err), 1);
	CHECK_INT(strlen(s), SECRET_FILE_MAX);
	secret_free(s);
	free(big);

	join(file, sizeof(file), h.dir, "missing/key");
	CHECK_INT(from_file(file, &s, &err), -1);
	CHECK(strstr(err.message, "VT_API_KEY_FILE") != NULL);
	CHECK(strstr(err.message, file) != NULL);
	CHECK(strstr(err.message, "No such file") != NULL);
	fprintf(stdout, "# %s\n", err.message);
	CHECK_INT(from_file(h.dir, &s, &err), -1); /* a directory */
	home_rm(&h);
}

static void
test_config_parse(void)
{
	static const char text[] = "# soarutils config\n"
	                           "\n"
	                           "   \n"
	                           "VT_API_KEY = " CONF_SECRET "\n"
	                           "  # an indented comment with = in it\n"
	                           "VT_URL=http://127.0.0.1:8080/x?a=b\r\n"
	                           "QUOTED = \"  spaced value  \"\n"
	                           "SINGLE='x'\n"
	                           "LONE=\"\n"
	                           "\tTABBED\t=\tt-value\t\n"
	                           "EMPTY=\n"
	                           "LAST=one\n"
	                           "LAST=two\n"
	                           "HASH=a#b # not a comment\n"
	                           "END=no newline";
	static const struct {
		const char *name;
		int rc;
		const char *want;
	} cases[] = {
	        {"VT_API_KEY", 1, CONF_SECRET},
	        {"VT_URL", 1, "http://127.0.0.1:8080/x?a=b"},
	        {"QUOTED", 1, "  spaced value  "},
	        {"SINGLE", 1, "x"},
	        {"LONE", 1, "\""},
	        {"TABBED", 1, "t-value"},
	        {"EMPTY", 0, NULL},
	        {"LAST", 1, "two"},
	        {"HASH", 1, "a#b # not a comment"},
	        {"END", 1, "no newline"},
	        {"VT", 0, NULL},
	        {"soarutils", 0, NULL},
	};
	struct home h;
	struct soar_error err;
	size_t i;
	char *s;
	int rc;

	home_init(&h, text);
	{
		const char *envp[] = {h.env_home, NULL};

		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			s = NULL;
			rc = secret_get(cases[i].name, envp, &s, &err);
			if (rc != cases[i].rc)
				fprintf(stdout, "# %s\n", cases[i].name);
			CHECK_INT(rc, cases[i].rc);
			if (cases[i].want != NULL)
				CHECK_STR(s, cases[i].want);
			else
				CHECK(s == NULL);
			secret_free(s);
		}
		/* Names are identifiers, checked before any lookup. */
		CHECK_INT(secret_get("", envp, &s, &err), -1);
		CHECK_INT(secret_get("VT API", envp, &s, &err), -1);
		CHECK_INT(secret_get("1VT", envp, &s, &err), -1);
		CHECK_INT(config_get("VT=", envp, &s, &err), -1);
	}
	home_rm(&h);
}

static void
test_config_malformed(void)
{
	static const char *const texts[] = {
	        "VT_API_KEY=ok\n" CONF_SECRET "\n",
	        "# key pasted alone:\n\n" CONF_SECRET "\n",
	        "VT API KEY = " CONF_SECRET "\n",
	        "=" CONF_SECRET "\n",
	        "export VT_API_KEY=" CONF_SECRET "\n",
	};
	static const char *const where[] = {
	        ":2:", ":3:", ":1:", ":1:", ":1:",
	};
	struct home h;
	struct soar_error err;
	size_t i;
	char *s;

	home_init(&h, NULL);
	{
		const char *envp[] = {h.env_home, NULL};

		for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
			write_str(h.config, texts[i], 0600);
			soar_error_clear(&err);
			CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), -1);
			CHECK(s == NULL);
			CHECK_STR(err.code, "config");
			CHECK(strstr(err.message, h.config) != NULL);
			CHECK(strstr(err.message, where[i]) != NULL);
			CHECK_NO_LEAK(err);
			if (i == 0)
				fprintf(stdout, "# %s\n", err.message);
		}
		write_file(h.config, "A=1\0B=2\n", 8, 0600);
		CHECK_INT(secret_get("A", envp, &s, &err), -1);
		CHECK(strstr(err.message, "NUL") != NULL);
	}
	home_rm(&h);
}

static void
test_config_permissions(void)
{
	static const mode_t refused[] = {0644, 0640, 0604, 0660, 0602,
	                                 0610, 0601, 0666, 0620};
	static const mode_t accepted[] = {0600, 0400, 0700};
	struct home h;
	struct soar_error err;
	char real[PATHSZ];
	size_t i;
	char *s;

	home_init(&h, NULL);
	{
		const char *envp[] = {h.env_home, NULL};

		for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
			write_str(h.config, "VT_API_KEY=" CONF_SECRET "\n",
			          refused[i]);
			soar_error_clear(&err);
			CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), -1);
			CHECK(s == NULL);
			CHECK_STR(err.code, "config");
			CHECK(strstr(err.message, "chmod 600") != NULL);
			CHECK(strstr(err.message, h.config) != NULL);
			CHECK_NO_LEAK(err);
			/* Refused even for a name that it does not hold. */
			CHECK_INT(config_get("OTHER", envp, &s, &err), -1);
			if (i == 0)
				fprintf(stdout, "# %s\n", err.message);
		}
		for (i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
			write_str(h.config, "VT_API_KEY=" CONF_SECRET "\n",
			          accepted[i]);
			CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), 1);
			CHECK_STR(s, CONF_SECRET);
			secret_free(s);
		}

		/* A symbolic link is judged by the file it points to. */
		join(real, sizeof(real), h.dir, "dotfiles-config");
		write_str(real, "VT_API_KEY=" CONF_SECRET "\n", 0600);
		unlink(h.config);
		CHECK_INT(symlink(real, h.config), 0);
		CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), 1);
		secret_free(s);
		CHECK_INT(chmod(real, 0644), 0);
		CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), -1);
		CHECK(strstr(err.message, "chmod 600") != NULL);
		CHECK_INT(chmod(real, 0600), 0);

		/* Someone else's file, as root can make it. */
		if (geteuid() == 0) {
			CHECK_INT(chown(real, 12345, (gid_t)-1), 0);
			CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), -1);
			CHECK(strstr(err.message, "owned by uid 12345") !=
			      NULL);
			CHECK_NO_LEAK(err);
		}

		/* Not a regular file. */
		unlink(h.config);
		CHECK_INT(mkdir(h.config, 0700), 0);
		CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), -1);
		CHECK(strstr(err.message, "not a regular file") != NULL);
		rmdir(h.config);
		CHECK_INT(mkfifo(h.config, 0600), 0);
		CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), -1);
		CHECK(strstr(err.message, "not a regular file") != NULL);
		unlink(h.config);
		/* No file: nothing to read, nothing wrong. */
		CHECK_INT(secret_get("VT_API_KEY", envp, &s, &err), 0);
	}
	home_rm(&h);
}

static void
test_config_xdg(void)
{
	struct home h;
	char xdg[PATHSZ], p[PATHSZ], env_xdg[PATHSZ + 32];
	struct soar_error err;
	char *s;

	home_init(&h, "VT_URL=from-home\n");
	join(xdg, sizeof(xdg), h.dir, "xdg");
	join(p, sizeof(p), xdg, "soarutils");
	CHECK_INT(mkdir(xdg, 0700), 0);
	CHECK_INT(mkdir(p, 0700), 0);
	join(p, sizeof(p), xdg, "soarutils/config");
	write_str(p, "VT_URL=from-xdg\n", 0600);
	snprintf(env_xdg, sizeof(env_xdg), "XDG_CONFIG_HOME=%s", xdg);
	{
		const char *envp[] = {env_xdg, h.env_home, NULL};

		CHECK_INT(config_get("VT_URL", envp, &s, &err), 1);
		CHECK_STR(s, "from-xdg");
		free(s);
	}
	{
		/* A relative XDG_CONFIG_HOME is ignored, as the spec says. */
		const char *envp[] = {"XDG_CONFIG_HOME=xdg", h.env_home, NULL};

		CHECK_INT(config_get("VT_URL", envp, &s, &err), 1);
		CHECK_STR(s, "from-home");
		free(s);
	}
	home_rm(&h);
}

static void
test_config_get(void)
{
	struct home h;
	char file[PATHSZ], env_file[PATHSZ + 32];
	struct soar_error err;
	char *s;

	home_init(&h, "VT_URL = https://vt.example/api\n");
	join(file, sizeof(file), h.dir, "url");
	write_str(file, "https://from-file.example\n", 0600);
	snprintf(env_file, sizeof(env_file), "VT_URL_FILE=%s", file);
	{
		const char *envp[] = {"VT_URL=http://127.0.0.1:9", env_file,
		                      h.env_home, NULL};

		CHECK_INT(config_get("VT_URL", envp, &s, &err), 1);
		CHECK_STR(s, "http://127.0.0.1:9");
		free(s);
	}
	{
		/* Settings have no _FILE form. */
		const char *envp[] = {env_file, h.env_home, NULL};

		CHECK_INT(config_get("VT_URL", envp, &s, &err), 1);
		CHECK_STR(s, "https://vt.example/api");
		free(s);
		CHECK_INT(config_get("ES_URL", envp, &s, &err), 0);
		CHECK(s == NULL);
	}
	home_rm(&h);
}

static void
test_redact(void)
{
	static const struct {
		const char *in, *want;
		int redacted; /* the value is hidden */
	} cases[] = {
	        {"Authorization: Bearer abc.def", "Authorization: [redacted]",
	         1},
	        {"authorization:Basic dXNlcjpwYXNz",
	         "authorization: [redacted]", 1},
	        {"AUTHORIZATION: AWS4-HMAC-SHA256 Credential=AKIA/x, "
	         "Signature=00ff",
	         "AUTHORIZATION: [redacted]", 1},
	        {"Proxy-Authorization: Basic eDp5\r\n",
	         "Proxy-Authorization: [redacted]\r\n", 1},
	        {"x-apikey: 0123456789abcdef\r\n", "x-apikey: [redacted]\r\n",
	         1},
	        {"X-ApiKey: v", "X-ApiKey: [redacted]", 1},
	        {"X-Amz-Security-Token: FwoGZX",
	         "X-Amz-Security-Token: [redacted]", 1},
	        {"Cookie: session=abc", "Cookie: [redacted]", 1},
	        {"set-cookie: id=1; HttpOnly", "set-cookie: [redacted]", 1},
	        {"X-Auth-Token: t\n", "X-Auth-Token: [redacted]\n", 1},
	        {"X-Api-Key: k", "X-Api-Key: [redacted]", 1},
	        {"X-Vault-TOKEN: s.abc", "X-Vault-TOKEN: [redacted]", 1},
	        {"X-Client-Secret: s", "X-Client-Secret: [redacted]", 1},
	        {"X-Slack-Signature: v0=abc", "X-Slack-Signature: [redacted]",
	         1},
	        {"X-Amz-Signature: ab", "X-Amz-Signature: [redacted]", 1},
	        {"X-Password: p", "X-Password: [redacted]", 1},
	        {"Sec-WebSocket-Key: k", "Sec-WebSocket-Key: [redacted]", 1},
	        {"Authorization:", "Authorization: [redacted]", 1},
	        /* Not credentials: unchanged. */
	        {"Content-Type: application/json", NULL, 0},
	        {"content-length: 42\r\n", NULL, 0},
	        {"Host: www.virustotal.com", NULL, 0},
	        {"User-Agent: soarutils/0.1.0", NULL, 0},
	        {"Accept: */*", NULL, 0},
	        {"Keep-Alive: timeout=5", NULL, 0},
	        {"X-Amz-Date: 20240101T000000Z", NULL, 0},
	        {"Retry-After: 60", NULL, 0},
	        {"X-RateLimit-Remaining: 3", NULL, 0},
	        {"WWW-Authenticate: Bearer realm=\"x\"", NULL, 0},
	        {"GET /api/v3/files/abc HTTP/1.1\r\n", NULL, 0},
	        {"HTTP/1.1 200 OK\r\n", NULL, 0},
	        {"\r\n", NULL, 0},
	        {"", NULL, 0},
	        {": authorization: x", NULL, 0},
	        {"Authorization value without colon", NULL, 0},
	        {"Not a header: token here", NULL, 0},
	};
	struct buf b = BUF_INIT;
	size_t i;
	int n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_clear(&b);
		n = secret_redact(cases[i].in, strlen(cases[i].in), &b);
		CHECK_INT(n, 0);
		CHECK_STR(b.data != NULL ? b.data : "",
		          cases[i].want != NULL ? cases[i].want : cases[i].in);
		CHECK_INT(strstr(b.len ? b.data : "", "[redacted]") != NULL,
		          cases[i].redacted);
	}

	/* A whole request head, as curl hands it to a debug callback. */
	{
		static const char head[] =
		        "POST /api/v3/urls HTTP/1.1\r\n"
		        "Host: www.virustotal.com\r\n"
		        "x-apikey: " ENV_SECRET "\r\n"
		        "Authorization: Bearer " CONF_SECRET "\r\n"
		        "Content-Type: application/x-www-form-urlencoded\r\n"
		        "\r\n";
		static const char want[] =
		        "POST /api/v3/urls HTTP/1.1\r\n"
		        "Host: www.virustotal.com\r\n"
		        "x-apikey: [redacted]\r\n"
		        "Authorization: [redacted]\r\n"
		        "Content-Type: application/x-www-form-urlencoded\r\n"
		        "\r\n";

		buf_clear(&b);
		CHECK_INT(secret_redact(head, sizeof(head) - 1, &b), 0);
		CHECK_STR(b.data, want);
		CHECK(strstr(b.data, "s3cret") == NULL);
		/* Not NUL-terminated input: only len bytes are read. */
		buf_clear(&b);
		CHECK_INT(secret_redact("Cookie: a=b\nHost: x", 11, &b), 0);
		CHECK_STR(b.data, "Cookie: [redacted]");
	}
	buf_free(&b);
}

int
main(void)
{
	UNIT_RUN(test_precedence);
	UNIT_RUN(test_file);
	UNIT_RUN(test_config_parse);
	UNIT_RUN(test_config_malformed);
	UNIT_RUN(test_config_permissions);
	UNIT_RUN(test_config_xdg);
	UNIT_RUN(test_config_get);
	UNIT_RUN(test_redact);
	return UNIT_END();
}
