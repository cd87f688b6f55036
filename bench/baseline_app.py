"""The baseline for bench_core.py: the least a Starlette endpoint can do.

One route that reads the POST body and answers a small JSON object, served
by uvicorn exactly as ``python -m adapter serve`` serves the adapter (same
``UVICORN_SETTINGS``), so the ratio adapter/baseline measures only what the
adapter itself adds (parsing, authentication, SQLite, logging).

    python bench/baseline_app.py --port 8099
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapter.cli import UVICORN_SETTINGS

PATH = "/"


async def answer(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"sms_id": str(len(body))})


app = Starlette(routes=[Route(PATH, answer, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, **UVICORN_SETTINGS)


if __name__ == "__main__":
    main()
