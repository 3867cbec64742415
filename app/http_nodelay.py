"""uvicorn's HTTP protocol, with TCP_NODELAY set on every accepted connection.

``msvae serve --workers N`` (N > 1) has uvicorn bind the listening socket itself, with ``proto`` 0; accepted
sockets inherit it, and asyncio only turns Nagle's algorithm off for sockets that report ``IPPROTO_TCP``. Each
keep-alive request after a connection's first then waits for the client's delayed ACK, ~40 ms on Linux (uvicorn
issue #3149, open as of uvicorn 0.54). Measured with 2 workers on 2 cores: a keep-alive client's requests took
52 ms each, against 13 ms with 1 worker. One worker is unaffected (asyncio binds that socket from
``getaddrinfo``), and setting the option again there is harmless.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol

#: the import string ``uvicorn.run(http=...)`` takes (each worker process imports it)
NO_DELAY_HTTP = "app.http_nodelay:NoDelayHTTPProtocol"


class NoDelayHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's default HTTP protocol (httptools or h11), sending each response without waiting on Nagle."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]
