//! The portfolio stage: one operator (on worker 0) sees every token's bar-close update and the correlation
//! clusters, and decides in event-time order, ties broken by token, so the number of workers cannot change a
//! decision. In a backtest the paper venue runs in-process here: intents decided at a bar close fill on that
//! token's next bar, and the fills (not the intents) move the book.
//!
//! A live run can instead follow the executor (`Positions::Fills`): the book moves only by the fills read back
//! from `orders.fills`; an intent stays pending (its cash reserved, no second order for its token) until its fill
//! or reject arrives; protective stops and take-profits become sell intents decided at the close of the bar that
//! crossed them, since the executor holds no resting orders. A restart reads the order topics from their start,
//! so the book is the executor's, not whatever the rewind window happens to contain.

use super::clusters::ClusterUpdate;
use super::fill_model::FillModel;
use super::rebalance::{toward_target, trims, Cap, Held, Limits};
use super::records::{BarRec, OrderState, TokenUpdate};
use super::signal_quality::{SignalOutcome, SignalTracker};
use super::time_stash::TimeStash;
use crate::config::{EndOfData, PipelineConfig, RebalancePolicy, SizingMode};
use crate::model::money::{sum_exact, Exact, Overflow};
use crate::model::TokenTable;
use crate::model::{
    Distance, Fill, FillStatus, OrderIntent, Protection, ScaleOut, Side, Signal, Trade, Trigger,
};
use crate::risk::{volatility_notional, Book, Caps, Skip};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Capability, Concat};
use timely::dataflow::Stream;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PortfolioEvent {
    Intent(OrderIntent),
    Fill(Fill),
    Trade(Trade),
    /// (time, marked-to-market equity)
    Equity(i64, Decimal),
    /// (time, token, why an entry signal did not become an intent)
    Skipped(i64, String, String),
    /// (time, token, cluster label token) after a change of clusters
    Cluster(i64, String, String),
    /// a signal judged at a horizon (signal quality, independent of trading)
    SignalOutcome(SignalOutcome),
    /// (time, what the book holds) at a bar close while anything is held: for the report's exposure charts
    /// and the largest-position metric
    Exposure(i64, ExposurePoint),
    /// (time, why) the portfolio stopped deciding: a figure of its book left what a decimal holds. Nothing
    /// after it is decided; a backtest ends with this as its error, a live run stops with it.
    Halted(i64, String),
    /// (entry intent id, the accounts whose posts were in the sentiment window that entered): the report's
    /// influencer attribution
    EntryAuthors(String, Vec<std::sync::Arc<str>>),
    /// each token's bars and sentiment in bounded buckets, once at the end of the data: the report's pictures
    Charts(Vec<super::token_chart::TokenChart>),
}

/// How concentrated the book is at one bar close, as shares of equity (statistics, not money).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExposurePoint {
    /// The largest position's share and its token.
    pub largest: f64,
    pub largest_token: String,
    /// Each cluster's share, by its label token (a token in no cluster is its own).
    pub clusters: Vec<(String, f64)>,
}

/// What decides open positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Positions {
    /// The backtest fill model in-process (backtest, replay, and a live run that wants replay's numbers).
    Model,
    /// The executor's fills and rejects read back from the order topics.
    Fills,
}

/// The portfolio's second input: cluster changes and, when following the executor, the order lifecycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DeskInput {
    Cluster(ClusterUpdate),
    Order(Box<OrderState>),
}

pub struct Desk {
    cfg: Arc<PipelineConfig>,
    table: Arc<TokenTable>,
    version: String,
    book: Book,
    paper: FillModel,
    clusters: HashMap<u32, u32>,
    last_bar: BTreeMap<u32, BarRec>,
    started: bool,
    last_time: i64,
    /// While the drawdown pause lasts: when it ends.
    paused_until: Option<i64>,
    signals: SignalTracker,
    positions: Positions,
    /// Intent ids whose outcome was applied (or that were rejected before being seen): never pending again.
    settled: HashSet<String>,
    /// A replay kept in step with its executor (`run --lockstep`): decisions wait for the outcomes they
    /// depend on, as the backtest's fill model has them.
    lockstep: bool,
    /// Bar batches not yet closed, oldest first.
    queue: std::collections::VecDeque<Stage>,
    /// Outcomes read back but not yet applied (they apply before the first batch closing after them).
    arrived: Vec<Fill>,
    arrived_ids: HashSet<String>,
    /// Set when the book overflowed: the desk decides nothing more.
    halted: bool,
    /// volatility_target: bars of each held token since it was last sized.
    since_sized: HashMap<u32, u64>,
    /// An exposure point was emitted at the last close (so the one after the last position closes is too).
    exposed: bool,
    charts: super::token_chart::ChartRecorder,
}

/// Why an entry is not made: a cap (counted in the summary), or a figure beyond a decimal (the desk halts).
enum NoEntry {
    Skip(Skip),
    Overflow(Overflow),
}

impl From<Skip> for NoEntry {
    fn from(s: Skip) -> Self {
        NoEntry::Skip(s)
    }
}

impl From<Overflow> for NoEntry {
    fn from(o: Overflow) -> Self {
        NoEntry::Overflow(o)
    }
}

/// One timestamp's bar closes, in token order.
struct Stage {
    updates: Vec<TokenUpdate>,
    close: i64,
    /// Its protective exits have been looked at.
    protected: bool,
}

impl Stage {
    fn new(mut updates: Vec<TokenUpdate>) -> Stage {
        updates.sort_by_key(|u| (u.bar.token, u.bar.open_time));
        let close = updates
            .iter()
            .map(|u| u.bar.close_time())
            .max()
            .unwrap_or(0);
        Stage {
            updates,
            close,
            protected: false,
        }
    }
}

impl Desk {
    pub fn new(
        cfg: Arc<PipelineConfig>,
        table: Arc<TokenTable>,
        positions: Positions,
        lockstep: bool,
    ) -> Self {
        let horizons = cfg.signal_horizons_ms();
        Desk {
            version: cfg.inputs_version(),
            book: Book::new(cfg.backtest.initial_equity),
            paper: FillModel::new(cfg.fills.clone()),
            cfg,
            table,
            clusters: HashMap::new(),
            last_bar: BTreeMap::new(),
            started: false,
            last_time: 0,
            paused_until: None,
            signals: SignalTracker::new(horizons),
            positions,
            settled: HashSet::new(),
            lockstep,
            queue: Default::default(),
            arrived: Vec::new(),
            arrived_ids: HashSet::new(),
            halted: false,
            since_sized: HashMap::new(),
            exposed: false,
            charts: Default::default(),
        }
    }

    /// Stops the desk on an overflow, with a message that names the time, what is held and what overflowed.
    fn halt(&mut self, e: Overflow, out: &mut Vec<PortfolioEvent>) {
        self.halted = true;
        let held: Vec<&str> = self
            .book
            .positions
            .values()
            .map(|p| p.symbol.as_str())
            .collect();
        let held = if held.is_empty() {
            "nothing".to_string()
        } else {
            held.join(", ")
        };
        let at = crate::model::time::to_rfc3339(self.last_time);
        let why = format!(
            "the portfolio stopped at {at}, holding {held}: {e}. Prices that move by many orders of \
             magnitude (a token bought near 10^-12 and marked near 10^12) compound the book past what it can \
             count; check those prices or trade smaller (initial_equity, stake, risk_fraction)"
        );
        // the run's error carries it to the user (a backtest's, a live run's when it stops)
        tracing::info!("{why}");
        out.push(PortfolioEvent::Halted(self.last_time, why));
    }

