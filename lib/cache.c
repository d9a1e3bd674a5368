/* cache.c: the persistent lookup cache, one SQLite file in WAL mode. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "buf.h"
#include "cache.h"
#include "env.h"
#include "error.h"

/* PRAGMA application_id of our files, "Soar" (0x536f6172), tells them
 * from other databases. */
#define CACHE_APP_ID 1399808370
#define STR(x)       #x
#define XSTR(x)      STR(x)
/* Expired rows deleted by the first store of a run: enough to keep up with
 * any tool, small enough never to be noticed. */
#define CACHE_PRUNE_ROWS 1000

enum { ST_GET, ST_PUT, ST_PRUNE, ST_BEGIN, ST_COMMIT, ST_N };

static const char *const stmt_sql[ST_N] = {
        [ST_GET] = "SELECT json, negative FROM lookup"
                   " WHERE provider = ?1 AND type = ?2 AND value = ?3"
                   " AND expires_at > ?4",
        [ST_PUT] = "INSERT INTO lookup (provider, type, value, json,"
                   " negative, stored_at, expires_at)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                   " ON CONFLICT (provider, type, value) DO UPDATE SET"
                   " json = excluded.json, negative = excluded.negative,"
                   " stored_at = excluded.stored_at,"
                   " expires_at = excluded.expires_at",
        [ST_PRUNE] = "DELETE FROM lookup WHERE rowid IN"
                     " (SELECT rowid FROM lookup WHERE expires_at <= ?1"
                     " LIMIT ?2)",
        [ST_BEGIN] = "BEGIN IMMEDIATE",
        [ST_COMMIT] = "COMMIT",
};

/* Version 1 of the schema.  A later version changes CACHE_SCHEMA; files of an
 * unknown version are left alone (a newer soarutils may be using them). */
static const char schema_sql[] =
        "CREATE TABLE lookup ("
        " provider TEXT NOT NULL,"
        " type TEXT NOT NULL,"
        " value TEXT NOT NULL,"
        " json TEXT,"
        " negative INTEGER NOT NULL DEFAULT 0 CHECK (negative IN (0, 1)),"
        " stored_at INTEGER NOT NULL,"
        " expires_at INTEGER NOT NULL,"
        " PRIMARY KEY (provider, type, value));"
        "CREATE INDEX lookup_expires ON lookup (expires_at);"
        "PRAGMA application_id = " XSTR(
                CACHE_APP_ID) ";"
                              "PRAGMA user_version = " XSTR(CACHE_SCHEMA) ";";

struct cache {
	pthread_mutex_t mu; /* serializes every call on the handle */
	sqlite3 *db;        /* NULL when disabled */
	sqlite3_stmt *st[ST_N];
	int txdepth; /* cache_begin calls not yet committed */
	int pruned;  /* expired rows were deleted in this run */
	char *path;  /* as the user knows it, for messages */
};

/* Closes the database: the handle is disabled from now on.  An open
 * transaction is rolled back by the close. */
static void
cache_shut(struct cache *c)
{
	int i;

	for (i = 0; i < ST_N; i++) {
		sqlite3_finalize(c->st[i]);
		c->st[i] = NULL;
	}
	sqlite3_close(c->db);
	c->db = NULL;
	c->txdepth = 0;
}

/* Fills err with SQLite's word on the failed step and disables c. */
static void
cache_fail(struct cache *c, const char *step, struct soar_error *err)
{
	const char *why = c->db != NULL ? sqlite3_errmsg(c->db) : "no memory";

	soar_error_set(err, "cache", "%s: %s: %s", c->path, step, why);
	cache_shut(c);
}

/* Creates the directories of path from offset from on (mode 0700); the
 * ones that exist are left as they are.  Returns 0 or -1 (errno set). */
static int
make_dirs(char *path, size_t from)
{
	char *p;
	int rc;

	for (p = path + from;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		if (p > path && p[-1] != '/') {
			char save = *p;

			*p = '\0';
			rc = mkdir(path, 0700);
			/* The umask may take bits that the owner needs. */
			if (rc == 0)
				rc = chmod(path, 0700);
			else if (errno == EEXIST)
				rc = 0;
			*p = save;
			if (rc != 0)
				return -1;
		}
		if (*p == '\0')
			return 0;
	}
}

/* Returns the default cache file (owned), its directories created, or
 * NULL with err filled. */
