"""Command line: `python -m core serve | demo | check | schema [--markdown | --doc PAGE] | usage`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from core.config import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core", description="aoai-gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve function_app.py's routes locally (like `func start`)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7071, help="0 picks a free port (printed when ready)")
    serve.add_argument(
        "--header-timeout",
        type=_positive(float),
        metavar="SECONDS",
        help="close a connection whose request line and headers take longer than this (default 10)",
    )
    serve.add_argument(
        "--limit-concurrency",
        type=_positive(int),
        metavar="N",
        help="answer 503 beyond this many connections or requests in flight (default 1000)",
    )
    demo = commands.add_parser("demo", help="the local Azure OpenAI simulator and the gateway before it (make run)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=7071, help="the gateway's port")
    demo.add_argument("--sim-port", type=int, default=8081, help="the simulator's port")
    check = commands.add_parser("check", help="validate the configuration and print the route table")
    check.add_argument("file", nargs="?", help="the configuration file (default: CONFIG_PATH and the environment)")
    check.add_argument("--strict", action="store_true", help="fail on warnings too (for CI)")
    schema = commands.add_parser("schema", help="print the configuration's JSON Schema")
    schema.add_argument("--markdown", action="store_true", help="print the key reference in Markdown instead")
    schema.add_argument("--doc", metavar="PAGE", help="write the key reference between PAGE's markers (make schema)")
    commands.add_parser("usage", help="print each limited caller key's current counts from the usage table")
    args = parser.parse_args(argv)

    if args.command == "schema":
        return _schema(args)
    if args.command == "check":
        from core.check import run_check

        environ = dict(os.environ) if args.file is None else {**os.environ, "CONFIG_PATH": args.file}
        return run_check(environ, sys.stdout, strict=args.strict)
    if args.command == "usage":
        from core.usage_report import run_usage

        return run_usage(os.environ, sys.stdout)
    if args.command == "demo":
        return _demo(args)
    return _serve(args)


def _schema(args: argparse.Namespace) -> int:
    if not args.markdown and args.doc is None:
        from core.config.schema import main as schema_main

        schema_main()
        return 0
    from pathlib import Path

    from core.config import reference
    from core.config.schema import json_schema

    text = reference.markdown(json_schema())
    if args.doc is None:
        sys.stdout.write(text)
    else:
        page = Path(args.doc)
        page.write_text(reference.replaced(page.read_text(), text))
    return 0


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def _demo(args: argparse.Namespace) -> int:
    import signal
    import tempfile

    from core import demo

    # SIGTERM (an IDE's stop button) ends the process by an exception, so the simulator is stopped on the way out;
    # uvicorn hands the signal back once it has shut the gateway down.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    try:
        demo.check_ports(args.host, args.port, args.sim_port)
        with demo.simulator(args.sim_port) as sim_url, tempfile.TemporaryDirectory() as directory:
            os.environ["CONFIG_PATH"] = str(demo.local_config(sim_url, directory))
            print(f"aoai-gateway: the local Azure OpenAI simulator is on {sim_url}", file=sys.stderr)
            return _serve(args)
    except demo.DemoError as error:
        print(f"aoai-gateway: {error}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    from core import accesslog, gateway, logs

    handler = logs.configure(os.environ.get("LOG_LEVEL", "INFO"), sys.stderr)
    accesslog.write_lines_to(handler.write_line)  # what logging would write, without a record per call
    try:
        gateway.start()
    except ConfigError as error:
        print(f"aoai-gateway: refusing to start, the configuration is invalid:\n{error}", file=sys.stderr)
        return 2
    from core.serve import run

    limits = {"header_timeout": getattr(args, "header_timeout", None),
              "limit_concurrency": getattr(args, "limit_concurrency", None)}  # fmt: skip
    run(args.host, args.port, **{name: value for name, value in limits.items() if value is not None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
