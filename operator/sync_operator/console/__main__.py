"""`python -m sync_operator.console`: the console server (settings: SYNC_CONSOLE_*)."""

from __future__ import annotations

import asyncio
import logging
import sys

from pydantic import ValidationError

from sync_operator.console.server import serve
from sync_operator.console.settings import ConsoleSettings


def main() -> None:
    try:
        settings = ConsoleSettings()
    except ValidationError as err:
        print(f"sync-console: invalid settings (SYNC_CONSOLE_* variables):\n{err}",
              file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
