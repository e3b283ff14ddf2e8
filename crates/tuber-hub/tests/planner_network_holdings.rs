//! Issue #14 item 7: one network's connections share one cap on the pieces
//! the planner indexes for them, so a host cannot grow the hub's memory by
//! opening connections; other networks and trusted peers are not affected,
//! and a network's share comes back when its connections leave.

mod planner_support;

use planner_support::*;
use tuber_hub::planner::{PlannerConfig, ReporterGroup};
use tuber_proto::signal::Role;

#[test]
fn a_networks_connections_share_one_holdings_cap() {
    let (mut p, now) = planner(PlannerConfig {
        max_network_holdings: 100,
        ..PlannerConfig::default()
    });
    let net = ReporterGroup::Shared(7);
    let other = ReporterGroup::Shared(8);
    for (who, g) in [(peer(1), net), (peer(2), net), (peer(3), other)] {
        assert_eq!(
            p.handle_join_with_group(now, who, Role::Browser, false, None, g),
            Ok(())
        );
    }
    join_trusted(&mut p, now, peer(9), 1);
    let pieces = |from: u64, n: u64| (from..from + n).map(piece).collect::<Vec<_>>();
    p.handle_have(now, peer(1), &pieces(0, 80));
    p.handle_have(now, peer(2), &pieces(1000, 80));
    assert_eq!(p.holdings_count(&peer(1)), 80);
    assert_eq!(
        p.holdings_count(&peer(2)),
        20,
        "the network's cap is shared"
    );
    assert_eq!(p.network_holdings(net), 100);
    p.handle_have(now, peer(3), &pieces(2000, 100));
    assert_eq!(
        p.holdings_count(&peer(3)),
        100,
        "another network has its own"
    );
    p.handle_have(now, peer(9), &pieces(3000, 500));
    assert_eq!(
        p.holdings_count(&peer(9)),
        500,
        "a trusted peer counts alone"
    );
    // Lost pieces and a leaving connection give the share back.
    p.handle_lost(now, peer(1), &pieces(0, 30));
    assert_eq!(p.network_holdings(net), 70);
    p.handle_have(now, peer(2), &pieces(1100, 50));
    assert_eq!(p.holdings_count(&peer(2)), 50);
    p.handle_leave(now, peer(1));
    assert_eq!(p.network_holdings(net), 50);
    p.handle_have(now, peer(2), &pieces(1200, 50));
    assert_eq!(p.holdings_count(&peer(2)), 100);
    drain(&mut p);
}
