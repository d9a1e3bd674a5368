/* secret.c: secrets from the environment, NAME_FILE and the config file. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "env.h"
#include "error.h"
#include "secret.h"

#define NAME_MAX_LEN 128 /* longest variable name we look up */

static int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* Returns 1 when s[0..n) is an identifier: [A-Za-z_][A-Za-z0-9_]*. */
static int
is_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > NAME_MAX_LEN || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/* Returns an owned, NUL-terminated copy of p[0..n), or NULL on ENOMEM. */
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

/* Wipes and frees the first n bytes of b. */
static void
wipe(char *b, size_t n)
{
	if (b != NULL)
		explicit_bzero(b, n);
	free(b);
}

/* Reads fd to its end into *out (owned, NUL-terminated; wipe it) and its
 * length into *len.  Returns 0, -1 on a read error or ENOMEM (errno set),
 * or -2 when there are more than max bytes. */
static int
read_capped(int fd, size_t max, char **out, size_t *len)
{
	char *b;
	size_t n = 0;
	ssize_t r;

	b = malloc(max + 1);
	if (b == NULL)
		return -1;
	for (;;) {
		r = read(fd, b + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			wipe(b, n);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			wipe(b, n);
			return -2;
		}
	}
	b[n] = '\0';
	*out = b;
	*len = n;
	return 0;
}

/* Reads the secret from the file path named by name_FILE.  Returns 1 with
 * *out owned, or -1 with err filled. */
static int
file_secret(const char *var, const char *path, char **out,
            struct soar_error *err)
{
	char *b;
	size_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		soar_error_set(err, "secret", "%s=%s: %s", var, path,
		               strerror(errno));
		return -1;
	}
	rc = read_capped(fd, SECRET_FILE_MAX, &b, &n);
	close(fd);
	if (rc == -2) {
		soar_error_set(err, "secret", "%s=%s: larger than %d bytes",
		               var, path, SECRET_FILE_MAX);
		return -1;
	}
	if (rc != 0) {
		soar_error_set(err, "secret", "%s=%s: %s", var, path,
		               strerror(errno));
		return -1;
	}
	while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r'))
		n--;
	if (n == 0 || memchr(b, '\0', n) != NULL) {
		soar_error_set(err, "secret", "%s=%s: %s", var, path,
		               n == 0 ? "empty" : "holds a NUL byte");
		wipe(b, n);
		return -1;
	}
	*out = copy(b, n);
	wipe(b, n);
	if (*out == NULL) {
		soar_error_set(err, "secret", "%s: out of memory", var);
		return -1;
	}
	return 1;
}

/* Finds name in the config text b[0..n) read from path: the value of its
 * last line counts.  Returns 1 with *out owned, 0 when it is not there or
 * empty, or -1 with err filled on a malformed line.  Messages name the
 * line, never its text, which may be a key pasted without its name. */
static int
config_parse(const char *b, size_t n, const char *name, const char *path,
             char **out, struct soar_error *err)
{
	const char *line = b, *end = b + n, *eol, *p, *q, *eq, *k;
	const char *val = NULL;
	size_t lineno = 0, vlen = 0, nlen = strlen(name);

	if (memchr(b, '\0', n) != NULL) {
		soar_error_set(err, "config", "%s: holds a NUL byte", path);
		return -1;
	}
	while (line < end) {
		lineno++;
		eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		p = line;
		q = eol;
		if (q > p && q[-1] == '\r')
			q--;
		while (p < q && is_blank(*p))
			p++;
		while (q > p && is_blank(q[-1]))
			q--;
		if (p < q && *p != '#') {
			eq = memchr(p, '=', (size_t)(q - p));
			if (eq == NULL) {
				soar_error_set(err, "config",
				               "%s:%zu: expected NAME=value",
				               path, lineno);
				return -1;
			}
			k = eq;
			while (k > p && is_blank(k[-1]))
				k--;
			if (!is_name(p, (size_t)(k - p))) {
				soar_error_set(
				        err, "config",
				        "%s:%zu: expected a variable name"
				        " before '='",
				        path, lineno);
				return -1;
			}
			for (eq++; eq < q && is_blank(*eq); eq++)
				;
			if (q - eq >= 2 && (*eq == '"' || *eq == '\'') &&
			    q[-1] == *eq) {
				eq++;
				q--;
			}
			if ((size_t)(k - p) == nlen &&
			    memcmp(p, name, nlen) == 0) {
				val = eq;
				vlen = (size_t)(q - eq);
			}
		}
		if (eol == end)
			break;
		line = eol + 1;
	}
	if (val == NULL || vlen == 0)
		return 0;
	*out = copy(val, vlen);
	if (*out == NULL) {
		soar_error_set(err, "config", "%s: out of memory", path);
		return -1;
	}
	return 1;
}

/* Returns the config file's path (owned), or NULL when neither
 * XDG_CONFIG_HOME nor HOME is an absolute path, or on ENOMEM (*nomem). */
static char *
config_path(const char *const *envp, int *nomem)
{
	const char *xdg = env_get(envp, "XDG_CONFIG_HOME");
	const char *home = env_get(envp, "HOME");
	struct buf b = BUF_INIT;
	int rc;

	*nomem = 0;
	/* The XDG spec says to ignore a relative XDG_CONFIG_HOME. */
	if (xdg != NULL && xdg[0] == '/')
		rc = buf_printf(&b, "%s/soarutils/config", xdg);
	else if (home != NULL && home[0] == '/')
		rc = buf_printf(&b, "%s/.config/soarutils/config", home);
	else
		return NULL;
	if (rc != 0) {
		*nomem = 1;
		buf_free(&b);
	}
	return b.data;
}

