"""Requests that offer an upgrade the server does not make (`Upgrade: h2c`) are served as HTTP/1.1.

Java's `java.net.http.HttpClient` (HTTP/2 by default) and `curl --http2` offer a cleartext HTTP/2
upgrade on a plain POST: `Connection: Upgrade, HTTP2-Settings`, `Upgrade: h2c`. A server may
ignore the offer and answer in HTTP/1.1 (RFC 9110 section 7.8), which is what uvicorn means to
do; but llhttp (httptools) stops parsing at the end of such a request's headers, reports the
message complete, and leaves the body unread: the app saw an empty body and the connection's
next bytes were a parse error (uvicorn issue #2722). So every Java client with default settings
got "the body is empty".

This protocol takes over where llhttp stops: the body is read by its Content-Length and handed to
the request as uvicorn would have, then a fresh parser reads the connection's next request. A
chunked body offered with an upgrade is refused (400, the connection closed) rather than
decoded by a second parser of our own; clients that offer h2c send a Content-Length when they
know the body's size, as a case file's is.
"""
from __future__ import annotations

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class UpgradeIgnoringProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that serves an unaccepted upgrade offer as plain HTTP/1.1."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._body_left: int | None = None      # bytes of an upgrade-offering request's body still to come

    def data_received(self, data: bytes) -> None:
        if self._body_left is not None:
            data = self._take_body(data)
            if not data:
                return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade as upgrade:
            if self._should_upgrade():       # a WebSocket, when uvicorn has a WebSocket protocol
                self.handle_websocket_upgrade()
            else:
                self._serve_without_upgrade(data[upgrade.args[0]:])

    def _serve_without_upgrade(self, rest: bytes) -> None:
        """The request's headers are parsed and its ASGI task started with an empty, complete body:
        give it its body instead (the task has not run yet), then parse what follows afresh."""
        length = 0
        for name, value in self.headers:
            if name == b"transfer-encoding":
                self.send_400_response("A chunked body cannot come with an Upgrade offer here: send Content-Length, "
                                       "or no Upgrade header (this server speaks HTTP/1.1).")
                return
            if name == b"content-length":
                if not value.isdigit():
                    self.send_400_response("Invalid Content-Length.")
                    return
                length = int(value)
        self._new_parser()
        if length:
            self.cycle.more_body = True
            self.cycle.message_event.clear()
            self._body_left = length
            rest = self._take_body(rest)
        if rest:
            self.data_received(rest)

    def _take_body(self, data: bytes) -> bytes:
        """Hand the body's next bytes to the request; what is left over belongs to the next request."""
        assert self._body_left is not None
        part, rest = data[:self._body_left], data[self._body_left:]
        self._body_left -= len(part)
        cycle = self.cycle
        if not cycle.response_complete:     # an answer already sent (a 413 say) needs no more of the body
            cycle.body += part
            if len(cycle.body) > HIGH_WATER_LIMIT:
                self.flow.pause_reading()
        if self._body_left == 0:
            self._body_left = None
            cycle.more_body = False
        cycle.message_event.set()
        return rest

    def _new_parser(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        try:
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)     # as uvicorn's own parser
        except AttributeError:      # httptools < 0.6.3
            pass
