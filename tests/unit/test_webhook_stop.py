"""A stop of the webhook's runner (a cancellation) ends its retry loops even when a library
hands it over as a TimeoutError, which is an OSError: a runner that went on serving kept its
configuration registered and injected pods meant for another webhook."""

from __future__ import annotations

import asyncio

from enclave_operator.webhook.runner import stopping


async def _request() -> None:
    """An HTTP request whose client's timeout context turns a cancellation into a timeout."""
    try:
        await asyncio.sleep(0.01)
    except asyncio.CancelledError as e:
        raise TimeoutError("request timed out") from e


async def _retry_loop(attempts: list[int]) -> None:
    """The runner's loop: an OSError is an API server not answering, tried again."""
    while len(attempts) < 50:  # bounded: a loop that ignored the stop ends here, not cancelled
        attempts.append(1)
        try:
            await _request()
        except OSError as e:
            stopping(e)
            await asyncio.sleep(0)


def test_a_stop_that_arrives_as_a_timeout_ends_the_loop() -> None:
    async def main() -> int:
        attempts: list[int] = []
        task = asyncio.create_task(_retry_loop(attempts))
        await asyncio.sleep(0.005)  # inside the first request
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        assert task.cancelled()
        return len(attempts)

    assert asyncio.run(main()) == 1


def test_a_real_timeout_is_left_to_the_loop() -> None:
    async def main() -> None:
        stopping(TimeoutError("the API server is slow"))  # no stop asked: nothing raised

    asyncio.run(main())
