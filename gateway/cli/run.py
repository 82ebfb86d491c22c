"""`gateway run` and `gateway demo`: serve with a settings file (one process, or a supervisor of
--workers processes sharing the address, the policy checked once before they start), and the
sample legacy application behind a gateway."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from gateway.cli.common import EXIT_INVALID, EXIT_OK, read_policy


def run_command(args: argparse.Namespace) -> int:
    from gateway import heap
    from gateway.config_errors import ConfigInvalid
    from gateway.server import serve
    from gateway.settings import SettingsError, load_settings
    from gateway.workers import Supervisor, check_address_free, worker_command

    config: Path = args.config
    try:
        settings = load_settings(config)
        if args.log_level is None:
            logging.getLogger().setLevel(settings.log_level.upper())
        if args.workers > 1:
            # every mistake is reported once, here, rather than by each worker in turn
            if read_policy(settings.policy_dir, settings) is None:
                return EXIT_INVALID
            check_address_free(settings.listen.host, settings.listen.port)
            command = worker_command(config.resolve(), args.log_level)
            return Supervisor(command, args.workers).run()
        asyncio.run(serve(settings, ready=lambda _url: heap.settle(), reuse_port=args.worker))
    except (ConfigInvalid, SettingsError, ValueError, OSError) as exc:
        print(f"gateway: cannot start: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def demo_command(port: int, host: str, data_dir: Path | None) -> int:
    from gateway.demo.run import run_demo

    try:
        asyncio.run(run_demo(port, host, data_dir))
    except OSError as exc:
        print(f"gateway demo: cannot start: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK
