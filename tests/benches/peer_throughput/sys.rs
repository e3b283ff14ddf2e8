//! What the figures read from /proc: CPU seconds (per process and per
//! thread name) and memory.

use std::collections::HashMap;

use crate::mib;

/// User + system CPU seconds of process `pid` ("self" for this one).
pub fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // /proc reports USER_HZ ticks, 100 a second on Linux.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// CPU seconds per thread name of process `pid` ("self" for this one).
pub fn thread_cpu(pid: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        *out.entry(name).or_insert(0.0) += (ticks(11) + ticks(12)) as f64 / 100.0;
    }
    out
}

/// Where the CPU went between two [`thread_cpu`] readings, busiest first.
/// Threads that ended in between are missing from `after` (not counted).
pub fn thread_split(before: &HashMap<String, f64>, after: &HashMap<String, f64>) -> String {
    let mut v: Vec<(String, f64)> = after
        .iter()
        .map(|(name, t)| (name.clone(), t - before.get(name).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d >= 0.01)
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v.iter()
        .map(|(name, d)| format!("{name} {d:.2} s"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// VmRSS and VmHWM of `pid`, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    pub rss: u64,
    pub hwm: u64,
}

impl Mem {
    pub fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |k| k * 1024)
        };
        Self {
            rss: kb("VmRSS:"),
            hwm: kb("VmHWM:"),
        }
    }
}

impl std::fmt::Display for Mem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VmRSS {:.1} MB ({:.1} MiB), VmHWM {:.1} MB ({:.1} MiB)",
            self.rss as f64 / 1e6,
            mib(self.rss),
            self.hwm as f64 / 1e6,
            mib(self.hwm)
        )
    }
}
