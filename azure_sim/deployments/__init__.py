"""Deployment-scoped operations (chat, completions, embeddings, images, audio): one module per API family, and
the route table that serves each of them under each of its scopes.
"""

from __future__ import annotations

from ..models import CHAT_COMPLETION, COMPLETION
from ..routing import AZURE, AZURE_V1, MULTIPART_BODY, Operation
from ..wire import CHAT_MODEL, COMPLETIONS_MODEL, EMBEDDINGS_MODEL, IMAGES_MODEL, SPEECH_MODEL, TRANSCRIPTION_MODEL
from .audio import audio_speech, audio_transcriptions, audio_translations
from .chat import chat_completions
from .completions import completions
from .embeddings import embeddings
from .images import image_edits, image_generations

# The route table: each operation is served under each of its scopes (all of SCOPES unless the row says otherwise).
DEPLOYMENT_ONLY = (AZURE,)
# Uploads Azure's v1 API serves as OpenAI's, the deployment named by the form's `model` field (the v1 GA spec lists
# none of them; the v1 preview serves them).
DEPLOYMENT_OR_V1 = (AZURE, AZURE_V1)
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "chat/completions",
        "ChatCompletions_Create",
        CHAT_MODEL,
        chat_completions,
        streams=True,
        model_operation=CHAT_COMPLETION,
    ),
    Operation(
        "completions", "Completions_Create", COMPLETIONS_MODEL, completions, streams=True, model_operation=COMPLETION
    ),
    Operation("embeddings", "Embeddings_Create", EMBEDDINGS_MODEL, embeddings),
    Operation("images/generations", "ImageGenerations_Create", IMAGES_MODEL, image_generations, scopes=DEPLOYMENT_ONLY),
    Operation(
        "images/edits", "ImageEdits_Create", IMAGES_MODEL, image_edits, body=MULTIPART_BODY, scopes=DEPLOYMENT_OR_V1
    ),
    Operation(
        "audio/transcriptions",
        "Transcriptions_Create",
        TRANSCRIPTION_MODEL,
        audio_transcriptions,
        body=MULTIPART_BODY,
        scopes=DEPLOYMENT_OR_V1,
    ),
    Operation(
        "audio/translations",
        "Translations_Create",
        TRANSCRIPTION_MODEL,
        audio_translations,
        body=MULTIPART_BODY,
        scopes=DEPLOYMENT_OR_V1,
    ),
    Operation("audio/speech", "Speech_Create", SPEECH_MODEL, audio_speech, scopes=DEPLOYMENT_ONLY, always_streams=True),
)
