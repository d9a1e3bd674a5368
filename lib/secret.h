/*
 * secret.h: API credentials and settings from the environment, NAME_FILE
 * and the config file; redaction of HTTP traces.
 *
 * A secret NAME (VT_API_KEY) is looked up, first found wins, in:
 *   1. the environment variable NAME;
 *   2. the file named by NAME_FILE (a Docker or Kubernetes secret mount, or
 *      <(pass show vt)): trailing newlines and CRs stripped, at most
 *      SECRET_FILE_MAX bytes, empty is an error;
 *   3. the config file, $XDG_CONFIG_HOME/soarutils/config, else
 *      $HOME/.config/soarutils/config: lines "NAME=value" (spaces around
 *      '=' and a pair of quotes around the value are dropped), blank lines,
 *      and "#" comment lines.  The file must be a regular file owned by the
 *      user and closed to group and others (chmod 600); otherwise it is
 *      refused with an error, never skipped, so a key does not silently go
 *      unused.  A malformed line anywhere refuses the whole file.
 * Never from argv: other users can read a process's arguments.  An empty
 * value (NAME=, or "NAME=" in the file) counts as not set.
 *
 * Error messages name the variable, file and line, never a value: they end
 * up in logs and events.  Secrets are wiped from memory when freed.
 */
#ifndef SOAR_SECRET_H
#define SOAR_SECRET_H

#include <stddef.h>

#include "buf.h"
#include "error.h"

#define SECRET_FILE_MAX   (64 * 1024)   /* largest NAME_FILE */
#define SECRET_CONFIG_MAX (1024 * 1024) /* largest config file */

/* Looks up the secret name (an identifier: letters, digits, '_').  envp is
 * a NULL-terminated "NAME=value" array read instead of the process
 * environment (NULL: the process environment); HOME and XDG_CONFIG_HOME
 * come from it too.  Returns 1 with *out an owned copy (free it with
 * secret_free), 0 when set nowhere (*out NULL; the tool decides whether
 * that is an error), or -1 with err filled (code "secret" for NAME_FILE,
 * "config" for the config file): an unreadable, empty or too large
 * NAME_FILE, a refused or malformed config file. */
int secret_get(const char *name, const char *const *envp, char **out,
               struct soar_error *err);

/* Wipes and frees a secret (NULL is accepted). */
void secret_free(char *s);

/* Looks up a setting that is not a secret (VT_URL): the environment, then
 * the config file, under the same rules; no NAME_FILE.  Returns like
 * secret_get; *out is owned (free, or secret_free). */
int config_get(const char *name, const char *const *envp, char **out,
               struct soar_error *err);

/* Appends text (len bytes: one or more HTTP header lines, each ending in
 * "\n" or "\r\n" except maybe the last) to out, with the value of every
 * header that may carry a credential replaced by "[redacted]": the
 * Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key,
 * X-Auth-Token and X-Amz-Security-Token headers and any header whose name
 * contains "token", "secret", "key", "signature" or "password", in any
 * case.  Other lines (request and status lines too) are copied unchanged.
 * Returns 0, or -1 on ENOMEM (out may then hold part of the text, never a
 * redacted value). */
int secret_redact(const char *text, size_t len, struct buf *out);

#endif
