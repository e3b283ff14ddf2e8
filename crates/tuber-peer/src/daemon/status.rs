//! The status snapshot as text for people (`tuber-peer status`).

use std::fmt::Write;

use super::units::{format_rate, format_size};
use crate::engine::{Settings, Status, SwarmPhase};

/// The whole status: summary lines, then the swarms and peers as tables.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: String| {
        let _ = writeln!(out, "{k:<9} {v}");
    };
    line(&mut out, "peer", s.peer_id.clone());
    line(
        &mut out,
        "sharing",
        if s.settings.paused {
            "paused"
        } else {
            "active"
        }
        .into(),
    );
    line(
        &mut out,
        "rate",
        format!(
            "up {}, down {}",
            format_rate(s.rate.up, false),
            format_rate(s.rate.down, false)
        ),
    );
    line(
        &mut out,
        "total",
        format!(
            "up {}, down {}",
            format_size(s.total.up),
            format_size(s.total.down)
        ),
    );
    line(&mut out, "caps", caps(&s.settings));
    let st = &s.store;
    // The donor's question is what the disk holds, so the share is of that.
    let share = if st.budget > 0 {
        format!(" ({:.0}%)", st.disk_bytes as f64 * 100.0 / st.budget as f64)
    } else {
        String::new()
    };
    line(
        &mut out,
        "store",
        format!(
            "{} on disk of {} budget{share}; {} in {} pieces, {} pinned",
            format_size(st.disk_bytes),
            format_size(st.budget),
            format_size(st.bytes),
            st.pieces,
            format_size(st.pinned_bytes)
        ),
    );
    let net = &s.network;
    if let Some(granted) = net.socket_buffer_granted {
        if granted < net.socket_buffer_requested {
            // Short buffers drop loopback/LAN bursts and stall WebRTC.
            line(
                &mut out,
                "network",
                format!(
                    "UDP buffers {} of {} asked: transfers will stall; raise \
                     net.core.rmem_max and net.core.wmem_max (sysctl) to at least {}",
                    format_size(granted),
                    format_size(net.socket_buffer_requested),
                    net.socket_buffer_requested
                ),
            );
        }
    }

    let _ = writeln!(out, "\nswarms ({})", s.swarms.len());
    if s.swarms.is_empty() {
        out.push_str("  none: join one with `tuber-peer join URL`\n");
    } else {
        let mut rows = vec![row(&[
            "URL", "STATE", "PEERS", "ASSIGNED", "UP/S", "DOWN/S",
        ])];
        for w in &s.swarms {
            rows.push(vec![
                w.url.clone(),
                phase(&w.phase),
                w.peers.to_string(),
                format!("{}/{}", w.assigned_held, w.assigned_pieces),
                format_rate(w.rate.up, false),
                format_rate(w.rate.down, false),
            ]);
        }
        table(&mut out, &rows);
    }

    let _ = writeln!(out, "\npeers ({})", s.peers.len());
    if !s.peers.is_empty() {
        let mut rows = vec![row(&[
            "PEER", "SWARM", "ROLE", "TRUSTED", "UP/S", "DOWN/S", "UP", "DOWN",
        ])];
        for p in &s.peers {
            rows.push(vec![
                short_id(&p.peer),
                p.swarm.clone(),
                p.role.clone().unwrap_or_else(|| "-".into()),
                match p.trusted {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "-".into(),
                },
                format_rate(p.rate.up, false),
                format_rate(p.rate.down, false),
                format_size(p.bytes.up),
                format_size(p.bytes.down),
            ]);
        }
        table(&mut out, &rows);
    }
    out
}

/// `upload 2.00 MB/s, download unlimited, disk 10.7 GB`.
pub fn caps(s: &Settings) -> String {
    format!(
        "upload {}, download {}, disk {}",
        format_rate(s.upload_bps, true),
        format_rate(s.download_bps, true),
        format_size(s.disk_budget)
    )
}

fn phase(p: &SwarmPhase) -> String {
    match p {
        SwarmPhase::Connecting => "connecting".into(),
        SwarmPhase::Joined { trusted: true } => "joined (trusted)".into(),
        SwarmPhase::Joined { trusted: false } => "joined".into(),
        SwarmPhase::Retrying { error, retry_in_ms } => {
            format!("retrying in {}s: {error}", retry_in_ms.div_ceil(1000))
        }
        SwarmPhase::Error { code, message } => format!("refused ({code}): {message}"),
    }
}

fn short_id(id: &str) -> String {
    match id.get(..16) {
        Some(head) if id.len() > 16 => format!("{head}…"),
        _ => id.to_string(),
    }
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Left-aligned columns, two spaces apart, indented by two.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::from(" ");
        for (cell, w) in r.iter().zip(&widths) {
            let _ = write!(line, " {cell:<w$} ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{NetworkStatus, PeerStatus, StoreStatus, SwarmStatus};
    use crate::meter::UpDown;

    #[test]
    fn a_status_reads_as_a_table() {
        let s = Status {
            peer_id: "ab".repeat(32),
            settings: Settings {
                upload_bps: 2_000_000,
                ..Settings::default()
            },
            rate: UpDown { up: 1500, down: 0 },
            total: UpDown {
                up: 3_000_000_000,
                down: 12,
            },
            swarms: vec![SwarmStatus {
                url: "http://site.example/".into(),
                swarm_id: None,
                name: None,
                phase: SwarmPhase::Joined { trusted: true },
                peers: 1,
                assigned_pieces: 10,
                assigned_held: 4,
                rate: UpDown::default(),
                bytes: UpDown::default(),
            }],
            peers: vec![PeerStatus {
                peer: "cd".repeat(32),
                swarm: "http://site.example/".into(),
                role: Some("browser".into()),
                trusted: None,
                rate: UpDown { up: 1500, down: 0 },
                bytes: UpDown { up: 9000, down: 0 },
            }],
            store: StoreStatus {
                pieces: 3,
                bytes: 500,
                disk_bytes: 600,
                budget: 1000,
                ..StoreStatus::default()
            },
            network: NetworkStatus::default(),
        };
        let text = render(&s);
        assert!(
            text.contains("upload 2.00 MB/s, download unlimited"),
            "{text}"
        );
        assert!(
            text.contains("600 B on disk of 1.00 kB budget (60%); 500 B in 3 pieces"),
            "{text}"
        );
        assert!(text.contains("joined (trusted)"), "{text}");
        assert!(text.contains("4/10"), "{text}");
        assert!(text.contains("cdcdcdcdcdcdcdcd…"), "{text}");
        assert!(text.contains("total     up 3.00 GB, down 12 B"), "{text}");
        assert!(!text.contains("network"), "{text}");

        let mut short = s.clone();
        short.network = NetworkStatus {
            socket_buffer_requested: 4 << 20,
            socket_buffer_granted: Some(212_992),
        };
        let text = render(&short);
        assert!(text.contains("raise net.core.rmem_max"), "{text}");
    }
}
