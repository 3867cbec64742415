"""``msvae serve``'s HTTP protocol turns Nagle's algorithm off on the socket uvicorn binds for ``--workers N``."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from api_helpers import live_server, massbank_sample, server_env, serving_model

from app.http_nodelay import NO_DELAY_HTTP


async def _ok(scope, receive, send) -> None:  # the smallest ASGI app: 200 "ok"
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _nodelay_of_accepted_connections(http: str) -> list[int]:
    """TCP_NODELAY of the server side of a keep-alive connection, on a listening socket bound as uvicorn binds it
    for ``--workers N`` (``Config.bind_socket``), the path that loses the option."""
    config = uvicorn.Config(_ok, host="127.0.0.1", port=0, http=http, lifespan="off", log_level="warning")
    sock = config.bind_socket()
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        port = sock.getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(60):  # until the server answers (at most ~6 s)
                try:
                    assert client.get("/").text == "ok"
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert client.get("/").text == "ok"  # the same connection again
            return [
                protocol.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                for protocol in list(server.server_state.connections)
            ]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.mark.skipif(not hasattr(socket, "TCP_NODELAY"), reason="no TCP_NODELAY on this platform")
def test_keep_alive_connections_of_a_pre_bound_socket_have_nodelay() -> None:
    values = _nodelay_of_accepted_connections(NO_DELAY_HTTP)
    assert values and all(value != 0 for value in values)


def test_two_workers_serve_keep_alive_requests(tmp_path, shared_data) -> None:
    """``msvae serve --workers 2`` starts its workers with this protocol and answers on reused connections."""
    env = server_env(f"sqlite:///{tmp_path / 'service.sqlite'}", serving_model(tmp_path), tmp_path)
    sample = massbank_sample(shared_data, 3)
    with live_server(env, tmp_path, workers=2) as server:
        for _ in range(4):  # new connections, which the kernel spreads over the two workers
            with httpx.Client(base_url=server.url, timeout=60) as client:
                for _ in range(3):
                    response = client.post("/v1/annotate", files={"file": ("q.mgf", sample)})
                    assert response.status_code == 200, response.text
                    assert len(response.json()["results"]) == 3
