//! The executor's own protections, for every venue (paper included), whatever the dataflow decided: the
//! capital phase's venue and caps (per position, per day, total exposure), the drawdown pause, sells bounded
//! by what is held; after each fill the book is updated, and the pause and the step down on degradation are
//! journaled when their figures say so.

use super::book::LiveBook;
use super::capital::{self, CapitalConfig, CapitalEvent, LadderState};
use super::journal::{Journal, JournalError};
use super::prices::LatestPrices;
use super::venue::{Refused, Wallet};
use crate::model::time::{to_rfc3339, Millis};
use crate::model::{Fill, OrderIntent, Side};
use rust_decimal::Decimal;

/// How far ahead of this clock an intent's decision time may be (clocks of two hosts never agree exactly).
pub const MAX_CLOCK_SKEW_MS: i64 = 5_000;

/// The intent's own fields within their ranges, before anything else looks at it: a decision price, a
/// slippage bound of 0 to 10000 bps, a buy with a positive notional or quantity, a sell with a positive
/// quantity, a decision time not in the future.
pub fn intent_in_range(intent: &OrderIntent, now: Millis) -> Result<(), Refused> {
    let bad = |m: String| Err(Refused(format!("malformed intent: {m}")));
    if intent.token.trim().is_empty() {
        return bad("no token".into());
    }
    if intent.reference_price <= Decimal::ZERO {
        return bad(format!(
            "reference_price {} is not positive",
            intent.reference_price
        ));
    }
    if intent.max_slippage_bps < Decimal::ZERO || intent.max_slippage_bps > Decimal::from(10_000) {
        return bad(format!(
            "max_slippage_bps {} is outside 0..10000",
            intent.max_slippage_bps
        ));
    }
    let positive = |v: Option<Decimal>| v.is_some_and(|x| x > Decimal::ZERO);
    let negative = |v: Option<Decimal>| v.is_some_and(|x| x < Decimal::ZERO);
    if negative(intent.notional) || negative(intent.quantity) {
        return bad("a negative notional or quantity".into());
    }
    match intent.side {
        Side::Buy if !positive(intent.notional) && !positive(intent.quantity) => {
            return bad("a buy needs a positive notional or quantity".into())
        }
        Side::Sell if !positive(intent.quantity) => {
            return bad("a sell needs a positive quantity".into())
        }
        _ => {}
    }
    not_from_the_future(intent, now)
}

/// Refuses an intent decided more than the clock skew after `now`.
pub fn not_from_the_future(intent: &OrderIntent, now: Millis) -> Result<(), Refused> {
    if intent.decision_time > now + MAX_CLOCK_SKEW_MS {
        return Err(Refused(format!(
            "intent decided {} s in the future: the deciding clock and this one disagree; fix the clocks",
            (intent.decision_time - now) / 1000
        )));
    }
    Ok(())
}

pub struct Guard {
    cfg: CapitalConfig,
    pub book: LiveBook,
    pub state: LadderState,
    /// The venue this executor trades on (`Venue::name`).
    venue: String,
    /// `market.ticks`: marks for the book and the stale-data breaker (None in library use without a broker:
    /// then the book marks at fill prices and the breaker cannot judge).
    pub prices: Option<LatestPrices>,
    /// When the venue failed recently, for the error-rate breaker.
    venue_errors: Vec<Millis>,
}

impl Guard {
    pub fn open(
        cfg: CapitalConfig,
        journal: &Journal,
        venue: &str,
        now: Millis,
    ) -> Result<Guard, JournalError> {
        let (book, _, state) = capital::load(&cfg, journal, now)?;
        let phase = &cfg.phases[state.phase];
        if phase.venue.as_str() != venue {
            tracing::warn!(
                "capital phase {} trades on {}; this executor is on {venue}: it will only sell",
                phase.name,
                phase.venue.as_str()
            );
        }
        Ok(Guard {
            cfg,
            book,
            state,
            venue: venue.into(),
            prices: None,
            venue_errors: Vec::new(),
        })
    }

