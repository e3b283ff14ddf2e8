//! The manifest index's records (`manifests::index`), kept beside the
//! manifests they describe: written with a new manifest, deleted with a
//! forgotten one, and rewritten in batches when ask times change. Two
//! trees, so a crash may leave a manifest without its record (adopted at
//! the next start as asked for then) or a record without its manifest
//! (dropped): [`HubDb::load_manifest_index`] reconciles both.

use std::collections::HashMap;

use tuber_proto::Manifest;

use super::{manifest_key, DbError, HubDb};
use crate::manifests::index::IndexRecord;

impl HubDb {
    /// Index records kept.
    pub fn manifest_index_count(&self) -> usize {
        self.manifest_index.len()
    }

    /// Stores `stored` (a manifest, replacing its path's other versions,
    /// and its record) and deletes the `forgotten` manifests (path,
    /// version) with their records.
    pub(crate) fn store_indexed(
        &self,
        stored: Option<(&Manifest, &IndexRecord)>,
        forgotten: &[(String, String)],
    ) -> Result<(), DbError> {
        let mut manifests = sled::Batch::default();
        let mut index = sled::Batch::default();
        for (path, version) in forgotten {
            manifests.remove(manifest_key(path, version));
            index.remove(path.as_bytes());
        }
        if let Some((m, record)) = stored {
            self.replace_manifest(&mut manifests, m)?;
            let value = serde_json::to_vec(record).map_err(|_| DbError::Corrupt("index record"))?;
            index.insert(m.path.as_bytes(), value);
        }
        self.manifests.apply_batch(manifests)?;
        self.manifest_index.apply_batch(index)?;
        Ok(())
    }

    /// Rewrites the records of entries whose ask times changed.
    pub(crate) fn write_index_records(
        &self,
        records: &[(String, IndexRecord)],
    ) -> Result<(), DbError> {
        let mut index = sled::Batch::default();
        for (path, record) in records {
            let value = serde_json::to_vec(record).map_err(|_| DbError::Corrupt("index record"))?;
            index.insert(path.as_bytes(), value);
        }
        self.manifest_index.apply_batch(index)?;
        Ok(())
    }

    /// Every stored manifest with its index record: the record kept, or a
    /// new one (asked for at `now`) for a manifest without one, a database
    /// from before the index among them. Records without their manifest,
    /// damaged records and undecodable manifests are deleted.
    pub(crate) fn load_manifest_index(
        &self,
        now: u64,
    ) -> Result<Vec<(String, IndexRecord)>, DbError> {
        let mut records: HashMap<String, IndexRecord> = HashMap::new();
        let mut drop_records = Vec::new();
        for item in self.manifest_index.iter() {
            let (k, v) = item?;
            match (
                std::str::from_utf8(&k),
                serde_json::from_slice::<IndexRecord>(&v),
            ) {
                (Ok(path), Ok(rec)) => {
                    records.insert(path.to_string(), rec);
                }
                _ => drop_records.push(k),
            }
        }
        let mut out = Vec::new();
        let mut drop_manifests = Vec::new();
        for item in self.manifests.iter() {
            let (k, v) = item?;
            let Some((path, version)) = split_key(&k) else {
                drop_manifests.push(k);
                continue;
            };
            if let Some(rec) = records.remove(path).filter(|r| r.version == version) {
                out.push((path.to_string(), rec));
                continue;
            }
            match Manifest::decode(&v) {
                Ok(m) if m.path == path && m.version == version => {
                    let rec = IndexRecord {
                        version: version.to_string(),
                        id: m.id(),
                        length: m.length,
                        bytes: v.len() as u64,
                        added: now,
                        last_asked: now,
                        askers: Vec::new(),
                        pushed: None,
                    };
                    out.push((path.to_string(), rec));
                }
                _ => drop_manifests.push(k),
            }
        }
        let mut index = sled::Batch::default();
        for k in drop_records {
            index.remove(k);
        }
        for path in records.keys() {
            index.remove(path.as_bytes());
        }
        for (path, rec) in &out {
            let value = serde_json::to_vec(rec).map_err(|_| DbError::Corrupt("index record"))?;
            index.insert(path.as_bytes(), value);
        }
        let mut manifests = sled::Batch::default();
        for k in drop_manifests {
            manifests.remove(k);
        }
        self.manifests.apply_batch(manifests)?;
        self.manifest_index.apply_batch(index)?;
        Ok(out)
    }
}

/// `path\0version` → (path, version).
fn split_key(k: &[u8]) -> Option<(&str, &str)> {
    let nul = k.iter().position(|b| *b == 0)?;
    let path = std::str::from_utf8(&k[..nul]).ok()?;
    let version = std::str::from_utf8(&k[nul + 1..]).ok()?;
    Some((path, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(m: &Manifest, asked: u64) -> IndexRecord {
        IndexRecord {
            version: m.version.clone(),
            id: m.id(),
            length: m.length,
            bytes: m.encode().len() as u64,
            added: asked,
            last_asked: asked,
            askers: vec![("47f0000".into(), asked)],
            pushed: None,
        }
    }

    #[test]
    fn records_are_reconciled_with_the_manifests_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Manifest::build("/a.bin", "x/y", "\"1\"", 16384, &[1u8; 40_000]);
        let b = Manifest::build("/b.bin", "x/y", "\"1\"", 16384, &[2u8; 40_000]);
        let old = Manifest::build("/old.bin", "x/y", "\"1\"", 16384, &[3u8; 40_000]);
        {
            let db = HubDb::open(dir.path()).expect("open");
            db.store_indexed(Some((&a, &record(&a, 5))), &[])
                .expect("store a");
            db.store_indexed(Some((&b, &record(&b, 6))), &[])
                .expect("store b");
            // A manifest stored before the index existed.
            db.store_manifest(&old).expect("store old");
            // b is forgotten; a record whose manifest is gone stays behind.
            db.store_indexed(None, &[("/b.bin".into(), "\"1\"".into())])
                .expect("forget b");
            db.write_index_records(&[("/gone.bin".into(), record(&b, 7))])
                .expect("stray record");
            db.manifest_index
                .insert("/junk", b"not json".to_vec())
                .expect("junk");
            db.flush().expect("flush");
        }
        let db = HubDb::open(dir.path()).expect("reopen");
        let mut loaded = db.load_manifest_index(100).expect("load");
        loaded.sort_by(|x, y| x.0.cmp(&y.0));
        let paths: Vec<&str> = loaded.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["/a.bin", "/old.bin"]);
        assert_eq!(loaded[0].1, record(&a, 5), "kept as written");
        assert_eq!(loaded[1].1.last_asked, 100, "adopted as asked for now");
        assert_eq!(loaded[1].1.id, old.id());
        assert_eq!(db.manifest_count(), 2);
        assert_eq!(db.manifest_index_count(), 2, "strays and junk deleted");
    }
}
