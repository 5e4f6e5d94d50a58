"""Who may call, how many at once, and how long a client may take: the service's defences.

- Bearer tokens (`--token-file`) are compared in constant time (hmac.compare_digest) against every
  token, so neither a wrong token nor which token matched shows in the timing. A browser cannot
  put a header on a page load, so the page may also carry the token once as `?token=` (as
  Jupyter does): the answer sets it as an HttpOnly, SameSite=Strict cookie for the page's
  own calls, and the address bar is told to drop it.
- At most `--concurrency` requests are in flight in a worker; one more is answered 503 with
  Retry-After at once, instead of queueing behind the others until every client times out.
- A connection must send its request headers within `--header-timeout` seconds of opening (or of
  its last answer): uvicorn arms no timer until headers are complete, so a client sending one
  byte a second (slowloris) would hold its connection forever. Bodies have their own timeout
  (requests.read_body). Headers are also bounded in size (431 past MAX_HEADER_BYTES).
"""
from __future__ import annotations

import asyncio
import hmac
from asyncio import TimerHandle
from typing import TYPE_CHECKING, Any

from .upgrade import UpgradeIgnoringProtocol

if TYPE_CHECKING:
    from .decisions import Returning

TOKEN_COOKIE = "slarules_token"
MAX_HEADER_BYTES = 64 << 10     # a request's line and headers; llhttp itself sets no bound


class Tokens:
    """The accepted bearer tokens; empty: every request is accepted."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = [t.encode("ascii") for t in tokens]

    @property
    def required(self) -> bool:
        return bool(self._tokens)

    def accepts(self, given: bytes | None) -> bool:
        if not self._tokens:
            return True
        if not given:
            return False
        ok = False
        for token in self._tokens:
            ok |= hmac.compare_digest(token, given)
        return ok

    def from_request(self, authorization: bytes | None, cookie: bytes | None) -> bytes | None:
        """The token a request carries: `Authorization: Bearer T`, else the page's cookie."""
        if authorization is not None:
            scheme, _, value = authorization.partition(b" ")
            return value.strip() if scheme.lower() == b"bearer" else None
        if cookie is not None:
            for part in cookie.split(b";"):
                name, _, value = part.strip().partition(b"=")
                if name == TOKEN_COOKIE.encode():
                    return value
        return None


def token_cookie(token: bytes, secure: bool) -> bytes:
    return (TOKEN_COOKIE.encode() + b"=" + token + b"; Path=/; HttpOnly; SameSite=Strict"
            + (b"; Secure" if secure else b""))


class HeaderTimeoutProtocol(UpgradeIgnoringProtocol):
    """uvicorn's httptools protocol with a deadline on request headers (see the module's docstring), serving
    an upgrade offer it does not take as HTTP/1.1 (upgrade.py)."""

    header_timeout = 10.0       # set from the options before the server starts
    returning: Returning | None = None      # the decision log's (serve/decisions.py), when there is one

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: TimerHandle | None = None
        self._header_bytes = 0
        self._begun = self._answers = 0        # requests begun and answered on this connection

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        self._header_bytes = 0
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.returning is not None:
            self.returning.back(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None:     # headers still incomplete after all of this data
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self._disarm()
                self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n"
                                     b"connection: close\r\n\r\n")
                self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()
        self._begun += 1
        if self.returning is not None:
            self.returning.back(self)

    def on_response_complete(self) -> None:
        self._answers += 1
        if self.returning is not None and self._answers >= self._begun:   # not when its next request is in already (pipelined)
            self.returning.answered(self, self.loop.time())
        super().on_response_complete()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
