"""Elastic Security (the Kibana detection engine alerts API) and the
Elasticsearch APIs that es-fetch, es-update and es-index use. API.md 1 is
the reference; what it states is followed exactly, and everything else is
marked below as INFERRED (read from code or docs, not stated outright) or
UNVERIFIED (the simulator's best guess: tests must not depend on it).

Both surfaces share the one simulator port: point KIBANA_URL and ES_URL at
it. The modules: elastic.py (routes, auth, settings), elastic_store.py
(indices, mapping, points in time, search, _bulk), elastic_dsl.py (query
DSL, sorting, aggregations, dates), elastic_alerts.py (generated alerts).

AUTHENTICATION (both surfaces, checked first, before anything else)

    Authorization: ApiKey <b64(id:key)>   (ES's "encoded" key; API.md)
    Authorization: Basic <b64(user:password)>
Scheme names are case-insensitive. Accepted credentials are the setting
elastic_credentials, default {"api_keys": [{"id": "simid", "key":
"simkey"}], "users": [{"username": "elastic", "password": "changeme"}]}
(so ApiKey c2ltaWQ6c2lta2V5 and Basic ZWxhc3RpYzpjaGFuZ2VtZQ== work).
    Kibana routes: 401 {"statusCode":401,"error":"Unauthorized","message":
        "Unauthorized"} when the header is missing or not ApiKey/Basic
        (platform shape from API.md; message UNVERIFIED); wrong
        credentials: the same with message "[security_exception\\n\\tRoot
        causes:\\n\\t\\tsecurity_exception: unable to authenticate user [U]
        for REST request [/_security/_authenticate]]: unable to
        authenticate user [U] for REST request [/_security/_authenticate]"
        (UNVERIFIED).
    Elasticsearch routes: 401 security_exception, reason "missing
        authentication credentials for REST request [<path?query>]", or
        "unable to authenticate user [U] for REST request [...]" (Basic), or
        "unable to authenticate with provided credentials and anonymous
        access is not allowed for this request" (ApiKey; UNVERIFIED), with
        "header": {"WWW-Authenticate": ["Basic realm=\\"security\\",
        charset=\\"UTF-8\\"", "Bearer realm=\\"security\\"", "ApiKey"]} in the
        error and the same three challenges joined by ", " in one
        WWW-Authenticate response header (8.x answers as seen in the wild;
        one header instead of three is the simulator's).

KIBANA ROUTES (optional /s/<space> prefix; API.md 1)

Order of checks: auth; kbn-xsrf (or kbn-version) header present on POST,
else 400 {"statusCode":400,"error":"Bad Request","message":"Request must
contain a kbn-xsrf header."} (exact, API.md); elastic-api-version: a value
other than 2023-10-31 is 400 "Invalid version..." (UNVERIFIED), and a
missing one is accepted unless elastic_require_api_version is true, then
400 "Please specify a version via elastic-api-version header" (API.md's
third-party text); the space must exist, else 404 {"statusCode":404,
"error":"Not Found","message":"Saved object [space/<id>] not found"}
(UNVERIFIED); a body Content-Type other than JSON: 415 (UNVERIFIED); a body
that is not JSON: 400 "Invalid request payload JSON format" (hapi's,
INFERRED). Answers have Content-Type application/json; charset=utf-8,
kbn-name: kibana and elastic-api-version: 2023-10-31 (INFERRED).

    POST [/s/<space>]/api/detection_engine/signals/search
        Keeps only query, aggs, size (integer >= 0), track_total_hits
        (boolean or integer), _source (boolean, string or strings), fields
        (strings), runtime_mappings (accepted, not evaluated), sort (string,
        object or array) and include_attacks (accepted, ignored); every other
        key (from, search_after, pit, ...) is silently dropped (API.md).
        A wrong type: 400 platform shape "[request body]: <key>: ..."
        (wording UNVERIFIED). None of the accepted keys: 400
        {"message":"\\"value\\" must have at least 1 children",
        "status_code":400} (the message is API.md's; the Security Solution
        shape is INFERRED). The kept body is searched as an Elasticsearch
        search on .alerts-security.alerts-<space> with ignore_unavailable,
        and the raw ES response is returned (API.md). With the setting
        elastic_kibana_legacy true, sort and fields are dropped too (older
        8.x builds, API.md). An ES error comes back as {"message": "<type>:
        <reason>", "status_code": <ES status>} (INFERRED from Security
        Solution's transformError; UNVERIFIED).
    POST [/s/<space>]/api/detection_engine/signals/status
        {"signal_ids": [...], "status", "reason"?, "conflicts"?} or
        {"query": {...}, "status", "reason"?, "conflicts"?}; signal_ids wins
        when both are given. status: open|closed|acknowledged|in-progress;
        reason: false_positive|issue_resolved|acceptable_risk|
        expected_activity|low_severity|duplicate|investigation_required;
        conflicts: abort (default)|proceed; signal_ids: at least one
        non-empty string (matched against _id, which is kibana.alert.uuid in
        every generated alert). Anything else: 400 platform shape
        "[request body]: <key>: Invalid enum value..." (wording
        UNVERIFIED). A query is run as {"bool": {"filter": <query>}}
        (API.md); query errors answer like search errors. Each matching
        alert gets kibana.alert.workflow_status, .workflow_status_updated_at
        (the simulator clock), .workflow_user (the caller's user name or API
        key id) and, when given, .workflow_reason: written as flat keys when
        the alert has a flat kibana.alert.workflow_status key, inside the
        kibana object when it is nested (Kibana's own script writes flat
        keys only; INFERRED), and visible at once (refresh: true, API.md).
        Answer: API.md's update-by-query shape; "updated" counts every
        matched alert that did not conflict (Kibana's script always writes,
        so no noops); batches of 1000. Version conflicts are injected per
        id (POST /__elastic/conflicts): with conflicts "proceed" they are
        counted in version_conflicts and the rest is updated, answer 200;
        with "abort", the batch holding the first conflict is still
        applied (except the conflicting alerts) and the answer is 409
        {"message":"Response Error","status_code":409} (what Kibana makes
        of ES's 409 update-by-query answer; INFERRED from the ES client,
        UNVERIFIED).
    GET [/s/<space>]/api/detection_engine/index
        {"name": ".alerts-security.alerts-<space>",
        "index_mapping_outdated": false} (UNVERIFIED shape).

ELASTICSEARCH ROUTES

Every answer has X-elastic-product: Elasticsearch and Content-Type
application/json. Query parameters: filter_path (dotted patterns, "*",
"**", "-exclusion"; API.md mentions ?filter_path=items.*.error) and pretty
work everywhere. Errors have API.md's {"error": {"root_cause": [...],
"type", "reason", ...}, "status": N}. A request body needs a JSON (or
x-ndjson) Content-Type: another one is 406 {"error":"Content-Type header
[<type>] is not supported","status":406}, none is 406 "Content-Type header
is missing" (ES's REST layer; wording of the second UNVERIFIED). A body
that is not JSON: 400 x_content_parse_exception (reason UNVERIFIED).

    GET|HEAD /                  cluster info, version 8.15.0. (GET / is
                                answered by aws_sns.py, which registers it
                                first; only HEAD / reaches this module.)
    GET|POST /_search, /<target>/_search
        <target>: comma-separated names, aliases and wildcards (a pattern
        starting with "." also matches hidden indices, "-name" excludes);
        a missing concrete name is 404 index_not_found_exception unless
        ignore_unavailable=true; /_search searches every visible index.
        Body keys: query, size (default 10), from, sort, search_after, pit,
        track_total_hits (default 10000: "gte" beyond), _source, fields,
        aggs/aggregations, post_filter, seq_no_primary_term, version,
        runtime_mappings (not evaluated) and the harmless timeout,
        track_scores, stored_fields, highlight, explain, stats, profile,
        min_score, docvalue_fields (accepted, no effect). collapse, rescore,
        knn, slice, terminate_after, suggest, script_fields, indices_boost,
        retriever, rank, sub_searches, ext: 400 "not supported by the
        soarutils simulator". Anything else: 400 parsing_exception
        "Unknown key for a START_OBJECT in [x]." (or START_ARRAY,
        VALUE_STRING, VALUE_NUMBER...) with line and col (positions are
        approximate). URL size, from, sort (f:asc,g), track_total_hits,
        _source, _source_includes, _source_excludes, version,
        seq_no_primary_term, rest_total_hits_as_int, ignore_unavailable and
        allow_no_indices are honoured; q and scroll are 400 (not supported
        by the simulator).
        from + size > max_result_window (setting elastic_max_result_window,
        default 10000, API.md): 400 search_phase_execution_exception
        "all shards failed" whose root cause is illegal_argument_exception
        "Result window is too large, from + size must be less than or equal
        to: [10000] but was [N]. See the scroll api ..." (ES's text). from
        > 0 with search_after: 400 action_request_validation_exception
        "Validation Failed: 1: [from] parameter must be set to 0 when
        [search_after] is used;". search_after whose length differs from the
        sort (including the implicit _shard_doc): 400 ("search_after has N
        value(s) but sort has M."). Sorting on an unmapped field without
        unmapped_type: 400 "No mapping found for [f] in order to sort on";
        on a text field: 400 fielddata message.
        Sorting: fields (asc default; "missing": "_first"|"_last" (default)
        or a value, "mode" min|max, "format" for dates, "unmapped_type"),
        "_score" (desc; every hit scores 1.0), "_doc", "_shard_doc".
        Multi-valued fields sort by their min (asc) or max (desc). Sort
        values in hits: dates as epoch millis (format: ISO text), numbers,
        keywords as text, a missing number as 9223372036854775807 or
        -9223372036854775808, a missing keyword as null (ES's sentinels).
        Without a sort, hits come in index order with _score 1.0 and no
        "sort" array; with a sort, _score and max_score are null.
        search_after: the hits strictly after the given values in sort
        order; ties beyond the sort are skipped, as in ES, so a sort
        without a unique tiebreaker can miss hits that share the last
        value. Total hits count every match, whatever search_after.
        pit: {"id", "keep_alive"?}. The target must not be in the path:
        400 action_request_validation_exception "Validation Failed: 1:
        [indices] cannot be used with point in time. Do not specify any
        index with point in time.;" (ES's text). The search sees the
        documents as they were when the PIT was opened (later writes,
        deletes and status updates do not show), gets the implicit
        tiebreaker _shard_doc (asc) appended to the sort unless present,
        whose value is (index ordinal in the PIT << 32) | the document's
        position in its index, answers "pit_id" (the same id), and
        keep_alive extends the PIT. An expired, closed or unknown PIT: 404
        search_phase_execution_exception whose root cause is
        search_context_missing_exception "No search context found for id
        [N]" (ES's shape).
        Query DSL: bool (must, filter, should, must_not,
        minimum_should_match as integer, negative integer or percentage;
        should alone needs one match), term (case_insensitive), terms,
        match (operator), match_phrase, range (gt, gte, lt, lte, from/to,
        format epoch_millis|epoch_second; dates take ISO 8601 and date math
        "now-15m", "now/d", "2026-11-22||+1h" with ES's rounding rules;
        numbers; keywords compare as text), exists (also on objects and
        with wildcards), ids, match_all, match_none, prefix, wildcard,
        constant_score. Other real query types: 400 illegal_argument_exception
        "[x] query is not supported by the soarutils simulator"; unknown
        names: 400 parsing_exception "unknown query [x]" with caused_by
        named_object_not_found_exception (ES's shape).
        Field semantics: a field name finds values in flat dotted keys,
        nested objects and arrays alike; fields are keyword unless the
        mapping says otherwise (dynamic strings that look like ISO dates are
        dates; numbers long/float; booleans boolean); keyword matches are
        exact; "x.keyword" reads keyword or text field x. In the alerts
        indices host.ip, source.ip, destination.ip and related.ip are ip
        (term/terms take CIDR ranges) and kibana.alert.reason is keyword.
        Unlike real ES, dynamic strings are keyword, not text with a
        .keyword sub-field.
        Aggregations: terms (size), min, max, avg, sum, value_count,
        cardinality, filter, missing, with sub-aggregations; others: 400
        "Unknown aggregation type [x]".
    POST /<target>/_pit?keep_alive=1m
        {"id": "<base64url>", "_shards": {...}}. keep_alive is required
        (400 otherwise; UNVERIFIED wording), a time value (ms, s, m, h, d),
        at most 24h (ES's search.max_keep_alive default).
    DELETE /_pit  {"id": "..."}
        {"succeeded": true, "num_freed": N}; an unknown or expired id gives
        num_freed 0 and still 200 (INFERRED from ES's ClosePointInTime
        status rule). Missing id: 400.
    GET|POST /_count, /<target>/_count   {"query"} -> {"count", "_shards"}
    GET|HEAD /<index>/_doc/<id>   the document, or 404 {"found": false}.
    POST|GET /_refresh, /<target>/_refresh   no-op (writes show at once).
    POST|PUT /_bulk, /<target>/_bulk
        Content-Type application/x-ndjson (application/json also passes, as
        in ES). Empty body: 400 parse_exception "request body is required".
        A body not ending in "\\n": 400 illegal_argument_exception "The
        bulk request must be terminated by a newline [\\n]" (exact, API.md).
        Lines: action_and_meta then a source line for index, create and
        update (API.md); blank lines are skipped; a final action without its
        source line is dropped (as ES does). Request-level 400s: a line
        that is not a JSON object, not exactly one action of create,
        delete, index, update ("Malformed action/metadata line [N], ..."),
        an unknown meta parameter ("Action/metadata line [N] contains an
        unknown parameter [x]"), an update line with keys other than doc,
        upsert, doc_as_upsert, script, scripted_upsert, detect_noop,
        _source; no index in meta or path ("Validation Failed: 1: index is
        missing;"). The answer is 200 even when items fail (API.md):
        {"took", "errors", "items": [{"<action>": {...}}]} in request order,
        one failure never stopping the others. Successes: _index, _id,
        _version, result (created|updated|deleted|not_found|noop), _shards,
        _seq_no, _primary_term, status (201 created, 200 otherwise, 404
        not_found), plus forced_refresh with ?refresh=true|"". Failures:
        _index, _id, status and error {type, reason, index_uuid, shard,
        index}:
          create of an existing _id: 409 version_conflict_engine_exception
            "[id]: version conflict, document already exists (current
            version [v])" (ES's text);
          update of a missing document without upsert: 404
            document_missing_exception "[_doc][id]: document missing"
            (API.md's example); doc_as_upsert or upsert create it; a doc
            that changes nothing is result "noop" (detect_noop); scripted
            updates: 400 (not supported by the simulator);
          if_seq_no/if_primary_term mismatch: 409 version conflict;
          a value that does not fit the field's mapping (text in a long or
            date field, an object where a value was mapped or the reverse):
            400 mapper_parsing_exception "failed to parse field [f] of type
            [t] in document with id 'i'. Preview of field's value: 'v'" /
            "object mapping for [f] tried to parse field [f] as object, but
            found a concrete value" (ES's texts; 8.8+ may say
            document_parsing_exception);
          a source line that is not a JSON object: 400
            mapper_parsing_exception "failed to parse";
          an invalid index name (upper case, leading _-+, \\/*?"<>| ,#:): 400
            invalid_index_name_exception;
          delete of a missing document: 404 result not_found (not an
            error); delete in a missing index: 404 index_not_found_exception.
        Indices are created on first write (hidden when the name starts with
        "."); a write to an alias goes to its backing index. Documents
        without _id get a 20-character id.
        Injected item failures: see POST /__elastic/bulk_failures.
        Count-only (setting elastic_bulk_count_only true; for benchmarks,
        whose clients would otherwise measure the simulator's parsing and
        storing): the request-level checks and errors above are the same
        (auth, Content-Type, empty body, final newline, every action line a
        JSON object holding one of create, delete, index, update with known
        meta parameters, update bodies, a missing index), and so are the
        item failures for a missing _id, a bad index name, injected rules
        and a source line that is not, once stripped, non-empty text from
        "{" to "}". What is skipped: index and create source lines are not
        parsed as JSON (so an invalid document inside braces passes), not
        mapped and not stored; ids are not remembered (a repeated create
        _id is created again). Accepted index and create items answer
        result "created", status 201, _version 1, the given or a generated
        20-character _id and a _seq_no counting the index's counted
        documents from 0, and add one to the index's count in GET
        /__elastic/bulk_counts (an alias counts under its write index).
        update and delete items fail with 400 illegal_argument_exception
        "[update] is not supported by the soarutils simulator with
        elastic_bulk_count_only". A body made only of the action lines
        {"create":{}} or {"index":{}}, each followed by a line starting
        with "{" and ending with "}", with no blank line and no bulk
        failure rule, takes a path where the documents are not copied and
        the answer is written from a template (about 200,000 documents of
        2.5 KB a second in the handler); any other body is planned as above
        and answered item by item.

THE ALERTS INDICES (API.md 1)

Each space has the index .internal.alerts-security.alerts-<space>-000001
(reported as _index; INFERRED name) behind the alias
.alerts-security.alerts-<space>, both hidden, with a mapping for every
field the generator writes plus kibana.alert.workflow_status_updated_at
(date), kibana.alert.workflow_user and kibana.alert.workflow_reason. At
start and after /_sim/reset only the space "default" exists, holding the
alerts of the seed {"count": 20, "seed": 1} (defaults below).

CONTROL ROUTES (test-only, no auth; recorded and subject to fault rules
like every vendor route, so filter /_sim/requests by path)

    POST /__elastic/seed  {"space": "default", "count": 20, "seed": 1,
            "equal_timestamps": 0, "equal_at": (count - K) // 2,
            "start": "2026-11-22T00:00:00.000Z", "step_ms": 1000,
            "layout": "flat"|"nested"|"mixed"|"dotted", "status": null,
            "append": false}
        Creates the space if needed and replaces its alerts (append: adds to
        them) with count generated alerts; answers {"ok": true, "space",
        "index", "count" (alerts now in the index), "added", "first",
        "last" (@timestamp of the first and last added)}. Alert n has
        @timestamp start + the sum of n gaps, each 1..2*step_ms-1 ms, so
        timestamps rise; the equal_timestamps alerts from position equal_at
        share one @timestamp (for paging tests). "start" takes date math
        ("now-1h"). status forces kibana.alert.workflow_status (default: 80%
        open, 12% acknowledged, 8% closed). Layouts: flat, as Kibana writes
        alerts: kibana.* as flat dotted keys, "event.kind": "signal" as a
        flat key beside a nested "event" object, ECS fields nested; nested:
        everything in objects; dotted: every field a flat dotted key;
        mixed: even positions flat, odd nested (API.md leaves the real
        layout UNVERIFIED). _id = kibana.alert.uuid = sha256 of (seed,
        space, position): the same parameters give the same alerts, byte
        for byte. Alerts carry kibana.alert.{uuid, start, last_detected,
        original_time, status, workflow_status, severity, risk_score,
        reason, depth, building_block_type (5%)}, kibana.alert.rule.{name,
        uuid, rule_id, severity, risk_score, type, rule_type_id, category,
        tags}, kibana.space_ids, kibana.version, event.{kind, category,
        action, dataset, module}, host.{name, hostname, id, ip, os},
        user.{name, domain}, source/destination.{ip, port}, related.{ip,
        user, hosts, hash}, agent, ecs, and by rule process.*, file.* (with
        the EICAR hash sometimes), dns.question.name (evil.example),
        cloud.* (aws hosts). 100,000 alerts take a few seconds.
    POST /__elastic/late  {"space": "default", "timestamp": "<ISO or date
            math>", "count": 1, "seed": 1, "layout": "flat", "status": null}
        Late arrivals: count new alerts with @timestamp = timestamp (+ n ms
        for the n-th), inserted now (they show up after alerts with later
        timestamps were already fetched). Ids differ on every call.
        Answers {"ok": true, "ids": [...], "index"}.
    POST /__elastic/alerts  {"space": "default", "alerts": [{...}, ...]}
        Inserts the given alert documents as they are (mapped like _bulk;
        400 on a mapping conflict). _id: the document's "_id" member
        (removed), else its kibana.alert.uuid, else a hash of the document.
        Answers {"ok": true, "ids": [...]}.
    GET  /__elastic/alerts/<id>?space=default
        {"_id", "_index", "_version", "workflow_status", "workflow_reason",
        "workflow_user", "_source"} (the workflow values read through field
        lookup, so flat and nested alike; null when absent), or 404.
    GET|POST /__elastic/spaces  GET: {"spaces": [...]}; POST {"id": "soc"}
        creates a space and its empty alerts index.
    GET|POST /__elastic/credentials
        POST {"api_keys": [{"id", "key"}], "users": [{"username",
        "password"}]} replaces the accepted credentials (stored as the
        setting elastic_credentials); GET shows them with each key's
        "encoded" form (b64(id:key)).
    GET|POST|DELETE /__elastic/bulk_failures
        POST {"every": N, "ids": ["..."], "index": "<pattern>", "actions":
        ["index", "create", "update", "delete"], "error":
        "es_rejected_execution_exception", "status": S, "reason": "...",
        "count": C} adds a rule: the items of a bulk request whose position
        in that request (1-based) is a multiple of N, or whose _id is listed
        (at least one of every/ids; all given conditions must hold) fail
        with that error instead of being executed. error defaults to
        es_rejected_execution_exception (429; reason "rejected execution of
        primary operation [...]", UNVERIFIED wording);
        mapper_parsing_exception and document_parsing_exception are 400,
        version_conflict_engine_exception 409, circuit_breaking_exception
        429, others need "status". count caps how many items the rule fails
        (default unlimited). GET lists rules with "applied"; DELETE clears.
    GET|POST|DELETE /__elastic/conflicts
        POST {"ids": ["<alert _id>"], "count": 1} makes the next count
        status updates touching each id a version conflict (count null:
        every one). GET: {"<id>": left|null}; DELETE clears.
    GET  /__elastic/pits   [{"id", "indices", "keep_alive_ms",
        "expires_in_ms"}] of the open points in time.
    POST /__elastic/pits/expire  {"id": "..."} or {} for all: expires
        them now; {"ok": true, "expired": n}.
    GET  /__elastic/docs?index=<target>
        {"indices": [...], "count", "docs": [{"_index", "_id", "_version",
        "_seq_no", "_source"}]} in indexing order (a rewritten document
        keeps its place). POST /__elastic/docs?index=<name> with a JSON
        array of documents (optional "_id" members) inserts them like
        _bulk index actions (creating the index if needed) and answers
        {"ok": true, "index", "ids": [...]}; 400 on a mapping conflict.
    GET  /__elastic/indices  [{"index", "aliases", "docs", "hidden",
        "uuid"}].
    GET|DELETE /__elastic/bulk_counts
        {"<index>": N}: the documents _bulk accepted per index while
        elastic_bulk_count_only was true (none stored). DELETE clears the
        counts; /_sim/reset does too.

SETTINGS (POST /_sim/state/NAME, i.e. sim_set NAME JSON; /_sim/reset clears)

    elastic_credentials          see above.
    elastic_require_api_version  true: Kibana routes need
                                 elastic-api-version.
    elastic_kibana_legacy        true: signals search drops sort and fields.
    elastic_max_result_window    default 10000.
    elastic_now                  ISO time or epoch ms: the clock for "now"
                                 in date math, status timestamps and the
                                 seed's "start" (default: the real clock).
    elastic_bulk_count_only      true: _bulk checks each request's framing
                                 and counts documents without parsing or
                                 storing them (see _bulk; for benchmarks).

FAULTS: the simulator's fault table (POST /_sim/faults, tests/sim/simlib/
faults.py) applies to every route here before this module runs, e.g.
{"path": "^/_bulk$", "status": 429, "headers": {"Retry-After": "1"},
"count": 1}, {"path": "signals/search$", "status": 503}, "latency_ms",
"malformed", "short_body", "reset". Requests are recorded in GET
/_sim/requests.

Speed: a search's matches are kept sorted per snapshot (the index
generations, or the PIT) and query, so paging with search_after is a
bisection; top-level @timestamp ranges are cut out of the query and applied
by bisection when the sort starts with @timestamp, so time-window paging
through Kibana reuses one evaluation too. 100,000 alerts page at size 1000
in a few seconds.
"""

