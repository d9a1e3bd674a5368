"""Elasticsearch's search language for the simulator: dates and date math,
field lookup in documents, the query DSL subset, sorting, aggregations,
_source filtering, the fields option and filter_path. No routes here; the
routes and the reference documentation are in elastic.py.

Documents are read through their index's mapping (Doc.index.kinds, a dict
of dotted field path -> kind), so that flat dotted keys
("kibana.alert.workflow_status"), nested objects (host.name) and arrays
(related.ip) all answer to the same field name, as they do in Elasticsearch.
Kinds: "date", "long", "float", "boolean", "keyword", "text", "ip" and
"object".
"""

import calendar
import datetime
import fnmatch
import ipaddress
import json
import re

NODE_ID = "c2ltdWxhdG9yLW5vZGUx"
LONG_MAX = 9223372036854775807
LONG_MIN = -9223372036854775808
DOUBLE_MAX = 1.7976931348623157e308
NUMERIC = ("long", "float", "date", "boolean")


# --- errors -----------------------------------------------------------------

class EsError(Exception):
    """An Elasticsearch error answer: {"error": {...}, "status": N}.

    root is the root_cause entry; by default the error itself without its
    caused_by, which is what Elasticsearch reports for request-level errors.
    """

    def __init__(self, status, etype, reason, root=None, **extra):
        super().__init__(reason)
        self.status = status
        self.etype = etype
        self.reason = reason
        self.extra = extra
        if root is None:
            root = {"type": etype, "reason": reason}
            root.update((k, v) for k, v in extra.items() if k != "caused_by")
        self.root = root

    def body(self):
        error = {"root_cause": [self.root], "type": self.etype,
                 "reason": self.reason}
        error.update(self.extra)
        return {"error": error, "status": self.status}


def shard_failure(index, cause, status=400):
    """A failure on the shards: search_phase_execution_exception wrapping
    the shard's own error, as Elasticsearch reports query-phase errors."""
    return EsError(status, "search_phase_execution_exception",
                   "all shards failed", root=cause, phase="query",
                   grouped=True,
                   failed_shards=[{"shard": 0, "index": index,
                                   "node": NODE_ID, "reason": cause}])


def parsing_error(reason, body_text="", name=None, **extra):
    line, col = locate(body_text, name)
    return EsError(400, "parsing_exception", reason, line=line, col=col,
                   **extra)


def locate(text, name):
    """Line and column of the first "name" key in the request text; an
    approximation of the parser position Elasticsearch reports."""
    if not text or not name:
        return 1, 1
    at = text.find(json.dumps(name))
    if at < 0:
        return 1, 1
    line = text.count("\n", 0, at) + 1
    col = at - (text.rfind("\n", 0, at) + 1) + 1
    return line, col


def token_name(value):
    """The JSON token Elasticsearch names in "Unknown key for a X" errors."""
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if isinstance(value, (int, float)):
        return "VALUE_NUMBER"
    if value is None:
        return "VALUE_NULL"
    return "VALUE_STRING"


# --- dates ------------------------------------------------------------------

_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?")
_MATH_OP = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")
_EPOCH = datetime.datetime(1970, 1, 1)


_CANONICAL = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z")
EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()


def parse_date(text):
    """ISO 8601 (strict_date_optional_time) to epoch milliseconds, or None."""
    m = _CANONICAL.fullmatch(text)
    if m:
        # The form Elastic writes dates in, parsed without the general path.
        year, month, day, hour, minute, second, millis = map(int, m.groups())
        if hour < 24 and minute < 60 and second < 60:
            try:
                days = datetime.date(year, month, day).toordinal() - \
                    EPOCH_ORDINAL
            except ValueError:
                return None
            return ((days * 24 + hour) * 60 + minute) * 60000 + \
                second * 1000 + millis
    m = _DATE.fullmatch(text)
    if not m:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day),
                                   int(hour or 0), int(minute or 0),
                                   int(second or 0))
    except ValueError:
        return None
    millis = calendar.timegm(moment.timetuple()) * 1000
    if frac:
        millis += int((frac + "00")[:3])
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = int(digits[:2]) * 60 + int(digits[2:4] or 0)
        millis -= sign * offset * 60000
    return millis


