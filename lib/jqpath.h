/*
 * jqpath.h: the event paths a jq program can read.
 *
 * decide evaluates user jq programs on every event, and parsing the whole
 * event into a jv tree dominates the cost.  This module reads a program's
 * text and computes a trie of object-key paths from the event root that
 * the program may read, so that only those parts need to be parsed.
 *
 * Invariants of the trie:
 *   - A whole node needs its entire subtree; it has no children.
 *   - A node that is not whole needs only its children's keys when its
 *     value is an object.  A value that is not an object is kept whole,
 *     so a childless node that is not whole keeps the value's type (an
 *     object becomes {}).
 *   - Nothing below a whole node is ever recorded.
 * The analysis over-approximates: when it meets anything it does not
 * understand it marks the root whole, which means "parse everything".
 * Projecting an event through the trie never changes a program's outputs
 * or errors.
 */
#ifndef SOAR_JQPATH_H
#define SOAR_JQPATH_H

#include <stddef.h>

#include <jv.h>

struct jqpath;
struct jqpath_node;

/* jqpath_new: returns an owned, empty trie (reads nothing), NULL on ENOMEM. */
struct jqpath *jqpath_new(void);

/* jqpath_free: frees p and its nodes; accepts NULL. */
void jqpath_free(struct jqpath *p);

/*
 * jqpath_add_program: adds the paths that the jq 1.6 program src (borrowed,
 * NUL-terminated) may read from its input.  src should already have been
 * accepted by jq_compile; text this module cannot analyse marks the root
 * whole.  Returns 0 when the analysis bounded the reads, 1 when it fell back
 * to the whole root (still success), and -1 on ENOMEM, in which case the
 * root is marked whole too, so p stays safe to use.  Calls accumulate: the
 * trie becomes the union over programs.
 */
int jqpath_add_program(struct jqpath *p, const char *src);

/* jqpath_add_whole: marks the root whole; never fails. */
void jqpath_add_whole(struct jqpath *p);

/*
 * jqpath_add_path: adds the literal path keys[0..n) (borrowed,
 * NUL-terminated keys) with its whole subtree needed; n == 0, or a path of
 * more than 256 keys, marks the root whole.  Returns 0, or -1 on ENOMEM, in
 * which case the root is marked whole.
 */
int jqpath_add_path(struct jqpath *p, const char *const *keys, size_t n);

/* jqpath_is_whole: returns 1 when the root is needed whole, else 0. */
int jqpath_is_whole(const struct jqpath *p);

/* jqpath_root: returns the root node, borrowed from p. */
const struct jqpath_node *jqpath_root(const struct jqpath *p);

/* jqpath_node_whole: returns 1 when n's whole subtree is needed, else 0. */
int jqpath_node_whole(const struct jqpath_node *n);

/*
 * jqpath_node_child: returns n's child for the key bytes key[0..len) (not
 * NUL-terminated, already unescaped), borrowed from the trie, or NULL when
 * that key is not needed.  A whole node has no children: check
 * jqpath_node_whole first.
 */
const struct jqpath_node *jqpath_node_child(const struct jqpath_node *n,
                                            const char *key, size_t len);

/* jqpath_node_nchildren: returns how many children n has. */
size_t jqpath_node_nchildren(const struct jqpath_node *n);

/*
 * jqpath_dump: returns a canonical text form, owned by the caller (free()),
 * or NULL on ENOMEM.  "*" is the whole root; otherwise {key:SUB,...} with
 * keys sorted bytewise, JSON-quoted unless they match [A-Za-z_][A-Za-z0-9_]*,
 * and SUB either "*" (whole) or a nested {...}.  A trie that reads nothing
 * is "{}".
 */
char *jqpath_dump(const struct jqpath *p);

/*
 * jqpath_project_jv: consumes v and returns it cut down to the needed paths:
 * an object keeps only needed keys, a value that is not an object is kept
 * whole, and whole nodes keep their subtree.  A root that is not an object
 * is returned unchanged.
 */
jv jqpath_project_jv(const struct jqpath *p, jv v);

#endif
