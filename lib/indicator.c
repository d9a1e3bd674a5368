/* indicator.c: address classes, digests, domains, URL ids. */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "indicator.h"

struct net4 {
	uint32_t addr;
	int bits;
};

/* IPv4 space that is not public unicast (IANA special-purpose registry). */
static const struct net4 special4[] = {
        {0x00000000, 8},  /* "this network" */
        {0x0A000000, 8},  /* private */
        {0x64400000, 10}, /* CGNAT shared space */
        {0x7F000000, 8},  /* loopback */
        {0xA9FE0000, 16}, /* link-local */
        {0xAC100000, 12}, /* private */
        {0xC0000000, 24}, /* IETF protocol assignments */
        {0xC0000200, 24}, /* documentation TEST-NET-1 */
        {0xC0586300, 24}, /* 6to4 relay anycast (deprecated) */
        {0xC0A80000, 16}, /* private */
        {0xC6120000, 15}, /* benchmarking */
        {0xC6336400, 24}, /* documentation TEST-NET-2 */
        {0xCB007100, 24}, /* documentation TEST-NET-3 */
        {0xE0000000, 4},  /* multicast */
        {0xF0000000, 4},  /* reserved, and broadcast */
};

static int
public4(uint32_t a)
{
	for (size_t i = 0; i < sizeof(special4) / sizeof(special4[0]); i++) {
		uint32_t mask = 0xFFFFFFFFu << (32 - special4[i].bits);

		if ((a & mask) == special4[i].addr)
			return 0;
	}
	return 1;
}

static int
public6(const unsigned char *b)
{
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0,    0,
	                                           0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};

	/* Addresses that carry an IPv4 address are judged by it. */
	if (memcmp(b, v4mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
		return public4((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
		               (uint32_t)b[14] << 8 | b[15]);
	/* Global unicast is 2000::/3; inside it, documentation, ORCHID and
	 * the IETF protocol block are not public. */
	if ((b[0] & 0xE0) != 0x20)
		return 0;
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
		return 0; /* 2001:db8::/32 documentation */
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02)
		return 0; /* 2001::/23 IETF protocol assignments */
	if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xF0) == 0)
		return 0; /* 3fff::/20 documentation */
	return 1;
}

int
indicator_ip_public(const char *s)
{
	unsigned char b[16];
	uint32_t a;

	if (inet_pton(AF_INET, s, b) == 1) {
		memcpy(&a, b, 4);
		return public4(ntohl(a));
	}
	if (inet_pton(AF_INET6, s, b) == 1)
		return public6(b);
	return 0;
}

int
indicator_is_ip(const char *s)
{
	unsigned char b[16];

	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

const char *
indicator_hash_kind(const char *s)
{
	size_t n = strspn(s, "0123456789abcdefABCDEF");

	if (s[n] != '\0')
		return NULL;
	return n == 32 ? "md5" : n == 40 ? "sha1" : n == 64 ? "sha256" : NULL;
}

int
indicator_domain_ok(const char *s)
{
	size_t n = strlen(s);
	unsigned char b[16];

	if (n == 0 || n > 253 || strchr(s, '.') == NULL || s[0] == '.' ||
	    strstr(s, "..") != NULL)
		return 0;
	if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	              "0123456789-_.") != n)
		return 0;
	return inet_pton(AF_INET, s, b) != 1;
}

long
indicator_base64url(const char *s, size_t n, char *out, size_t outsz)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
	                          "rstuvwxyz0123456789-_";
	const unsigned char *p = (const unsigned char *)s;
	size_t need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0), o = 0;

	if (need + 1 > outsz)
		return -1;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = tbl[v >> 18 & 63];
		out[o++] = tbl[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = tbl[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = tbl[v & 63];
	}
	out[o] = '\0';
	return (long)o;
}