static char *
default_path(const char *const *envp, struct soar_error *err)
{
	const char *xdg = env_get(envp, "XDG_CACHE_HOME");
	const char *home = env_get(envp, "HOME");
	struct buf dir = BUF_INIT;
	size_t from;
	int rc;

	/* The XDG spec says to ignore a relative XDG_CACHE_HOME. */
	if (xdg != NULL && xdg[0] == '/') {
		rc = buf_printf(&dir, "%s/soarutils", xdg);
		from = 1;
	} else if (home != NULL && home[0] == '/') {
		rc = buf_printf(&dir, "%s/.cache/soarutils", home);
		from = strlen(home);
	} else {
		soar_error_set(err, "cache",
		               "neither XDG_CACHE_HOME nor HOME is set to an"
		               " absolute path");
		return NULL;
	}
	if (rc != 0) {
		soar_error_set(err, "cache", "out of memory");
		buf_free(&dir);
		return NULL;
	}
	if (make_dirs(dir.data, from) != 0) {
		soar_error_set(err, "cache", "%s: cannot create: %s", dir.data,
		               strerror(errno));
		buf_free(&dir);
		return NULL;
	}
	if (buf_puts(&dir, "/cache.db") != 0) {
		soar_error_set(err, "cache", "out of memory");
		buf_free(&dir);
		return NULL;
	}
	return dir.data;
}

/* Returns path (owned) with its directories resolved, so that symbolic
 * links there (a ~/.cache on another disk) are followed while the last
 * component, which SQLITE_OPEN_NOFOLLOW refuses to follow, is not.  The
 * result is absolute, so SQLite never takes it for a "file:" URI.  Returns
 * NULL with err filled on failure. */
static char *
resolve_dir(const char *path, struct soar_error *err)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash != NULL ? slash + 1 : path;
	struct buf dir = BUF_INIT, out = BUF_INIT;
	char *real = NULL;
	int rc;

	if (*base == '\0' || strcmp(base, ".") == 0 ||
	    strcmp(base, "..") == 0) {
		soar_error_set(err, "cache", "%s: not a file name", path);
		return NULL;
	}
	if (slash == NULL)
		rc = buf_puts(&dir, ".");
	else if (slash == path)
		rc = buf_puts(&dir, "/");
	else
		rc = buf_append(&dir, path, (size_t)(slash - path));
	if (rc == 0) {
		real = realpath(dir.data, NULL);
		if (real == NULL) {
			soar_error_set(err, "cache", "%s: %s", dir.data,
			               strerror(errno));
			buf_free(&dir);
			return NULL;
		}
		rc = buf_printf(&out, "%s/%s",
		                strcmp(real, "/") == 0 ? "" : real, base);
	}
	if (rc != 0) {
		soar_error_set(err, "cache", "out of memory");
		buf_free(&out);
	}
	free(real);
	buf_free(&dir);
	return out.data;
}

/* Makes sure file exists as a regular file, creating it with mode 0600 so
 * that SQLite (which gives its -wal and -shm files the database's mode)
 * does not use its default 0644.  Returns 0, or -1 with err filled. */
static int
create_file(const char *file, const char *shown, struct soar_error *err)
{
	struct stat st;
	int fd;

	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	          0600);
	if (fd >= 0) {
		if (fchmod(fd, 0600) != 0) {
			soar_error_set(err, "cache", "%s: chmod: %s", shown,
			               strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
		return 0;
	}
	if (errno != EEXIST || lstat(file, &st) != 0) {
		soar_error_set(err, "cache", "%s: %s", shown, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		soar_error_set(err, "cache", "%s: %s", shown,
		               S_ISLNK(st.st_mode) ? "is a symbolic link"
		                                   : "not a regular file");
		return -1;
	}
	return 0;
}

/* Runs a pragma that returns one integer into *val.  Returns 0 or -1. */
static int
pragma_int(struct cache *c, const char *sql, int *val)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*val = sqlite3_column_int(st, 0);
			rc = SQLITE_OK;
		}
	}
	/* The error stays readable with sqlite3_errmsg after finalize. */
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -1;
}

/* Creates the schema in a fresh file, or checks the one found.  Two
 * processes opening a new file at once both get here: the write lock and
 * the second look under it make one of them create the schema. */
