"""VirusTotal API v3: IP address, domain, file and URL reports.

Routes (GET only; any other method on these paths answers 405):

    /api/v3/ip_addresses/{ip}        IPv4 or IPv6
    /api/v3/domains/{domain}
    /api/v3/files/{md5|sha1|sha256}  the answer's id is always the SHA-256
    /api/v3/urls/{id}                id = base64url(URL) without "=" padding
                                     (vt-py's url_id), or the URL's 64-hex
                                     SHA-256, which is also the answer's id

Every other path under /api/v3 answers 404 NotFoundError. The 405 answer
has the usual error body with the code "MethodNotAllowedError", which is the
simulator's own: the service documents no 405. Answers carry the headers the
recorded VirusTotal answers carry (Content-Type "application/json;
charset=utf-8", Cache-Control "no-cache", X-Cloud-Trace-Context; Server and
Date come from the simulator core) and, like them, are JSON indented by 4
with sorted keys and no final newline.

Order of checks on a report path, after any fault rule (which the simulator
applies before this module is called):

 1. x-apikey must be one of state "vt_api_key" (a string or an array of
    strings; default "test-vt-key"). Missing or empty: 401
    AuthenticationRequiredError "X-Apikey header is missing"; anything else:
    401 WrongCredentialsError "Wrong API key". Neither uses quota.
 2. The quota of that key (see below): 429 QuotaExceededError, which uses
    no quota either.
 3. The lookup. It has used one request of quota, found or not.

Settings (POST /_sim/state/NAME, i.e. `sim_set NAME JSON`):

    vt_api_key      "k" or ["k1", "k2"]: the accepted keys.
    vt_quota        {"per_minute": N, "per_day": M, "window_seconds": S}
                    Each field is optional; a missing limit is unlimited,
                    and the default is no limits at all. per_minute counts
                    the accepted requests of the last S seconds (default
                    60; tests shorten it to watch a minute pass). per_day
                    counts every accepted request since the last
                    /_sim/reset: the simulator has no clock to reach 00:00
                    UTC, so a spent daily quota stays spent. Requests are
                    counted whether or not limits are set, so limits set
                    mid-test see the earlier requests.
    vt_retry_after  seconds: adds Retry-After to 429 answers. The real
                    service sends none; this is for tests of that path.
    vt_verdicts     {"<indicator>": {"malicious": 12, "suspicious": 3,
                    "reputation": -40, ...}, ...}: the object's verdict.
                    Keys of last_analysis_stats go there; any other key
                    replaces that attribute (e.g. "country": "RU").
    vt_unknown      ["<indicator>", ...]: these answer 404 NotFoundError.
    vt_no_stats     ["<indicator>", ...]: a 2019-style object, without
                    last_analysis_stats, last_analysis_results and
                    last_analysis_date (as the recorded 1.1.1.1 and
                    github.com answers are).
    vt_ctrl         ["<indicator>", ...]: one string attribute holds the
                    control characters of CTRL_TEXT: as_owner (IPs),
                    registrar (domains), meaningful_name and names[0]
                    (files), title (URLs).

An indicator in these settings is written as the tools know it: an IP,
a domain (any case), any of a file's three hashes (any case), or a URL
(as text, as its base64url id or as its SHA-256 id).

VirusTotal names a URL by the SHA-256 of its canonical form (the recorded
answers give http://example.com/ the id 2a1b4024..., its SHA-256). Its
exact canonicalisation is not documented; the simulator's is a light
approximation, used for ids and for URLs in settings alike: "http://" is
added when there is no scheme, scheme and host are lower-cased and an empty
path becomes "/" (so "example.com" becomes "http://example.com/").

Verdicts. Without settings an object is clean and the numbers are fixed:
IPs, domains and URLs have 80 engines, {"harmless": 60, "malicious": 0,
"suspicious": 0, "undetected": 20, "timeout": 0}; files have 70 engines and
the file-only categories, {"harmless": 0, "malicious": 0, "suspicious": 0,
"undetected": 58, "timeout": 0, "confirmed-timeout": 0, "failure": 0,
"type-unsupported": 12} (engines call a clean file "undetected", not
"harmless"). An override replaces the numbers it names; unless it names
the filler category (harmless for IPs, domains and URLs, undetected for
files) too, the filler takes up the difference so the engine count stays
the same: {"malicious": 12, "suspicious": 3} on an IP gives harmless 45,
undetected 20. reputation, unless named, is -(3 * malicious + suspicious),
0 for a clean object. last_analysis_results has one entry per engine,
consistent with the stats. Everything else (AS owner, country, file names,
sizes, dates...) is drawn from a hash of the indicator, so every run gives
the same answer.

Built-in indicators (settings take precedence over all of them):

    1.1.1.1, github.com     the answers recorded from the real service in
                            2019 (tests/sim/data/vt/recorded.json), byte for
                            byte; they have no last_analysis_stats. Naming
                            them in vt_verdicts, vt_no_stats or vt_ctrl
                            gets a simulated object instead.
    203.0.113.66            malicious: 14 malicious, 2 suspicious, rep -62
    198.51.100.7            suspicious: 1 malicious, 4 suspicious, rep -8
    evil.example            malicious: 11 malicious, 3 suspicious, rep -45
    http://evil.example/payload.exe
                            malicious: 9 malicious, 1 suspicious, rep -30
    EICAR test file         md5 44d88612fea8a8f36de82e1278abb02f,
                            sha1 3395856ce81f2b7382dee72602f798b642f14140,
                            sha256 275a021bbfb6489e54d471899f7db9d1663fc695
                            ec2fe2a2c4538aabf651fd0f: 62 malicious of 70,
                            named eicar.com, 68 bytes
    not found (404)         any value starting with "unknown" (any case),
                            URLs whose host starts with "unknown", IPs in
                            192.0.2.0/24 (TEST-NET-1, RFC 5737), domains
                            under .invalid (RFC 6761) and URLs on them, and
                            SHA-256 URL ids of URLs the simulator has not
                            met (VirusTotal only knows submitted URLs; it
                            meets a URL in the built-ins, in the settings
                            above or in an earlier base64url lookup).

Malformed identifiers (an IP that does not parse, a domain with characters
no host name has, a file id that is not 32, 40 or 64 hex digits, a URL id
that is not unpadded base64url of UTF-8 text) answer 400
InvalidArgumentError. The simulator is strict on purpose: how lenient the
real service is there is not documented, and its exact messages are not
known; only the error codes are.

A file looked up by MD5 or SHA-1 gets made-up companion hashes; the
simulator remembers them, so a later lookup by any of the three finds the
same object. POST /_sim/reset forgets them, the URLs met and all quota use.
"""

