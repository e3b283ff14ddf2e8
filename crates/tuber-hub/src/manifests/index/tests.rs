//! The index with an injected clock (Unix seconds): no sleeps.

use std::time::Duration;

use super::*;

const T0: u64 = 1_800_000_000;
const MIB: u64 = 1 << 20;
const CRAWLER: NetKey = 0x047f_0000;
const VIEWER_A: NetKey = 0x047f_0001;
const VIEWER_B: NetKey = 0x047f_0002;

fn id(path: &str, version: &str) -> ManifestId {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("{path}\0{version}").as_bytes());
    ManifestId::from_bytes(d.into())
}

fn store(ix: &mut ManifestIndex, now: u64, path: &str, len: u64, asker: Option<NetKey>) -> bool {
    ix.handle_stored(
        now,
        Stored {
            path,
            version: "\"1\"",
            id: id(path, "\"1\""),
            length: len,
            bytes: 1000,
            persisted: true,
            asker,
        },
    )
}

fn config(max_count: usize) -> IndexConfig {
    IndexConfig {
        max_count,
        max_bytes: 1 << 30,
        retention: Duration::from_secs(7 * 86_400),
        expire_signed_urls: true,
    }
}

fn drain_forgotten(ix: &mut ManifestIndex) -> Vec<Forgotten> {
    std::iter::from_fn(|| ix.poll_forgotten()).collect()
}

fn drain_changes(ix: &mut ManifestIndex) -> Vec<Change> {
    std::iter::from_fn(|| ix.poll_change()).collect()
}

#[test]
fn a_crawl_stays_within_the_bound_and_what_viewers_want_stays() {
    let mut ix = ManifestIndex::new(config(32));
    // Two viewers' networks asked for the honest video before the crawl.
    assert!(store(&mut ix, T0, "/honest.mp4", 4 * MIB, Some(VIEWER_A)));
    ix.handle_asked(T0 + 1, "/honest.mp4", Some(VIEWER_B));
    for i in 0..10_000u64 {
        store(
            &mut ix,
            T0 + 2 + i / 100,
            &format!("/junk/{i}.bin"),
            MIB,
            Some(CRAWLER),
        );
        assert!(ix.len() <= 32, "bound exceeded at {i}");
    }
    assert!(ix.contains("/honest.mp4", "\"1\""));
    let gone = drain_forgotten(&mut ix);
    assert_eq!(gone.len(), 10_000 + 1 - ix.len());
    assert!(gone.iter().all(|f| f.reason == ForgetReason::Bound));
    assert!(gone.iter().all(|f| f.path.starts_with("/junk/")));
    assert_eq!(ix.forgotten_counts()[1], gone.len() as u64);
    // The oldest junk went first: what is left is the newest.
    assert!(ix.contains("/junk/9999.bin", "\"1\""));
    assert!(!ix.contains("/junk/0.bin", "\"1\""));
}

#[test]
fn one_viewer_outweighs_a_crawler_on_its_own_network() {
    let mut ix = ManifestIndex::new(config(16));
    for i in 0..15 {
        store(&mut ix, T0, &format!("/junk/{i}.bin"), MIB, Some(CRAWLER));
    }
    // A single viewer, after the crawl filled the index.
    store(&mut ix, T0 + 5, "/honest.mp4", MIB, Some(VIEWER_A));
    for i in 15..200 {
        store(
            &mut ix,
            T0 + 10 + i,
            &format!("/junk/{i}.bin"),
            MIB,
            Some(CRAWLER),
        );
    }
    assert!(ix.contains("/honest.mp4", "\"1\""));
    let now = T0 + 300;
    let honest = ix.demand_of(now, "/honest.mp4").unwrap_or(0.0);
    let junk = ix.demand_of(now, "/junk/199.bin").unwrap_or(0.0);
    assert!(honest > 10.0 * junk, "honest {honest}, junk {junk}");
}

