/* asff.c: Security Hub findings (ASFF, and OCSF from V2 events) to events. */
#include <stdio.h>
#include <string.h>

#include "asff.h"
#include "indicator.h"

/* The string at a path of object keys, or NULL (borrowed from v). */
static const char *
str_at(jv v, const char *const *path, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (jv_get_kind(v) != JV_KIND_OBJECT)
			return NULL;
		jv next = jv_object_get(jv_copy(v), jv_string(path[i]));

		/* Values stay alive inside the finding: drop our reference. */
		jv_free(next);
		if (!jv_is_valid(next))
			return NULL;
		v = next;
	}
	return jv_get_kind(v) == JV_KIND_STRING ? jv_string_value(v) : NULL;
}

#define STR(v, ...)                                                            \
	str_at((v), (const char *const[]){__VA_ARGS__},                        \
	       sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))

/* The value at a path (a new reference; invalid when absent). */
static jv
get(jv v, const char *const *path, size_t n)
{
	v = jv_copy(v);
	for (size_t i = 0; i < n; i++) {
		if (jv_get_kind(v) != JV_KIND_OBJECT) {
			jv_free(v);
			return jv_invalid();
		}
		v = jv_object_get(v, jv_string(path[i]));
	}
	return v;
}

#define GET(v, ...)                                                            \
	get((v), (const char *const[]){__VA_ARGS__},                           \
	    sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))

/* Appends s to the array arr (a set: no repeats, no NULL or ""). */
static jv
add_unique(jv arr, const char *s)
{
	int n = jv_array_length(jv_copy(arr));

	if (s == NULL || *s == '\0')
		return arr;
	for (int i = 0; i < n; i++) {
		jv x = jv_array_get(jv_copy(arr), i);
		int same = strcmp(jv_string_value(x), s) == 0;

		jv_free(x);
		if (same)
			return arr;
	}
	return jv_array_append(arr, jv_string(s));
}

static jv
set(jv o, const char *k, jv v)
{
	if (!jv_is_valid(v)) {
		jv_free(v);
		return o;
	}
	return jv_object_set(o, jv_string(k), v);
}

static jv
set_str(jv o, const char *k, const char *s)
{
	return s != NULL && *s != '\0'
	               ? jv_object_set(o, jv_string(k), jv_string(s))
	               : o;
}

