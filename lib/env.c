/* env.c: environment lookups that tests can inject. */
#include <stdlib.h>
#include <string.h>

#include "env.h"

const char *
env_get(const char *const *envp, const char *name)
{
	size_t n = strlen(name);

	if (envp == NULL)
		return getenv(name);
	for (; *envp != NULL; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}
