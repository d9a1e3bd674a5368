/*
 * awscreds.h: AWS credentials, region and endpoints, found as the AWS CLI
 * finds them.
 *
 * The chain, in order: environment variables (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or AWS_SECURITY_TOKEN; skipped
 * when a profile was named explicitly), the profile's role_arn with
 * source_profile or credential_source (STS AssumeRole; source_profile
 * links are followed and cycles refused), the profile's static keys in
 * the shared credentials file, its credential_process, its static keys in
 * the config file (the CLI's order), container credentials
 * (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI with
 * AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]) and IMDSv2 (token PUT, falling
 * back to IMDSv1 on 403/404/405 or no answer).  The profile is the one
 * passed in, else AWS_PROFILE, else "default"; a profile named either way
 * must exist.  With role_arn set (--role-arn), the credentials the chain
 * finds assume that role for the run.  Not supported: web identity, SSO,
 * mfa_serial (they need a browser or a prompt).
 *
 * The files are read as the CLI reads them (Python's configparser): keys
 * are case-insensitive, '#' and ';' start comment lines, indented lines
 * continue a value (nested sections such as "s3 =" are skipped), a
 * repeated section or key is an error.  ~ is expanded with HOME.
 *
 * Credentials are kept in memory and fetched again five minutes before
 * they expire; when that fails, the old ones serve (with a warning) until
 * they expire.  Requests to STS, IMDS and the container endpoint go
 * through private lib/http clients, so they never mix with a tool's own
 * requests; IMDS uses the CLI's 1 s timeout and single attempt
 * (AWS_METADATA_SERVICE_TIMEOUT, AWS_METADATA_SERVICE_NUM_ATTEMPTS).
 * credential_process runs under /bin/sh -c with stdin from /dev/null.
 * Secrets never reach logs or errors: messages name the source, never the
 * values.  A struct awscreds belongs to one thread.
 */
#ifndef SOAR_AWSCREDS_H
#define SOAR_AWSCREDS_H

#include <time.h>

#include "error.h"
#include "log.h"
#include "sigv4.h"

struct awscreds;

struct awscreds_config {
	const char *profile;  /* --profile, or NULL for AWS_PROFILE/default */
	const char *region;   /* --region, or NULL */
	const char *role_arn; /* --role-arn: assume this role for the run */
	const char *external_id;  /* with role_arn, or NULL */
	const char *session_name; /* with role_arn; NULL: soarutils-<time> */
	long duration_seconds;    /* with role_arn; 0 for 3600 */
	const char *const *envp;  /* environment (borrowed for the life of
	                           * the struct awscreds); NULL: the
	                           * process's */
	const char *home;         /* for ~/.aws; NULL: $HOME */
	time_t (*now)(void);      /* clock; NULL: time() */
	const struct log *log;    /* borrowed; -v names the source */
	const char *user_agent;   /* NULL: "soarutils" */
	const char *ecs_base_url; /* base of the relative container URI;
	                           * NULL: http://169.254.170.2 (tests) */
};

/* Reads the configuration (nothing is fetched yet); strings in cfg are
 * copied.  Returns NULL with err set (code "config") on an unreadable or
 * contradictory configuration: a malformed file, a named profile that
 * does not exist, one of the two environment keys without the other, an
 * endpoint URL without http:// or https://, a broken role_arn chain (no
 * source, a missing source profile, a cycle, mfa_serial, a bad
 * duration_seconds or role_session_name). */
struct awscreds *awscreds_new(const struct awscreds_config *cfg,
                              struct soar_error *err);
void awscreds_free(struct awscreds *ac);

/* Returns current credentials in *out (strings owned by ac, valid until
 * the next awscreds_get or awscreds_free), fetching or refreshing them
 * first when needed.  Returns 0, or -1 with err set: code "credentials"
 * when no source in the chain has any or a source's answer is unusable
 * (credential_process failed, IMDS Code not Success), "config" for a
 * configuration found wrong only now (a source profile without keys, a
 * bad container URI), "auth" when a source refused (STS AccessDenied,
 * say), "network", "timeout", "http" etc. from lib/http otherwise. */
int awscreds_get(struct awscreds *ac, struct sigv4_creds *out,
                 struct soar_error *err);

/* The source that gave the current credentials ("environment",
 * "assume-role", "shared-credentials-file", "config-file", "process",
 * "container", "imds"), or "" before the first awscreds_get. */
const char *awscreds_source(const struct awscreds *ac);

/* The region: cfg->region, AWS_REGION, AWS_DEFAULT_REGION, then the
 * profile's "region" in the config file.  NULL when none is set. */
const char *awscreds_region(const struct awscreds *ac);

/* Whether r can be a region name (and so a host name label): 1 to 64 of
 * [a-z0-9-]. */
int awscreds_region_ok(const char *r);

/* The base URL for a service (its SDK service id, e.g. "SecurityHub",
 * "EC2", "STS", "IAM"): AWS_ENDPOINT_URL_<ID> (upper case, spaces as
 * underscores), then AWS_ENDPOINT_URL, then the endpoint_url for the
 * service in the profile's services section, then the profile's
 * endpoint_url, else https://<host_prefix>.<region>.amazonaws.com (for global
 * services pass region NULL: https://<host_prefix>.amazonaws.com).  Returns a
 * new string without a trailing '/' (free it), or NULL on ENOMEM.  With
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true (or the profile's
 * ignore_configured_endpoint_urls) only the default is used.  The URLs
 * configured were checked by awscreds_new. */
char *awscreds_endpoint(const struct awscreds *ac, const char *service_id,
                        const char *host_prefix, const char *region);

#endif
