//! The admin API: what operators (and `tuber-hub invite create` while the
//! hub holds the database) ask of a running hub. Every request carries
//! `Authorization: Bearer TOKEN`, the token the hub keeps in its data dir
//! (`admin.token`, readable by its owner only).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

use tuber_proto::PeerId;

use crate::bans::BanView;
use crate::routes::ApiError;
use crate::server::HubState;

/// The admin token's file name in the data dir.
pub const TOKEN_FILE: &str = "admin.token";

/// Reads the admin token, making one on first start.
pub fn ensure_token(dir: &Path) -> std::io::Result<String> {
    let path = dir.join(TOKEN_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let t = existing.trim();
        if t.len() >= 32 {
            return Ok(t.to_string());
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token = hex::encode(bytes);
    write_private(&path, &token)?;
    Ok(token)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

fn authorize(state: &HubState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Compare in constant time: the token guards invites and content.
    let expected = state.admin_token.as_bytes();
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "admin token required".into(),
        ))
    }
}

/// `POST /.tuber/admin/invites` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct InviteRequest {
    /// Who it is for.
    pub name: String,
    /// Lifetime, e.g. "7days"; default from the config.
    #[serde(default, with = "humantime_serde")]
    pub expires: Option<Duration>,
}

/// The answer to an invite request.
#[derive(Debug, Serialize, Deserialize)]
pub struct InviteResponse {
    /// The token to give the peer's owner.
    pub token: String,
    /// Unix seconds.
    pub expires: u64,
    /// A `tuber://join` link that opens the desktop app filled in.
    pub join_link: String,
}

/// Builds the deep link that opens the desktop app's join dialog filled in
/// (`tuber://join?swarm=URL[&invite=TOKEN]`).
pub fn join_link(swarm_url: &str, invite: Option<&str>) -> String {
    let mut link = format!("tuber://join?swarm={}", query_escape(swarm_url));
    if let Some(token) = invite {
        link.push_str("&invite=");
        link.push_str(&query_escape(token));
    }
    link
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `POST /.tuber/admin/invites`
pub async fn create_invite(
    State(state): State<Arc<HubState>>,
    headers: HeaderMap,
    Json(req): Json<InviteRequest>,
) -> Result<Json<InviteResponse>, ApiError> {
    authorize(&state, &headers)?;
    if req.name.trim().is_empty() || req.name.len() > 200 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "name: 1 to 200 bytes".into(),
        ));
    }
    let lifetime = req.expires.unwrap_or(state.invite_lifetime).as_secs();
    let db = state.db.clone();
    let now = crate::db::unix_now();
    let name = req.name.clone();
    let token = tokio::task::spawn_blocking(move || db.create_invite(&name, lifetime, now))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    tracing::info!(name = %req.name, "invite created");
    let join_link = join_link(&state.public_url, Some(&token));
    Ok(Json(InviteResponse {
        token,
        expires: now + lifetime,
        join_link,
    }))
}

/// `POST /.tuber/admin/content` body: distribute this path ahead of demand.
#[derive(Debug, Deserialize)]
pub struct ContentRequest {
    /// The resource path on the origin.
    pub path: String,
}

/// The answer to a content request.
#[derive(Debug, Serialize)]
pub struct ContentResponse {
    /// The path.
    pub path: String,
    /// Its manifest id.
    pub manifest: String,
    /// Its length in bytes.
    pub length: u64,
    /// Its piece count.
    pub pieces: usize,
}

/// `POST /.tuber/admin/content`: the webhook for new content.
pub async fn add_content(
    State(state): State<Arc<HubState>>,
    headers: HeaderMap,
    Json(req): Json<ContentRequest>,
) -> Result<Json<ContentResponse>, ApiError> {
    authorize(&state, &headers)?;
    let m = state.manifests.get(&req.path).await?;
    state.publish(&m, true).await;
    Ok(Json(ContentResponse {
        path: m.path.clone(),
        manifest: m.id().to_hex(),
        length: m.length,
        pieces: m.pieces.len(),
    }))
}

/// `GET /.tuber/admin/bans`: the bans in force, the one ending first first.
pub async fn list_bans(
    State(state): State<Arc<HubState>>,
    headers: HeaderMap,
) -> Result<Json<Vec<BanView>>, ApiError> {
    authorize(&state, &headers)?;
    let db = state.db.clone();
    let duration = state.ban_duration;
    let bans = tokio::task::spawn_blocking(move || {
        crate::bans::active(&db, duration, crate::db::unix_now())
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(bans))
}

/// The answer to lifting a ban.
#[derive(Debug, Serialize, Deserialize)]
pub struct LiftResponse {
    /// The peer id (hex).
    pub peer: String,
    /// Whether it was banned (false: nothing to lift).
    pub lifted: bool,
}

/// `DELETE /.tuber/admin/bans/{peer}`: lifts a ban at once (the peer may
/// rejoin; the planner and the database forget the ban).
pub async fn lift_ban(
    State(state): State<Arc<HubState>>,
    headers: HeaderMap,
    UrlPath(peer): UrlPath<String>,
) -> Result<Json<LiftResponse>, ApiError> {
    authorize(&state, &headers)?;
    let id = PeerId::from_hex(&peer)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("peer id: {e}")))?;
    let lifted = state.swarm.unban(id).await;
    Ok(Json(LiftResponse {
        peer: id.to_hex(),
        lifted,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_links_escape_their_values() {
        assert_eq!(
            join_link("https://v.example.org/a b", Some("tuber-invite-ab")),
            "tuber://join?swarm=https%3A%2F%2Fv.example.org%2Fa%20b&invite=tuber-invite-ab"
        );
        assert_eq!(
            join_link("http://h:1", None),
            "tuber://join?swarm=http%3A%2F%2Fh%3A1"
        );
    }

    #[test]
    fn the_token_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ensure_token(dir.path()).expect("token");
        let b = ensure_token(dir.path()).expect("token");
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }
}
