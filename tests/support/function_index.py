"""What the Functions Python worker sees when it indexes function_app.py, read in a subprocess
(importing function_app starts the gateway in the background).

For each function: the checks the worker makes before it will run it (azure-functions-python-worker,
functions.Registry.add_indexed_function): a unique function name (its id is derived from it), the
trigger's binding name as the only parameter, annotations the HTTP-streams extension recognises
(resolved with typing.get_type_hints), a coroutine, defined in function_app.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from tests.support.json_values import json_object

ROOT = Path(__file__).resolve().parents[2]

_INDEX = """
import inspect, json, typing
from azurefunctions.extensions.base import RequestTrackerMeta, ResponseTrackerMeta
import function_app
from core.localhost import app_functions, function_routes

functions = []
for function in app_functions(function_app.app):  # get_functions() may run once per app
    user_function = function.get_user_function()
    hints = typing.get_type_hints(user_function)
    trigger = function.get_trigger().get_dict_repr()
    functions.append({
        "name": function.get_function_name(),
        "route": trigger["route"],
        "methods": [str(getattr(m, "value", m)) for m in trigger["methods"]],
        "binding": trigger["name"],
        "parameters": list(inspect.signature(user_function).parameters),
        "request_is_a_stream": RequestTrackerMeta.check_type(hints.get(trigger["name"])),
        "response_is_a_stream": ResponseTrackerMeta.check_type(hints.get("return")),
        "coroutine": inspect.iscoroutinefunction(user_function),
        "file": inspect.getfile(user_function),
    })
local_paths = [route.path for route in function_routes(function_app.app, "")]
print(json.dumps({"functions": functions, "local_paths": local_paths}))
"""


@cache
def function_index() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_OPENAI_", "CONFIG_"))}
    env["CONFIG_PATH"] = str(ROOT / "no-config-while-indexing.yaml")
    result = subprocess.run(
        [sys.executable, "-c", _INDEX], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json_object(json.loads(result.stdout.strip().splitlines()[-1]))