def parse_date_value(value, fmt=None):
    """A date as Elasticsearch's default format reads it
    (strict_date_optional_time||epoch_millis): epoch milliseconds or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if fmt == "epoch_second":
            return int(value * 1000)
        return int(value)
    if not isinstance(value, str):
        return None
    if fmt in ("epoch_millis", "epoch_second") or (
            value.lstrip("-").isdigit() and fmt is None):
        try:
            number = int(value)
        except ValueError:
            return None
        return number * 1000 if fmt == "epoch_second" else number
    return parse_date(value)


def format_date(millis):
    """Epoch milliseconds to the form Elasticsearch prints dates in."""
    days, rest = divmod(int(millis), 86400000)
    try:
        day = datetime.date.fromordinal(days + EPOCH_ORDINAL)
    except (ValueError, OverflowError):
        return str(millis)
    seconds, ms = divmod(rest, 1000)
    hour, seconds = divmod(seconds, 3600)
    minute, second = divmod(seconds, 60)
    return (f"{day.year:04d}-{day.month:02d}-{day.day:02d}T{hour:02d}:"
            f"{minute:02d}:{second:02d}.{ms:03d}Z")


def _add_months(moment, months):
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(moment.day, last))


def _round_down(moment, unit):
    if unit == "y":
        return moment.replace(month=1, day=1, hour=0, minute=0, second=0,
                              microsecond=0)
    if unit == "M":
        return moment.replace(day=1, hour=0, minute=0, second=0,
                              microsecond=0)
    if unit == "w":
        moment = moment - datetime.timedelta(days=moment.weekday())
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in "hH":
        return moment.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0)


def _add(moment, amount, unit):
    if unit == "y":
        return _add_months(moment, 12 * amount)
    if unit == "M":
        return _add_months(moment, amount)
    seconds = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60,
               "s": 1}[unit]
    return moment + datetime.timedelta(seconds=seconds * amount)


def date_math(text, now_ms, round_up=False, fmt=None):
    """Elasticsearch date math ("now-15m", "now/d", "2026-11-22||+1h") to
    epoch milliseconds. round_up picks the last millisecond of a rounded
    unit, as gt and lte do; gte and lt round down. ValueError if bad."""
    if not isinstance(text, str):
        value = parse_date_value(text, fmt)
        if value is None:
            raise ValueError(f"failed to parse date field [{text}]")
        return value
    if text.startswith("now"):
        base, ops = now_ms, text[3:]
    else:
        anchor, sep, ops = text.partition("||")
        base = parse_date_value(anchor, fmt)
        if base is None:
            raise ValueError(f"failed to parse date field [{text}] with "
                             "format [strict_date_optional_time||"
                             "epoch_millis]")
        if not sep:
            return base
    moment = _EPOCH + datetime.timedelta(milliseconds=base)
    pos = 0
    while pos < len(ops):
        m = _MATH_OP.match(ops, pos)
        if not m:
            raise ValueError(f"operator not supported for date math [{text}]")
        sign, amount, unit, rounding = m.groups()
        if rounding:
            start = _round_down(moment, rounding)
            if round_up:
                moment = _add(start, 1, rounding) - \
                    datetime.timedelta(milliseconds=1)
            else:
                moment = start
        else:
            moment = _add(moment, int(amount) * (-1 if sign == "-" else 1),
                          unit)
        pos = m.end()
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + \
        delta.microseconds // 1000


# --- field lookup -----------------------------------------------------------

_PATHS = {}


def path_keys(field):
    """For a dotted field: keys[i][j] is segments i..j-1 joined by dots,
    every key a document may use to hold part of the path."""
    keys = _PATHS.get(field)
    if keys is None:
        parts = field.split(".")
        n = len(parts)
        keys = tuple(tuple(".".join(parts[i:j]) for j in range(i + 1, n + 1))
                     for i in range(n))
        _PATHS[field] = keys
    return keys


def _leaves(value, out, deep):
    if isinstance(value, list):
        for item in value:
            _leaves(item, out, deep)
    elif isinstance(value, dict):
        if deep:
            for item in value.values():
                _leaves(item, out, deep)
    elif value is not None:
        out.append(value)


def _collect(obj, keys, i, out, deep):
    # A key may hold one or several path segments ("kibana.alert" then
    # "workflow_status", or "kibana" then "alert" then ...): try each split.
    n = len(keys)
    j = i + 1
    for key in keys[i]:
        if key in obj:
            value = obj[key]
            if j == n:
                _leaves(value, out, deep)
            else:
                _descend(value, keys, j, out, deep)
        j += 1


def _descend(value, keys, j, out, deep):
    if isinstance(value, dict):
        _collect(value, keys, j, out, deep)
    elif isinstance(value, list):
        for item in value:
            _descend(item, keys, j, out, deep)


def raw_values(source, field, deep=False):
    """The concrete values at field, whatever mix of flat dotted keys,
    objects and arrays holds them; with deep, also those under it."""
    out = []
    if isinstance(source, dict):
        _collect(source, path_keys(field), 0, out, deep)
    return out


def normalize(kind, raw):
    """Values as the field's kind compares them; unusable ones are dropped."""
    out = []
    for v in raw:
        if kind == "keyword" or kind == "text" or kind == "ip":
            if isinstance(v, bool):
                out.append("true" if v else "false")
            elif isinstance(v, (int, float)):
                out.append(json.dumps(v))
            elif isinstance(v, str):
                out.append(v)
        elif kind == "date":
            ms = parse_date_value(v)
            if ms is not None:
                out.append(ms)
        elif kind in ("long", "float"):
            if isinstance(v, bool):
                continue
            if isinstance(v, (int, float)):
                out.append(v)
            elif isinstance(v, str):
                try:
                    out.append(float(v))
                except ValueError:
                    pass
        elif kind == "boolean":
            if isinstance(v, bool):
                out.append(v)
            elif v in ("true", "false"):
                out.append(v == "true")
    return tuple(out)


def field_kind(index, field):
    """(kind, field actually read): a "x.keyword" sub-field reads x."""
    kind = index.kinds.get(field)
    if kind is None and field.endswith(".keyword"):
        base = field[:-8]
        if index.kinds.get(base) in ("keyword", "text"):
            return "keyword", base
    return kind, field


def values(doc, field):
    """The doc's normalized values at field (cached on the doc)."""
    cache = doc.cache
    if cache is None:
        cache = doc.cache = {}
    found = cache.get(field)
    if found is None:
        kind, real = field_kind(doc.index, field)
        if kind is None or kind == "object":
            found = ()
        else:
            found = normalize(kind, raw_values(doc.source, real))
        cache[field] = found
    return found


def exists(doc, field):
    if values(doc, field):
        return True
    if doc.index.kinds.get(field) == "object":
        return bool(raw_values(doc.source, field, deep=True))
    return False


def tokens(text):
    return re.findall(r"\w+", text.lower())


# --- queries ----------------------------------------------------------------

class Context:
    """What compiling a query needs: the clock and the request's text."""

    def __init__(self, now_ms, text=""):
        self.now_ms = now_ms
        self.text = text


SUPPORTED = ("bool", "term", "terms", "match", "match_phrase", "range",
             "exists", "ids", "match_all", "match_none", "prefix",
             "wildcard", "constant_score")
