"""Findings for the simulated Security Hub: the corpus, and generated ASFF
findings for the setting securityhub_seed (see aws_securityhub.py for what
they look like and for the setting's fields).

Generation is deterministic: one random.Random(seed) draws everything, in
a fixed order, and times count back from the anchor.
"""

import collections
import glob
import json
import os
import random
import re
import uuid

from simlib.vendors import aws

DAY = 86400
LABEL_NORMALIZED = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 40, "HIGH": 70,
                    "CRITICAL": 90}
WORKFLOW_STATUSES = ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED")
HERE = os.path.dirname(os.path.abspath(__file__))


def corpus_dir():
    """The corpus folder: it lives in the team's shared/ directory, outside
    the working copy, so $SHARED (as the tests export it) or ../shared."""
    candidates = []
    if os.environ.get("SHARED"):
        candidates.append(os.path.join(os.environ["SHARED"], "corpus",
                                       "vendor", "aws-securityhub"))
    candidates.append(os.path.join(HERE, *[".."] * 5, "shared", "corpus",
                                   "vendor", "aws-securityhub"))
    return next((c for c in candidates if os.path.isdir(c)), None)


def load_corpus():
    folder = corpus_dir()
    docs = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))
                       if folder else []):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        detail = doc.get("detail") if isinstance(doc, dict) else None
        if isinstance(detail, dict) and isinstance(detail.get("findings"),
                                                   list):
            docs.extend(detail["findings"])
        elif isinstance(doc, dict) and "SchemaVersion" in doc:
            docs.append(doc)
    return docs


CORPUS = load_corpus()

# Owners of the documentation AS numbers (RFC 5398), for remote IPs.
ORGS = [("Example Networks Inc.", 64496, "United States", "Ashburn"),
        ("Sample Hosting GmbH", 64497, "Germany", "Frankfurt am Main"),
        ("Demo Telecom K.K.", 64498, "Japan", "Tokyo"),
        ("Placeholder Internet Ltda", 64499, "Brazil", "Sao Paulo"),
        ("Fixture Online SARL", 64501, "France", "Paris"),
        ("Mockup Datacentre Ltd", 64502, "United Kingdom", "London")]
# Remote IPs from the documentation ranges (RFC 5737); the first two are
# the simulated VirusTotal's malicious and suspicious built-ins.
KNOWN_BAD_IPS = ["203.0.113.66", "198.51.100.7"]
IP_PREFIXES = ["203.0.113.", "198.51.100.", "192.0.2."]

# (GuardDuty type, ASFF type, resource kind, action, direction, severity,
#  service port, title)
GUARDDUTY_TYPES = [
    ("Backdoor:EC2/C&CActivity.B",
     "TTPs/Command and Control/Backdoor:EC2-C&CActivity.B",
     "ec2", "NETWORK_CONNECTION", "OUTBOUND", 8, 443,
     "EC2 instance {iid} is querying an IP address associated with a known "
     "command and control server."),
    ("UnauthorizedAccess:EC2/SSHBruteForce",
     "TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce",
     "ec2", "NETWORK_CONNECTION", "INBOUND", 2, 22,
     "{ip} is performing SSH brute force attacks against {iid}."),
    ("UnauthorizedAccess:EC2/RDPBruteForce",
     "TTPs/Initial Access/UnauthorizedAccess:EC2-RDPBruteForce",
     "ec2", "NETWORK_CONNECTION", "INBOUND", 5, 3389,
     "{ip} is performing RDP brute force attacks against {iid}."),
    ("CryptoCurrency:EC2/BitcoinTool.B",
     "Effects/Resource Consumption/CryptoCurrency:EC2-BitcoinTool.B",
     "ec2", "NETWORK_CONNECTION", "OUTBOUND", 8, 8333,
     "EC2 instance {iid} is communicating with Bitcoin-related IP address "
     "{ip}."),
    ("Trojan:EC2/DropPoint",
     "TTPs/Exfiltration/Trojan:EC2-DropPoint",
     "ec2", "NETWORK_CONNECTION", "OUTBOUND", 5, 443,
     "EC2 instance {iid} is communicating with a remote host {ip} that is "
     "known to hold credentials and other stolen data captured by "
     "malware."),
    ("UnauthorizedAccess:IAMUser/MaliciousIPCaller",
     "TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller",
     "iam", "AWS_API_CALL", None, 5, None,
     "API {api} was invoked from a known malicious IP address {ip}."),
    ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
     "TTPs/Exfiltration/UnauthorizedAccess:IAMUser-"
     "InstanceCredentialExfiltration.OutsideAWS",
     "iam", "AWS_API_CALL", None, 8, None,
     "Credentials for instance role {user} used from external IP address "
     "{ip}."),
]
APIS = [("GetCallerIdentity", "sts.amazonaws.com"),
        ("ListBuckets", "s3.amazonaws.com"),
        ("DescribeInstances", "ec2.amazonaws.com"),
        ("ListUsers", "iam.amazonaws.com"),
        ("GetSecretValue", "secretsmanager.amazonaws.com")]

