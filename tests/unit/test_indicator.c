/* test_indicator.c: address classes, digests, domains, URL ids. */
#include <string.h>

#include "indicator.h"
#include "unit.h"

static void
test_ip(void)
{
	static const char *const pub[] = {
	        "1.1.1.1",        "8.8.8.8",          "72.140.211.49",
	        "100.63.255.255", "100.128.0.1",      "172.15.255.255",
	        "172.32.0.1",     "192.167.1.1",      "198.17.255.255",
	        "198.20.0.1",     "223.255.255.255",  "2606:4700:4700::1111",
	        "::ffff:8.8.8.8", "64:ff9b::808:808",
	};
	static const char *const priv[] = {
	        "10.0.0.1",
	        "172.16.0.1",
	        "172.31.255.255",
	        "192.168.1.1",
	        "127.0.0.1",
	        "169.254.169.254",
	        "100.64.0.1",
	        "100.127.255.255",
	        "0.0.0.0",
	        "192.0.2.7",
	        "198.51.100.7",
	        "203.0.113.7",
	        "192.0.0.8",
	        "198.18.0.1",
	        "224.0.0.1",
	        "239.1.1.1",
	        "240.0.0.1",
	        "255.255.255.255",
	        "::1",
	        "::",
	        "fe80::1",
	        "fc00::1",
	        "fd12:3456::1",
	        "ff02::1",
	        "2001:db8::1",
	        "::ffff:10.0.0.1",
	        "64:ff9b::a00:1",
	        "3fff::1",
	        "not an ip",
	        "",
	        "1.2.3",
	        "1.2.3.4.5",
	        "01.2.3.4",
	        " 1.1.1.1",
	};

	for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++) {
		if (!indicator_ip_public(pub[i]))
			printf("# %s should be public\n", pub[i]);
		CHECK(indicator_ip_public(pub[i]));
	}
	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++) {
		if (indicator_ip_public(priv[i]))
			printf("# %s should not be public\n", priv[i]);
		CHECK(!indicator_ip_public(priv[i]));
	}
}

static void
test_hash(void)
{
	CHECK_STR(indicator_hash_kind("44d88612fea8a8f36de82e1278abb02f"),
	          "md5");
	CHECK_STR(
	        indicator_hash_kind("3395856ce81f2b7382dee72602f798b642f14140"),
	        "sha1");
	CHECK_STR(
	        indicator_hash_kind("275A021BBFB6489E54D471899F7DB9D1663FC695E"
	                            "C2FE2A2C4538AABF651FD0F"),
	        "sha256");
	CHECK(indicator_hash_kind("44d88612fea8a8f36de82e1278abb02") == NULL);
	CHECK(indicator_hash_kind("44d88612fea8a8f36de82e1278abb02g") == NULL);
	CHECK(indicator_hash_kind("") == NULL);
}

static void
test_domain(void)
{
	CHECK(indicator_domain_ok("github.com"));
	CHECK(indicator_domain_ok("a-b_c.example.co.uk"));
	CHECK(!indicator_domain_ok("localhost"));
	CHECK(!indicator_domain_ok("1.2.3.4"));
	CHECK(!indicator_domain_ok(".example.com"));
	CHECK(!indicator_domain_ok("a..b"));
	CHECK(!indicator_domain_ok("exa mple.com"));
	CHECK(!indicator_domain_ok("example.com/x"));
	CHECK(!indicator_domain_ok(""));
}

static void
check_b64(const char *in, const char *want)
{
	char out[128];

	CHECK_INT(indicator_base64url(in, strlen(in), out, sizeof(out)),
	          (long)strlen(want));
	CHECK_STR(out, want);
}

static void
test_base64url(void)
{
	char small[4];

	/* The VirusTotal URL id of http://example.com/ (API docs). */
	check_b64("http://example.com/", "aHR0cDovL2V4YW1wbGUuY29tLw");
	check_b64("", "");
	check_b64("f", "Zg");
	check_b64("fo", "Zm8");
	check_b64("foo", "Zm9v");
	check_b64("\xfb\xff", "-_8");
	CHECK_INT(indicator_base64url("foo", 3, small, sizeof(small)), -1);
}

int
main(void)
{
	UNIT_RUN(test_ip);
	UNIT_RUN(test_hash);
	UNIT_RUN(test_domain);
	UNIT_RUN(test_base64url);
	return UNIT_END();
}
