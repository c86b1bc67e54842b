"""Budgets shared by gateway processes through Azurite's table service: each instance admits only within its
lease of a key's window, so concurrent clients on two instances get no more than the limit; counts survive a
restart and a clean shutdown; the table heals when it is deleted or may not be created; a key nobody uses
costs no table operation; a store that goes away never stops traffic."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableClient, TableSasPermissions, TableServiceClient, generate_table_sas

from core.models.prices import money
from tests.support.access_log import access_line
from tests.support.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteTable
from tests.support.budgets import CHAT, fresh_day, fresh_minute, limited, post, usage_report
from tests.support.standard import ALICE, BOB, SECRETS

ROOT = Path(__file__).resolve().parents[1]
TABLE = "gatewayusage"


@pytest.fixture
def tables():
    with AzuriteTable(debug=True) as service:
        yield service


def environ(sim, tables, connection_string: str | None = None) -> dict[str, str]:
    return {
        **SECRETS,
        "SIM_URL": sim.url,
        "USAGE_TABLE_CONNECTION_STRING": connection_string or tables.connection_string,
    }


def hammer(targets: list[Any], clients: int, seconds: float, body: dict[str, Any] = CHAT) -> list[httpx.Response]:
    """`clients` threads, each sending `body` as alice to the targets in turn for `seconds`; every answer."""
    answers: list[httpx.Response] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        with httpx.Client(timeout=10) as http:
            n = index
            while time.monotonic() < deadline:
                target = targets[n % len(targets)]
                n += 1
                answer = http.post(f"{target.url}/v1/chat/completions", json=body,
                                   headers={"Authorization": f"Bearer {ALICE}"})  # fmt: skip
                with lock:
                    answers.append(answer)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return answers


def test_concurrent_clients_on_two_instances_get_no_more_requests_than_the_limit(sim, start_gateway, tables) -> None:
    limit = 40
    config = limited(f"{{requestsPerMinute: {limit}}}")
    first, second = start_gateway(config, environ(sim, tables)), start_gateway(config, environ(sim, tables))
    fresh_minute(40)
    answers = hammer([first, second], clients=12, seconds=6)
    admitted = [a for a in answers if a.status_code == 200]
    # Each instance admits only within its lease; the leases never add up to more than the limit.
    assert len(admitted) == limit, (len(admitted), len(answers))
    assert {a.status_code for a in answers} == {200, 429}
    assert all(a.json()["error"]["code"] == "rate_limit_exceeded" for a in answers if a.status_code == 429)
    assert [post(g, BOB).status_code for g in (first, second)] == [200, 200]  # another key is its own


def test_tokens_on_two_instances_stay_within_the_limit(sim, start_gateway, tables) -> None:
    limit = 3000
    config = limited(f"{{tokensPerMinute: {limit}, reserveOutputTokens: 20}}")
    first, second = start_gateway(config, environ(sim, tables)), start_gateway(config, environ(sim, tables))
    fresh_minute(40)
    answers = hammer([first, second], clients=20, seconds=6)
    spent = sum(a.json()["usage"]["total_tokens"] for a in answers if a.status_code == 200)
    # A call settles at its real usage, here below its reservation: nothing beyond the limit is spent.
    assert limit * 0.5 < spent <= limit, spent
    refused = [a for a in answers if a.status_code == 429]
    assert refused and all("tokens per min (TPM)" in a.json()["error"]["message"] for a in refused)


def test_a_cost_limit_on_two_instances_refuses_the_calls_that_would_pass_it(
    sim, start_gateway, tables, tmp_path
) -> None:
    """Money is leased like tokens: concurrent clients on two instances spend no more than the key's costPerDay
    (gpt-4o at the built-in table's price), and the calls past it get 429 insufficient_quota."""
    limit = 0.004
    config = limited(f"{{costPerDay: {limit}, costPerMonth: 10, reserveOutputTokens: 20}}")
    first, second = start_gateway(config, environ(sim, tables)), start_gateway(config, environ(sim, tables))
    fresh_day(60)  # the day's row and limit, and the month's, stay the same throughout
    # One call on each instance first: the limit is a few calls, and an instance that starts serving late (a loaded
    # machine) would otherwise find it all claimed by the other, which is the leases working, not a failure.
    warm = [post(g, ALICE) for g in (first, second)]
    assert [a.status_code for a in warm] == [200, 200]
    answers = warm + hammer([first, second], clients=12, seconds=6)
    admitted = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert admitted and refused, (len(admitted), len(answers))
    assert {a.headers["x-gateway-cost-limit"] for a in answers} == {"0.004"}
    for answer in refused:
        error = answer.json()["error"]
        assert error["code"] == "insufficient_quota" and "cost per day of caller key alice" in error["message"]
        assert int(answer.headers["retry-after"]) > 60  # to the day's end, not the minute's
    # Each call settled at its real cost, within its reservation: together within the limit, on both instances.
    by_instance = {id(g): [a for a in admitted if str(a.url).startswith(f"{g.url}/")] for g in (first, second)}
    assert all(by_instance.values())  # both instances admitted calls
    lines = [access_line(g, a.headers["x-request-id"]) for g in (first, second) for a in by_instance[id(g)]]
    spent = sum(line["cost"] for line in lines)
    assert limit * 0.5 < spent <= limit, spent
    now = datetime.now(UTC)
    day, month = now.strftime("d%Y%m%d"), now.strftime("M%Y%m")
    table = TableClient.from_connection_string(tables.connection_string, TABLE)
    deadline = time.monotonic() + 15
    while True:  # each instance writes its use within about a second; a loaded machine may take longer
        rows = {r["RowKey"]: r for r in table.list_entities() if r["caller"] == "alice"}
        written = [rows[key]["cost"].value if key in rows else None for key in (day, month)]
        if written == [round(spent * 1_000_000)] * 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert written == [round(spent * 1_000_000)] * 2  # micro-units, every instance's, today's and this month's
    row = rows[day]
    config_path = tmp_path / "usage.yaml"
    config_path.write_text(config)
    report = usage_report(environ(sim, tables), config_path).splitlines()
    [alice] = [line for line in report if line.startswith("alice")]
    # And per model, under the key: what its calls cost today and this month.
    cost = money(row["cost"].value)
    assert report[report.index(alice) + 1] == f"    gpt-4o: cost today {cost}, this month {cost}"
    assert f"today: tokens {sum(line['total_tokens'] for line in lines)}, cost {cost}/0.004" in alice
    assert alice.endswith(f"; this month: cost {cost}/10.00")


def test_counts_survive_a_clean_shutdown_and_a_restart(sim, start_gateway, tables, tmp_path) -> None:
    limit = 12
    config = limited(f"{{requestsPerMinute: {limit}}}")
    config_path = tmp_path / "usage.yaml"
    config_path.write_text(config)
    env = environ(sim, tables)
    first = start_gateway(config, env)
    fresh_minute(30)
    assert [post(first, ALICE).status_code for _ in range(10)] == [200] * 10
    first.stop()  # at once: its last counts go out as it shuts down, not at its next sync
    alice = next(line for line in usage_report(env, config_path).splitlines() if line.startswith("alice"))
    assert f"requests 10/{limit}" in alice

    restarted = start_gateway(config, env)
    assert [post(restarted, ALICE).status_code for _ in range(3)] == [200, 200, 429]
    over = post(restarted, ALICE)
    assert over.headers["x-ratelimit-remaining-requests"] == "0" and int(over.headers["retry-after"]) >= 1
    assert ALICE not in usage_report(env, config_path)


def test_a_store_that_goes_away_never_stops_traffic_and_is_logged_once(sim, start_gateway, tables) -> None:
    config = limited("{requestsPerMinute: 1000}")
    gateway = start_gateway(config, environ(sim, tables))
    fresh_minute(30)
    assert post(gateway, ALICE).status_code == 200
    tables.stop()
    time.sleep(2.5)  # idle: the lease is handed back, so the next call must ask the (gone) table
    assert [post(gateway, ALICE).status_code for _ in range(5)] == [200] * 5  # fail open
    assert gateway.logs().count("usage table unreachable") == 1
    tables.start()
    deadline = time.monotonic() + 10
    while "usage table reachable again" not in gateway.logs() and time.monotonic() < deadline:
        post(gateway, ALICE)
        time.sleep(0.5)
    assert "usage table reachable again" in gateway.logs()


def test_a_deleted_table_is_created_again(sim, start_gateway, tables) -> None:
    config = limited("{requestsPerMinute: 1000}")
    gateway = start_gateway(config, environ(sim, tables))
    fresh_minute(30)
    assert post(gateway, ALICE).status_code == 200
    TableClient.from_connection_string(tables.connection_string, TABLE).delete_table()
    time.sleep(2.5)  # the lease goes back to a table that is gone
    assert [post(gateway, ALICE).status_code for _ in range(3)] == [200] * 3
    time.sleep(1.5)
    rows = list(TableClient.from_connection_string(tables.connection_string, TABLE).list_entities())
    assert [row["requests"].value for row in rows if row["caller"] == "alice"] == [4]


def test_an_identity_that_may_not_create_tables_uses_the_table_that_exists(sim, start_gateway, tables) -> None:
    # The Bicep creates the table and grants a role scoped to it: creating tables is refused (403).
    TableServiceClient.from_connection_string(tables.connection_string).create_table(TABLE)
    sas = generate_table_sas(
        AzureNamedKeyCredential(ACCOUNT_NAME, ACCOUNT_KEY),
        TABLE,
        permission=TableSasPermissions(read=True, add=True, update=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    scoped = f"TableEndpoint={tables.endpoint};SharedAccessSignature={sas}"
    with pytest.raises(HttpResponseError) as refused:
        TableClient.from_connection_string(scoped, TABLE).create_table()
    assert refused.value.status_code == 403
    limit = 6
    config = limited(f"{{requestsPerMinute: {limit}}}")
    first, second = (
        start_gateway(config, environ(sim, tables, scoped)),
        start_gateway(config, environ(sim, tables, scoped)),
    )
    fresh_minute(30)
    statuses = [post((first, second)[n % 2], ALICE).status_code for n in range(2 * limit)]
    assert statuses.count(200) == limit  # shared, not counted per instance
    assert "usage table" not in first.logs() + second.logs()


def test_a_key_nobody_uses_costs_no_table_operation(sim, start_gateway, tables) -> None:
    many = "\n".join(
        f'    - {{name: idle{n}, key: "idle-key-{n}", limits: {{tokensPerMinute: 1000}}}}' for n in range(50)
    )
    config = limited("{requestsPerMinute: 1000}").replace("    - {name: bob", many + "\n    - {name: bob")
    gateway = start_gateway(config, environ(sim, tables))
    fresh_minute(20)
    assert post(gateway, ALICE).status_code == 200
    time.sleep(3)  # alice's lease written and handed back
    before = len(tables.requests_served())
    time.sleep(3)
    assert tables.requests_served()[before:] == []  # nothing to write, nothing to read: no operation at all
