/* error.c: filling struct soar_error. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

void
soar_error_set(struct soar_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	snprintf(err->code, sizeof(err->code), "%s", code);
	va_start(ap, fmt);
	/* A cut message is still a useful message: truncation is accepted. */
	if (vsnprintf(err->message, sizeof(err->message), fmt, ap) < 0)
		err->message[0] = '\0';
	va_end(ap);
	err->status = 0;
	err->attempts = 0;
}

void
soar_error_clear(struct soar_error *err)
{
	if (err != NULL)
		memset(err, 0, sizeof(*err));
}
