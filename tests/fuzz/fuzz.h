/*
 * fuzz.h: what the libFuzzer targets share: the entry points libFuzzer
 * calls, copies of the input in exactly sized buffers (so that ASan sees
 * a read one byte past the end), and the check that aborts on a broken
 * invariant, naming it.
 */
#ifndef SOAR_FUZZ_H
#define SOAR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts, so that libFuzzer saves the input, when an invariant fails. */
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: invariant broken: %s\n",       \
			        __FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

/* Returns a copy of p[0..n) in a buffer of exactly n bytes (not
 * NUL-terminated; one byte for n == 0, never read).  Aborts on ENOMEM. */
static inline char *
fuzz_bytes(const void *p, size_t n)
{
	char *s = malloc(n > 0 ? n : 1);

	if (s == NULL)
		abort();
	if (n > 0)
		memcpy(s, p, n);
	return s;
}

/* Returns p[0..n) as a C string in a buffer of exactly n + 1 bytes (a NUL
 * inside p ends the string early).  Aborts on ENOMEM. */
static inline char *
fuzz_str(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	if (n > 0)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

#endif