    fn cluster_of(&self, token: u32) -> u32 {
        self.clusters.get(&token).copied().unwrap_or(token)
    }

    /// Open plus pending-entry notional of every token in `label`'s cluster.
    fn cluster_exposure(&self, label: u32) -> Result<Decimal, Overflow> {
        let what = "a cluster's exposure";
        let open = self
            .book
            .positions
            .keys()
            .filter(|t| self.cluster_of(**t) == label)
            .map(|t| self.book.position_value(*t));
        let pending = self
            .paper
            .pending()
            .filter(|(t, i)| i.side == Side::Buy && self.cluster_of(**t) == label)
            .map(|(_, i)| Ok(i.notional.unwrap_or_default()));
        sum_exact(open.chain(pending), what)
    }

    fn intent(
        &self,
        token: u32,
        side: Side,
        time: i64,
        price: Decimal,
        reason: String,
    ) -> OrderIntent {
        let symbol = self.table.symbol(token).to_string();
        OrderIntent {
            id: OrderIntent::make_id(&self.cfg.pipeline.id, &symbol, side, time, &self.version),
            pipeline_id: self.cfg.pipeline.id.clone(),
            token: symbol,
            side,
            quantity: None,
            notional: None,
            reference_price: price,
            max_slippage_bps: self.cfg.fills.max_slippage_bps,
            protection: Protection::default(),
            reason,
            decision_time: time,
            inputs_version: self.version.clone(),
            triggered: None,
        }
    }

    /// The id of an exit of `token` decided at `time`: a protective order that triggered in the bar closing
    /// then, or the close at the end of the data. The backtest's fill and a live run's intent share it.
    fn exit_id(&self, token: u32, time: i64) -> String {
        OrderIntent::make_id(
            &self.cfg.pipeline.id,
            self.table.symbol(token),
            Side::Sell,
            time,
            &self.version,
        )
    }

    /// Everything that happens at one completed timestamp.
    /// Takes in the order lifecycle read back from the topics (fills mode only): our intents become pending;
    /// an outcome waits (its intent still pending) until the batch of bars it happened before is closed, so
    /// it moves the book where the backtest's fill model would. Repeats are harmless.
    fn apply_orders(&mut self, mut orders: Vec<OrderState>) {
        if self.positions != Positions::Fills {
            return;
        }
        let key = |o: &OrderState| match o {
            OrderState::Intent(i) => (o.time().unwrap_or(i64::MIN), 0, i.id.clone()),
            OrderState::Outcome(f) => (o.time().unwrap_or(i64::MIN), 1, f.intent_id.clone()),
        };
        orders.sort_by_key(key);
        for o in orders {
            match o {
                OrderState::Intent(i) => {
                    if i.pipeline_id != self.cfg.pipeline.id || self.settled.contains(&i.id) {
                        continue;
                    }
                    let Some(tok) = self.table.id(&i.token) else {
                        continue;
                    };
                    if !self.paper.pending().any(|(_, p)| p.id == i.id) {
                        self.paper.submit(tok, i);
                    }
                }
                OrderState::Outcome(f) => {
                    let Some(tok) = self.table.id(&f.token) else {
                        continue;
                    };
                    let ours = self
                        .paper
                        .pending()
                        .any(|(t, p)| *t == tok && p.id == f.intent_id);
                    if !ours {
                        if f.status == FillStatus::Rejected {
                            // read before its intent (rejects apply on arrival): the intent must not pend later
                            self.settled.insert(f.intent_id);
                        }
                        continue;
                    }
                    if self.arrived_ids.insert(f.intent_id.clone()) {
                        self.arrived.push(f);
                    }
                }
            }
        }
    }

    /// Applies the outcomes that happened before `before`, in the order they happened: fills move the book
    /// and place protective levels, rejects free the reservation.
    fn apply_arrived(
        &mut self,
        before: i64,
        out: &mut Vec<PortfolioEvent>,
    ) -> Result<(), Overflow> {
        self.arrived.sort_by_key(|f| f.fill_time);
        let due = self.arrived.partition_point(|f| f.fill_time < before);
        let now: Vec<Fill> = self.arrived.drain(..due).collect();
        for f in now {
            self.arrived_ids.remove(&f.intent_id);
            let Some(tok) = self.table.id(&f.token) else {
                continue;
            };
            let Some(intent) = self.paper.settle(tok, &f.intent_id) else {
                continue;
            };
            self.settled.insert(f.intent_id.clone());
            if f.status == FillStatus::Filled {
                // a top-up keeps the position's protective levels, and a part sold leaves them for the rest
                let held = self.book.quantity(tok);
                match f.side {
                    Side::Buy if held.is_none() => self
                        .paper
                        .rest_after_entry(tok, &intent, f.price, f.quantity),
                    Side::Sell if held.is_none_or(|q| f.quantity >= q) => {
                        self.paper.cancel_resting(tok)
                    }
                    _ => {}
                }
            }
            let trade = self.book.apply(tok, &f)?;
            tracing::debug!(
                "desk: applied {:?} of {} at {}",
                f.status,
                f.token,
                f.fill_time
            );
            out.push(PortfolioEvent::Fill(f));
            if let Some(tr) = trade {
                out.push(PortfolioEvent::Trade(tr));
            }
        }
        Ok(())
    }

    /// Fills mode: a protective level the bar crossed becomes a market sell decided at the bar's close. Bars
    /// that opened before the entry fill are not judged against it.
    fn protective_exits(&mut self, updates: &[TokenUpdate], out: &mut Vec<PortfolioEvent>) {
        for u in updates {
            let tok = u.bar.token;
            let Some(pos) = self.book.positions.get(&tok) else {
                continue;
            };
            if self.paper.has_pending(tok) || u.bar.open_time < pos.entry_time {
                continue;
            }
            let qty = pos.quantity;
            if let Some(hit) = self.paper.protective_trigger(&u.bar) {
                let t = u.bar.close_time();
                let mut i = self.intent(tok, Side::Sell, t, hit.price, hit.why.into());
                i.quantity = Some(hit.part.map_or(qty, |p| p.min(qty)));
                i.triggered = Some(Trigger {
                    price: hit.price,
                    time: u.bar.open_time,
                    exact: hit.exact(),
                });
                out.push(PortfolioEvent::Intent(i.clone()));
                self.paper.submit(tok, i);
            }
        }
    }

    pub fn step(
        &mut self,
        updates: Vec<TokenUpdate>,
        inputs: Vec<DeskInput>,
        out: &mut Vec<PortfolioEvent>,
    ) {
        let mut cluster_changes = Vec::new();
        let mut orders = Vec::new();
        for i in inputs {
            match i {
                DeskInput::Cluster(c) => cluster_changes.push(c),
                DeskInput::Order(o) => orders.push(*o),
            }
        }
        if self.halted {
            return;
        }
        self.apply_orders(orders);
        self.apply_clusters(cluster_changes, out);
        if !updates.is_empty() {
            self.queue.push_back(Stage::new(updates));
        }
        if let Err(e) = self.work_queue(out, false) {
            self.halt(e, out);
        }
    }

