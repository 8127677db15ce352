"""`kubectl sync console`: hand a user's token to their browser without putting it in a
URL, and without state in the (any number of) console replicas.

The CLI, authenticated by the token, asks for a handover code: the token encrypted
and signed with the replicas' shared key (Fernet: AES-CBC + HMAC), valid for
`HANDOVER_SECONDS`. The browser opens `/?handover=CODE`; the page trades the code for
the session cookie and removes it from its address bar. A leaked code is worth a
minute; the token itself never appears in a URL, a log or a history entry.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

HANDOVER_SECONDS = 60


class Handover:
    def __init__(self, key: str | None) -> None:
        # Without a configured key each replica makes its own: a code then works only
        # on the replica that issued it (the chart shares one through a Secret).
        self._fernet = Fernet(key.encode() if key else Fernet.generate_key())

    def code(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def token(self, code: str) -> str | None:
        """The token a fresh, untampered code carries, or None."""
        try:
            return self._fernet.decrypt(code.encode(), ttl=HANDOVER_SECONDS).decode()
        except (InvalidToken, ValueError):
            return None