import base64
import binascii
import fnmatch
import gc
import hashlib
import json
import os
import threading
import time
from urllib.parse import unquote

from simlib import BadRequest, route, state
from simlib.vendors import elastic_alerts as alerts
from simlib.vendors import elastic_dsl as dsl
from simlib.vendors import elastic_store as store
from simlib.vendors.elastic_dsl import EsError
from simlib.vendors.elastic_store import STORE

API_VERSION = "2023-10-31"
ES_VERSION = "8.15.0"
DEFAULT_CREDENTIALS = {
    "api_keys": [{"id": "simid", "key": "simkey"}],
    "users": [{"username": "elastic", "password": "changeme"}],
}
WWW_AUTHENTICATE = ['Basic realm="security", charset="UTF-8"',
                    'Bearer realm="security"', "ApiKey"]
STATUSES = ("open", "closed", "acknowledged", "in-progress")
REASONS = ("false_positive", "issue_resolved", "acceptable_risk",
           "expected_activity", "low_severity", "duplicate",
           "investigation_required")
SEARCH_KEYS = ("query", "aggs", "size", "track_total_hits", "_source",
               "fields", "runtime_mappings", "sort", "include_attacks")
LEGACY_KEYS = ("query", "aggs", "_source", "track_total_hits", "size",
               "runtime_mappings")
