/* test_cache.c: the persistent lookup cache, its failures and its locks. */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/cache.h"
#include "lib/error.h"
#include "tests/unit/unit.h"

#define NOW    ((time_t)1700000000)
#define PATHSZ 512 /* temporary paths are short */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Makes a fresh temporary directory into dir (n bytes). */
static void
tmp_dir(char *dir, size_t n)
{
	snprintf(dir, n, "/tmp/test_cache.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static void
tmp_rm(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
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

/* Returns the permission bits of path, or -1. */
static int
mode_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -1;
	return (int)(st.st_mode & 07777);
}

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Opens the cache at path, which must work. */
static struct cache *
open_ok(const char *path)
{
	struct soar_error err;
	struct cache *c;

	soar_error_clear(&err);
	c = cache_open(path, NULL, &err);
	CHECK(c != NULL);
	if (c == NULL)
		exit(1);
	CHECK(cache_enabled(c));
	CHECK_STR(err.code, "");
	if (!cache_enabled(c))
		fprintf(stdout, "# %s\n", err.message);
	return c;
}

/* Opens the cache at path, which must come back disabled with err filled;
 * returns the message's copy in msg. */
static void
open_disabled(const char *path, const char *const *envp, char *msg, size_t n)
{
	struct soar_error err;
	struct cache *c;

	soar_error_clear(&err);
	c = cache_open(path, envp, &err);
	CHECK(c != NULL);
	CHECK(!cache_enabled(c));
	CHECK_STR(err.code, "cache");
	CHECK(err.message[0] != '\0');
	snprintf(msg, n, "%s", err.message);
	cache_close(c);
}

static void
test_miss_put_hit(void)
{
	char dir[PATHSZ], path[PATHSZ];
	struct soar_error err;
	struct cache *c;
	char *json = (char *)"untouched";
	int neg = 7;

	tmp_dir(dir, sizeof(dir));
	join(path, sizeof(path), dir, "cache.db");
	c = open_ok(path);
	CHECK_INT(cache_get(c, "vt", "file", "abc", NOW, &json, &neg, &err), 0);
	CHECK(json == NULL);
	CHECK_INT(neg, 0);
	CHECK_INT(cache_put(c, "vt", "file", "abc", "{\"m\":1}", 0, NOW, 3600,
	                    &err),
	          0);
	CHECK_INT(cache_get(c, "vt", "file", "abc", NOW, &json, &neg, &err), 1);
	CHECK_STR(json, "{\"m\":1}");
	CHECK_INT(neg, 0);
	free(json);
	/* Every part of the key counts. */
	CHECK_INT(cache_get(c, "vt", "url", "abc", NOW, &json, &neg, &err), 0);
	CHECK_INT(cache_get(c, "cs", "file", "abc", NOW, &json, &neg, &err), 0);
	CHECK_INT(cache_get(c, "vt", "file", "ABC", NOW, &json, &neg, &err), 0);
	cache_close(c);

	/* And it is still there in the next run. */
	c = open_ok(path);
	CHECK_INT(
	        cache_get(c, "vt", "file", "abc", NOW + 10, &json, &neg, &err),
	        1);
	CHECK_STR(json, "{\"m\":1}");
	free(json);
	cache_close(c);
	tmp_rm(dir);
}

static void
test_ttl_expiry(void)
{
	char dir[PATHSZ], path[PATHSZ];
	struct soar_error err;
	struct cache *c;
	char *json;
	int neg;

	tmp_dir(dir, sizeof(dir));
	join(path, sizeof(path), dir, "cache.db");
	c = open_ok(path);
	CHECK_INT(cache_put(c, "vt", "ip", "1.2.3.4", "{}", 0, NOW, 60, &err),
	          0);
	CHECK_INT(cache_get(c, "vt", "ip", "1.2.3.4", NOW + 59, &json, &neg,
	                    &err),
	          1);
	free(json);
	CHECK_INT(cache_get(c, "vt", "ip", "1.2.3.4", NOW + 60, &json, &neg,
	                    &err),
	          0);
	CHECK(json == NULL);
	CHECK_INT(cache_get(c, "vt", "ip", "1.2.3.4", NOW + 86400, &json, &neg,
	                    &err),
	          0);
	/* A clock that went back sees the entry again: it was never pruned
	 * by a lookup. */
	CHECK_INT(cache_get(c, "vt", "ip", "1.2.3.4", NOW, &json, &neg, &err),
	          1);
	free(json);
	/* A huge ttl does not overflow into the past. */
	CHECK_INT(cache_put(c, "vt", "ip", "5.6.7.8", "{}", 0, NOW, 0x7fffffffL,
	                    &err),
	          0);
	CHECK_INT(cache_get(c, "vt", "ip", "5.6.7.8", NOW + 86400 * 365, &json,
	                    &neg, &err),
	          1);
	free(json);
	cache_close(c);

	/* The first store of a later run deletes what expired. */
	c = open_ok(path);
	CHECK_INT(cache_put(c, "vt", "ip", "9.9.9.9", "{}", 0, NOW + 100, 60,
	                    &err),
	          0);
	cache_close(c);
	{
		sqlite3 *db;
		sqlite3_stmt *st;

		CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
		CHECK_INT(sqlite3_prepare_v2(db,
		                             "SELECT count(*) FROM lookup"
		                             " WHERE value = '1.2.3.4'",
		                             -1, &st, NULL),
		          SQLITE_OK);
		CHECK_INT(sqlite3_step(st), SQLITE_ROW);
		CHECK_INT(sqlite3_column_int(st, 0), 0);
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	tmp_rm(dir);
}

static void
test_negative(void)
{
	char dir[PATHSZ], path[PATHSZ];
	struct soar_error err;
	struct cache *c;
	char *json;
	int neg;

	tmp_dir(dir, sizeof(dir));
	join(path, sizeof(path), dir, "cache.db");
	c = open_ok(path);
	CHECK_INT(
	        cache_put(c, "vt", "file", "nothere", NULL, 1, NOW, 600, &err),
	        0);
	CHECK_INT(cache_get(c, "vt", "file", "nothere", NOW, &json, &neg, &err),
	          1);
	CHECK(json == NULL);
	CHECK_INT(neg, 1);
	/* A negative entry may keep the answer that said "not found". */
	CHECK_INT(cache_put(c, "vt", "file", "gone", "{\"code\":404}", 1, NOW,
	                    600, &err),
	          0);
	CHECK_INT(cache_get(c, "vt", "file", "gone", NOW, &json, &neg, &err),
	          1);
	CHECK_STR(json, "{\"code\":404}");
	CHECK_INT(neg, 1);
	free(json);
	CHECK_INT(cache_get(c, "vt", "file", "nothere", NOW + 600, &json, &neg,
	                    &err),
	          0);
	cache_close(c);
	tmp_rm(dir);
}

static void
test_replace(void)
{
	char dir[PATHSZ], path[PATHSZ];
	struct soar_error err;
	struct cache *c;
	char *json;
	int neg;

	tmp_dir(dir, sizeof(dir));
	join(path, sizeof(path), dir, "cache.db");
	c = open_ok(path);
	CHECK_INT(
	        cache_put(c, "vt", "domain", "x.test", NULL, 1, NOW, 60, &err),
	        0);
	CHECK_INT(cache_put(c, "vt", "domain", "x.test", "{\"v\":2}", 0,
	                    NOW + 30, 60, &err),
	          0);
	/* The new entry counts from its own time, with its own flag. */
	CHECK_INT(cache_get(c, "vt", "domain", "x.test", NOW + 80, &json, &neg,
	                    &err),
	          1);
	CHECK_STR(json, "{\"v\":2}");
	CHECK_INT(neg, 0);
	free(json);
	/* Values with quotes and SQL in them are only data. */
	CHECK_INT(cache_put(c, "vt", "url", "x'); DROP TABLE lookup; --", "1",
	                    0, NOW, 60, &err),
	          0);
	CHECK_INT(cache_get(c, "vt", "url", "x'); DROP TABLE lookup; --", NOW,
	                    &json, &neg, &err),
	          1);
	CHECK_STR(json, "1");
	free(json);
	cache_close(c);
	tmp_rm(dir);
}

static void
test_none(void)
{
	struct soar_error err;
	struct cache *c;
	char *json;
	int neg;

	/* err is cleared: an empty code means nothing to warn about. */
	soar_error_set(&err, "stale", "from before");
	c = cache_open("none", NULL, &err);
	CHECK(c != NULL);
	CHECK(!cache_enabled(c));
	CHECK_STR(err.code, "");
	CHECK_INT(cache_put(c, "vt", "file", "a", "{}", 0, NOW, 60, &err), 0);
	CHECK_INT(cache_get(c, "vt", "file", "a", NOW, &json, &neg, &err), 0);
	CHECK(json == NULL);
	CHECK_INT(cache_begin(c, &err), 0);
	CHECK_INT(cache_commit(c, &err), 0);
	CHECK_STR(err.code, "");
	/* A ttl that makes no sense is a caller's error, disabled or not. */
	CHECK_INT(cache_put(c, "vt", "file", "a", "{}", 0, NOW, 0, &err), -1);
	CHECK_STR(err.code, "cache");
	cache_close(c);

	/* A NULL handle (cache_open's ENOMEM) is a disabled one. */
	soar_error_clear(&err);
	CHECK(!cache_enabled(NULL));
	CHECK_INT(cache_put(NULL, "vt", "file", "a", "{}", 0, NOW, 60, &err),
	          0);
	CHECK_INT(cache_get(NULL, "vt", "file", "a", NOW, &json, &neg, &err),
	          0);
	CHECK_INT(cache_begin(NULL, &err), 0);
	CHECK_INT(cache_commit(NULL, &err), 0);
	CHECK_STR(err.code, "");
	cache_close(NULL);
}

static void
test_default_xdg(void)
{
	char dir[PATHSZ], xdg[PATHSZ], home[PATHSZ], p[PATHSZ];
	char e1[PATHSZ + 32], e2[PATHSZ + 32];
	const char *envp[] = {e1, e2, NULL};
	struct soar_error err;
	struct cache *c;

	tmp_dir(dir, sizeof(dir));
	join(xdg, sizeof(xdg), dir, "xdg/deeper");
	join(home, sizeof(home), dir, "home");
	CHECK_INT(mkdir(home, 0755), 0);
	snprintf(e1, sizeof(e1), "HOME=%s", home);
	snprintf(e2, sizeof(e2), "XDG_CACHE_HOME=%s", xdg);
	soar_error_clear(&err);
	c = cache_open(NULL, envp, &err);
	CHECK(c != NULL && cache_enabled(c));
	CHECK_STR(err.code, "");
	cache_close(c);
	join(p, sizeof(p), dir, "xdg");
	CHECK_INT(mode_of(p), 0700);
	CHECK_INT(mode_of(xdg), 0700);
	join(p, sizeof(p), xdg, "soarutils");
	CHECK_INT(mode_of(p), 0700);
	join(p, sizeof(p), xdg, "soarutils/cache.db");
	CHECK_INT(mode_of(p), 0600);
	join(p, sizeof(p), home, ".cache");
	CHECK_INT(mode_of(p), -1);
	tmp_rm(dir);
}

static void
test_default_home(void)
{
	char dir[PATHSZ], home[PATHSZ], p[PATHSZ], msg[512];
	char e1[PATHSZ + 32];
	const char *envp[] = {"XDG_CACHE_HOME=relative/is/ignored", e1, NULL};
	const char *noenv[] = {"PATH=/bin", NULL};
	struct soar_error err;
	struct cache *c;
	char *json;
	int neg;

	tmp_dir(dir, sizeof(dir));
	join(home, sizeof(home), dir, "home");
	CHECK_INT(mkdir(home, 0755), 0);
	CHECK_INT(chmod(home, 0755), 0);
	snprintf(e1, sizeof(e1), "HOME=%s", home);
	soar_error_clear(&err);
	c = cache_open(NULL, envp, &err);
	CHECK(c != NULL && cache_enabled(c));
	CHECK_INT(cache_put(c, "vt", "file", "h", "{}", 0, NOW, 60, &err), 0);
	/* The -wal and -shm files get the database's mode. */
	join(p, sizeof(p), home, ".cache/soarutils/cache.db-wal");
	CHECK_INT(mode_of(p), 0600);
	join(p, sizeof(p), home, ".cache/soarutils/cache.db-shm");
	CHECK_INT(mode_of(p), 0600);
	cache_close(c);
	CHECK_INT(mode_of(home), 0755); /* existing directories untouched */
	join(p, sizeof(p), home, ".cache");
	CHECK_INT(mode_of(p), 0700);
	join(p, sizeof(p), home, ".cache/soarutils");
	CHECK_INT(mode_of(p), 0700);
	join(p, sizeof(p), home, ".cache/soarutils/cache.db");
	CHECK_INT(mode_of(p), 0600);
	join(p, sizeof(p), dir, "relative");
	CHECK_INT(mode_of(p), -1);

	/* The same file is found again. */
	c = cache_open(NULL, envp, &err);
	CHECK_INT(cache_get(c, "vt", "file", "h", NOW, &json, &neg, &err), 1);
	free(json);
	cache_close(c);

	/* Nowhere to put it: disabled, not fatal. */
	open_disabled(NULL, noenv, msg, sizeof(msg));
	CHECK(strstr(msg, "HOME") != NULL);
	tmp_rm(dir);
}

static void
test_explicit_path_mode(void)
{
	char dir[PATHSZ], path[PATHSZ], msg[512];
	struct cache *c;

	tmp_dir(dir, sizeof(dir));
	join(path, sizeof(path), dir, "mine.db");
	c = open_ok(path);
	cache_close(c);
	CHECK_INT(mode_of(path), 0600);
	/* An existing file keeps the mode its owner gave it. */
	CHECK_INT(chmod(path, 0640), 0);
	c = open_ok(path);
	cache_close(c);
	CHECK_INT(mode_of(path), 0640);
	/* Explicit paths get no directories made for them. */
	join(path, sizeof(path), dir, "missing/cache.db");
	open_disabled(path, NULL, msg, sizeof(msg));
	CHECK(strstr(msg, "missing") != NULL);
	open_disabled("", NULL, msg, sizeof(msg));
	tmp_rm(dir);
}

static void
test_garbage_file(void)
{
	char dir[PATHSZ], path[PATHSZ], msg[512], junk[8192];
	size_t i;
	int fd;

	tmp_dir(dir, sizeof(dir));
	join(path, sizeof(path), dir, "cache.db");
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7919 % 251);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, junk, sizeof(junk)), sizeof(junk));
	close(fd);
	open_disabled(path, NULL, msg, sizeof(msg));
	fprintf(stdout, "# %s\n", msg);
	CHECK(strstr(msg, path) != NULL);
	CHECK(strstr(msg, "not a database") != NULL);

	/* A few bytes only, and text. */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK_INT(write(fd, "hello\n", 6), 6);
	close(fd);
	open_disabled(path, NULL, msg, sizeof(msg));
	tmp_rm(dir);
}

