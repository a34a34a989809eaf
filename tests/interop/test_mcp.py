"""The official MCP Python SDK (`mcp`, pinned in requirements.txt) as a client nothing
pre-registered, against an MCP server (examples/mcp-server: the Rust SDK `rmcp`) protected by
doorward-axum's `ResourceServer` and a `doorward serve` of this module's own:

1. the SDK calls the MCP endpoint without a token and gets 401 with
   `WWW-Authenticate: Bearer resource_metadata="…"` (RFC 9728 §5.1);
2. it reads the Protected Resource Metadata, then the authorization server's (RFC 8414);
3. it registers itself (RFC 7591, `[registration] mode = "open"`: a public client);
4. it sends the user through the real sign-in and consent pages (driven by the test's browser),
   with PKCE and `resource` (RFC 8707), checks `iss` (RFC 9207) and redeems the code;
5. it calls the tool, which answers with the user the token speaks for.

`bash scripts/test.sh` builds the example (DOORWARD_MCP_EXAMPLE_BIN).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx2
import pytest
import requests
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from helpers import (
    Browser,
    DoorwardServer,
    ReadyProcess,
    authorize_as,
    doorward_bin,
    free_port,
    started,
)

MCP_SERVER_KEY = "mcp_server@clients"
MCP_SERVER_SECRET = "mcp_server_secret_1"
# The agent's own callback: nothing listens there; the test's browser stops at the redirect.
AGENT_REDIRECT = "http://127.0.0.1:8765/callback"


def example_bin() -> Path:
    env = os.environ.get("DOORWARD_MCP_EXAMPLE_BIN")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "target" / "debug" / "doorward-example-mcp-server"


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory: what the agent learns (its registration, its
    tokens) lives only as long as the test."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    mcp_port = free_port()
    resource = f"http://127.0.0.1:{mcp_port}/mcp"
    extra = "\n".join([
        "[oauth]",
        f'resources = ["{resource}"]',
        "",
        "[registration]",
        'mode = "open"',
        "",
        "[clients.mcp_server]",
        'display_name = "MCP server"',
        f'app_uri = "http://127.0.0.1:{mcp_port}"',
        f'callback_uri = "http://127.0.0.1:{mcp_port}/unused"',
        f'secret = "{MCP_SERVER_SECRET}"',
        "resource_server = true",
        "",
    ])
    provider = started(DoorwardServer(doorward_bin(), tmp_path_factory.mktemp("mcp"), extra_config=extra))
    mcp = ReadyProcess(
        [str(example_bin()), "--issuer", provider.origin, "--listen", f"127.0.0.1:{mcp_port}",
         "--client-id", MCP_SERVER_KEY, "--scope", "base"],
        {"MCP_SERVER_CLIENT_SECRET": MCP_SERVER_SECRET}, "MCP server on")
    yield provider, resource
    mcp.stop()
    provider.stop()


def test_unauthenticated_call_points_at_the_resource_metadata(servers):
    provider, resource = servers
    r = requests.post(resource, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                      headers={"Accept": "application/json, text/event-stream"}, timeout=10)
    assert r.status_code == 401, r.text
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and "resource_metadata=" in challenge, challenge
    metadata_url = challenge.split('resource_metadata="', 1)[1].split('"', 1)[0]
    metadata = requests.get(metadata_url, timeout=10).json()
    assert metadata["resource"] == resource, metadata
    assert metadata["authorization_servers"] == [provider.origin], metadata


def test_the_mcp_sdk_discovers_registers_signs_in_and_calls_a_tool(servers):
    provider, resource = servers
    browser = Browser(provider.origin)
    seen: dict = {}

    async def redirect_handler(url: str) -> None:
        seen["authorize_url"] = url
        # The user's side: Doorward's sign-in and consent pages, in the test's browser.
        seen["result"] = await asyncio.to_thread(authorize_as, browser, url, "alice",
                                                 redirect_uri=AGENT_REDIRECT)

    async def callback_handler() -> AuthorizationCodeResult:
        params = seen["result"].params
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"),
                                       iss=params.get("iss"))

    storage = MemoryStorage()
    auth = OAuthClientProvider(
        server_url=resource,
        client_metadata=OAuthClientMetadata(
            client_name="MCP test agent",
            redirect_uris=[AGENT_REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
            scope="base",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )

    async def session() -> tuple[list[str], str]:
        async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
            async with Client(streamable_http_client(resource, http_client=http)) as client:
                tools = await client.list_tools()
                answer = await client.call_tool("whoami", {})
                return [t.name for t in tools.tools], answer.content[0].text

    names, text = asyncio.run(session())
    assert "whoami" in names
    # Registered by the SDK itself (RFC 7591), as a public client.
    registered = storage.client_info
    assert registered is not None and registered.client_id
    assert registered.client_secret is None
    # The authorization request carried PKCE and the resource (RFC 8707).
    sent = dict(p.split("=", 1) for p in seen["authorize_url"].split("?", 1)[1].split("&"))
    assert sent["code_challenge_method"] == "S256" and "resource" in sent, sent
    assert seen["result"].consent_shown, "a new client asks the user's consent"
    # The tool saw the token of alice, issued to the registered client.
    who = json.loads(text)
    assert who["client_id"] == registered.client_id, who
    assert who["subject"] and who["subject"] != registered.client_id, who
    assert "base" in who["scopes"], who