import base64
import binascii
import collections
import hashlib
import ipaddress
import itertools
import json
import os
import re
import threading
import time
from urllib.parse import unquote, urlsplit, urlunsplit

from simlib import route, state

DEFAULT_KEY = "test-vt-key"
PUBLIC_BASE = "https://www.virustotal.com/api/v3"

# The string vt_ctrl puts in an attribute: C0 controls including the SOH
# pair found in a real certificate's SAN list, an ANSI colour escape that
# would recolour a terminal, a tab and DEL.
CTRL_TEXT = ("ctrl\u0001\u0001 bell\u0007 esc\u001b[31mred\u001b[0m"
             "\ttab\u007fend")
CTRL_ATTRIBUTE = {"ip_address": "as_owner", "domain": "registrar",
                  "file": "meaningful_name", "url": "title"}

NETWORK_STATS = {"harmless": 60, "malicious": 0, "suspicious": 0,
                 "undetected": 20, "timeout": 0}
FILE_STATS = {"harmless": 0, "malicious": 0, "suspicious": 0,
              "undetected": 58, "timeout": 0, "confirmed-timeout": 0,
              "failure": 0, "type-unsupported": 12}

# collection in the path -> (data.type, the noun in NotFoundError messages)
KINDS = {
    "ip_addresses": ("ip_address", "IP address"),
    "domains": ("domain", "Domain"),
    "files": ("file", "File"),
    "urls": ("url", "URL"),
}

