"""The process's gateway from its start to its stop, run in this process: the Functions host's start in the
background (a 503 on /health with the reason while the configuration cannot be loaded, served once it can), a
reload that puts new timeouts in force, and the last flush when SIGTERM comes.

test_startup.py and test_shutdown.py check the same through a subprocess, the way the Functions host runs it; these
reach the functions in this process, where coverage and mutation tools see them."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import httpx
import orjson
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from core import endpoints, shutdown
from core import gateway as gateway_module
from core.api import ENDPOINTS
from core.config import ConfigError
from core.config.load import load_config_text
from core.config.provider import ConfigProvider
from core.errors import GatewayError
from core.metrics import MetricsExport
from core.telemetry import OTHER_MODEL, SCOPE, Instruments, Telemetry
from core.upstream.transport import ConnectTimedOut, HeadersTimedOut
from tests.support.fake_keyvault import FakeCredential, FakeKeyVaultTransport, reset_challenge_cache
from tests.support.metric_exporter import RecordingExporter
from tests.support.never_accepting import never_accepting
from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG

HEALTH = next(endpoint for endpoint in ENDPOINTS if endpoint.kind == "health")
QUICK_CONFIG = STANDARD_CONFIG.replace("    connect: 2\n    read: 2\n", "    connect: 0.3\n    read: 0.3\n")
assert QUICK_CONFIG != STANDARD_CONFIG
WARNED_CONFIG = STANDARD_CONFIG.replace("  maxBodyBytes: 65536\n", "  maxBodyBytes: 65536\n  maxBodyByte: 1\n")
assert WARNED_CONFIG != STANDARD_CONFIG


@pytest.fixture
def no_process_gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process as the Functions host starts it: no gateway yet, none loading; put back as it was afterwards."""
    monkeypatch.setattr(gateway_module, "_gateway", None)
    monkeypatch.setattr(gateway_module, "_background", None)
    threshold = gc.get_threshold()
    yield
    loaded = gateway_module._gateway
    if loaded is not None:
        asyncio.run(loaded.aclose())
    gc.unfreeze()  # the loaded gateway settles the heap (core/heap.py): the rest of the tests run as before
    gc.set_threshold(*threshold)


def health() -> httpx.Response:
    """GET /health, served by core.endpoints in this process (the process's gateway, none bound here)."""

    async def serve(request: Request) -> Response:
        return await endpoints.serve(request, HEALTH)

    async def get() -> httpx.Response:
        app = Router([Route("/health", serve)])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            return await client.get("/health")

    return asyncio.run(get())


