"""Prometheus metrics of one gateway, in a registry of its own (never the process-wide one, so
gateways built in one process do not share counts).

The request path pays for a few dict look-ups and additions: its series (requests by decision,
upstream and store latency) are plain numbers kept by the gateway and read by a collector at
scrape time, with no lock (they change only on the event loop's thread) and no `labels()` call
per request. The rarer events (answers, lockouts, reloads) use prometheus_client's counters.
"""

from __future__ import annotations

import functools
import inspect
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from gateway.decision import Outcome
from gateway.store import Store, StoreUnavailable

# no *_created series: only what is counted
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

# What the proxy handler did with a request: decide()'s outcomes (an access rule's deny is
# "deny" too), and what it settles before deciding
BYPASS, LOGIN_REQUEST, REFUSED_COOKIE, NOT_FOUND = (
    "bypass",
    "login_request",
    "refused_cookie",
    "not_found",
)
DECISIONS = (
    *(outcome.value for outcome in Outcome),
    BYPASS,
    LOGIN_REQUEST,
    REFUSED_COOKIE,
    NOT_FOUND,
)
# Answers to a challenge page, by outcome
OK, WRONG, REPLAY, LOCKED_OUT, DELAYED, NO_CODE = (
    "ok",
    "wrong",
    "replay",
    "locked_out",
    "delayed",
    "no_code",
)
UPSTREAM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else str(float(bound))


class Series:
    """One histogram series: counts per bucket (the last is +Inf) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1  # the first bound >= seconds
        self.total += seconds


class Histograms:
    """A labelled histogram family whose series are `Series`, exposed by `collect()`."""

    def __init__(self, name: str, documentation: str, label: str, bounds: tuple[float, ...]):
        self.name, self.documentation, self.label, self.bounds = name, documentation, label, bounds
        self.series: dict[str, Series] = {}

    def labels(self, value: str) -> Series:
        found = self.series.get(value)
        if found is None:
            found = self.series[value] = Series(self.bounds)
        return found

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, series in list(self.series.items()):
            running, buckets = 0, []
            for bound, count in zip((*series.bounds, float("inf")), series.counts, strict=True):
                running += count
                buckets.append((_le(bound), float(running)))
            family.add_metric([value], buckets, series.total)
        yield family


class Requests:
    """gateway_requests_total: plain counts by application, then decision."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "gateway_requests",
            "Requests to the applications, by application and what the gateway decided",
            labels=["application", "decision"],
        )
        for application, counts in list(self.counts.items()):
            for decision, count in list(counts.items()):
                family.add_metric([application, decision], count)
        yield family


class UpstreamSeries:
    """One application's upstream latency and failures (gateway.proxy.http.Timing)."""

    __slots__ = ("_failures", "observe")

    def __init__(self, metrics: Metrics, application: str) -> None:
        self.observe: Callable[[float], None] = metrics.upstream_latency.labels(application).observe
        self._failures = {
            reason: metrics.upstream_failures.labels(application, reason)
            for reason in ("timeout", "unreachable")
        }

    def failed(self, reason: str) -> None:
        self._failures[reason].inc()


