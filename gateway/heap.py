"""The garbage collector, tuned once the gateway has started.

Everything made at start-up (modules, settings, the policy, templates, the store and HTTP
clients) lives as long as the process. Left in the collector's generations, each full collection
walks all of it again, which costs every request a little and some requests milliseconds.
`settle()` moves it out of the collector's sight (gc.freeze) and collects the short-lived
objects of requests less often. Reference counting still frees almost everything at once; only
reference cycles wait for a collection.
"""

from __future__ import annotations

import gc

# Allocations (minus frees) between young-generation collections; CPython's default is 700,
# which a proxied request's few hundred objects reach every other request.
YOUNG_THRESHOLD = 20_000
OLDER_THRESHOLDS = (20, 20)  # young collections per middle one, middle per full one


def settle() -> None:
    """Call once, after start-up and before serving: collect, freeze what is left, and space
    the collections out."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