def wait_until_ready(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while gateway_module.unready_reason() is not None:
        assert time.monotonic() < deadline, gateway_module.unready_reason()
        time.sleep(0.05)


def in_a_thread_bound_to(gateway: gateway_module.Gateway, work: Callable[[], object]) -> object:
    """What `work()` returns when run in a thread that serves `gateway` (core.gateway.bind)."""
    results: list[object] = []

    def run() -> None:
        gateway_module.bind(gateway)
        results.append(work())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    return results[0]


def standard_environ(sim, tmp_path: Path) -> dict[str, str]:
    """A gateway's environment: the standard configuration in a file, its secrets, the simulator as upstream."""
    path = tmp_path / "gateway.yaml"
    path.write_text(STANDARD_CONFIG)
    return {**SECRETS, "SIM_URL": sim.url, "CONFIG_PATH": str(path)}


def test_before_any_start_health_says_the_gateway_has_not_been_started(no_process_gateway) -> None:
    assert gateway_module.unready_reason() == "the gateway has not been started"
    assert gateway_module.retry_after_seconds() == 1
    response = health()
    assert response.status_code == 503
    assert response.content == b'{"status":"unavailable","reason":"the gateway has not been started"}'
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/json"


def test_the_background_start_is_a_503_with_the_reason_until_the_configuration_loads_then_serves_it(
    no_process_gateway, sim, tmp_path: Path
) -> None:
    path = tmp_path / "gateway.yaml"
    environ = {**SECRETS, "SIM_URL": sim.url, "CONFIG_PATH": str(path)}
    gateway_module.start_in_background(environ)

    reason = f"Cannot read CONFIG_PATH {path}: No such file or directory."
    assert gateway_module.unready_reason() == reason
    assert gateway_module.retry_after_seconds() == 1  # the first retry comes a second after the first attempt
    response = health()
    assert response.status_code == 503
    assert response.content == orjson.dumps({"status": "unavailable", "reason": reason})
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(GatewayError) as unavailable:
        gateway_module.current()
    assert (unavailable.value.status, unavailable.value.code) == (503, "config_unavailable")

    # The second attempt fails too, a second after the first: the next is 2 s away, and /health says so.
    deadline = time.monotonic() + 5
    while gateway_module.retry_after_seconds() == 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert gateway_module.retry_after_seconds() == 2
    assert health().headers["retry-after"] == "2"

    # Loading already: a second start (function_app.py imported again) starts nothing, even with a good configuration.
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(STANDARD_CONFIG)
    gateway_module.start_in_background({**environ, "CONFIG_PATH": str(elsewhere)})
    time.sleep(0.2)
    assert gateway_module.unready_reason() == reason

    path.write_text(STANDARD_CONFIG)
    wait_until_ready()
    served = gateway_module.current()
    assert served.state.config.settings.connect_timeout == 2
    response = health()
    assert (response.status_code, response.content) == (200, b'{"status":"ok"}')
    assert response.headers["content-type"] == "application/json"
    assert "retry-after" not in response.headers

    # Served: a start once more changes nothing.
    gateway_module.start_in_background({**environ, "CONFIG_PATH": str(elsewhere)})
    assert gateway_module.current() is served


def test_a_context_serving_its_own_gateway_is_ready_and_starts_no_other(no_process_gateway, sim, tmp_path) -> None:
    environ = standard_environ(sim, tmp_path)
    bound = gateway_module.load(environ)
    try:

        def start_there() -> str | None:
            gateway_module.start_in_background(environ)
            return gateway_module.unready_reason()

        assert in_a_thread_bound_to(bound, start_there) is None
        time.sleep(0.2)
        assert gateway_module.unready_reason() == "the gateway has not been started"
    finally:
        asyncio.run(bound.aclose())


def test_the_local_hosts_start_loads_once_per_process_from_the_process_environment(
    no_process_gateway, sim, tmp_path: Path, monkeypatch
) -> None:
    environ = standard_environ(sim, tmp_path)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    first = gateway_module.start()
    assert first.state.config.source == f"file:{environ['CONFIG_PATH']}"
    assert gateway_module.start({"CONFIG_PATH": str(tmp_path / "absent.yaml")}) is first
    assert gateway_module.current() is first
    assert gateway_module.unready_reason() is None


def test_the_local_hosts_start_reads_the_environment_it_is_given(
    no_process_gateway, sim, tmp_path: Path, monkeypatch
) -> None:
    for name in ("CONFIG_PATH", "CONFIG_YAML", "CONFIG_BLOB_CONNECTION_STRING", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)  # the process's environment names no configuration
    environ = standard_environ(sim, tmp_path)
    started = gateway_module.start(environ)
    assert started.state.config.source == f"file:{environ['CONFIG_PATH']}"


def test_with_no_gateway_started_the_first_request_starts_one_and_an_invalid_configuration_refuses_it(
    no_process_gateway, tmp_path: Path, monkeypatch
) -> None:
    absent = tmp_path / "absent.yaml"
    monkeypatch.setenv("CONFIG_PATH", str(absent))
    with pytest.raises(ConfigError) as refused:
        gateway_module.current()
    assert refused.value.problems == [f"Cannot read CONFIG_PATH {absent}: No such file or directory."]
    assert gateway_module.unready_reason() == "the gateway has not been started"


def test_the_functions_hosts_start_reads_the_process_environment_unless_given_one(
    no_process_gateway, sim, tmp_path: Path, monkeypatch
) -> None:
    environ = standard_environ(sim, tmp_path)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    gateway_module.start_in_background()  # a good configuration: served once start returns
    assert gateway_module.unready_reason() is None
    assert gateway_module.current().state.config.source == f"file:{environ['CONFIG_PATH']}"


def test_the_functions_hosts_start_waits_for_the_first_attempt_only_so_long(
    no_process_gateway, sim, tmp_path: Path, monkeypatch
) -> None:
    """A load that hangs (here a named pipe nobody writes yet) must not hold the host's import past its limit."""
    path = tmp_path / "gateway.yaml"
    os.mkfifo(path)
    monkeypatch.setattr(gateway_module, "START_WAIT_SECONDS", 0.2)
    environ = {**SECRETS, "SIM_URL": sim.url, "CONFIG_PATH": str(path)}
    starting = threading.Thread(target=gateway_module.start_in_background, args=(environ,))
    starting.start()
    starting.join(5)
    returned = not starting.is_alive()
    assert gateway_module.unready_reason() == "the configuration is still loading"
    with open(path, "w") as pipe:  # the load goes on, and ends: served
        pipe.write(STANDARD_CONFIG)
    starting.join(5)
    wait_until_ready()
    assert returned


def test_a_fresh_gateway_has_its_configurations_connect_and_read_timeouts(sim, tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(QUICK_CONFIG)
    gateway = gateway_module.load({**SECRETS, "SIM_URL": sim.url, "CONFIG_PATH": str(path)})
    connecting, reading = asyncio.run(timed_out_calls(gateway, sim.url))
    assert connecting < 1.5 and reading < 1.2, (connecting, reading)  # 0.3 s each


async def timed_out_calls(gateway: gateway_module.Gateway, sim_url: str) -> tuple[float, float]:
    """How long a connect to an address that never accepts, then a call answered 1.5 s late, took to time out."""
    chat = f"{sim_url}/openai/deployments/gpt-4o-dep/chat/completions?api-version=2024-10-21"
    headers = [("api-key", SECRETS["EASTUS_KEY"]), ("content-type", "application/json"), ("x-sim-delay-ms", "1500")]
    body = orjson.dumps({"messages": [{"role": "user", "content": "hi"}]})
    try:
        with never_accepting() as url:
            started = time.monotonic()
            with pytest.raises(ConnectTimedOut):
                await asyncio.wait_for(gateway.transport.send("GET", f"{url}/", [], None), 5)
            connecting = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(HeadersTimedOut):
            await asyncio.wait_for(gateway.transport.send("POST", chat, headers, body), 5)
        return connecting, time.monotonic() - started
    finally:
        await gateway.aclose()


def test_a_reload_puts_the_new_connect_and_read_timeouts_in_force(sim, tmp_path: Path, caplog) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(STANDARD_CONFIG)  # connect 2 s, read 2 s
    environ = {**SECRETS, "SIM_URL": sim.url, "CONFIG_PATH": str(path)}
    gateway = gateway_module.load(environ)
    reloaded = load_config_text(QUICK_CONFIG, environ, "reloaded")
    with caplog.at_level(logging.WARNING, logger="aoai_gateway"):
        gateway.replace(reloaded)
    assert gateway.state.config is reloaded
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]  # no warning to log
    connecting, reading = asyncio.run(timed_out_calls(gateway, sim.url))
    assert connecting < 1.5 and reading < 1.2, (connecting, reading)  # 0.3 s each, not the first load's 2 s


def test_a_reload_logs_each_warning_of_the_new_configuration(sim, tmp_path: Path, caplog) -> None:
    environ = standard_environ(sim, tmp_path)
    gateway = gateway_module.load(environ)
    try:
        with caplog.at_level(logging.WARNING, logger="aoai_gateway"):
            gateway.replace(load_config_text(WARNED_CONFIG, environ, "reloaded"))
    finally:
        asyncio.run(gateway.aclose())
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("configuration warning: "), warnings
    assert "maxBodyByte" in warnings[0]


def test_a_reload_serves_the_new_keys_limits(sim, tmp_path: Path) -> None:
    """A key's limits dropped by a reload take its used windows with them: limited again later, it starts afresh."""
    path = tmp_path / "gateway.yaml"
    limited = STANDARD_CONFIG.replace(
        '    - name: alice\n      key: "${ALICE_KEY}"\n',
        '    - name: alice\n      key: "${ALICE_KEY}"\n      limits: {requestsPerMinute: 1}\n',
    )
    assert limited != STANDARD_CONFIG
    path.write_text(limited)
    environ = {**SECRETS, "SIM_URL": sim.url, "CONFIG_PATH": str(path)}
    gateway = gateway_module.load(environ)

    async def one_call() -> None:
        caller = gateway.state.auth.authenticate({"authorization": f"Bearer {ALICE}"})
        gateway.budgets.check(caller)
        await gateway.budgets.reserve(caller, 10)

    try:
        assert gateway.state.limited and gateway.counts_usage(gateway.state)
        asyncio.run(one_call())
        with pytest.raises(GatewayError) as spent:
            asyncio.run(one_call())
        assert spent.value.status == 429
        gateway.replace(load_config_text(STANDARD_CONFIG, environ, "unlimited"))
        unlimited = gateway.state
        assert not unlimited.limited and not gateway.counts_usage(unlimited)
        gateway.replace(load_config_text(limited, environ, "limited again"))
        asyncio.run(one_call())
    finally:
        asyncio.run(gateway.aclose())


def test_a_reload_makes_the_new_configurations_models_the_metrics_model_names(sim, tmp_path: Path) -> None:
    environ = {**SECRETS, "SIM_URL": sim.url}
    instruments = Instruments()
    export = MetricsExport(
        RecordingExporter(scope=SCOPE), Resource.create({}), instruments.all(), interval=3600, scope=SCOPE
    )
    telemetry = Telemetry(instruments, export, TracerProvider())
    first = load_config_text(STANDARD_CONFIG, environ, "first")
    gateway = gateway_module.Gateway(ConfigProvider(environ), first, refresh_seconds=60, telemetry=telemetry)
    renamed = STANDARD_CONFIG.replace("          gpt-tuned: true\n", "          house-model: true\n")
    assert renamed != STANDARD_CONFIG
    try:
        assert (telemetry.model_name("gpt-tuned"), telemetry.model_name("house-model")) == ("gpt-tuned", OTHER_MODEL)
        gateway.replace(load_config_text(renamed, environ, "reloaded"))
        assert (telemetry.model_name("gpt-tuned"), telemetry.model_name("house-model")) == (OTHER_MODEL, "house-model")
    finally:
        asyncio.run(gateway.aclose())


VAULT_CONFIG = """
endpoints:
  azureOpenAI:
    groups:
      - group: east
        apiKey: "@Microsoft.KeyVault(SecretUri=https://gw-vault.vault.azure.net/secrets/eastus-key)"
        instanceName: east
        deploymentName: d
        version: "2024-10-21"
        models: {gpt-4o: true}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}"}
"""


@pytest.mark.parametrize("secret_refresh, reads_again", [(None, False), (0.5, True)])
def test_a_gateways_key_vault_secrets_are_read_again_only_when_it_is_told_how_often(
    tmp_path: Path, secret_refresh, reads_again
) -> None:
    reset_challenge_cache()
    path = tmp_path / "gateway.yaml"
    path.write_text(VAULT_CONFIG)
    vault = FakeKeyVaultTransport({("gw-vault", "eastus-key"): "azure-key-from-vault"})
    environ = {**SECRETS, "CONFIG_PATH": str(path)}
    provider = ConfigProvider(environ, credential=FakeCredential(), secret_transport=vault)
    config = provider.load()
    options = {} if secret_refresh is None else {"secret_refresh_seconds": secret_refresh}
    gateway = gateway_module.Gateway(provider, config, refresh_seconds=60, **options)

    async def serving() -> int:
        read = len(vault.requests)
        gateway.on_request()  # the first request starts the refresher
        await asyncio.sleep(1.5)
        await gateway.aclose()
        return len(vault.requests) - read

    assert (asyncio.run(serving()) > 0) is reads_again


def test_a_loaded_gateway_reads_its_secrets_again_as_often_as_secret_refresh_seconds_says(tmp_path: Path) -> None:
    reset_challenge_cache()
    path = tmp_path / "gateway.yaml"
    path.write_text(VAULT_CONFIG)
    vault = FakeKeyVaultTransport({("gw-vault", "eastus-key"): "azure-key-from-vault"})
    environ = {**SECRETS, "CONFIG_PATH": str(path), "SECRET_REFRESH_SECONDS": "0.5"}
    gateway = gateway_module.load(environ, credential=FakeCredential(), secret_transport=vault)

    async def serving() -> int:
        read = len(vault.requests)
        gateway.on_request()
        await asyncio.sleep(1.5)
        await gateway.aclose()
        return len(vault.requests) - read

    assert asyncio.run(serving()) > 0


# -- SIGTERM ------------------------------------------------------------------------------------


class Recorded:
    """A SIGTERM handler that only records, installed for the test and put back afterwards."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.events.append(f"signal {signum}")


@pytest.fixture
def sigterm_recorded() -> Iterator[Recorded]:
    recorded = Recorded()
    original = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, recorded)
    try:
        yield recorded
    finally:
        signal.signal(signal.SIGTERM, original)


async def until(condition: Callable[[], object]) -> None:
    deadline = time.monotonic() + 5.0
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


def test_sigterm_runs_the_flush_once_then_the_handler_that_was_there_before(sigterm_recorded) -> None:
    events = sigterm_recorded.events

    async def flush() -> None:
        events.append("flushing")
        await asyncio.sleep(0.05)
        events.append("flushed")

    async def run() -> bool:
        installed = shutdown.flush_on_terminate(flush)
        os.kill(os.getpid(), signal.SIGTERM)
        await until(lambda: "signal 15" in events)
        await asyncio.sleep(0.2)  # time for a second round, were there one
        return installed and not asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)

    assert asyncio.run(run()) is True  # installed, and gone once it ran: a second SIGTERM acts at once
    assert events == ["flushing", "flushed", f"signal {signal.SIGTERM}"]
    assert signal.getsignal(signal.SIGTERM) is sigterm_recorded


def test_a_flush_that_fails_is_logged_and_the_signal_still_acts(sigterm_recorded, caplog) -> None:
    async def flush() -> None:
        raise RuntimeError("the table is gone")

    async def run() -> bool:
        installed = shutdown.flush_on_terminate(flush)
        os.kill(os.getpid(), signal.SIGTERM)
        await until(lambda: sigterm_recorded.events)
        return installed

    with caplog.at_level(logging.INFO, logger="aoai_gateway"):
        assert asyncio.run(run()) is True
    assert sigterm_recorded.events == [f"signal {signal.SIGTERM}"]
    [record] = [record for record in caplog.records if record.name == "aoai_gateway"]
    assert record.getMessage() == "flushing before the process stops failed" and record.levelno == logging.ERROR
    assert record.exc_info is not None and str(record.exc_info[1]) == "the table is gone"


def test_the_functions_workers_start_flushes_the_counts_when_sigterm_comes(
    no_process_gateway, sigterm_recorded, sim, tmp_path: Path, caplog
) -> None:
    environ = standard_environ(sim, tmp_path)

    async def worker() -> None:  # the worker imports function_app.py on its running loop
        gateway_module.start_in_background(environ)
        os.kill(os.getpid(), signal.SIGTERM)
        await until(lambda: sigterm_recorded.events)

    with caplog.at_level(logging.INFO, logger="aoai_gateway"):
        asyncio.run(worker())
    assert sigterm_recorded.events == [f"signal {signal.SIGTERM}"]
    assert "stopping: usage counts flushed" in caplog.messages
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_without_a_running_loop_nothing_is_installed(sigterm_recorded) -> None:
    async def flush() -> None:
        raise AssertionError("never run")

    assert shutdown.flush_on_terminate(flush) is False
    assert signal.getsignal(signal.SIGTERM) is sigterm_recorded


def test_a_loop_that_takes_no_signal_handlers_gets_none(sigterm_recorded) -> None:
    class NoSignals(asyncio.SelectorEventLoop):  # as Windows' loops
        def add_signal_handler(self, *args: object) -> None:
            raise NotImplementedError

    async def flush() -> None:
        raise AssertionError("never run")

    async def install() -> bool:
        return shutdown.flush_on_terminate(flush)

    with asyncio.Runner(loop_factory=NoSignals) as runner:
        assert runner.run(install()) is False


def test_a_loop_outside_the_main_thread_gets_no_handler(sigterm_recorded) -> None:
    async def flush() -> None:
        raise AssertionError("never run")

    async def install() -> bool:
        return shutdown.flush_on_terminate(flush)

    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(install())))
    thread.start()
    thread.join(10)
    assert results == [False]
    assert signal.getsignal(signal.SIGTERM) is sigterm_recorded


def test_a_previous_handler_not_set_from_python_is_restored_as_the_default(sigterm_recorded) -> None:
    shutdown._restore(None)  # the default ends the process: nothing sends SIGTERM before the fixture puts it back
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_the_flush_before_stopping_writes_the_process_gateways_counts(no_process_gateway, sim, tmp_path, caplog):
    environ = standard_environ(sim, tmp_path)
    with caplog.at_level(logging.INFO, logger="aoai_gateway"):
        asyncio.run(gateway_module._flush_before_stopping())  # no gateway yet: nothing to flush
        assert "stopping: usage counts flushed" not in caplog.messages
        gateway_module.start_in_background(environ)
        wait_until_ready()
        asyncio.run(gateway_module._flush_before_stopping())
    assert caplog.messages.count("stopping: usage counts flushed") == 1


# -- settings in seconds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, seconds",
    [(None, 60.0), ("", 60.0), ("  ", 60.0), ("30", 30.0), (" 0.5 ", 0.5), ("1e-3", 0.001)],
)
def test_config_refresh_seconds_is_positive_and_60_unless_set(value, seconds) -> None:
    environ = {} if value is None else {"CONFIG_REFRESH_SECONDS": value}
    assert gateway_module.refresh_seconds(environ) == seconds


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan"])
def test_config_refresh_seconds_that_is_not_positive_is_refused_by_name(value) -> None:
    with pytest.raises(ConfigError) as refused:
        gateway_module.refresh_seconds({"CONFIG_REFRESH_SECONDS": value})
    assert refused.value.problems == [f"CONFIG_REFRESH_SECONDS must be a positive number of seconds, not {value!r}."]


@pytest.mark.parametrize("value, seconds", [(None, 300.0), ("", 300.0), ("0", 0.0), ("45", 45.0), ("0.25", 0.25)])
def test_secret_refresh_seconds_may_be_0_for_never_and_is_300_unless_set(value, seconds) -> None:
    environ = {} if value is None else {"SECRET_REFRESH_SECONDS": value}
    assert gateway_module.secret_refresh_seconds(environ) == seconds


@pytest.mark.parametrize("value", ["-0.5", "often", "nan"])
def test_secret_refresh_seconds_below_0_is_refused_by_name(value) -> None:
    with pytest.raises(ConfigError) as refused:
        gateway_module.secret_refresh_seconds({"SECRET_REFRESH_SECONDS": value})
    assert refused.value.problems == [f"SECRET_REFRESH_SECONDS must be a number of seconds (0: never), not {value!r}."]


def test_loading_names_the_source_and_quiets_the_azure_sdks_info_lines(sim, tmp_path: Path, caplog) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(WARNED_CONFIG)
    azure = logging.getLogger("azure")
    level = azure.level
    azure.setLevel(logging.NOTSET)
    try:
        with caplog.at_level(logging.INFO, logger="aoai_gateway"):
            loaded = gateway_module.load({**SECRETS, "SIM_URL": sim.url, "CONFIG_PATH": str(path)})
        assert azure.level == logging.WARNING
    finally:
        azure.setLevel(level)
    asyncio.run(loaded.aclose())
    messages = [record.getMessage() for record in caplog.records if record.name == "aoai_gateway"]
    assert messages[0] == f"configuration loaded from file:{path}"
    assert len(messages) == 2 and messages[1].startswith("configuration warning: ") and "maxBodyByte" in messages[1]
