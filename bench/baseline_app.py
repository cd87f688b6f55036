"""bench_core.py's baseline: one Starlette route that reads the POST body and
answers a small JSON object, served by uvicorn with ``serve``'s own settings,
so that adapter/baseline measures only what the adapter adds.

    python bench/baseline_app.py PORT
"""

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapter.cli import UVICORN_SETTINGS


async def answer(request):
    return JSONResponse({"sms_id": str(len(await request.body()))})


if __name__ == "__main__":
    uvicorn.run(Starlette(routes=[Route("/", answer, methods=["POST"])]), host="127.0.0.1",
                port=int(sys.argv[1]), **UVICORN_SETTINGS)
