/* state.c: atomic, locked cursor files for sources. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "state.h"

#define STATE_MAX                                                              \
	(64 * 1024 * 1024) /* a cursor is small; refuse a huge file            \
	                    */

struct state {
	char *path;
	int fd; /* FILE.lock, holding the lock: the state file itself is
	         * replaced by each save, so it cannot carry the lock */
};

struct state *
state_open(const char *path, struct soar_error *err)
{
	struct state *st = calloc(1, sizeof(*st));

	if (st == NULL || (st->path = strdup(path)) == NULL) {
		free(st);
		soar_error_set(err, "state", "out of memory");
		return NULL;
	}
	struct buf lock = BUF_INIT;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	st->fd = -1;
	if (fd < 0) {
		soar_error_set(err, "state", "%s: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	if (buf_printf(&lock, "%s.lock", path) < 0) {
		soar_error_set(err, "state", "out of memory");
		goto fail;
	}
	st->fd = open(lock.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->fd < 0) {
		soar_error_set(err, "state", "%s: %s", lock.data,
		               strerror(errno));
		buf_free(&lock);
		goto fail;
	}
	buf_free(&lock);
	if (flock(st->fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			soar_error_set(
			        err, "busy",
			        "%s: another run is using this state file",
			        path);
		else
			soar_error_set(err, "state", "%s: lock: %s", path,
			               strerror(errno));
		goto fail;
	}
	return st;
fail:
	if (st->fd >= 0)
		close(st->fd);
	free(st->path);
	free(st);
	return NULL;
}

jv
state_load(struct state *st, struct soar_error *err)
{
	struct buf b = BUF_INIT;
	char chunk[65536];
	ssize_t n;
	jv v;

	/* Read through a fresh descriptor: the locked one may describe the
	 * file this run replaced. */
	int fd = open(st->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		soar_error_set(err, "state", "%s: %s", st->path,
		               strerror(errno));
		return jv_invalid();
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (b.len + (size_t)n > STATE_MAX) {
			errno = EFBIG;
			n = -1;
			break;
		}
		if (buf_append(&b, chunk, (size_t)n) < 0) {
			n = -1;
			break;
		}
	}
	if (n < 0) {
		soar_error_set(err, "state", "%s: %s", st->path,
		               strerror(errno));
		close(fd);
		buf_free(&b);
		return jv_invalid();
	}
	close(fd);
	if (b.len == 0 || strspn(b.data, " \t\r\n") == b.len) {
		buf_free(&b);
		return jv_null();
	}
	v = jv_parse_sized(b.data, (int)b.len);
	buf_free(&b);
	if (jv_get_kind(v) != JV_KIND_OBJECT) {
		jv_free(v);
		soar_error_set(err, "state",
		               "%s: not a state file (a JSON object); move it "
		               "away to start afresh",
		               st->path);
		return jv_invalid();
	}
	return v;
}

/* Flushes the directory holding path, so that a rename in it is durable. */
static int
sync_dir(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd, rc;

	if (dir == NULL)
		return -1;
	slash = strrchr(dir, '/');
	if (slash == NULL)
		memcpy(dir, ".", 2); /* strdup gave at least 2 bytes: a name */
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
state_save(struct state *st, jv v, struct soar_error *err)
{
	jv text = jv_dump_string(v, 0);
	const char *p = jv_string_value(text);
	size_t left = (size_t)jv_string_length_bytes(jv_copy(text));
	struct buf tmp = BUF_INIT;
	int fd = -1, rc = -1;

	if (buf_printf(&tmp, "%s.%ld.tmp", st->path, (long)getpid()) < 0) {
		soar_error_set(err, "state", "out of memory");
		goto out;
	}
	/* A leftover of a crashed run with this pid goes; a link planted in
	 * its place is not followed. */
	unlink(tmp.data);
	fd = open(tmp.data,
	          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	while (left > 0) {
		ssize_t n = write(fd, p, left);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		left -= (size_t)n;
	}
	if (write(fd, "\n", 1) != 1 || fsync(fd) < 0)
		goto fail;
	int closed = close(fd);

	fd = -1;
	if (closed < 0 || rename(tmp.data, st->path) < 0 ||
	    sync_dir(st->path) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	soar_error_set(err, "state", "%s: cannot save: %s", st->path,
	               strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp.data);
out:
	buf_free(&tmp);
	jv_free(text);
	return rc;
}

void
state_close(struct state *st)
{
	if (st == NULL)
		return;
	close(st->fd);
	free(st->path);
	free(st);
}
