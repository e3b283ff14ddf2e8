//! The async handle: one thread owns the [`StoreCore`]; async callers send it
//! commands.
//!
//! sled calls block (disk I/O, fsync, and the SHA-256 of every piece), so
//! they stay off the async workers. One owner thread also makes the store's
//! single-writer assumption true by construction.

use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};
use tracing::warn;
use tuber_proto::PieceHash;

use crate::config::Config;
use crate::core::StoreCore;
use crate::error::{Result, StoreError};
use crate::meta::{Owner, PieceMeta};
use crate::repair::ScrubReport;
use crate::totals::{Contents, Totals};
use crate::write::PutOutcome;

/// Commands queued before senders wait. Small: each command is one store
/// operation, and back-pressure is what keeps a burst of puts from piling up
/// megabytes of pieces in memory.
const COMMAND_QUEUE: usize = 32;

type Reply<T> = oneshot::Sender<Result<T>>;

/// One request to the store thread; each carries its reply channel.
enum Command {
    Put {
        hash: PieceHash,
        bytes: Vec<u8>,
        owner: Owner,
        pinned: bool,
        reply: Reply<PutOutcome>,
    },
    Get {
        hash: PieceHash,
        reply: Reply<Option<Vec<u8>>>,
    },
    Locate {
        hash: PieceHash,
        reply: Reply<Option<(PathBuf, u64)>>,
    },
    Has {
        hash: PieceHash,
        reply: Reply<bool>,
    },
    Meta {
        hash: PieceHash,
        reply: Reply<Option<PieceMeta>>,
    },
    Delete {
        hash: PieceHash,
        reply: Reply<bool>,
    },
    SetPinned {
        hash: PieceHash,
        pinned: bool,
        reply: Reply<()>,
    },
    ListBySwarm {
        swarm: String,
        reply: Reply<Vec<PieceHash>>,
    },
    ListByResource {
        swarm: String,
        resource: String,
        reply: Reply<Vec<PieceHash>>,
    },
    Totals {
        reply: Reply<Totals>,
    },
    Recount {
        reply: Reply<Contents>,
    },
    SetBudget {
        bytes: u64,
        reply: Reply<Vec<PieceHash>>,
    },
    Scrub {
        reply: Reply<ScrubReport>,
    },
    Flush {
        reply: Reply<()>,
    },
    DiskUsage {
        reply: Reply<u64>,
    },
    PutManifest {
        swarm: String,
        path: String,
        bytes: Vec<u8>,
        reply: Reply<()>,
    },
    GetManifest {
        swarm: String,
        path: String,
        reply: Reply<Option<Vec<u8>>>,
    },
    ListManifests {
        swarm: String,
        reply: Reply<Vec<(String, Vec<u8>)>>,
    },
    DeleteManifest {
        swarm: String,
        path: String,
        reply: Reply<bool>,
    },
    Shutdown {
        reply: Reply<()>,
    },
}

/// A cheap, cloneable async handle to a store running on its own thread.
///
/// The thread ends, after a flush, when the last handle is dropped or on
/// [`Store::shutdown`]. Methods mirror [`StoreCore`]; after a shutdown they
/// fail with [`StoreError::Closed`].
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("closed", &self.tx.is_closed())
            .finish()
    }
}