# Real query types the simulator does not evaluate: refused with a message
# that says so, not with Elasticsearch's "unknown query".
KNOWN_UNSUPPORTED = {
    "query_string", "simple_query_string", "multi_match", "nested",
    "has_child", "has_parent", "parent_id", "geo_bounding_box",
    "geo_distance", "geo_polygon", "geo_shape", "shape", "script",
    "script_score", "function_score", "dis_max", "boosting", "regexp",
    "fuzzy", "terms_set", "intervals", "more_like_this", "distance_feature",
    "pinned", "rank_feature", "wrapper", "span_term", "span_near",
    "span_or", "span_not", "span_first", "span_multi", "span_containing",
    "span_within", "field_masking_span", "combined_fields", "percolate",
    "knn", "match_bool_prefix", "match_phrase_prefix", "sparse_vector",
    "semantic", "text_expansion", "weighted_tokens", "type", "rule",
}
MISSING = object()


def unsupported(name):
    return EsError(400, "illegal_argument_exception",
                   f"[{name}] query is not supported by the soarutils "
                   "simulator")


def match_all(doc):
    return True


def match_none(doc):
    return False


def compile_query(query, ctx):
    """A predicate doc -> bool for a query object; EsError if malformed."""
    if query is None:
        return match_all
    if not isinstance(query, dict):
        raise parsing_error("[_na] query malformed, must start with "
                            "start_object", ctx.text)
    if not query:
        return match_all
    if len(query) != 1:
        first, second = list(query)[:2]
        raise parsing_error(f"[{first}] malformed query, expected "
                            "[END_OBJECT] but found [FIELD_NAME]", ctx.text,
                            second)
    (name, spec), = query.items()
    if name in KNOWN_UNSUPPORTED:
        raise unsupported(name)
    builder = BUILDERS.get(name)
    if builder is None:
        line, col = locate(ctx.text, name)
        raise EsError(400, "parsing_exception", f"unknown query [{name}]",
                      line=line, col=col, caused_by={
                          "type": "named_object_not_found_exception",
                          "reason": f"[{line}:{col}] unknown field "
                                    f"[{name}]"})
    return builder(spec, ctx)


def field_spec(name, spec, ctx, value_key="value"):
    """(field, value, options) of {"f": v} or {"f": {"value": v, ...}}."""
    if not isinstance(spec, dict):
        raise parsing_error(f"[{name}] query malformed, no start_object "
                            "after query name", ctx.text, name)
    fields = [k for k in spec if k not in ("boost", "_name")]
    if len(fields) != 1:
        raise parsing_error(f"[{name}] query doesn't support multiple "
                            f"fields, found [{', '.join(fields)}]"
                            if fields else
                            f"[{name}] query malformed, no field", ctx.text,
                            name)
    field = fields[0]
    value = spec[field]
    if isinstance(value, dict):
        options = value
        if value_key not in options:
            raise parsing_error(f"[{name}] query does not support "
                                f"[{', '.join(options) or 'empty'}]",
                                ctx.text, name)
        return field, options[value_key], options
    return field, value, {}


def by_field(field, make):
    """A predicate testing the doc's values at field with a matcher that
    make(kind) builds once per kind (None: nothing matches)."""
    matchers = {}

    def pred(doc):
        kind = field_kind(doc.index, field)[0]
        matcher = matchers.get(kind, MISSING)
        if matcher is MISSING:
            matcher = matchers[kind] = make(kind)
        if matcher is None:
            return False
        return matcher(values(doc, field))
    return pred


def coerce(kind, value, ctx, lenient=True):
    """A query value as kind compares it; MISSING if it cannot be one."""
    if value is None or isinstance(value, (dict, list)):
        return MISSING
    if kind in ("keyword", "text", "ip"):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return json.dumps(value)
        return value
    if kind == "date":
        try:
            return date_math(value, ctx.now_ms)
        except ValueError:
            return MISSING
    if kind in ("long", "float"):
        if isinstance(value, bool):
            return MISSING
        try:
            return float(value)
        except (TypeError, ValueError):
            return MISSING
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        return MISSING
    return MISSING


def equality_matcher(kind, want, case_insensitive=False):
    if want is MISSING:
        return None
    if kind == "text":
        wanted = set(tokens(want))
        return lambda vals: any(wanted & set(tokens(v)) for v in vals)
    if kind == "ip" and "/" in want:
        try:
            net = ipaddress.ip_network(want, strict=False)
        except ValueError:
            return None
        return lambda vals: any(_in_net(v, net) for v in vals)
    if case_insensitive and isinstance(want, str):
        low = want.lower()
        return lambda vals: any(v.lower() == low for v in vals)
    return lambda vals: want in vals


def _in_net(text, net):
    try:
        return ipaddress.ip_address(text) in net
    except ValueError:
        return False


def q_term(spec, ctx):
    field, value, options = field_spec("term", spec, ctx)
    insensitive = bool(options.get("case_insensitive"))
    return by_field(field, lambda kind: equality_matcher(
        kind, coerce(kind, value, ctx), insensitive))


def q_terms(spec, ctx):
    if not isinstance(spec, dict):
        raise parsing_error("[terms] query malformed, no start_object after "
                            "query name", ctx.text, "terms")
    fields = [k for k in spec if k not in ("boost", "_name")]
    if len(fields) != 1:
        raise parsing_error("[terms] query does not support multiple fields",
                            ctx.text, "terms")
    field = fields[0]
    wanted = spec[field]
    if isinstance(wanted, dict):
        raise unsupported("terms lookup")
    if not isinstance(wanted, list):
        raise parsing_error(f"[terms] query does not support [{field}]",
                            ctx.text, "terms")

    def make(kind):
        coerced = [coerce(kind, v, ctx) for v in wanted]
        coerced = [v for v in coerced if v is not MISSING]
        if kind == "ip" and any("/" in v for v in coerced):
            tests = [equality_matcher(kind, v) for v in coerced]
            tests = [t for t in tests if t]
            return lambda vals: any(t(vals) for t in tests)
        if kind == "text":
            wanted_tokens = {t for v in coerced for t in tokens(v)}
            return lambda vals: any(wanted_tokens & set(tokens(v))
                                    for v in vals)
        group = set(coerced)
        if not group:
            return None
        return lambda vals: any(v in group for v in vals)
    return by_field(field, make)


