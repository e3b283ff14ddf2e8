//! Invites: how a site operator makes a permanent peer trusted.
//!
//! `tuber-hub invite create` makes a random token; the hub stores only its
//! SHA-256 (a copy of the database does not leak usable invites). A permanent
//! peer presents the token in `hello` together with its signed key; redeeming
//! records the key as trusted and marks the invite used, in one transaction,
//! so an invite registers one key, once. Presenting the same invite again with
//! the same key is harmless (a reconnect) and succeeds; with another key it
//! is refused. Expired invites are refused.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use tuber_proto::PeerId;

use crate::db::{DbError, HubDb};

/// What every invite token starts with, so that a pasted token is recognisable.
pub const TOKEN_PREFIX: &str = "tuber-invite-";

/// A stored invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRecord {
    /// Who it is for (operator's note).
    pub name: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds after which it is refused.
    pub expires: u64,
    /// The key that redeemed it.
    pub used_by: Option<PeerId>,
}

/// A trusted peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedRecord {
    /// The invite's name.
    pub name: String,
    /// Unix seconds of registration.
    pub since: u64,
}

/// Why an invite was refused.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    /// No such invite (or not a token at all).
    #[error("unknown invite")]
    Unknown,
    /// Past its expiry.
    #[error("the invite has expired")]
    Expired,
    /// Already redeemed by another key.
    #[error("the invite has already been used")]
    Used,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// Makes a new random invite token.
pub fn new_token() -> Result<String, DbError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| DbError::Sled(sled::Error::Io(std::io::Error::other(e.to_string()))))?;
    Ok(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
}

impl HubDb {
    /// Creates an invite valid for `lifetime_secs` from `now`; returns its token.
    pub fn create_invite(
        &self,
        name: &str,
        lifetime_secs: u64,
        now: u64,
    ) -> Result<String, DbError> {
        let token = new_token()?;
        let record = InviteRecord {
            name: name.to_string(),
            created: now,
            expires: now.saturating_add(lifetime_secs),
            used_by: None,
        };
        let value = serde_json::to_vec(&record).map_err(|_| DbError::Corrupt("invite"))?;
        self.invites.insert(token_key(&token), value)?;
        self.invites.flush()?;
        Ok(token)
    }

    /// Redeems `token` for `peer` at `now`: the peer becomes trusted.
    pub fn redeem_invite(&self, token: &str, peer: PeerId, now: u64) -> Result<(), InviteError> {
        if !token.trim().starts_with(TOKEN_PREFIX) {
            return Err(InviteError::Unknown);
        }
        let key = token_key(token);
        let result = (&self.invites, &self.trusted).transaction(|(invites, trusted)| {
            let abort = ConflictableTransactionError::Abort;
            let Some(raw) = invites.get(key)? else {
                return Err(abort(InviteError::Unknown));
            };
            let mut record: InviteRecord = serde_json::from_slice(&raw)
                .map_err(|_| abort(InviteError::Db(DbError::Corrupt("invite"))))?;
            match record.used_by {
                Some(user) if user == peer => return Ok(()),
                Some(_) => return Err(abort(InviteError::Used)),
                None if now > record.expires => return Err(abort(InviteError::Expired)),
                None => {}
            }
            record.used_by = Some(peer);
            let trusted_record = TrustedRecord {
                name: record.name.clone(),
                since: now,
            };
            let encode_err = |_| abort(InviteError::Db(DbError::Corrupt("invite")));
            let record = serde_json::to_vec(&record).map_err(encode_err)?;
            let trusted_record = serde_json::to_vec(&trusted_record).map_err(encode_err)?;
            invites.insert(&key[..], record)?;
            trusted.insert(&peer.as_bytes()[..], trusted_record)?;
            Ok(())
        });
        match result {
            Ok(()) => {
                self.trusted.flush().map_err(DbError::from)?;
                Ok(())
            }
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(InviteError::Db(e.into())),
        }
    }

