"""aoai-gateway core: an OpenAI-compatible gateway to Azure OpenAI.

Data flows one way: config (load, validate, resolve) -> routing (model -> backend)
-> translation (request/response rewriting) -> transport (pooled upstream client)
-> the endpoints (the handlers that function_app.py and the local host mount).
"""