KIBANA = r"(?:/s/(?P<space>[^/]+))?/api/detection_engine"
TARGET = r"/(?P<target>[^/_][^/]*)"
JSON_TYPES = ("application/json", "application/x-ndjson",
              "application/vnd.elasticsearch+json",
              "application/vnd.elasticsearch+x-ndjson")


def alias_name(space):
    return f".alerts-security.alerts-{space}"


def backing_name(space):
    return f".internal.alerts-security.alerts-{space}-000001"


def clock_ms():
    setting = state.get("elastic_now")
    if isinstance(setting, (int, float)) and not isinstance(setting, bool):
        return int(setting)
    if isinstance(setting, str):
        parsed = dsl.parse_date_value(setting)
        if parsed is not None:
            return parsed
    return store.now_ms()


# --- the alerts mapping ------------------------------------------------------

_alert_kinds = {}


def alert_kinds():
    """The alerts index mapping, derived once from generated alerts."""
    if _alert_kinds:
        return _alert_kinds
    scratch = store.Index("mapping")
    for source in alerts.sample_alerts():
        for path, kind in store.plan_mapping(scratch, source, "x").items():
            scratch.kinds[path] = kind
    kinds = dict(scratch.kinds)
    for path in ("host.ip", "source.ip", "destination.ip", "related.ip"):
        kinds[path] = "ip"
    kinds.update({"kibana.alert.workflow_status_updated_at": "date",
                  "kibana.alert.workflow_user": "keyword",
                  "kibana.alert.workflow_reason": "keyword",
                  "kibana.alert.building_block_type": "keyword"})
    _alert_kinds.update(kinds)
    return _alert_kinds


