"""The floor: a bare aiohttp pass-through proxy (streaming both ways, pooled keep-alive client).

python -m bench.passthrough PORT UPSTREAM_URL
"""

import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

HOP = {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "host"}
CLIENT = web.AppKey("client", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def forward(request: web.Request) -> web.StreamResponse:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
    body = request.content if request.body_exists else None
    url = request.app[UPSTREAM] + request.path_qs
    async with request.app[CLIENT].request(
        request.method, url, headers=headers, data=body, allow_redirects=False
    ) as upstream:
        answer = web.StreamResponse(status=upstream.status)
        answer.headers.extend((k, v) for k, v in upstream.headers.items() if k.lower() not in HOP)
        await answer.prepare(request)
        async for chunk in upstream.content.iter_chunked(64 * 1024):
            await answer.write(chunk)
        await answer.write_eof()
        return answer


async def client(app: web.Application) -> AsyncIterator[None]:
    app[CLIENT] = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        timeout=aiohttp.ClientTimeout(total=None),
    )
    yield
    await app[CLIENT].close()


def main() -> None:
    port, upstream = int(sys.argv[1]), sys.argv[2].rstrip("/")
    app = web.Application()
    app[UPSTREAM] = upstream
    app.cleanup_ctx.append(client)
    app.router.add_route("*", "/{tail:.*}", forward)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