static int
cache_schema(struct cache *c, struct soar_error *err)
{
	int app = 0, ver = 0, ntables = 0;

	if (pragma_int(c, "PRAGMA application_id", &app) != 0 ||
	    pragma_int(c, "PRAGMA user_version", &ver) != 0) {
		cache_fail(c, "open", err);
		return -1;
	}
	if (app == 0 && ver == 0) {
		if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
		            SQLITE_OK ||
		    pragma_int(c, "PRAGMA application_id", &app) != 0 ||
		    pragma_int(c, "PRAGMA user_version", &ver) != 0 ||
		    pragma_int(c, "SELECT count(*) FROM sqlite_master",
		               &ntables) != 0) {
			cache_fail(c, "create", err);
			return -1;
		}
		if (app == 0 && ver == 0 && ntables == 0) {
			if (sqlite3_exec(c->db, schema_sql, NULL, NULL, NULL) !=
			    SQLITE_OK) {
				cache_fail(c, "create", err);
				return -1;
			}
			app = CACHE_APP_ID;
			ver = CACHE_SCHEMA;
		}
		if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) !=
		    SQLITE_OK) {
			cache_fail(c, "create", err);
			return -1;
		}
	}
	if (app != CACHE_APP_ID) {
		soar_error_set(err, "cache", "%s: not a soarutils cache",
		               c->path);
		cache_shut(c);
		return -1;
	}
	if (ver != CACHE_SCHEMA) {
		soar_error_set(err, "cache",
		               "%s: unknown cache version %d (this soarutils"
		               " knows %d)",
		               c->path, ver, CACHE_SCHEMA);
		cache_shut(c);
		return -1;
	}
	return 0;
}

/* Opens file and gets it ready; on failure c is disabled and err filled.
 * Any step can meet a file that is not a database or is corrupt
 * (SQLITE_NOTADB, SQLITE_CORRUPT), which is why there is no separate
 * integrity check: PRAGMA quick_check would read the whole file. */
static void
cache_setup(struct cache *c, const char *file, struct soar_error *err)
{
	int i;

	if (sqlite3_open_v2(file, &c->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW,
	                    NULL) != SQLITE_OK) {
		cache_fail(c, "open", err);
		return;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, CACHE_BUSY_MS);
	/* A cache file is data, never code: no schema tricks from it. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	if (sqlite3_db_readonly(c->db, "main") == 1) {
		soar_error_set(err, "cache", "%s: read-only", c->path);
		cache_shut(c);
		return;
	}
	/* WAL: readers do not wait for writers; NORMAL: commits do not
	 * fsync (checkpoints do); the WAL file shrinks back after a
	 * checkpoint instead of keeping its largest size. */
	if (sqlite3_exec(c->db,
	                 "PRAGMA journal_mode = WAL;"
	                 "PRAGMA synchronous = NORMAL;"
	                 "PRAGMA journal_size_limit = 4194304;",
	                 NULL, NULL, NULL) != SQLITE_OK) {
		cache_fail(c, "open", err);
		return;
	}
	if (cache_schema(c, err) != 0)
		return;
	for (i = 0; i < ST_N; i++) {
		if (sqlite3_prepare_v3(c->db, stmt_sql[i], -1,
		                       SQLITE_PREPARE_PERSISTENT, &c->st[i],
		                       NULL) != SQLITE_OK) {
			cache_fail(c, "prepare", err);
			return;
		}
	}
}

struct cache *
cache_open(const char *path, const char *const *envp, struct soar_error *err)
{
	struct cache *c;
	char *file;

	soar_error_clear(err);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		return NULL;
	}
	if (path != NULL && strcmp(path, "none") == 0)
		return c;
	c->path = path != NULL ? strdup(path) : default_path(envp, err);
	if (c->path == NULL) {
		if (path != NULL)
			soar_error_set(err, "cache", "out of memory");
		return c;
	}
	file = resolve_dir(c->path, err);
	if (file == NULL)
		return c;
	if (create_file(file, c->path, err) == 0)
		cache_setup(c, file, err);
	free(file);
	return c;
}

int
cache_enabled(const struct cache *c)
{
	/* The lock is not part of the value: casting const away for it. */
	struct cache *m = (struct cache *)c;
	int on;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&m->mu);
	on = c->db != NULL;
	pthread_mutex_unlock(&m->mu);
	return on;
}

