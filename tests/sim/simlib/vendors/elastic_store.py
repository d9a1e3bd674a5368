"""The simulated Elasticsearch cluster behind elastic.py: indices and their
documents, dynamic mapping, aliases, points in time, search execution and
_bulk. No routes here; elastic.py documents the behaviour.

Documents are never changed in place: a write makes a new Doc (sharing the
unchanged parts of the old source), so a point in time can keep the Doc
objects it saw and the per-Doc value caches stay valid.
"""

import base64
import bisect
import collections
import fnmatch
import hashlib
import itertools
import json
import os
import re
import threading
import time

from simlib.vendors import elastic_dsl as dsl
from simlib.vendors.elastic_dsl import EsError

SHARDS = {"total": 2, "successful": 1, "failed": 0}
MAX_KEEP_ALIVE_MS = 24 * 3600 * 1000
TIME_UNITS = {"nanos": 1e-6, "micros": 1e-3, "ms": 1, "s": 1000,
              "m": 60000, "h": 3600000, "d": 86400000}
# Generations are unique across indices, so that a result cached for an
# index that was dropped and created again is never taken for a new one's.
GENERATIONS = itertools.count(1)


def now_ms():
    return int(time.time() * 1000)


def parse_time_value(text, name="keep_alive"):
    """An Elasticsearch time value ("1m", "30s") in milliseconds."""
    m = re.fullmatch(r"(\d+)(nanos|micros|ms|s|m|h|d)", str(text).strip())
    if not m:
        raise EsError(400, "illegal_argument_exception",
                      f"failed to parse setting [{name}] with value "
                      f"[{text}] as a time value: unit is missing or "
                      "unrecognized")
    return int(int(m.group(1)) * TIME_UNITS[m.group(2)])


class Doc:
    __slots__ = ("id", "index", "source", "seq", "version", "seq_no",
                 "cache")

    def __init__(self, doc_id, index, source, seq, version, seq_no):
        self.id = doc_id
        self.index = index
        self.source = source
        self.seq = seq
        self.version = version
        self.seq_no = seq_no
        self.cache = None


def index_uuid(name):
    """The uuid of the index name: the same for the same name."""
    return base64.urlsafe_b64encode(
        hashlib.sha256(name.encode()).digest()[:16]).decode()[:22]


class Index:
    def __init__(self, name, kinds=None, hidden=False):
        self.name = name
        self.uuid = index_uuid(name)
        self.hidden = hidden
        self.docs = {}
        self.kinds = {}
        for path, kind in (kinds or {}).items():
            self.declare(path, kind)
        self.generation = next(GENERATIONS)
        self.next_seq = 0
        self.next_seq_no = 0

    def declare(self, path, kind):
        parts = path.split(".")
        for i in range(1, len(parts)):
            self.kinds.setdefault(".".join(parts[:i]), "object")
        self.kinds[path] = kind

    def put(self, doc_id, source, version=None):
        """Store source under doc_id; returns the new Doc."""
        old = self.docs.get(doc_id)
        seq = old.seq if old is not None else self.next_seq
        if old is None:
            self.next_seq += 1
        if version is None:
            version = old.version + 1 if old is not None else 1
        doc = Doc(doc_id, self, source, seq, version, self.next_seq_no)
        self.next_seq_no += 1
        self.docs[doc_id] = doc
        self.generation = next(GENERATIONS)
        return doc

    def delete(self, doc_id):
        old = self.docs.pop(doc_id)
        self.next_seq_no += 1
        self.generation = next(GENERATIONS)
        return old


# --- dynamic mapping ---------------------------------------------------------

class MappingError(Exception):
    pass


def detect_kind(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}", value) \
            and dsl.parse_date(value) is not None:
        return "date"
    return "keyword"


def preview(value):
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={v}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def value_fits(kind, value):
    if kind in ("keyword", "text", "ip"):
        return True
    if kind == "date":
        return dsl.parse_date_value(value) is not None
    if kind in ("long", "float"):
        if isinstance(value, bool):
            return False
        if isinstance(value, (int, float)):
            return True
        try:
            float(value)
            return True
        except (TypeError, ValueError):
            return False
    if kind == "boolean":
        return isinstance(value, bool) or value in ("true", "false", "")
    return True