    /// Closes the waiting bar batches in order. In lockstep a batch waits until every intent decided before
    /// its close has its outcome, and its decisions wait for the outcomes of the protective exits it
    /// triggered, as the backtest's fill model knows them before it decides; `flush` closes them regardless.
    fn work_queue(&mut self, out: &mut Vec<PortfolioEvent>, flush: bool) -> Result<(), Overflow> {
        let hold = self.lockstep && !flush;
        while let Some((close, protected)) = self.queue.front().map(|s| (s.close, s.protected)) {
            if hold && self.awaiting(|d| d < close) {
                return Ok(());
            }
            if !protected {
                let updates = self
                    .queue
                    .front_mut()
                    .map(|s| {
                        s.protected = true;
                        std::mem::take(&mut s.updates)
                    })
                    .unwrap_or_default();
                self.open_stage(&updates, close, out)?;
                if let Some(s) = self.queue.front_mut() {
                    s.updates = updates;
                }
                if hold && self.awaiting(|d| d <= close) {
                    return Ok(());
                }
            }
            let Some(stage) = self.queue.pop_front() else {
                return Ok(());
            };
            self.close_stage(&stage.updates, close, out)?;
        }
        Ok(())
    }

    /// The first half of a batch: the outcomes that happened before it, and (following the executor) the
    /// protective levels its bars crossed, as sell intents.
    fn open_stage(
        &mut self,
        updates: &[TokenUpdate],
        close: i64,
        out: &mut Vec<PortfolioEvent>,
    ) -> Result<(), Overflow> {
        if !self.started {
            self.started = true;
            let start = updates.iter().map(|u| u.bar.open_time).min().unwrap_or(0);
            out.push(PortfolioEvent::Equity(start, self.book.equity()?));
        }
        if self.positions == Positions::Fills {
            self.apply_arrived(close, out)?;
            self.protective_exits(updates, out);
        }
        Ok(())
    }

    /// The second half: the venue works the bars (the fill model, or the outcomes of the protective exits),
    /// then the decisions at the close.
    fn close_stage(
        &mut self,
        updates: &[TokenUpdate],
        now: i64,
        out: &mut Vec<PortfolioEvent>,
    ) -> Result<(), Overflow> {
        if self.positions == Positions::Fills {
            self.apply_arrived(now, out)?;
        }
        self.last_time = now;
        self.work_bars(updates, out)?;
        let equity = self.book.equity()?;
        self.drawdown_pause(now)?;
        out.push(PortfolioEvent::Equity(now, equity));
        self.exposure(now, equity, out)?;
        // Exits: signal exits and time stops, for positions without an order in flight.
        self.exits(updates, out);
        // Standing caps (and volatility targeting), for positions still without one.
        self.rebalance(updates, now, equity, out)?;
        // Entries, strongest first.
        self.entries(updates, equity, out)
    }

    /// The book's concentration at this close, while anything is held (and once more when it no longer is).
    fn exposure(
        &mut self,
        now: i64,
        equity: Decimal,
        out: &mut Vec<PortfolioEvent>,
    ) -> Result<(), Overflow> {
        let held = !self.book.positions.is_empty();
        if !held && !self.exposed {
            return Ok(());
        }
        self.exposed = held;
        let share = |v: Decimal| {
            v.checked_div(equity)
                .and_then(|r| rust_decimal::prelude::ToPrimitive::to_f64(&r))
                .unwrap_or(0.0)
        };
        let mut point = ExposurePoint {
            largest: 0.0,
            largest_token: String::new(),
            clusters: Vec::new(),
        };
        let mut clusters: BTreeMap<u32, Decimal> = BTreeMap::new();
        for &tok in self.book.positions.keys() {
            let v = self.book.position_value(tok)?;
            if share(v) > point.largest {
                point.largest = share(v);
                point.largest_token = self.table.symbol(tok).into();
            }
            let c = clusters.entry(self.cluster_of(tok)).or_default();
            *c = c.plus(v, "a cluster's exposure")?;
        }
        point.clusters = clusters
            .into_iter()
            .map(|(label, v)| (self.table.symbol(label).to_string(), share(v)))
            .collect();
        out.push(PortfolioEvent::Exposure(now, point));
        Ok(())
    }

    /// The `[rebalance]` policy at a bar close: trims of what the caps no longer allow at current marks and
    /// clusters, then (volatility_target) resizing toward today's volatility size. Decided now, filled like
    /// any other intent; a position with an order in flight waits for it.
    fn rebalance(
        &mut self,
        updates: &[TokenUpdate],
        now: i64,
        equity: Decimal,
        out: &mut Vec<PortfolioEvent>,
    ) -> Result<(), Overflow> {
        let policy = self.cfg.rebalance.policy;
        if policy == RebalancePolicy::None {
            return Ok(());
        }
        let mut held = Vec::new();
        for (&tok, p) in &self.book.positions {
            held.push(Held {
                token: tok,
                value: self.book.position_value(tok)?,
                heat: self.position_heat(tok, p)?,
                cluster: self.cluster_of(tok),
            });
        }
        let mut pending_cluster: BTreeMap<u32, Decimal> = BTreeMap::new();
        for (t, i) in self.paper.pending().filter(|(_, i)| i.side == Side::Buy) {
            let c = pending_cluster.entry(self.cluster_of(*t)).or_default();
            *c = c.plus(i.notional.unwrap_or_default(), "a cluster's exposure")?;
        }
        let (risk, rb) = (&self.cfg.risk, &self.cfg.rebalance);
        let lim = Limits {
            position_notional: risk.max_position_notional,
            position_fraction: risk.max_position_fraction,
            cluster_fraction: risk.max_cluster_fraction,
            heat_fraction: risk.max_heat,
            tolerance: rb.tolerance,
        };
        let asks = trims(&held, equity, &pending_cluster, self.pending_heat()?, &lim)?;
        for (tok, (share, cap)) in asks {
            self.trim(tok, share, cap, now, out)?;
        }
        if policy == RebalancePolicy::VolatilityTarget {
            self.resize(updates, now, equity, out)?;
        }
        Ok(())
    }

    /// A sell of `share` of `tok`'s position, unless an order is in flight or it is under the minimum trade.
    fn trim(
        &mut self,
        tok: u32,
        share: Decimal,
        cap: Cap,
        now: i64,
        out: &mut Vec<PortfolioEvent>,
    ) -> Result<(), Overflow> {
        let Some(pos) = self.book.positions.get(&tok) else {
            return Ok(());
        };
        if self.paper.has_pending(tok) {
            return Ok(());
        }
        let qty = pos
            .quantity
            .times(share, "a trim")?
            .round_dp_with_strategy(
                super::fill_model::QTY_DP,
                rust_decimal::RoundingStrategy::ToZero,
            )
            .min(pos.quantity);
        let mark = self.book.mark_of(tok).unwrap_or(pos.entry_price);
        if qty <= Decimal::ZERO || qty.times(mark, "a trim")? < self.cfg.rebalance.min_trade {
            return Ok(());
        }
        let mut i = self.intent(tok, Side::Sell, now, mark, cap.reason().into());
        i.quantity = Some(qty);
        out.push(PortfolioEvent::Intent(i.clone()));
        self.paper.submit(tok, i);
        Ok(())
    }