void
cache_close(struct cache *c)
{
	if (c == NULL)
		return;
	if (c->db != NULL && c->txdepth > 0) {
		/* Best effort: what cannot be committed is lost. */
		sqlite3_step(c->st[ST_COMMIT]);
		sqlite3_reset(c->st[ST_COMMIT]);
	}
	cache_shut(c);
	pthread_mutex_destroy(&c->mu);
	free(c->path);
	free(c);
}

/* Copies the found entry out of st.  Returns 1, or -1 on ENOMEM. */
static int
copy_row(sqlite3_stmt *st, char **json, int *negative)
{
	const unsigned char *t;
	int n;

	if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
		t = sqlite3_column_text(st, 0);
		n = sqlite3_column_bytes(st, 0);
		if (t == NULL || (*json = malloc((size_t)n + 1)) == NULL)
			return -1;
		memcpy(*json, t, (size_t)n);
		(*json)[n] = '\0';
	}
	*negative = sqlite3_column_int(st, 1) != 0;
	return 1;
}

int
cache_get(struct cache *c, const char *provider, const char *type,
          const char *value, time_t now, char **json, int *negative,
          struct soar_error *err)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	*json = NULL;
	*negative = 0;
	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->mu);
	if (c->db == NULL)
		goto out;
	st = c->st[ST_GET];
	sqlite3_bind_text(st, 1, provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret = copy_row(st, json, negative);
	} else if (rc != SQLITE_DONE) {
		cache_fail(c, "lookup", err);
		ret = -1;
		goto out;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (ret < 0) {
		soar_error_set(err, "cache", "%s: out of memory", c->path);
		cache_shut(c);
	}
out:
	pthread_mutex_unlock(&c->mu);
	return ret;
}

/* Deletes up to CACHE_PRUNE_ROWS entries that expired by now.  Returns 0 or
 * -1 (SQLite's error is left for cache_fail). */
static int
cache_prune(struct cache *c, time_t now)
{
	sqlite3_stmt *st = c->st[ST_PRUNE];
	int rc;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_int(st, 2, CACHE_PRUNE_ROWS);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return -1;
	sqlite3_reset(st);
	c->pruned = 1;
	return 0;
}

int
cache_put(struct cache *c, const char *provider, const char *type,
          const char *value, const char *json, int negative, time_t now,
          long ttl, struct soar_error *err)
{
	sqlite3_stmt *st;
	sqlite3_int64 expires;
	int ret = 0;

	if (ttl <= 0) {
		soar_error_set(err, "cache", "invalid ttl %ld", ttl);
		return -1;
	}
	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->mu);
	if (c->db == NULL)
		goto out;
	if (!c->pruned && cache_prune(c, now) != 0) {
		cache_fail(c, "prune", err);
		ret = -1;
		goto out;
	}
	expires = (sqlite3_int64)now;
	expires = ttl > INT64_MAX - expires ? INT64_MAX : expires + ttl;
	st = c->st[ST_PUT];
	sqlite3_bind_text(st, 1, provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
	if (json != NULL)
		sqlite3_bind_text64(st, 4, json, strlen(json), SQLITE_STATIC,
		                    SQLITE_UTF8);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int(st, 5, negative != 0);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 7, expires);
	if (sqlite3_step(st) != SQLITE_DONE) {
		cache_fail(c, "store", err);
		ret = -1;
		goto out;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
out:
	pthread_mutex_unlock(&c->mu);
	return ret;
}

/* Runs the BEGIN or COMMIT statement.  Returns 0 or -1 (c disabled). */
static int
cache_tx(struct cache *c, int which, struct soar_error *err)
{
	if (sqlite3_step(c->st[which]) != SQLITE_DONE) {
		cache_fail(c, which == ST_BEGIN ? "begin" : "commit", err);
		return -1;
	}
	sqlite3_reset(c->st[which]);
	return 0;
}

int
cache_begin(struct cache *c, struct soar_error *err)
{
	int ret = 0;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->mu);
	if (c->db != NULL && c->txdepth++ == 0)
		ret = cache_tx(c, ST_BEGIN, err);
	pthread_mutex_unlock(&c->mu);
	return ret;
}

int
cache_commit(struct cache *c, struct soar_error *err)
{
	int ret = 0;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->mu);
	if (c->db != NULL && c->txdepth > 0 && --c->txdepth == 0)
		ret = cache_tx(c, ST_COMMIT, err);
	pthread_mutex_unlock(&c->mu);
	return ret;
}
