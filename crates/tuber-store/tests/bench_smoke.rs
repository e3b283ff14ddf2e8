//! The throughput bench in smoke mode (16 x 256 KiB a piece size, as with
//! `TUBER_BENCH_PIECES=16`): it must run and print sane figures. Timings are
//! not asserted; disk use is, since it does not depend on the machine's load.

#[allow(dead_code)] // the bench's `main` is not called from here
#[path = "../benches/store_throughput.rs"]
mod store_throughput;

#[test]
fn bench_runs_in_smoke_mode() {
    let report = store_throughput::run(16);
    assert_eq!(report.sizes.len(), 3);
    for s in &report.sizes {
        assert_eq!(s.bytes, 16 * 256 * 1024);
        assert_eq!(s.pieces * s.piece_bytes, 16 * 256 * 1024);
        assert!(s.churn_piece_bytes <= s.churn_budget);
        assert!(
            s.churn_piece_bytes > s.churn_budget / 2,
            "churn leaves the store mostly full"
        );
        // 4 MiB of pieces: the database's and directories' fixed part
        // dominates (see the crate docs for the bound).
        assert!(
            s.churn_du <= s.churn_budget + s.churn_budget / 10 + (8 << 20),
            "du {} for a {} budget",
            s.churn_du,
            s.churn_budget
        );
    }
    let table = report.table();
    assert!(table.contains("get50"), "{table}");
    assert!(table.contains("churn   16 KiB"), "{table}");
}
