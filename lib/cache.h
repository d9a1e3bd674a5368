/*
 * cache.h: the persistent lookup cache of enrichers (SQLite).
 *
 * Answers are kept across runs, keyed by (provider, type, value), e.g.
 * ("vt", "file", "<sha256>"), each with an expiry time.  A cached answer is
 * either a JSON text or a "negative" entry (the provider said "not found").
 *
 * Several processes (cron pipelines) may use one file at once: the database
 * runs in WAL mode, so readers never wait for a writer, and writers wait up
 * to CACHE_BUSY_MS for each other instead of failing.  Commits do not fsync
 * (synchronous=NORMAL): a power cut may lose the last answers, never the
 * file.  A tool storing many answers brackets them with cache_begin and
 * cache_commit so they share one commit.
 *
 * The cache never stops a tool.  When the file cannot be used (missing
 * directory, not a database, corrupt, another schema, read-only, locked for
 * longer than CACHE_BUSY_MS), the handle becomes DISABLED: lookups miss,
 * stores do nothing, and the error is reported once, through the call that
 * disabled it (code "cache"; the message names the file and the step).  The
 * tool warns and goes on without a cache.
 *
 * Time is passed in (now, in seconds since the epoch) so tests decide it.
 * A handle may be shared by threads (calls are serialized); it must not be
 * carried across fork(): open one in each process.  Every function accepts
 * a NULL handle (what cache_open returns on ENOMEM) as a disabled one.
 */
#ifndef SOAR_CACHE_H
#define SOAR_CACHE_H

#include <time.h>

#include "error.h"

#define CACHE_BUSY_MS 5000 /* longest wait for another process's lock */
#define CACHE_SCHEMA  1    /* PRAGMA user_version of the files we write */

struct cache;

/* Opens the cache file at path.  NULL means the default location,
 * $XDG_CACHE_HOME/soarutils/cache.db, else $HOME/.cache/soarutils/cache.db,
 * whose missing directories are created with mode 0700; "none" means no
 * cache at all (a disabled handle).  A new file is created with mode 0600.
 * The path's last component must not be a symbolic link.
 * envp is a NULL-terminated "NAME=value" array read instead of the process
 * environment; NULL means the process environment.
 * Returns an owned handle (cache_close), DISABLED with err filled when the
 * file cannot be used, or NULL on ENOMEM only.  err is cleared otherwise,
 * so err.code[0] != '\0' tells that there is something to warn about. */
struct cache *cache_open(const char *path, const char *const *envp,
                         struct soar_error *err);

/* Returns 1 when lookups can hit, 0 when the handle is disabled. */
int cache_enabled(const struct cache *c);

/* Commits an open transaction, closes the file and frees c (NULL is
 * accepted). */
void cache_close(struct cache *c);

/* Looks up (provider, type, value), all borrowed.  Returns 1 on an entry
 * that has not expired at now: *json is then an owned copy of its JSON (free
 * it; NULL when the entry was stored without one) and *negative is 1 for a
 * cached "not found".  Returns 0 on a miss, an expired entry or a disabled
 * handle (*json is then NULL).  Returns -1 on an error: err is filled and
 * the handle is disabled for the rest of the run. */
int cache_get(struct cache *c, const char *provider, const char *type,
              const char *value, time_t now, char **json, int *negative,
              struct soar_error *err);

/* Stores or replaces the answer for (provider, type, value), valid for ttl
 * seconds (> 0) from now.  json (copied; may be NULL for a negative entry)
 * is stored as it is.  The first store of a handle also deletes a bounded
 * number of expired entries.  Returns 0 (also when disabled), or -1: an
 * invalid ttl (the handle stays usable), or an error that disabled the
 * handle.  err is filled in both cases. */
int cache_put(struct cache *c, const char *provider, const char *type,
              const char *value, const char *json, int negative, time_t now,
              long ttl, struct soar_error *err);

/* Starts a write transaction, so that the following cache_put calls cost one
 * commit instead of one each.  It holds the file's write lock until
 * cache_commit: keep it short (a batch of answers, not a network wait), as
 * other processes wait for it at most CACHE_BUSY_MS.  Calls nest; only the
 * outermost cache_commit commits.  Both return 0 (also when disabled), or
 * -1 with err filled and the handle disabled (the batch is lost). */
int cache_begin(struct cache *c, struct soar_error *err);
int cache_commit(struct cache *c, struct soar_error *err);

#endif