def q_match(spec, ctx, phrase=False):
    name = "match_phrase" if phrase else "match"
    field, value, options = field_spec(name, spec, ctx, "query")
    operator = str(options.get("operator", "or")).lower()

    def make(kind):
        if kind == "text":
            if not isinstance(value, str):
                return None
            wanted = tokens(value)
            if not wanted:
                return None
            if phrase:
                n = len(wanted)
                return lambda vals: any(
                    any(t[i:i + n] == wanted for i in range(len(t) - n + 1))
                    for t in map(tokens, vals))
            if operator == "and":
                return lambda vals: any(set(wanted) <= set(tokens(v))
                                        for v in vals)
            return lambda vals: any(set(wanted) & set(tokens(v))
                                    for v in vals)
        return equality_matcher(kind, coerce(kind, value, ctx))
    return by_field(field, make)


def q_match_phrase(spec, ctx):
    return q_match(spec, ctx, phrase=True)


RANGE_KEYS = {"gt", "gte", "lt", "lte", "from", "to", "include_lower",
              "include_upper", "format", "time_zone", "boost", "relation",
              "_name"}


def range_bounds(spec, ctx):
    """(field, bounds, format) of a range query, from/to mapped to
    gte/lte (or gt/lt without include_lower/include_upper)."""
    if not isinstance(spec, dict):
        raise parsing_error("[range] query malformed, no start_object after "
                            "query name", ctx.text, "range")
    fields = [k for k in spec if k not in ("boost", "_name")]
    if len(fields) != 1:
        raise parsing_error("[range] query doesn't support multiple fields",
                            ctx.text, "range")
    field = fields[0]
    options = spec[field]
    if not isinstance(options, dict):
        raise parsing_error(f"[range] query does not support [{field}]",
                            ctx.text, "range")
    unknown = [k for k in options if k not in RANGE_KEYS]
    if unknown:
        raise parsing_error(f"[range] query does not support [{unknown[0]}]",
                            ctx.text, unknown[0])
    bounds = {k: options[k] for k in ("gt", "gte", "lt", "lte")
              if options.get(k) is not None}
    if options.get("from") is not None:
        bounds["gte" if options.get("include_lower", True) else "gt"] = \
            options["from"]
    if options.get("to") is not None:
        bounds["lte" if options.get("include_upper", True) else "lt"] = \
            options["to"]
    return field, bounds, options.get("format")


def date_interval(bounds, fmt, ctx):
    """Inclusive (lo, hi) epoch milliseconds for date range bounds."""
    lo, hi = None, None
    try:
        for op, value in bounds.items():
            ms = date_math(value, ctx.now_ms, round_up=op in ("gt", "lte"),
                           fmt=fmt)
            if op == "gt":
                ms += 1
            elif op == "lt":
                ms -= 1
            if op in ("gt", "gte"):
                lo = ms if lo is None else max(lo, ms)
            else:
                hi = ms if hi is None else min(hi, ms)
    except ValueError as exc:
        raise EsError(400, "parse_exception", str(exc)) from None
    return lo, hi


def q_range(spec, ctx):
    field, bounds, fmt = range_bounds(spec, ctx)

    def make(kind):
        if kind == "date":
            lo, hi = date_interval(bounds, fmt, ctx)
            lo = LONG_MIN if lo is None else lo
            hi = LONG_MAX if hi is None else hi
            return lambda vals: any(lo <= v <= hi for v in vals)
        tests = []
        for op, value in bounds.items():
            bound = coerce(kind, value, ctx)
            if bound is MISSING:
                return None
            tests.append((op, bound))
        ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
               "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
        checks = [(ops[op], bound) for op, bound in tests]
        if kind not in ("long", "float", "keyword", "ip", "boolean"):
            return None
        return lambda vals: any(all(f(v, b) for f, b in checks)
                                for v in vals)
    return by_field(field, make)


def q_exists(spec, ctx):
    if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
        raise parsing_error("[exists] must be provided with a [field]",
                            ctx.text, "exists")
    field = spec["field"]
    if "*" in field:
        return lambda doc: any(exists(doc, f) for f in list(doc.index.kinds)
                               if fnmatch.fnmatchcase(f, field))
    return lambda doc: exists(doc, field)


def q_ids(spec, ctx):
    if not isinstance(spec, dict) or not isinstance(spec.get("values"),
                                                    list):
        raise parsing_error("[ids] query malformed, no values", ctx.text,
                            "ids")
    wanted = {str(v) for v in spec["values"]}
    return lambda doc: doc.id in wanted


def q_match_all(spec, ctx):
    return match_all


def q_match_none(spec, ctx):
    return match_none


def q_prefix(spec, ctx):
    field, value, options = field_spec("prefix", spec, ctx)
    insensitive = bool(options.get("case_insensitive"))

    def make(kind):
        if kind not in ("keyword", "text", "ip") or \
                not isinstance(value, str):
            return None
        if insensitive:
            low = value.lower()
            return lambda vals: any(v.lower().startswith(low) for v in vals)
        return lambda vals: any(v.startswith(value) for v in vals)
    return by_field(field, make)


def q_wildcard(spec, ctx):
    field, value, options = field_spec("wildcard", spec, ctx)
    insensitive = bool(options.get("case_insensitive"))

    def make(kind):
        if kind not in ("keyword", "text", "ip") or \
                not isinstance(value, str):
            return None
        pattern = re.compile(fnmatch.translate(value),
                             re.IGNORECASE if insensitive else 0)
        return lambda vals: any(pattern.match(v) for v in vals)
    return by_field(field, make)


