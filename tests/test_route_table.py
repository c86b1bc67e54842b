"""function_app.py declares its routes once, as data, and the Functions worker can index every one."""

from __future__ import annotations

import ast

from tests.support.function_index import ROOT, function_index


def test_the_routes_are_declared_once_in_one_table() -> None:
    tree = ast.parse((ROOT / "function_app.py").read_text())
    route_calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "route"]
    assert len(route_calls) == 1, "one `app.route` call, in a loop over the route table"


def test_the_worker_can_index_and_run_every_function() -> None:
    functions = function_index()["functions"]
    assert {"health", "v1/chat/completions", "v1/files/{*rest}", "{*path}"} <= {f["route"] for f in functions}
    names = [f["name"] for f in functions]
    assert len(set(names)) == len(names), "the worker derives each function's id from its name"
    for function in functions:
        assert function["parameters"] == [function["binding"]] == ["req"], function["name"]
        assert function["request_is_a_stream"] and function["response_is_a_stream"], function["name"]
        assert function["coroutine"] and function["file"] == str(ROOT / "function_app.py"), function["name"]
    assert functions[-1]["route"] == "{*path}", "the catch-all comes last"


def test_the_local_host_serves_the_same_table() -> None:
    index = function_index()
    assert len(index["local_paths"]) == len(index["functions"])
    assert index["local_paths"][0] == "/v1/chat/completions", "the busiest route is tried first"
    assert index["local_paths"][-1] == "/{path:path}"