impl Store {
    /// Opens the store at `path` on a new thread.
    pub async fn open(path: impl Into<PathBuf>, config: Config) -> Result<Self> {
        let path = path.into();
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (ready, opened) = oneshot::channel();
        std::thread::Builder::new()
            .name("tuber-store".into())
            .spawn(move || match StoreCore::open(&path, config) {
                // If the caller gave up waiting, `send` fails and the store
                // closes again at once.
                Ok(core) => {
                    if ready.send(Ok(())).is_ok() {
                        run(core, rx);
                    }
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            })
            .map_err(|e| StoreError::Db(sled::Error::Io(e)))?;
        opened.await.map_err(|_| StoreError::Closed)??;
        Ok(Self { tx })
    }

    async fn call<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(command(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// See [`StoreCore::put`].
    pub async fn put(
        &self,
        hash: PieceHash,
        bytes: Vec<u8>,
        owner: Owner,
        pinned: bool,
    ) -> Result<PutOutcome> {
        self.call(|reply| Command::Put {
            hash,
            bytes,
            owner,
            pinned,
            reply,
        })
        .await
    }
    /// See [`StoreCore::get`]. The store thread only looks the piece up
    /// and counts the read; the file is read and hashed on tokio's blocking
    /// pool, so that many readers (one per link) run in parallel. Anything
    /// but a verified read (a damaged file, or one an eviction deleted
    /// meanwhile) goes back to the store thread as a plain `get`, which
    /// deletes and reports a corrupt piece. Such a retry counts one more hit.
    pub async fn get(&self, hash: PieceHash) -> Result<Option<Vec<u8>>> {
        let Some((path, size)) = self.call(|reply| Command::Locate { hash, reply }).await? else {
            return Ok(None);
        };
        let read =
            tokio::task::spawn_blocking(move || crate::files::read_verified(&path, size, &hash))
                .await;
        match read {
            Ok(Some(bytes)) => Ok(Some(bytes)),
            _ => self.call(|reply| Command::Get { hash, reply }).await,
        }
    }
    /// See [`StoreCore::has`].
    pub async fn has(&self, hash: PieceHash) -> Result<bool> {
        self.call(|reply| Command::Has { hash, reply }).await
    }
    /// See [`StoreCore::meta`].
    pub async fn meta(&self, hash: PieceHash) -> Result<Option<PieceMeta>> {
        self.call(|reply| Command::Meta { hash, reply }).await
    }
    /// See [`StoreCore::delete`].
    pub async fn delete(&self, hash: PieceHash) -> Result<bool> {
        self.call(|reply| Command::Delete { hash, reply }).await
    }
    /// See [`StoreCore::set_pinned`].
    pub async fn set_pinned(&self, hash: PieceHash, pinned: bool) -> Result<()> {
        self.call(|reply| Command::SetPinned {
            hash,
            pinned,
            reply,
        })
        .await
    }
    /// See [`StoreCore::list_by_swarm`].
    pub async fn list_by_swarm(&self, swarm: impl Into<String>) -> Result<Vec<PieceHash>> {
        let swarm = swarm.into();
        self.call(|reply| Command::ListBySwarm { swarm, reply })
            .await
    }
    /// See [`StoreCore::list_by_resource`].
    pub async fn list_by_resource(
        &self,
        swarm: impl Into<String>,
        resource: impl Into<String>,
    ) -> Result<Vec<PieceHash>> {
        let (swarm, resource) = (swarm.into(), resource.into());
        self.call(|reply| Command::ListByResource {
            swarm,
            resource,
            reply,
        })
        .await
    }
    /// See [`StoreCore::totals`].
    pub async fn totals(&self) -> Result<Totals> {
        self.call(|reply| Command::Totals { reply }).await
    }
    /// See [`StoreCore::recount`].
    pub async fn recount(&self) -> Result<Contents> {
        self.call(|reply| Command::Recount { reply }).await
    }
    /// See [`StoreCore::set_budget`].
    pub async fn set_budget(&self, bytes: u64) -> Result<Vec<PieceHash>> {
        self.call(|reply| Command::SetBudget { bytes, reply }).await
    }
    /// See [`StoreCore::scrub`]. Other commands wait until it is done.
    pub async fn scrub(&self) -> Result<ScrubReport> {
        self.call(|reply| Command::Scrub { reply }).await
    }
    /// See [`StoreCore::flush`].
    pub async fn flush(&self) -> Result<()> {
        self.call(|reply| Command::Flush { reply }).await
    }
    /// See [`StoreCore::disk_usage`].
    pub async fn disk_usage(&self) -> Result<u64> {
        self.call(|reply| Command::DiskUsage { reply }).await
    }
    /// See [`StoreCore::put_manifest`].
    pub async fn put_manifest(
        &self,
        swarm: impl Into<String>,
        path: impl Into<String>,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let (swarm, path) = (swarm.into(), path.into());
        self.call(|reply| Command::PutManifest {
            swarm,
            path,
            bytes,
            reply,
        })
        .await
    }
    /// See [`StoreCore::get_manifest`].
    pub async fn get_manifest(
        &self,
        swarm: impl Into<String>,
        path: impl Into<String>,
    ) -> Result<Option<Vec<u8>>> {
        let (swarm, path) = (swarm.into(), path.into());
        self.call(|reply| Command::GetManifest { swarm, path, reply })
            .await
    }
    /// See [`StoreCore::list_manifests`].
    pub async fn list_manifests(&self, swarm: impl Into<String>) -> Result<Vec<(String, Vec<u8>)>> {
        let swarm = swarm.into();
        self.call(|reply| Command::ListManifests { swarm, reply })
            .await
    }
    /// See [`StoreCore::delete_manifest`].
    pub async fn delete_manifest(
        &self,
        swarm: impl Into<String>,
        path: impl Into<String>,
    ) -> Result<bool> {
        let (swarm, path) = (swarm.into(), path.into());
        self.call(|reply| Command::DeleteManifest { swarm, path, reply })
            .await
    }

    /// Flushes, closes the database and ends the store thread; returns once
    /// the directory can be opened again. Other handles get
    /// [`StoreError::Closed`] from then on.
    pub async fn shutdown(self) -> Result<()> {
        self.call(|reply| Command::Shutdown { reply }).await
    }
}

/// The store thread: serves commands in order until every handle is gone or
/// a shutdown arrives.
fn run(mut core: StoreCore, mut rx: mpsc::Receiver<Command>) {
    // A dropped reply receiver means the caller stopped waiting; the
    // operation itself has still happened, so the send result is ignored.
    while let Some(command) = rx.blocking_recv() {
        match command {
            Command::Put {
                hash,
                bytes,
                owner,
                pinned,
                reply,
            } => {
                let _ = reply.send(core.put(&hash, &bytes, &owner, pinned));
            }
            Command::Get { hash, reply } => {
                let _ = reply.send(core.get(&hash));
            }
            Command::Locate { hash, reply } => {
                let _ = reply.send(core.locate(&hash));
            }
            Command::Has { hash, reply } => {
                let _ = reply.send(core.has(&hash));
            }
            Command::Meta { hash, reply } => {
                let _ = reply.send(core.meta(&hash));
            }
            Command::Delete { hash, reply } => {
                let _ = reply.send(core.delete(&hash));
            }
            Command::SetPinned {
                hash,
                pinned,
                reply,
            } => {
                let _ = reply.send(core.set_pinned(&hash, pinned));
            }
            Command::ListBySwarm { swarm, reply } => {
                let _ = reply.send(core.list_by_swarm(&swarm));
            }
            Command::ListByResource {
                swarm,
                resource,
                reply,
            } => {
                let _ = reply.send(core.list_by_resource(&swarm, &resource));
            }
            Command::Totals { reply } => {
                let _ = reply.send(Ok(core.totals()));
            }
            Command::Recount { reply } => {
                let _ = reply.send(core.recount());
            }
            Command::SetBudget { bytes, reply } => {
                let _ = reply.send(core.set_budget(bytes));
            }
            Command::Scrub { reply } => {
                let _ = reply.send(core.scrub());
            }
            Command::Flush { reply } => {
                let _ = reply.send(core.flush());
            }
            Command::DiskUsage { reply } => {
                let _ = reply.send(core.disk_usage());
            }
            Command::PutManifest {
                swarm,
                path,
                bytes,
                reply,
            } => {
                let _ = reply.send(core.put_manifest(&swarm, &path, &bytes));
            }
            Command::GetManifest { swarm, path, reply } => {
                let _ = reply.send(core.get_manifest(&swarm, &path));
            }
            Command::ListManifests { swarm, reply } => {
                let _ = reply.send(core.list_manifests(&swarm));
            }
            Command::DeleteManifest { swarm, path, reply } => {
                let _ = reply.send(core.delete_manifest(&swarm, &path));
            }
            Command::Shutdown { reply } => {
                let flushed = core.flush();
                // Close sled before answering, so the caller may reopen.
                drop(core);
                let _ = reply.send(flushed);
                return;
            }
        }
    }
    if let Err(e) = core.flush() {
        warn!(error = %e, "final store flush failed");
    }
}
