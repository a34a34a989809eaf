"""pytest fixtures: one Doorward server for the whole session (see helpers.DoorwardServer)."""

from __future__ import annotations

import pytest

from helpers import DoorwardServer, doorward_bin

_SERVER: DoorwardServer | None = None


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> DoorwardServer:
    global _SERVER
    workdir = tmp_path_factory.mktemp("doorward")
    srv = DoorwardServer(doorward_bin(), workdir)
    _SERVER = srv
    try:
        srv.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def origin(server: DoorwardServer) -> str:
    return server.origin


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """On failure, show the tail of the server's output (it explains most 4xx/5xx surprises)."""
    if _SERVER is None or exitstatus == 0:
        return
    terminalreporter.section("doorward server output (tail)")
    terminalreporter.write_line("command: " + " ".join(_SERVER.command))
    terminalreporter.write_line(_SERVER.output(last=80))
