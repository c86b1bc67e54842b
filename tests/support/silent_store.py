"""A store that takes connections on 127.0.0.1 and never answers (a hung proxy, a stopped VM behind a load
balancer), for the tests of what the usage table and the budgets do when the table does not answer.

    with SilentStore() as store:
        UsageTable(TableAddress("t", connection_string=store.connection_string), None)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self

from tests.support.azurite import ACCOUNT_KEY, ACCOUNT_NAME


class SilentStore:
    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.held.append(self._server.accept()[0])  # read nothing, answer nothing

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT_NAME};"
        )

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}/{ACCOUNT_NAME}"

    def __enter__(self) -> Self:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._acceptor.join()
        for connection in self.held:  # lets a client still waiting end
            connection.close()
        self._server.close()
