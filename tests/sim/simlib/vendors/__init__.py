"""Vendor API modules, one per service; every module here is imported at start.

See simlib/__init__.py for the route decorator and the reset() hook.
"""
