"""What leafdoc's HTTP app adds to a prediction, in process: CPU per `/v1/predict` request through the whole ASGI
app (middleware, routing, FastAPI's dependencies, the multipart parser, the response model, the prediction log and
metrics) against the serving function the route calls (`serving.predict_bytes`), on the same photos. No uvicorn,
no sockets, no load generator: what is left is the app's own cost. Prints a line per block and the medians; not
a test.

    python benchmarks/app_overhead.py [--images DIR] [--blocks 12] [--per-block 64] [--model DIR] [--stub]

The app predicts on its event loop, as `leafdoc serve` does with a worker per CPU (LEAFDOC_PREDICT_ON_LOOP).
Blocks of `--per-block` requests alternate between the two ways, so a busy machine slows both alike; CPU time is
the whole process's (threads included: the prediction log's writer is charged to the app, as in a server). To
compare two versions of the code, run it with PYTHONPATH pointing at each one's `src/` in turn.

`--stub`: the route's `predict_bytes` gives back one canned answer instead of running the model. Alternated blocks
time the app alone (its own cost without the model's noise beside it: a busy machine moves the model's 11 ms by
more than the app's whole cost, so two versions compare within a few percent), the model back to back, and the
model with one such request between its calls: what the model itself loses when other code runs between its calls
(its caches), which a server pays and a tight loop does not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtest.images import image_dir, load_images, multipart  # noqa: E402

from leafdoc.inference.answer import Answer  # noqa: E402


async def post(app, form: tuple[bytes, str]) -> None:
    """One POST /v1/predict through the ASGI app, the body in one message as uvicorn hands over a small one."""
    body, ctype = form
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/predict",
        "raw_path": b"/v1/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", ctype.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = []

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # never: the app has the whole body

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [200]:
        raise SystemExit(f"POST /v1/predict answered {status}: is a model serving (--model)?")


async def measure(args) -> None:
    from leafdoc.service import serving
    from leafdoc.service.app import create_app

    photos = load_images(image_dir(args.images), limit=args.per_block)
    bodies = [multipart("file", [(name, data)]) for name, data in photos]
    app = create_app()
    state = app.state.leafdoc
    predict = serving.predict_bytes  # the real one, also once --stub has put a canned answer in the route's way

    def direct(i: int) -> Answer:
        name, data = photos[i % len(photos)]
        return predict(state.holder, data, name, state.settings.top_k, on_loop=True)

    if args.stub:
        return await app_alone(app, direct, bodies, args.blocks, args.per_block)

    async with app.router.lifespan_context(app):
        for i in range(len(bodies)):  # warm-up: both ways, every photo once
            direct(i)
            await post(app, bodies[i])
        times: dict[str, list[float]] = {"predict_bytes": [], "app": []}
        for block in range(args.blocks):
            c0 = time.process_time()
            for i in range(args.per_block):
                direct(i)
            c1 = time.process_time()
            for i in range(args.per_block):
                await post(app, bodies[i % len(bodies)])
            c2 = time.process_time()
            direct_ms, app_ms = 1000 * (c1 - c0) / args.per_block, 1000 * (c2 - c1) / args.per_block
            times["predict_bytes"].append(direct_ms)
            times["app"].append(app_ms)
            print(f"block {block + 1}: predict_bytes {direct_ms:.2f} ms, app {app_ms:.2f} ms")
    gaps = [a - d for d, a in zip(times["predict_bytes"], times["app"], strict=True)]
    print(f"\nCPU ms per request, medians of {args.blocks} blocks of {args.per_block}:")
    print(f"  serving.predict_bytes  {statistics.median(times['predict_bytes']):.2f}")
    print(f"  the whole ASGI app     {statistics.median(times['app']):.2f}")
    print(f"  the app's own cost     {statistics.median(gaps):.2f} (median of the blocks' differences)")


async def app_alone(app, direct, bodies, blocks: int, per_block: int) -> None:
    """--stub: the app with a canned answer, and the model back to back (`direct`) against the model with such a
    request between its calls, in alternated blocks."""
    from leafdoc.service import serving

    canned = direct(0)

    def stub(*args, **kwargs) -> Answer:
        return canned.model_copy(update={"prediction_id": os.urandom(16).hex()})

    serving.predict_bytes = stub  # the route looks it up at each call; `direct` calls the real one
    times: dict[str, list[float]] = {"model": [], "model + app": [], "app": []}
    async with app.router.lifespan_context(app):
        for i in range(len(bodies)):  # warm-up
            direct(i)
            await post(app, bodies[i])
        for _ in range(blocks):
            c0 = time.process_time()
            for i in range(per_block):
                direct(i)
            c1 = time.process_time()
            for i in range(per_block):
                direct(i)
                await post(app, bodies[i % len(bodies)])
            c2 = time.process_time()
            for i in range(per_block):
                await post(app, bodies[i % len(bodies)])
            c3 = time.process_time()
            for key, (a, b) in zip(times, ((c0, c1), (c1, c2), (c2, c3)), strict=True):
                times[key].append(1000 * (b - a) / per_block)
    m = {key: statistics.median(v) for key, v in times.items()}
    extra = statistics.median(b - a - c for a, b, c in zip(*times.values(), strict=True))
    print(f"CPU ms per request, medians of {blocks} blocks of {per_block}:")
    print(f"  the app alone, a canned answer                 {m['app']:.2f}")
    print(f"  serving.predict_bytes back to back             {m['model']:.2f}")
    print(f"  predict_bytes + a canned request between calls {m['model + app']:.2f}")
    print(f"  what the model loses to the app between calls  {extra:.2f} (median of the blocks' differences)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", help="Photos to send (default: the shared PlantVillage photos).")
    ap.add_argument("--model", help="The model folder to serve (default: LEAFDOC_MODEL_DIR, else the starter).")
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--per-block", type=int, default=64)
    ap.add_argument("--stub", action="store_true", help="The app with a canned answer, and the model with it between.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["LEAFDOC_HOME"] = home  # a throw-away catalog and store: the prediction log writes there
        os.environ["LEAFDOC_PREDICT_ON_LOOP"] = "true"
        os.environ["LEAFDOC_UI"] = "false"
        # This loop never waits for I/O, so the worker's load shedding would find it seconds behind: shedding stays
        # on (its check is part of the app's cost) but never turns a request away.
        os.environ["LEAFDOC_SHED_AFTER_SECONDS"] = "1e9"
        if args.model:
            os.environ["LEAFDOC_MODEL_DIR"] = args.model
        asyncio.run(measure(args))


if __name__ == "__main__":
    main()
