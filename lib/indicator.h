/*
 * indicator.h: recognizing indicators of compromise in event fields.
 *
 * Enrichers send indicators to vendors; addresses that cannot identify
 * anyone outside (private, loopback, link-local, CGNAT, documentation,
 * multicast, reserved) are never sent: they would leak internal topology
 * and waste quota on answers that mean nothing.
 */
#ifndef SOAR_INDICATOR_H
#define SOAR_INDICATOR_H

#include <stddef.h>

/* Returns 1 when s is an IPv4 or IPv6 address in publicly routed unicast
 * space, 0 otherwise (including when s is not an address). */
int indicator_ip_public(const char *s);

/* Returns 1 when s is an IPv4 or IPv6 address of any kind. */
int indicator_is_ip(const char *s);

/* Returns "md5", "sha1" or "sha256" when s is a hex digest of that length,
 * else NULL. */
const char *indicator_hash_kind(const char *s);

/* Returns 1 when s looks like a DNS name worth looking up: letters,
 * digits, '-', '_' and dots, at least one dot, not an address, at most 253
 * characters. */
int indicator_domain_ok(const char *s);

/* Writes the unpadded base64url form of s[0..n) into out (outsz bytes,
 * NUL-terminated).  Returns the length, or -1 when out is too small. */
long indicator_base64url(const char *s, size_t n, char *out, size_t outsz);

#endif
