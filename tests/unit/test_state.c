/* test_state.c: cursor files: round trip, atomic replace, lock, refusal. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jv.h>

#include "state.h"
#include "unit.h"

static char dir[] = "/tmp/soar-state-XXXXXX";

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

/* Removes the FILE.lock beside path. */
static void
unlink_lock(const char *path)
{
	char lock[300];

	snprintf(lock, sizeof(lock), "%s.lock", path);
	unlink(lock);
}

static void
test_round_trip(void)
{
	char path[256];
	struct soar_error err = {0};
	struct state *st;
	struct stat sb;
	jv v;

	snprintf(path, sizeof(path), "%s/new.state", dir);
	st = state_open(path, &err);
	CHECK(st != NULL);
	if (st == NULL)
		return;
	/* A new file is created 0600 and reads as null. */
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	v = state_load(st, &err);
	CHECK(jv_get_kind(v) == JV_KIND_NULL);
	jv_free(v);
	CHECK_INT(state_save(st,
	                     jv_parse("{\"a\":{\"updated_at\":1700000000123}}"),
	                     &err),
	          0);
	v = state_load(st, &err);
	CHECK(jv_equal(v, jv_parse("{\"a\":{\"updated_at\":1700000000123}}")));
	/* No temporary file is left behind. */
	char tmp[300];

	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	CHECK(access(tmp, F_OK) != 0);
	state_close(st);
	unlink(path);
	unlink_lock(path);
}

static void
test_refused(void)
{
	char path[256];
	struct soar_error err = {0};
	struct state *st;
	jv v;

	snprintf(path, sizeof(path), "%s/bad.state", dir);
	write_file(path, "[1,2]\n");
	st = state_open(path, &err);
	CHECK(st != NULL);
	if (st == NULL)
		return;
	v = state_load(st, &err);
	CHECK(!jv_is_valid(v));
	CHECK_STR(err.code, "state");
	jv_free(v);
	/* A failed load leaves the file as it was. */
	state_close(st);
	FILE *f = fopen(path, "r");
	char line[16] = "";

	CHECK(f != NULL && fgets(line, sizeof(line), f) != NULL);
	CHECK_STR(line, "[1,2]\n");
	if (f)
		fclose(f);
	unlink(path);
	unlink_lock(path);

	snprintf(path, sizeof(path), "%s/no/such/dir/x.state", dir);
	CHECK(state_open(path, &err) == NULL);
	CHECK_STR(err.code, "state");
}

/* A second holder, in another process, is refused while the first runs. */
static void
test_lock(void)
{
	char path[256];
	struct soar_error err = {0};
	struct state *st;
	pid_t pid;
	int status = -1;

	snprintf(path, sizeof(path), "%s/lock.state", dir);
	st = state_open(path, &err);
	CHECK(st != NULL);
	/* A save replaces the file: the lock must outlive that. */
	CHECK_INT(state_save(st, jv_object(), &err), 0);
	pid = fork();
	if (pid == 0) {
		struct soar_error e2 = {0};
		struct state *s2 = state_open(path, &e2);

		_exit(s2 == NULL && strcmp(e2.code, "busy") == 0 ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	state_close(st);
	/* Released: the next run gets it. */
	st = state_open(path, &err);
	CHECK(st != NULL);
	state_close(st);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.state.lock", dir);
	unlink(path);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	UNIT_RUN(test_round_trip);
	UNIT_RUN(test_refused);
	UNIT_RUN(test_lock);
	rmdir(dir);
	return UNIT_END();
}