class Spaces:
    def __init__(self):
        self.ids = []
        self.late = {}

    def ensure(self, space):
        with STORE.lock:
            if space not in self.ids:
                self.ids.append(space)
            index = STORE.indices.get(backing_name(space))
            if index is None:
                index = STORE.create_index(backing_name(space), alert_kinds(),
                                           hidden=True,
                                           alias=alias_name(space))
            return index

    def index(self, space):
        with STORE.lock:
            return STORE.indices.get(backing_name(space))


SPACES = Spaces()
# Injected failures, guarded by STORE.lock.
BULK_RULES = []
CONFLICTS = {}
# Documents accepted per index under elastic_bulk_count_only, guarded by
# STORE.lock.
BULK_COUNTS = {}


def seed_space(params):
    """Apply a checked seed; returns the answer of /__elastic/seed."""
    space = params["space"]
    gen = alerts.Generator(space, params["seed"])
    # Hundreds of thousands of new containers would set off the cyclic
    # garbage collector over and over, each pass visiting every document;
    # they are frozen instead (the store keeps no reference cycles apart
    # from an index and its documents, broken when an index is dropped).
    gc.disable()
    try:
        produced = list(gen.alerts(params, clock_ms()))
        with STORE.lock:
            if not params["append"] and space in SPACES.ids:
                STORE.drop_index(backing_name(space))
            index = SPACES.ensure(space)
            for alert_id, source, status, ts in produced:
                doc = index.put(alert_id, source)
                # The generator knows the values searches read most.
                doc.cache = {"@timestamp": (ts,),
                             "kibana.alert.workflow_status": (status,)}
    finally:
        gc.freeze()
        gc.enable()
    first = produced[0][1]["@timestamp"] if produced else None
    last = produced[-1][1]["@timestamp"] if produced else None
    return {"ok": True, "space": space, "index": index.name,
            "count": len(index.docs), "added": len(produced),
            "first": first, "last": last}


# The default space and its alerts are made on the first request after
# start or /_sim/reset, which keeps both of those quick.
_ready_lock = threading.RLock()
_ready = False


def ready():
    global _ready
    if _ready:
        return
    with _ready_lock, STORE.lock:
        if not _ready:
            seed_space(alerts.check_seed({}))
            _ready = True


def control(methods, pattern):
    """route() for the test-only routes: they see the default alerts too."""
    def register(handler):
        def run(req):
            ready()
            return handler(req)
        route(methods, pattern)(run)
        return handler
    return register


# --- answers -----------------------------------------------------------------

def es_headers():
    return {"Content-Type": "application/json",
            "X-elastic-product": "Elasticsearch"}


def es_answer(req, status, body, headers=None):
    out = es_headers()
    out.update(headers or {})
    if isinstance(body, dict) and req.query.get("filter_path"):
        body = dsl.filter_path(body, req.query["filter_path"])
    if req.query.get("pretty") in ("", "true"):
        data = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    else:
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return status, out, data.encode("utf-8")


def es_error(req, exc, headers=None):
    return es_answer(req, exc.status, exc.body(), headers)


def kibana_headers():
    return {"Content-Type": "application/json; charset=utf-8",
            "kbn-name": "kibana", "elastic-api-version": API_VERSION}


