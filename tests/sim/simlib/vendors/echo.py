"""A generic route that describes the request it received.

The fault tests use it because its answer depends on nothing but the request,
so any difference a test sees comes from the fault rule under test.
"""

from simlib import route


@route("ANY", r"/echo(/.*)?")
def echo(req):
    return 200, {}, {
        "method": req.method,
        "path": req.path,
        "query": req.query,
        "raw_query": req.raw_query,
        "headers": req.header_dict(),
        "body": req.text(),
    }
