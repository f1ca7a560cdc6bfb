"""The camera page: a live preview for aiming the camera, produced by the daemon only
while someone watches (control socket ``preview``), relayed as an MJPEG stream for the
<img> and as server-sent events with each face's quality verdict, the similarity and the
liveness of the person at the door. Nothing is stored."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..control import ControlClient, ControlError
from .common import page, render, services

BOUNDARY = "facegate-frame"


async def _preview_lines(request: Request, with_jpeg: bool) -> AsyncIterator[dict[str, Any]]:
    """The daemon's preview messages, for as long as the browser stays."""
    client: ControlClient = await run_in_threadpool(services(request).control)
    try:
        stream: Iterator[dict[str, Any]] = await run_in_threadpool(
            client.stream, "preview", jpeg=with_jpeg
        )
        async for line in iterate_in_threadpool(stream):
            yield line
    finally:
        client.close()


@page
async def camera(request, session) -> Response:
    return render(request, session, "camera.html")


@page
async def mjpeg(request, session) -> Response:
    async def frames() -> AsyncIterator[bytes]:
        async for line in _preview_lines(request, with_jpeg=True):
            if "preview" in line:
                jpeg = base64.b64decode(line["preview"]["jpeg"])
                yield (
                    (
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpeg)}\r\n\r\n"
                    ).encode()
                    + jpeg
                    + b"\r\n"
                )

    try:
        # connect before answering, so that a daemon that is not there is a 503
        first = frames()
        head = await first.__anext__()
    except (ControlError, StopAsyncIteration) as exc:
        return Response(f"no preview: {exc}\n", 503, media_type="text/plain")

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for chunk in first:
            yield chunk

    return StreamingResponse(body(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}")


@page
async def info(request, session) -> Response:
    """Server-sent events: what the loop saw in each preview frame."""

    async def events() -> AsyncIterator[str]:
        try:
            async for line in _preview_lines(request, with_jpeg=False):
                if "preview" in line:
                    yield f"event: frame\ndata: {json.dumps(line['preview']['info'])}\n\n"
                else:
                    yield ": idle\n\n"
        except ControlError as exc:
            yield f"event: down\ndata: {json.dumps(str(exc))}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


routes = [
    Route("/camera", camera),
    Route("/camera/stream.mjpg", mjpeg),
    Route("/camera/info", info),
]
