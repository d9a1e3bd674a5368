/*
 * aws.h: calls to AWS APIs through lib/http: the endpoint, the signature,
 * the retry rule and the error envelope.
 *
 * A tool describes one call (service, region, method, path, body) and
 * aws_submit() resolves the endpoint with awscreds_endpoint(), fetches
 * credentials, signs with SigV4 and queues the request.  Answers are read
 * by the tool; aws_error() turns a failed one into a code and a message
 * from whichever envelope the service uses (the x-amzn-ErrorType header,
 * a rest-json body, or the XML of the query protocols).
 */
#ifndef SOAR_AWS_H
#define SOAR_AWS_H

#include <stddef.h>

#include "awscreds.h"
#include "cli.h"
#include "error.h"
#include "http.h"

/* The AWS options every AWS tool takes, for its cli_opt table. */
enum {
	AWS_OPT_PROFILE = 0x1c0, /* between cli.h's keys and a tool's */
	AWS_OPT_ROLE_ARN,
	AWS_OPT_EXTERNAL_ID,
};

#define AWS_CLI_OPT_PROFILE                                                    \
	{                                                                      \
		"profile", AWS_OPT_PROFILE, "NAME", "AWS profile"              \
	}
#define AWS_CLI_OPT_ROLE_ARN                                                   \
	{                                                                      \
		"role-arn", AWS_OPT_ROLE_ARN, "ARN",                           \
		        "assume this role for the run"                         \
	}
#define AWS_CLI_OPT_EXTERNAL_ID                                                \
	{                                                                      \
		"external-id", AWS_OPT_EXTERNAL_ID, "ID",                      \
		        "external id for --role-arn"                           \
	}

struct aws_cli {
	const char *profile, *region, *role_arn, *external_id;
};

/* Takes one of the options above.  Returns 1 when key was one of them. */
int aws_cli_option(struct aws_cli *o, int key, const char *arg);

/* Checks the options together once parsed; a bad mix exits 2. */
void aws_cli_check(const struct cli *c, const struct aws_cli *o);

/* The run's credentials.  With probe, they are fetched at once, so that
 * missing or refused credentials are reported before anything is read.
 * Returns NULL (logged) with *status set: 2 for a configuration without
 * credentials, 3 for a failure to fetch them. */
struct awscreds *aws_cli_creds(struct cli *c, const struct aws_cli *o,
                               const char *user_agent, int probe, int *status);

struct aws_call {
	const char *service_id;   /* SDK id for AWS_ENDPOINT_URL_<ID> */
	const char *host_prefix;  /* endpoint host prefix: "securityhub" */
	const char *signing_name; /* SigV4 service: "securityhub" */
	const char *region;       /* NULL: a global service (us-east-1) */
	const char *method;       /* "POST", "PATCH", ... */
	const char *path;         /* "/findings" (query string allowed) */
	const char *content_type; /* NULL for none */
	const char *body;         /* NULL for none */
	size_t body_len;
	int idempotent; /* safe to repeat after it may have arrived */
};

/* Signs and queues the call; done(arg, ...) runs from a later http_poll().
 * Returns 0, or -1 with err set (no credentials: code "credentials";
 * a bad endpoint: "config"; ENOMEM: "nomem"). */
int aws_submit(struct awscreds *ac, struct http *h, const struct aws_call *c,
               http_done_fn done, void *arg, struct soar_error *err);

/* Fills code and msg from a failed answer (either may come out empty). */
void aws_error(const struct http_response *resp, char *code, size_t codesz,
               char *msg, size_t msgsz);

/* Returns 1 when code is one of AWS's throttling error codes. */
int aws_throttled(const char *code);

/* The http_retry_fn of AWS calls: an answer whose error code says
 * throttling is retried whatever its status (some services answer 400). */
int aws_retry(void *arg, const struct http_response *resp);

#endif