def plan_mapping(index, source, doc_id):
    """The new field kinds source adds to index's mapping; MappingError
    (Elasticsearch's mapper_parsing_exception reason) if it conflicts."""
    new = {}

    def kind_of(path):
        return new.get(path, index.kinds.get(path))

    def as_object(path, key):
        kind = kind_of(path)
        if kind is None:
            new[path] = "object"
        elif kind != "object":
            raise MappingError(
                f"failed to parse field [{path}] of type [{kind}] in "
                f"document with id '{doc_id}'. Preview of field's value: "
                f"'{{...}}'")

    def leaf(path, key, value):
        kind = kind_of(path)
        if kind == "object":
            raise MappingError(
                f"object mapping for [{path}] tried to parse field [{key}] "
                "as object, but found a concrete value")
        if kind is None:
            new[path] = detect_kind(value)
        elif not value_fits(kind, value):
            raise MappingError(
                f"failed to parse field [{path}] of type [{kind}] in "
                f"document with id '{doc_id}'. Preview of field's value: "
                f"'{preview(value)}'")

    def walk(obj, prefix):
        for key, value in obj.items():
            if not isinstance(key, str) or not key.strip(".") or \
                    ".." in key:
                raise MappingError(
                    f"field name cannot be an empty string or contain "
                    f"only dots: [{key}]")
            parts = key.split(".")
            for i in range(1, len(parts)):
                as_object(prefix + ".".join(parts[:i]), parts[i - 1])
            place(prefix + key, parts[-1], value)

    def place(path, key, value):
        if isinstance(value, dict):
            as_object(path, key)
            walk(value, path + ".")
        elif isinstance(value, list):
            for item in value:
                place(path, key, item)
        elif value is not None:
            leaf(path, key, value)

    walk(source, "")
    return new


# --- the store ---------------------------------------------------------------

class Pit:
    def __init__(self, pit_id, context, targets, keep_alive_ms):
        self.id = pit_id
        self.context = context
        self.targets = targets
        self.keep_alive_ms = keep_alive_ms
        self.expires = time.monotonic() + keep_alive_ms / 1000


class Result:
    """The sorted hits of one query over one snapshot."""

    def __init__(self, keys, hits, printed):
        self.keys = keys
        self.hits = hits
        self.printed = printed


