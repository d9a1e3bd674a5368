/*
 * error.h: the error record that lib/ functions fill instead of printing.
 *
 * A failed call returns a negative value and fills a struct soar_error; the
 * tool logs it and, for a per-event failure, writes it into the event as
 * {"error": {"code", "message", "status", "attempts"}} (event_error_jv).
 */
#ifndef SOAR_ERROR_H
#define SOAR_ERROR_H

struct soar_error {
	char code[32]; /* short machine-readable class: "jq", "parse", ... */
	char message[512]; /* one line for a human; never holds a secret */
	long status;       /* HTTP status, or 0 */
	int attempts;      /* requests made, or 0 */
};

/* Fills err (when not NULL) with a code and a formatted message; long
 * messages are cut at the buffer's size, never overflowed. */
void soar_error_set(struct soar_error *err, const char *code, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));

/* Resets err to "no error". */
void soar_error_clear(struct soar_error *err);

#endif
