"""`python -m sync_operator`: run the operator (kopf) with our handlers."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import kopf
from pydantic import ValidationError

from sync_operator.app.settings import OperatorSettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="sync-operator", description=__doc__)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    try:
        settings = OperatorSettings()  # validate the environment before anything starts
    except ValidationError as err:
        print(f"sync-operator: invalid settings (SYNC_OPERATOR_* variables):\n{err}",
              file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import sync_operator.app.login  # noqa: F401  (kopf logs in as our client does)
    from sync_operator.app.handlers import EventOnlyMemories  # registers the handlers

    if settings.webhook_enabled:
        from sync_operator.app import stamp_webhooks, webhooks

        webhooks.register(persistent=settings.webhook_persistent)
        if settings.stamp_webhooks:  # only where the API server cannot stamp
            stamp_webhooks.register(persistent=settings.webhook_persistent)

    namespaces: list[str] = [settings.namespace] if settings.namespace else []
    liveness = (f"http://{settings.listen_addr}:{settings.health_port}/healthz"
                if settings.health_port else None)
    asyncio.run(kopf.operator(
        standalone=True, clusterwide=not namespaces, namespaces=namespaces,
        liveness_endpoint=liveness, memories=EventOnlyMemories(),
    ))


if __name__ == "__main__":
    main()