class Store:
    # Sorted results are kept for the latest queries, within a budget of
    # rows: a result over 100,000 alerts takes some 25 MB.
    CACHE_MAX = 16
    CACHE_ROWS = 400000

    def __init__(self):
        self.lock = threading.RLock()
        self.clear()

    def clear(self):
        with self.lock:
            for name in list(getattr(self, "indices", ())):
                self.drop_index(name)
            self.indices = {}
            self.aliases = {}
            self.pits = {}
            self.pit_counter = 0
            self.cache = collections.OrderedDict()

    def drop_index(self, name):
        """Forget an index. Its documents stay readable through points in
        time that hold them; emptying its table breaks the index-document
        reference cycle so that the rest is freed without the collector."""
        with self.lock:
            index = self.indices.pop(name, None)
            if index is not None:
                index.docs = {}
                self.cache.clear()

    # --- names --------------------------------------------------------------

    def create_index(self, name, kinds=None, hidden=False, alias=None):
        with self.lock:
            index = self.indices.get(name)
            if index is None:
                index = self.indices[name] = Index(name, kinds, hidden)
            if alias:
                self.aliases[alias] = [name]
            return index

    def resolve(self, expression, ignore_unavailable=False,
                allow_no_indices=True):
        """Concrete indices for a comma-separated target expression with
        aliases, wildcards and -exclusions; EsError 404 for a missing
        concrete name unless ignore_unavailable."""
        chosen = []
        names = expression.split(",") if expression else ["_all"]
        for raw in names:
            name = raw.strip()
            if not name:
                continue
            if name.startswith("-") and chosen:
                pattern = name[1:]
                chosen = [i for i in chosen
                          if not fnmatch.fnmatchcase(i.name, pattern)]
                continue
            if name in ("_all", "*"):
                found = [i for i in self.indices.values() if not i.hidden]
            elif "*" in name or "?" in name:
                found = []
                show_hidden = name.startswith(".")
                for i in self.indices.values():
                    if fnmatch.fnmatchcase(i.name, name) and \
                            (show_hidden or not i.hidden):
                        found.append(i)
                for alias, members in self.aliases.items():
                    if fnmatch.fnmatchcase(alias, name) and \
                            (show_hidden or not alias.startswith(".")):
                        found.extend(self.indices[n] for n in members
                                     if n in self.indices)
            elif name in self.indices:
                found = [self.indices[name]]
            elif name in self.aliases:
                found = [self.indices[n] for n in self.aliases[name]
                         if n in self.indices]
            else:
                if ignore_unavailable:
                    continue
                raise index_not_found(name)
            for index in found:
                if index not in chosen:
                    chosen.append(index)
        if not chosen and not allow_no_indices:
            raise index_not_found(expression)
        return chosen

    def write_index(self, name):
        """The concrete index a write to name goes to (None: create it)."""
        if name in self.indices:
            return self.indices[name]
        members = self.aliases.get(name)
        if members:
            return self.indices.get(members[0])
        return None

    # --- points in time -----------------------------------------------------

    def open_pit(self, indices, keep_alive_ms):
        with self.lock:
            self.expire_pits()
            self.pit_counter += 1
            context = self.pit_counter
            raw = b"\xe3\xb4\xe8\x03" + context.to_bytes(4, "big") + \
                ",".join(i.name for i in indices).encode() + os.urandom(24)
            pit_id = base64.urlsafe_b64encode(raw).decode()
            targets = [(n, i, list(i.docs.values()))
                       for n, i in enumerate(indices)]
            self.pits[pit_id] = Pit(pit_id, context, targets,
                                    keep_alive_ms)
            return pit_id

    def expire_pits(self):
        clock = time.monotonic()
        for pit_id in [p for p, pit in self.pits.items()
                       if pit.expires <= clock]:
            del self.pits[pit_id]

    def find_pit(self, pit_id):
        with self.lock:
            self.expire_pits()
            pit = self.pits.get(pit_id)
            if pit is None:
                raise pit_missing(pit_id)
            return pit

    def close_pit(self, pit_id):
        with self.lock:
            self.expire_pits()
            pit = self.pits.pop(pit_id, None)
            return 0 if pit is None else max(len(pit.targets), 1)

    # --- search -------------------------------------------------------------

    def sorted_hits(self, snapshot_key, targets, residual, fields, ctx):
        """The Result of residual over targets in the order of fields,
        cached per snapshot (index generations or a point in time)."""
        text = json.dumps(residual, sort_keys=True)
        key = (snapshot_key, text, json.dumps([f.spec() for f in fields]))
        if "now" in text:
            key += (ctx.now_ms // 1000,)
        with self.lock:
            found = self.cache.get(key)
            if found is not None:
                self.cache.move_to_end(key)
                return found
        pred = dsl.compile_query(residual, ctx)
        keyfn = dsl.make_keyfn(fields)
        rows = []
        for ordinal, index, docs in targets:
            dsl.check_sortable(fields, index)
            for doc in docs:
                if pred(doc):
                    k, printed = keyfn(doc, ordinal)
                    rows.append((k, ordinal, doc, printed))
        try:
            rows.sort(key=lambda row: (row[0], row[1], row[2].seq))
        except TypeError:
            raise EsError(400, "illegal_argument_exception",
                          "Can't sort on fields mapped to different types "
                          "in different indices") from None
        result = Result([r[0] for r in rows], [(r[2], r[1]) for r in rows],
                        [r[3] for r in rows])
        with self.lock:
            self.cache[key] = result
            rows = sum(len(r.keys) for r in self.cache.values())
            while len(self.cache) > 1 and (len(self.cache) > self.CACHE_MAX
                                           or rows > self.CACHE_ROWS):
                _, dropped = self.cache.popitem(last=False)
                rows -= len(dropped.keys)
        return result


def index_not_found(name):
    return EsError(404, "index_not_found_exception", f"no such index [{name}]",
                   **{"resource.type": "index_or_alias", "resource.id": name,
                      "index_uuid": "_na_", "index": name})


def pit_missing(pit_id):
    context = 0
    try:
        raw = base64.urlsafe_b64decode(pit_id + "=" * (-len(pit_id) % 4))
        if raw[:4] == b"\xe3\xb4\xe8\x03":
            context = int.from_bytes(raw[4:8], "big")
    except (ValueError, TypeError):
        pass
    cause = {"type": "search_context_missing_exception",
             "reason": f"No search context found for id [{context}]"}
    return EsError(404, "search_phase_execution_exception",
                   "all shards failed", root=cause, phase="query",
                   grouped=True, failed_shards=[{"shard": -1, "index": None,
                                                 "reason": cause}])


STORE = Store()


# --- search execution --------------------------------------------------------

SEARCH_KEYS = {"query", "size", "from", "sort", "search_after", "pit",
               "track_total_hits", "_source", "fields", "aggs",
               "aggregations", "runtime_mappings", "seq_no_primary_term",
               "version", "timeout", "track_scores", "stored_fields",
               "post_filter", "highlight", "explain", "stats", "profile",
               "min_score", "docvalue_fields"}
SEARCH_UNSUPPORTED = {"collapse", "rescore", "knn", "slice", "terminate_after",
                      "suggest", "script_fields", "indices_boost",
                      "retriever", "rank", "sub_searches", "ext"}
TIME_FIELD = "@timestamp"


def int_param(value, name):
    if isinstance(value, bool):
        raise EsError(400, "parsing_exception",
                      f"[{name}] failed to parse field [{name}]")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise EsError(400, "illegal_argument_exception",
                      f"Failed to parse int parameter [{name}] with value "
                      f"[{value}]") from None


def check_search_body(body, text):
    for key, value in body.items():
        if key in SEARCH_UNSUPPORTED:
            raise EsError(400, "illegal_argument_exception",
                          f"[{key}] is not supported by the soarutils "
                          "simulator")
        if key not in SEARCH_KEYS:
            line, col = dsl.locate(text, key)
            raise EsError(400, "parsing_exception",
                          f"Unknown key for a {dsl.token_name(value)} in "
                          f"[{key}].", line=line, col=col)


def search(targets, body, params, snapshot_key, pit=None, text="",
           max_window=10000, clock_ms=None):
    """Run a search body over targets [(ordinal, Index, docs)]; returns the
    response object. EsError for anything Elasticsearch would refuse."""
    started = time.monotonic()
    check_search_body(body, text)
    ctx = dsl.Context(now_ms() if clock_ms is None else clock_ms, text)
    size = int_param(params.get("size", body.get("size", 10)), "size")
    start = int_param(params.get("from", body.get("from", 0)), "from")
    if size < 0:
        raise EsError(400, "illegal_argument_exception",
                      f"[size] parameter cannot be negative, found [{size}]")
    if start < 0:
        raise EsError(400, "illegal_argument_exception",
                      f"[from] parameter cannot be negative, found [{start}]")
    search_after = body.get("search_after")
    if search_after is not None and not isinstance(search_after, list):
        raise EsError(400, "parsing_exception",
                      "[search_after] must be an array")
    if search_after is not None and start > 0:
        raise EsError(400, "action_request_validation_exception",
                      "Validation Failed: 1: [from] parameter must be set "
                      "to 0 when [search_after] is used;")
    first_index = targets[0][1].name if targets else None
    if start + size > max_window:
        raise dsl.shard_failure(first_index, {
            "type": "illegal_argument_exception",
            "reason": f"Result window is too large, from + size must be "
                      f"less than or equal to: [{max_window}] but was "
                      f"[{start + size}]. See the scroll api for a more "
                      f"efficient way to request large data sets. This "
                      f"limit can be set by changing the "
                      f"[index.max_result_window] index level setting."})

    sort_raw = body.get("sort")
    if "sort" in params:
        sort_raw = [{p.rsplit(":", 1)[0]: p.rsplit(":", 1)[1]}
                    if p.rsplit(":", 1)[-1] in ("asc", "desc") and ":" in p
                    else p for p in params["sort"].split(",") if p]
    fields = dsl.parse_sort(sort_raw, text)
    explicit_sort = bool(fields)
    if not fields:
        fields = [dsl.SortField("_score", desc=True)]
    if pit is not None and not any(f.name == "_shard_doc" for f in fields):
        fields.append(dsl.SortField("_shard_doc"))
    show_sort = explicit_sort or pit is not None

    query = body.get("query")
    track = body.get("track_total_hits", 10000)
    if "track_total_hits" in params:
        raw = params["track_total_hits"]
        track = raw == "true" if raw in ("true", "false") else \
            int_param(raw, "track_total_hits")
    if isinstance(track, bool) is False and (
            not isinstance(track, int) or track < 0):
        raise EsError(400, "illegal_argument_exception",
                      f"[track_total_hits] must be a boolean or a "
                      f"non-negative integer, got [{track}]")
    if params.get("rest_total_hits_as_int") == "true" and track is not False:
        track = True
    source_spec = body.get("_source")
    if "_source" in params:
        raw = params["_source"]
        source_spec = raw == "true" if raw in ("true", "false") else \
            raw.split(",")
    if "_source_includes" in params or "_source_excludes" in params:
        source_spec = {"includes": params.get("_source_includes", "")
                       .split(",") if params.get("_source_includes") else [],
                       "excludes": params.get("_source_excludes", "")
                       .split(",") if params.get("_source_excludes") else []}
    source_filter = dsl.SourceFilter(source_spec)
    wanted_fields = dsl.field_patterns(body.get("fields"))
    aggs = dsl.compile_aggs(body["aggs"] if "aggs" in body
                            else body["aggregations"], ctx) \
        if ("aggs" in body or "aggregations" in body) else None
    post_filter = dsl.compile_query(body["post_filter"], ctx) \
        if body.get("post_filter") is not None else None

    # A time range is cut out of the query and applied by bisection when
    # the hits are sorted by that time: pages that only move the range
    # then reuse one evaluation of the rest of the query.
    interval = None
    residual = query
    primary = fields[0]
    if primary.name == TIME_FIELD and primary.missing_value is dsl.MISSING \
            and targets and all(i.kinds.get(TIME_FIELD) == "date"
                                for _, i, _ in targets):
        residual, interval = dsl.split_time_range(query, TIME_FIELD, ctx)
    if residual is None:
        residual = {"match_all": {}}
    # Compile the whole query once so its errors show whatever the cache.
    dsl.compile_query(query, ctx)
    result = STORE.sorted_hits(snapshot_key, targets, residual, fields, ctx)

    lo, hi = 0, len(result.keys)
    if interval is not None:
        a, b = interval
        keys = result.keys
        if primary.desc:
            lo = bisect.bisect_left(keys, (0,)) if b is None else \
                bisect.bisect_left(keys, (0, -b))
            hi = bisect.bisect_left(keys, (1,)) if a is None else \
                bisect.bisect_left(keys, (0, -a + 1))
        else:
            lo = bisect.bisect_left(keys, (0,)) if a is None else \
                bisect.bisect_left(keys, (0, a))
            hi = bisect.bisect_left(keys, (1,)) if b is None else \
                bisect.bisect_left(keys, (0, b + 1))
        hi = max(lo, hi)
    matched = range(lo, hi)
    if post_filter is not None:
        selected = [i for i in matched if post_filter(result.hits[i][0])]
    else:
        selected = matched
    pos = 0
    if search_after is not None:
        kinds = []
        for f in fields:
            kind = None
            for _, index, _ in targets:
                kind = dsl.field_kind(index, f.name)[0]
                if kind is not None:
                    break
            kinds.append(kind)
        after = dsl.after_key(fields, search_after, kinds, first_index)
        if isinstance(selected, range):
            pos = bisect.bisect_right(result.keys, after, lo, hi) - lo
        else:
            pos = bisect.bisect_right([result.keys[i] for i in selected],
                                      after)
    page_rows = selected[pos + start:pos + start + size]
    total = len(selected)

    hits = []
    score = None if explicit_sort else 1.0
    for i in page_rows:
        doc, _ = result.hits[i]
        hit = {"_index": doc.index.name, "_id": doc.id}
        if body.get("version") or params.get("version") == "true":
            hit["_version"] = doc.version
        if body.get("seq_no_primary_term") or \
                params.get("seq_no_primary_term") == "true":
            hit["_seq_no"] = doc.seq_no
            hit["_primary_term"] = 1
        hit["_score"] = score
        if source_filter.enabled:
            hit["_source"] = doc.source if source_filter.whole else \
                source_filter.apply(doc.source)
        if wanted_fields:
            found = dsl.fetch_fields(doc, wanted_fields)
            if found:
                hit["fields"] = found
        if show_sort:
            hit["sort"] = result.printed[i]
        hits.append(hit)

    out = {}
    if pit is not None:
        out["pit_id"] = pit.id
    out["took"] = int((time.monotonic() - started) * 1000)
    out["timed_out"] = False
    count = max(len(targets), 1) if targets else 0
    out["_shards"] = {"total": count, "successful": count, "skipped": 0,
                      "failed": 0}
    hits_out = {}
    if track is not False:
        if params.get("rest_total_hits_as_int") == "true":
            hits_out["total"] = total
        elif track is True or total <= int(track):
            hits_out["total"] = {"value": total, "relation": "eq"}
        else:
            hits_out["total"] = {"value": int(track), "relation": "gte"}
    hits_out["max_score"] = score if hits else None
    hits_out["hits"] = hits
    out["hits"] = hits_out
    if aggs is not None:
        docs = [result.hits[i][0] for i in matched]
        out["aggregations"] = dsl.run_aggs(aggs, docs)
    return out


def count(targets, body, text="", clock_ms=None):
    for key, value in body.items():
        if key != "query":
            line, col = dsl.locate(text, key)
            raise EsError(400, "parsing_exception",
                          f"request does not support [{key}]", line=line,
                          col=col)
    ctx = dsl.Context(now_ms() if clock_ms is None else clock_ms, text)
    pred = dsl.compile_query(body.get("query"), ctx)
    n = sum(1 for _, _, docs in targets for d in docs if pred(d))
    shards = len(targets)
    return {"count": n, "_shards": {"total": shards, "successful": shards,
                                    "skipped": 0, "failed": 0}}


# --- writes ------------------------------------------------------------------

def merge(base, update):
    """Elasticsearch's partial-document merge, without touching base."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def set_path(source, path, value):
    """A copy of source with path set: a flat dotted key if the document
    has that key or the path's object does not exist, else inside the
    existing objects (copied on the way down)."""
    if path in source or "." not in path:
        out = dict(source)
        out[path] = value
        return out
    head, rest = path.split(".", 1)
    for cut in range(path.count("."), 0, -1):
        parts = path.split(".")
        head, rest = ".".join(parts[:cut]), ".".join(parts[cut:])
        if isinstance(source.get(head), dict):
            out = dict(source)
            out[head] = set_path(source[head], rest, value)
            return out
    out = dict(source)
    out[path] = value
    return out


def new_id():
    return base64.urlsafe_b64encode(os.urandom(15)).decode()[:20]


def check_index_name(name):
    """The reason Elasticsearch refuses an index name, or None."""
    if name != name.lower():
        return f"Invalid index name [{name}], must be lowercase"
    if name[:1] in ("-", "_", "+"):
        return f"Invalid index name [{name}], must not start with '_', " \
               "'-', or '+'"
    if name in (".", "..") or any(c in name for c in '\\/*?"<>| ,#:'):
        return f"Invalid index name [{name}], must not contain the " \
               "following characters [ , \", *, \\, <, |, ,, >, /, ?]"
    if len(name.encode()) > 255:
        return f"Invalid index name [{name}], index name is too long"
    return None


# --- _bulk -------------------------------------------------------------------

BULK_ACTIONS = ("create", "delete", "index", "update")
BULK_META = {"_index", "_id", "routing", "version", "version_type",
             "if_seq_no", "if_primary_term", "pipeline", "require_alias",
             "retry_on_conflict", "op_type", "dynamic_templates", "_source",
             "list_executed_pipelines", "require_data_stream"}
UPDATE_KEYS = {"doc", "upsert", "doc_as_upsert", "script", "scripted_upsert",
               "detect_noop", "_source"}
ERROR_STATUS = {"es_rejected_execution_exception": 429,
                "mapper_parsing_exception": 400,
                "document_parsing_exception": 400,
                "version_conflict_engine_exception": 409,
                "circuit_breaking_exception": 429,
                "illegal_argument_exception": 400,
                "document_missing_exception": 404,
                "unavailable_shards_exception": 503}


def malformed(reason):
    return EsError(400, "illegal_argument_exception", reason)


def parse_bulk(body, default_index):
    """[(line number, action, meta, source line bytes or None)]; EsError for
    the errors that refuse the whole request."""
    if not body:
        raise EsError(400, "parse_exception", "request body is required")
    if not body.endswith(b"\n"):
        raise malformed("The bulk request must be terminated by a newline "
                        "[\\n]")
    lines = body.split(b"\n")[:-1]
    plan = []
    i = 0
    while i < len(lines):
        number = i + 1
        raw = lines[i]
        i += 1
        if not raw.strip():
            continue
        try:
            action = json.loads(raw)
        except ValueError as exc:
            raise EsError(400, "x_content_parse_exception",
                          f"[{number}:1] Unexpected character in "
                          f"action/metadata line: {exc}") from None
        if not isinstance(action, dict):
            raise malformed(f"Malformed action/metadata line [{number}], "
                            "expected START_OBJECT or END_OBJECT but found "
                            f"[{dsl.token_name(action)}]")
        if len(action) != 1:
            raise malformed(f"Malformed action/metadata line [{number}], "
                            "expected FIELD_NAME but found [END_OBJECT]"
                            if not action else
                            f"Malformed action/metadata line [{number}], "
                            "expected END_OBJECT but found [FIELD_NAME]")
        (op, meta), = action.items()
        if op not in BULK_ACTIONS:
            raise malformed(f"Malformed action/metadata line [{number}], "
                            "expected one of [create, delete, index, update] "
                            f"but found [{op}]")
        if not isinstance(meta, dict):
            raise malformed(f"Malformed action/metadata line [{number}], "
                            "expected START_OBJECT but found "
                            f"[{dsl.token_name(meta)}]")
        for key in meta:
            if key not in BULK_META:
                raise malformed(f"Action/metadata line [{number}] contains "
                                f"an unknown parameter [{key}]")
        source = None
        if op != "delete":
            if i >= len(lines):
                # Elasticsearch drops an action whose source line is absent.
                break
            source = lines[i]
            i += 1
            if op == "update":
                try:
                    parsed = json.loads(source)
                except ValueError as exc:
                    raise EsError(400, "x_content_parse_exception",
                                  f"[{i}:1] {exc}") from None
                if not isinstance(parsed, dict):
                    raise EsError(400, "x_content_parse_exception",
                                  f"[{i}:1] [UpdateRequest] Expected "
                                  "START_OBJECT")
                for key in parsed:
                    if key not in UPDATE_KEYS:
                        raise EsError(400, "x_content_parse_exception",
                                      f"[{i}:2] [UpdateRequest] unknown "
                                      f"field [{key}]")
                source = parsed
        plan.append((number, op, dict(meta), source))
    missing = [n for n, _, meta, _ in plan
               if not (meta.get("_index") or default_index)]
    if not plan:
        raise EsError(400, "action_request_validation_exception",
                      "Validation Failed: 1: no requests added;")
    if missing:
        reasons = "".join(f"{k + 1}: index is missing;"
                          for k in range(len(missing)))
        raise EsError(400, "action_request_validation_exception",
                      f"Validation Failed: {reasons}")
    return plan


def shard_error(etype, reason, index_name, uuid, **extra):
    error = {"type": etype, "reason": reason}
    error.update(extra)
    error.update({"index_uuid": uuid, "shard": "0", "index": index_name})
    return error


def parse_source(source, index_name, uuid):
    """(document, None) for a source line holding a JSON object, else
    (None, the item's error, whose status is 400)."""
    try:
        doc = json.loads(source)
    except ValueError as exc:
        return None, shard_error(
            "mapper_parsing_exception", "failed to parse", index_name, uuid,
            caused_by={"type": "json_parse_exception", "reason": str(exc)})
    if not isinstance(doc, dict):
        return None, shard_error(
            "mapper_parsing_exception", "failed to parse", index_name, uuid,
            caused_by={"type": "not_x_content_exception",
                       "reason": "Compressor detection can only be called "
                                 "on some xcontent bytes or compressed "
                                 "xcontent bytes"})
    return doc, None


def run_bulk(plan, default_index, inject, refresh=False):
    """Execute a parsed bulk request in order; returns (errors, items).
    inject(position, op, index name, id) gives (status, error) to fail an
    item on purpose, or None."""
    items = []
    errors = False
    with STORE.lock:
        for position, (_, op, meta, source) in enumerate(plan, 1):
            name = str(meta.get("_index") or default_index)
            doc_id = meta.get("_id")
            if doc_id is not None:
                doc_id = str(doc_id)
            if op == "index" and meta.get("op_type") == "create":
                op_done = "create"
            else:
                op_done = op
            if doc_id is None and op in ("index", "create"):
                doc_id = new_id()
            item = bulk_item(op, op_done, name, doc_id, meta, source,
                             position, inject)
            if refresh and "error" not in item:
                item["forced_refresh"] = True
            if "error" in item:
                errors = True
            items.append({op: item})
    return errors, items


def bulk_item(op, op_done, name, doc_id, meta, source, position, inject):
    def failed(status, error):
        out = {"_index": name}
        if doc_id is not None:
            out["_id"] = doc_id
        out["status"] = status
        out["error"] = error
        return out

    if doc_id is None:
        return failed(400, {"type": "action_request_validation_exception",
                            "reason": "Validation Failed: 1: id is "
                                      "missing;"})
    problem = check_index_name(name)
    if problem:
        return failed(400, {"type": "invalid_index_name_exception",
                            "reason": problem, "index_uuid": "_na_",
                            "index": name})
    injected = inject(position, op, name, doc_id)
    index = STORE.write_index(name)
    if injected is not None:
        status, error = injected
        if index is not None:
            name = index.name
        return failed(status, error)
    if index is None:
        if op == "delete":
            return failed(404, dict(index_not_found(name).root))
        index = STORE.create_index(name, hidden=name.startswith("."))
    name = index.name

    def done(doc, result, status):
        return {"_index": index.name, "_id": doc.id, "_version": doc.version,
                "result": result, "_shards": dict(SHARDS),
                "_seq_no": doc.seq_no, "_primary_term": 1, "status": status}

    old = index.docs.get(doc_id)
    if "if_seq_no" in meta or "if_primary_term" in meta:
        want_seq = meta.get("if_seq_no")
        want_term = meta.get("if_primary_term")
        if old is None:
            return failed(409, shard_error(
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, required seqNo "
                f"[{want_seq}], primary term [{want_term}] but no document "
                "was found", index.name, index.uuid))
        if want_seq != old.seq_no or want_term != 1:
            return failed(409, shard_error(
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, required seqNo "
                f"[{want_seq}], primary term [{want_term}]. current "
                f"document has seqNo [{old.seq_no}] and primary term [1]",
                index.name, index.uuid))

    if op == "delete":
        if old is None:
            index.next_seq_no += 1
            return {"_index": index.name, "_id": doc_id, "_version": 1,
                    "result": "not_found", "_shards": dict(SHARDS),
                    "_seq_no": index.next_seq_no - 1, "_primary_term": 1,
                    "status": 404}
        index.delete(doc_id)
        return {"_index": index.name, "_id": doc_id,
                "_version": old.version + 1, "result": "deleted",
                "_shards": dict(SHARDS), "_seq_no": index.next_seq_no - 1,
                "_primary_term": 1, "status": 200}

    if op == "update":
        body = source
        if old is None:
            if body.get("doc_as_upsert") and isinstance(body.get("doc"),
                                                         dict):
                new_source = body["doc"]
            elif isinstance(body.get("upsert"), dict):
                new_source = body["upsert"]
            else:
                return failed(404, shard_error(
                    "document_missing_exception",
                    f"[_doc][{doc_id}]: document missing", index.name,
                    index.uuid))
            created = True
        else:
            if "script" in body:
                return failed(400, {
                    "type": "illegal_argument_exception",
                    "reason": "scripted updates are not supported by the "
                              "soarutils simulator"})
            if not isinstance(body.get("doc"), dict):
                return failed(400, {
                    "type": "action_request_validation_exception",
                    "reason": "Validation Failed: 1: script or doc is "
                              "missing;"})
            new_source = merge(old.source, body["doc"])
            created = False
            if body.get("detect_noop", True) and new_source == old.source:
                return {"_index": index.name, "_id": doc_id,
                        "_version": old.version, "result": "noop",
                        "_shards": {"total": 0, "successful": 0,
                                    "failed": 0},
                        "_seq_no": old.seq_no, "_primary_term": 1,
                        "status": 200}
        try:
            for path, kind in plan_mapping(index, new_source,
                                           doc_id).items():
                index.declare(path, kind)
        except MappingError as exc:
            return failed(400, shard_error("mapper_parsing_exception",
                                           str(exc), index.name,
                                           index.uuid))
        doc = index.put(doc_id, new_source)
        return done(doc, "created" if created else "updated",
                    201 if created else 200)

    new_source, error = parse_source(source, index.name, index.uuid)
    if error is not None:
        return failed(400, error)
    if op_done == "create" and old is not None:
        return failed(409, shard_error(
            "version_conflict_engine_exception",
            f"[{doc_id}]: version conflict, document already exists "
            f"(current version [{old.version}])", index.name, index.uuid))
    try:
        for path, kind in plan_mapping(index, new_source, doc_id).items():
            index.declare(path, kind)
    except MappingError as exc:
        return failed(400, shard_error("mapper_parsing_exception", str(exc),
                                       index.name, index.uuid))
    doc = index.put(doc_id, new_source)
    return done(doc, "created" if old is None else "updated",
                201 if old is None else 200)
