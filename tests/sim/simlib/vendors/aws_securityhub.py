"""AWS Security Hub (CSPM API 2018-10-26, rest-json, signing name
"securityhub"): GetFindings and BatchUpdateFindings over a store of ASFF
findings. Signing, credentials and the auth errors: aws.py.

    POST  /findings               GetFindings
    PATCH /findings/batchupdate   BatchUpdateFindings
    (other methods on these paths: 405)

Regions. One URL serves every region: the region is the credential scope's,
and a request sees only the findings of that region (a finding's region is
its Region field, else the region in its ProductArn). With the setting
securityhub_aggregation {"home": "us-east-1", "linked": ["eu-west-1"]}, a
request signed for the home region sees the linked regions' findings too
(cross-Region aggregation), for both operations.

Order of checks: signature (aws.py), throttling, body, then the operation.

GetFindings. Body {"Filters", "SortCriteria", "NextToken", "MaxResults"};
any other member is 400 InvalidInputException (the simulator is strict so
that a misspelt member fails loudly).

    MaxResults  integer 1-100, default 100.
    Filters     at most 10 attributes, at most 20 conditions each. Any
                attribute not listed here is refused 400 (the real API
                has many more; add them here when a tool needs one).
      StringFilter {"Value", "Comparison"} on: Id, ProductArn,
        AwsAccountId, GeneratorId, ProductName, CompanyName, Title,
        SeverityLabel, WorkflowStatus, RecordState, VerificationState,
        ComplianceStatus, Region, Type (any of Types), ResourceId (any
        Resources[].Id), ResourceType (any Resources[].Type).
        Comparisons: EQUALS, PREFIX, CONTAINS, CONTAINS_WORD (joined by
        OR), NOT_EQUALS, PREFIX_NOT_EQUALS, NOT_CONTAINS (joined by AND),
        as AWS documents; case-sensitive. CONTAINS with NOT_CONTAINS, or
        EQUALS with NOT_EQUALS or PREFIX_NOT_EQUALS, on one attribute is
        400 (documented as an error; message UNVERIFIED). A finding
        without the attribute matches only the negative comparisons.
        ProductName and CompanyName of findings that lack them come from
        ProductFields aws/securityhub/ProductName and .../CompanyName, else
        from the ProductArn (product/aws/guardduty: GuardDuty, Amazon;
        product/aws/securityhub: Security Hub, AWS), as the service fills
        them in.
      DateFilter on UpdatedAt, CreatedAt, FirstObservedAt, LastObservedAt:
        {"Start", "End"} (inclusive, either may be omitted) or
        {"DateRange": {"Value": N, "Unit": "DAYS", "Comparison": "WITHIN"
        (default) | "OLDER_THAN"}}, relative to the simulator's AWS clock.
        Several conditions on one attribute are joined by OR (UNVERIFIED).
      NumberFilter {"Gte", "Lte", "Eq", "Gt", "Lt"} on SeverityNormalized,
        Confidence, Criticality; several joined by OR.
      Attributes are joined by AND.
    SortCriteria [{"Field", "SortOrder": "asc"|"desc"}]: fields UpdatedAt,
        CreatedAt, FirstObservedAt, LastObservedAt, SeverityLabel (by rank
        INFORMATIONAL < LOW < MEDIUM < HIGH < CRITICAL; UNVERIFIED),
        SeverityNormalized, Confidence, Criticality and every StringFilter
        attribute (its first value). Ties, and the order when several
        criteria are equal, go by Id then ProductArn ascending. Default
        [UpdatedAt desc] (UNVERIFIED: AWS documents no default order).
    NextToken   null, "" or absent on the first call. Tokens are opaque,
        stay valid (a retried page answers the same), and are cursors: a
        page starts after the last finding of the page that issued it, in
        the current data. So a scan sees each finding that exists for its
        whole duration exactly once, findings added meanwhile that sort
        after the cursor (late arrivals, in an ascending UpdatedAt scan)
        on a later page, and an update that moves a finding across the
        cursor can make a scan miss or repeat it, as with any cursor.
        A token the simulator never issued: 400 InvalidInputException
        "Invalid NextToken" (UNVERIFIED wording); a token used with other
        Filters or SortCriteria, or from another region: 400
        InvalidInputException "Input Query has changed" (the message AWS
        users report for this case).
    Answer {"Findings": [...], "NextToken": "..."}; NextToken only while
    more findings follow. Findings are compact JSON, as AWS sends them.

BatchUpdateFindings. Body: FindingIdentifiers [{"Id", "ProductArn"}] (1-100)
and at least one of Workflow {"Status": NEW|NOTIFIED|RESOLVED|SUPPRESSED},
Note {"Text" (1-512), "UpdatedBy" (1-512)} (both required), Severity
{"Label", "Normalized" 0-100, "Product"}, VerificationState (UNKNOWN|
TRUE_POSITIVE|FALSE_POSITIVE|BENIGN_POSITIVE), Confidence and Criticality
(0-100), Types (up to 50), UserDefinedFields (up to 50 string pairs),
RelatedFindings (up to 10 {"ProductArn", "Id"}); anything else 400
InvalidInputException. Each identifier, in order: seen earlier in the call:
UnprocessedFindings DuplicatedFindingIdentifier (the first occurrence is
processed; UNVERIFIED); not in the store or not in the caller's regions:
FindingNotFound "Finding Not Found"; else it is updated and listed in
ProcessedFindings. The update sets the given fields (Note gets UpdatedAt
= now; a Severity Label without Normalized sets Normalized to 0/1/40/70/90
as ASFF documents) and leaves the finding's UpdatedAt alone (API.md 3.2).
Updates show at once (AWS may take minutes).

Throttling (API.md 3.3): a token bucket per operation and region, full at
the start: GetFindings 3 per second, burst 6; BatchUpdateFindings 10 per
second, burst 30. Over it: 429, x-amzn-ErrorType TooManyRequestsException,
{"message": "Too Many Requests"}, the answer AWS users report for
GetFindings (the service model names LimitExceededException instead, so
both are in botocore's throttling list).
    securityhub_throttle        true (default), false (no limits, for
                                benchmarks), or {"GetFindings": {"rate": R,
                                "burst": B}, ...} to change limits.
    securityhub_throttle_error  "LimitExceededException": answer that
                                modeled error ({"Code", "Message": "Rate
                                exceeded"}) instead.

Other errors: a body that is not JSON: 400 SerializationException
(UNVERIFIED); InvalidInputException has {"Code", "Message"}, the members of
its shape, and x-amzn-ErrorType InvalidInputException. Answers carry
x-amzn-RequestId, x-amz-apigw-id and X-Amzn-Trace-Id.

The store. At start and after /_sim/reset: the findings of the corpus
(shared/corpus/vendor/aws-securityhub: the bare ASFF files and the findings
inside the EventBridge envelopes, GuardDuty's included; found through $SHARED
or ../shared next to the working copy; none if absent), all in us-east-1.
Loading and generation live in aws_findings.py.

    securityhub_seed  {"count": N, "regions": ["us-east-1", ...], "seed": 1,
                      "same_updated_at": K, "guardduty_share": 0.3,
                      "days": 7, "anchor": "2025-01-17T08:00:00Z",
                      "account": "123456789012", "corpus": true}
        Replaces the store with the corpus (unless "corpus": false) and N
        generated findings, spread round-robin over the regions. Everything
        but "count" is optional (defaults shown; anchor defaults to the
        AWS clock's now at generation, so pass one for byte-identical
        findings across runs). Applied on the next Security Hub request
        (50,000 findings take a few seconds), or at once by POST
        /__aws/securityhub/seed. Generated findings are realistic ASFF:
          GuardDuty (guardduty_share of them): types like
            TTPs/Command and Control/Backdoor:EC2-C&CActivity.B, EC2
            instance resources (instance ids, private IPs, tags) or IAM
            access key resources (IAM user principals), the remote IP in the
            ProductFields keys of API.md 3.5 (aws/guardduty/service/action/
            networkConnectionAction/remoteIpDetails/ipAddressV4 or
            .../awsApiCallAction/remoteIpDetails/ipAddressV4), from the
            documentation ranges (203.0.113.66 and 198.51.100.7 among them:
            VirusTotal's simulated bad IPs); every second one also has
            Action.NetworkConnectionAction / AwsApiCallAction.
          Security Hub controls (the rest): AWS Foundational Security Best
            Practices controls on EC2 instances, security groups, IAM
            users, S3 buckets, subnets and the account; failed ones with
            the control's severity, passed ones INFORMATIONAL and RESOLVED.
        Severities, workflow statuses (mostly NEW) and record states (mostly
        ACTIVE) vary; instances recur across findings. UpdatedAt is spread
        over the "days" before the anchor, CreatedAt before it; the first K
        findings of each region share UpdatedAt = anchor - 1 h, for cursor
        tests. The same seed gives the same findings.

Test-only routes (not AWS; no signature):

    POST /__aws/securityhub/findings
        A list of ASFF findings (or one, or {"Findings": [...]}) added to
        the store at once, as late arrivals; a finding with the Id and
        ProductArn of a stored one replaces it. Each needs SchemaVersion,
        Id, ProductArn, GeneratorId, AwsAccountId, CreatedAt, UpdatedAt,
        Title, Description and Resources, else the batch is refused 400.
        Answers {"ok": true, "added": n, "replaced": m}.
    GET  /__aws/securityhub/findings?id=ID[&product_arn=ARN]
        The stored finding (as GetFindings would send it), or 404; without
        id: {"count": n, "regions": {"us-east-1": n1, ...}}.
    POST /__aws/securityhub/seed
        Body: a securityhub_seed object; applies it now (and stores the
        setting); answers {"ok": true, "count": n, "regions": {...}}.
"""