EICAR = ("44d88612fea8a8f36de82e1278abb02f",
         "3395856ce81f2b7382dee72602f798b642f14140",
         "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f")

# (data.type, indicator) -> override, in the vt_verdicts format. File
# entries are keyed by SHA-256, URL entries by canonical URL.
BUILTIN_VERDICTS = {
    ("ip_address", "203.0.113.66"): {
        "malicious": 14, "suspicious": 2, "reputation": -62,
        "total_votes": {"harmless": 0, "malicious": 7}},
    ("ip_address", "198.51.100.7"): {
        "malicious": 1, "suspicious": 4, "reputation": -8},
    ("domain", "evil.example"): {
        "malicious": 11, "suspicious": 3, "reputation": -45,
        "total_votes": {"harmless": 0, "malicious": 5}},
    ("url", "http://evil.example/payload.exe"): {
        "malicious": 9, "suspicious": 1, "reputation": -30},
    ("file", EICAR[2]): {
        "malicious": 62, "undetected": 6, "type-unsupported": 2,
        "reputation": -1035, "total_votes": {"harmless": 12, "malicious": 96},
        "names": ["eicar.com", "eicar.com.txt", "eicar_com.zip"],
        "meaningful_name": "eicar.com", "size": 68,
        "type_description": "Text", "type_tag": "text",
        "magic": "EICAR virus test files", "tags": ["text", "eicar"]},
}

NOT_FOUND_NETWORK = ipaddress.ip_network("192.0.2.0/24")

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "..", "..", "data", "vt", "recorded.json")


def load_recorded():
    """The recorded answers, as {"ip_addresses/1.1.1.1": body bytes}."""
    with open(DATA_FILE, encoding="utf-8") as f:
        doc = json.load(f)
    return {name: entry["body"].encode("utf-8")
            for name, entry in doc["responses"].items()}


RECORDED = load_recorded()


# --- answers ----------------------------------------------------------------

_trace_lock = threading.Lock()
_trace_counter = itertools.count(1)


def vt_headers():
    """The headers of every answer, as the recorded answers carry them.

    X-Cloud-Trace-Context is a hash of a request counter: it looks like the
    real 32-hex trace ids and differs between answers, as theirs do.
    """
    with _trace_lock:
        n = next(_trace_counter)
    trace = hashlib.md5(f"vt-trace-{n}".encode()).hexdigest()
    return {"Content-Type": "application/json; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Cloud-Trace-Context": trace}


def dump(obj):
    # The recorded answers are indented by 4 with sorted keys and no final
    # newline; ensure_ascii writes control characters as \\u escapes, as
    # they do.
    return json.dumps(obj, indent=4, sort_keys=True).encode("ascii")


def error(status, code, message, headers=None):
    head = vt_headers()
    head.update(headers or {})
    return status, head, dump({"error": {"code": code, "message": message}})


def not_found(noun, value):
    return error(404, "NotFoundError", f'{noun} "{value}" not found')


def invalid(message):
    return error(400, "InvalidArgumentError", message)


# --- authentication and quota -----------------------------------------------

def check_key(req):
    """Return (key, None) for an accepted key, else (None, 401 answer)."""
    key = req.headers.get("x-apikey")
    if not key:
        return None, error(401, "AuthenticationRequiredError",
                           "X-Apikey header is missing")
    accepted = state.get("vt_api_key", DEFAULT_KEY)
    if isinstance(accepted, str):
        accepted = [accepted]
    if key not in accepted:
        return None, error(401, "WrongCredentialsError", "Wrong API key")
    return key, None