    /// volatility_target: every `every_bars` bars of a held token, the trade that brings it to the size an
    /// entry would get now (the risk fraction over today's stop distance, within the position cap), when it
    /// is outside the tolerance band. A buy goes through the entry caps (cash, cluster room, heat).
    fn resize(
        &mut self,
        updates: &[TokenUpdate],
        now: i64,
        equity: Decimal,
        out: &mut Vec<PortfolioEvent>,
    ) -> Result<(), Overflow> {
        let book = &self.book;
        self.since_sized
            .retain(|t, _| book.positions.contains_key(t));
        for u in updates {
            let tok = u.bar.token;
            if !self.book.positions.contains_key(&tok) {
                continue;
            }
            let n = self.since_sized.entry(tok).or_insert(0);
            *n += 1;
            if *n < self.cfg.rebalance.every_bars || self.paper.has_pending(tok) {
                continue;
            }
            *n = 0;
            let Some(dist) = self.stop_distance(u)? else {
                continue;
            };
            let price = u.bar.close;
            let risk_fraction = self.cfg.sizing.risk_fraction;
            let Some(target) = volatility_notional(equity, risk_fraction, price, dist) else {
                continue;
            };
            let risk = &self.cfg.risk;
            let by_fraction = risk.max_position_fraction.times(equity, "a position cap")?;
            let target = risk
                .max_position_notional
                .map_or(target, |m| m.min(target))
                .min(by_fraction);
            let value = self.book.position_value(tok)?;
            match toward_target(value, target, self.cfg.rebalance.tolerance) {
                Some(buy) if buy > Decimal::ZERO => self.top_up(u, buy, dist, equity, now, out)?,
                Some(sell) if sell < Decimal::ZERO => {
                    let share = (-sell).over(value, "a trim")?;
                    self.trim(tok, share, Cap::Volatility, now, out)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A buy of up to `wanted` more of a held token, within the entry caps.
    fn top_up(
        &mut self,
        u: &TokenUpdate,
        wanted: Decimal,
        dist: Decimal,
        equity: Decimal,
        now: i64,
        out: &mut Vec<PortfolioEvent>,
    ) -> Result<(), Overflow> {
        let (tok, price, risk) = (u.bar.token, u.bar.close, &self.cfg.risk);
        let caps = self.caps(tok, equity, None, self.cfg.rebalance.min_trade)?;
        let Ok(notional) = caps.apply(wanted) else {
            return Ok(());
        };
        let new_risk = notional.times(dist, "a risk")?.over(price, "a risk")?;
        if self.heat()?.plus(new_risk, "the heat")? > risk.max_heat * equity {
            return Ok(());
        }
        let mut i = self.intent(tok, Side::Buy, now, price, Cap::Volatility.reason().into());
        i.notional = Some(notional);
        out.push(PortfolioEvent::Intent(i.clone()));
        self.paper.submit(tok, i);
        Ok(())
    }

    /// The caps a buy of `tok` meets now: the position cap given, the room left in its cluster, free cash.
    fn caps(
        &self,
        tok: u32,
        equity: Decimal,
        position_cap: Option<Decimal>,
        min_notional: Decimal,
    ) -> Result<Caps, Overflow> {
        let room = (self.cfg.risk.max_cluster_fraction * equity).minus(
            self.cluster_exposure(self.cluster_of(tok))?,
            "a cluster's room",
        )?;
        Ok(Caps {
            max_position_notional: position_cap,
            cluster_room: room.max(Decimal::ZERO),
            free_cash: self
                .book
                .cash
                .minus(self.paper.reserved_cash()?, "the free cash")?,
            fee_rate: self.cfg.fills.fee_rate,
            gas: self.cfg.fills.gas_quote,
            min_notional,
        })
    }

    /// The stop distance an entry at this bar's close would get: the fixed fraction, or the ATR multiple.
    fn stop_distance(&self, u: &TokenUpdate) -> Result<Option<Decimal>, Overflow> {
        let sizing = &self.cfg.sizing;
        Ok(match (sizing.stop_loss, u.atr) {
            (Some(f), _) => Some(u.bar.close.times(f, "a stop distance")?),
            (None, Some(atr)) => Some(atr.times(sizing.stop_atr_mult, "a stop distance")?),
            (None, None) => None,
        })
    }

    /// Whether an intent whose decision time passes `decided` still waits for its outcome.
    fn awaiting(&self, decided: impl Fn(i64) -> bool) -> bool {
        self.paper
            .pending()
            .any(|(_, i)| decided(i.decision_time) && !self.arrived_ids.contains(&i.id))
    }

    /// The drawdown pause at `now`: reaching `drawdown_pause` stops entries for
    /// `drawdown_lock`; when the lock ends the peak restarts from the equity then, so the pause cannot last for
    /// ever (a peak-only rule never recovers once flat).
    fn drawdown_pause(&mut self, now: i64) -> Result<(), Overflow> {
        let risk = &self.cfg.risk;
        if self.paused_until.is_some_and(|until| now >= until) {
            self.paused_until = None;
            self.book.peak_equity = self.book.equity()?;
        }
        let drawdown = self.book.drawdown()?;
        if self.paused_until.is_none()
            && risk.drawdown_pause < Decimal::ONE
            && drawdown >= risk.drawdown_pause
        {
            self.paused_until = Some(now.saturating_add(risk.drawdown_lock.ms()));
        }
        Ok(())
    }

    /// Cluster membership as of this time: retractions before insertions.
    fn apply_clusters(
        &mut self,
        mut cluster_changes: Vec<ClusterUpdate>,
        out: &mut Vec<PortfolioEvent>,
    ) {
        cluster_changes.sort_by_key(|((tok, label), _, diff)| (*diff, *tok, *label));
        let mut changed = Vec::new();
        for ((tok, label), time, diff) in cluster_changes {
            if diff < 0 {
                if self.clusters.get(&tok) == Some(&label) {
                    self.clusters.remove(&tok);
                }
            } else {
                self.clusters.insert(tok, label);
                changed.push((time, tok, label));
            }
        }
        for (time, tok, label) in changed {
            out.push(PortfolioEvent::Cluster(
                time as i64,
                self.table.symbol(tok).into(),
                self.table.symbol(label).into(),
            ));
        }
    }

    /// Fills of the fill model (when it decides positions), marks, and the signal outcomes this bar judges.
    fn work_bars(
        &mut self,
        updates: &[TokenUpdate],
        out: &mut Vec<PortfolioEvent>,
    ) -> Result<(), Overflow> {
        for u in updates {
            let tok = u.bar.token;
            if self.positions == Positions::Model {
                let free = self
                    .book
                    .cash
                    .minus(self.reserved_except(tok)?, "the free cash")?;
                let mut entries: Vec<String> = self
                    .book
                    .positions
                    .get(&tok)
                    .map(|p| p.intent_id.clone())
                    .into_iter()
                    .collect();
                for mut f in self.paper.on_bar(&u.bar, self.book.quantity(tok), free) {
                    match f.side {
                        Side::Buy => entries.push(f.intent_id.clone()),
                        // a protective order of an entry: the id a live run's exit intent for it gets
                        Side::Sell if entries.contains(&f.intent_id) => {
                            f.intent_id = self.exit_id(tok, u.bar.close_time());
                        }
                        Side::Sell => {}
                    }
                    let trade = self.book.apply(tok, &f)?;
                    out.push(PortfolioEvent::Fill(f));
                    out.extend(trade.map(PortfolioEvent::Trade));
                }
            }
            self.book.mark(tok, u.bar.close);
            self.last_bar.insert(tok, u.bar.clone());
            self.charts.observe(u);
            let mut judged = Vec::new();
            self.signals.observe(u, &mut judged);
            out.extend(judged.into_iter().map(PortfolioEvent::SignalOutcome));
        }
        Ok(())
    }

    fn exits(&mut self, updates: &[TokenUpdate], out: &mut Vec<PortfolioEvent>) {
        let time_stop = self.cfg.time_stop_ms();
        for u in updates {
            let tok = u.bar.token;
            let Some(pos) = self.book.positions.get(&tok) else {
                continue;
            };
            if self.paper.has_pending(tok) {
                continue;
            }
            let t = u.bar.close_time();
            let reason = match &u.signal {
                Some(Signal::Exit { reason }) => Some(reason.clone()),
                _ => time_stop
                    .filter(|ts| t - pos.entry_time >= *ts)
                    .map(|_| "time_stop".to_string()),
            };
            if let Some(reason) = reason {
                let mut i = self.intent(tok, Side::Sell, t, u.bar.close, reason);
                i.quantity = Some(pos.quantity);
                out.push(PortfolioEvent::Intent(i.clone()));
                self.paper.submit(tok, i);
            }
        }
    }

    fn entries(
        &mut self,
        updates: &[TokenUpdate],
        equity: Decimal,
        out: &mut Vec<PortfolioEvent>,
    ) -> Result<(), Overflow> {
        let mut candidates: Vec<(&TokenUpdate, f64, String)> = updates
            .iter()
            .filter_map(|u| match &u.signal {
                Some(Signal::Enter { strength, reason }) => Some((u, *strength, reason.clone())),
                _ => None,
            })
            .filter(|(u, _, _)| {
                !self.book.positions.contains_key(&u.bar.token)
                    && !self.paper.has_pending(u.bar.token)
            })
            .collect();
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.bar.token.cmp(&b.0.bar.token)));
        for (u, _, reason) in candidates {
            let tok = u.bar.token;
            let t = u.bar.close_time();
            match self.size_entry(u, equity) {
                Ok((notional, protection)) => {
                    let mut i = self.intent(tok, Side::Buy, t, u.bar.close, reason);
                    i.notional = Some(notional);
                    i.protection = protection;
                    if let Some(w) = u.sentiment.as_ref().filter(|w| !w.authors.is_empty()) {
                        out.push(PortfolioEvent::EntryAuthors(
                            i.id.clone(),
                            w.authors.clone(),
                        ));
                    }
                    out.push(PortfolioEvent::Intent(i.clone()));
                    self.paper.submit(tok, i);
                }
                Err(NoEntry::Skip(skip)) => out.push(PortfolioEvent::Skipped(
                    t,
                    self.table.symbol(tok).into(),
                    skip.name().into(),
                )),
                Err(NoEntry::Overflow(e)) => return Err(e),
            }
        }
        Ok(())
    }

    fn reserved_except(&self, token: u32) -> Result<Decimal, Overflow> {
        let all = self.paper.reserved_cash()?;
        let own = self
            .paper
            .pending()
            .filter(|(t, i)| **t == token && i.side == Side::Buy)
            .map(|(_, i)| self.paper.cost_of(i.notional.unwrap_or_default()));
        all.minus(sum_exact(own, "the reserved cash")?, "the reserved cash")
    }

    fn size_entry(
        &self,
        u: &TokenUpdate,
        equity: Decimal,
    ) -> Result<(Decimal, Protection), NoEntry> {
        let risk = &self.cfg.risk;
        let sizing = &self.cfg.sizing;
        if self.paused_until.is_some() {
            return Err(Skip::DrawdownPause.into());
        }
        let pending_buys = self
            .paper
            .pending()
            .filter(|(_, i)| i.side == Side::Buy)
            .count();
        if self.book.positions.len() + pending_buys >= risk.max_open_positions {
            return Err(Skip::MaxOpenPositions.into());
        }
        let price = u.bar.close;
        let stop_distance = self.stop_distance(u)?;
        let wanted = if sizing.mode == SizingMode::FixedStake {
            sizing.stake
        } else {
            let dist = stop_distance.ok_or(Skip::NoAtrYet)?;
            volatility_notional(equity, sizing.risk_fraction, price, dist).ok_or(Skip::NoAtrYet)?
        };
        let by_fraction = (risk.max_position_fraction < Decimal::ONE)
            .then(|| risk.max_position_fraction * equity);
        let position_cap = match (risk.max_position_notional, by_fraction) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let caps = self.caps(u.bar.token, equity, position_cap, risk.min_notional)?;
        let notional = caps.apply(wanted)?;
        // what this entry loses if its stop is hit (all of it without a stop), on top of the book's heat
        let new_risk = match stop_distance {
            Some(d) if price > Decimal::ZERO => {
                notional.times(d, "a risk")?.over(price, "a risk")?
            }
            _ => notional,
        };
        if self.heat()?.plus(new_risk, "the heat")? > risk.max_heat * equity {
            return Err(Skip::PortfolioHeat.into());
        }
        let protection = Protection {
            stop_loss: match (sizing.stop_loss, u.atr) {
                (Some(f), _) => Some(Distance::Fraction(f)),
                (None, Some(atr)) => Some(Distance::Absolute(
                    (atr * sizing.stop_atr_mult).round_dp(10),
                )),
                _ => None,
            },
            take_profit: sizing
                .take_profit_atr_mult
                .zip(u.atr)
                .map(|(m, a)| Distance::Absolute((a * m).round_dp(10))),
            trailing_stop: sizing
                .trailing_atr_mult
                .zip(u.atr)
                .map(|(m, a)| Distance::Absolute((a * m).round_dp(10))),
            scale_out: match u.atr {
                Some(a) => sizing
                    .scale_out
                    .iter()
                    .map(|l| ScaleOut {
                        at: Distance::Absolute((a * l.atr).round_dp(10)),
                        fraction: l.fraction,
                    })
                    .collect(),
                None => Vec::new(),
            },
        };
        Ok((notional, protection))
    }

    /// Portfolio heat: (entry - stop) x quantity over the open positions (a position without a resting stop
    /// risks all of it), and the same for the buys still pending, from their stop at the decision price.
    fn heat(&self) -> Result<Decimal, Overflow> {
        let open = self
            .book
            .positions
            .iter()
            .map(|(t, p)| self.position_heat(*t, p));
        sum_exact(open, "the heat")?.plus(self.pending_heat()?, "the heat")
    }

    /// What an open position loses if its resting stop is hit (all of it without one).
    fn position_heat(&self, tok: u32, p: &crate::risk::Position) -> Result<Decimal, Overflow> {
        let stop = self.paper.stop_of(tok).unwrap_or(Decimal::ZERO);
        (p.entry_price - stop)
            .max(Decimal::ZERO)
            .times(p.quantity, "the heat")
    }

    /// The same for the buys still pending, from their stop at the decision price.
    fn pending_heat(&self) -> Result<Decimal, Overflow> {
        let what = "the heat";
        let pending = self
            .paper
            .pending()
            .filter(|(_, i)| i.side == Side::Buy)
            .map(|(_, i)| {
                let n = i.notional.unwrap_or_default();
                let r = i.reference_price;
                match i.protection.stop_loss {
                    Some(d) if r > Decimal::ZERO => n
                        .times((r - d.below(r)).max(Decimal::ZERO), what)?
                        .over(r, what),
                    _ => Ok(n),
                }
            });
        sum_exact(pending, what)
    }

    /// End of data: close what is open by the configured convention. Positions held at the executor stay
    /// open: a live run stopping is not a reason to sell.
    pub fn finish(&mut self, out: &mut Vec<PortfolioEvent>) {
        if self.halted {
            return;
        }
        if let Err(e) = self.close_out(out) {
            self.halt(e, out);
        }
        out.push(PortfolioEvent::Charts(
            self.charts.charts(|t| self.table.symbol(t).to_string()),
        ));
    }

    fn close_out(&mut self, out: &mut Vec<PortfolioEvent>) -> Result<(), Overflow> {
        self.work_queue(out, true)?;
        if self.positions == Positions::Fills {
            self.apply_arrived(i64::MAX, out)?;
            if !self.lockstep {
                if self.started {
                    out.push(PortfolioEvent::Equity(self.last_time, self.book.equity()?));
                }
                return Ok(());
            }
        }
        let open: Vec<(u32, crate::risk::Position)> = self
            .book
            .positions
            .iter()
            .map(|(t, p)| (*t, p.clone()))
            .collect();
        for (tok, pos) in open {
            let Some(bar) = self.last_bar.get(&tok).cloned() else {
                continue;
            };
            let (price, time) = match self.cfg.fills.end_of_data {
                EndOfData::LastOpen => (bar.open, bar.open_time),
                EndOfData::LastClose => (bar.close, bar.close_time()),
            };
            if self.positions == Positions::Fills {
                // a replay in step with its executor closes at the end of the data as the backtest does
                if !self.paper.has_pending(tok) {
                    let why = "force_exit".to_string();
                    let mut i = self.intent(tok, Side::Sell, self.last_time, price, why);
                    i.quantity = Some(pos.quantity);
                    i.triggered = Some(Trigger {
                        price,
                        time,
                        exact: false,
                    });
                    out.push(PortfolioEvent::Intent(i));
                }
                continue;
            }
            let id = self.exit_id(tok, self.last_time);
            let f = self
                .paper
                .force_exit(tok, &pos.symbol, &id, pos.quantity, price, time);
            let trade = self.book.apply(tok, &f)?;
            out.push(PortfolioEvent::Fill(f));
            out.extend(trade.map(PortfolioEvent::Trade));
        }
        if self.started {
            out.push(PortfolioEvent::Equity(self.last_time, self.book.equity()?));
        }
        Ok(())
    }
}

pub fn portfolio<'s>(
    updates: Stream<'s, u64, Vec<TokenUpdate>>,
    clusters: Stream<'s, u64, Vec<ClusterUpdate>>,
    orders: Option<Stream<'s, u64, Vec<OrderState>>>,
    positions: Positions,
    lockstep: bool,
    cfg: Arc<PipelineConfig>,
    table: Arc<TokenTable>,
) -> Stream<'s, u64, Vec<PortfolioEvent>> {
    let mut side = clusters.map(DeskInput::Cluster);
    if let Some(orders) = orders {
        side = side.concat(orders.map(|o| DeskInput::Order(Box::new(o))));
    }
    updates.binary_frontier::<_, CapacityContainerBuilder<Vec<PortfolioEvent>>, _, _, _, _>(
        side,
        Exchange::new(|_: &TokenUpdate| 0u64),
        Exchange::new(|_: &DeskInput| 0u64),
        "Portfolio",
        move |_cap, _info| {
            let mut desk = Desk::new(cfg, table, positions, lockstep);
            let mut stash: TimeStash<TokenUpdate, DeskInput> = TimeStash::default();
            let mut last_cap: Option<Capability<u64>> = None;
            let mut finished = false;
            let mut events = Vec::new();
            move |(upd_in, upd_frontier), (cl_in, cl_frontier), output| {
                upd_in.for_each_stamp(|cap, data| {
                    if let Some(c) = cap.retain_least(output.output_index()) {
                        stash.push_first(c, data);
                    }
                });
                cl_in.for_each_stamp(|cap, data| {
                    if let Some(c) = cap.retain_least(output.output_index()) {
                        stash.push_second(c, data);
                    }
                });
                while let Some((cap, ups, cls)) =
                    stash.pop_ready(|t| upd_frontier.less_equal(t) || cl_frontier.less_equal(t))
                {
                    desk.step(ups, cls, &mut events);
                    if !events.is_empty() {
                        output.session(&cap).give_iterator(events.drain(..));
                    }
                    last_cap = Some(cap);
                }
                // The kept capability only exists for the end-of-data flush: hold it at the input frontier so it
                // never holds back downstream progress.
                if let Some(cap) = last_cap.as_mut() {
                    let lows = upd_frontier
                        .frontier()
                        .iter()
                        .chain(cl_frontier.frontier().iter())
                        .min()
                        .copied();
                    let first_stashed = stash.first_time();
                    if let Some(low) = lows.into_iter().chain(first_stashed).min() {
                        if low > *cap.time() {
                            cap.downgrade(&low);
                        }
                    }
                }
                if !finished
                    && stash.is_empty()
                    && upd_frontier.is_empty()
                    && cl_frontier.is_empty()
                {
                    finished = true;
                    desk.finish(&mut events);
                    if let Some(cap) = last_cap.take() {
                        output.session(&cap).give_iterator(events.drain(..));
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desk() -> Desk {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/pipelines/influencer_momentum.toml"
        ))
        .unwrap();
        let cfg = PipelineConfig::parse(&text, "test").unwrap();
        let table = Arc::new(cfg.universe.token_table());
        Desk::new(Arc::new(cfg), table, Positions::Fills, false)
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn update(token: u32, open_time: i64, low: &str, signal: Option<Signal>) -> TokenUpdate {
        TokenUpdate {
            bar: BarRec {
                token,
                open_time,
                interval: 60_000,
                open: d("10"),
                high: d("10"),
                low: d(low),
                close: d("10"),
                volume: d("1"),
            },
            atr: Some(d("0.5")),
            volatility: None,
            log_return: None,
            sentiment: None,
            signal,
        }
    }

    fn enter() -> Option<Signal> {
        Some(Signal::Enter {
            strength: 1.0,
            reason: "test".into(),
        })
    }

    fn intents(out: &[PortfolioEvent]) -> Vec<&OrderIntent> {
        out.iter()
            .filter_map(|e| match e {
                PortfolioEvent::Intent(i) => Some(i),
                _ => None,
            })
            .collect()
    }

    fn filled(i: &OrderIntent, qty: &str, price: &str, time: i64) -> DeskInput {
        DeskInput::Order(Box::new(OrderState::Outcome(Fill {
            intent_id: i.id.clone(),
            venue: "paper".into(),
            token: i.token.clone(),
            side: i.side,
            quantity: d(qty),
            price: d(price),
            fee: Decimal::ZERO,
            gas: Decimal::ZERO,
            tx_hash: None,
            status: FillStatus::Filled,
            reason: String::new(),
            fill_time: time,
            quoted_price: None,
        })))
    }

    #[test]
    fn an_entry_names_the_accounts_of_its_window_and_the_end_pictures_every_bar() {
        let mut desk = desk();
        let mut out = Vec::new();
        let mut u = update(1, 0, "10", enter());
        u.sentiment = Some(crate::dataflow::records::SentimentWindow {
            token: 1,
            end: 60_000,
            mentions: 3,
            score: 0.6,
            velocity_z: 2.5,
            authors: vec!["@a".into(), "@b".into()],
        });
        desk.step(vec![u, update(0, 0, "10", enter())], vec![], &mut out);
        let entries = intents(&out);
        assert_eq!(entries.len(), 2, "{out:?}");
        let with_window = entries
            .iter()
            .find(|i| i.token == desk.table.symbol(1))
            .unwrap();
        let credited: Vec<(&String, Vec<&str>)> = out
            .iter()
            .filter_map(|e| match e {
                PortfolioEvent::EntryAuthors(id, a) => Some((id, a.iter().map(|x| &**x).collect())),
                _ => None,
            })
            .collect();
        // only the entry made from a window is credited, to that window's accounts
        assert_eq!(credited, vec![(&with_window.id, vec!["@a", "@b"])]);
        out.clear();
        desk.step(vec![update(1, 60_000, "10", None)], vec![], &mut out);
        desk.finish(&mut out);
        let charts = out
            .iter()
            .find_map(|e| match e {
                PortfolioEvent::Charts(c) => Some(c.clone()),
                _ => None,
            })
            .expect("the pictures come at the end");
        let one = charts
            .iter()
            .find(|c| c.token == desk.table.symbol(1))
            .unwrap();
        assert_eq!(one.points.len(), 2);
        assert_eq!(one.points[0].score, Some(0.6));
        assert_eq!(one.points[1].score, None);
    }

    #[test]
    fn an_unfilled_entry_blocks_a_second_one_and_holds_nothing() {
        let mut desk = desk();
        let mut out = Vec::new();
        desk.step(vec![update(0, 0, "10", enter())], vec![], &mut out);
        assert_eq!(intents(&out).len(), 1);
        assert!(!out.iter().any(|e| matches!(e, PortfolioEvent::Fill(_))));
        out.clear();
        desk.step(vec![update(0, 60_000, "10", enter())], vec![], &mut out);
        assert!(intents(&out).is_empty(), "still pending: {out:?}");
        assert!(desk.book.positions.is_empty());
    }

    #[test]
    fn a_fill_opens_the_position_and_a_crossed_stop_becomes_a_sell_of_that_quantity() {
        let mut desk = desk();
        let mut out = Vec::new();
        desk.step(vec![update(0, 0, "10", enter())], vec![], &mut out);
        let buy = intents(&out)[0].clone();
        out.clear();
        // a repeat of the intent read back from the topic changes nothing
        let echo = DeskInput::Order(Box::new(OrderState::Intent(buy.clone())));
        desk.step(
            vec![update(0, 60_000, "8", None)],
            vec![echo.clone(), filled(&buy, "7", "10", 90_000)],
            &mut out,
        );
        assert_eq!(desk.book.quantity(0), Some(d("7")));
        // the bar that opened before the fill is not judged against the stop (3 ATR = 1.5 below 10)
        assert!(intents(&out).is_empty(), "{out:?}");
        out.clear();
        desk.step(vec![update(0, 120_000, "8", None)], vec![echo], &mut out);
        let sells = intents(&out);
        assert_eq!(sells.len(), 1, "{out:?}");
        assert_eq!(sells[0].side, Side::Sell);
        assert_eq!(sells[0].quantity, Some(d("7")));
        assert_eq!(sells[0].reason, "stop_loss");
        // the position stays until the sell's fill arrives
        assert_eq!(desk.book.quantity(0), Some(d("7")));
        let sell = sells[0].clone();
        out.clear();
        desk.step(
            vec![update(0, 180_000, "8", None)],
            vec![filled(&sell, "7", "8.4", 185_000)],
            &mut out,
        );
        assert_eq!(desk.book.quantity(0), None);
        assert!(out.iter().any(|e| matches!(e, PortfolioEvent::Trade(_))));
    }

    #[test]
    fn a_reject_frees_the_token_for_good_and_other_pipelines_fills_are_ignored() {
        let mut desk = desk();
        let mut out = Vec::new();
        desk.step(vec![update(0, 0, "10", enter())], vec![], &mut out);
        let buy = intents(&out)[0].clone();
        let mut reject = match filled(&buy, "0", "0", 0) {
            DeskInput::Order(o) => *o,
            _ => unreachable!(),
        };
        if let OrderState::Outcome(f) = &mut reject {
            f.status = FillStatus::Rejected;
        }
        // another pipeline's fill for the same token
        let mut foreign = buy.clone();
        foreign.id = "someone-else".into();
        out.clear();
        desk.step(
            vec![update(0, 60_000, "10", None)],
            vec![
                filled(&foreign, "3", "10", 60_000),
                DeskInput::Order(Box::new(reject)),
            ],
            &mut out,
        );
        assert!(desk.book.positions.is_empty());
        // the same intent read back later must not pend again
        out.clear();
        desk.step(
            vec![update(0, 120_000, "10", enter())],
            vec![DeskInput::Order(Box::new(OrderState::Intent(buy)))],
            &mut out,
        );
        assert_eq!(intents(&out).len(), 1, "the token is free again: {out:?}");
    }

    /// A backtest desk (the fill model decides positions) with no fees or slippage, volatility sizing
    /// (risk 2% of 10,000 with the stop 2 ATR below), and `risk` / `rebalance` lines added.
    fn model_desk(risk: &str, rebalance: &str) -> Desk {
        model_desk_with("", risk, rebalance)
    }

    fn model_desk_with(sizing: &str, risk: &str, rebalance: &str) -> Desk {
        desk_with(Positions::Model, sizing, risk, rebalance)
    }

    fn desk_with(positions: Positions, sizing: &str, risk: &str, rebalance: &str) -> Desk {
        let text = format!(
            "[pipeline]\nid = \"rebal\"\n[universe]\ntokens = [\"AXL\", \"BOLT\", \"CRUX\"]\n\
             [signal]\nkind = \"sma_cross\"\n[sizing]\nrisk_fraction = 0.02\nstop_atr_mult = 2\n{sizing}\n\
             [risk]\nmax_open_positions = 5\ndrawdown_pause = 1\nmin_notional = 1\n{risk}\n\
             [fills]\nfee_rate = 0\nslippage_bps = 0\nrefuse_drift = false\n\
             [backtest]\ninitial_equity = 10000\n[rebalance]\n{rebalance}\n"
        );
        let cfg = PipelineConfig::parse(&text, "test").unwrap();
        let table = Arc::new(cfg.universe.token_table());
        Desk::new(Arc::new(cfg), table, positions, false)
    }

    /// A bar of `token` at `price` all through, with the given ATR.
    fn flat(
        token: u32,
        open_time: i64,
        price: &str,
        atr: &str,
        signal: Option<Signal>,
    ) -> TokenUpdate {
        let mut u = update(token, open_time, price, signal);
        (u.bar.open, u.bar.high, u.bar.close) = (d(price), d(price), d(price));
        u.atr = Some(d(atr));
        u
    }

    fn the_trade(out: &[PortfolioEvent]) -> Trade {
        out.iter()
            .find_map(|e| match e {
                PortfolioEvent::Trade(t) => Some(t.clone()),
                _ => None,
            })
            .expect("a closed trade")
    }

    fn largest_share(out: &[PortfolioEvent]) -> Option<f64> {
        out.iter().rev().find_map(|e| match e {
            PortfolioEvent::Exposure(_, p) => Some(p.largest),
            _ => None,
        })
    }

    #[test]
    fn a_token_that_runs_up_is_trimmed_back_to_its_cap_and_the_trade_keeps_its_legs() {
        let mut desk = model_desk(
            "max_cluster_fraction = 1\nmax_position_fraction = 0.25",
            "policy = \"caps\"",
        );
        let mut out = Vec::new();
        desk.step(vec![flat(0, 0, "10", "0.5", enter())], vec![], &mut out);
        assert_eq!(
            intents(&out)[0].notional,
            Some(d("2000")),
            "risk 200 over a stop 1 below 10"
        );
        desk.step(vec![flat(0, 60_000, "10", "0.5", None)], vec![], &mut out);
        assert_eq!(desk.book.quantity(0), Some(d("200")));
        out.clear();
        // the price doubles: 4,000 of 12,000 is a third, over 25% and its 10% band
        desk.step(vec![flat(0, 120_000, "20", "0.5", None)], vec![], &mut out);
        let trim = intents(&out);
        assert_eq!(trim.len(), 1, "{out:?}");
        assert_eq!(
            (trim[0].side, trim[0].reason.as_str()),
            (Side::Sell, "rebalance:position")
        );
        assert_eq!(
            trim[0].quantity,
            Some(d("50")),
            "back to 3,000: a quarter of the position"
        );
        out.clear();
        desk.step(vec![flat(0, 180_000, "20", "0.5", None)], vec![], &mut out);
        assert_eq!(desk.book.quantity(0), Some(d("150")));
        assert_eq!(largest_share(&out), Some(0.25));
        assert!(
            intents(&out).is_empty(),
            "on its cap, inside the band: no churn"
        );
        out.clear();
        desk.finish(&mut out);
        let trade = the_trade(&out);
        assert_eq!(trade.legs.len(), 2);
        assert_eq!(
            trade.legs.iter().map(|l| l.quantity).sum::<Decimal>(),
            d("200")
        );
        assert_eq!((trade.quantity, trade.pnl), (d("200"), d("2000")));
    }

    #[test]
    fn a_cluster_that_forms_after_the_entries_is_trimmed_to_its_cap() {
        let mut desk = model_desk("max_cluster_fraction = 0.2", "policy = \"caps\"");
        let mut out = Vec::new();
        let both = |t: i64, s: fn() -> Option<Signal>| {
            vec![flat(0, t, "10", "0.5", s()), flat(1, t, "10", "0.5", s())]
        };
        desk.step(both(0, enter), vec![], &mut out);
        assert_eq!(
            intents(&out).len(),
            2,
            "alone, each is its own cluster of 20%: {out:?}"
        );
        desk.step(both(60_000, || None), vec![], &mut out);
        assert_eq!(
            (desk.book.quantity(0), desk.book.quantity(1)),
            (Some(d("200")), Some(d("200")))
        );
        out.clear();
        // BOLT joins AXL's cluster: 4,000 of 10,000 against 20%
        let joined = DeskInput::Cluster(((1, 0), 120_000, 1));
        desk.step(both(120_000, || None), vec![joined], &mut out);
        let trims = intents(&out);
        assert_eq!(trims.len(), 2, "{out:?}");
        for t in trims {
            assert_eq!(
                (t.reason.as_str(), t.quantity),
                ("rebalance:cluster", Some(d("100")))
            );
        }
        out.clear();
        desk.step(both(180_000, || None), vec![], &mut out);
        let cluster = out.iter().rev().find_map(|e| match e {
            PortfolioEvent::Exposure(_, p) => Some(p.clusters.clone()),
            _ => None,
        });
        assert_eq!(cluster, Some(vec![("AXL".to_string(), 0.2)]));
    }

    #[test]
    fn volatility_targeting_halves_a_position_when_volatility_doubles_and_buys_back_when_it_halves()
    {
        let mut desk = model_desk(
            "max_cluster_fraction = 1",
            "policy = \"volatility_target\"\nevery_bars = 1",
        );
        let mut out = Vec::new();
        desk.step(vec![flat(0, 0, "10", "0.5", enter())], vec![], &mut out);
        desk.step(vec![flat(0, 60_000, "10", "0.5", None)], vec![], &mut out);
        let stop = desk.paper.stop_of(0);
        assert_eq!(stop, Some(d("9")));
        out.clear();
        desk.step(vec![flat(0, 120_000, "10", "1", None)], vec![], &mut out);
        let sell = intents(&out);
        assert_eq!(sell.len(), 1, "{out:?}");
        assert_eq!(
            (sell[0].reason.as_str(), sell[0].quantity),
            ("rebalance:volatility", Some(d("100")))
        );
        desk.step(vec![flat(0, 180_000, "10", "1", None)], vec![], &mut out);
        assert_eq!(desk.book.quantity(0), Some(d("100")));
        out.clear();
        desk.step(vec![flat(0, 240_000, "10", "0.5", None)], vec![], &mut out);
        let buy = intents(&out);
        assert_eq!(buy.len(), 1, "{out:?}");
        assert_eq!((buy[0].side, buy[0].notional), (Side::Buy, Some(d("1000"))));
        desk.step(vec![flat(0, 300_000, "10", "0.5", None)], vec![], &mut out);
        assert_eq!(desk.book.quantity(0), Some(d("200")));
        assert_eq!(
            desk.paper.stop_of(0),
            stop,
            "a top-up keeps the position's stop"
        );
    }

    #[test]
    fn a_scale_out_leg_sells_its_part_and_the_rest_closes_the_same_trade() {
        let legs = "[[sizing.scale_out]]\natr = 1\nfraction = 0.5";
        let mut desk = model_desk_with(legs, "max_cluster_fraction = 1", "");
        let mut out = Vec::new();
        desk.step(vec![flat(0, 0, "10", "0.5", enter())], vec![], &mut out);
        desk.step(vec![flat(0, 60_000, "10", "0.5", None)], vec![], &mut out);
        assert_eq!(desk.book.quantity(0), Some(d("200")));
        out.clear();
        // the leg rests one ATR (0.5) above the fill at 10: a bar reaching 10.6 sells half there
        let mut up = flat(0, 120_000, "10", "0.5", None);
        up.bar.high = d("10.6");
        desk.step(vec![up], vec![], &mut out);
        let leg = out
            .iter()
            .find_map(|e| match e {
                PortfolioEvent::Fill(f) if f.side == Side::Sell => Some(f.clone()),
                _ => None,
            })
            .expect("the leg's fill");
        assert_eq!(
            (leg.quantity, leg.price, leg.reason.as_str()),
            (d("100"), d("10.5"), "scale_out")
        );
        assert_eq!(desk.book.quantity(0), Some(d("100")));
        assert_eq!(
            desk.paper.stop_of(0),
            Some(d("9")),
            "the stop rests for the rest"
        );
        out.clear();
        desk.finish(&mut out);
        let trade = the_trade(&out);
        let parts: Vec<(Decimal, &str)> = trade
            .legs
            .iter()
            .map(|l| (l.quantity, l.reason.as_str()))
            .collect();
        assert_eq!(parts, [(d("100"), "scale_out"), (d("100"), "force_exit")]);
        assert_eq!((trade.quantity, trade.pnl), (d("200"), d("50")));
    }

    #[test]
    fn a_live_run_publishes_the_trim_and_moves_only_by_its_fill() {
        let caps = "max_cluster_fraction = 1\nmax_position_fraction = 0.25";
        let mut desk = desk_with(Positions::Fills, "", caps, "policy = \"caps\"");
        let mut out = Vec::new();
        desk.step(vec![flat(0, 0, "10", "0.5", enter())], vec![], &mut out);
        let buy = intents(&out)[0].clone();
        desk.step(
            vec![flat(0, 60_000, "10", "0.5", None)],
            vec![filled(&buy, "200", "10", 60_000)],
            &mut out,
        );
        out.clear();
        desk.step(vec![flat(0, 120_000, "20", "0.5", None)], vec![], &mut out);
        let trim = intents(&out)[0].clone();
        assert_eq!(
            (trim.reason.as_str(), trim.quantity),
            ("rebalance:position", Some(d("50")))
        );
        out.clear();
        // nothing moves until the executor's fill comes back, and no second trim is decided meanwhile
        desk.step(vec![flat(0, 180_000, "20", "0.5", None)], vec![], &mut out);
        assert!(intents(&out).is_empty(), "{out:?}");
        assert_eq!(desk.book.quantity(0), Some(d("200")));
        desk.step(
            vec![flat(0, 240_000, "20", "0.5", None)],
            vec![filled(&trim, "50", "20", 240_000)],
            &mut out,
        );
        assert_eq!(desk.book.quantity(0), Some(d("150")));
        assert_eq!(
            desk.paper.stop_of(0),
            Some(d("9")),
            "the stop rests for the rest of the position"
        );
    }
}