# (control, title, resource kind, severity when failed)
CONTROLS = [
    ("EC2.8", "EC2 instances should use Instance Metadata Service Version 2 "
     "(IMDSv2)", "ec2", "HIGH"),
    ("EC2.9", "Amazon EC2 instances should not have a public IPv4 address",
     "ec2", "HIGH"),
    ("SSM.1", "Amazon EC2 instances should be managed by AWS Systems "
     "Manager", "ec2", "MEDIUM"),
    ("EC2.17", "Amazon EC2 instances should not use multiple ENIs", "ec2",
     "LOW"),
    ("EC2.19", "Security groups should not allow unrestricted access to "
     "ports with high risk", "sg", "CRITICAL"),
    ("EC2.2", "VPC default security groups should not allow inbound or "
     "outbound traffic", "sg", "HIGH"),
    ("IAM.3", "IAM users' access keys should be rotated every 90 days or "
     "less", "user", "MEDIUM"),
    ("IAM.5", "MFA should be enabled for all IAM users that have a console "
     "password", "user", "MEDIUM"),
    ("IAM.6", "Hardware MFA should be enabled for the root user", "account",
     "CRITICAL"),
    ("CloudTrail.1", "CloudTrail should be enabled and configured with at "
     "least one multi-Region trail that includes read and write management "
     "events", "account", "HIGH"),
    ("CloudTrail.4", "CloudTrail log file validation should be enabled",
     "account", "LOW"),
    ("S3.8", "S3 general purpose buckets should block public access",
     "bucket", "HIGH"),
    ("S3.5", "S3 general purpose buckets should require requests to use "
     "SSL", "bucket", "MEDIUM"),
    ("EC2.15", "Amazon EC2 subnets should not automatically assign public "
     "IP addresses", "subnet", "MEDIUM"),
]
INSTANCE_NAMES = ["web", "api", "worker", "bastion", "db-proxy", "batch",
                  "kube-node", "build-agent"]
INSTANCE_TYPES = ["t3.micro", "t3.large", "m5.xlarge", "c5.2xlarge",
                  "r6i.large", "m6g.medium"]
USER_NAMES = ["alice", "bob", "ci-deployer", "svc-backup", "j.doe",
              "terraform", "ops-admin", "data-pipeline"]
BUCKET_WORDS = ["logs", "backups", "artifacts", "reports", "static-assets",
                "exports"]
SEED_KEYS = {"count", "regions", "seed", "same_updated_at", "guardduty_share",
             "days", "anchor", "account", "corpus"}
STANDARD = "aws-foundational-security-best-practices/v/1.0.0"


def hex_id(rng, prefix):
    return f"{prefix}-{rng.getrandbits(68):017x}"