#[test]
fn what_nobody_asked_for_within_retention_is_forgotten() {
    let mut ix = ManifestIndex::new(config(100));
    let week = 7 * 86_400;
    store(&mut ix, T0, "/cold.bin", MIB, Some(VIEWER_A));
    store(&mut ix, T0, "/warm.bin", MIB, Some(VIEWER_A));
    ix.handle_asked(T0 + week - 10, "/warm.bin", Some(VIEWER_B));
    ix.handle_sweep(T0 + week - 1);
    assert_eq!(ix.len(), 2, "not yet a week");
    ix.handle_sweep(T0 + week + 1);
    assert_eq!(ix.len(), 2, "checked once a minute");
    ix.handle_sweep(T0 + week + 61);
    let gone = drain_forgotten(&mut ix);
    assert_eq!(gone.len(), 1);
    assert_eq!(
        (gone[0].path.as_str(), gone[0].reason),
        ("/cold.bin", ForgetReason::Age)
    );
    assert!(ix.contains("/warm.bin", "\"1\""));
    // VIEWER_A's ask of /warm.bin aged out; VIEWER_B's counts.
    let d = ix.demand_of(T0 + week + 61, "/warm.bin").unwrap_or(0.0);
    assert!(d > 0.5 && d < 1.0, "{d}");
}

#[test]
fn a_signed_url_is_forgotten_when_it_expires() {
    let mut ix = ManifestIndex::new(config(100));
    ix.handle_capacity(100 * MIB);
    let signed = format!("/s.mp4?Expires={}&Signature=x", T0 + 10);
    assert!(store(&mut ix, T0, &signed, MIB, Some(VIEWER_A)));
    assert!(ix.offer(&signed, "\"1\""));
    assert!(!ix.is_expired(T0 + 9, &signed));
    ix.handle_sweep(T0 + 9);
    assert!(drain_forgotten(&mut ix).is_empty());
    ix.handle_sweep(T0 + 10);
    let gone = drain_forgotten(&mut ix);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].reason, ForgetReason::Expired);
    assert!(gone[0].published, "the planner must unassign it");
    assert_eq!(gone[0].alias, None);
    assert_eq!(ix.published(), (0, 0));
    // Once expired it is not indexed again.
    assert!(!store(&mut ix, T0 + 11, &signed, MIB, Some(VIEWER_A)));
    assert!(ix.is_empty());
    // Unless the operator turned expiry off.
    let mut off = ManifestIndex::new(IndexConfig {
        expire_signed_urls: false,
        ..config(100)
    });
    assert!(store(&mut off, T0 + 11, &signed, MIB, None));
}

#[test]
fn an_expiring_alias_leaves_the_other() {
    let mut ix = ManifestIndex::new(config(100));
    let a = format!("/s.mp4?Expires={}&Signature=a", T0 + 10);
    let b = format!("/s.mp4?Expires={}&Signature=b", T0 + 1000);
    store(&mut ix, T0, &a, MIB, None);
    store(&mut ix, T0, &b, MIB, None);
    ix.handle_sweep(T0 + 20);
    let gone = drain_forgotten(&mut ix);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].alias.as_deref(), Some(b.as_str()));
    ix.handle_sweep(T0 + 2000);
    assert_eq!(drain_forgotten(&mut ix)[0].alias, None);
}

#[test]
fn publication_fits_the_capacity_and_follows_demand() {
    let mut ix = ManifestIndex::new(config(100));
    ix.handle_capacity(10 * MIB);
    for i in 0..3 {
        let p = format!("/junk/{i}.bin");
        store(&mut ix, T0, &p, 4 * MIB, Some(CRAWLER));
        assert_eq!(ix.offer(&p, "\"1\""), i < 2, "{p}");
    }
    assert_eq!(ix.published(), (2, 8 * MIB));
    store(&mut ix, T0 + 1, "/honest.mp4", 4 * MIB, Some(VIEWER_A));
    assert!(!ix.offer("/honest.mp4", "\"1\""), "no room yet");
    ix.rank(T0 + 2);
    let changes = drain_changes(&mut ix);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(matches!(changes[0], Change::Unpublish { .. }), "room first");
    assert_eq!(
        changes[1],
        Change::Publish {
            path: "/honest.mp4".into(),
            version: "\"1\"".into()
        }
    );
    assert!(ix.is_published("/honest.mp4"));
    assert_eq!(ix.published(), (2, 8 * MIB));
    // Nothing changed: no churn.
    ix.rank(T0 + 3);
    assert!(drain_changes(&mut ix).is_empty());
    ix.handle_asked(T0 + 4, "/junk/2.bin", Some(CRAWLER));
    ix.rank(T0 + 4);
    assert!(drain_changes(&mut ix).is_empty(), "near-ties stay put");
    // No trusted peer: nothing is published.
    ix.handle_capacity(0);
    ix.rank(T0 + 5);
    let changes = drain_changes(&mut ix);
    assert_eq!(changes.len(), 2);
    assert!(changes
        .iter()
        .all(|c| matches!(c, Change::Unpublish { .. })));
    assert_eq!(ix.published(), (0, 0));
}

