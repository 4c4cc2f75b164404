"""Worker health check: does a worker *on this host* poll its task queues?

A TCP connection to Temporal proves nothing about the worker (a wedged worker still
connects).  Temporal records who polled each task queue and when; this check asks it
and passes only when a poller whose identity names this host (the SDK's default
identity is ``pid@hostname``) polled every given queue within ``MAX_SILENCE``.

    python -m workers.health            # the container's HEALTHCHECK; exit 0 = polling
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Iterable

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from authflow.policies import ALL_TASK_QUEUES

# Pollers re-poll at least every minute (long polls last up to 60 s).
MAX_SILENCE = 90.0


async def polling_queues(
    client: Client, queues: Iterable[str], host: str, *, now: float | None = None
) -> dict[str, bool]:
    """Per queue: did a poller of ``host`` poll it within ``MAX_SILENCE``?"""
    now = time.time() if now is None else now
    found: dict[str, bool] = {}
    for queue in queues:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            ),
            timeout=None,
        )
        found[queue] = any(
            poller.identity.endswith(f"@{host}")
            and now - poller.last_access_time.ToSeconds() < MAX_SILENCE
            for poller in response.pollers
        )
    return found


async def _main(queues: list[str]) -> int:
    from authflow.settings import get_settings
    from authflow.temporal import connect

    client = await asyncio.wait_for(connect(get_settings()), 10)
    found = await asyncio.wait_for(polling_queues(client, queues, socket.gethostname()), 10)
    silent = [queue for queue, ok in found.items() if not ok]
    if silent:
        print(f"no poller of this host on: {', '.join(silent)}", file=sys.stderr)
        return 1
    print("worker polling")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.argv[1:] or list(ALL_TASK_QUEUES))))
