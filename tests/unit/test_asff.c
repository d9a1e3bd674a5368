/* test_asff.c: Security Hub findings of the corpus as events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>

#include "asff.h"
#include "unit.h"

static jv
load(const char *name)
{
	const char *s = getenv("SHARED");
	char path[4096];
	jv v;

	snprintf(path, sizeof(path), "%s/corpus/vendor/aws-securityhub/%s",
	         s ? s : "../shared", name);
	/* A file of JSON texts comes back as an array of them. */
	v = jv_load_file(path, 0);
	if (jv_get_kind(v) != JV_KIND_ARRAY ||
	    jv_array_length(jv_copy(v)) != 1) {
		printf("# cannot read %s as one JSON text\n", path);
		jv_free(v);
		return jv_invalid();
	}
	return jv_array_get(v, 0);
}

/* The text of jq-like path p (dot-separated keys) in v, as compact JSON;
 * "absent" when a step is missing. */
static char *
at(jv v, const char *p)
{
	char key[256], *r;
	jv cur = jv_copy(v), s;

	while (*p) {
		size_t n = strcspn(p, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		if (jv_get_kind(cur) != JV_KIND_OBJECT) {
			jv_free(cur);
			return strdup("absent");
		}
		cur = jv_object_get(cur, jv_string(key));
		if (!jv_is_valid(cur))
			return strdup("absent");
		p += n + (p[n] == '.');
	}
	s = jv_dump_string(cur, 0);
	r = strdup(jv_string_value(s));
	jv_free(s);
	return r;
}

static void
check_at(jv v, const char *path, const char *want)
{
	char *got = at(v, path);

	if (strcmp(got, want) != 0)
		printf("# %s: got %s, want %s\n", path, got, want);
	CHECK_STR(got, want);
	free(got);
}

/* The GuardDuty finding: the remote address lives in ProductFields only. */
static void
test_guardduty(void)
{
	jv doc = load("guardduty-asff-finding-awsdocs.json"), list, ev;

	CHECK(jv_is_valid(doc));
	if (!jv_is_valid(doc))
		return;
	list = asff_findings(doc);
	CHECK_INT(jv_array_length(jv_copy(list)), 1);
	jv f = jv_array_get(jv_copy(list), 0);

	ev = asff_event(f, NULL);
	jv_free(f);
	check_at(ev, "alert.id",
	         "\"arn:aws::guardduty:us-east-1:193043430472:detector/"
	         "d4b040365221be2b54a6264dc9a4bc64/finding/"
	         "46ba0ac2845071e23ccdeb2ae03bfdea\"");
	check_at(ev, "alert.source", "\"securityhub\"");
	check_at(ev, "alert.severity", "\"medium\"");
	check_at(ev, "alert.score", "40");
	check_at(ev, "alert.status", "\"open\"");
	check_at(ev, "alert.created", "\"2020-08-22T09:34:34.146Z\"");
	check_at(ev, "@timestamp", "\"2020-09-30T12:14:00.206Z\"");
	check_at(ev, "cloud.provider", "\"aws\"");
	check_at(ev, "cloud.account.id", "\"193043430472\"");
	/* No Region member: the product ARN's region. */
	check_at(ev, "cloud.region", "\"us-east-1\"");
	check_at(ev, "cloud.instance.id", "\"i-0c10c2c7863d1a356\"");
	/* Inbound SSH brute force: the remote end is the source. */
	check_at(ev, "source.ip", "\"199.241.229.197\"");
	check_at(ev, "destination.ip", "\"172.31.43.6\"");
	check_at(ev, "related.ip", "[\"199.241.229.197\",\"172.31.43.6\"]");
	/* The instance's own addresses describe the host. */
	check_at(ev, "host.ip", "[\"18.234.130.16\",\"172.31.43.6\"]");
	check_at(ev, "user", "absent");
	/* The finding is kept whole. */
	check_at(ev, "aws.finding.SchemaVersion", "\"2018-10-08\"");
	check_at(ev, "aws.finding.Severity.Product", "2");
	jv_free(ev);
	jv_free(list);
	jv_free(doc);
}

static void
test_iam_user(void)
{
	jv doc = load("asff-finding-afsbp-iam.8.json"), ev;

	CHECK(jv_is_valid(doc));
	if (!jv_is_valid(doc))
		return;
	ev = asff_event(doc, "eu-west-1");
	check_at(ev, "user.name", "\"sharrtest\"");
	check_at(ev, "related.user", "[\"sharrtest\"]");
	/* The finding's own Region wins over the hint. */
	check_at(ev, "cloud.region", "\"us-east-1\"");
	check_at(ev, "related.ip", "absent");
	check_at(ev, "cloud.instance", "absent");
	jv_free(ev);
	jv_free(doc);
}

/* EventBridge events, an SNS notification around one, and pages. */
static void
test_envelopes(void)
{
	jv ca = load("eventbridge-findings-custom-action-2-findings.json");
	jv imp = load("eventbridge-findings-imported-cis-1.4.json");
	jv list, sns, ev, text;

	CHECK(jv_is_valid(ca) && jv_is_valid(imp));
	if (!jv_is_valid(ca) || !jv_is_valid(imp))
		return;
	list = asff_findings(ca);
	CHECK_INT(jv_array_length(jv_copy(list)), 2);
	/* INFORMATIONAL and RESOLVED map to the summary's words. */
	jv f = jv_array_get(jv_copy(list), 1);

	ev = asff_event(f, NULL);
	jv_free(f);
	check_at(ev, "alert.severity", "\"low\"");
	check_at(ev, "alert.score", "0");
	check_at(ev, "alert.status", "\"closed\"");
	jv_free(ev);
	jv_free(list);

	/* SNS carries the event as the text of Message. */
	text = jv_dump_string(jv_copy(imp), 0);
	sns = jv_object_set(jv_object(), jv_string("Type"),
	                    jv_string("Notification"));
	sns = jv_object_set(sns, jv_string("Message"), text);
	list = asff_findings(sns);
	CHECK_INT(jv_array_length(jv_copy(list)), 1);
	jv_free(list);
	jv_free(sns);

	/* A GetFindings page. */
	jv page = jv_object_set(
	        jv_object(), jv_string("Findings"),
	        jv_object_get(jv_object_get(jv_copy(ca), jv_string("detail")),
	                      jv_string("findings")));

	list = asff_findings(page);
	CHECK_INT(jv_array_length(jv_copy(list)), 2);
	jv_free(list);
	jv_free(page);
	jv_free(ca);
	jv_free(imp);
}

/* Documents that are not Security Hub findings, in any wrapping. */
static void
test_refused(void)
{
	static const char *const docs[] = {
	        "{\"detail-type\":\"EC2 Instance "
	        "State\",\"source\":\"aws.ec2\","
	        "\"detail\":{}}",
	        "{\"Type\":\"Notification\",\"Message\":\"not json\"}",
	        "{\"a\":1}",
	        "{\"detail-type\":\"Security Hub Findings - Imported\","
	        "\"source\":\"aws.securityhub\"}",
	};

	for (size_t i = 0; i < sizeof(docs) / sizeof(*docs); i++) {
		jv doc = jv_parse(docs[i]), v = asff_findings(doc);

		CHECK(!jv_is_valid(v));
		jv_free(v);
		jv_free(doc);
	}
}

static void
test_ocsf(void)
{
	jv f = jv_parse("{\"finding_info\":{\"uid\":\"f-1\",\"title\":\"T\"},"
	                "\"severity\":\"High\",\"status\":\"New\","
	                "\"cloud\":{\"account\":{\"uid\":\"123456789012\"},"
	                "\"region\":\"eu-west-1\"},"
	                "\"src_endpoint\":{\"ip\":\"203.0.113.9\"}}");
	jv ev;

	CHECK(asff_is_ocsf(f));
	ev = asff_ocsf_event(f, NULL);
	check_at(ev, "alert.id", "\"f-1\"");
	check_at(ev, "alert.severity", "\"high\"");
	check_at(ev, "alert.status", "\"open\"");
	check_at(ev, "cloud.account.id", "\"123456789012\"");
	check_at(ev, "cloud.region", "\"eu-west-1\"");
	check_at(ev, "related.ip", "[\"203.0.113.9\"]");
	jv_free(ev);
	jv_free(f);
}

int
main(void)
{
	UNIT_RUN(test_guardduty);
	UNIT_RUN(test_iam_user);
	UNIT_RUN(test_envelopes);
	UNIT_RUN(test_refused);
	UNIT_RUN(test_ocsf);
	return UNIT_END();
}