class Metrics:
    def __init__(self, applications: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Requests()
        r.register(self.requests)
        self.challenges = Counter(
            "gateway_challenges",
            "Answers on the challenge page, by method and outcome "
            "(ok, wrong, replay, locked_out, delayed, no_code)",
            ["method", "outcome"],
            registry=r,
        )
        self.enrolments = Counter(
            "gateway_enrolments",
            "Answers that prove a new second factor, by method and outcome (ok, wrong, no_code)",
            ["method", "outcome"],
            registry=r,
        )
        self.codes_sent = Counter(
            "gateway_codes_sent",
            "One-time codes handed to a sender, by method and result (sent, failed)",
            ["method", "result"],
            registry=r,
        )
        self.failures = Counter(
            "gateway_failures",
            "Wrong answers counted for lockouts, by kind (password, second_factor)",
            ["kind"],
            registry=r,
        )
        self.lockouts = Counter(
            "gateway_lockouts",
            "Lockouts begun by a wrong answer, by scope "
            "(user_ip, user, user_browser, ip, user_day)",
            ["scope"],
            registry=r,
        )
        self.upstream_latency = Histograms(
            "gateway_upstream_latency_seconds",
            "Time from sending a request to an application to its response headers",
            "application",
            UPSTREAM_BUCKETS,
        )
        r.register(self.upstream_latency)
        self.upstream_failures = Counter(
            "gateway_upstream_failures",
            "Requests an application did not answer, by reason (timeout, unreachable)",
            ["application", "reason"],
            registry=r,
        )
        self.store_latency = Histograms(
            "gateway_store_latency_seconds",
            "Time of each store operation, by operation (failed ones included)",
            "operation",
            STORE_BUCKETS,
        )
        r.register(self.store_latency)
        self.store_errors = Counter(
            "gateway_store_errors",
            "Store operations that failed (store unreachable or in error), by operation",
            ["operation"],
            registry=r,
        )
        self.policy_reloads = Counter(
            "gateway_policy_reloads",
            "Policy reloads, by result (accepted, refused)",
            ["result"],
            registry=r,
        )
        for result in ("accepted", "refused"):
            self.policy_reloads.labels(result)
        self._upstream: dict[str, UpstreamSeries] = {}
        self._counters: dict[tuple[Counter, tuple[str, ...]], Counter] = {}
        for application in applications:
            self._for_application(application)

    def _for_application(self, application: str) -> dict[str, int]:
        counts = self.requests.counts[application] = dict.fromkeys(DECISIONS, 0)
        self._upstream[application] = UpstreamSeries(self, application)
        return counts

    def decided(self, application: str, decision: str) -> None:
        """One request to `application` and what became of it (one of DECISIONS)."""
        counts = self.requests.counts.get(application)
        if counts is None:
            counts = self._for_application(application)
        counts[decision] += 1

    def upstream(self, application: str) -> UpstreamSeries:
        found = self._upstream.get(application)
        if found is None:
            self._for_application(application)
            found = self._upstream[application]
        return found

    def count(self, counter: Counter, *labels: str) -> None:
        """counter{labels} += 1, for the rarer events (answers, lockouts, reloads)."""
        key = (counter, labels)
        series = self._counters.get(key)
        if series is None:
            series = self._counters[key] = counter.labels(*labels)
        series.inc()

    def policy_gauges(self, generation: Callable[[], float], failing: Callable[[], float]) -> None:
        """Read at each scrape: the policy generation in force, and 1 while the files on disk
        are refused (the last good policy stays in force), else 0."""
        Gauge(
            "gateway_policy_generation",
            "Generation of the policy in force (1 at start, one more at each accepted reload)",
            registry=self.registry,
        ).set_function(generation)
        Gauge(
            "gateway_policy_reload_failing",
            "1 while the policy files on disk are refused and an older policy is in force",
            registry=self.registry,
        ).set_function(failing)

    def exposition(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)


class TimedStore:
    """A store whose every operation is timed into `gateway_store_latency_seconds`; anything
    else (attributes, helpers) is the wrapped store's own. Made once per gateway around
    whichever backend the settings name, so the backends know nothing of metrics."""

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self.wrapped = store
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.wrapped, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute
        observe = self._metrics.store_latency.labels(name).observe
        errors = self._metrics.store_errors.labels(name)
        clock = time.perf_counter

        @functools.wraps(attribute)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return await attribute(*args, **kwargs)
            except StoreUnavailable:
                errors.inc()
                raise
            finally:
                observe(clock() - start)

        setattr(self, name, timed)  # made once: later look-ups find it without __getattr__
        return timed


def timed_store(store: Store, metrics: Metrics) -> Store:
    return cast(Store, TimedStore(store, metrics))
