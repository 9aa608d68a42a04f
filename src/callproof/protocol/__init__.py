"""The protocol: the spec's objects and rules (spec/callproof-v1.md), with no SQL, files or network.

Tickets and their JWS framing, canonical JSON, call codes and check words, ticket states, the
clock, keyed hashes and the event types. Everything above this package builds on it; nothing here
imports from above.

    >>> from callproof.protocol.codes import display_code
    >>> display_code("482917360")
    '482 917 360'
"""