    /// Whether `peer` is a registered trusted key.
    pub fn is_trusted(&self, peer: &PeerId) -> Result<bool, DbError> {
        Ok(self.trusted.contains_key(peer.as_bytes())?)
    }

    /// Every trusted key with its record.
    pub fn trusted_peers(&self) -> Result<Vec<(PeerId, TrustedRecord)>, DbError> {
        let mut out = Vec::new();
        for item in self.trusted.iter() {
            let (k, v) = item?;
            let bytes: [u8; 32] = k
                .as_ref()
                .try_into()
                .map_err(|_| DbError::Corrupt("trusted"))?;
            let rec = serde_json::from_slice(&v).map_err(|_| DbError::Corrupt("trusted"))?;
            out.push((PeerId::from_bytes(bytes), rec));
        }
        Ok(out)
    }

    /// Removes a key's trust (the operator changed their mind).
    pub fn untrust(&self, peer: &PeerId) -> Result<bool, DbError> {
        Ok(self.trusted.remove(peer.as_bytes())?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, HubDb) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = HubDb::open(dir.path()).expect("open");
        (dir, db)
    }

    const DAY: u64 = 86_400;

    #[test]
    fn an_invite_trusts_one_key_once() {
        let (_d, db) = db();
        let a = PeerId::from_bytes([1; 32]);
        let b = PeerId::from_bytes([2; 32]);
        let token = db.create_invite("alice's pc", DAY, 1000).expect("create");
        assert!(token.starts_with(TOKEN_PREFIX));
        assert!(!db.is_trusted(&a).expect("db"));
        db.redeem_invite(&token, a, 2000).expect("redeem");
        assert!(db.is_trusted(&a).expect("db"));
        // The same key again (a reconnect) is fine; another key is a replay.
        db.redeem_invite(&token, a, 3000).expect("idempotent");
        assert!(matches!(
            db.redeem_invite(&token, b, 3000),
            Err(InviteError::Used)
        ));
        assert!(!db.is_trusted(&b).expect("db"));
        let trusted = db.trusted_peers().expect("list");
        assert_eq!(trusted.len(), 1);
        assert_eq!(trusted[0].1.name, "alice's pc");
    }

    #[test]
    fn expired_unknown_and_garbage_invites_are_refused() {
        let (_d, db) = db();
        let a = PeerId::from_bytes([1; 32]);
        let token = db.create_invite("x", DAY, 1000).expect("create");
        assert!(matches!(
            db.redeem_invite(&token, a, 1000 + DAY + 1),
            Err(InviteError::Expired)
        ));
        let other = new_token().expect("token");
        assert!(matches!(
            db.redeem_invite(&other, a, 1000),
            Err(InviteError::Unknown)
        ));
        assert!(matches!(
            db.redeem_invite("", a, 1000),
            Err(InviteError::Unknown)
        ));
        assert!(matches!(
            db.redeem_invite("\u{0}\u{ffff}", a, 1000),
            Err(InviteError::Unknown)
        ));
        assert!(!db.is_trusted(&a).expect("db"));
    }

    #[test]
    fn the_database_keeps_no_usable_token() {
        let (dir, db) = db();
        let token = db.create_invite("x", DAY, 1).expect("create");
        db.flush().expect("flush");
        drop(db);
        let secret = token.trim_start_matches(TOKEN_PREFIX).as_bytes().to_vec();
        for entry in walk(dir.path()) {
            let bytes = std::fs::read(&entry).expect("read");
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                "token found in {}",
                entry.display()
            );
        }
    }

    #[test]
    fn a_second_process_sees_the_database_locked() {
        let (dir, _db) = db();
        // sled's lock is per process; a child process is the honest test, but
        // opening twice in one process also fails, through the same path.
        match HubDb::open(dir.path()) {
            Err(DbError::Locked(_)) => {}
            Err(e) => panic!("expected Locked, got {e}"),
            Ok(_) => panic!("opened twice"),
        }
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
