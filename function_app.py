"""Azure Functions entry point (Python v2 model with the HTTP-streams extension).

Thin on purpose: it declares the routes and hands each request to core.surface.
The local host (`python -m core serve`) reads this same route table.
"""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from core import gateway, surface

# Never let the import fail: the host would index no functions and every route, /health
# included, would answer 404 until a restart. The configuration loads in the background
# (retried until it succeeds); until then requests get a 503 and /health says why.
gateway.start_in_background()

# Callers authenticate to the gateway itself (gateway.apiKeys), not with function keys.
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="health", methods=["GET"])
async def health(req: Request) -> Response:
    return await surface.health(req)


@app.route(route="v1/models", methods=["GET"])
async def list_models(req: Request) -> Response:
    return await surface.list_models(req)


@app.route(route="v1/models/{id}", methods=["GET"])
async def get_model(req: Request) -> Response:
    return await surface.get_model(req)


@app.route(route="v1/chat/completions", methods=["POST"])
async def chat_completions(req: Request) -> Response:
    return await surface.chat_completions(req)


@app.route(route="v1/completions", methods=["POST"])
async def completions(req: Request) -> Response:
    return await surface.completions(req)


@app.route(route="v1/embeddings", methods=["POST"])
async def embeddings(req: Request) -> Response:
    return await surface.embeddings(req)


@app.route(route="v1/engines/{model}/embeddings", methods=["POST"])
async def engine_embeddings(req: Request) -> Response:
    return await surface.engine_embeddings(req)



@app.route(route="v1/images/generations", methods=["POST"])
async def image_generations(req: Request) -> Response:
    return await surface.image_generations(req)


@app.route(route="v1/images/edits", methods=["POST"])
async def image_edits(req: Request) -> Response:
    return await surface.image_edits(req)


@app.route(route="v1/audio/transcriptions", methods=["POST"])
async def audio_transcriptions(req: Request) -> Response:
    return await surface.audio_transcriptions(req)


@app.route(route="v1/audio/translations", methods=["POST"])
async def audio_translations(req: Request) -> Response:
    return await surface.audio_translations(req)


@app.route(route="v1/audio/speech", methods=["POST"])
async def audio_speech(req: Request) -> Response:
    return await surface.audio_speech(req)


@app.route(route="v1/assistants", methods=["GET", "POST"])
async def assistants(req: Request) -> Response:
    return await surface.resources(req)


@app.route(route="v1/assistants/{*rest}", methods=["GET", "POST", "DELETE"])
async def assistants_item(req: Request) -> Response:
    return await surface.resources(req)


@app.route(route="v1/threads", methods=["GET", "POST"])
async def threads(req: Request) -> Response:
    return await surface.resources(req)


@app.route(route="v1/threads/{*rest}", methods=["GET", "POST", "DELETE"])
async def threads_item(req: Request) -> Response:
    return await surface.resources(req)


@app.route(route="v1/vector_stores", methods=["GET", "POST"])
async def vector_stores(req: Request) -> Response:
    return await surface.resources(req)


@app.route(route="v1/vector_stores/{*rest}", methods=["GET", "POST", "DELETE"])
async def vector_stores_item(req: Request) -> Response:
    return await surface.resources(req)


@app.route(route="v1/files", methods=["GET", "POST"])
async def files(req: Request) -> Response:
    return await surface.resources(req)


@app.route(route="v1/files/{*rest}", methods=["GET", "POST", "DELETE"])
async def files_item(req: Request) -> Response:
    return await surface.resources(req)


@app.route(route="v1/batches", methods=["GET", "POST"])
async def batches(req: Request) -> Response:
    return await surface.resources(req)


@app.route(route="v1/batches/{*rest}", methods=["GET", "POST", "DELETE"])
async def batches_item(req: Request) -> Response:
    return await surface.resources(req)


@app.route(route="v1/responses", methods=["GET", "POST"])
async def responses(req: Request) -> Response:
    return await surface.resources(req)


@app.route(route="v1/responses/{*rest}", methods=["GET", "POST", "DELETE"])
async def responses_item(req: Request) -> Response:
    return await surface.resources(req)

# Declared last: the catch-all has the lowest precedence on both hosts, so unknown
# paths and methods get an OpenAI-shaped 404 instead of the host's empty one.
@app.route(route="{*path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
async def unknown_route(req: Request) -> Response:
    return await surface.unknown_route(req)