import base64
import bisect
import collections
import itertools
import json
import re
import secrets
import threading
import time

from simlib import BadRequest, route, state
from simlib.vendors import aws
from simlib.vendors.aws_findings import (CORPUS, DAY, LABEL_NORMALIZED,
                                          WORKFLOW_STATUSES, Generator,
                                          check_seed)

SERVICE = "securityhub"
SEVERITY_RANK = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3,
                 "CRITICAL": 4}
VERIFICATION_STATES = ("UNKNOWN", "TRUE_POSITIVE", "FALSE_POSITIVE",
                       "BENIGN_POSITIVE")
PRODUCTS = {"securityhub": ("Security Hub", "AWS"),
            "guardduty": ("GuardDuty", "Amazon"),
            "inspector": ("Inspector", "Amazon"),
            "macie": ("Macie", "Amazon"),
            "access-analyzer": ("IAM Access Analyzer", "AWS"),
            "config": ("Config", "AWS")}
REQUIRED_FIELDS = ("SchemaVersion", "Id", "ProductArn", "GeneratorId",
                   "AwsAccountId", "CreatedAt", "UpdatedAt", "Title",
                   "Description", "Resources")
REGION_IN_ARN = re.compile(r"(?:^|:)([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+)"
                           r"(?=:|$)")