/* Looks name up in the config file.  Returns like secret_get. */
static int
config_lookup(const char *name, const char *const *envp, char **out,
              struct soar_error *err)
{
	struct stat st;
	char *path, *b;
	size_t n;
	int fd, rc, nomem;

	path = config_path(envp, &nomem);
	if (path == NULL) {
		if (!nomem)
			return 0;
		soar_error_set(err, "config", "out of memory");
		return -1;
	}
	/* O_NONBLOCK: a FIFO put there must not hang the tool. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = errno == ENOENT || errno == ENOTDIR ? 0 : -1;
		if (rc != 0)
			soar_error_set(err, "config", "%s: %s", path,
			               strerror(errno));
		free(path);
		return rc;
	}
	/* The checks are made on the file opened, so a symbolic link (to a
	 * dotfiles repository) is judged by what it points to. */
	rc = -1;
	if (fstat(fd, &st) != 0)
		soar_error_set(err, "config", "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		soar_error_set(err, "config", "%s: not a regular file", path);
	else if (st.st_uid != geteuid())
		soar_error_set(err, "config",
		               "%s: owned by uid %lu, not by uid %lu running"
		               " this; refusing it",
		               path, (unsigned long)st.st_uid,
		               (unsigned long)geteuid());
	else if ((st.st_mode & 077) != 0)
		soar_error_set(err, "config",
		               "%s: group or others can access it (mode %03o);"
		               " refusing it: run chmod 600 %s",
		               path, (unsigned)(st.st_mode & 0777), path);
	else
		rc = 0;
	if (rc == 0) {
		rc = read_capped(fd, SECRET_CONFIG_MAX, &b, &n);
		if (rc == 0) {
			rc = config_parse(b, n, name, path, out, err);
			wipe(b, n);
		} else if (rc == -2) {
			soar_error_set(err, "config",
			               "%s: larger than %d bytes", path,
			               SECRET_CONFIG_MAX);
			rc = -1;
		} else {
			soar_error_set(err, "config", "%s: %s", path,
			               strerror(errno));
		}
	}
	close(fd);
	free(path);
	return rc;
}

/* The lookup behind secret_get (with_file) and config_get. */
static int
lookup(const char *name, const char *const *envp, int with_file, char **out,
       struct soar_error *err)
{
	const char *code = with_file ? "secret" : "config";
	char var[NAME_MAX_LEN + sizeof("_FILE")];
	const char *v;

	*out = NULL;
	if (!is_name(name, strlen(name))) {
		soar_error_set(err, code, "invalid variable name");
		return -1;
	}
	v = env_get(envp, name);
	if (v != NULL && *v != '\0') {
		*out = strdup(v);
		if (*out == NULL) {
			soar_error_set(err, code, "%s: out of memory", name);
			return -1;
		}
		return 1;
	}
	if (with_file) {
		/* is_name() bounds the name, so this is never cut. */
		if ((size_t)snprintf(var, sizeof(var), "%s_FILE", name) >=
		    sizeof(var)) {
			soar_error_set(err, code, "invalid variable name");
			return -1;
		}
		v = env_get(envp, var);
		if (v != NULL && *v != '\0')
			return file_secret(var, v, out, err);
	}
	return config_lookup(name, envp, out, err);
}

int
secret_get(const char *name, const char *const *envp, char **out,
           struct soar_error *err)
{
	return lookup(name, envp, 1, out, err);
}

int
config_get(const char *name, const char *const *envp, char **out,
           struct soar_error *err)
{
	return lookup(name, envp, 0, out, err);
}

void
secret_free(char *s)
{
	if (s != NULL)
		wipe(s, strlen(s));
}

/* Headers that carry credentials by name, and words that give one away in
 * any other header's name. */
static const char *const redact_names[] = {
        "authorization", "proxy-authorization",
        "x-apikey",      "x-amz-security-token",
        "cookie",        "set-cookie",
        "x-auth-token",
};
static const char *const redact_words[] = {
        "token", "secret", "key", "signature", "password",
};

/* Returns 1 when c may appear in a header name (RFC 9110 token). */
static int
is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Returns 1 when the header name s[0..n) may carry a credential. */
static int
is_sensitive(const char *s, size_t n)
{
	size_t i, j, m;

	for (i = 0; i < n; i++)
		if (!is_tchar(s[i]))
			return 0;
	for (i = 0; i < sizeof(redact_names) / sizeof(redact_names[0]); i++)
		if (strlen(redact_names[i]) == n &&
		    strncasecmp(s, redact_names[i], n) == 0)
			return 1;
	for (i = 0; i < sizeof(redact_words) / sizeof(redact_words[0]); i++) {
		m = strlen(redact_words[i]);
		for (j = 0; j + m <= n; j++)
			if (strncasecmp(s + j, redact_words[i], m) == 0)
				return 1;
	}
	return 0;
}

int
secret_redact(const char *text, size_t len, struct buf *out)
{
	const char *line = text, *end = text + len, *eol, *stop, *colon;
	int rc;

	while (line < end) {
		eol = memchr(line, '\n', (size_t)(end - line));
		eol = eol != NULL ? eol + 1 : end;
		stop = eol;
		if (stop > line && stop[-1] == '\n')
			stop--;
		if (stop > line && stop[-1] == '\r')
			stop--;
		colon = memchr(line, ':', (size_t)(stop - line));
		if (colon != NULL && colon > line &&
		    is_sensitive(line, (size_t)(colon - line))) {
			rc = buf_append(out, line, (size_t)(colon - line));
			if (rc == 0)
				rc = buf_puts(out, ": [redacted]");
			if (rc == 0)
				rc = buf_append(out, stop,
				                (size_t)(eol - stop));
		} else {
			rc = buf_append(out, line, (size_t)(eol - line));
		}
		if (rc != 0)
			return -1;
		line = eol;
	}
	return 0;
}