def q_constant_score(spec, ctx):
    if not isinstance(spec, dict) or "filter" not in spec:
        raise parsing_error("[constant_score] requires a 'filter' element",
                            ctx.text, "constant_score")
    return compile_query(spec["filter"], ctx)


def clauses(spec, key, ctx):
    value = spec.get(key)
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise parsing_error(f"[bool] query does not support [{key}]",
                            ctx.text, key)
    return [compile_query(q, ctx) for q in value]


def minimum_should_match(raw, count):
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, int):
        n = raw
    else:
        text = str(raw).strip()
        if text.endswith("%"):
            percent = int(text[:-1])
            n = int(count * abs(percent) / 100)
            if percent < 0:
                n = count - n
        else:
            n = int(text)
    if n < 0:
        n = count + n
    return max(n, 0)


BOOL_KEYS = {"must", "filter", "should", "must_not", "minimum_should_match",
             "boost", "_name", "adjust_pure_negative"}


def q_bool(spec, ctx):
    if not isinstance(spec, dict):
        raise parsing_error("[bool] query malformed, no start_object after "
                            "query name", ctx.text, "bool")
    for key in spec:
        if key not in BOOL_KEYS:
            raise parsing_error(f"[bool] query does not support [{key}]",
                                ctx.text, key)
    required = clauses(spec, "must", ctx) + clauses(spec, "filter", ctx)
    excluded = clauses(spec, "must_not", ctx)
    optional = clauses(spec, "should", ctx)
    raw = spec.get("minimum_should_match")
    if raw is None:
        need = 0 if required else (1 if optional else 0)
    else:
        try:
            need = minimum_should_match(raw, len(optional))
        except ValueError:
            raise parsing_error("[bool] failed to parse "
                                "minimum_should_match", ctx.text,
                                "minimum_should_match") from None
    if need > len(optional):
        return match_none

    def pred(doc):
        for q in required:
            if not q(doc):
                return False
        for q in excluded:
            if q(doc):
                return False
        if need:
            hits = 0
            for q in optional:
                if q(doc):
                    hits += 1
                    if hits >= need:
                        return True
            return False
        return True
    return pred


BUILDERS = {
    "bool": q_bool, "term": q_term, "terms": q_terms, "match": q_match,
    "match_phrase": q_match_phrase, "range": q_range, "exists": q_exists,
    "ids": q_ids, "match_all": q_match_all, "match_none": q_match_none,
    "prefix": q_prefix, "wildcard": q_wildcard,
    "constant_score": q_constant_score,
}


def split_time_range(query, field, ctx):
    """Split the top-level ranges on field out of a query: (residual query,
    inclusive (lo, hi) epoch ms). Only filter and must clauses of a
    top-level bool (or a bare range) are split; (query, None) otherwise.
    The residual query gives the same hits as the query once the interval
    is applied, which lets a search reuse one evaluation of the residual
    across pages that move only the time bounds."""
    if not isinstance(query, dict) or len(query) != 1:
        return query, None
    (name, spec), = query.items()

    def as_range(clause):
        if isinstance(clause, dict) and len(clause) == 1 and \
                isinstance(clause.get("range"), dict):
            inner = clause["range"]
            keys = [k for k in inner if k not in ("boost", "_name")]
            if keys == [field] and isinstance(inner[field], dict) and \
                    not set(inner[field]) - {"gt", "gte", "lt", "lte",
                                              "format"}:
                return inner
        return None
    if name == "range":
        found = as_range(query)
        if found is None:
            return query, None
        _, bounds, fmt = range_bounds(found, ctx)
        return {"match_all": {}}, date_interval(bounds, fmt, ctx)
    if name != "bool" or not isinstance(spec, dict) or \
            set(spec) - BOOL_KEYS:
        return query, None
    residual = dict(spec)
    lo, hi, split = None, None, False
    for key in ("filter", "must"):
        items = spec.get(key)
        if items is None:
            continue
        listed = [items] if isinstance(items, dict) else items
        if not isinstance(listed, list):
            return query, None
        kept = []
        for clause in listed:
            found = as_range(clause)
            if found is None:
                kept.append(clause)
                continue
            _, bounds, fmt = range_bounds(found, ctx)
            a, b = date_interval(bounds, fmt, ctx)
            if a is not None:
                lo = a if lo is None else max(lo, a)
            if b is not None:
                hi = b if hi is None else min(hi, b)
            split = True
        residual[key] = kept
    if not split:
        return query, None
    if spec.get("should") and spec.get("minimum_should_match") is None:
        # Removing required clauses would change what "should" means.
        if not residual.get("filter") and not residual.get("must"):
            return query, None
    return {"bool": residual}, (lo, hi)


# --- sorting ----------------------------------------------------------------

class Rev:
    """A value that sorts in reverse: descending text in ascending keys."""

    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def __lt__(self, other):
        return other.v < self.v

    def __gt__(self, other):
        return other.v > self.v

    def __eq__(self, other):
        return isinstance(other, Rev) and self.v == other.v

    def __hash__(self):
        return hash(self.v)


class SortField:
    __slots__ = ("name", "desc", "missing_first", "missing_value",
                 "unmapped_type", "fmt", "mode")

    def __init__(self, name, desc=False):
        self.name = name
        self.desc = desc
        self.missing_first = False
        self.missing_value = MISSING
        self.unmapped_type = None
        self.fmt = None
        self.mode = None

    def spec(self):
        return [self.name, self.desc, self.missing_first,
                None if self.missing_value is MISSING else
                self.missing_value, self.unmapped_type, self.fmt,
                self.mode]


SORT_OPTIONS = {"order", "missing", "unmapped_type", "format", "mode",
                "numeric_type", "nested"}