    /// Marks every held token to the latest `market.ticks` price.
    fn mark_all(&mut self) {
        let Some(prices) = self.prices.as_mut() else {
            return;
        };
        prices.drain();
        for p in self.book.view().positions {
            if let Some((at, price)) = prices.get(&p.token) {
                self.book.mark(&p.token, price, at);
            }
        }
    }

    /// Refuses an entry whose token has no recent market price: decisions on a feed that has stopped are
    /// decisions on a market nobody sees.
    fn check_fresh(&self, token: &str, now: Millis) -> Result<(), Refused> {
        let (Some(limit), Some(prices)) = (&self.cfg.breakers.stale_after, &self.prices) else {
            return Ok(());
        };
        match prices.get(token) {
            None => Err(Refused(format!(
                "no market.ticks price for {token}: entries need fresh market data (breaker stale_after {limit})"
            ))),
            Some((at, _)) if now - at > limit.ms() => Err(Refused(format!(
                "market data for {token} is {} s old (breaker stale_after {limit})",
                (now - at) / 1000
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Marks a held token (the drawdown pause needs market prices, not fill prices).
    pub fn mark(&mut self, token: &str, price: Decimal, at: Millis) {
        self.book.mark(token, price, at);
    }

    /// The intent as the venue may execute it (a sell bounded by what is held), or why not.
    pub fn check(
        &mut self,
        intent: &OrderIntent,
        journal: &Journal,
        now: Millis,
    ) -> Result<Result<OrderIntent, Refused>, JournalError> {
        self.mark_all();
        self.refresh(journal, now)?;
        if let Some(at) = self.state.killed {
            return Ok(Err(Refused(format!(
                "killed by an operator at {}: nothing trades, exits included, until a resume",
                to_rfc3339(at)
            ))));
        }
        Ok(match intent.side {
            Side::Sell => self.check_sell(intent),
            Side::Buy => self.check_buy(intent, now),
        })
    }

    fn check_sell(&self, intent: &OrderIntent) -> Result<OrderIntent, Refused> {
        let held = self.book.held(&intent.token);
        if held <= Decimal::ZERO {
            return Err(Refused(format!(
                "nothing of {} is held: a sell has nothing to sell",
                intent.token
            )));
        }
        let mut out = intent.clone();
        match intent.quantity {
            Some(q) if q <= held => {}
            // more than is held (a paper or an earlier fill came out smaller): sell what is held
            _ => out.quantity = Some(held),
        }
        Ok(out)
    }

    fn check_buy(&self, intent: &OrderIntent, now: Millis) -> Result<OrderIntent, Refused> {
        let phase = &self.cfg.phases[self.state.phase];
        if let Some((since, until)) = self.state.paused {
            let till = until.map_or(
                "an operator resumes (hypeflow capital resume)".to_string(),
                to_rfc3339,
            );
            return Err(Refused(format!(
                "entries paused since {} ({}); until {till}",
                to_rfc3339(since),
                self.state.pause_reason
            )));
        }
        if phase.venue.as_str() != self.venue {
            return Err(Refused(format!(
                "capital phase {} trades on {}, this executor on {}: entries only where the phase allows",
                phase.name,
                phase.venue.as_str(),
                self.venue
            )));
        }
        self.check_fresh(&intent.token, now)?;
        let out = self.within_phase_caps(intent, now)?;
        let notional = out
            .notional
            .or_else(|| out.quantity.map(|q| q * out.reference_price))
            .unwrap_or(Decimal::ZERO);
        let reference = intent.reference_price;
        let new_heat = match intent.protection.stop_loss {
            Some(d) => (reference - d.below(reference)).max(Decimal::ZERO) * notional / reference,
            None => notional,
        };
        let heat = self.book.heat() + new_heat;
        let equity = self.book.equity();
        if equity <= Decimal::ZERO || heat > self.cfg.max_heat * equity {
            return Err(Refused(format!(
                "portfolio heat would be {} ({:.2}% of equity; the cap is {}%): the loss if every stop is hit",
                heat.round_dp(2),
                if equity > Decimal::ZERO { heat / equity * Decimal::from(100) } else { Decimal::ZERO },
                self.cfg.max_heat * Decimal::from(100)
            )));
        }
        Ok(out)
    }

    /// The entry cut down to what the phase's caps leave room for (per position, per day, total exposure):
    /// a micro phase trades its $500 positions whatever size the pipeline decided on. Refused when the room
    /// left is under 1% of the per-position cap.
    fn within_phase_caps(&self, intent: &OrderIntent, now: Millis) -> Result<OrderIntent, Refused> {
        let phase = &self.cfg.phases[self.state.phase];
        let wanted = intent
            .notional
            .or_else(|| intent.quantity.map(|q| q * intent.reference_price))
            .unwrap_or(Decimal::ZERO);
        let rooms = [
            (
                phase.max_position - self.book.position_value(&intent.token),
                format!("{} per position", phase.max_position),
            ),
            (
                phase.max_notional_per_day - self.book.day_notional(now),
                format!("{} a day", phase.max_notional_per_day),
            ),
            (
                phase.max_exposure - self.book.exposure(),
                format!("{} of exposure", phase.max_exposure),
            ),
        ];
        let (room, cap) = rooms
            .into_iter()
            .min_by(|a, b| a.0.cmp(&b.0))
            .expect("three caps");
        let mut out = intent.clone();
        if wanted <= room {
            return Ok(out);
        }
        if room < phase.max_position / Decimal::from(100) {
            return Err(Refused(format!(
                "no room for a {} entry: phase {} allows {cap}, {} is left",
                intent.token,
                phase.name,
                room.max(Decimal::ZERO).round_dp(2).normalize()
            )));
        }
        tracing::info!(
            "{}: entry of {} cut to {} (phase {} allows {cap})",
            intent.id,
            wanted.round_dp(2),
            room.round_dp(2),
            phase.name
        );
        out.notional = Some(room.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero));
        out.quantity = None;
        Ok(out)
    }

    /// Counts a fill; the drawdown pause, the losing-streak breaker and the step down are checked on the new
    /// figures.
    pub fn after_fill(
        &mut self,
        intent: &OrderIntent,
        fill: &Fill,
        journal: &Journal,
        now: Millis,
    ) -> Result<(), JournalError> {
        let closed_before = self.book.trades.len();
        self.book.apply_for(intent, fill);
        self.refresh(journal, now)?;
        let limit = self.cfg.breakers.max_consecutive_losses;
        let streak = capital::losing_streak(&self.book, self.state.baseline);
        let closed_now = self.book.trades.len() > closed_before;
        if limit > 0 && closed_now && streak >= limit && self.state.paused.is_none() {
            let until = self.cfg.pause.lock.as_ref().map(|l| now + l.ms());
            let reason = format!("{streak} losing round trips in a row (breaker at {limit})");
            tracing::warn!("capital: entries paused: {reason}");
            self.record(
                journal,
                CapitalEvent::Pause {
                    at: now,
                    until,
                    reason,
                    keep_baseline: false,
                },
            )?;
        }
        tracing::debug!(
            "capital: {} round trips, phase {} since {}",
            self.book.trades.len(),
            self.state.phase,
            self.state.phase_since
        );
        if let Some(reason) = capital::degraded(&self.cfg, &self.book, &self.state) {
            if self.state.phase > 0 {
                let from = self.cfg.phases[self.state.phase].name.clone();
                let to = self.cfg.phases[self.state.phase - 1].name.clone();
                let figures = capital::gates(&self.cfg, &self.book, &self.state, now);
                tracing::warn!("capital: stepping down from {from} to {to}: {reason}");
                self.record(
                    journal,
                    CapitalEvent::Phase {
                        at: now,
                        from,
                        phase: to,
                        reason,
                        forced: false,
                        figures,
                    },
                )?;
            }
        }
        Ok(())
    }

    /// Ends a lock that has run out, and pauses when the drawdown from the peak has reached the limit.
    fn refresh(&mut self, journal: &Journal, now: Millis) -> Result<(), JournalError> {
        self.reload(journal, now)?;
        if self.state.paused.is_some() {
            return Ok(());
        }
        let dd = capital::drawdown(&self.book, &self.state);
        if dd >= self.cfg.pause.max_drawdown {
            let until = self.cfg.pause.lock.as_ref().map(|l| now + l.ms());
            let reason = format!(
                "drawdown {:.2}% from the peak {} reached the {}% limit",
                dd * Decimal::from(100),
                self.book.peak_since(self.state.baseline).round_dp(2),
                self.cfg.pause.max_drawdown * Decimal::from(100)
            );
            tracing::warn!("capital: entries paused: {reason}");
            self.record(
                journal,
                CapitalEvent::Pause {
                    at: now,
                    until,
                    reason,
                    keep_baseline: false,
                },
            )?;
        }
        Ok(())
    }

    pub fn config(&self) -> &CapitalConfig {
        &self.cfg
    }

    /// Journals an operator's change (pause, resume, kill) and takes it in.
    pub fn operator(&mut self, journal: &Journal, e: CapitalEvent) -> Result<(), JournalError> {
        self.record(journal, e)
    }

    /// Reads the ladder's state again (after a change made elsewhere, e.g. a promotion).
    pub fn reload(&mut self, journal: &Journal, now: Millis) -> Result<(), JournalError> {
        let events: Vec<CapitalEvent> = journal.capital_events()?;
        self.state = LadderState::from_events(&self.cfg, &events, self.start(now), now);
        Ok(())
    }

    /// Why entries are held now (killed, or paused by a breaker or an operator), or None when they may go.
    pub fn entries_held(&self, now: Millis) -> Option<String> {
        if let Some(at) = self.state.killed {
            return Some(format!("killed by an operator at {}", to_rfc3339(at)));
        }
        match self.state.paused {
            Some((_, Some(until))) if until <= now => None,
            Some((since, _)) => Some(format!(
                "entries paused since {} ({})",
                to_rfc3339(since),
                self.state.pause_reason
            )),
            None => None,
        }
    }

    /// The book and the ladder as Prometheus gauges (statistics for display: f64 is fine here).
    pub fn export_gauges(&self) {
        use crate::telemetry::names;
        use rust_decimal::prelude::ToPrimitive;
        let pipeline = self.book.pipeline.clone();
        let f = |d: Decimal| d.to_f64().unwrap_or(0.0);
        metrics::gauge!(names::EQUITY, "pipeline" => pipeline.clone()).set(f(self.book.equity()));
        metrics::gauge!(names::DRAWDOWN, "pipeline" => pipeline.clone())
            .set(f(capital::drawdown(&self.book, &self.state)));
        metrics::gauge!(names::OPEN_POSITIONS, "pipeline" => pipeline)
            .set(self.book.view().positions.len() as f64);
        for (i, p) in self.cfg.phases.iter().enumerate() {
            let on = if i == self.state.phase { 1.0 } else { 0.0 };
            metrics::gauge!(names::PHASE, "phase" => p.name.clone(), "index" => i.to_string())
                .set(on);
        }
        let killed = self.state.killed.is_some();
        metrics::gauge!(names::ENTRIES_HELD, "cause" => "killed").set(if killed {
            1.0
        } else {
            0.0
        });
        let paused = self.state.paused.is_some();
        metrics::gauge!(names::ENTRIES_HELD, "cause" => "paused").set(if paused {
            1.0
        } else {
            0.0
        });
    }

    /// The state an operator's `status` gets.
    pub fn status(&self) -> serde_json::Value {
        let phase = &self.cfg.phases[self.state.phase];
        serde_json::json!({
            "phase": phase.name,
            "venue": phase.venue.as_str(),
            "paused": self.state.paused.map(|(s, u)| serde_json::json!({"since": to_rfc3339(s), "until": u.map(to_rfc3339)})),
            "killed": self.state.killed.map(to_rfc3339),
            "equity": self.book.equity(),
            "drawdown": capital::drawdown(&self.book, &self.state).round_dp(6),
            "positions": self.book.view().positions,
        })
    }

    /// Compares the wallet with the book; a token whose balances differ by more than the tolerance pauses
    /// entries (until an operator resumes) and is reported. Returns the mismatches.
    pub fn reconcile(
        &mut self,
        wallet: &Wallet,
        journal: &Journal,
        now: Millis,
    ) -> Result<Vec<String>, JournalError> {
        let tol = self.cfg.breakers.wallet_tolerance;
        let mut tokens: std::collections::BTreeSet<String> =
            wallet.tokens.keys().cloned().collect();
        tokens.extend(self.book.view().positions.into_iter().map(|p| p.token));
        let mut out = Vec::new();
        for t in tokens {
            let (book, chain) = (
                self.book.held(&t),
                wallet.tokens.get(&t).copied().unwrap_or(Decimal::ZERO),
            );
            if (chain - book).abs() > book * tol {
                out.push(format!("{t}: wallet {chain}, book {book}"));
            }
        }
        if wallet.native < wallet.native_floor {
            out.push(format!(
                "native coin for gas: wallet {}, the venue keeps at least {} (top it up, then resume)",
                wallet.native.round_dp(8),
                wallet.native_floor
            ));
        }
        if !out.is_empty() && self.state.paused.is_none() {
            let reason = format!("wallet mismatch: {}", out.join("; "));
            tracing::error!("ALERT: capital: entries paused: {reason}");
            self.record(
                journal,
                CapitalEvent::Pause {
                    at: now,
                    until: None,
                    reason,
                    keep_baseline: true,
                },
            )?;
        }
        Ok(out)
    }

    /// Counts a venue failure (the node or RPC unreachable, market data unreadable); this many within the
    /// window hold entries for the cooldown, without moving the drawdown's baseline. True when it tripped.
    pub fn venue_error(
        &mut self,
        what: &str,
        journal: &Journal,
        now: Millis,
    ) -> Result<bool, JournalError> {
        let b = &self.cfg.breakers;
        let (limit, window) = (b.max_venue_errors as usize, b.venue_error_window.ms());
        self.venue_errors.retain(|t| now - *t < window);
        self.venue_errors.push(now);
        if limit == 0 || self.venue_errors.len() < limit || self.state.paused.is_some() {
            return Ok(false);
        }
        let reason = format!(
            "venue errors: {} within {} (breaker at {limit}); the last: {what}",
            self.venue_errors.len(),
            b.venue_error_window
        );
        let until = Some(now + b.venue_error_cooldown.ms());
        tracing::error!(
            "ALERT: capital: entries held for {}: {reason}",
            b.venue_error_cooldown
        );
        self.venue_errors.clear();
        self.record(
            journal,
            CapitalEvent::Pause {
                at: now,
                until,
                reason,
                keep_baseline: true,
            },
        )?;
        Ok(true)
    }

    /// When the ladder's record begins: the account book's first point.
    fn start(&self, now: Millis) -> Millis {
        self.book.curve.first().map_or(now, |c| c.0)
    }

    fn record(&mut self, journal: &Journal, e: CapitalEvent) -> Result<(), JournalError> {
        journal.record_capital_event(e.at(), &e)?;
        alert_of(&e);
        self.reload(journal, e.at())
    }
}

/// A ladder change as an alert: pauses, kills and resumes are breaker alerts, a new phase a phase alert.
fn alert_of(e: &CapitalEvent) {
    use crate::alerts::{notify, Kind};
    match e {
        CapitalEvent::Pause { reason, until, .. } => notify(
            Kind::Breaker,
            format!("pause {reason}"),
            format!(
                "entries paused until {}: {reason}",
                until.map_or("an operator resumes".to_string(), to_rfc3339)
            ),
        ),
        CapitalEvent::Kill { reason, .. } => notify(
            Kind::Breaker,
            "kill",
            format!("killed: nothing trades until a resume ({reason})"),
        ),
        CapitalEvent::Resume { reason, at } => notify(
            Kind::Breaker,
            format!("resume {at}"),
            format!("entries resumed: {reason}"),
        ),
        CapitalEvent::Phase {
            from,
            phase,
            reason,
            forced,
            ..
        } => notify(
            Kind::Phase,
            format!("{from}->{phase}"),
            format!(
                "capital phase {from} -> {phase}{}: {reason}",
                if *forced {
                    " (forced over failing gates)"
                } else {
                    ""
                }
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FillStatus, Protection};

    fn intent(id: &str, side: Side, notional: Option<i64>, qty: Option<i64>) -> OrderIntent {
        OrderIntent {
            id: id.into(),
            pipeline_id: "p".into(),
            token: "AXL".into(),
            side,
            quantity: qty.map(Decimal::from),
            notional: notional.map(Decimal::from),
            reference_price: Decimal::from(10),
            max_slippage_bps: Decimal::from(50),
            protection: Protection::default(),
            reason: String::new(),
            decision_time: 0,
            inputs_version: "v".into(),
            triggered: None,
        }
    }

    fn fill(i: &OrderIntent, qty: i64, price: i64, at: Millis) -> Fill {
        Fill {
            intent_id: i.id.clone(),
            venue: "paper".into(),
            token: i.token.clone(),
            side: i.side,
            quantity: Decimal::from(qty),
            price: Decimal::from(price),
            fee: Decimal::ZERO,
            gas: Decimal::ZERO,
            tx_hash: None,
            status: FillStatus::Filled,
            reason: String::new(),
            fill_time: at,
            quoted_price: None,
        }
    }

    #[test]
    fn an_intent_out_of_range_is_refused_with_what_is_wrong() {
        let now = 1_000_000;
        let ok = intent("i", Side::Buy, Some(10), None);
        assert!(intent_in_range(&ok, now).is_ok());
        let cases: Vec<(OrderIntent, &str)> = vec![
            (
                OrderIntent {
                    reference_price: Decimal::ZERO,
                    ..ok.clone()
                },
                "reference_price",
            ),
            (
                OrderIntent {
                    max_slippage_bps: Decimal::from(-1),
                    ..ok.clone()
                },
                "max_slippage_bps",
            ),
            (
                OrderIntent {
                    max_slippage_bps: Decimal::from(10_001),
                    ..ok.clone()
                },
                "max_slippage_bps",
            ),
            (
                OrderIntent {
                    notional: Some(Decimal::from(-5)),
                    ..ok.clone()
                },
                "negative",
            ),
            (
                OrderIntent {
                    notional: None,
                    ..ok.clone()
                },
                "positive notional",
            ),
            (intent("s", Side::Sell, None, None), "positive quantity"),
            (
                OrderIntent {
                    decision_time: now + 60_000,
                    ..ok.clone()
                },
                "in the future",
            ),
        ];
        for (i, why) in cases {
            let e = intent_in_range(&i, now).unwrap_err();
            assert!(e.0.contains(why), "{why}: {e}");
        }
        // zero slippage is a bound like any other
        assert!(intent_in_range(
            &OrderIntent {
                max_slippage_bps: Decimal::ZERO,
                ..ok
            },
            now
        )
        .is_ok());
    }

    #[test]
    fn a_pause_stops_buys_but_a_held_position_still_sells_and_sells_stop_at_what_is_held() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/capital/ladder.toml"))
                .unwrap()
                .replacen("max_drawdown = \"0.10\"", "max_drawdown = \"0.03\"", 1)
                // the caps and the pause are judged here, not the heat of these stop-less positions
                .replacen("max_heat = \"0.06\"", "max_heat = \"1\"", 1);
        let cfg = CapitalConfig::parse(&text, "ladder").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let mut g = Guard::open(cfg, &j, "paper", 1_000).unwrap();
        let buy = g
            .check(&intent("b1", Side::Buy, Some(400), None), &j, 1_000)
            .unwrap()
            .unwrap();
        g.after_fill(&buy, &fill(&buy, 40, 10, 1_000), &j, 1_000)
            .unwrap();
        // the price halves: 200 of 10000 lost is 2%, under the 3% pause
        g.mark("AXL", Decimal::from(5), 2_000);
        assert!(g
            .check(&intent("b2", Side::Buy, Some(100), None), &j, 2_000)
            .unwrap()
            .is_ok());
        // over the cap: 200 held at the mark + 400 > 500 per position, so the entry is cut to the 300 left
        let over = g
            .check(&intent("b3", Side::Buy, Some(400), None), &j, 2_000)
            .unwrap()
            .unwrap();
        assert_eq!(over.notional, Some(Decimal::from(300)));
        // with 496 held nothing is left worth an entry (under 1% of the cap)
        g.mark("AXL", Decimal::new(124, 1), 2_000);
        let full = g
            .check(&intent("b3b", Side::Buy, Some(100), None), &j, 2_000)
            .unwrap();
        assert!(
            full.as_ref()
                .unwrap_err()
                .0
                .contains("phase paper allows 500 per position, 4 is left"),
            "{full:?}"
        );
        g.mark("AXL", Decimal::from(5), 2_000);
        // the price goes to zero: 400 lost is 4%, the pause is journaled and entries stop
        g.mark("AXL", Decimal::ZERO, 3_000);
        let paused = g
            .check(&intent("b4", Side::Buy, Some(10), None), &j, 3_000)
            .unwrap();
        assert!(paused.unwrap_err().0.contains("entries paused"));
        let events: Vec<CapitalEvent> = j.capital_events().unwrap();
        assert!(
            matches!(&events[..], [CapitalEvent::Pause { until: Some(u), .. }] if *u == 3_000 + 86_400_000)
        );
        // exits go through, bounded by what is held
        let sell = g
            .check(&intent("s1", Side::Sell, None, Some(100)), &j, 3_000)
            .unwrap()
            .unwrap();
        assert_eq!(
            sell.quantity,
            Some(Decimal::from(40)),
            "clipped to the 40 held"
        );
        let mut other = intent("s2", Side::Sell, None, Some(1));
        other.token = "BOLT".into();
        assert!(g
            .check(&other, &j, 3_000)
            .unwrap()
            .unwrap_err()
            .0
            .contains("nothing of BOLT is held"));
        // after the 24 h lock, entries resume and the drawdown counts from the new peak
        let later = 3_000 + 86_400_000;
        assert!(g
            .check(&intent("b5", Side::Buy, Some(10), None), &j, later)
            .unwrap()
            .is_ok());
    }

    #[test]
    fn a_losing_streak_trips_the_breaker() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/capital/ladder.toml"))
                .unwrap()
                .replacen(
                    "max_consecutive_losses = 5",
                    "max_consecutive_losses = 2",
                    1,
                );
        let cfg = CapitalConfig::parse(&text, "ladder").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let mut g = Guard::open(cfg, &j, "paper", 1_000).unwrap();
        for (n, t) in [(1, 1_000), (2, 2_000)] {
            assert!(g.state.paused.is_none(), "not after {} losses", n - 1);
            let b = g
                .check(&intent(&format!("b{n}"), Side::Buy, Some(100), None), &j, t)
                .unwrap()
                .unwrap();
            g.after_fill(&b, &fill(&b, 10, 10, t), &j, t).unwrap();
            let s = g
                .check(&intent(&format!("s{n}"), Side::Sell, None, Some(10)), &j, t)
                .unwrap()
                .unwrap();
            g.after_fill(&s, &fill(&s, 10, 9, t + 1), &j, t + 1)
                .unwrap();
        }
        let events: Vec<CapitalEvent> = j.capital_events().unwrap();
        assert!(
            matches!(&events[..], [CapitalEvent::Pause { reason, .. }] if reason.contains("2 losing round trips in a row")),
            "{events:?}"
        );
        let b = g
            .check(&intent("b3", Side::Buy, Some(100), None), &j, 3_000)
            .unwrap();
        assert!(b.unwrap_err().0.contains("entries paused"));
    }

    #[test]
    fn the_portfolio_heat_caps_what_every_stop_hit_would_lose() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/capital/ladder.toml"))
                .unwrap();
        let cfg = CapitalConfig::parse(&text, "ladder").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let mut g = Guard::open(cfg, &j, "paper", 1_000).unwrap();
        // each entry of 400 with its stop 40% below risks 160: 1.6% of 10000 equity
        for (n, token) in ["AXL", "BOLT", "CRUX"].iter().enumerate() {
            let mut i = intent(&format!("b{n}"), Side::Buy, Some(400), None);
            i.token = token.to_string();
            i.protection.stop_loss = Some(crate::model::Distance::Fraction(Decimal::new(4, 1)));
            let ok = g.check(&i, &j, 1_000).unwrap().unwrap();
            g.after_fill(&ok, &fill(&ok, 40, 10, 1_000), &j, 1_000)
                .unwrap();
        }
        assert_eq!(g.book.heat(), Decimal::from(480));
        let mut fourth = intent("b4", Side::Buy, Some(400), None);
        fourth.token = "DOGX".into();
        fourth.protection.stop_loss = Some(crate::model::Distance::Fraction(Decimal::new(5, 1)));
        let why = g.check(&fourth, &j, 1_000).unwrap().unwrap_err().0;
        assert!(
            why.contains("portfolio heat would be 680") && why.contains("the cap is 6"),
            "{why}"
        );
        // a tighter stop fits: 400 at 10% risks 40 (520 in all)
        fourth.protection.stop_loss = Some(crate::model::Distance::Fraction(Decimal::new(1, 1)));
        assert!(g.check(&fourth, &j, 1_000).unwrap().is_ok());
        // and an entry without a stop risks all of it (480 + 200 > 600)
        let mut bare = intent("b5", Side::Buy, Some(200), None);
        bare.token = "PEPX".into();
        assert!(g
            .check(&bare, &j, 1_000)
            .unwrap()
            .unwrap_err()
            .0
            .contains("portfolio heat"));
    }

    #[test]
    fn losing_round_trips_step_a_phase_down() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/capital/ladder.toml"))
                .unwrap()
                .replacen(
                    "name = \"micro\"\nvenue = \"uniswap-v3\"",
                    "name = \"micro\"\nvenue = \"paper\"",
                    1,
                )
                .replacen("window_trades = 20", "window_trades = 2", 1)
                .replacen(
                    "max_consecutive_losses = 5",
                    "max_consecutive_losses = 0",
                    1,
                );
        let cfg = CapitalConfig::parse(&text, "ladder").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let e = CapitalEvent::Phase {
            at: 500,
            from: "paper".into(),
            phase: "micro".into(),
            reason: "t".into(),
            forced: true,
            figures: vec![],
        };
        j.record_capital_event(500, &e).unwrap();
        let mut g = Guard::open(cfg, &j, "paper", 1_000).unwrap();
        assert_eq!(g.state.phase, 1);
        for (n, t) in [(1, 1_000), (2, 2_000)] {
            let b = g
                .check(&intent(&format!("b{n}"), Side::Buy, Some(100), None), &j, t)
                .unwrap()
                .unwrap();
            g.after_fill(&b, &fill(&b, 10, 10, t), &j, t).unwrap();
            let s = g
                .check(&intent(&format!("s{n}"), Side::Sell, None, Some(10)), &j, t)
                .unwrap()
                .unwrap();
            g.after_fill(&s, &fill(&s, 10, 9, t + 1), &j, t + 1)
                .unwrap();
        }
        assert_eq!(g.state.phase, 0, "stepped down to paper");
        let events: Vec<CapitalEvent> = j.capital_events().unwrap();
        assert!(
            matches!(events.last(), Some(CapitalEvent::Phase { from, phase, forced: false, .. }) if from == "micro" && phase == "paper"),
            "{events:?}"
        );
    }
}