class Quota:
    """Per-key request counts: a sliding minute window and a day total.

    Checking and counting happen under one lock, so 32 concurrent requests
    against a limit of N let exactly N through.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._recent = collections.defaultdict(collections.deque)
        self._day = collections.Counter()

    def take(self, key, limits):
        """Count one request for key; False (and nothing counted) if over."""
        per_minute = limits.get("per_minute")
        per_day = limits.get("per_day")
        window = float(limits.get("window_seconds", 60))
        now = time.monotonic()
        with self._lock:
            recent = self._recent[key]
            while recent and recent[0] <= now - window:
                recent.popleft()
            if per_minute is not None and len(recent) >= int(per_minute):
                return False
            if per_day is not None and self._day[key] >= int(per_day):
                return False
            recent.append(now)
            self._day[key] += 1
            return True

    def clear(self):
        with self._lock:
            self._recent.clear()
            self._day.clear()


QUOTA = Quota()


def quota_exceeded():
    headers = {}
    retry_after = state.get("vt_retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return error(429, "QuotaExceededError", "Quota exceeded", headers)


# --- indicators -------------------------------------------------------------

class Subject:
    """The object a lookup resolved to.

    id is data.id; names holds every spelling a setting may use for it,
    normalised by setting_name().
    """

    def __init__(self, kind, id_, names, **extra):
        self.kind = kind
        self.id = id_
        self.names = set(names)
        self.extra = extra


def canonical_url(text):
    """VirusTotal's light URL canonicalisation (see the module docstring).

    Raises ValueError for text urlsplit cannot take apart.
    """
    text = text.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(),
                       parts.path or "/", parts.query, parts.fragment))


def url_id(url):
    """vt-py's url_id: base64url without padding."""
    return base64.urlsafe_b64encode(url.encode("utf-8")).decode().rstrip("=")


def url_sha256(url):
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def setting_name(kind, text):
    """How an indicator written in a setting is compared with Subject.names."""
    text = str(text)
    if kind != "url":
        return text.lower()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return text.lower()
    if "://" in text or "." in text:
        try:
            return canonical_url(text)
        except ValueError:
            return text
    return text  # A base64url id: case matters.