def parse_sort(raw, text=""):
    """Sort specs from the search body's "sort" (string, object, array)."""
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(SortField(item, desc=item == "_score"))
            continue
        if not isinstance(item, dict) or len(item) != 1:
            raise parsing_error("[sort] malformed sort element", text,
                                "sort")
        (name, options), = item.items()
        field = SortField(name, desc=name == "_score")
        if isinstance(options, str):
            options = {"order": options}
        if not isinstance(options, dict):
            raise parsing_error(f"[{name}] malformed sort options", text,
                                name)
        for key in options:
            if key not in SORT_OPTIONS:
                raise parsing_error(f"[field_sort] unknown field [{key}]",
                                    text, key)
        order = options.get("order")
        if order is not None:
            if order not in ("asc", "desc"):
                raise EsError(400, "illegal_argument_exception",
                              f"Unknown SortOrder [{order}]")
            field.desc = order == "desc"
        missing = options.get("missing")
        if missing == "_first":
            field.missing_first = True
        elif missing not in (None, "_last"):
            field.missing_value = missing
        field.unmapped_type = options.get("unmapped_type")
        field.fmt = options.get("format")
        field.mode = options.get("mode")
        if "nested" in options:
            raise unsupported("nested sort")
        out.append(field)
    return out


def check_sortable(fields, index):
    """EsError (as a shard failure) if index cannot sort on fields."""
    for f in fields:
        if f.name in ("_score", "_doc", "_shard_doc"):
            continue
        kind = field_kind(index, f.name)[0]
        if kind is None:
            if f.unmapped_type:
                continue
            raise shard_failure(index.name, {
                "type": "query_shard_exception",
                "reason": f"No mapping found for [{f.name}] in order to "
                          "sort on", "index_uuid": index.uuid,
                "index": index.name})
        if kind == "text":
            raise shard_failure(index.name, {
                "type": "illegal_argument_exception",
                "reason": f"Text fields are not optimised for operations "
                          f"that require per-document field data like "
                          f"aggregations and sorting, so these operations "
                          f"are disabled by default. Please use a keyword "
                          f"field instead. Alternatively, set "
                          f"fielddata=true on [{f.name}] in order to load "
                          f"field data by uninverting the inverted index. "
                          f"Note that this can use significant memory."})
        if kind == "object":
            raise shard_failure(index.name, {
                "type": "illegal_argument_exception",
                "reason": f"Field [{f.name}] of type [object] is not "
                          "supported for sorting"})


def shard_doc(ordinal, seq):
    return (ordinal << 32) | seq


def _component(f, kind, vals, doc, ordinal):
    """(key part, printed sort value) of one sort field for one doc."""
    name = f.name
    if name == "_score":
        return (0, -1.0 if f.desc else 1.0), 1.0
    if name == "_doc":
        return (0, -doc.seq if f.desc else doc.seq), doc.seq
    if name == "_shard_doc":
        value = shard_doc(ordinal, doc.seq)
        return (0, -value if f.desc else value), value
    if not vals and f.missing_value is not MISSING and kind is not None:
        vals = normalize(kind, [f.missing_value])
    if not vals:
        flag = -1 if f.missing_first else 1
        if kind in NUMERIC or (kind is None and f.unmapped_type in (
                "long", "date", "float", "double", "integer", "boolean")):
            sentinel = LONG_MAX if (flag == 1) != f.desc else LONG_MIN
            if kind == "float":
                sentinel = DOUBLE_MAX if sentinel == LONG_MAX \
                    else -DOUBLE_MAX
            return (flag, 0), sentinel
        return (flag, 0), None
    mode = f.mode or ("max" if f.desc else "min")
    value = max(vals) if mode == "max" else min(vals)
    printed = value
    if kind == "boolean":
        value = int(value)
        printed = value
    elif kind == "date":
        printed = format_date(value) if f.fmt else value
    elif kind == "long" and isinstance(value, float) and value.is_integer():
        printed = int(value)
    if f.desc:
        value = Rev(value) if isinstance(value, str) else -value
    return (0, value), printed


def make_keyfn(fields):
    """key(doc, ordinal) -> (sort key tuple, printed sort values)."""
    def keyfn(doc, ordinal):
        key = []
        printed = []
        for f in fields:
            if f.name in ("_score", "_doc", "_shard_doc"):
                kind, vals = None, ()
            else:
                kind = field_kind(doc.index, f.name)[0]
                vals = values(doc, f.name) if kind is not None else ()
            part, shown = _component(f, kind, vals, doc, ordinal)
            key.extend(part)
            printed.append(shown)
        return tuple(key), printed
    return keyfn


def after_key(fields, after, kinds, index_name):
    """The key tuple of a search_after array, to bisect the sorted hits."""
    if len(after) != len(fields):
        raise shard_failure(index_name, {
            "type": "illegal_argument_exception",
            "reason": f"search_after has {len(after)} value(s) but sort "
                      f"has {len(fields)}."})
    key = []
    for f, value, kind in zip(fields, after, kinds):
        bad = shard_failure(index_name, {
            "type": "illegal_argument_exception",
            "reason": f"Failed to parse search_after value for field "
                      f"[{f.name}]."})
        if f.name in ("_doc", "_shard_doc", "_score"):
            if isinstance(value, bool) or not isinstance(
                    value, (int, float, str)):
                raise bad
            try:
                number = float(value) if f.name == "_score" else int(value)
            except ValueError:
                raise bad from None
            if f.name == "_score":
                key.extend((0, -1.0 if f.desc else 1.0))
            else:
                key.extend((0, -number if f.desc else number))
            continue
        flag = -1 if f.missing_first else 1
        if value is None or (kind in NUMERIC and isinstance(
                value, (int, float)) and not isinstance(value, bool)
                and value in (LONG_MAX, LONG_MIN, DOUBLE_MAX, -DOUBLE_MAX)):
            key.extend((flag, 0))
            continue
        if kind == "date":
            number = parse_date_value(value)
            if number is None:
                raise bad
        elif kind in ("long", "float"):
            if isinstance(value, bool):
                raise bad
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise bad from None
        elif kind == "boolean":
            if isinstance(value, bool):
                number = int(value)
            elif value in (0, 1, "true", "false"):
                number = 1 if value in (1, "true") else 0
            else:
                raise bad
        else:
            if isinstance(value, (dict, list)):
                raise bad
            number = value if isinstance(value, str) else json.dumps(value)
        if f.desc:
            number = Rev(number) if isinstance(number, str) else -number
        key.extend((0, number))
    return tuple(key)


