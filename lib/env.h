/*
 * env.h: environment lookups that tests can inject.
 *
 * Functions whose results depend on the environment take an envp array
 * (NULL-terminated "NAME=value" strings, like environ); NULL means the
 * process environment.  Tests pass their own arrays and never touch the
 * real environment.
 */
#ifndef SOAR_ENV_H
#define SOAR_ENV_H

/* Returns the value of name in envp (or the process environment when envp
 * is NULL), borrowed, or NULL when it is not set. */
const char *env_get(const char *const *envp, const char *name);

#endif
