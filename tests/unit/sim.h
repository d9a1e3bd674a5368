/*
 * sim.h: the vendor simulator (tests/sim/sim.py) for the C unit tests that
 * talk to it.  Include once per test program: the helpers are static.
 * The tests run from the repository root.
 */
#ifndef SOAR_TEST_SIM_H
#define SOAR_TEST_SIM_H

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "buf.h"

static char sim_url[64];
static pid_t sim_pid;

/* Starts the simulator on a free loopback port (its stderr to /dev/null
 * unless quiet is 0) and sets sim_url.  Returns 0, or -1 when it does not
 * come up within 10 s. */
static int
sim_start_quiet(int quiet)
{
	char portfile[] = "/tmp/soar-test-sim-XXXXXX";
	int fd = mkstemp(portfile);
	FILE *f;
	int port = 0;

	if (fd < 0)
		return -1;
	close(fd);
	unlink(portfile);
	if ((sim_pid = fork()) == 0) {
		int null = quiet ? open("/dev/null", O_WRONLY) : -1;

		if (null >= 0)
			dup2(null, 2);
		execlp("python3", "python3", "tests/sim/sim.py", "--port", "0",
		       "--port-file", portfile, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && port == 0; i++) {
		usleep(20000);
		if ((f = fopen(portfile, "r")) != NULL) {
			if (fscanf(f, "%d", &port) != 1)
				port = 0;
			fclose(f);
		}
	}
	unlink(portfile);
	snprintf(sim_url, sizeof(sim_url), "http://127.0.0.1:%d", port);
	return port ? 0 : -1;
}

static void
sim_stop(void)
{
	if (sim_pid > 0) {
		kill(sim_pid, SIGTERM);
		waitpid(sim_pid, NULL, 0);
		sim_pid = 0;
	}
}

static size_t
sim_collect(char *p, size_t size, size_t n, void *arg)
{
	buf_append(arg, p, size * n);
	return size * n;
}

/* A plain request to the simulator (control or test routes); *status gets
 * the HTTP status when not NULL.  Returns the body (free it). */
static char *
sim_control(const char *method, const char *path, const char *body,
            long *status)
{
	struct buf out = BUF_INIT;
	char url[256];
	CURL *h = curl_easy_init();

	snprintf(url, sizeof(url), "%s%s", sim_url, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sim_collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
	curl_easy_perform(h);
	if (status != NULL)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(h);
	buf_putc(&out, '\0');
	return out.data;
}

#endif