DEFAULT_SORT = [{"Field": "UpdatedAt", "SortOrder": "desc"}]
DEFAULT_LIMITS = {"GetFindings": (3.0, 6), "BatchUpdateFindings": (10.0, 30)}


class InvalidInput(Exception):
    """Answered 400 InvalidInputException with this message."""


# --- the store ---------------------------------------------------------------

class Finding:
    """One stored finding: its JSON, serialised once, and what filters and
    sorting read. Never changed in place: an update makes a new one."""

    __slots__ = ("key", "raw", "region", "id", "product_arn", "account",
                 "generator", "product_name", "company_name", "title",
                 "severity_label", "severity_normalized", "workflow_status",
                 "record_state", "verification_state", "compliance_status",
                 "types", "resource_ids", "resource_types", "updated",
                 "created", "first_observed", "last_observed", "confidence",
                 "criticality")


def encode(doc):
    return json.dumps(doc, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def text_or_none(value):
    return value if isinstance(value, str) else None


def number_or_none(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def finding_region(doc):
    region = doc.get("Region")
    if isinstance(region, str) and aws.REGION_RE.fullmatch(region):
        return region
    match = REGION_IN_ARN.search(str(doc.get("ProductArn", "")))
    if match:
        return match.group(1)
    for resource in doc.get("Resources") or []:
        if isinstance(resource, dict) and \
                aws.REGION_RE.fullmatch(str(resource.get("Region", ""))):
            return resource["Region"]
    return "us-east-1"


def product_names(doc):
    fields = doc.get("ProductFields") if isinstance(
        doc.get("ProductFields"), dict) else {}
    product = str(doc.get("ProductArn", "")).rsplit("/", 1)[-1]
    default = PRODUCTS.get(product, (None, None))
    name = (text_or_none(doc.get("ProductName"))
            or text_or_none(fields.get("aws/securityhub/ProductName"))
            or default[0])
    company = (text_or_none(doc.get("CompanyName"))
               or text_or_none(fields.get("aws/securityhub/CompanyName"))
               or default[1])
    return name, company


def index(doc):
    f = Finding()
    f.id = doc["Id"]
    f.product_arn = doc["ProductArn"]
    f.key = (f.id, f.product_arn)
    f.raw = encode(doc)
    f.region = finding_region(doc)
    f.account = text_or_none(doc.get("AwsAccountId"))
    f.generator = text_or_none(doc.get("GeneratorId"))
    f.product_name, f.company_name = product_names(doc)
    f.title = text_or_none(doc.get("Title"))
    severity = doc.get("Severity") if isinstance(doc.get("Severity"),
                                                 dict) else {}
    f.severity_label = text_or_none(severity.get("Label"))
    f.severity_normalized = number_or_none(severity.get("Normalized"))
    if f.severity_normalized is None and f.severity_label in LABEL_NORMALIZED:
        f.severity_normalized = float(LABEL_NORMALIZED[f.severity_label])
    workflow = doc.get("Workflow") if isinstance(doc.get("Workflow"),
                                                 dict) else {}
    f.workflow_status = text_or_none(workflow.get("Status"))
    f.record_state = text_or_none(doc.get("RecordState"))
    f.verification_state = text_or_none(doc.get("VerificationState"))
    compliance = doc.get("Compliance") if isinstance(doc.get("Compliance"),
                                                     dict) else {}
    f.compliance_status = text_or_none(compliance.get("Status"))
    f.types = tuple(t for t in doc.get("Types") or () if isinstance(t, str))
    resources = [r for r in doc.get("Resources") or ()
                 if isinstance(r, dict)]
    f.resource_ids = tuple(r["Id"] for r in resources
                           if isinstance(r.get("Id"), str))
    f.resource_types = tuple(r["Type"] for r in resources
                             if isinstance(r.get("Type"), str))
    f.updated = aws.parse_time(doc.get("UpdatedAt"))
    f.created = aws.parse_time(doc.get("CreatedAt"))
    f.first_observed = aws.parse_time(doc.get("FirstObservedAt"))
    f.last_observed = aws.parse_time(doc.get("LastObservedAt"))
    f.confidence = number_or_none(doc.get("Confidence"))
    f.criticality = number_or_none(doc.get("Criticality"))
    return f


class Query:
    """The findings matching one query, kept sorted and current: every
    change to the store is applied to each cached query."""

    def __init__(self, pred, keyfn, findings):
        self.pred = pred
        self.keyfn = keyfn
        pairs = [(keyfn(f), f) for f in findings if pred(f)]
        pairs.sort(key=lambda pair: pair[0])
        self.keys = [k for k, _ in pairs]
        self.items = [f for _, f in pairs]

    def discard(self, f):
        if self.pred(f):
            key = self.keyfn(f)
            i = bisect.bisect_left(self.keys, key)
            if i < len(self.items) and self.items[i] is f:
                del self.keys[i]
                del self.items[i]

    def add(self, f):
        if self.pred(f):
            key = self.keyfn(f)
            i = bisect.bisect_right(self.keys, key)
            self.keys.insert(i, key)
            self.items.insert(i, f)


class Store:
    QUERIES_MAX = 32
    TOKENS_MAX = 200000

    def __init__(self):
        self.lock = threading.RLock()
        self.findings = {}
        self.queries = collections.OrderedDict()
        self.tokens = collections.OrderedDict()
        self.applied_seed = None

    def load(self, docs):
        with self.lock:
            self.findings = {}
            for doc in docs:
                f = index(doc)
                self.findings[f.key] = f
            self.queries.clear()
            self.tokens.clear()

    def put(self, f):
        """Add f, or replace the stored finding with its key; returns
        whether it replaced one."""
        with self.lock:
            old = self.findings.get(f.key)
            for query in self.queries.values():
                if old is not None:
                    query.discard(old)
                query.add(f)
            self.findings[f.key] = f
            return old is not None

    def query(self, cache_key, pred, keyfn):
        with self.lock:
            found = self.queries.get(cache_key)
            if found is None:
                found = Query(pred, keyfn, self.findings.values())
                self.queries[cache_key] = found
                if len(self.queries) > self.QUERIES_MAX:
                    self.queries.popitem(last=False)
            else:
                self.queries.move_to_end(cache_key)
            return found

    def new_token(self, signature, last_key):
        token = base64.b64encode(secrets.token_bytes(96)).decode()
        with self.lock:
            self.tokens[token] = (signature, last_key)
            if len(self.tokens) > self.TOKENS_MAX:
                self.tokens.popitem(last=False)
        return token

    def token(self, token):
        with self.lock:
            return self.tokens.get(token)

    def counts(self):
        with self.lock:
            return dict(collections.Counter(
                f.region for f in self.findings.values()))


STORE = Store()


def apply_seed(config):
    """Rebuild the store for a securityhub_seed (None: the corpus only)."""
    docs = CORPUS
    if config is not None:
        try:
            check_seed(config)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if not config.get("corpus", True):
            docs = []
        anchor = (aws.parse_time(config["anchor"]) if "anchor" in config
                  else float(int(aws.now())))
        docs = itertools.chain(docs, Generator(config, anchor).generate(
            config["count"]))
    STORE.load(docs)


def ensure_seeded():
    """Apply the securityhub_seed setting if it changed since last time."""
    wanted = state.get("securityhub_seed")
    text = None if wanted is None else json.dumps(wanted, sort_keys=True)
    if text == STORE.applied_seed:
        return
    with STORE.lock:
        if text != STORE.applied_seed:
            apply_seed(wanted)
            STORE.applied_seed = text


# --- filters and sorting -----------------------------------------------------

STRING_ATTRS = {
    "Id": "id", "ProductArn": "product_arn", "AwsAccountId": "account",
    "GeneratorId": "generator", "ProductName": "product_name",
    "CompanyName": "company_name", "Title": "title",
    "SeverityLabel": "severity_label", "WorkflowStatus": "workflow_status",
    "RecordState": "record_state", "VerificationState": "verification_state",
    "ComplianceStatus": "compliance_status", "Region": "region",
    "Type": "types", "ResourceId": "resource_ids",
    "ResourceType": "resource_types",
}
DATE_ATTRS = {"UpdatedAt": "updated", "CreatedAt": "created",
              "FirstObservedAt": "first_observed",
              "LastObservedAt": "last_observed"}
NUMBER_ATTRS = {"SeverityNormalized": "severity_normalized",
                "Confidence": "confidence", "Criticality": "criticality"}
POSITIVE = {"EQUALS", "PREFIX", "CONTAINS", "CONTAINS_WORD"}
NEGATIVE = {"NOT_EQUALS", "PREFIX_NOT_EQUALS", "NOT_CONTAINS"}


def values_of(f, attr):
    value = getattr(f, attr)
    if value is None:
        return ()
    return value if isinstance(value, tuple) else (value,)


def string_test(comparison, wanted):
    if comparison in ("EQUALS", "NOT_EQUALS"):
        return lambda v: v == wanted
    if comparison in ("PREFIX", "PREFIX_NOT_EQUALS"):
        return lambda v: v.startswith(wanted)
    if comparison in ("CONTAINS", "NOT_CONTAINS"):
        return lambda v: wanted in v
    word = re.compile(r"(?<!\w)" + re.escape(wanted) + r"(?!\w)")
    return lambda v: word.search(v) is not None


def string_clause(name, attr, conditions):
    positive, negative, seen = [], [], set()
    for cond in conditions:
        if not isinstance(cond, dict) or set(cond) - {"Value", "Comparison"}:
            raise InvalidInput(f"Filters.{name}: a StringFilter has Value "
                               "and Comparison")
        value, comparison = cond.get("Value"), cond.get("Comparison")
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"Filters.{name}: Value must be a non-empty "
                               "string")
        if comparison not in POSITIVE | NEGATIVE:
            raise InvalidInput(f"Filters.{name}: invalid Comparison "
                               f"{comparison!r}")
        seen.add(comparison)
        test = string_test(comparison, value)
        (positive if comparison in POSITIVE else negative).append(test)
    if {"CONTAINS", "NOT_CONTAINS"} <= seen or ("EQUALS" in seen and seen & {
            "NOT_EQUALS", "PREFIX_NOT_EQUALS"}):
        raise InvalidInput(f"Filters.{name}: these comparisons cannot be "
                           "combined on one field")

    def match(f):
        values = values_of(f, attr)
        if positive and not any(t(v) for t in positive for v in values):
            return False
        return not any(t(v) for t in negative for v in values)
    return match


def date_clause(name, attr, conditions, clock):
    ranges = []
    for cond in conditions:
        if not isinstance(cond, dict) or not cond or \
                set(cond) - {"Start", "End", "DateRange"}:
            raise InvalidInput(f"Filters.{name}: a DateFilter has Start and "
                               "End, or DateRange")
        if "DateRange" in cond:
            if "Start" in cond or "End" in cond:
                raise InvalidInput(f"Filters.{name}: DateRange excludes "
                                   "Start and End")
            span = cond["DateRange"]
            if not isinstance(span, dict) or set(span) - {
                    "Value", "Unit", "Comparison"}:
                raise InvalidInput(f"Filters.{name}: bad DateRange")
            value = span.get("Value")
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 0 or span.get("Unit") != "DAYS":
                raise InvalidInput(f"Filters.{name}: DateRange needs an "
                                   "integer Value and Unit DAYS")
            comparison = span.get("Comparison", "WITHIN")
            cutoff = clock - value * DAY
            if comparison == "WITHIN":
                ranges.append((cutoff, float("inf")))
            elif comparison == "OLDER_THAN":
                ranges.append((float("-inf"), cutoff - 1e-6))
            else:
                raise InvalidInput(f"Filters.{name}: DateRange Comparison is "
                                   "WITHIN or OLDER_THAN")
        else:
            bounds = []
            for end in ("Start", "End"):
                if end in cond:
                    moment = aws.parse_time(cond[end])
                    if moment is None:
                        raise InvalidInput(f"Filters.{name}: {end} is not a "
                                           "timestamp")
                    bounds.append(moment)
                else:
                    bounds.append(float("-inf") if end == "Start"
                                  else float("inf"))
            ranges.append(tuple(bounds))

    def match(f):
        moment = getattr(f, attr)
        return moment is not None and any(lo <= moment <= hi
                                          for lo, hi in ranges)
    return match


def number_clause(name, attr, conditions):
    tests = []
    ops = {"Gte": lambda a, b: a >= b, "Lte": lambda a, b: a <= b,
           "Eq": lambda a, b: a == b, "Gt": lambda a, b: a > b,
           "Lt": lambda a, b: a < b}
    for cond in conditions:
        if not isinstance(cond, dict) or not cond or set(cond) - set(ops) \
                or any(isinstance(v, bool) or not isinstance(v, (int, float))
                       for v in cond.values()):
            raise InvalidInput(f"Filters.{name}: a NumberFilter has numbers "
                               "Gte, Lte, Eq, Gt, Lt")
        tests.append([(ops[k], float(v)) for k, v in cond.items()])

    def match(f):
        value = getattr(f, attr)
        return value is not None and any(all(op(value, bound)
                                             for op, bound in test)
                                         for test in tests)
    return match


def compile_filters(filters, regions):
    """(predicate, uses the clock) for a GetFindings Filters object."""
    if not isinstance(filters, dict):
        raise InvalidInput("Filters must be an object")
    attributes = {k: v for k, v in filters.items() if v}
    if len(attributes) > 10:
        raise InvalidInput("You can filter by up to 10 finding attributes")
    clock = aws.now()
    clauses, relative = [], False
    for name, conditions in sorted(attributes.items()):
        if not isinstance(conditions, list):
            raise InvalidInput(f"Filters.{name} must be a list")
        if len(conditions) > 20:
            raise InvalidInput(f"Filters.{name}: up to 20 values per "
                               "attribute")
        if name in STRING_ATTRS:
            clauses.append(string_clause(name, STRING_ATTRS[name], conditions))
        elif name in DATE_ATTRS:
            clauses.append(date_clause(name, DATE_ATTRS[name], conditions,
                                       clock))
            relative = relative or any(isinstance(c, dict) and "DateRange"
                                       in c for c in conditions)
        elif name in NUMBER_ATTRS:
            clauses.append(number_clause(name, NUMBER_ATTRS[name],
                                         conditions))
        else:
            raise InvalidInput(f"Filters.{name} is not supported by the "
                               "simulator")
    region_set = frozenset(regions)

    def predicate(f):
        return f.region in region_set and all(c(f) for c in clauses)
    return predicate, relative


def descending_text(text):
    # Code points negated, then a terminator above them all: sorting these
    # ascending sorts the texts descending, prefixes after longer texts.
    return tuple(-ord(c) for c in text) + (1,)


def sort_component(field, descending):
    if field in DATE_ATTRS or field in NUMBER_ATTRS:
        attr = DATE_ATTRS.get(field) or NUMBER_ATTRS[field]
        if descending:
            return lambda f: (-getattr(f, attr)
                              if getattr(f, attr) is not None
                              else float("inf"))
        return lambda f: (getattr(f, attr) if getattr(f, attr) is not None
                          else float("-inf"))
    if field == "SeverityLabel":
        sign = -1 if descending else 1
        return lambda f: sign * SEVERITY_RANK.get(f.severity_label, -1)
    attr = STRING_ATTRS[field]

    def first(f):
        values = values_of(f, attr)
        return values[0] if values else ""
    if descending:
        return lambda f: descending_text(first(f))
    return first


def compile_sort(criteria):
    if not isinstance(criteria, list) or len(criteria) > 10:
        raise InvalidInput("SortCriteria must be a list of up to 10 criteria")
    parts = []
    for crit in criteria:
        if not isinstance(crit, dict) or set(crit) - {"Field", "SortOrder"}:
            raise InvalidInput("a SortCriterion has Field and SortOrder")
        field, order = crit.get("Field"), crit.get("SortOrder", "asc")
        if field not in DATE_ATTRS and field not in NUMBER_ATTRS and \
                field not in STRING_ATTRS and field != "SeverityLabel":
            raise InvalidInput(f"SortCriteria: cannot sort by {field!r}")
        if order not in ("asc", "desc"):
            raise InvalidInput("SortCriteria: SortOrder is asc or desc")
        parts.append(sort_component(field, order == "desc"))

    def keyfn(f):
        return tuple(p(f) for p in parts) + (f.id, f.product_arn)
    return keyfn


# --- throttling --------------------------------------------------------------

class Bucket:
    def __init__(self, rate, burst):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self):
        clock = time.monotonic()
        self.tokens = min(self.burst,
                          self.tokens + (clock - self.stamp) * self.rate)
        self.stamp = clock
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


