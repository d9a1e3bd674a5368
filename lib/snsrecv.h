/*
 * snsrecv.h: a receiver for AWS SNS HTTPS subscriptions.
 *
 * SNS POSTs each message of a topic to the subscribed endpoint.  The
 * receiver (lib/httpd for HTTP, lib/sns for authenticity) answers every
 * delivery at once and writes what it accepted to standard output from a
 * writer thread, so a slow reader downstream never makes SNS time out (it
 * waits 15 s, then delivers again).  For each delivery, in this order:
 *
 *   400  not an SNS message, x-amz-sns-message-type or x-amz-sns-topic-arn
 *        not the body's, a Timestamp older than max_age_s;
 *   503  a Timestamp more than 5 minutes ahead (this host's clock is
 *        suspect: SNS tries again later);
 *   403  a TopicArn outside `topics`, a URL in the message off the SNS
 *        hosts, a signature or certificate that does not verify;
 *   502  the signing certificate or SubscribeURL could not be fetched, or
 *        failed within the last minute; 503 beyond 10 certificate
 *        fetches a minute (the one thread is never kept fetching);
 *   200  a MessageId already accepted: acknowledged, not written again;
 *   200  a Notification: convert() turns its Message into lines, queued
 *        for output; a Message it does not understand is logged and kept
 *        in the reject file;
 *   503  the output queue is full (queue_max bytes), or max_seen messages
 *        within max_age_s are remembered already: SNS tries again;
 *   200  a SubscriptionConfirmation: confirmed with a GET on its
 *        SubscribeURL;
 *   200  an UnsubscribeConfirmation: logged, nothing else.
 * A refused delivery is logged with its reason and never written; logged
 * fields of a message are cut short and stripped of control characters.
 * At the end, the writer gets 5 s to write what was acknowledged.
 */
#ifndef SOAR_SNSRECV_H
#define SOAR_SNSRECV_H

#include <signal.h>
#include <stddef.h>

#include "buf.h"
#include "error.h"
#include "http.h"
#include "log.h"

struct snsrecv_config {
	const char *listen;    /* "ADDR:PORT" */
	const char *cert_host; /* HOST[:PORT] allowed instead of SNS hosts */
	const char *cafile;    /* trust store for signing certificates */
	const char *topics;    /* comma-separated TopicArns accepted */
	const char *user;      /* Basic auth, both or neither */
	const char *password;
	long max_age_s;    /* oldest Timestamp accepted */
	size_t queue_max;  /* bytes of output held for a slow reader */
	size_t max_seen;   /* MessageIds remembered */
	struct http *http; /* certificate and SubscribeURL fetches */
	const struct log *log;
	int reject_fd; /* -1: none */
	/* Appends the output lines for a Message (each ending in '\n') to
	 * out and counts them in *nlines.  Returns 0, or -1 with why filled
	 * when the Message is not one the tool understands. */
	int (*convert)(void *arg, const char *message, struct buf *out,
	               size_t *nlines, char *why, size_t whysz);
	void *arg;
};

struct snsrecv_stats {
	size_t deliveries; /* requests that reached the handler */
	size_t accepted;   /* notifications accepted */
	size_t lines;      /* lines written */
	size_t rejected;   /* deliveries refused (4xx) */
	size_t deferred;   /* deliveries answered 5xx: SNS tries again */
	size_t unusable;   /* authentic messages convert() refused */
	size_t duplicates;
	size_t confirmed;
	size_t lost; /* lines accepted but never written (output failed) */
	int epipe, out_failed;
};

/* Fills cfg with the defaults: max_age_s 3600, queue_max 64 MiB,
 * max_seen 100000, reject_fd -1. */
void snsrecv_config_defaults(struct snsrecv_config *cfg);

/* Serves until *stop is set (wake_fd, when not -1, becomes readable to
 * cut the wait short) or the output fails, then writes what is queued.
 * Returns 0, or -1 with err set: "usage" (a bad listen address), "listen"
 * (cannot bind), "config" (the CA file), "nomem". */
int snsrecv_run(const struct snsrecv_config *cfg,
                const volatile sig_atomic_t *stop, int wake_fd,
                struct snsrecv_stats *st, struct soar_error *err);

#endif