# --- aggregations -----------------------------------------------------------

AGG_TYPES = ("terms", "min", "max", "avg", "sum", "value_count",
             "cardinality", "filter", "missing")


def compile_aggs(aggs, ctx):
    """[(name, type, spec, sub-aggregations or None)] for an aggs object."""
    if not isinstance(aggs, dict):
        raise parsing_error("Expected [START_OBJECT] under [aggs], but got "
                            f"a [{token_name(aggs)}]", ctx.text, "aggs")
    out = []
    for name, body in aggs.items():
        if not isinstance(body, dict):
            raise parsing_error(f"Expected [START_OBJECT] under [{name}], "
                                f"but got a [{token_name(body)}]", ctx.text,
                                name)
        kinds = [k for k in body if k not in ("aggs", "aggregations",
                                              "meta")]
        if len(kinds) != 1:
            raise parsing_error(f"Expected [START_OBJECT] under [{name}], "
                                "but found several aggregation types",
                                ctx.text, name)
        kind = kinds[0]
        if kind not in AGG_TYPES:
            line, col = locate(ctx.text, kind)
            raise EsError(400, "parsing_exception",
                          f"Unknown aggregation type [{kind}]", line=line,
                          col=col)
        spec = body[kind]
        subs = body.get("aggs", body.get("aggregations"))
        compiled = compile_aggs(subs, ctx) if subs else None
        if kind == "filter":
            spec = compile_query(spec, ctx)
        elif not isinstance(spec, dict) or not isinstance(
                spec.get("field"), str):
            raise parsing_error(f"[{kind}] aggregation needs a [field]",
                                ctx.text, kind)
        out.append((name, kind, spec, compiled))
    return out


def _agg_values(docs, field):
    out = []
    kind = None
    for doc in docs:
        vals = values(doc, field)
        if vals:
            out.extend(vals)
            if kind is None:
                kind = field_kind(doc.index, field)[0]
    return out, kind


def _with_string(result, value, kind):
    if kind == "date" and value is not None:
        result["value_as_string"] = format_date(int(value))
    return result


def run_aggs(compiled, docs):
    out = {}
    for name, kind, spec, subs in compiled:
        if kind == "filter":
            matched = [d for d in docs if spec(d)]
            result = {"doc_count": len(matched)}
            if subs:
                result.update(run_aggs(subs, matched))
        elif kind == "missing":
            matched = [d for d in docs if not values(d, spec["field"])]
            result = {"doc_count": len(matched)}
            if subs:
                result.update(run_aggs(subs, matched))
        elif kind == "terms":
            result = _terms(spec, subs, docs)
        else:
            vals, field_type = _agg_values(docs, spec["field"])
            numbers = [float(v) for v in vals if not isinstance(v, str)]
            if kind == "value_count":
                result = {"value": len(vals)}
            elif kind == "cardinality":
                result = {"value": len(set(vals))}
            elif kind == "sum":
                result = {"value": float(sum(numbers))}
            elif kind == "avg":
                result = {"value": (sum(numbers) / len(numbers))
                          if numbers else None}
            else:
                pick = min if kind == "min" else max
                value = float(pick(numbers)) if numbers else None
                result = _with_string({"value": value}, value, field_type)
        out[name] = result
    return out


def _terms(spec, subs, docs):
    field = spec["field"]
    size = spec.get("size", 10)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise EsError(400, "illegal_argument_exception",
                      "[size] must be greater than 0. Found [%s] in "
                      "[terms]" % size)
    groups = {}
    kind = None
    for doc in docs:
        vals = values(doc, field)
        if vals and kind is None:
            kind = field_kind(doc.index, field)[0]
        for v in set(vals):
            groups.setdefault(v, []).append(doc)
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]),
                                                    kv[0]))
    buckets = []
    for key, members in ranked[:size]:
        bucket = {"key": key, "doc_count": len(members)}
        if kind == "date":
            bucket["key_as_string"] = format_date(key)
        elif kind == "boolean":
            bucket = {"key": int(key), "key_as_string": str(key).lower(),
                      "doc_count": len(members)}
        elif kind == "long" and isinstance(key, float) and key.is_integer():
            bucket["key"] = int(key)
        if subs:
            bucket.update(run_aggs(subs, members))
        buckets.append(bucket)
    other = sum(len(m) for _, m in ranked[size:])
    return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other,
            "buckets": buckets}


# --- _source filtering, fields, filter_path ---------------------------------

def _pattern(text):
    return re.compile(fnmatch.translate(text))


def _literal_prefix(pattern):
    cut = [i for i in (pattern.find("*"), pattern.find("?"),
                       pattern.find("[")) if i >= 0]
    return pattern[:min(cut)] if cut else None