_buckets_lock = threading.Lock()
_buckets = {}


def limits(operation):
    setting = state.get("securityhub_throttle", True)
    if setting is False:
        return None
    rate, burst = DEFAULT_LIMITS[operation]
    if isinstance(setting, dict) and isinstance(setting.get(operation),
                                                dict):
        rate = float(setting[operation].get("rate", rate))
        burst = int(setting[operation].get("burst", burst))
    return rate, burst


def throttled(operation, region):
    found = limits(operation)
    if found is None:
        return False
    key = (operation, region) + found
    with _buckets_lock:
        bucket = _buckets.get(key)
        if bucket is None:
            bucket = _buckets[key] = Bucket(*found)
        return not bucket.take()


def throttle_answer():
    code = state.get("securityhub_throttle_error") or \
        "TooManyRequestsException"
    if code == "LimitExceededException":
        return aws.rest_json_error(429, code, "Rate exceeded")
    return aws.rest_json_error(429, code, "Too Many Requests", modeled=False)


# --- the operations ----------------------------------------------------------

def answer_headers():
    headers = aws.rest_json_headers()
    headers["x-amz-apigw-id"] = base64.b64encode(
        secrets.token_bytes(12)).decode()[:15] + "="
    headers["X-Amzn-Trace-Id"] = (f"Root=1-{int(time.time()):08x}-"
                                  f"{secrets.token_hex(12)}")
    return headers


