"""Generated Elastic Security 8.x alerts for the simulator (elastic.py
documents the seed parameters). The same parameters always give the same
alerts, byte for byte.

Shapes follow API.md 1: kibana.alert.* and kibana.alert.rule.* fields,
kibana.space_ids, event.kind "signal", and ECS fields copied from the
source event (host, user, source, destination, related, cloud, process,
file). Field values are made up from the documentation address ranges
(RFC 5737) and names; 203.0.113.66, 198.51.100.7, evil.example and the
EICAR test file are the indicators VirusTotal's simulator calls bad.
"""

import bisect
import hashlib
import itertools
import random

from simlib.vendors import elastic_dsl as dsl

LAYOUTS = ("flat", "nested", "mixed", "dotted")
STATUSES = ("open", "acknowledged", "closed", "in-progress")
RISK = {"low": 21, "medium": 47, "high": 73, "critical": 99}
EICAR_SHA256 = ("275a021bbfb6489e54d471899f7db9d1"
                "663fc695ec2fe2a2c4538aabf651fd0f")
BAD_IPS = ("203.0.113.66", "198.51.100.7")
KIBANA_VERSION = "8.15.0"


def stable_uuid(text):
    """A UUID-shaped id derived from text."""
    h = hashlib.sha256(text.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


# name, severity, kind, building block, relative weight
RULES = [
    ("Suspicious PowerShell Execution", "high", "process", False, 12),
    ("Potential Credential Access via LSASS Memory Dump", "critical",
     "process", False, 4),
    ("Malware Detection Alert", "critical", "file", False, 6),
    ("Connection to Known Command and Control Server", "high", "network",
     False, 8),
    ("Multiple Failed Logons from One Source", "medium", "authentication",
     False, 14),
    ("AWS IAM Access Key Used from Unusual Location", "medium", "cloud",
     False, 8),
    ("Unusual Network Connection via RunDLL32", "medium", "process", False,
     8),
    ("Ransomware File Rename Activity", "critical", "file", False, 3),
    ("Sudo Privilege Escalation", "low", "process", False, 10),
    ("AWS GuardDuty Backdoor EC2 C&C Activity", "high", "cloud", False, 6),
    ("Process Started by MS Office Program", "low", "process", True, 5),
    ("DNS Query to Suspicious Domain", "medium", "network", False, 10),
]
RULE_INFO = [{
    "name": name, "severity": severity, "kind": kind, "bb": bb,
    "uuid": stable_uuid("rule:" + name), "rule_id": stable_uuid("id:" + name),
    "risk": RISK[severity],
    "tags": ["Elastic", "soarutils"] + (["Building Block"] if bb else []),
} for name, severity, kind, bb, _ in RULES]
RULE_CUMULATIVE = list(itertools.accumulate(w for *_, w in RULES))

EVENTS = {
    "process": (["process"], "start", "endpoint.events.process"),
    "file": (["malware", "intrusion_detection", "file"], "creation",
             "endpoint.alerts"),
    "network": (["network"], "connection_attempted",
                "endpoint.events.network"),
    "authentication": (["authentication"], "logon-failed", "system.auth"),
    "cloud": (["iam", "network"], "ConsoleLogin", "aws.cloudtrail"),
}
PROCESSES = {
    "Suspicious PowerShell Execution": (
        "powershell.exe", "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\"
        "powershell.exe", "powershell.exe -nop -w hidden -enc SQBFAFgA"),
    "Potential Credential Access via LSASS Memory Dump": (
        "procdump.exe", "C:\\Users\\Public\\procdump.exe",
        "procdump.exe -ma lsass.exe lsass.dmp"),
    "Unusual Network Connection via RunDLL32": (
        "rundll32.exe", "C:\\Windows\\System32\\rundll32.exe",
        "rundll32.exe C:\\Users\\Public\\payload.dll,Start"),
    "Sudo Privilege Escalation": ("sudo", "/usr/bin/sudo",
                                  "sudo -u#-1 /bin/bash"),
    "Process Started by MS Office Program": (
        "cmd.exe", "C:\\Windows\\System32\\cmd.exe",
        "cmd.exe /c whoami"),
}
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
         "ivan", "judy", "mallory", "svc-backup", "svc-web", "administrator",
         "root"]


def _hosts():
    hosts = []
    specs = [(f"ws-{n:04d}", "windows") for n in range(1, 13)]
    specs += [(f"web-{n:02d}", "linux") for n in range(1, 5)]
    specs += [("db-01", "linux"), ("db-02", "linux"), ("dc-01", "windows"),
              ("dc-02", "windows")]
    specs += [(f"ip-10-0-1-{n}", "aws") for n in (23, 57, 88, 140)]
    for n, (name, family) in enumerate(specs):
        ip = f"10.0.{1 + n // 8}.{10 + n * 7 % 240}"
        host = {"name": name, "hostname": name,
                "id": hashlib.sha256(b"host:" + name.encode()).hexdigest()[
                    :32],
                "ip": [ip],
                "os": {"family": "linux" if family == "aws" else family,
                       "name": {"windows": "Windows Server 2022",
                                "linux": "Ubuntu", "aws": "Amazon Linux"}[
                                    family],
                       "platform": "windows" if family == "windows"
                       else "linux"}}
        cloud = None
        if family == "aws":
            cloud = {"provider": "aws", "region": "us-east-1",
                     "account": {"id": "123456789012"},
                     "instance": {"id": "i-0" + hashlib.sha256(
                         name.encode()).hexdigest()[:16]}}
        hosts.append((host, ip, cloud))
    return hosts