#[test]
fn a_new_version_replaces_the_old_and_keeps_its_asks() {
    let mut ix = ManifestIndex::new(config(100));
    ix.handle_capacity(100 * MIB);
    store(&mut ix, T0, "/v.mp4", MIB, Some(VIEWER_A));
    assert!(ix.offer("/v.mp4", "\"1\""));
    let v2 = ManifestId::from_bytes([7; 32]);
    assert!(ix.handle_stored(
        T0 + 5,
        Stored {
            path: "/v.mp4",
            version: "\"2\"",
            id: v2,
            length: 2 * MIB,
            bytes: 2000,
            persisted: true,
            asker: None,
        }
    ));
    assert!(!ix.contains("/v.mp4", "\"1\""));
    assert_eq!(ix.len(), 1);
    assert_eq!(ix.bytes(), 2000);
    assert_eq!(ix.published(), (1, 2 * MIB));
    assert_eq!(
        drain_changes(&mut ix),
        [Change::Publish {
            path: "/v.mp4".into(),
            version: "\"2\"".into()
        }]
    );
    assert!(ix.demand_of(T0 + 5, "/v.mp4").unwrap_or(0.0) > 0.9);
}

#[test]
fn records_restore_across_a_restart() {
    let mut ix = ManifestIndex::new(config(100));
    store(&mut ix, T0, "/a.bin", MIB, Some(VIEWER_A));
    store(&mut ix, T0, "/b.bin", MIB, Some(VIEWER_B));
    ix.handle_asked(T0 + 100, "/b.bin", Some(VIEWER_A));
    let records = ix.take_dirty();
    assert_eq!(records.len(), 2);
    assert!(ix.take_dirty().is_empty(), "written once");
    let json = serde_json::to_string(&records).expect("json");
    let back: Vec<(String, IndexRecord)> = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, records);

    let mut again = ManifestIndex::new(config(100));
    again.restore(T0 + 200, back.clone());
    assert_eq!(again.len(), 2);
    let (a, b) = (
        again.demand_of(T0 + 200, "/a.bin").unwrap_or(0.0),
        again.demand_of(T0 + 200, "/b.bin").unwrap_or(0.0),
    );
    // VIEWER_A asked for both (half a vote each), VIEWER_B for /b.bin.
    assert!((a - 0.5).abs() < 0.01 && (b - 1.5).abs() < 0.01, "{a} {b}");

    // Started a week later: all forgotten; started with a smaller bound:
    // the least wanted go.
    let mut late = ManifestIndex::new(config(100));
    late.restore(T0 + 8 * 86_400, back.clone());
    assert!(late.is_empty());
    assert_eq!(drain_forgotten(&mut late).len(), 2);
    let mut small = ManifestIndex::new(config(1));
    small.restore(T0 + 200, back);
    assert_eq!(small.len(), 1);
    assert!(small.contains("/b.bin", "\"1\""));
}

#[test]
fn asks_are_bounded_per_entry_and_counted_per_network() {
    let mut ix = ManifestIndex::new(config(100));
    store(&mut ix, T0, "/p.bin", MIB, None);
    for n in 0..100u128 {
        ix.handle_asked(T0 + n as u64, "/p.bin", Some(n));
    }
    let d = ix.demand_of(T0 + 100, "/p.bin").unwrap_or(0.0);
    assert!((d - MAX_ASKERS as f64).abs() < 0.01, "{d}");
    assert_eq!(ix.nets.len(), MAX_ASKERS);
    ix.forget_path("/p.bin", ForgetReason::Retired);
    assert!(ix.nets.is_empty());
    assert!(ix.by_content.is_empty() && ix.by_id.is_empty());
    // Unknown paths and ids are ignored.
    ix.handle_asked(T0, "/nope", Some(1));
    ix.forget_id(&ManifestId::from_bytes([0; 32]), ForgetReason::Retired);
    assert_eq!(ix.forgotten_counts()[3], 1);
}
