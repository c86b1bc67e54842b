"""``python -m azure_sim``: serve the simulator in the foreground (``make run``, the benchmark)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from collections.abc import Sequence

from .behaviour import FAIL_MODES
from .server import AzureSimulator, new_event_loop, start_runner


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m azure_sim", description="Azure OpenAI wire-format simulator on 127.0.0.1."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--key", action="append", help="accepted api key (repeatable; default: any key)")
    parser.add_argument("--deployment", action="append", help="known deployment (repeatable; default: any)")
    parser.add_argument(
        "--model",
        action="append",
        type=_deployment_model,
        metavar="DEPLOYMENT=MODEL",
        help="the Azure model a deployment runs, e.g. chat=gpt-5-mini (repeatable; default: the deployment's name)",
    )
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="default delay between SSE events")
    parser.add_argument("--name", default="sim", help="a name for debugging (e.g. the region it stands for)")
    parser.add_argument("--fail", choices=sorted(FAIL_MODES), help="default fail mode (as x-sim-fail)")
    parser.add_argument("--fail-rate", type=float, default=1.0, help="share of requests that fail (as x-sim-fail-rate)")
    parser.add_argument("--retry-after-ms", type=float, help="a 429's retry-after-ms (as x-sim-retry-after-ms)")
    return parser.parse_args(argv)


def _deployment_model(value: str) -> tuple[str, str]:
    deployment, sep, model = value.partition("=")
    if not sep or not deployment or not model:
        raise argparse.ArgumentTypeError(f"expected DEPLOYMENT=MODEL, got {value!r}")
    return deployment, model


async def _serve_forever(sim: AzureSimulator, host: str, port: int) -> None:
    sock = socket.create_server((host, port), backlog=1024)
    runner = await start_runner(sim.make_app(), sock)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    print(f"azure-sim listening on http://{host}:{sock.getsockname()[1]}", flush=True)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Run in the foreground until SIGINT/SIGTERM (used by ``make run`` and the benchmark)."""
    args = _parse_args(argv)
    sim = AzureSimulator(
        api_keys=set(args.key) if args.key else None,
        deployments=set(args.deployment) if args.deployment else None,
        models=dict(args.model or ()),
        record_requests=False,
        name=args.name,
    )
    sim.behaviour.chunk_delay = args.chunk_delay_ms / 1000.0
    sim.behaviour.fail = args.fail
    sim.behaviour.fail_rate = args.fail_rate
    sim.behaviour.retry_after_ms = args.retry_after_ms
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve_forever(sim, args.host, args.port))
    return 0
