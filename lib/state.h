/*
 * state.h: the cursor files of sources (--state FILE).
 *
 * A state file holds one JSON object.  It is replaced atomically: the new
 * text goes to a temporary file in the same directory, which is flushed to
 * disk and renamed over the old one, and the directory is flushed too, so
 * a crash leaves either the old cursor or the new one, never a mix.  A
 * source writes it only after the events it covers were written and
 * flushed (delivery is at least once).  While a run holds the lock (on
 * FILE.lock beside it, which stays), a second run on the same file is
 * refused instead of racing it.
 */
#ifndef SOAR_STATE_H
#define SOAR_STATE_H

#include <jv.h>

#include "error.h"

struct state;

/* Opens (creating it when missing, mode 0600) and locks path.  Returns
 * NULL with err set: code "busy" when another run holds the lock, "state"
 * for other failures. */
struct state *state_open(const char *path, struct soar_error *err);

/* Returns the object last saved (jv_null() for a new file), or an invalid
 * jv with err set (code "state") when the file is not a JSON object. */
jv state_load(struct state *st, struct soar_error *err);

/* Replaces the saved object with v (consumed).  Returns 0, or -1 with err
 * set; the old contents then remain. */
int state_save(struct state *st, jv v, struct soar_error *err);

/* Releases the lock. */
void state_close(struct state *st);

#endif
