"""Fuzzing the node's two trust boundaries with hypothesis: p2p frames and HTTP requests.

`wire_cases` and `http_cases` are structure-aware strategies (a valid message with one part
broken, nesting, huge numbers, wrong types, bad encodings); `targets` runs them against real
objects on loopback -- a P2PHost and a node's aiohttp app -- and checks the properties every
input must keep: bad frames close the link with a close code (and a penalty), bad requests get a
4xx, and nothing is ever an internal error or a traceback in the log. The test modules here run
each target for a few seconds; scripts/fuzz.py runs them for minutes.
"""
