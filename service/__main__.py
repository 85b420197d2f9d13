"""Command line: ``python -m service run|simulate|train|rescore|export-training|outbox|...``.

``run`` serves the app (starting a Redis if none answers); the others are batch tools.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from types import FrameType

from service.settings import Settings, SettingsError

log = logging.getLogger("riskwire")

# On SIGTERM, how long open requests may take to finish before uvicorn cancels them. Requests
# are bounded by Redis timeouts (Fingerprint gives up after 3 s); after this, the lifespan
# shutdown (the forwarder's flush, RISKWIRE_SHUTDOWN_FLUSH_S) bounds the rest.
GRACEFUL_SHUTDOWN_S = 5


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _run(settings: Settings) -> int:
    import uvicorn

    from service.app import create_app
    from service.http_protocol import OneWriteProtocol
    from service.model import ModelError
    from service.redis_server import LocalRedis, embedded_binary, local_port, redis_answers

    try:
        app = create_app(settings)
    except (ModelError, SettingsError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    embedded: LocalRedis | None = None
    if not redis_answers(settings.redis_url):
        port = local_port(settings.redis_url)
        if port is None:
            log.error("no Redis answers at the configured RISKWIRE_REDIS_URL and it is not local")
            return 2
        embedded = LocalRedis(embedded_binary(), port).start()
        log.info(
            "no Redis answered on 127.0.0.1:%d; started embedded redis-server (pid %s, "
            "no persistence), it stops when riskwire exits",
            port,
            embedded.pid,
        )
        # uvicorn re-raises the SIGTERM that stopped it once it has shut down; left to its
        # default action, that ends the process before ``finally`` stops this Redis.
        signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            http=OneWriteProtocol,
            log_level=settings.log_level.lower(),
            # uvicorn's own lines (start-up, access log, errors) go through the JSON handler
            # configured above instead of its plain-text default.
            log_config=None,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


# Subcommands implemented by their own module's ``main(argv)``: (module, help).
DELEGATED = {
    "simulate": (
        "service.simulate",
        "write simulated, labelled traffic (events.jsonl, labels.jsonl)",
    ),
    "train": ("service.training", "train, calibrate and write the risk model"),
    "rescore": ("service.rescore", "rescore stored or exported events with the current model"),
    "export-training": ("service.labels", "join recorded labels with stored features"),
    "outbox": ("service.outbox_admin", "outbox stats, parked messages: list, replay, purge"),
}


def _misconfigured(error: SettingsError) -> int:
    """A setting that does not parse, in one line: the exit status of a usage error."""
    print(f"configuration error: {error}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0]][0])
        try:
            result: int = module.main(argv[1:])
        except SettingsError as exc:
            return _misconfigured(exc)
        except OSError as exc:
            # A file or directory the tool could not read or write: the message names it,
            # and a traceback would only bury it.
            print(f"python -m service {argv[0]}: {exc}", file=sys.stderr)
            return 1
        return result
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="serve the API on RISKWIRE_HOST:RISKWIRE_PORT")
    baseline = commands.add_parser(
        "baseline-model", help="write the hand-set baseline model (models/baseline-model.json)"
    )
    baseline.add_argument("--out", default="models/baseline-model.json")
    for name, (_, help_text) in DELEGATED.items():
        commands.add_parser(name, help=help_text, add_help=False)
    args = parser.parse_args(argv)
    if args.command == "baseline-model":
        from pathlib import Path

        from service.baseline_model import build_baseline
        from service.model import save

        save(*build_baseline(), Path(args.out))
        print(f"wrote {args.out}")
        return 0
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        return _misconfigured(exc)
    from service.logs import configure

    configure(settings.log_level)
    if args.command == "run":
        return _run(settings)
    return 2


if __name__ == "__main__":
    sys.exit(main())
