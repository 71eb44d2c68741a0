"""The ceiling: a raw `websockets` server that echoes every text frame back."""

import argparse
import asyncio

from websockets.asyncio.server import serve


async def _echo(ws) -> None:
    try:
        async for message in ws:
            await ws.send(message)
    except Exception:
        pass


async def asgi_echo(scope, receive, send) -> None:
    """The same echo as a bare ASGI app: the ceiling through the ASGI server we use."""
    if scope["type"] != "websocket":
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept", "subprotocol": "ocpp1.6"})
        elif message["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text")})
        else:
            return


async def main(port: int) -> None:
    async with serve(
        _echo,
        "127.0.0.1",
        port,
        subprotocols=["ocpp1.6"],
        ping_interval=None,
        compression=None,
        max_queue=16,
        backlog=4096,
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--asgi", action="store_true", help="serve a raw ASGI echo app through uvicorn instead"
    )
    args = parser.parse_args()
    if args.asgi:
        import uvicorn

        uvicorn.run(
            asgi_echo,
            host="127.0.0.1",
            port=args.port,
            ws="websockets",
            lifespan="off",
            log_level="warning",
            backlog=4096,
            ws_per_message_deflate=False,
        )
    else:
        asyncio.run(main(args.port))