class Memory:
    """What the simulator learnt from earlier lookups, for later ones.

    files maps each of a made-up file's hashes to its (md5, sha1, sha256);
    urls maps a URL's SHA-256 id to the URL.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.files = {}
        self.urls = {}

    def file(self, given):
        with self._lock:
            found = self.files.get(given)
            if found:
                return found
            triple = made_up_hashes(given)
            # setdefault keeps the first triple if two threads race to
            # invent one for the same hash.
            for h in triple:
                self.files.setdefault(h, triple)
            return self.files[given]

    def remember_url(self, url):
        with self._lock:
            self.urls[url_sha256(url)] = url

    def url(self, sha):
        with self._lock:
            return self.urls.get(sha)

    def clear(self):
        with self._lock:
            self.files.clear()
            self.urls.clear()


MEMORY = Memory()


def made_up_hashes(given):
    """(md5, sha1, sha256) for a file known only by one of its hashes.

    The missing hashes are hashes of the given one: deterministic, and of
    the right length, though of course not the file's.
    """
    if given == EICAR[0] or given == EICAR[1] or given == EICAR[2]:
        return EICAR
    seed = given.encode("ascii")
    md5 = given if len(given) == 32 else hashlib.md5(seed).hexdigest()
    sha1 = given if len(given) == 40 else hashlib.sha1(seed).hexdigest()
    sha256 = given if len(given) == 64 else hashlib.sha256(seed).hexdigest()
    return md5, sha1, sha256


DOMAIN_RE = re.compile(
    r"(?=.{1,253}\Z)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
    r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?")
HASH_RE = re.compile(r"[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}")
B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")


def resolve_ip(value):
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None, invalid(f'"{value}" is not a valid IP address')
    if ip in NOT_FOUND_NETWORK:
        return None, not_found("IP address", value)
    return Subject("ip_address", value, {value.lower(), str(ip)}, ip=ip), None


def resolve_domain(value):
    if not DOMAIN_RE.fullmatch(value.lower()):
        return None, invalid(f'"{value}" is not a valid domain')
    # Host names ignore case and a final dot; the id is the plain form.
    domain = value.lower().rstrip(".")
    if domain == "invalid" or domain.endswith(".invalid"):
        return None, not_found("Domain", value)
    return Subject("domain", domain, {domain, value.lower()}), None


def resolve_file(value):
    given = value.lower()
    if not HASH_RE.fullmatch(given):
        return None, invalid(f'"{value}" is not a valid file hash')
    md5, sha1, sha256 = MEMORY.file(given)
    return Subject("file", sha256, {md5, sha1, sha256},
                   md5=md5, sha1=sha1, sha256=sha256), None


def urls_in_settings():
    """Every URL written as text in the settings and built-ins."""
    names = [name for kind, name in BUILTIN_VERDICTS if kind == "url"]
    for setting in ("vt_verdicts", "vt_unknown", "vt_no_stats", "vt_ctrl"):
        names.extend(state.get(setting) or [])
    for name in names:
        name = setting_name("url", name)
        if "://" in name:
            yield name


def resolve_url(value):
    if re.fullmatch(r"[0-9a-fA-F]{64}", value):
        sha = value.lower()
        url = MEMORY.url(sha)
        if url is None:
            url = next((u for u in urls_in_settings()
                        if url_sha256(u) == sha), None)
        if url is None:
            # VirusTotal only knows URLs someone submitted.
            return None, not_found("URL", value)
        names = {sha, url, url_id(url)}
    else:
        if not B64URL_RE.fullmatch(value) or len(value) % 4 == 1:
            return None, invalid(f'"{value}" is not a valid URL identifier')
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            text = raw.decode("utf-8")
            url = canonical_url(text)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None, invalid(f'"{value}" is not a valid URL identifier')
        if not text.strip() or any(ord(c) < 32 for c in text):
            return None, invalid(f'"{value}" is not a valid URL identifier')
        sha = url_sha256(url)
        MEMORY.remember_url(url)
        names = {sha, url, url_id(url), value}
    host = (urlsplit(url).hostname or "").rstrip(".")
    if host.startswith("unknown") or host.endswith(".invalid"):
        return None, not_found("URL", value)
    return Subject("url", sha, names, url=url, host=host), None


RESOLVERS = {"ip_addresses": resolve_ip, "domains": resolve_domain,
             "files": resolve_file, "urls": resolve_url}


def setting_for(name, subject):
    """The entry of a list or object setting that names subject, or None.

    For a list setting the answer is True when the subject is listed.
    """
    value = state.get(name)
    if not value:
        return None
    for key in value:
        if setting_name(subject.kind, key) in subject.names:
            return value[key] if isinstance(value, dict) else True
    return None


def builtin_verdict(subject):
    for name in subject.names:
        found = BUILTIN_VERDICTS.get((subject.kind, name))
        if found:
            return found
    return None


# --- simulated objects ------------------------------------------------------

def draw(*parts):
    """A large integer drawn from the indicator: the source of every made-up
    attribute, so that the same indicator always gets the same object."""
    text = "\0".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def pick(choices, n):
    return choices[n % len(choices)]


def day_of(epoch):
    return time.strftime("%Y%m%d", time.gmtime(epoch))


# Base of the made-up dates: 2023-11-14, then up to 30 days later.
DATE_BASE = 1700000000
DAY = 86400

# Owners of the documentation AS numbers (RFC 5398).
AS_OWNERS = [
    ("Example Networks Inc.", 64496, "US", "NA", "ARIN"),
    ("Sample Hosting GmbH", 64497, "DE", "EU", "RIPE NCC"),
    ("Demo Telecom K.K.", 64498, "JP", "AS", "APNIC"),
    ("Placeholder Internet Ltda", 64499, "BR", "SA", "LACNIC"),
    ("Testbed Cloud Pty Ltd", 64500, "AU", "OC", "APNIC"),
    ("Fixture Online SARL", 64501, "FR", "EU", "RIPE NCC"),
    ("Mockup Datacentre Ltd", 64502, "GB", "EU", "RIPE NCC"),
    ("Stub Broadband Corp.", 64503, "CA", "NA", "ARIN"),
]
REGISTRARS = ["Example Registrar, Inc.", "Sample Names LLC",
              "Demo Domains GmbH", "Placeholder Registry Services Ltd."]
CLEAN_CATEGORIES = ["information technology", "business", "education",
                    "search engines and portals", "news", "shopping",
                    "content delivery networks"]
BAD_CATEGORIES = ["malicious sites", "phishing", "malware repository"]
# (type_description, type_tag, magic, extension)
FILE_TYPES = [
    ("Win32 EXE", "peexe",
     "PE32 executable (GUI) Intel 80386, for MS Windows", ".exe"),
    ("PDF", "pdf", "PDF document, version 1.7", ".pdf"),
    ("ZIP", "zip", "Zip archive data, at least v2.0 to extract", ".zip"),
    ("Office Open XML Document", "docx", "Microsoft Word 2007+", ".docx"),
    ("Shell script", "shell", "POSIX shell script, ASCII text executable",
     ".sh"),
]
FILE_STEMS = ["invoice", "setup", "report", "update", "document", "scan"]
PAGE_TITLES = ["Welcome", "Home", "Sign in", "Download", "Index of /"]

# What an engine's "result" says for each category: network engines speak
# of the site, file engines name a detection.
NETWORK_RESULTS = {"malicious": "malicious", "suspicious": "suspicious",
                   "harmless": "clean", "undetected": "unrated",
                   "timeout": None}
CATEGORY_ORDER = ["malicious", "suspicious", "harmless", "undetected",
                  "timeout", "confirmed-timeout", "failure",
                  "type-unsupported"]


def analysis_stats(kind, override):
    """last_analysis_stats under an override (see the module docstring)."""
    default = FILE_STATS if kind == "file" else NETWORK_STATS
    filler = "undetected" if kind == "file" else "harmless"
    given = {k: int(v) for k, v in override.items() if k in default}
    stats = dict(default, **given)
    if filler not in given:
        others = sum(v for k, v in stats.items() if k != filler)
        stats[filler] = max(0, sum(default.values()) - others)
    return stats


def analysis_results(kind, stats, seed, date, detection):
    """One entry per engine, the categories matching the stats.

    Which engines detect rotates with the indicator, so that two malicious
    objects are not flagged by the same engines.
    """
    total = sum(stats.values())
    slots = [cat for cat in CATEGORY_ORDER for _ in range(stats.get(cat, 0))]
    results = {}
    for i in range(total):
        name = f"Engine {i + 1:02d}"
        cat = slots[(i + seed) % total]
        entry = {"category": cat, "engine_name": name, "method": "blacklist"}
        if kind == "file":
            entry["result"] = {"malicious": detection,
                               "suspicious": "Suspicious.Heuristic"}.get(cat)
            entry["engine_version"] = f"{1 + i % 7}.{i % 10}.{seed % 100}"
            entry["engine_update"] = day_of(date - (i % 3) * DAY)
        else:
            entry["result"] = NETWORK_RESULTS.get(cat)
        results[name] = entry
    return results


def ip_attributes(subject, seed):
    owner, asn, country, continent, rir = pick(AS_OWNERS, seed)
    prefix = 24 if subject.extra["ip"].version == 4 else 48
    network = ipaddress.ip_network(f"{subject.extra['ip']}/{prefix}",
                                   strict=False)
    date = DATE_BASE + seed % (30 * DAY)
    return {
        "as_owner": owner,
        "asn": asn, "country": country, "continent": continent,
        "network": str(network), "regional_internet_registry": rir,
        "tags": [],
        "whois": (f"NetRange: {network}\nOrgName: {owner}\n"
                  f"OriginAS: AS{asn}\nCountry: {country}\n"),
        "whois_date": date - 5 * DAY,
    }


def domain_attributes(subject, seed, bad):
    domain = subject.id
    created = DATE_BASE - (365 + seed % 3650) * DAY
    created_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
    date = DATE_BASE + seed % (30 * DAY)
    categories = BAD_CATEGORIES if bad else CLEAN_CATEGORIES
    a, b, c = seed % 7, seed // 7 % 7, seed // 49 % 7
    return {
        "categories": {f"Engine {3 + a:02d}": pick(categories, a),
                       f"Engine {20 + b:02d}": pick(categories, b + 1),
                       f"Engine {40 + c:02d}": pick(categories, c + 2)},
        "creation_date": created,
        "last_update_date": date - 40 * DAY,
        "registrar": pick(REGISTRARS, seed),
        "tld": domain.rsplit(".", 1)[-1],
        "popularity_ranks": {},
        "tags": [],
        # Answers from the benchmarking range 198.18.0.0/15 (RFC 2544),
        # which no real host uses.
        "last_dns_records": [
            {"type": "A", "ttl": 300,
             "value": str(ipaddress.ip_address("198.18.0.0") + seed % 131072)},
        ],
        "last_dns_records_date": date,
        "whois": (f"Domain Name: {domain}\n"
                  f"Registrar: {pick(REGISTRARS, seed)}\n"
                  f"Creation Date: {created_text}\n"),
        "whois_date": date - 3 * DAY,
    }


def file_attributes(subject, seed):
    kind, tag, magic, ext = pick(FILE_TYPES, seed)
    sha256 = subject.extra["sha256"]
    names = [pick(FILE_STEMS, seed // 5) + ext, sha256[:16] + ext]
    date = DATE_BASE + seed % (30 * DAY)
    first = date - seed % (400 * DAY)
    return {
        "md5": subject.extra["md5"], "sha1": subject.extra["sha1"],
        "sha256": sha256,
        "names": names, "meaningful_name": names[0],
        "size": 1024 + seed % 2_000_000,
        "type_description": kind, "type_tag": tag, "magic": magic,
        "tags": [tag],
        "first_submission_date": first,
        "last_submission_date": date,
        "times_submitted": 1 + seed % 40,
        "unique_sources": 1 + seed % 9,
    }


def url_attributes(subject, seed, bad):
    url = subject.extra["url"]
    date = DATE_BASE + seed % (30 * DAY)
    categories = BAD_CATEGORIES if bad else CLEAN_CATEGORIES
    length = 512 + seed % 60000
    return {
        "url": url,
        "last_final_url": url,
        "title": pick(PAGE_TITLES, seed),
        "tld": subject.extra["host"].rsplit(".", 1)[-1],
        "categories": {f"Engine {5 + seed % 9:02d}": pick(categories, seed)},
        "last_http_response_code": 200,
        "last_http_response_content_length": length,
        "last_http_response_headers": {
            "content-type": "text/html; charset=utf-8",
            "content-length": str(length)},
        "first_submission_date": date - seed % (200 * DAY),
        "last_submission_date": date,
        "times_submitted": 1 + seed % 25,
        "tags": [],
    }


def build(subject, override, no_stats, ctrl):
    """The data object for subject, under the given settings."""
    seed = draw(subject.kind, subject.id)
    stats = analysis_stats(subject.kind, override)
    bad = stats["malicious"] > 0 or stats["suspicious"] > 0
    if subject.kind == "ip_address":
        attributes = ip_attributes(subject, seed)
    elif subject.kind == "domain":
        attributes = domain_attributes(subject, seed, bad)
    elif subject.kind == "file":
        attributes = file_attributes(subject, seed)
    else:
        attributes = url_attributes(subject, seed, bad)
    date = DATE_BASE + seed % (30 * DAY)
    attributes.update({
        "reputation": -(3 * stats["malicious"] + stats["suspicious"]),
        "total_votes": {"harmless": 0, "malicious": 0},
        "last_modification_date": date + 3600,
    })
    if not no_stats:
        detection = ("EICAR-Test-File" if subject.id == EICAR[2]
                     else f"Trojan.Generic.{seed % 100000}")
        attributes.update({
            "last_analysis_date": date,
            "last_analysis_stats": stats,
            "last_analysis_results": analysis_results(
                subject.kind, stats, seed, date, detection),
        })
    default = FILE_STATS if subject.kind == "file" else NETWORK_STATS
    attributes.update({k: v for k, v in override.items() if k not in default})
    if ctrl:
        # Last, so that no override (nor a built-in one) hides it.
        attributes[CTRL_ATTRIBUTE[subject.kind]] = CTRL_TEXT
        if subject.kind == "file":
            attributes["names"] = [CTRL_TEXT] + list(attributes["names"])[1:]
    collection = {"ip_address": "ip_addresses", "domain": "domains",
                  "file": "files", "url": "urls"}[subject.kind]
    return {"data": {
        "type": subject.kind,
        "id": subject.id,
        "links": {"self": f"{PUBLIC_BASE}/{collection}/{subject.id}"},
        "attributes": attributes,
    }}


# Bodies are deterministic for a subject and its settings; rendering one
# (80 engine results, sorted and indented) costs more than serving it, and
# benchmarks ask for thousands.  Cleared by reset().
BODIES = {}
BODIES_LOCK = threading.Lock()
BODIES_MAX = 20000


def rendered(subject, override, no_stats, ctrl):
    key = (subject.kind, subject.id, json.dumps(override, sort_keys=True),
           no_stats, ctrl)
    with BODIES_LOCK:
        body = BODIES.get(key)
    if body is None:
        body = dump(build(subject, override, no_stats, ctrl))
        with BODIES_LOCK:
            if len(BODIES) >= BODIES_MAX:
                BODIES.clear()
            BODIES[key] = body
    return body


# --- routes -----------------------------------------------------------------

REPORT_PATH = (r"/api/v3/(?P<collection>ip_addresses|domains|files|urls)"
               r"/(?P<value>[^/]+)")


@route("GET", REPORT_PATH)
def report(req):
    key, denied = check_key(req)
    if denied:
        return denied
    if not QUOTA.take(key, state.get("vt_quota") or {}):
        return quota_exceeded()
    collection = req.params["collection"]
    # Tools may percent-encode (an IPv6 address's colons, say); the
    # indicator is what the encoding stands for.
    value = unquote(req.params["value"])
    noun = KINDS[collection][1]
    if value.lower().startswith("unknown"):
        return not_found(noun, value)
    subject, problem = RESOLVERS[collection](value)
    if problem:
        return problem
    if setting_for("vt_unknown", subject):
        return not_found(noun, value)
    override = setting_for("vt_verdicts", subject)
    no_stats = bool(setting_for("vt_no_stats", subject))
    ctrl = bool(setting_for("vt_ctrl", subject))
    recorded = RECORDED.get(f"{collection}/{subject.id}")
    if recorded and override is None and not no_stats and not ctrl:
        return 200, vt_headers(), recorded
    if override is None:
        override = builtin_verdict(subject) or {}
    return 200, vt_headers(), rendered(subject, override, no_stats, ctrl)


@route("ANY", r"/api/v3(/.*)?")
def elsewhere(req):
    # This catch-all matches every method, so the registry's own 405 never
    # comes for report paths: answer it here.
    if re.fullmatch(REPORT_PATH, req.path):
        status, headers, body = error(
            405, "MethodNotAllowedError",
            f"Method {req.method} is not allowed on {req.path}")
        headers["Allow"] = "GET"
        return status, headers, body
    return not_found("Resource", req.path)


def reset():
    QUOTA.clear()
    with BODIES_LOCK:
        BODIES.clear()
    MEMORY.clear()