def invalid(message):
    return aws.rest_json_error(400, "InvalidInputException", message)


def caller_regions(caller):
    aggregation = state.get("securityhub_aggregation")
    if isinstance(aggregation, dict) and \
            aggregation.get("home") == caller.region:
        return [caller.region] + list(aggregation.get("linked") or [])
    return [caller.region]


def read_body(req):
    if not req.body.strip():
        return {}
    try:
        body = json.loads(req.body)
    except ValueError:
        return None
    return body


def operation(name, handler):
    """The route body of one operation: signature, throttle, body."""
    def run(req, caller):
        if throttled(name, caller.region):
            return throttle_answer()
        body = read_body(req)
        if body is None:
            return aws.rest_json_error(400, "SerializationException",
                                       "Start of structure or map found "
                                       "where not expected.", coral=True,
                                       modeled=False)
        if not isinstance(body, dict):
            return invalid("The request body must be a JSON object")
        try:
            ensure_seeded()
        except InvalidInput as exc:
            return aws.rest_json_error(500, "InternalException",
                                       f"bad securityhub_seed: {exc}")
        try:
            return handler(body, caller)
        except InvalidInput as exc:
            return invalid(str(exc))
    return lambda req: aws.rest_json_call(req, SERVICE, name, run)


def get_findings(body, caller):
    unknown = sorted(set(body) - {"Filters", "SortCriteria", "NextToken",
                                  "MaxResults"})
    if unknown:
        raise InvalidInput(f"Unknown parameters: {', '.join(unknown)}")
    limit = body.get("MaxResults", 100)
    if limit is None:
        limit = 100
    if isinstance(limit, bool) or not isinstance(limit, int) \
            or not 1 <= limit <= 100:
        raise InvalidInput("MaxResults must be a number between 1 and 100")
    filters = body.get("Filters") or {}
    sort = body.get("SortCriteria") or DEFAULT_SORT
    regions = caller_regions(caller)
    predicate, relative = compile_filters(filters, regions)
    keyfn = compile_sort(sort)
    signature = (tuple(sorted(regions)),
                 json.dumps(filters, sort_keys=True),
                 json.dumps(sort, sort_keys=True))
    after = None
    token = body.get("NextToken")
    if token not in (None, ""):
        issued = STORE.token(token) if isinstance(token, str) else None
        if issued is None:
            raise InvalidInput("Invalid NextToken")
        if issued[0] != signature:
            raise InvalidInput("Input Query has changed")
        after = issued[1]
    # Queries with DateRange move with the clock: recompute them each minute.
    cache_key = signature + ((int(aws.now() // 60),) if relative else ())
    with STORE.lock:
        query = STORE.query(cache_key, predicate, keyfn)
        start = 0 if after is None else bisect.bisect_right(query.keys, after)
        page = query.items[start:start + limit]
        more = start + len(page) < len(query.items)
        last = query.keys[start + len(page) - 1] if more else None
    out = [b'{"Findings":[', b",".join(f.raw for f in page), b"]"]
    if more:
        out.append(b',"NextToken":' + json.dumps(
            STORE.new_token(signature, last)).encode())
    out.append(b"}")
    return 200, answer_headers(), b"".join(out)


def check_text(value, name, low, high):
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise InvalidInput(f"{name} must be a string of {low}-{high} "
                           "characters")


def check_percent(body, name):
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int) \
            or not 0 <= value <= 100:
        raise InvalidInput(f"{name} must be an integer 0-100")


BATCH_UPDATES = {"Note", "Severity", "VerificationState", "Confidence",
                 "Criticality", "Types", "UserDefinedFields", "Workflow",
                 "RelatedFindings"}


def check_batch_update(body):
    unknown = sorted(set(body) - BATCH_UPDATES - {"FindingIdentifiers"})
    if unknown:
        raise InvalidInput(f"Unknown parameters: {', '.join(unknown)}")
    ids = body.get("FindingIdentifiers")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise InvalidInput("FindingIdentifiers must list 1-100 findings")
    for ident in ids:
        if not isinstance(ident, dict) or set(ident) != {"Id", "ProductArn"} \
                or not all(isinstance(v, str) and v for v in ident.values()):
            raise InvalidInput("Each FindingIdentifier needs Id and "
                               "ProductArn")
    if not BATCH_UPDATES & set(body):
        raise InvalidInput("At least one field to update is required")
    if "Workflow" in body:
        workflow = body["Workflow"]
        if not isinstance(workflow, dict) or set(workflow) != {"Status"} \
                or workflow["Status"] not in WORKFLOW_STATUSES:
            raise InvalidInput("Workflow.Status must be one of "
                               + ", ".join(WORKFLOW_STATUSES))
    if "Note" in body:
        note = body["Note"]
        if not isinstance(note, dict) or set(note) != {"Text", "UpdatedBy"}:
            raise InvalidInput("Note needs both Text and UpdatedBy")
        check_text(note["Text"], "Note.Text", 1, 512)
        check_text(note["UpdatedBy"], "Note.UpdatedBy", 1, 512)
    if "Severity" in body:
        severity = body["Severity"]
        if not isinstance(severity, dict) or not severity or \
                set(severity) - {"Label", "Normalized", "Product"}:
            raise InvalidInput("Severity has Label, Normalized or Product")
        if "Label" in severity and severity["Label"] not in SEVERITY_RANK:
            raise InvalidInput("Severity.Label must be one of "
                               + ", ".join(SEVERITY_RANK))
        if "Normalized" in severity:
            check_percent(severity, "Normalized")
        if "Product" in severity and (isinstance(severity["Product"], bool)
                                      or not isinstance(severity["Product"],
                                                        (int, float))):
            raise InvalidInput("Severity.Product must be a number")
    if "VerificationState" in body and \
            body["VerificationState"] not in VERIFICATION_STATES:
        raise InvalidInput("VerificationState must be one of "
                           + ", ".join(VERIFICATION_STATES))
    for name in ("Confidence", "Criticality"):
        if name in body:
            check_percent(body, name)
    if "Types" in body and (not isinstance(body["Types"], list)
                            or not 1 <= len(body["Types"]) <= 50
                            or not all(isinstance(t, str) and t
                                       for t in body["Types"])):
        raise InvalidInput("Types must list 1-50 strings")
    if "UserDefinedFields" in body:
        fields = body["UserDefinedFields"]
        if not isinstance(fields, dict) or len(fields) > 50 or not all(
                isinstance(v, str) for v in fields.values()):
            raise InvalidInput("UserDefinedFields maps up to 50 names to "
                               "strings")
    if "RelatedFindings" in body:
        related = body["RelatedFindings"]
        if not isinstance(related, list) or len(related) > 10 or not all(
                isinstance(r, dict) and set(r) == {"ProductArn", "Id"}
                for r in related):
            raise InvalidInput("RelatedFindings lists up to 10 {ProductArn, "
                               "Id}")
    return ids


def updated_finding(f, body):
    doc = json.loads(f.raw)
    if "Workflow" in body:
        workflow = doc.get("Workflow")
        if not isinstance(workflow, dict):
            workflow = doc["Workflow"] = {}
        workflow["Status"] = body["Workflow"]["Status"]
    if "Note" in body:
        doc["Note"] = {"Text": body["Note"]["Text"],
                       "UpdatedBy": body["Note"]["UpdatedBy"],
                       "UpdatedAt": aws.iso(aws.now(), millis=True)}
    if "Severity" in body:
        severity = doc.get("Severity")
        if not isinstance(severity, dict):
            severity = doc["Severity"] = {}
        given = body["Severity"]
        severity.update(given)
        if "Label" in given and "Normalized" not in given:
            severity["Normalized"] = LABEL_NORMALIZED[given["Label"]]
    for name in ("VerificationState", "Confidence", "Criticality", "Types",
                 "UserDefinedFields", "RelatedFindings"):
        if name in body:
            doc[name] = body[name]
    return index(doc)


def batch_update_findings(body, caller):
    identifiers = check_batch_update(body)
    regions = set(caller_regions(caller))
    processed, unprocessed, seen = [], [], set()
    with STORE.lock:
        for ident in identifiers:
            key = (ident["Id"], ident["ProductArn"])
            found = STORE.findings.get(key)
            if key in seen:
                unprocessed.append({
                    "FindingIdentifier": ident,
                    "ErrorCode": "DuplicatedFindingIdentifier",
                    "ErrorMessage": "Finding Identifier is duplicated"})
            elif found is None or found.region not in regions:
                unprocessed.append({"FindingIdentifier": ident,
                                    "ErrorCode": "FindingNotFound",
                                    "ErrorMessage": "Finding Not Found"})
            else:
                STORE.put(updated_finding(found, body))
                processed.append(ident)
            seen.add(key)
    return 200, answer_headers(), {"ProcessedFindings": processed,
                                   "UnprocessedFindings": unprocessed}


route("POST", r"/findings")(operation("GetFindings", get_findings))
route("PATCH", r"/findings/batchupdate")(
    operation("BatchUpdateFindings", batch_update_findings))


# --- test-only routes --------------------------------------------------------

@route("GET,POST", r"/__aws/securityhub/findings")
def test_findings(req):
    ensure_seeded()
    if req.method == "GET":
        wanted = req.query.get("id")
        if wanted is None:
            return 200, {}, {"count": sum(STORE.counts().values()),
                             "regions": STORE.counts()}
        arn = req.query.get("product_arn")
        with STORE.lock:
            found = next((f for f in STORE.findings.values()
                          if f.id == wanted
                          and (arn is None or f.product_arn == arn)), None)
        if found is None:
            return 404, {}, {"error": "no such finding", "id": wanted}
        return 200, {"Content-Type": "application/json"}, found.raw
    body = req.json()
    if isinstance(body, dict) and isinstance(body.get("Findings"), list):
        body = body["Findings"]
    docs = body if isinstance(body, list) else [body]
    for n, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise BadRequest(f"finding {n} is not an object")
        missing = [k for k in REQUIRED_FIELDS if k not in doc]
        if missing:
            raise BadRequest(f"finding {n} lacks {', '.join(missing)}")
        if aws.parse_time(doc["UpdatedAt"]) is None or \
                aws.parse_time(doc["CreatedAt"]) is None:
            raise BadRequest(f"finding {n}: CreatedAt and UpdatedAt must be "
                             "ISO 8601 times")
        if not isinstance(doc["Id"], str) or \
                not isinstance(doc["ProductArn"], str):
            raise BadRequest(f"finding {n}: Id and ProductArn are strings")
    replaced = sum(STORE.put(index(doc)) for doc in docs)
    return 200, {}, {"ok": True, "added": len(docs) - replaced,
                     "replaced": replaced}


@route("POST", r"/__aws/securityhub/seed")
def test_seed(req):
    config = req.json()
    try:
        with STORE.lock:
            apply_seed(config)
            STORE.applied_seed = json.dumps(config, sort_keys=True)
            state["securityhub_seed"] = config
    except InvalidInput as exc:
        raise BadRequest(str(exc)) from None
    counts = STORE.counts()
    return 200, {}, {"ok": True, "count": sum(counts.values()),
                     "regions": counts}


def reset():
    with _buckets_lock:
        _buckets.clear()
    with STORE.lock:
        apply_seed(None)
        STORE.applied_seed = None


reset()
