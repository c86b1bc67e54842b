"""The tests' in-process host (GATEWAY_IN_PROCESS=1): several gateways in one process, each
serving its own configuration and logging its own lines, as separate processes would."""

import httpx

from tests.support.access_log import access_line
from tests.support.gateway_process import gateway_environ
from tests.support.inprocess_gateway import InProcessGateway
from tests.support.standard import ALICE, BOB, SECRETS, STANDARD_CONFIG

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
ONLY_ALICE = STANDARD_CONFIG.replace('      key: "${BOB_KEY}"', '      key: "${ALICE_KEY}-not-bob"')
assert ONLY_ALICE != STANDARD_CONFIG


def test_two_gateways_in_one_process_keep_their_configurations_and_logs(sim, tmp_path) -> None:
    env = {**SECRETS, "SIM_URL": sim.url}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        InProcessGateway(gateway_environ(STANDARD_CONFIG, env, tmp_path / "a")) as standard,
        InProcessGateway(gateway_environ(ONLY_ALICE, env, tmp_path / "b")) as only_alice,
    ):
        bob = {"Authorization": f"Bearer {BOB}"}
        assert httpx.get(f"{standard.url}/v1/models", headers=bob).status_code == 200
        assert httpx.get(f"{only_alice.url}/v1/models", headers=bob).status_code == 401
        chat = httpx.post(
            f"{only_alice.url}/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {ALICE}"}
        )
        assert chat.status_code == 200
        request_id = chat.headers["x-request-id"]
        assert access_line(only_alice, request_id)["caller"] == "alice" and request_id not in standard.logs()
        assert '"status":401' in only_alice.logs() and '"status":401' not in standard.logs()