def kibana_answer(status, body):
    return status, kibana_headers(), json.dumps(
        body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def platform_error(status, error, message):
    return kibana_answer(status, {"statusCode": status, "error": error,
                                  "message": message})


def siem_error(status, message):
    return kibana_answer(status, {"message": message, "status_code": status})


def siem_from_es(exc):
    return siem_error(exc.status, f"{exc.etype}: {exc.reason}")


# --- authentication ----------------------------------------------------------

def credentials():
    found = state.get("elastic_credentials")
    return found if isinstance(found, dict) else DEFAULT_CREDENTIALS


def authenticate(req):
    """(principal, None) or (None, (problem, user)): problem is "missing"
    or "wrong"; user names the Basic user or API key id for messages."""
    header = (req.headers.get("Authorization") or "").strip()
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme not in ("apikey", "basic") or not value.strip():
        return None, ("missing", None)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, ("wrong", None)
    name, sep, secret = decoded.partition(":")
    creds = credentials()
    if scheme == "apikey":
        for key in creds.get("api_keys") or []:
            if sep and key.get("id") == name and key.get("key") == secret:
                return name, None
        return None, ("wrong", None)
    for user in creds.get("users") or []:
        if sep and user.get("username") == name and \
                user.get("password") == secret:
            return name, None
    return None, ("wrong", name)


def es_unauthorized(req, problem):
    kind, user = problem
    uri = req.path + ("?" + req.raw_query if req.raw_query else "")
    if kind == "missing":
        reason = f"missing authentication credentials for REST request " \
                 f"[{uri}]"
    elif user is not None:
        reason = f"unable to authenticate user [{user}] for REST request " \
                 f"[{uri}]"
    else:
        reason = "unable to authenticate with provided credentials and " \
                 "anonymous access is not allowed for this request"
    exc = EsError(401, "security_exception", reason,
                  header={"WWW-Authenticate": WWW_AUTHENTICATE})
    return es_error(req, exc, {"WWW-Authenticate":
                               ", ".join(WWW_AUTHENTICATE)})


def kibana_unauthorized(problem):
    kind, user = problem
    if kind == "missing":
        return platform_error(401, "Unauthorized", "Unauthorized")
    who = f"unable to authenticate user [{user}]" if user else \
        "unable to authenticate with provided credentials and anonymous " \
        "access is not allowed for this request"
    reason = f"{who} for REST request [/_security/_authenticate]"
    return platform_error(401, "Unauthorized",
                          f"[security_exception\n\tRoot causes:\n\t\t"
                          f"security_exception: {reason}]: {reason}")


def content_type(req):
    return (req.headers.get("Content-Type") or "").split(";")[0].strip() \
        .lower()


# --- Kibana ------------------------------------------------------------------

def kibana_route(handler, methods="POST"):
    def run(req):
        ready()
        principal, problem = authenticate(req)
        if problem:
            return kibana_unauthorized(problem)
        if req.method not in ("GET", "HEAD") and \
                "kbn-xsrf" not in req.headers and \
                "kbn-version" not in req.headers:
            return platform_error(400, "Bad Request",
                                  "Request must contain a kbn-xsrf header.")
        version = req.headers.get("elastic-api-version")
        if version is None and state.get("elastic_require_api_version"):
            return platform_error(400, "Bad Request",
                                  "Please specify a version via "
                                  "elastic-api-version header")
        if version is not None and version.strip() != API_VERSION:
            return platform_error(400, "Bad Request",
                                  f"Invalid version. Available versions "
                                  f"are: {API_VERSION}")
        space = req.params.get("space") or "default"
        if space not in SPACES.ids:
            return platform_error(404, "Not Found",
                                  f"Saved object [space/{space}] not found")
        body = None
        if req.method not in ("GET", "HEAD"):
            kind = content_type(req)
            if req.body and kind and kind != "application/json":
                return platform_error(415, "Unsupported Media Type",
                                      "Unsupported Media Type")
            if req.body.strip():
                try:
                    body = json.loads(req.body)
                except ValueError:
                    return platform_error(400, "Bad Request",
                                          "Invalid request payload JSON "
                                          "format")
        return handler(req, space, body, principal)
    route(methods, KIBANA + handler.kibana_path)(run)
    return handler


def kibana_path(path):
    def mark(handler):
        handler.kibana_path = path
        return kibana_route(handler, handler.kibana_methods
                            if hasattr(handler, "kibana_methods") else "POST")
    return mark


def body_problem(key, message):
    return platform_error(400, "Bad Request",
                          f"[request body]: {key}: {message}")


def type_name(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def check_signals_search(body):
    """A platform 400 answer for a mistyped accepted key, or None."""
    for key in SEARCH_KEYS:
        if key not in body:
            continue
        value = body[key]
        if key in ("query", "aggs", "runtime_mappings"):
            ok = isinstance(value, dict)
            want = "object"
        elif key == "size":
            if isinstance(value, int) and not isinstance(value, bool):
                if value < 0:
                    return body_problem(key, "Number must be greater than "
                                             "or equal to 0")
                continue
            ok, want = False, "number"
        elif key == "track_total_hits":
            ok = isinstance(value, bool) or (isinstance(value, int)
                                             and value >= 0)
            want = "boolean"
        elif key == "_source":
            ok = isinstance(value, (bool, str)) or (
                isinstance(value, list) and all(isinstance(v, str)
                                                for v in value))
            want = "boolean | string | array"
        elif key == "fields":
            ok = isinstance(value, list) and all(isinstance(v, str)
                                                 for v in value)
            want = "array"
        elif key == "sort":
            ok = isinstance(value, (str, dict, list))
            want = "string | object | array"
        else:
            ok, want = isinstance(value, bool), "boolean"
        if not ok:
            return body_problem(key, f"Expected {want}, received "
                                     f"{type_name(value)}")
    return None


def alerts_targets(space):
    index = SPACES.index(space)
    if index is None:
        return [], ()
    with STORE.lock:
        docs = list(index.docs.values())
        key = ((index.name, index.generation),)
    return [(0, index, docs)], key


@kibana_path("/signals/search")
def signals_search(req, space, body, principal):
    if body is None:
        body = {}
    if not isinstance(body, dict):
        return platform_error(400, "Bad Request",
                              "[request body]: Expected object, received "
                              f"{type_name(body)}")
    problem = check_signals_search(body)
    if problem:
        return problem
    keys = LEGACY_KEYS if state.get("elastic_kibana_legacy") else \
        SEARCH_KEYS
    kept = {k: body[k] for k in keys
            if k in body and body[k] is not None and k != "include_attacks"}
    if not kept and not (body.get("include_attacks") is not None
                         and "include_attacks" in keys):
        return siem_error(400, '"value" must have at least 1 children')
    kept.pop("runtime_mappings", None)
    targets, key = alerts_targets(space)
    try:
        out = store.search(targets, kept, {}, key,
                           text=json.dumps(kept), max_window=max_window(),
                           clock_ms=clock_ms())
    except EsError as exc:
        return siem_from_es(exc)
    return kibana_answer(200, out)


def status_source(source, status, reason, user, moment):
    out = store.set_path(source, "kibana.alert.workflow_status", status)
    out = store.set_path(out, "kibana.alert.workflow_status_updated_at",
                         moment)
    out = store.set_path(out, "kibana.alert.workflow_user", user)
    if reason is not None:
        out = store.set_path(out, "kibana.alert.workflow_reason", reason)
    return out


def enum_problem(key, value, allowed):
    listed = " | ".join(f"'{v}'" for v in allowed)
    return body_problem(key, f"Invalid enum value. Expected {listed}, "
                             f"received '{value}'")


def take_conflict(doc_id):
    left = CONFLICTS.get(doc_id, 0)
    if left is None:
        return True
    if left > 0:
        CONFLICTS[doc_id] = left - 1
        return True
    return False


@kibana_path("/signals/status")
def signals_status(req, space, body, principal):
    started = time.monotonic()
    if not isinstance(body, dict):
        return platform_error(400, "Bad Request",
                              "[request body]: Expected object, received "
                              f"{type_name(body)}")
    status = body.get("status")
    if status not in STATUSES:
        if status is None:
            return body_problem("status", "Required")
        return enum_problem("status", status, STATUSES)
    reason = body.get("reason")
    if reason is not None and reason not in REASONS:
        return enum_problem("reason", reason, REASONS)
    conflicts = body.get("conflicts", "abort")
    if conflicts not in ("abort", "proceed"):
        return enum_problem("conflicts", conflicts, ("abort", "proceed"))
    ids = body.get("signal_ids")
    query = body.get("query")
    if ids is not None:
        if not isinstance(ids, list) or not ids:
            return body_problem("signal_ids", "Array must contain at least "
                                              "1 element(s)")
        if not all(isinstance(i, str) and i for i in ids):
            return body_problem("signal_ids", "String must contain at least "
                                              "1 character(s)")
        wanted = set(ids)

        def pred(doc):
            return doc.id in wanted
    elif isinstance(query, dict):
        ctx = dsl.Context(clock_ms(), json.dumps(query))
        try:
            pred = dsl.compile_query({"bool": {"filter": query}}, ctx)
        except EsError as exc:
            return siem_from_es(exc)
    else:
        return platform_error(400, "Bad Request",
                              "[request body]: Invalid input")
    moment = dsl.format_date(clock_ms())
    with STORE.lock:
        index = SPACES.index(space)
        docs = [d for d in index.docs.values() if pred(d)] if index else []
        updated = version_conflicts = batches = 0
        failures = []
        for start in range(0, len(docs), 1000):
            batches += 1
            for doc in docs[start:start + 1000]:
                if take_conflict(doc.id):
                    version_conflicts += 1
                    failures.append({
                        "index": index.name, "id": doc.id,
                        "cause": store.shard_error(
                            "version_conflict_engine_exception",
                            f"[{doc.id}]: version conflict, required seqNo "
                            f"[{doc.seq_no}], primary term [1]. current "
                            f"document has seqNo [{doc.seq_no + 1}] and "
                            "primary term [1]", index.name, index.uuid),
                        "status": 409})
                    continue
                index.put(doc.id, status_source(doc.source, status, reason,
                                                principal, moment))
                updated += 1
            if version_conflicts and conflicts == "abort":
                break
    if version_conflicts and conflicts == "abort":
        return siem_error(409, "Response Error")
    return kibana_answer(200, {
        "took": int((time.monotonic() - started) * 1000),
        "timed_out": False, "total": len(docs), "updated": updated,
        "deleted": 0, "batches": batches,
        "version_conflicts": version_conflicts, "noops": 0,
        "retries": {"bulk": 0, "search": 0}, "throttled_millis": 0,
        "requests_per_second": -1, "throttled_until_millis": 0,
        "failures": []})


def signals_index(req, space, body, principal):
    return kibana_answer(200, {"name": alias_name(space),
                               "index_mapping_outdated": False})


signals_index.kibana_methods = "GET"
kibana_path("/index")(signals_index)


# --- Elasticsearch -----------------------------------------------------------

def max_window():
    value = state.get("elastic_max_result_window", 10000)
    return value if isinstance(value, int) and not isinstance(value, bool) \
        else 10000


def es_route(methods, pattern, needs_body_type=True):
    def register(handler):
        def run(req):
            ready()
            principal, problem = authenticate(req)
            if problem:
                return es_unauthorized(req, problem)
            if req.body and needs_body_type:
                kind = content_type(req)
                if not kind:
                    return es_answer(req, 406, {
                        "error": "Content-Type header is missing",
                        "status": 406})
                if kind not in JSON_TYPES:
                    return es_answer(req, 406, {
                        "error": f"Content-Type header "
                                 f"[{req.headers.get('Content-Type')}] is "
                                 "not supported", "status": 406})
            if "target" in req.params and req.params["target"]:
                req.params["target"] = unquote(req.params["target"])
            try:
                return handler(req)
            except EsError as exc:
                return es_error(req, exc)
        route(methods, pattern)(run)
        return handler
    return register


def json_body(req):
    if not req.body.strip():
        return {}
    try:
        body = json.loads(req.body)
    except ValueError as exc:
        raise EsError(400, "x_content_parse_exception",
                      f"[1:1] Unexpected character in request body: {exc}") \
            from None
    if not isinstance(body, dict):
        raise EsError(400, "parse_exception",
                      "request body or source parameter is required")
    return body


def flag(req, name, default=False):
    value = req.query.get(name)
    if value is None:
        return default
    return value in ("", "true")


@es_route("GET,HEAD", r"/")
def cluster_info(req):
    return es_answer(req, 200, {
        "name": "soarutils-sim", "cluster_name": "soarutils-sim",
        "cluster_uuid": "c2ltdWxhdG9yLWNsdXN0ZXI",
        "version": {"number": ES_VERSION, "build_flavor": "default",
                    "build_type": "docker", "lucene_version": "9.11.1",
                    "minimum_wire_compatibility_version": "7.17.0",
                    "minimum_index_compatibility_version": "7.0.0"},
        "tagline": "You Know, for Search"})


def do_search(req, target):
    body = json_body(req)
    if "q" in req.query:
        raise EsError(400, "illegal_argument_exception",
                      "the q parameter (query string search) is not "
                      "supported by the soarutils simulator")
    if "scroll" in req.query:
        raise EsError(400, "illegal_argument_exception",
                      "scroll is not supported by the soarutils simulator; "
                      "use a point in time")
    pit_spec = body.get("pit")
    pit = None
    if pit_spec is not None:
        if target is not None:
            raise EsError(400, "action_request_validation_exception",
                          "Validation Failed: 1: [indices] cannot be used "
                          "with point in time. Do not specify any index "
                          "with point in time.;")
        if not isinstance(pit_spec, dict) or \
                not isinstance(pit_spec.get("id"), str):
            raise EsError(400, "parsing_exception",
                          "[pit] failed to parse field [id]")
        pit = STORE.find_pit(pit_spec["id"])
        if pit_spec.get("keep_alive") is not None:
            keep = store.parse_time_value(pit_spec["keep_alive"])
            check_keep_alive(keep, pit_spec["keep_alive"])
            with STORE.lock:
                pit.keep_alive_ms = keep
                pit.expires = time.monotonic() + keep / 1000
        targets = pit.targets
        key = ("pit", pit.id)
    else:
        with STORE.lock:
            indices = STORE.resolve(
                target or "_all",
                ignore_unavailable=flag(req, "ignore_unavailable"),
                allow_no_indices=flag(req, "allow_no_indices", True))
            targets = [(n, i, list(i.docs.values()))
                       for n, i in enumerate(indices)]
            key = tuple((i.name, i.generation) for i in indices)
    out = store.search(targets, body, req.query, key, pit=pit,
                       text=req.text(), max_window=max_window(),
                       clock_ms=clock_ms())
    return es_answer(req, 200, out)


@es_route("GET,POST", r"/_search")
def search_all(req):
    return do_search(req, None)


@es_route("GET,POST", TARGET + r"/_search")
def search_target(req):
    return do_search(req, req.params["target"])


def check_keep_alive(keep, text):
    if keep > store.MAX_KEEP_ALIVE_MS:
        raise EsError(400, "illegal_argument_exception",
                      f"Keep alive for request ({text}) is too large. It "
                      f"must be less than (1d). This limit can be set by "
                      f"changing the [search.max_keep_alive] cluster level "
                      f"setting.")


@es_route("POST", TARGET + r"/_pit")
def open_pit(req):
    text = req.query.get("keep_alive")
    if not text:
        raise EsError(400, "action_request_validation_exception",
                      "Validation Failed: 1: [keep_alive] is not "
                      "specified;")
    keep = store.parse_time_value(text)
    check_keep_alive(keep, text)
    with STORE.lock:
        indices = STORE.resolve(
            req.params["target"],
            ignore_unavailable=flag(req, "ignore_unavailable"))
        pit_id = STORE.open_pit(indices, keep)
    n = len(indices)
    return es_answer(req, 200, {"id": pit_id, "_shards": {
        "total": n, "successful": n, "skipped": 0, "failed": 0}})


@es_route("DELETE", r"/_pit")
def close_pit(req):
    body = json_body(req)
    pit_id = body.get("id")
    if not isinstance(pit_id, str) or not pit_id:
        raise EsError(400, "action_request_validation_exception",
                      "Validation Failed: 1: [id] is not specified;")
    freed = STORE.close_pit(pit_id)
    return es_answer(req, 200, {"succeeded": True, "num_freed": freed})


def do_count(req, target):
    body = json_body(req)
    with STORE.lock:
        indices = STORE.resolve(
            target or "_all",
            ignore_unavailable=flag(req, "ignore_unavailable"))
        targets = [(n, i, list(i.docs.values()))
                   for n, i in enumerate(indices)]
    return es_answer(req, 200, store.count(targets, body, req.text(),
                                           clock_ms()))


@es_route("GET,POST", r"/_count")
def count_all(req):
    return do_count(req, None)


@es_route("GET,POST", TARGET + r"/_count")
def count_target(req):
    return do_count(req, req.params["target"])


def do_refresh(req, target):
    with STORE.lock:
        n = len(STORE.resolve(target or "_all"))
    return es_answer(req, 200, {"_shards": {"total": 2 * n, "successful": n,
                                            "failed": 0}})


@es_route("GET,POST", r"/_refresh")
def refresh_all(req):
    return do_refresh(req, None)


@es_route("GET,POST", TARGET + r"/_refresh")
def refresh_target(req):
    return do_refresh(req, req.params["target"])


@es_route("GET,HEAD", TARGET + r"/_doc/(?P<id>[^/]+)")
def get_doc(req):
    doc_id = unquote(req.params["id"])
    with STORE.lock:
        indices = STORE.resolve(req.params["target"])
        doc = next((i.docs[doc_id] for i in indices if doc_id in i.docs),
                   None)
    name = indices[0].name if indices else req.params["target"]
    if doc is None:
        return es_answer(req, 404, {"_index": name, "_id": doc_id,
                                    "found": False})
    return es_answer(req, 200, {
        "_index": doc.index.name, "_id": doc.id, "_version": doc.version,
        "_seq_no": doc.seq_no, "_primary_term": 1, "found": True,
        "_source": doc.source})


def bulk_inject(position, op, name, doc_id):
    for rule in BULK_RULES:
        spec = rule["rule"]
        if rule["left"] == 0:
            continue
        if "every" in spec and position % spec["every"]:
            continue
        if "ids" in spec and doc_id not in spec["ids"]:
            continue
        if "index" in spec and not fnmatch.fnmatchcase(name, spec["index"]):
            continue
        if "actions" in spec and op not in spec["actions"]:
            continue
        if rule["left"] is not None:
            rule["left"] -= 1
        rule["applied"] += 1
        etype = spec.get("error", "es_rejected_execution_exception")
        status = spec.get("status", store.ERROR_STATUS.get(etype, 500))
        reason = spec.get("reason") or default_reason(etype, name, doc_id)
        return status, {"type": etype, "reason": reason}
    return None


def default_reason(etype, name, doc_id):
    if etype == "es_rejected_execution_exception":
        return ("rejected execution of primary operation "
                "[coordinating_and_primary_bytes=0, replica_bytes=0, "
                "all_bytes=0, primary_operation_bytes=0, "
                "max_coordinating_and_primary_bytes=107374182]")
    if etype in ("mapper_parsing_exception", "document_parsing_exception"):
        return (f"failed to parse field [@timestamp] of type [date] in "
                f"document with id '{doc_id}'. Preview of field's value: "
                f"'not a date'")
    if etype == "version_conflict_engine_exception":
        return (f"[{doc_id}]: version conflict, document already exists "
                "(current version [1])")
    return f"injected {etype}"


def do_bulk(req, target):
    if state.get("elastic_bulk_count_only") is True:
        return count_only_bulk(req, target)
    started = time.monotonic()
    plan = store.parse_bulk(req.body, target)
    refresh = req.query.get("refresh") in ("", "true")
    with STORE.lock:
        errors, items = store.run_bulk(plan, target, bulk_inject, refresh)
    return es_answer(req, 200, {
        "took": int((time.monotonic() - started) * 1000), "errors": errors,
        "items": items})


# --- _bulk under the setting elastic_bulk_count_only ------------------------

# The action lines a plain body is made of (es-index without --id, the
# bench's curl chunks): taken as they are, without parsing them as JSON.
PLAIN_ACTIONS = {b'{"create":{}}': "create", b'{"index":{}}': "index",
                 b'{"create": {}}': "create", b'{"index": {}}': "index"}
SHARDS_JSON = json.dumps(store.SHARDS, separators=(",", ":"))


def plain_bulk(body, target):
    """The action lines of a body whose every action line is one of
    PLAIN_ACTIONS, each followed by a line that starts with "{" and ends
    with "}", with no blank line and a newline at the end; None for any
    other body.

    The source lines are neither split out nor copied: bytes.find, which
    runs in C, jumps from one line break to the next, and only the first
    and last byte of each source line are looked at."""
    if not target:
        return None
    actions = []
    append = actions.append
    find = body.find
    pos, end = 0, len(body)
    while pos < end:
        nl = find(b"\n", pos)
        if nl < 0:
            return None
        append(body[pos:nl])
        src = nl + 1
        pos = find(b"\n", src) + 1
        if not pos or body[src] != 0x7b or body[pos - 2] != 0x7d:
            return None
    if not actions or not set(actions) <= PLAIN_ACTIONS.keys():
        return None
    return actions


def plain_items(actions, name, first_seq_no, refresh):
    """The items of a plain body's answer, as JSON text: every document
    created with a generated 20-character _id and the _seq_no counted on
    from first_seq_no."""
    ids = base64.urlsafe_b64encode(os.urandom(15 * len(actions))).decode()
    quoted = json.dumps(name, ensure_ascii=False)
    heads = {line: f'{{"{op}":{{"_index":{quoted},"_id":"'
             for line, op in PLAIN_ACTIONS.items()}
    mid = f'","_version":1,"result":"created","_shards":{SHARDS_JSON},' \
          '"_seq_no":'
    tail = ',"_primary_term":1,"status":201' + \
        (',"forced_refresh":true}}' if refresh else "}}")
    return ",".join([f"{heads[a]}{ids[20 * k:20 * k + 20]}{mid}"
                     f"{first_seq_no + k}{tail}"
                     for k, a in enumerate(actions)])


def looks_like_object(source):
    text = source.strip()
    return text[:1] == b"{" and text[-1:] == b"}"


def count_only_item(position, op, meta, source, target, refresh):
    """One planned bulk item under elastic_bulk_count_only: its answer,
    counting it in BULK_COUNTS when it is accepted. Runs under
    STORE.lock."""
    name = str(meta.get("_index") or target)
    doc_id = meta.get("_id")
    if doc_id is not None:
        doc_id = str(doc_id)
    elif op in ("index", "create"):
        doc_id = store.new_id()

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
    problem = store.check_index_name(name)
    if problem:
        return failed(400, {"type": "invalid_index_name_exception",
                            "reason": problem, "index_uuid": "_na_",
                            "index": name})
    injected = bulk_inject(position, op, name, doc_id)
    index = STORE.write_index(name)
    if index is not None:
        name = index.name
    if injected is not None:
        return failed(*injected)
    if op not in ("index", "create"):
        return failed(400, {"type": "illegal_argument_exception",
                            "reason": f"[{op}] is not supported by the "
                                      "soarutils simulator with "
                                      "elastic_bulk_count_only"})
    if not looks_like_object(source):
        # The line is parsed only to give the error _bulk gives.
        _, error = store.parse_source(source, name, store.index_uuid(name))
        if error is not None:
            return failed(400, error)
    seq_no = BULK_COUNTS.get(name, 0)
    BULK_COUNTS[name] = seq_no + 1
    item = {"_index": name, "_id": doc_id, "_version": 1,
            "result": "created", "_shards": dict(store.SHARDS),
            "_seq_no": seq_no, "_primary_term": 1, "status": 201}
    if refresh:
        item["forced_refresh"] = True
    return item


def count_only_bulk(req, target):
    started = time.monotonic()
    refresh = req.query.get("refresh") in ("", "true")
    actions = plain_bulk(req.body, target)
    if actions is None or BULK_RULES or store.check_index_name(target):
        plan = store.parse_bulk(req.body, target)
        with STORE.lock:
            items = [{op: count_only_item(position, op, meta, source, target,
                                          refresh)}
                     for position, (_, op, meta, source) in
                     enumerate(plan, 1)]
        errors = any("error" in item[op] for item in items for op in item)
        return es_answer(req, 200, {
            "took": int((time.monotonic() - started) * 1000),
            "errors": errors, "items": items})
    with STORE.lock:
        index = STORE.write_index(target)
        name = index.name if index is not None else target
        first = BULK_COUNTS.get(name, 0)
        BULK_COUNTS[name] = first + len(actions)
    items = plain_items(actions, name, first, refresh)
    took = int((time.monotonic() - started) * 1000)
    data = f'{{"took":{took},"errors":false,"items":[{items}]}}'
    if req.query.get("filter_path") or \
            req.query.get("pretty") in ("", "true"):
        return es_answer(req, 200, json.loads(data))
    return 200, es_headers(), data.encode()


@es_route("POST,PUT", r"/_bulk")
def bulk_all(req):
    return do_bulk(req, None)


@es_route("POST,PUT", TARGET + r"/_bulk")
def bulk_target(req):
    return do_bulk(req, req.params["target"])


# --- control routes ----------------------------------------------------------

def control_json(req):
    body = req.json() if req.body.strip() else {}
    return body


@control("POST", r"/__elastic/seed")
def control_seed(req):
    try:
        params = alerts.check_seed(control_json(req))
        return 200, {}, seed_space(params)
    except alerts.SeedError as exc:
        raise BadRequest(str(exc)) from None


def insert_alerts(space, docs):
    index = SPACES.ensure(space)
    ids = []
    with STORE.lock:
        planned = []
        for n, source in enumerate(docs):
            if not isinstance(source, dict):
                raise BadRequest(f"alert {n} is not an object")
            source = dict(source)
            doc_id = source.pop("_id", None)
            if doc_id is None:
                found = dsl.raw_values(source, "kibana.alert.uuid")
                doc_id = found[0] if found else hashlib.sha256(
                    json.dumps(source, sort_keys=True).encode()).hexdigest()
            try:
                new = store.plan_mapping(index, source, str(doc_id))
            except store.MappingError as exc:
                raise BadRequest(f"alert {n}: {exc}") from None
            for path, kind in new.items():
                index.declare(path, kind)
            planned.append((str(doc_id), source))
        for doc_id, source in planned:
            index.put(doc_id, source)
            ids.append(doc_id)
    return index, ids


@control("POST", r"/__elastic/late")
def control_late(req):
    body = control_json(req)
    if not isinstance(body, dict) or "timestamp" not in body:
        raise BadRequest("late needs a timestamp")
    space = body.get("space", "default")
    count = body.get("count", 1)
    layout = body.get("layout", "flat")
    status = body.get("status")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise BadRequest("count must be a non-negative integer")
    if layout not in alerts.LAYOUTS:
        raise BadRequest("layout must be one of " + ", ".join(alerts.LAYOUTS))
    if status is not None and status not in alerts.STATUSES:
        raise BadRequest("status must be one of "
                         + ", ".join(alerts.STATUSES))
    if not isinstance(space, str) or not alerts.valid_space(space):
        raise BadRequest("space must be a space id")
    try:
        ts = alerts.start_ms(body["timestamp"], clock_ms())
    except alerts.SeedError as exc:
        raise BadRequest(str(exc)) from None
    with STORE.lock:
        batch = SPACES.late.get(space, 0)
        SPACES.late[space] = batch + 1
        gen = alerts.Generator(space, body.get("seed", 1),
                               namespace=f"late{batch}")
        produced = [gen.alert(n, ts + n, layout, status)
                    for n in range(count)]
        index = SPACES.ensure(space)
        for alert_id, source, _ in produced:
            index.put(alert_id, source)
    return 200, {}, {"ok": True, "ids": [a[0] for a in produced],
                     "index": index.name}


@control("POST", r"/__elastic/alerts")
def control_add_alerts(req):
    body = control_json(req)
    if not isinstance(body, dict) or not isinstance(body.get("alerts"),
                                                    list):
        raise BadRequest('body must be {"space": ..., "alerts": [...]}')
    space = body.get("space", "default")
    if not isinstance(space, str) or not alerts.valid_space(space):
        raise BadRequest("space must be a space id")
    _, ids = insert_alerts(space, body["alerts"])
    return 200, {}, {"ok": True, "ids": ids}


@control("GET", r"/__elastic/alerts/(?P<id>[^/]+)")
def control_alert(req):
    space = req.query.get("space", "default")
    index = SPACES.index(space)
    doc = index.docs.get(req.params["id"]) if index else None
    if doc is None:
        return 404, {}, {"error": "no such alert", "id": req.params["id"],
                         "space": space}

    def first(field):
        found = dsl.values(doc, field)
        return found[0] if found else None
    return 200, {}, {"_id": doc.id, "_index": index.name,
                     "_version": doc.version,
                     "workflow_status": first("kibana.alert.workflow_status"),
                     "workflow_reason": first("kibana.alert.workflow_reason"),
                     "workflow_user": first("kibana.alert.workflow_user"),
                     "_source": doc.source}


@control("GET,POST", r"/__elastic/spaces")
def control_spaces(req):
    if req.method == "POST":
        body = control_json(req)
        space = body.get("id") if isinstance(body, dict) else None
        if not isinstance(space, str) or not alerts.valid_space(space):
            raise BadRequest("id must be a space id: lower-case letters, "
                             "digits, _ and -")
        SPACES.ensure(space)
    return 200, {}, {"spaces": list(SPACES.ids)}


@control("GET,POST", r"/__elastic/credentials")
def control_credentials(req):
    if req.method == "POST":
        body = control_json(req)
        if not isinstance(body, dict):
            raise BadRequest("credentials must be an object")
        keys = body.get("api_keys", [])
        users = body.get("users", [])
        if not isinstance(keys, list) or not all(
                isinstance(k, dict) and isinstance(k.get("id"), str)
                and isinstance(k.get("key"), str) for k in keys):
            raise BadRequest("api_keys: a list of {id, key} strings")
        if not isinstance(users, list) or not all(
                isinstance(u, dict) and isinstance(u.get("username"), str)
                and isinstance(u.get("password"), str) for u in users):
            raise BadRequest("users: a list of {username, password} strings")
        state["elastic_credentials"] = {"api_keys": keys, "users": users}
    creds = credentials()
    return 200, {}, {
        "api_keys": [dict(k, encoded=base64.b64encode(
            f"{k['id']}:{k['key']}".encode()).decode())
            for k in creds.get("api_keys", [])],
        "users": creds.get("users", [])}


BULK_RULE_FIELDS = {"every": int, "ids": list, "index": str, "actions": list,
                    "error": str, "status": int, "reason": str,
                    "count": int}


@control("GET,POST,DELETE", r"/__elastic/bulk_failures")
def control_bulk_failures(req):
    with STORE.lock:
        if req.method == "DELETE":
            BULK_RULES.clear()
            return 200, {}, {"ok": True}
        if req.method == "GET":
            return 200, {}, [dict(r["rule"], applied=r["applied"])
                             for r in BULK_RULES]
        spec = control_json(req)
        if not isinstance(spec, dict):
            raise BadRequest("a rule is an object")
        for key, value in spec.items():
            kind = BULK_RULE_FIELDS.get(key)
            if kind is None:
                raise BadRequest(f"unknown rule field: {key}")
            if isinstance(value, bool) or not isinstance(value, kind):
                raise BadRequest(f"rule field {key} has the wrong type")
        if "every" not in spec and "ids" not in spec:
            raise BadRequest("a rule needs every or ids")
        if spec.get("every", 1) < 1:
            raise BadRequest("every must be at least 1")
        if "actions" in spec and not set(spec["actions"]) <= set(
                store.BULK_ACTIONS):
            raise BadRequest("actions: index, create, update, delete")
        etype = spec.get("error", "es_rejected_execution_exception")
        if "status" not in spec and etype not in store.ERROR_STATUS:
            raise BadRequest(f"give a status for {etype}")
        if "ids" in spec:
            spec["ids"] = [str(i) for i in spec["ids"]]
        BULK_RULES.append({"rule": spec, "left": spec.get("count"),
                           "applied": 0})
        return 200, {}, {"ok": True, "index": len(BULK_RULES) - 1}


@control("GET,POST,DELETE", r"/__elastic/conflicts")
def control_conflicts(req):
    with STORE.lock:
        if req.method == "DELETE":
            CONFLICTS.clear()
        elif req.method == "POST":
            body = control_json(req)
            ids = body.get("ids") if isinstance(body, dict) else None
            count = body.get("count", 1) if isinstance(body, dict) else 1
            if not isinstance(ids, list) or not all(isinstance(i, str)
                                                    for i in ids):
                raise BadRequest("ids: a list of alert ids")
            if count is not None and (isinstance(count, bool) or
                                      not isinstance(count, int)):
                raise BadRequest("count: an integer or null")
            for i in ids:
                CONFLICTS[i] = count
        return 200, {}, dict(CONFLICTS)


@control("GET", r"/__elastic/pits")
def control_pits(req):
    with STORE.lock:
        STORE.expire_pits()
        clock = time.monotonic()
        return 200, {}, [{"id": p.id,
                          "indices": [i.name for _, i, _ in p.targets],
                          "keep_alive_ms": p.keep_alive_ms,
                          "expires_in_ms": int((p.expires - clock) * 1000)}
                         for p in STORE.pits.values()]


@control("POST", r"/__elastic/pits/expire")
def control_expire_pits(req):
    body = control_json(req)
    wanted = body.get("id") if isinstance(body, dict) else None
    with STORE.lock:
        chosen = [p for p in STORE.pits.values()
                  if wanted is None or p.id == wanted]
        for p in chosen:
            p.expires = 0
        STORE.expire_pits()
    return 200, {}, {"ok": True, "expired": len(chosen)}


@control("GET,POST", r"/__elastic/docs")
def control_docs(req):
    target = req.query.get("index")
    if not target:
        raise BadRequest("index=<name> is required")
    if req.method == "POST":
        docs = req.json()
        if not isinstance(docs, list):
            raise BadRequest("a JSON array of documents")
        with STORE.lock:
            index = STORE.write_index(target)
            if index is None:
                problem = store.check_index_name(target)
                if problem:
                    raise BadRequest(problem)
                index = STORE.create_index(target,
                                           hidden=target.startswith("."))
            ids = []
            for n, source in enumerate(docs):
                if not isinstance(source, dict):
                    raise BadRequest(f"document {n} is not an object")
                source = dict(source)
                doc_id = str(source.pop("_id", None) or store.new_id())
                try:
                    new = store.plan_mapping(index, source, doc_id)
                except store.MappingError as exc:
                    raise BadRequest(f"document {n}: {exc}") from None
                for path, kind in new.items():
                    index.declare(path, kind)
                index.put(doc_id, source)
                ids.append(doc_id)
        return 200, {}, {"ok": True, "index": index.name, "ids": ids}
    with STORE.lock:
        try:
            indices = STORE.resolve(target)
        except EsError as exc:
            return 404, {}, exc.body()
        docs = [{"_index": i.name, "_id": d.id, "_version": d.version,
                 "_seq_no": d.seq_no, "_source": d.source}
                for i in indices for d in i.docs.values()]
    return 200, {}, {"indices": [i.name for i in indices],
                     "count": len(docs), "docs": docs}


@control("GET,DELETE", r"/__elastic/bulk_counts")
def control_bulk_counts(req):
    with STORE.lock:
        if req.method == "DELETE":
            BULK_COUNTS.clear()
        return 200, {}, dict(BULK_COUNTS)


@control("GET", r"/__elastic/indices")
def control_indices(req):
    with STORE.lock:
        return 200, {}, [{"index": i.name,
                          "aliases": sorted(a for a, m in
                                            STORE.aliases.items()
                                            if i.name in m),
                          "docs": len(i.docs), "hidden": i.hidden,
                          "uuid": i.uuid} for i in STORE.indices.values()]


def reset():
    global _ready
    with _ready_lock, STORE.lock:
        STORE.clear()
        SPACES.ids.clear()
        SPACES.late.clear()
        BULK_RULES.clear()
        CONFLICTS.clear()
        BULK_COUNTS.clear()
        _ready = False
