"""``python -m enclave_operator.webhook NAMESPACE CONFIGMAP``: the webhook's own process,
started by the operator (webhook.process). Exit status 0: off (no settings) or stopped by
SIGTERM/SIGINT, after a local configuration is removed; anything else: restart me."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from enclave_operator.entry import without_client_library

without_client_library()  # before kopf is imported (through kube)

from enclave_operator.logs import configure  # noqa: E402
from enclave_operator.webhook.process import die_with_parent  # noqa: E402
from enclave_operator.webhook.runner import WebhookRunner  # noqa: E402


async def _serve(runner: WebhookRunner) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):  # run's finally unregistered a local one
        await runner.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m enclave_operator.webhook")
    parser.add_argument("namespace")
    parser.add_argument("configmap")
    parser.add_argument("--parent", type=int, default=None, help="the operator's pid")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--log-format", default="text")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    configure(args.log_format, args.verbose)
    if args.parent is not None:
        die_with_parent(args.parent)
    runner = WebhookRunner(
        args.namespace,
        config_name=args.configmap,
        address=args.address,
        port=args.port,
        kubeconfig=args.kubeconfig,
    )
    asyncio.run(_serve(runner))


if __name__ == "__main__":
    main()
