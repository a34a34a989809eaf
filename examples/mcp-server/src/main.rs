//! An MCP server whose tools need a token from a Doorward provider running elsewhere.
//!
//! The MCP part is the official Rust SDK (`rmcp`, streamable HTTP at `/mcp`); the protection is
//! doorward-axum's [`ResourceServer`], asking the provider by introspection (RFC 7662) with the
//! credentials of a client registered as a resource server, and publishing its Protected
//! Resource Metadata (RFC 9728) so that an MCP client finds the provider by itself. Only tokens
//! meant for this server (`aud` = its URL, asked for with RFC 8707's `resource`) reach the
//! tools. The tool `whoami` answers with what the token says: the user, the client, the scopes.
//!
//! ```sh
//! doorward-example-mcp-server --issuer http://127.0.0.1:8080 --listen 127.0.0.1:8090 \
//!     --client-id mcp_server@clients --client-secret … --scope base
//! ```
//!
//! An MCP client (the Python `mcp` SDK's `OAuthClientProvider`, say) calling `/mcp` without a
//! token gets `401` with `WWW-Authenticate: Bearer … resource_metadata="…"` (RFC 9728 §5.1),
//! reads the metadata, then the provider's (RFC 8414), registers itself (RFC 7591) and signs
//! the user in. The provider must list this server's URL in `[oauth] resources`.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use clap::Parser;
use doorward_axum::protect::{AccessGrant, ProtectedResource, ResourceServer};
use doorward_client::ProviderConfig;
use doorward_proto::Secret;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool, tool_router, ErrorData};

#[derive(Parser)]
struct Args {
    /// The provider's issuer (its metadata is discovered from it).
    #[arg(long)]
    issuer: String,
    /// Where this server listens.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// This server's resource identifier, the URL clients call (default: http://LISTEN/mcp).
    #[arg(long)]
    resource: Option<String>,
    /// This server's own client at the provider (registered with `resource_server = true`).
    #[arg(long)]
    client_id: String,
    #[arg(long, env = "MCP_SERVER_CLIENT_SECRET")]
    client_secret: String,
    /// The scope a token needs to reach the tools (repeat for several).
    #[arg(long = "scope", default_value = "base")]
    scopes: Vec<String>,
}

/// The tools. One instance per MCP session (the factory below makes them).
#[derive(Clone)]
struct Tools;

#[tool_router(server_handler)]
impl Tools {
    /// Who the bearer token speaks for. The grant comes from the HTTP request that carried the
    /// call: [`ResourceServer::require`] put it in the request's extensions.
    #[tool(description = "Who is calling: the user and client the access token was issued to")]
    async fn whoami(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let grant = parts
            .extensions
            .get::<AccessGrant>()
            .ok_or_else(|| ErrorData::internal_error("no access grant on the request", None))?;
        let answer = serde_json::json!({
            "subject": grant.subject,
            "client_id": grant.client_id,
            "scopes": grant.scopes,
        });
        Ok(CallToolResult::success(vec![ContentBlock::text(
            answer.to_string(),
        )]))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut provider = ProviderConfig::oidc(args.issuer.clone(), args.client_id);
    provider.client_secret = Some(Secret::new(args.client_secret));
    let client = doorward_client::Client::builder(provider)
        .build()
        .context("the provider client")?;
    let identifier = args
        .resource
        .unwrap_or_else(|| format!("http://{}/mcp", args.listen));
    let metadata = ProtectedResource::new(identifier.clone())?
        .authorization_server(args.issuer.clone())
        .scopes(&args.scopes.iter().map(String::as_str).collect::<Vec<_>>())
        .name("Doorward MCP example");
    let resource = ResourceServer::introspection(client, identifier).with_metadata(metadata);
    let scopes: Vec<&str> = args.scopes.iter().map(String::as_str).collect();

    let mcp = StreamableHttpService::new(
        || Ok(Tools),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    let app = Router::new()
        .nest_service("/mcp", mcp)
        .layer(resource.require(&scopes))
        .merge(resource.metadata_routes());

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    println!("MCP server on http://{}/mcp", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
