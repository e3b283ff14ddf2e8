//! A permanent peer in a process of its own, to be killed: starts an engine
//! on DATA_DIR, joins the swarm at URL, fetches the resource PATH to seed
//! itself, prints `ready PEER_ID`, then serves until killed.
//!
//! Usage: `peer-process DATA_DIR URL PATH [--invite TOKEN] [--corrupt]
//! [--wait-provider]`. Logs go to stderr (`RUST_LOG`).
//!
//! - `--invite TOKEN`: join with an invite, as a trusted peer.
//! - `--corrupt`: the test-only liar switch (`EngineConfig::corrupt_uploads`):
//!   every piece it uploads has a byte flipped.
//! - `--wait-provider`: say `ready` only once the hub names this peer as the
//!   provider of every piece of PATH (its `have`s reached the planner).

use std::time::Duration;

use anyhow::{bail, Context};
use tuber_peer::Engine;
use tuber_proto::Manifest;
use tuber_tests::swarm::{engine_config, http_get, wait_provider};

struct Args {
    dir: String,
    url: String,
    path: String,
    invite: Option<String>,
    corrupt: bool,
    wait_provider: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    const USAGE: &str =
        "usage: peer-process DATA_DIR URL PATH [--invite TOKEN] [--corrupt] [--wait-provider]";
    let mut positional = Vec::new();
    let (mut invite, mut corrupt, mut wait) = (None, false, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--invite" => invite = Some(args.next().context(USAGE)?),
            "--corrupt" => corrupt = true,
            "--wait-provider" => wait = true,
            _ if a.starts_with("--") => bail!("unknown flag {a}; {USAGE}"),
            _ => positional.push(a),
        }
    }
    let [dir, url, path] = <[String; 3]>::try_from(positional).ok().context(USAGE)?;
    Ok(Args {
        dir,
        url,
        path,
        invite,
        corrupt,
        wait_provider: wait,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Args {
        dir,
        url,
        path,
        invite,
        corrupt,
        wait_provider: wait,
    } = parse_args()?;
    let mut config = engine_config(dir.as_ref());
    config.corrupt_uploads = corrupt;
    let engine = Engine::start(config).await.context("start the engine")?;
    engine.join(&url, invite.as_deref()).await.context("join")?;
    let summary =
        tokio::time::timeout(Duration::from_secs(120), engine.fetch_resource(&url, &path))
            .await
            .context("seeding took over 120 s")?
            .context("seed")?;
    if summary.failed > 0 {
        bail!("seeding failed for {} pieces: {summary:?}", summary.failed);
    }
    eprintln!("peer-process seeded {path}: {summary:?}");
    if wait {
        let base = url.trim_end_matches('/');
        let (status, body) = http_get(&format!("{base}/.tuber/manifest?path={path}")).await;
        if !status.is_success() {
            bail!("manifest of {path}: {status}");
        }
        let manifest = Manifest::decode(&body).context("decode the manifest")?;
        wait_provider(
            &url,
            &engine.peer_id(),
            &manifest.pieces,
            Duration::from_secs(60),
        )
        .await;
    }
    println!("ready {}", engine.peer_id());
    std::future::pending::<()>().await;
    Ok(())
}
