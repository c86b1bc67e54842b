"""The upstream side: which member of a pool serves a call (selection), whether a failed
attempt may be tried elsewhere (retry), each member's health (cooldown and circuit breaker),
the attempt loop that ties them together (failover), and the mapping of transport failures
to the client's 502/504 (errors). The transport itself is core/transport.py.
"""