/* Makes a database at path with SQLite itself, running sql. */
static void
make_db(const char *path, const char *sql)
{
	sqlite3 *db;

	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
test_foreign_database(void)
{
	char dir[PATHSZ], path[PATHSZ], msg[512];
	struct cache *c;

	tmp_dir(dir, sizeof(dir));
	join(path, sizeof(path), dir, "other.db");
	make_db(path, "CREATE TABLE t (x); INSERT INTO t VALUES (1);");
	open_disabled(path, NULL, msg, sizeof(msg));
	CHECK(strstr(msg, "not a soarutils cache") != NULL);

	/* A newer soarutils's file is left alone. */
	join(path, sizeof(path), dir, "newer.db");
	c = open_ok(path);
	cache_close(c);
	make_db(path, "PRAGMA user_version = 99;");
	open_disabled(path, NULL, msg, sizeof(msg));
	CHECK(strstr(msg, "version 99") != NULL);

	/* An empty file is a new database. */
	join(path, sizeof(path), dir, "empty.db");
	close(open(path, O_WRONLY | O_CREAT, 0600));
	c = open_ok(path);
	cache_close(c);
	tmp_rm(dir);
}

/* Fills path with n entries whose JSON is long enough to need many pages. */
static void
fill(const char *path, int n)
{
	char value[72], json[600];
	struct soar_error err;
	struct cache *c;
	int i;

	c = open_ok(path);
	CHECK_INT(cache_begin(c, &err), 0);
	for (i = 0; i < n; i++) {
		snprintf(value, sizeof(value), "%064d", i);
		snprintf(json, sizeof(json), "{\"i\":%d,\"pad\":\"%0500d\"}", i,
		         i);
		if (cache_put(c, "vt", "file", value, json, 0, NOW, 3600,
		              &err) != 0)
			CHECK(0);
	}
	CHECK_INT(cache_commit(c, &err), 0);
	cache_close(c);
}

/* Looks up the 2000 entries of fill() in c, checking that what comes back
 * is right or an error that disabled c.  Returns the errors seen. */
static int
read_back(struct cache *c, const char *what, struct soar_error *err)
{
	char value[72], want[600];
	char *json;
	int i, rc, neg, hits = 0, errors = 0, wrong = 0;

	for (i = 0; i < 2000; i++) {
		snprintf(value, sizeof(value), "%064d", i);
		rc = cache_get(c, "vt", "file", value, NOW, &json, &neg, err);
		if (rc == 1) {
			snprintf(want, sizeof(want),
			         "{\"i\":%d,\"pad\":\"%0500d\"}", i, i);
			if (json == NULL || strcmp(json, want) != 0)
				wrong++;
			hits++;
			free(json);
		} else if (rc == -1) {
			errors++;
			CHECK_STR(err->code, "cache");
			CHECK(!cache_enabled(c));
		}
	}
	rc = cache_put(c, "vt", "file", "new", "{}", 0, NOW, 60, err);
	CHECK(rc == 0 || rc == -1);
	errors += rc == -1;
	fprintf(stdout, "# %s: %d hits, %d errors, enabled %d: %s\n", what,
	        hits, errors, cache_enabled(c), err->message);
	CHECK_INT(wrong, 0);
	CHECK(hits < 2000);
	/* The damage was noticed once, then the cache stayed disabled. */
	CHECK_INT(errors, 1);
	CHECK(!cache_enabled(c));
	return errors;
}

static void
test_truncated(void)
{
	static const double cut[] = {0.5, 0.1, 0.9};
	char dir[PATHSZ], path[PATHSZ], msg[512], what[64];
	struct soar_error err;
	struct cache *c;
	struct stat st;
	size_t k;

	tmp_dir(dir, sizeof(dir));
	join(path, sizeof(path), dir, "cache.db");
	for (k = 0; k < sizeof(cut) / sizeof(cut[0]); k++) {
		/* Cut while closed: open notices that pages are missing. */
		unlink(path);
		fill(path, 2000);
		CHECK_INT(stat(path, &st), 0);
		/* The last close checkpointed: everything is in the file. */
		CHECK(st.st_size > 1000000);
		CHECK_INT(truncate(path, (off_t)((double)st.st_size * cut[k])),
		          0);
		open_disabled(path, NULL, msg, sizeof(msg));
		fprintf(stdout, "# cut at %.0f%% while closed: %s\n",
		        cut[k] * 100, msg);
		CHECK(strstr(msg, "malformed") != NULL);

		/* Cut under a running tool: the lookups notice. */
		unlink(path);
		fill(path, 2000);
		c = open_ok(path);
		CHECK_INT(truncate(path, (off_t)((double)st.st_size * cut[k])),
		          0);
		snprintf(what, sizeof(what), "cut at %.0f%% while open",
		         cut[k] * 100);
		soar_error_clear(&err);
		read_back(c, what, &err);
		cache_close(c);
	}
	tmp_rm(dir);
}

static void
test_corrupt_page(void)
{
	char dir[PATHSZ], path[PATHSZ], zero[4096];
	struct soar_error err;
	struct cache *c;
	struct stat st;
	int fd;

	tmp_dir(dir, sizeof(dir));
	join(path, sizeof(path), dir, "cache.db");
	fill(path, 2000);
	CHECK_INT(stat(path, &st), 0);
	/* Garbage in the middle, the size unchanged: open cannot tell, the
	 * lookups that reach the page can. */
	memset(zero, 0xA5, sizeof(zero));
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	CHECK_INT(pwrite(fd, zero, sizeof(zero), st.st_size / 2 / 4096 * 4096),
	          sizeof(zero));
	close(fd);
	soar_error_clear(&err);
	c = open_ok(path);
	read_back(c, "a page overwritten", &err);
	CHECK(strstr(err.message, "malformed") != NULL);
	cache_close(c);
	tmp_rm(dir);
}

static void
test_unusable_path(void)
{
	char dir[PATHSZ], path[PATHSZ], target[PATHSZ], msg[512];
	struct cache *c;
	char *json;
	int neg;
	struct soar_error err;

	/* Under a regular file: what root cannot get around either. */
	open_disabled("/etc/passwd/x", NULL, msg, sizeof(msg));
	CHECK(strstr(msg, "/etc/passwd/x") != NULL);

	tmp_dir(dir, sizeof(dir));
	/* A directory where the file should be. */
	join(path, sizeof(path), dir, "cache.db");
	CHECK_INT(mkdir(path, 0700), 0);
	open_disabled(path, NULL, msg, sizeof(msg));
	CHECK(strstr(msg, "not a regular file") != NULL);
	rmdir(path);

	/* The default directory is blocked by a file. */
	{
		char e1[PATHSZ + 32];
		const char *envp[] = {e1, NULL};

		join(path, sizeof(path), dir, "xdg");
		close(open(path, O_WRONLY | O_CREAT, 0600));
		snprintf(e1, sizeof(e1), "XDG_CACHE_HOME=%s", path);
		open_disabled(NULL, envp, msg, sizeof(msg));
		CHECK(strstr(msg, "cannot create") != NULL);
		unlink(path);
	}

	/* The last component must not be a symbolic link... */
	join(target, sizeof(target), dir, "real.db");
	c = open_ok(target);
	cache_close(c);
	join(path, sizeof(path), dir, "link.db");
	CHECK_INT(symlink(target, path), 0);
	open_disabled(path, NULL, msg, sizeof(msg));
	CHECK(strstr(msg, "symbolic link") != NULL);
	/* ... but directories on the way may be. */
	join(path, sizeof(path), dir, "dirlink");
	CHECK_INT(symlink(dir, path), 0);
	join(path, sizeof(path), dir, "dirlink/real.db");
	c = open_ok(path);
	CHECK_INT(cache_put(c, "a", "b", "c", "{}", 0, NOW, 60, &err), 0);
	CHECK_INT(cache_get(c, "a", "b", "c", NOW, &json, &neg, &err), 1);
	free(json);
	cache_close(c);

	/* Permissions do not stop root, so this part needs another user. */
	if (geteuid() != 0) {
		join(path, sizeof(path), dir, "ro");
		CHECK_INT(mkdir(path, 0500), 0);
		join(path, sizeof(path), dir, "ro/cache.db");
		open_disabled(path, NULL, msg, sizeof(msg));
		join(path, sizeof(path), dir, "ro");
		chmod(path, 0700);
		chmod(target, 0400);
		open_disabled(target, NULL, msg, sizeof(msg));
		CHECK(strstr(msg, "read-only") != NULL);
	} else {
		fprintf(stdout,
		        "# running as root: permission cases skipped\n");
	}
	tmp_rm(dir);
}

/* Stores 500 entries named after id, half one by one and half in
 * transactions of 50, as a second cron job would.  Returns the number of
 * failures. */
static int
writer(const char *path, int id)
{
	char value[64];
	struct soar_error err;
	struct cache *c;
	int i, bad = 0;

	soar_error_clear(&err);
	c = cache_open(path, NULL, &err);
	if (c == NULL || !cache_enabled(c)) {
		fprintf(stdout, "# writer %d: %s\n", id, err.message);
		cache_close(c);
		return 1;
	}
	for (i = 0; i < 500; i++) {
		if (i >= 250 && i % 50 == 0 && cache_begin(c, &err) != 0)
			bad++;
		snprintf(value, sizeof(value), "w%d-%d", id, i);
		if (cache_put(c, "vt", "file", value, value, 0, NOW, 3600,
		              &err) != 0)
			bad++;
		if (i >= 250 && i % 50 == 49 && cache_commit(c, &err) != 0)
			bad++;
	}
	if (bad)
		fprintf(stdout, "# writer %d: %s\n", id, err.message);
	cache_close(c);
	return bad;
}

static void
test_concurrent_writers(void)
{
	char dir[PATHSZ], path[PATHSZ], value[64];
	struct soar_error err;
	struct cache *c;
	pid_t pid[2];
	char *json;
	int go[2], i, id, st, neg, hits = 0;
	char b;

	tmp_dir(dir, sizeof(dir));
	join(path, sizeof(path), dir, "cache.db");
	CHECK_INT(pipe(go), 0);
	/* Both start on a file that does not exist yet: they race to create
	 * it, too. */
	for (id = 0; id < 2; id++) {
		pid[id] = fork();
		if (pid[id] == 0) {
			close(go[1]);
			if (read(go[0], &b, 1) != 0)
				_exit(2);
			_exit(writer(path, id) != 0);
		}
		CHECK(pid[id] > 0);
	}
	close(go[0]);
	close(go[1]);
	for (id = 0; id < 2; id++) {
		CHECK_INT(waitpid(pid[id], &st, 0), pid[id]);
		CHECK(WIFEXITED(st));
		CHECK_INT(WEXITSTATUS(st), 0);
	}
	c = open_ok(path);
	for (id = 0; id < 2; id++)
		for (i = 0; i < 500; i++) {
			snprintf(value, sizeof(value), "w%d-%d", id, i);
			if (cache_get(c, "vt", "file", value, NOW, &json, &neg,
			              &err) == 1 &&
			    json != NULL && strcmp(json, value) == 0)
				hits++;
			free(json);
		}
	CHECK_INT(hits, 1000);
	cache_close(c);
	tmp_rm(dir);
}

static void
test_reader_while_writer(void)
{
	char dir[PATHSZ], path[PATHSZ];
	struct soar_error err;
	struct cache *c;
	int ready[2], go[2], st, neg;
	double t0, waited;
	char *json;
	pid_t pid;
	char b = 'x';

	tmp_dir(dir, sizeof(dir));
	join(path, sizeof(path), dir, "cache.db");
	c = open_ok(path);
	CHECK_INT(cache_put(c, "vt", "file", "a", "v1", 0, NOW, 60, &err), 0);
	cache_close(c);
	CHECK_INT(pipe(ready), 0);
	CHECK_INT(pipe(go), 0);
	pid = fork();
	if (pid == 0) {
		int bad = 0;

		c = cache_open(path, NULL, &err);
		bad |= cache_begin(c, &err) != 0;
		bad |= cache_put(c, "vt", "file", "a", "v2", 0, NOW, 60,
		                 &err) != 0;
		bad |= cache_put(c, "vt", "file", "b", "v2", 0, NOW, 60,
		                 &err) != 0;
		bad |= write(ready[1], &b, 1) != 1;
		bad |= read(go[0], &b, 1) != 1;
		usleep(300000);
		bad |= cache_commit(c, &err) != 0;
		cache_close(c);
		_exit(bad);
	}
	CHECK(pid > 0);
	CHECK_INT(read(ready[0], &b, 1), 1);
	/* The writer holds its transaction until it hears from us: a reader
	 * sees the last commit, without failing and without waiting (a
	 * waiting reader would wait the whole CACHE_BUSY_MS, then fail). */
	c = open_ok(path);
	t0 = seconds();
	CHECK_INT(cache_get(c, "vt", "file", "a", NOW, &json, &neg, &err), 1);
	CHECK_STR(json, "v1");
	free(json);
	CHECK_INT(cache_get(c, "vt", "file", "b", NOW, &json, &neg, &err), 0);
	CHECK(seconds() - t0 < 2.0);
	/* A second writer waits for the first one's commit. */
	CHECK_INT(write(go[1], &b, 1), 1);
	t0 = seconds();
	CHECK_INT(cache_put(c, "vt", "file", "c", "v3", 0, NOW, 60, &err), 0);
	waited = seconds() - t0;
	fprintf(stdout, "# second writer waited %.3f s\n", waited);
	CHECK(waited > 0.2);
	CHECK(cache_enabled(c));
	CHECK_INT(cache_get(c, "vt", "file", "a", NOW, &json, &neg, &err), 1);
	CHECK_STR(json, "v2");
	free(json);
	CHECK_INT(cache_get(c, "vt", "file", "b", NOW, &json, &neg, &err), 1);
	free(json);
	cache_close(c);
	CHECK_INT(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	tmp_rm(dir);
}

/* Stores n entries, in one transaction or one commit each; returns the
 * seconds it took. */
static double
store_many(const char *path, int n, int batch)
{
	char value[32];
	struct soar_error err;
	struct cache *c;
	double t0;
	int i, bad = 0;

	c = open_ok(path);
	t0 = seconds();
	if (batch)
		bad |= cache_begin(c, &err);
	for (i = 0; i < n; i++) {
		snprintf(value, sizeof(value), "%d", i);
		bad |= cache_put(c, "vt", "ip", value, "{\"x\":1}", 0, NOW,
		                 3600, &err);
	}
	if (batch)
		bad |= cache_commit(c, &err);
	t0 = seconds() - t0;
	CHECK_INT(bad, 0);
	cache_close(c);
	return t0;
}

static void
test_batch(void)
{
	char dir[PATHSZ], path[PATHSZ];
	struct soar_error err;
	struct cache *c;
	char *json;
	double one, each;
	int neg;

	tmp_dir(dir, sizeof(dir));
	join(path, sizeof(path), dir, "cache.db");
	/* Nested transactions commit at the outermost commit. */
	c = open_ok(path);
	CHECK_INT(cache_begin(c, &err), 0);
	CHECK_INT(cache_begin(c, &err), 0);
	CHECK_INT(cache_put(c, "p", "t", "v", "1", 0, NOW, 60, &err), 0);
	CHECK_INT(cache_commit(c, &err), 0);
	CHECK_INT(cache_commit(c, &err), 0);
	CHECK_INT(cache_commit(c, &err), 0); /* one too many: harmless */
	/* A transaction still open at close is committed. */
	CHECK_INT(cache_begin(c, &err), 0);
	CHECK_INT(cache_put(c, "p", "t", "w", "2", 0, NOW, 60, &err), 0);
	cache_close(c);
	c = open_ok(path);
	CHECK_INT(cache_get(c, "p", "t", "v", NOW, &json, &neg, &err), 1);
	free(json);
	CHECK_INT(cache_get(c, "p", "t", "w", NOW, &json, &neg, &err), 1);
	free(json);
	cache_close(c);

	each = store_many(path, 2000, 0);
	one = store_many(path, 2000, 1);
	fprintf(stdout,
	        "# 2000 stores: %.1f ms one commit each, %.1f ms in one"
	        " transaction\n",
	        each * 1000, one * 1000);
	tmp_rm(dir);
}

int
main(void)
{
	UNIT_RUN(test_miss_put_hit);
	UNIT_RUN(test_ttl_expiry);
	UNIT_RUN(test_negative);
	UNIT_RUN(test_replace);
	UNIT_RUN(test_none);
	UNIT_RUN(test_default_xdg);
	UNIT_RUN(test_default_home);
	UNIT_RUN(test_explicit_path_mode);
	UNIT_RUN(test_garbage_file);
	UNIT_RUN(test_foreign_database);
	UNIT_RUN(test_truncated);
	UNIT_RUN(test_corrupt_page);
	UNIT_RUN(test_unusable_path);
	UNIT_RUN(test_concurrent_writers);
	UNIT_RUN(test_reader_while_writer);
	UNIT_RUN(test_batch);
	return UNIT_END();
}