HOSTS = _hosts()
USER_OBJECTS = {u: {"name": u, "domain": "CORP"} for u in USERS}
AGENT = {"type": "endpoint", "version": KIBANA_VERSION}
ECS = {"version": "8.11.0"}
HASHES = [EICAR_SHA256] + [hashlib.sha256(f"sample:{n}".encode()).hexdigest()
                           for n in range(40)]


class SeedError(ValueError):
    pass


def check_seed(config):
    """The seed parameters with defaults filled in; SeedError if bad."""
    if not isinstance(config, dict):
        raise SeedError("the seed must be a JSON object")
    known = {"space", "count", "seed", "equal_timestamps", "equal_at",
             "start", "step_ms", "layout", "status", "append"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise SeedError(f"unknown seed parameter(s): {', '.join(unknown)}")
    out = {"space": config.get("space", "default"),
           "count": config.get("count", 20), "seed": config.get("seed", 1),
           "equal_timestamps": config.get("equal_timestamps", 0),
           "start": config.get("start", "2026-11-22T00:00:00.000Z"),
           "step_ms": config.get("step_ms", 1000),
           "layout": config.get("layout", "flat"),
           "status": config.get("status"), "append": config.get("append",
                                                                False)}
    for name in ("count", "equal_timestamps", "step_ms"):
        value = out[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SeedError(f"{name} must be a non-negative integer")
    if out["count"] > 1000000:
        raise SeedError("count must be at most 1000000")
    if out["equal_timestamps"] > out["count"]:
        raise SeedError("equal_timestamps must not exceed count")
    equal_at = config.get("equal_at", (out["count"] -
                                       out["equal_timestamps"]) // 2)
    if isinstance(equal_at, bool) or not isinstance(equal_at, int) or \
            equal_at < 0 or equal_at + out["equal_timestamps"] > out["count"]:
        raise SeedError("equal_at must place the equal timestamps inside "
                        "the count")
    out["equal_at"] = equal_at
    if out["layout"] not in LAYOUTS:
        raise SeedError("layout must be one of " + ", ".join(LAYOUTS))
    if out["status"] is not None and out["status"] not in STATUSES:
        raise SeedError("status must be one of " + ", ".join(STATUSES))
    if not isinstance(out["space"], str) or not valid_space(out["space"]):
        raise SeedError("space must be a space id: lower-case letters, "
                        "digits, _ and -")
    if isinstance(out["seed"], bool) or not isinstance(out["seed"],
                                                       (int, str)):
        raise SeedError("seed must be an integer or a string")
    return out


def valid_space(space):
    return bool(space) and len(space) <= 100 and all(
        c.islower() or c.isdigit() or c in "_-" for c in space)


def start_ms(text, clock_ms):
    try:
        return dsl.date_math(text, clock_ms)
    except ValueError as exc:
        raise SeedError(f"start: {exc}") from None


class Generator:
    """Alerts for one space from one seed; the n-th alert depends only on
    the parameters, never on the clock (but "start" may use date math)."""

    def __init__(self, space, seed, namespace="seed"):
        self.space = space
        self.rng = random.Random(f"soarutils-elastic:{namespace}:{seed}:"
                                 f"{space}")
        self.namespace = f"{namespace}:{seed}:{space}"

    def alert(self, n, ts_ms, layout, status=None, forced=None):
        """(id, source, workflow status) of the n-th alert."""
        rand = self.rng.random

        def pick(count):
            return int(rand() * count)
        rule = RULE_INFO[bisect.bisect_right(RULE_CUMULATIVE,
                                             rand() * RULE_CUMULATIVE[-1])]
        host, host_ip, cloud = HOSTS[pick(len(HOSTS))]
        if forced is not None:
            rule = RULE_INFO[forced[0]]
            host, host_ip, cloud = HOSTS[forced[1]]
        user = USERS[pick(len(USERS))]
        kind = rule["kind"]
        if kind == "cloud" and cloud is None:
            host, host_ip, cloud = HOSTS[-1 - pick(4)]
        if status is None:
            roll = rand()
            status = "open" if roll < 0.8 else (
                "acknowledged" if roll < 0.92 else "closed")
        if kind in ("network", "authentication", "cloud"):
            if rand() < 0.25:
                src = BAD_IPS[pick(2)]
            else:
                src = f"203.0.113.{1 + pick(254)}" if rand() \
                    < 0.6 else f"198.51.100.{1 + pick(254)}"
            dst = host_ip
            if kind == "network":
                src, dst = host_ip, src
        else:
            src, dst = host_ip, f"10.0.9.{1 + pick(254)}"
        alert_id = hashlib.sha256(f"{self.namespace}:{n}".encode()).hexdigest()
        ts = dsl.format_date(ts_ms)
        original = dsl.format_date(ts_ms - (1000 + pick(119000)))
        categories, action, dataset = EVENTS[kind]
        subject = PROCESSES.get(rule["name"], (action,))[0]
        if kind == "file":
            subject = "file " + subject
        elif kind == "process":
            subject = "process " + subject
        reason = (f"{categories[0]} event with {subject}, by {user} on "
                  f"{host['name']} created {rule['severity']} alert "
                  f"{rule['name']}.")
        kibana = {
            "kibana.alert.uuid": alert_id,
            "kibana.alert.start": ts,
            "kibana.alert.last_detected": ts,
            "kibana.alert.original_time": original,
            "kibana.alert.status": "active",
            "kibana.alert.workflow_status": status,
            "kibana.alert.severity": rule["severity"],
            "kibana.alert.risk_score": rule["risk"],
            "kibana.alert.reason": reason,
            "kibana.alert.depth": 1,
            "kibana.alert.rule.name": rule["name"],
            "kibana.alert.rule.uuid": rule["uuid"],
            "kibana.alert.rule.rule_id": rule["rule_id"],
            "kibana.alert.rule.severity": rule["severity"],
            "kibana.alert.rule.risk_score": rule["risk"],
            "kibana.alert.rule.type": "query",
            "kibana.alert.rule.rule_type_id": "siem.queryRule",
            "kibana.alert.rule.category": "Custom Query Rule",
            "kibana.alert.rule.tags": rule["tags"],
            "kibana.space_ids": [self.space],
            "kibana.version": KIBANA_VERSION,
        }
        if rule["bb"]:
            kibana["kibana.alert.building_block_type"] = "default"
        ecs = {
            "host": host,
            "user": USER_OBJECTS[user],
            "source": {"ip": src, "port": 1024 + pick(64511)},
            "destination": {"ip": dst,
                            "port": (443, 53, 22, 3389)[pick(4)]},
            "event": {"category": categories, "action": action,
                      "dataset": dataset, "module": dataset.split(".")[0]},
            "agent": AGENT,
            "ecs": ECS,
        }
        related = {"ip": [src, dst] if src != dst else [src],
                   "user": [user], "hosts": [host["name"]]}
        if kind == "process" and rule["name"] in PROCESSES:
            name, path, command = PROCESSES[rule["name"]]
            ecs["process"] = {"name": name, "executable": path,
                              "command_line": command,
                              "pid": 300 + pick(29700)}
        if kind == "file":
            digest = HASHES[pick(len(HASHES))]
            name = "eicar.com" if digest == EICAR_SHA256 else "invoice.exe"
            ecs["file"] = {"name": name,
                           "path": f"C:\\Users\\{user}\\Downloads\\{name}",
                           "hash": {"sha256": digest}}
            related["hash"] = [digest]
        if rule["name"] == "DNS Query to Suspicious Domain":
            ecs["dns"] = {"question": {"name": "evil.example"}}
        if cloud is not None:
            ecs["cloud"] = cloud
        ecs["related"] = related
        return alert_id, build(layout, n, ts, kibana, ecs), status

    def alerts(self, params, clock_ms):
        """(id, source, workflow status, @timestamp ms) of each alert of a
        checked seed."""
        ts = start_ms(params["start"], clock_ms)
        step = params["step_ms"]
        lo = params["equal_at"]
        hi = lo + params["equal_timestamps"]
        for n in range(params["count"]):
            if n and not (lo < n < hi):
                ts += 1 + int(self.rng.random() * (2 * step - 1)) \
                    if step > 1 else step
            yield self.alert(n, ts, params["layout"], params["status"]) + (ts,)


def build(layout, n, ts, kibana, ecs):
    if layout == "mixed":
        layout = "flat" if n % 2 == 0 else "nested"
    doc = {"@timestamp": ts}
    if layout == "flat":
        doc.update(kibana)
        doc["event.kind"] = "signal"
        doc.update(ecs)
        return doc
    nested = {}
    for key, value in kibana.items():
        put_nested(nested, key, value)
    ecs = dict(ecs)
    ecs["event"] = dict(ecs["event"], kind="signal")
    nested.update(ecs)
    if layout == "nested":
        doc.update(nested)
        return doc
    doc.update(dotted(nested))
    return doc


def put_nested(obj, path, value):
    parts = path.split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def dotted(obj, prefix=""):
    out = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out.update(dotted(value, prefix + key + "."))
        else:
            out[prefix + key] = value
    return out


def sample_alerts():
    """One alert of every rule on every kind of host, to derive the alerts
    index mapping from the generator itself."""
    gen = Generator("default", "mapping")
    out = []
    for rule_index in range(len(RULE_INFO)):
        for host_index in (0, len(HOSTS) - 1):
            _, source, _ = gen.alert(0, 0, "flat",
                                     forced=(rule_index, host_index))
            out.append(source)
    return out