/* Severity label to the lower-case word of alert.severity. */
static const char *
severity_word(const char *label)
{
	static const char *const map[][2] = {
	        {"INFORMATIONAL", "low"}, {"LOW", "low"},
	        {"MEDIUM", "medium"},     {"HIGH", "high"},
	        {"CRITICAL", "critical"},
	};

	for (size_t i = 0; label != NULL && i < sizeof(map) / sizeof(*map); i++)
		if (strcmp(label, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

/* The score Security Hub derives from a label given without Normalized. */
static double
label_score(const char *label)
{
	static const struct {
		const char *label;
		double score;
	} map[] = {{"INFORMATIONAL", 0},
	           {"LOW", 1},
	           {"MEDIUM", 40},
	           {"HIGH", 70},
	           {"CRITICAL", 90}};

	for (size_t i = 0; label != NULL && i < sizeof(map) / sizeof(*map); i++)
		if (strcmp(label, map[i].label) == 0)
			return map[i].score;
	return -1;
}

static const char *
status_word(const char *workflow)
{
	if (workflow == NULL || strcmp(workflow, "NEW") == 0)
		return "open";
	if (strcmp(workflow, "NOTIFIED") == 0)
		return "acknowledged";
	return "closed"; /* RESOLVED, SUPPRESSED */
}

/* "arn:aws:ec2:region:acct:instance/i-..." -> "i-..."; NULL otherwise. */
static const char *
arn_tail(const char *arn, const char *kind)
{
	const char *p;
	size_t k = strlen(kind);

	if (arn == NULL || strncmp(arn, "arn:", 4) != 0)
		return NULL;
	p = strrchr(arn, ':');
	if (p == NULL || strncmp(p + 1, kind, k) != 0 || p[1 + k] != '/')
		return NULL;
	p = strrchr(p, '/');
	return p != NULL && p[1] != '\0' ? p + 1 : NULL;
}

/* A GuardDuty ProductFields key ending in suffix, as a string (borrowed
 * from pf), or NULL. */
static const char *
product_field(jv pf, const char *suffix)
{
	size_t sl = strlen(suffix);

	if (jv_get_kind(pf) != JV_KIND_OBJECT)
		return NULL;
	for (int it = jv_object_iter(pf); jv_object_iter_valid(pf, it);
	     it = jv_object_iter_next(pf, it)) {
		jv k = jv_object_iter_key(pf, it);
		jv v = jv_object_iter_value(pf, it);
		const char *ks = jv_string_value(k);
		size_t kl = strlen(ks);
		int hit = jv_get_kind(v) == JV_KIND_STRING && kl >= sl &&
		          strcmp(ks + kl - sl, suffix) == 0 &&
		          strncmp(ks, "aws/guardduty/", 14) == 0;

		jv_free(k);
		/* The value lives on in pf: drop this reference only. */
		jv_free(v);
		if (hit)
			return jv_string_value(v);
	}
	return NULL;
}

/* Addresses, host names and users the finding names, into the event. */
static jv
indicators(jv f, jv ev, const char *region, const char **instance)
{
	jv ips = jv_array(), hosts = jv_array(), users = jv_array();
	jv pf = GET(f, "ProductFields"), res = GET(f, "Resources");
	const char *remote, *local, *dir, *s, *user = NULL;

	/* The remote end: Action first, then GuardDuty's flattened keys. */
	remote = STR(f, "Action", "NetworkConnectionAction", "RemoteIpDetails",
	             "IpAddressV4");
	if (remote == NULL)
		remote = STR(f, "Action", "AwsApiCallAction", "RemoteIpDetails",
		             "IpAddressV4");
	if (remote == NULL)
		remote = product_field(pf, "/remoteIpDetails/ipAddressV4");
	dir = STR(f, "Action", "NetworkConnectionAction",
	          "ConnectionDirection");
	if (dir == NULL)
		dir = product_field(pf, "/connectionDirection");
	local = product_field(pf, "/localIpDetails/ipAddressV4");
	ips = add_unique(ips, remote);
	ips = add_unique(ips, STR(f, "Network", "SourceIpV4"));
	ips = add_unique(ips, STR(f, "Network", "DestinationIpV4"));
	ips = add_unique(ips, local);
	hosts = add_unique(hosts,
	                   STR(f, "Action", "DnsRequestAction", "Domain"));
	hosts = add_unique(hosts,
	                   product_field(pf, "/dnsRequestAction/domain"));
	hosts = add_unique(hosts, STR(f, "Network", "SourceDomain"));
	hosts = add_unique(hosts, STR(f, "Network", "DestinationDomain"));

	/* Who is the source of the traffic: the remote end when inbound. */
	const char *src = STR(f, "Network", "SourceIpV4");
	const char *dst = STR(f, "Network", "DestinationIpV4");

	if (remote != NULL && dir != NULL) {
		int inbound = strcmp(dir, "INBOUND") == 0;

		if (src == NULL)
			src = inbound ? remote : local;
		if (dst == NULL)
			dst = inbound ? local : remote;
	}
	if (src != NULL && indicator_is_ip(src))
		ev = set(ev, "source",
		         jv_object_set(jv_object(), jv_string("ip"),
		                       jv_string(src)));
	if (dst != NULL && indicator_is_ip(dst))
		ev = set(ev, "destination",
		         jv_object_set(jv_object(), jv_string("ip"),
		                       jv_string(dst)));

	jv host_ip = jv_invalid();

	*instance = NULL;
	int nres = jv_get_kind(res) == JV_KIND_ARRAY
	                   ? jv_array_length(jv_copy(res))
	                   : 0;

	for (int i = 0; i < nres; i++) {
		jv r = jv_array_get(jv_copy(res), i);
		const char *type = STR(r, "Type"), *id = STR(r, "Id");

		if (type != NULL && strcmp(type, "AwsEc2Instance") == 0) {
			const char *iid = arn_tail(id, "instance");

			if (iid == NULL && id != NULL &&
			    strncmp(id, "i-", 2) == 0)
				iid = id;
			if (*instance == NULL && iid != NULL)
				*instance = iid; /* lives in f */
			/* The instance's own addresses are the host's,
			 * not indicators to look up. */
			jv a = GET(r, "Details", "AwsEc2Instance",
			           "IpV4Addresses");

			if (jv_get_kind(a) == JV_KIND_ARRAY &&
			    jv_array_length(jv_copy(a)) > 0 &&
			    !jv_is_valid(host_ip))
				host_ip = jv_copy(a);
			jv_free(a);
		} else if (type != NULL && strcmp(type, "AwsIamUser") == 0) {
			s = arn_tail(id, "user");
			users = add_unique(users, s);
			if (user == NULL)
				user = s;
		} else if (type != NULL &&
		           strcmp(type, "AwsIamAccessKey") == 0) {
			s = STR(r, "Details", "AwsIamAccessKey",
			        "PrincipalName");
			if (s == NULL)
				s = STR(r, "Details", "AwsIamAccessKey",
				        "UserName");
			users = add_unique(users, s);
			if (user == NULL)
				user = s;
		}
		jv_free(r);
	}
	(void)region;
	if (jv_is_valid(host_ip))
		ev = jv_object_set(
		        ev, jv_string("host"),
		        jv_object_set(jv_object(), jv_string("ip"), host_ip));
	if (user != NULL)
		ev = set(ev, "user",
		         jv_object_set(jv_object(), jv_string("name"),
		                       jv_string(user)));
	jv rel = jv_object();

	if (jv_array_length(jv_copy(ips)) > 0)
		rel = jv_object_set(rel, jv_string("ip"), ips);
	else
		jv_free(ips);
	if (jv_array_length(jv_copy(hosts)) > 0)
		rel = jv_object_set(rel, jv_string("hosts"), hosts);
	else
		jv_free(hosts);
	if (jv_array_length(jv_copy(users)) > 0)
		rel = jv_object_set(rel, jv_string("user"), users);
	else
		jv_free(users);
	if (jv_object_length(jv_copy(rel)) > 0)
		ev = jv_object_set(ev, jv_string("related"), rel);
	else
		jv_free(rel);
	jv_free(pf);
	jv_free(res);
	return ev;
}

/* Whether s[0..n) looks like a region name: "us-east-1", "us-gov-west-1",
 * "ap-southeast-2". */
static int
region_like(const char *s, size_t n)
{
	size_t dashes = 0, i = 0;

	if (n < 9 || n > 20 || s[n - 1] < '0' || s[n - 1] > '9' ||
	    s[n - 2] != '-')
		return 0;
	for (; i < n - 2; i++) {
		if (s[i] == '-')
			dashes++;
		else if (s[i] < 'a' || s[i] > 'z')
			return 0;
	}
	return dashes >= 1 && dashes <= 2 && s[0] != '-';
}

/* The region named in an ARN, copied into out ("" when none).  The field
 * is found by its shape: published examples carry stray colons. */
static void
arn_region(const char *arn, char *out, size_t outsz)
{
	out[0] = '\0';
	if (arn == NULL || strncmp(arn, "arn:", 4) != 0)
		return;
	for (const char *p = arn + 4; *p;) {
		size_t n = strcspn(p, ":/");

		if (region_like(p, n) && n < outsz) {
			snprintf(out, outsz, "%.*s", (int)n, p);
			return;
		}
		if (p[n] != ':')
			return;
		p += n + 1;
	}
}

void
asff_region(jv f, char *out, size_t outsz)
{
	const char *reg = STR(f, "Region");

	/* Findings often leave Region out; their product ARN names it. */
	if (reg != NULL && outsz > 0)
		snprintf(out, outsz, "%s", reg);
	else
		arn_region(STR(f, "ProductArn"), out, outsz);
}

jv
asff_event(jv f, const char *region)
{
	char found[32];
	jv ev = jv_object(), alert = jv_object(), cloud = jv_object();
	const char *label = STR(f, "Severity", "Label");
	const char *updated = STR(f, "UpdatedAt"), *instance;
	const char *reg = region;
	jv norm = GET(f, "Severity", "Normalized");
	double score = jv_get_kind(norm) == JV_KIND_NUMBER
	                       ? jv_number_value(norm)
	                       : label_score(label);

	jv_free(norm);
	/* The finding's own region wins over where it was read from. */
	asff_region(f, found, sizeof(found));
	if (found[0] != '\0')
		reg = found;
	ev = set_str(ev, "@timestamp", updated);
	alert = set_str(alert, "id", STR(f, "Id"));
	alert = jv_object_set(alert, jv_string("source"),
	                      jv_string("securityhub"));
	alert = set_str(alert, "title", STR(f, "Title"));
	alert = set_str(alert, "severity", severity_word(label));
	if (score >= 0)
		alert = jv_object_set(alert, jv_string("score"),
		                      jv_number(score));
	alert = jv_object_set(
	        alert, jv_string("status"),
	        jv_string(status_word(STR(f, "Workflow", "Status"))));
	alert = set_str(alert, "created", STR(f, "CreatedAt"));
	alert = set_str(alert, "url", STR(f, "SourceUrl"));
	ev = jv_object_set(ev, jv_string("alert"), alert);

	cloud = jv_object_set(cloud, jv_string("provider"), jv_string("aws"));
	if (STR(f, "AwsAccountId") != NULL)
		cloud = jv_object_set(
		        cloud, jv_string("account"),
		        jv_object_set(jv_object(), jv_string("id"),
		                      jv_string(STR(f, "AwsAccountId"))));
	cloud = set_str(cloud, "region", reg);
	ev = indicators(f, ev, reg, &instance);
	if (instance != NULL)
		cloud = jv_object_set(cloud, jv_string("instance"),
		                      jv_object_set(jv_object(),
		                                    jv_string("id"),
		                                    jv_string(instance)));
	ev = jv_object_set(ev, jv_string("cloud"), cloud);
	ev = jv_object_set(
	        ev, jv_string("aws"),
	        jv_object_set(jv_object(), jv_string("finding"), jv_copy(f)));
	return ev;
}

int
asff_is_ocsf(jv f)
{
	jv fi = GET(f, "finding_info");
	int r = jv_get_kind(fi) == JV_KIND_OBJECT;

	jv_free(fi);
	return r;
}

jv
asff_ocsf_event(jv f, const char *region)
{
	jv ev = jv_object(), alert = jv_object(), cloud = jv_object();
	const char *sev = STR(f, "severity");
	char low[16] = "";
	jv related = jv_object(), ips = jv_array();

	if (sev != NULL && strlen(sev) < sizeof(low)) {
		for (size_t i = 0; sev[i]; i++)
			low[i] = (char)(sev[i] >= 'A' && sev[i] <= 'Z'
			                        ? sev[i] + 32
			                        : sev[i]);
		low[strlen(sev)] = '\0';
	}
	alert = set_str(alert, "id", STR(f, "finding_info", "uid"));
	alert = jv_object_set(alert, jv_string("source"),
	                      jv_string("securityhub"));
	alert = set_str(alert, "title", STR(f, "finding_info", "title"));
	if (strcmp(low, "informational") == 0)
		memcpy(low, "low", 4);
	if (strcmp(low, "low") == 0 || strcmp(low, "medium") == 0 ||
	    strcmp(low, "high") == 0 || strcmp(low, "critical") == 0)
		alert = set_str(alert, "severity", low);
	const char *st = STR(f, "status");

	alert = jv_object_set(
	        alert, jv_string("status"),
	        jv_string(st == NULL || strcmp(st, "New") == 0 ? "open"
	                  : strcmp(st, "In Progress") == 0     ? "acknowledged"
	                                                       : "closed"));
	alert = set_str(alert, "created",
	                STR(f, "finding_info", "created_time_dt"));
	ev = jv_object_set(ev, jv_string("alert"), alert);
	cloud = jv_object_set(cloud, jv_string("provider"), jv_string("aws"));
	if (STR(f, "cloud", "account", "uid") != NULL)
		cloud = jv_object_set(
		        cloud, jv_string("account"),
		        jv_object_set(
		                jv_object(), jv_string("id"),
		                jv_string(STR(f, "cloud", "account", "uid"))));
	cloud = set_str(cloud, "region",
	                STR(f, "cloud", "region") ? STR(f, "cloud", "region")
	                                          : region);
	ev = jv_object_set(ev, jv_string("cloud"), cloud);
	ips = add_unique(ips, STR(f, "src_endpoint", "ip"));
	ips = add_unique(ips, STR(f, "dst_endpoint", "ip"));
	if (jv_array_length(jv_copy(ips)) > 0)
		related = jv_object_set(related, jv_string("ip"), ips);
	else
		jv_free(ips);
	if (jv_object_length(jv_copy(related)) > 0)
		ev = jv_object_set(ev, jv_string("related"), related);
	else
		jv_free(related);
	ev = jv_object_set(
	        ev, jv_string("aws"),
	        jv_object_set(jv_object(), jv_string("finding"), jv_copy(f)));
	return ev;
}

jv
asff_findings(jv doc)
{
	const char *type = STR(doc, "Type"), *dt = STR(doc, "detail-type");
	jv v;

	if (jv_get_kind(doc) != JV_KIND_OBJECT)
		return jv_invalid_with_msg(jv_string("not a JSON object"));
	/* SNS notification: the Message is the EventBridge event, as text. */
	if (type != NULL && strcmp(type, "Notification") == 0 &&
	    STR(doc, "Message") != NULL) {
		jv inner = jv_parse(STR(doc, "Message"));

		if (!jv_is_valid(inner)) {
			jv_free(inner);
			return jv_invalid_with_msg(jv_string(
			        "SNS notification whose Message is not JSON"));
		}
		v = asff_findings(inner);
		jv_free(inner);
		return v;
	}
	if (dt != NULL) {
		if (strcmp(STR(doc, "source") ? STR(doc, "source") : "",
		           "aws.securityhub") != 0)
			return jv_invalid_with_msg(
			        jv_string("EventBridge event not from "
			                  "aws.securityhub"));
		v = GET(doc, "detail", "findings");
		if (jv_get_kind(v) == JV_KIND_ARRAY)
			return v;
		jv_free(v);
		return jv_invalid_with_msg(jv_string_fmt(
		        "EventBridge event \"%s\" without detail.findings",
		        dt));
	}
	v = GET(doc, "Findings");
	if (jv_get_kind(v) == JV_KIND_ARRAY)
		return v;
	jv_free(v);
	if (STR(doc, "SchemaVersion") != NULL && STR(doc, "Id") != NULL)
		return JV_ARRAY(jv_copy(doc));
	if (asff_is_ocsf(doc))
		return JV_ARRAY(jv_copy(doc));
	return jv_invalid_with_msg(
	        jv_string("not a Security Hub finding, GetFindings page, "
	                  "EventBridge event or SNS notification"));
}
