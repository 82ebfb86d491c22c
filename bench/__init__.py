"""The benchmark: the gateway against a bare aiohttp pass-through and nginx, on one machine.

`python -m bench` (or `bench/run`) starts every server on 127.0.0.1, drives them with wrk and
curl, and writes bench/results/latest.json. See bench/README.md for what each figure means.
"""