class SourceFilter:
    """_source: true/false, "pattern", ["patterns"] or {"includes",
    "excludes"}; path patterns match full dotted paths, whether the
    document spells them as flat keys or as objects. Decisions are
    memoized per path, since the documents of a page share their keys."""

    def __init__(self, spec):
        self.enabled = True
        includes, excludes = [], []
        if spec is False:
            self.enabled = False
        elif isinstance(spec, str):
            includes = [spec]
        elif isinstance(spec, list):
            includes = [p for p in spec if isinstance(p, str)]
        elif isinstance(spec, dict):
            inc = spec.get("includes", spec.get("include", []))
            exc = spec.get("excludes", spec.get("exclude", []))
            includes = [inc] if isinstance(inc, str) else list(inc or [])
            excludes = [exc] if isinstance(exc, str) else list(exc or [])
        elif spec is not None and spec is not True:
            raise parsing_error("[_source] malformed")
        self.has_includes = bool(includes)
        self.has_excludes = bool(excludes)
        self.include = self._regex(includes)
        self.exclude = self._regex(excludes)
        self.prefixes = [(p, _literal_prefix(p)) for p in includes]
        self.memo = {}

    @staticmethod
    def _regex(patterns):
        if not patterns:
            return None
        return re.compile("|".join(f"(?:{fnmatch.translate(p)})"
                                   for p in patterns))

    @property
    def whole(self):
        return self.enabled and not self.has_includes and \
            not self.has_excludes

    def apply(self, source):
        return self._filter(source, "", not self.has_includes)

    def _decide(self, path):
        """(excluded, included, may hold included paths below)."""
        found = self.memo.get(path)
        if found is None:
            excluded = bool(self.exclude and self.exclude.match(path))
            included = bool(self.include and self.include.match(path))
            below = path + "."
            deeper = False
            for pattern, literal in self.prefixes:
                if literal is None:
                    deeper = deeper or pattern.startswith(below)
                else:
                    deeper = deeper or literal.startswith(below) or \
                        below.startswith(literal)
            found = self.memo[path] = (excluded, included, deeper)
        return found

    def _filter(self, obj, prefix, included):
        out = {}
        for key, value in obj.items():
            path = prefix + key
            excluded, hit, deeper = self._decide(path)
            if excluded:
                continue
            inside = included or hit
            if not inside and not deeper:
                continue
            kept = self._value(value, path, inside)
            if kept is not MISSING:
                out[key] = kept
        return out

    def _value(self, value, path, inside):
        if isinstance(value, dict):
            if inside and not self.has_excludes:
                return value
            kept = self._filter(value, path + ".", inside)
            return kept if kept or inside else MISSING
        if isinstance(value, list):
            if inside and not self.has_excludes:
                return value
            items = [self._value(v, path, inside) for v in value]
            items = [v for v in items if v is not MISSING]
            return items if items or inside else MISSING
        return value if inside else MISSING


def flatten(source, prefix="", out=None):
    """Every concrete value of a document, by full dotted path."""
    if out is None:
        out = {}
    for key, value in source.items():
        _flatten_value(value, prefix + key, out)
    return out


def _flatten_value(value, path, out):
    if isinstance(value, dict):
        flatten(value, path + ".", out)
    elif isinstance(value, list):
        for item in value:
            _flatten_value(item, path, out)
    elif value is not None:
        out.setdefault(path, []).append(value)


def fetch_fields(doc, patterns):
    """The "fields" option: {path: [values]} for mapped leaf fields."""
    flat = flatten(doc.source)
    out = {}
    for path, raw in flat.items():
        if not any(p.match(path) for p in patterns):
            continue
        kind = doc.index.kinds.get(path)
        if kind is None or kind == "object":
            continue
        vals = list(normalize(kind, raw))
        if kind == "date":
            vals = [format_date(v) for v in vals]
        elif kind == "long":
            vals = [int(v) if isinstance(v, float) and v.is_integer() else v
                    for v in vals]
        if vals:
            out[path] = vals
    return out


def field_patterns(spec):
    if spec is None:
        return None
    if not isinstance(spec, list):
        raise parsing_error("[fields] must be an array")
    out = []
    for item in spec:
        if isinstance(item, dict):
            item = item.get("field")
        if not isinstance(item, str):
            raise parsing_error("[fields] entries are strings or objects "
                                "with a field")
        out.append(_pattern(item))
    return out


def filter_path(body, spec):
    """Elasticsearch's filter_path response filtering: comma-separated
    dotted patterns, "*" within a name, "**" across levels, "-" to
    exclude; arrays are transparent and empty objects are dropped."""
    patterns = [p.strip() for p in spec.split(",") if p.strip()]
    includes = [p.split(".") for p in patterns if not p.startswith("-")]
    excludes = [p[1:].split(".") for p in patterns if p.startswith("-")]
    result = body
    if includes:
        result = _keep(body, includes)
        if result is MISSING:
            result = {}
    if excludes:
        result = _drop(result, excludes)
        if result is MISSING:
            result = {}
    return result


def _advance(patterns, key):
    """(patterns for the children of key, whether key itself is done)."""
    nxt, done = [], False
    for p in patterns:
        if not p:
            continue
        head = p[0]
        if head == "**":
            nxt.append(p)
            rest = p[1:]
            if not rest:
                done = True
            else:
                more, fin = _advance([rest], key)
                nxt.extend(more)
                done = done or fin
        elif fnmatch.fnmatchcase(key, head):
            if len(p) == 1:
                done = True
            else:
                nxt.append(p[1:])
    return nxt, done


def _keep(value, patterns):
    if isinstance(value, list):
        items = [_keep(v, patterns) for v in value]
        items = [v for v in items if v is not MISSING]
        return items if items else MISSING
    if not isinstance(value, dict):
        return MISSING
    out = {}
    for key, child in value.items():
        nxt, done = _advance(patterns, key)
        if done:
            out[key] = child
        elif nxt:
            kept = _keep(child, nxt)
            if kept is not MISSING:
                out[key] = kept
    return out if out else MISSING


def _drop(value, patterns):
    if isinstance(value, list):
        return [v for v in (_drop(v, patterns) for v in value)
                if v is not MISSING]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, child in value.items():
        nxt, done = _advance(patterns, key)
        if done:
            continue
        out[key] = _drop(child, nxt) if nxt else child
    return out
