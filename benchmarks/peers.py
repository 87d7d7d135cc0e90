"""The peers the serving benchmark runs beside the template: a stock BentoML service written the
obvious way, and a bare ASGI app (the Python floor). Source text, written to a temp dir per run."""

STOCK_SERVICE = """
import bentoml
import numpy as np


@bentoml.service(workers=1)
class Stock:
    model_ref = bentoml.models.BentoModel("bench-stock-model:1")

    def __init__(self):
        self.model = bentoml.sklearn.load_model(self.model_ref)

    @bentoml.api
    def predict_proba(self, input_data: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(input_data)
"""

BARE_ASGI = """
import joblib
import numpy as np
import orjson
from threadpoolctl import threadpool_limits

threadpool_limits(1)
MODEL = joblib.load({model_path!r})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    rows = np.asarray(orjson.loads(body)["rows"], dtype=float)
    proba = MODEL.predict_proba(rows)
    payload = orjson.dumps({{"probabilities": proba.tolist()}})
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]}})
    await send({{"type": "http.response.body", "body": payload}})
"""

FASTAPI_ASYNC = """
import joblib
import numpy as np
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

threadpool_limits(1)
MODEL = joblib.load({model_path!r})
app = FastAPI(default_response_class=ORJSONResponse)


class Rows(BaseModel):
    rows: list[list[float]]


@app.post("/predict_proba")
async def predict_proba(body: Rows):
    proba = MODEL.predict_proba(np.asarray(body.rows, dtype=float))
    return {{"probabilities": proba.tolist()}}
"""
