//! A refusal's reason as a bounded class, for the `reason` label of `hypeflow_rejects_total` and for
//! grouping on the dashboard (the reason text itself, with its figures, stays on the reject record).

/// (class, phrases that mark it), tried in order; the first match wins.
const CLASSES: &[(&str, &[&str])] = &[
    (
        "malformed",
        &[
            "malformed intent",
            "no token",
            "needs a positive quantity",
            "a triggered exit needs",
        ],
    ),
    ("stale_intent", &["stale intent", "in the future"]),
    ("kill_switch", &["kill switch", "killed by an operator"]),
    ("paused", &["entries paused"]),
    ("phase", &["capital phase", "no room for a"]),
    (
        "limit",
        &[
            "per-trade limit",
            "day's notional",
            "day's realized loss",
            "portfolio heat",
        ],
    ),
    ("drift", &["price drift"]),
    ("market_data", &["market data for", "no market.ticks price"]),
    ("nothing_held", &["nothing of", "no open position"]),
    ("cash", &["insufficient cash"]),
    ("size", &["rounds to zero"]),
    ("slippage", &["exceeds max"]),
    (
        "token_safety",
        &[
            "honeypot",
            "tax ",
            "token safety",
            "transfer of the token",
            "allow-list",
        ],
    ),
    (
        "liquidity",
        &["price impact", "no pool quotes", "of liquidity", "getpool"],
    ),
    ("venue_unavailable", &["venue unavailable"]),
    ("gas", &["gas budget", "gas estimate"]),
    (
        "simulation",
        &["simulat", "access list of allowance", "fails in simulation"],
    ),
    ("chain", &["reverted", "not mined", "broadcast refused"]),
    ("router", &["1inch"]),
];

/// The class of a refusal reason; `other` when none matches.
pub fn class(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    CLASSES
        .iter()
        .find(|(_, marks)| marks.iter().any(|m| r.contains(m)))
        .map_or("other", |(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::class;

    #[test]
    fn reasons_fall_in_their_class() {
        let cases = [
            ("malformed intent: quantity is negative", "malformed"),
            (
                "stale intent: decided 400 s ago, the limit is 300 s",
                "stale_intent",
            ),
            (
                "kill switch (entries): /tmp/k exists; exits only until it is removed",
                "kill_switch",
            ),
            (
                "entries paused since 2026-01-01 (drawdown 10.2%); until an operator resumes",
                "paused",
            ),
            (
                "no room for a buy entry: phase micro allows 500, 0 is left",
                "phase",
            ),
            ("notional 900 is over the per-trade limit 500", "limit"),
            (
                "price drift: executable 1.02 is 210.0 bps above the decision price",
                "drift",
            ),
            (
                "market data for AXL is 120 s old (breaker stale_after 60 s)",
                "market_data",
            ),
            (
                "honeypot: selling the token back reverts (x)",
                "token_safety",
            ),
            (
                "price impact 300 bps at this size is over the slippage bound",
                "liquidity",
            ),
            (
                "venue unavailable, not traded: connection refused",
                "venue_unavailable",
            ),
            ("simulation reverted: Too little received", "simulation"),
            ("swap 0xab reverted", "chain"),
            ("insufficient cash: need 10.00, have 2.00", "cash"),
            ("slippage 80.0 bps exceeds max 50 bps", "slippage"),
            ("no open position to sell", "nothing_held"),
            ("something nobody wrote yet", "other"),
        ];
        for (reason, want) in cases {
            assert_eq!(class(reason), want, "{reason}");
        }
    }
}
