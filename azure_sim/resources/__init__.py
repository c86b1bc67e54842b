"""Resource-scoped stateful objects (assistants, threads, messages, runs and steps, vector stores, files,
batches, responses): one module per API family, and the route table that serves each under each resource scope.
"""

from __future__ import annotations

from ..routing import ANY_API_VERSION, ASSISTANTS_API, JSON_BODY, MULTIPART_BODY, RESPONSES_API, Resource
from .assistants import create_assistant, delete_assistant, get_assistant, list_assistants, modify_assistant
from .batches import cancel_batch, create_batch, get_batch, list_batches
from .files import delete_file, get_file, get_file_content, list_files, upload_file
from .responses import create_response, delete_response, get_response, list_input_items
from .runs import (
    cancel_run,
    create_run,
    create_thread_and_run,
    get_run,
    get_run_step,
    list_run_steps,
    list_runs,
    modify_run,
    submit_tool_outputs,
)
from .threads import (
    create_message,
    create_thread,
    delete_message,
    delete_thread,
    get_message,
    get_thread,
    list_messages,
    modify_message,
    modify_thread,
)
from .vector_stores import (
    cancel_file_batch,
    create_file_batch,
    create_vector_store,
    create_vector_store_file,
    delete_vector_store,
    delete_vector_store_file,
    get_file_batch,
    get_vector_store,
    get_vector_store_file,
    list_file_batch_files,
    list_vector_store_files,
    list_vector_stores,
    modify_vector_store,
    search_vector_store,
)

# The resource table: each row is served under each of RESOURCE_SCOPES. Where a literal segment and an {id} could
# both match (threads/runs vs threads/{thread_id}), aiohttp prefers the literal one.
_A, _R, _F = ASSISTANTS_API, RESPONSES_API, ANY_API_VERSION
_RUN = "threads/{thread_id}/runs/{run_id}"
_VS = "vector_stores/{vector_store_id}"
_FB = _VS + "/file_batches/{batch_id}"
RESOURCES: tuple[Resource, ...] = (
    Resource("GET", "assistants", "Assistants_List", _A, list_assistants),
    Resource("POST", "assistants", "Assistants_Create", _A, create_assistant, body=JSON_BODY),
    Resource("GET", "assistants/{assistant_id}", "Assistants_Get", _A, get_assistant),
    Resource("POST", "assistants/{assistant_id}", "Assistants_Modify", _A, modify_assistant),
    Resource("DELETE", "assistants/{assistant_id}", "Assistants_Delete", _A, delete_assistant),
    Resource("POST", "threads", "Threads_Create", _A, create_thread),
    Resource("POST", "threads/runs", "Runs_CreateThreadAndRun", _A, create_thread_and_run, JSON_BODY, streams=True),
    Resource("GET", "threads/{thread_id}", "Threads_Get", _A, get_thread),
    Resource("POST", "threads/{thread_id}", "Threads_Modify", _A, modify_thread),
    Resource("DELETE", "threads/{thread_id}", "Threads_Delete", _A, delete_thread),
    Resource("GET", "threads/{thread_id}/messages", "Messages_List", _A, list_messages),
    Resource("POST", "threads/{thread_id}/messages", "Messages_Create", _A, create_message, body=JSON_BODY),
    Resource("GET", "threads/{thread_id}/messages/{message_id}", "Messages_Get", _A, get_message),
    Resource("POST", "threads/{thread_id}/messages/{message_id}", "Messages_Modify", _A, modify_message),
    Resource("DELETE", "threads/{thread_id}/messages/{message_id}", "Messages_Delete", _A, delete_message),
    Resource("GET", "threads/{thread_id}/runs", "Runs_List", _A, list_runs),
    Resource("POST", "threads/{thread_id}/runs", "Runs_Create", _A, create_run, body=JSON_BODY, streams=True),
    Resource("GET", _RUN, "Runs_Get", _A, get_run),
    Resource("POST", _RUN, "Runs_Modify", _A, modify_run),
    Resource("POST", _RUN + "/submit_tool_outputs", "Runs_SubmitToolOutputs", _A, submit_tool_outputs, JSON_BODY, True),
    Resource("POST", _RUN + "/cancel", "Runs_Cancel", _A, cancel_run),
    Resource("GET", _RUN + "/steps", "RunSteps_List", _A, list_run_steps),
    Resource("GET", _RUN + "/steps/{step_id}", "RunSteps_Get", _A, get_run_step),
    Resource("GET", "vector_stores", "VectorStores_List", _A, list_vector_stores),
    Resource("POST", "vector_stores", "VectorStores_Create", _A, create_vector_store),
    Resource("GET", _VS, "VectorStores_Get", _A, get_vector_store),
    Resource("POST", _VS, "VectorStores_Modify", _A, modify_vector_store),
    Resource("DELETE", _VS, "VectorStores_Delete", _A, delete_vector_store),
    Resource("GET", _VS + "/files", "VectorStoreFiles_List", _A, list_vector_store_files),
    Resource("POST", _VS + "/files", "VectorStoreFiles_Create", _A, create_vector_store_file, body=JSON_BODY),
    Resource("GET", _VS + "/files/{file_id}", "VectorStoreFiles_Get", _A, get_vector_store_file),
    Resource("DELETE", _VS + "/files/{file_id}", "VectorStoreFiles_Delete", _A, delete_vector_store_file),
    Resource("POST", _VS + "/search", "VectorStores_Search", _A, search_vector_store, body=JSON_BODY),
    Resource("POST", _VS + "/file_batches", "VectorStoreFileBatches_Create", _A, create_file_batch, body=JSON_BODY),
    Resource("GET", _FB, "VectorStoreFileBatches_Get", _A, get_file_batch),
    Resource("POST", _FB + "/cancel", "VectorStoreFileBatches_Cancel", _A, cancel_file_batch),
    Resource("GET", _FB + "/files", "VectorStoreFileBatches_ListFiles", _A, list_file_batch_files),
    Resource("GET", "files", "Files_List", _F, list_files),
    Resource("POST", "files", "Files_Upload", _F, upload_file, body=MULTIPART_BODY, keep_upload=True),
    Resource("GET", "files/{file_id}", "Files_Get", _F, get_file),
    Resource("DELETE", "files/{file_id}", "Files_Delete", _F, delete_file),
    Resource("GET", "files/{file_id}/content", "Files_GetContent", _F, get_file_content, always_streams=True),
    Resource("GET", "batches", "Batch_List", _F, list_batches),
    Resource("POST", "batches", "Batch_Create", _F, create_batch, body=JSON_BODY),
    Resource("GET", "batches/{batch_id}", "Batch_Get", _F, get_batch),
    Resource("POST", "batches/{batch_id}/cancel", "Batch_Cancel", _F, cancel_batch),
    Resource("POST", "responses", "Responses_Create", _R, create_response, body=JSON_BODY, streams=True),
    Resource("GET", "responses/{response_id}", "Responses_Get", _R, get_response),
    Resource("DELETE", "responses/{response_id}", "Responses_Delete", _R, delete_response),
    Resource("GET", "responses/{response_id}/input_items", "Responses_ListInputItems", _R, list_input_items),
)