class Generator:
    """Deterministic ASFF findings (see the module docstring)."""

    def __init__(self, config, anchor):
        self.rng = random.Random(config.get("seed", 1))
        self.account = config.get("account", aws.ACCOUNT_ID)
        self.anchor = anchor
        self.days = float(config.get("days", 7))
        self.share = float(config.get("guardduty_share", 0.3))
        self.same = int(config.get("same_updated_at", 0))
        self.regions = config.get("regions") or ["us-east-1"]
        per_region = max(1, int(config["count"]) // len(self.regions))
        self.pools = {}
        for region in self.regions:
            self.pools[region] = self.make_pool(region, per_region)
        self.users = [self.make_user(name) for name in USER_NAMES]

    def make_pool(self, region, per_region):
        rng = self.rng
        instances = []
        for n in range(max(8, per_region // 25)):
            iid = hex_id(rng, "i")
            private_ip = (f"10.{rng.randrange(256)}.{rng.randrange(256)}."
                          f"{rng.randrange(1, 255)}")
            details = {
                "Type": rng.choice(INSTANCE_TYPES),
                "ImageId": hex_id(rng, "ami"),
                "IpV4Addresses": [private_ip],
                "KeyName": "ops-key",
                "IamInstanceProfileArn":
                    f"arn:aws:iam::{self.account}:instance-profile/"
                    + rng.choice(["web-role", "worker-role", "ssm-managed"]),
                "VpcId": hex_id(rng, "vpc"),
                "SubnetId": hex_id(rng, "subnet"),
                "LaunchedAt": aws.iso(self.anchor - rng.randrange(30, 400)
                                      * DAY),
                "NetworkInterfaces": [{"NetworkInterfaceId":
                                       hex_id(rng, "eni")}],
            }
            if rng.random() < 0.3:
                # Public addresses from the benchmarking range (RFC 2544).
                details["IpV4Addresses"].append(
                    f"198.18.{rng.randrange(256)}.{rng.randrange(1, 255)}")
            name = f"{rng.choice(INSTANCE_NAMES)}-{n:02d}"
            instances.append({
                "iid": iid, "private_ip": private_ip,
                "resource": {
                    "Type": "AwsEc2Instance",
                    "Id": f"arn:aws:ec2:{region}:{self.account}:instance/"
                          f"{iid}",
                    "Partition": "aws", "Region": region,
                    "Tags": {"Name": name},
                    "Details": {"AwsEc2Instance": details}}})
        groups = []
        for n in range(4):
            gid = hex_id(rng, "sg")
            groups.append({
                "Type": "AwsEc2SecurityGroup",
                "Id": f"arn:aws:ec2:{region}:{self.account}:security-group/"
                      f"{gid}",
                "Partition": "aws", "Region": region,
                "Details": {"AwsEc2SecurityGroup": {
                    "GroupName": ["default", "web-sg", "ssh-open",
                                  "legacy-admin"][n],
                    "GroupId": gid, "OwnerId": self.account,
                    "VpcId": hex_id(rng, "vpc")}}})
        subnets = []
        for _ in range(3):
            sid = hex_id(rng, "subnet")
            subnets.append({
                "Type": "AwsEc2Subnet",
                "Id": f"arn:aws:ec2:{region}:{self.account}:subnet/{sid}",
                "Partition": "aws", "Region": region,
                "Details": {"AwsEc2Subnet": {
                    "SubnetId": sid, "MapPublicIpOnLaunch": True,
                    "AvailabilityZone": region + "a"}}})
        buckets = []
        for word in BUCKET_WORDS:
            name = f"soar-{word}-{self.account}-{region}"
            buckets.append({
                "Type": "AwsS3Bucket", "Id": f"arn:aws:s3:::{name}",
                "Partition": "aws", "Region": region,
                "Details": {"AwsS3Bucket": {"OwnerId": hex_id(rng, "owner"),
                                            "OwnerName": "soar-ops"}}})
        account = {"Type": "AwsAccount",
                   "Id": f"AWS::::Account:{self.account}",
                   "Partition": "aws", "Region": region}
        return {"ec2": instances, "sg": groups, "subnet": subnets,
                "bucket": buckets, "account": [account]}

    def make_user(self, name):
        rng = self.rng
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        user_id = "AIDA" + "".join(rng.choice(alphabet) for _ in range(17))
        key = "AKIA" + "".join(rng.choice(alphabet) for _ in range(16))
        return {"name": name, "user_id": user_id, "key": key,
                "created": aws.iso(self.anchor - rng.randrange(100, 900)
                                   * DAY)}

    def times(self, region_index):
        rng = self.rng
        if region_index < self.same:
            updated = self.anchor - 3600.0
        else:
            updated = self.anchor - rng.random() * self.days * DAY
        updated = round(updated, 3)
        created = round(updated - rng.random() * 20 * DAY, 3)
        return created, updated

    def workflow(self, weights):
        roll = self.rng.random()
        for status, weight in zip(WORKFLOW_STATUSES, weights):
            if roll < weight:
                return status
            roll -= weight
        return "NEW"

    def finding(self, region, region_index):
        created, updated = self.times(region_index)
        if self.rng.random() < self.share:
            return self.guardduty(region, created, updated)
        return self.control(region, created, updated)

    def remote(self):
        rng = self.rng
        if rng.random() < 0.15:
            ip = rng.choice(KNOWN_BAD_IPS)
        else:
            ip = rng.choice(IP_PREFIXES) + str(rng.randrange(1, 255))
        return ip, rng.choice(ORGS)

    def guardduty(self, region, created, updated):
        rng = self.rng
        account = self.account
        gd_type, asff_type, kind, action, direction, sev, port, title = \
            rng.choice(GUARDDUTY_TYPES)
        detector = f"{rng.getrandbits(128):032x}"[:32]
        detector = "d4" + detector[2:]
        finding_id = f"{rng.getrandbits(128):032x}"
        fid = (f"arn:aws:guardduty:{region}:{account}:detector/{detector}/"
               f"finding/{finding_id}")
        ip, (org, asn, country, city) = self.remote()
        label = "LOW" if sev < 4 else "MEDIUM" if sev < 7 else "HIGH"
        first = created - rng.randrange(0, 3600)
        prefix = "aws/guardduty/service/"
        fields = {
            prefix + "action/actionType": action,
            prefix + "archived": "false",
            prefix + "count": str(rng.randrange(1, 500)),
            prefix + "detectorId": detector,
            prefix + "eventFirstSeen": aws.iso(first),
            prefix + "eventLastSeen": aws.iso(updated),
            prefix + "serviceName": "guardduty",
        }
        remote_details = {"IpAddressV4": ip,
                          "Organization": {"Asn": asn, "AsnOrg": org,
                                           "Isp": org, "Org": org},
                          "Country": {"CountryName": country},
                          "City": {"CityName": city}}
        if kind == "ec2":
            instance = rng.choice(self.pools[region]["ec2"])
            resource = instance["resource"]
            base = prefix + "action/networkConnectionAction/"
            ephemeral = rng.randrange(32768, 61000)
            remote_port, local_port = ((port, ephemeral)
                                       if direction == "OUTBOUND"
                                       else (ephemeral, port))
            fields.update({
                base + "connectionDirection": direction,
                base + "protocol": "TCP",
                base + "blocked": "false",
                base + "remoteIpDetails/ipAddressV4": ip,
                base + "remoteIpDetails/organization/asn": str(asn),
                base + "remoteIpDetails/organization/asnOrg": org,
                base + "remoteIpDetails/organization/isp": org,
                base + "remoteIpDetails/organization/org": org,
                base + "remoteIpDetails/country/countryName": country,
                base + "remoteIpDetails/city/cityName": city,
                base + "remotePortDetails/port": str(remote_port),
                base + "localPortDetails/port": str(local_port),
                base + "localIpDetails/ipAddressV4": instance["private_ip"],
                prefix + "resourceRole": ("ACTOR" if direction == "OUTBOUND"
                                          else "TARGET"),
            })
            text = title.format(iid=instance["iid"], ip=ip)
            action_doc = {"ActionType": action, "NetworkConnectionAction": {
                "ConnectionDirection": direction,
                "RemoteIpDetails": remote_details,
                "RemotePortDetails": {"Port": remote_port},
                "LocalPortDetails": {"Port": local_port},
                "Protocol": "TCP", "Blocked": False}}
        else:
            user = rng.choice(self.users)
            api, service = rng.choice(APIS)
            base = prefix + "action/awsApiCallAction/"
            fields.update({
                base + "api": api,
                base + "serviceName": service,
                base + "callerType": "Remote IP",
                base + "remoteIpDetails/ipAddressV4": ip,
                base + "remoteIpDetails/organization/asn": str(asn),
                base + "remoteIpDetails/organization/asnOrg": org,
                base + "remoteIpDetails/organization/isp": org,
                base + "remoteIpDetails/organization/org": org,
                base + "remoteIpDetails/country/countryName": country,
                base + "remoteIpDetails/city/cityName": city,
                prefix + "resourceRole": "TARGET",
            })
            resource = {
                "Type": "AwsIamAccessKey",
                "Id": f"AWS::IAM::AccessKey:{user['key']}",
                "Partition": "aws", "Region": region,
                "Details": {"AwsIamAccessKey": {
                    "PrincipalId": f"{user['user_id']}",
                    "PrincipalType": "IAMUser",
                    "PrincipalName": user["name"],
                    "AccessKeyId": user["key"],
                    "AccountId": account,
                    "Status": "Active",
                    "CreatedAt": user["created"]}}}
            text = title.format(api=api, ip=ip, user=user["name"])
            action_doc = {"ActionType": action, "AwsApiCallAction": {
                "Api": api, "ServiceName": service,
                "CallerType": "Remote IP",
                "RemoteIpDetails": remote_details}}
        fields.update({
            "aws/securityhub/FindingId":
                f"arn:aws:securityhub:{region}::product/aws/guardduty/{fid}",
            "aws/securityhub/ProductName": "GuardDuty",
            "aws/securityhub/CompanyName": "Amazon",
        })
        severity = {"Product": sev, "Label": label,
                    "Normalized": sev * 10, "Original": str(sev)}
        doc = {
            "SchemaVersion": "2018-10-08",
            "Id": fid,
            "ProductArn": f"arn:aws:securityhub:{region}::product/aws/"
                          "guardduty",
            "ProductName": "GuardDuty",
            "CompanyName": "Amazon",
            "Region": region,
            "GeneratorId": f"arn:aws:guardduty:{region}:{account}:detector/"
                           f"{detector}",
            "AwsAccountId": account,
            "Types": [asff_type],
            "FirstObservedAt": aws.iso(first),
            "LastObservedAt": aws.iso(updated),
            "CreatedAt": aws.iso(created, millis=True),
            "UpdatedAt": aws.iso(updated, millis=True),
            "Severity": severity,
            "Title": text,
            "Description": f"{text} GuardDuty finding type {gd_type}.",
            "SourceUrl": f"https://{region}.console.aws.amazon.com/guardduty/"
                         f"home?region={region}#/findings?macros=current&"
                         f"fId={finding_id}",
            "ProductFields": fields,
            "Resources": [resource],
            "WorkflowState": "NEW",
            "Workflow": {"Status": self.workflow((0.65, 0.2, 0.08, 0.07))},
            "RecordState": "ARCHIVED" if rng.random() < 0.08 else "ACTIVE",
            "FindingProviderFields": {
                "Severity": {"Label": label, "Original": str(sev)},
                "Types": [asff_type]},
        }
        if rng.random() < 0.5:
            doc["Action"] = action_doc
        return doc

    def control(self, region, created, updated):
        rng = self.rng
        account = self.account
        control, title, kind, failed_label = rng.choice(CONTROLS)
        pool = self.pools[region]
        if kind == "user":
            user = rng.choice(self.users)
            resource = {
                "Type": "AwsIamUser",
                "Id": f"arn:aws:iam::{account}:user/{user['name']}",
                "Partition": "aws", "Region": region,
                "Details": {"AwsIamUser": {
                    "UserName": user["name"], "UserId": user["user_id"],
                    "Path": "/", "CreateDate": user["created"]}}}
        else:
            choice = rng.choice(pool[kind])
            resource = choice["resource"] if kind == "ec2" else choice
        passed = rng.random() < 0.2
        label = "INFORMATIONAL" if passed else failed_label
        number = LABEL_NORMALIZED[label]
        fid = (f"arn:aws:securityhub:{region}:{account}:subscription/"
               f"{STANDARD}/{control}/finding/"
               f"{uuid.UUID(int=rng.getrandbits(128), version=4)}")
        types = ["Software and Configuration Checks/Industry and Regulatory "
                 "Standards/AWS-Foundational-Security-Best-Practices"]
        url = (f"https://docs.aws.amazon.com/console/securityhub/{control}/"
               "remediation")
        return {
            "SchemaVersion": "2018-10-08",
            "Id": fid,
            "ProductArn": f"arn:aws:securityhub:{region}::product/aws/"
                          "securityhub",
            "ProductName": "Security Hub",
            "CompanyName": "AWS",
            "Region": region,
            "GeneratorId": f"{STANDARD}/{control}",
            "AwsAccountId": account,
            "Types": types,
            "FirstObservedAt": aws.iso(created, millis=True),
            "LastObservedAt": aws.iso(updated, millis=True),
            "CreatedAt": aws.iso(created, millis=True),
            "UpdatedAt": aws.iso(updated, millis=True),
            "Severity": {"Product": number, "Label": label,
                         "Normalized": number, "Original": label},
            "Title": f"{control} {title}",
            "Description": f"This control checks whether {title[0].lower()}"
                           f"{title[1:]}.",
            "Remediation": {"Recommendation": {
                "Text": "For information on how to correct this issue, "
                        "consult the AWS Security Hub controls "
                        "documentation.",
                "Url": url}},
            "ProductFields": {
                "StandardsArn": f"arn:aws:securityhub:::standards/{STANDARD}",
                "StandardsSubscriptionArn":
                    f"arn:aws:securityhub:{region}:{account}:subscription/"
                    f"{STANDARD}",
                "ControlId": control,
                "RecommendationUrl": url,
                "aws/securityhub/ProductName": "Security Hub",
                "aws/securityhub/CompanyName": "AWS",
                "aws/securityhub/FindingId":
                    f"arn:aws:securityhub:{region}::product/aws/securityhub/"
                    f"{fid}",
            },
            "Resources": [resource],
            "Compliance": {"Status": "PASSED" if passed else "FAILED"},
            "WorkflowState": "NEW",
            "Workflow": {"Status": "RESOLVED" if passed else
                         self.workflow((0.6, 0.2, 0.1, 0.1))},
            "RecordState": "ARCHIVED" if rng.random() < 0.1 else "ACTIVE",
            "FindingProviderFields": {
                "Severity": {"Label": label, "Original": label},
                "Types": types},
        }

    def generate(self, count):
        """Yield count findings: the store indexes each as it comes, so the
        documents of 50,000 findings never all exist at once."""
        per_region = collections.Counter()
        for i in range(count):
            region = self.regions[i % len(self.regions)]
            yield self.finding(region, per_region[region])
            per_region[region] += 1


def check_seed(config):
    """Raise ValueError unless config is a usable securityhub_seed."""
    if not isinstance(config, dict):
        raise ValueError("securityhub_seed must be a JSON object")
    unknown = sorted(set(config) - SEED_KEYS)
    if unknown:
        raise ValueError(f"unknown securityhub_seed fields: {unknown}")
    count = config.get("count")
    if isinstance(count, bool) or not isinstance(count, int) \
            or not 0 <= count <= 200000:
        raise ValueError("securityhub_seed.count must be 0-200000")
    regions = config.get("regions", ["us-east-1"])
    if not isinstance(regions, list) or not regions or not all(
            isinstance(r, str) and aws.REGION_RE.fullmatch(r)
            for r in regions):
        raise ValueError("securityhub_seed.regions must list regions")
    for name, low, high in (("same_updated_at", 0, count),
                            ("guardduty_share", 0, 1), ("days", 0.001, 3650)):
        value = config.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, float)) or not low <= value <= high):
            raise ValueError(f"securityhub_seed.{name} must be "
                               f"{low}-{high}")
    if "anchor" in config and aws.parse_time(config["anchor"]) is None:
        raise ValueError("securityhub_seed.anchor must be an ISO 8601 time")
    account = config.get("account", aws.ACCOUNT_ID)
    if not isinstance(account, str) or not re.fullmatch(r"\d{12}", account):
        raise ValueError("securityhub_seed.account must be 12 digits")
