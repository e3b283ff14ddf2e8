//! `tuber-hub bans list` and `tuber-hub bans lift PEER_ID`: straight in the
//! database when the hub is stopped, through its admin API while it runs
//! (it holds the database then, and a lifted ban must reach its planner
//! too, or the peer would stay refused until the next start).

use clap::Subcommand;
use tuber_proto::PeerId;

use super::{admin_client, Common};
use crate::admin::LiftResponse;
use crate::bans::BanView;
use crate::config::HubConfig;
use crate::db::{DbError, HubDb};
use crate::server::{self, HubError};

#[derive(Debug, Subcommand)]
pub(crate) enum BansCommand {
    /// Print the bans in force: peer id, until (Unix time), since, reason.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// End a ban now: the peer may join again.
    Lift {
        /// The banned peer's id (64 hex digits, as `list` prints it).
        peer: String,
        #[command(flatten)]
        common: Common,
    },
}

pub(super) async fn run(command: BansCommand) -> Result<(), HubError> {
    match command {
        BansCommand::List { common } => {
            let bans = list(&common.config()?).await?;
            for b in &bans {
                println!(
                    "{} until={} since={} {}",
                    b.peer, b.until, b.since, b.reason
                );
            }
            eprintln!("{} ban(s) in force", bans.len());
            Ok(())
        }
        BansCommand::Lift { peer, common } => {
            let id = PeerId::from_hex(&peer)
                .map_err(|e| HubError::Config(format!("peer id {peer:?}: {e}")))?;
            if lift(&common.config()?, id).await? {
                eprintln!("ban of {peer} lifted");
                Ok(())
            } else {
                Err(HubError::Config(format!("{peer} is not banned")))
            }
        }
    }
}

/// The database if no hub holds it (None: ask the running hub).
async fn open(config: &HubConfig) -> Result<(std::path::PathBuf, Option<HubDb>), HubError> {
    let dir = server::data_dir(config)?;
    let opened = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || HubDb::open(&dir))
            .await
            .map_err(|e| HubError::Config(e.to_string()))?
    };
    match opened {
        Ok(db) => Ok((dir, Some(db))),
        Err(DbError::Locked(_)) => Ok((dir, None)),
        Err(e) => Err(e.into()),
    }
}

/// The bans in force, the one ending first first.
pub async fn list(config: &HubConfig) -> Result<Vec<BanView>, HubError> {
    let (dir, db) = open(config).await?;
    if let Some(db) = db {
        return Ok(crate::bans::active(
            &db,
            config.planner.ban_duration,
            crate::db::unix_now(),
        )?);
    }
    let token = crate::admin::ensure_token(&dir)?;
    let method = http::Method::GET;
    let body = admin_client::call(config, &dir, &token, method, "/.tuber/admin/bans", None).await?;
    serde_json::from_slice(&body)
        .map_err(|e| HubError::Config(format!("the running hub answered: {e}")))
}

/// Lifts `peer`'s ban; false if it was not banned.
pub async fn lift(config: &HubConfig, peer: PeerId) -> Result<bool, HubError> {
    let (dir, db) = open(config).await?;
    if let Some(db) = db {
        let lifted = db.unban(&peer)?;
        db.flush()?;
        return Ok(lifted);
    }
    let token = crate::admin::ensure_token(&dir)?;
    let path = format!("/.tuber/admin/bans/{}", peer.to_hex());
    let method = http::Method::DELETE;
    let body = admin_client::call(config, &dir, &token, method, &path, None).await?;
    let answer: LiftResponse = serde_json::from_slice(&body)
        .map_err(|e| HubError::Config(format!("the running hub answered: {e}")))?;
    Ok(answer.lifted)
}
