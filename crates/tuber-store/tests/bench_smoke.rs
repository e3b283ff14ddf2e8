//! The throughput bench in smoke mode (16 pieces, as with
//! `TUBER_BENCH_PIECES=16`): it must run and print sane figures. Timings are
//! not asserted.

#[allow(dead_code)] // the bench's `main` is not called from here
#[path = "../benches/store_throughput.rs"]
mod store_throughput;

#[test]
fn bench_runs_in_smoke_mode() {
    let report = store_throughput::run(16);
    assert_eq!(report.pieces, 16);
    assert_eq!(report.bytes, 16 * 256 * 1024);
    assert!(
        report.store_dir_bytes >= report.bytes,
        "the store holds at least the piece bytes"
    );
    let table = report.table();
    assert!(table.contains("store put (sha256)"), "{table}");
    assert!(
        table.contains("ratio store get / files read + sha256"),
        "{table}"
    );
}
