//! `hypeflow execute`: a consumer-group member on `orders.intents`. For each intent: claim its id in the
//! journal (a duplicate stops here), carry it out on the venue (paper, or a swap on chain), journal the outcome, publish it to `orders.fills` or `orders.rejects`, and only then
//! commit the intent's offset. Executors sharing a journal file never execute an id twice, whatever the group
//! rebalances or Kafka redelivers.

use super::capital::CapitalConfig;
use super::clock::Clock;
use super::control;
use super::guard::{intent_in_range, Guard};
use super::journal::{Journal, JournalError, State};
use super::prices::LatestPrices;
use super::venue::{Refused, Venue, VenueError};
use crate::alerts;
use crate::kafka::envelope;
use crate::kafka::publish::{PublishError, Publisher};
use crate::kafka::topics;
use crate::model::{Fill, FillStatus, OrderIntent};
use crate::telemetry::{health, names};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rust_decimal::Decimal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Venue(#[from] VenueError),
    #[error("Kafka at {brokers}: {source}")]
    Kafka {
        brokers: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("another executor is running as instance {instance} on journal {journal}: stop it, or start this one with its own --instance")]
    InstanceBusy { instance: String, journal: String },
    #[error("cannot take the instance lock {path}: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
}

/// The default instance name: the host and the consumer group, the same on every start, so a restarted
/// executor finds and finishes the intents it had claimed (a name with the process id never would).
pub fn default_instance(group: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("{host}-{group}")
}

/// Held while an executor runs as an instance: two live processes with one name would each take the other's
/// claims for their own unfinished work and execute them, so the second one is refused.
struct InstanceLock {
    _file: std::fs::File,
}

impl InstanceLock {
    fn take(journal: &std::path::Path, instance: &str) -> Result<InstanceLock, ExecutorError> {
        let safe: String = instance
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = PathBuf::from(format!("{}.{safe}.lock", journal.display()));
        let lock_err = |source| ExecutorError::Lock {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(lock_err)?;
        match file.try_lock() {
            Ok(()) => Ok(InstanceLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(ExecutorError::InstanceBusy {
                instance: instance.into(),
                journal: journal.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(lock_err(e)),
        }
    }
}

pub struct ExecutorConfig {
    pub brokers: String,
    pub group: String,
    pub journal: PathBuf,
    pub instance: String,
    /// Stop after this long without a new intent (batch runs and tests); None = run until killed.
    pub exit_when_idle: Option<Duration>,
    /// The capital ladder whose phase caps, pause and step-down the executor enforces on every intent.
    pub capital: Option<CapitalConfig>,
    /// The wall clock live; the intents' event time when replaying history through the executor.
    pub clock: Clock,
    /// Set by SIGTERM/SIGINT: the executor stops after the intent in hand (its outcome published, its
    /// offset committed).
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExecutorStats {
    pub filled: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
    pub republished: u64,
    pub commit_failures: u64,
    /// On-chain intents settled from the journal at start.
    pub recovered: u64,
}

fn kafka(brokers: &str) -> impl Fn(rdkafka::error::KafkaError) -> ExecutorError + '_ {
    move |source| ExecutorError::Kafka {
        brokers: brokers.into(),
        source,
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A reject for an intent record that names its id but cannot be read as an intent; never executed, never
/// journaled (it has no claimable content).
fn malformed_reject(payload: &[u8], reason: &str) -> Option<Fill> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let d = &v["data"];
    let id = d["id"].as_str().filter(|s| !s.trim().is_empty())?;
    let side = if d["side"].as_str() == Some("sell") {
        crate::model::Side::Sell
    } else {
        crate::model::Side::Buy
    };
    Some(Fill::refusal(
        id,
        "executor",
        d["token"].as_str().unwrap_or_default(),
        side,
        format!("malformed intent, not executed: {reason}"),
        now_ms(),
    ))
}

/// Publishes a journaled outcome and waits for the broker's acknowledgement, through outages: the offset of
/// its intent is committed only after this returns.
fn publish_outcome(p: &mut Publisher, f: &Fill) -> Result<(), PublishError> {
    match f.status {
        FillStatus::Filled => p.send_until_acked(
            &topics::name("orders.fills"),
            &f.token,
            &envelope::encode("fill", f),
            f.fill_time,
        ),
        FillStatus::Rejected => p.send_until_acked(
            &topics::name("orders.rejects"),
            &f.token,
            &envelope::encode("reject", f),
            f.fill_time,
        ),
    }
}

/// The executor loop over any venue.
pub fn run(cfg: &ExecutorConfig, venue: &mut dyn Venue) -> Result<ExecutorStats, ExecutorError> {
    let _lock = InstanceLock::take(&cfg.journal, &cfg.instance)?;
    let mut publisher = Publisher::immediate(&cfg.brokers)?;
    publisher.warm_up(&topics::name("orders.fills"));
    let mut ex = Executor {
        cfg,
        venue,
        journal: Journal::open(&cfg.journal)?,
        publisher,
        stats: ExecutorStats::default(),
        guard: None,
        day: None,
    };
    ex.venue.refresh()?;
    ex.recover()?;
    let consumer: BaseConsumer =
        crate::kafka::client::group_member(&cfg.brokers, &topics::name(&cfg.group))
            .create()
            .map_err(kafka(&cfg.brokers))?;
    consumer
        .subscribe(&[topics::name("orders.intents").as_str()])
        .map_err(kafka(&cfg.brokers))?;
    let mut control = ControlIn::subscribe(cfg)?;
    let mut idle = IdleClock::new();
    let mut last_reconcile = Instant::now();
    let mut last_beat = Instant::now();
    ex.beat(&consumer);
    loop {
        if cfg
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
        {
            tracing::info!("stop asked: the intent in hand is done, stopping");
            break;
        }
        if let Err(e) = ex.venue.refresh() {
            ex.venue_failed(e, None)?;
            std::thread::sleep(Duration::from_secs(1));
        }
        if last_reconcile.elapsed() >= RECONCILE_EVERY {
            last_reconcile = Instant::now();
            ex.reconcile_or_count()?;
        }
        if !cfg.clock.is_event() {
            // live, a bar is marked once its close is a few seconds past (late ticks have arrived)
            if let Err(e) = ex.venue.mark(&ex.journal, Some(ex.now() - MARK_GRACE_MS)) {
                ex.venue_failed(e, None)?;
            }
        }
        idle.watch_assignment(&consumer);
        if last_beat.elapsed() >= Duration::from_secs(1) {
            last_beat = Instant::now();
            ex.beat(&consumer);
            ex.daily_summary();
        }
        if let Some(c) = control.as_mut() {
            if ex.obey_control(c)? {
                idle.touch();
            }
        }
        let Some(res) = consumer.poll(Duration::from_millis(100)) else {
            if idle.expired(cfg.exit_when_idle) {
                break;
            }
            continue;
        };
        let m = match res {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("orders.intents poll: {e}");
                continue;
            }
        };
        idle.touch();
        let at = format!("partition {} offset {}", m.partition(), m.offset());
        ex.handle(m.payload().unwrap_or_default(), &at)?;
        // The outcome is journaled and acknowledged: now the offset may move. A commit refused during a
        // rebalance only means the intent may be delivered again, which the journal turns into a duplicate.
        if let Err(e) = consumer.commit_message(&m, CommitMode::Sync) {
            tracing::warn!("commit of orders.intents {at} failed: {e}");
            ex.stats.commit_failures += 1;
        }
    }
    if cfg.clock.is_event() {
        // the replay's data has ended: its last bars close
        if let Err(e) = ex.venue.mark(&ex.journal, None) {
            ex.venue_failed(e, None)?;
        }
    }
    ex.publisher.finish()?;
    Ok(ex.stats)
}

/// How long after a bar's close a live executor marks it.
const MARK_GRACE_MS: i64 = 5_000;

/// How often the wallet is reconciled with the book besides at start and after every fill (a transfer or a
/// second process on the key shows up within this, even when nothing trades).
const RECONCILE_EVERY: Duration = Duration::from_secs(300);

/// When the executor has been idle long enough to stop: the clock starts once the group has given it
/// partitions (joining takes seconds), or after 30 s.
struct IdleClock {
    started: Instant,
    last_activity: Instant,
    assigned: bool,
}

impl IdleClock {
    fn new() -> Self {
        IdleClock {
            started: Instant::now(),
            last_activity: Instant::now(),
            assigned: false,
        }
    }
    fn watch_assignment(&mut self, consumer: &BaseConsumer) {
        if self.assigned {
            return;
        }
        self.assigned = consumer
            .assignment()
            .map(|a| a.count() > 0)
            .unwrap_or(false);
        if self.assigned || self.started.elapsed() > Duration::from_secs(30) {
            self.assigned = true;
            self.last_activity = Instant::now();
        }
    }
    fn touch(&mut self) {
        self.last_activity = Instant::now();
    }
    fn expired(&self, exit_when_idle: Option<Duration>) -> bool {
        self.assigned && exit_when_idle.is_some_and(|d| self.last_activity.elapsed() > d)
    }
}

/// `control.commands`, read by this instance (its own consumer group, so every executor sees every
/// command), with the secret that signs them; None when no secret is set.
struct ControlIn {
    consumer: BaseConsumer,
    secret: Vec<u8>,
}

impl ControlIn {
    fn subscribe(cfg: &ExecutorConfig) -> Result<Option<ControlIn>, ExecutorError> {
        let Some(secret) = std::env::var(control::SECRET_ENV)
            .ok()
            .filter(|s| !s.is_empty())
        else {
            tracing::info!(
                "{} is not set: control.commands is not read",
                control::SECRET_ENV
            );
            return Ok(None);
        };
        let group = topics::name(&format!("hypeflow-control-{}", cfg.instance));
        let consumer: BaseConsumer = crate::kafka::client::group_member(&cfg.brokers, &group)
            .create()
            .map_err(kafka(&cfg.brokers))?;
        consumer
            .subscribe(&[topics::name("control.commands").as_str()])
            .map_err(kafka(&cfg.brokers))?;
        Ok(Some(ControlIn {
            consumer,
            secret: secret.into_bytes(),
        }))
    }
}

/// What one executor holds while it runs.
struct Executor<'a> {
    cfg: &'a ExecutorConfig,
    venue: &'a mut dyn Venue,
    journal: Journal,
    publisher: Publisher,
    stats: ExecutorStats,
    guard: Option<Guard>,
    /// The UTC day (days since 1970) the daily summary last covered, and the stats at its start.
    day: Option<(i64, ExecutorStats)>,
}

impl Executor<'_> {
    /// Once the UTC day turns: the day's fills and rejects, and the book's equity and drawdown, as an alert.
    fn daily_summary(&mut self) {
        let today = self.now().div_euclid(86_400_000);
        let Some((day, start)) = self.day else {
            self.day = Some((today, self.stats));
            return;
        };
        if today == day {
            return;
        }
        let date = crate::model::time::to_rfc3339(day * 86_400_000);
        let date = date.get(..10).unwrap_or(&date).to_string();
        let book = self.guard.as_ref().map_or(String::new(), |g| {
            format!(
                "; equity {} drawdown {:.2}%",
                g.book.equity().round_dp(2),
                super::capital::drawdown(&g.book, &g.state) * Decimal::from(100)
            )
        });
        alerts::notify(
            alerts::Kind::Daily,
            date.clone(),
            format!(
                "{date}: {} fills, {} rejects on {}{book}",
                self.stats.filled - start.filled,
                self.stats.rejected - start.rejected,
                self.venue.name()
            ),
        );
        self.day = Some((today, self.stats));
    }

    fn now(&self) -> i64 {
        self.cfg.clock.now()
    }

    /// Every command waiting on `control.commands`: obeyed when admitted (journaled, answered), else
    /// dead-lettered with an alert. True when any arrived.
    fn obey_control(&mut self, c: &mut ControlIn) -> Result<bool, ExecutorError> {
        let mut any = false;
        while let Some(res) = c.consumer.poll(Duration::ZERO) {
            let Ok(m) = res else { continue };
            any = true;
            let payload = m.payload().unwrap_or_default().to_vec();
            let now = self.now();
            let journal = &self.journal;
            let seen = |id: &str| journal.command_seen(id).unwrap_or(true);
            match control::admit(&payload, &c.secret, now, seen) {
                Ok(cmd) => {
                    let reply = self.obey(&cmd, now)?;
                    tracing::info!(
                        "control: {:?} from {}: {}",
                        cmd.action,
                        cmd.issuer,
                        reply.message
                    );
                    self.journal.record_command(&cmd.id, now, &cmd, &reply)?;
                    let body = envelope::encode("reply", &reply);
                    self.publisher.send_until_acked(
                        &topics::name("control.replies"),
                        &cmd.id,
                        &body,
                        now,
                    )?;
                }
                Err(why) => {
                    tracing::error!("ALERT: control command refused, not obeyed: {why}");
                    self.publisher
                        .dead_letter("control.commands", "", &payload, &why)?;
                    self.publisher.flush()?;
                }
            }
            if let Err(e) = c.consumer.commit_message(&m, CommitMode::Sync) {
                tracing::warn!("commit of control.commands failed: {e}");
            }
        }
        Ok(any)
    }

    /// Carries out an admitted command.
    fn obey(&mut self, cmd: &control::Command, now: i64) -> Result<control::Reply, ExecutorError> {
        use super::capital::CapitalEvent;
        use control::Action;
        let reply = |ok: bool, message: String| control::Reply {
            command_id: cmd.id.clone(),
            ok,
            message,
            at: now,
            status: None,
        };
        let reason = format!("operator {}: {}", cmd.issuer, cmd.reason);
        let Some(guard) = self.guard.as_mut() else {
            return Ok(reply(
                false,
                "this executor runs without the capital ladder: start it with --capital".into(),
            ));
        };
        let out = match cmd.action {
            Action::Pause => {
                guard.operator(
                    &self.journal,
                    CapitalEvent::Pause {
                        at: now,
                        until: None,
                        reason,
                        keep_baseline: false,
                    },
                )?;
                reply(true, "entries paused until a resume".into())
            }
            Action::Resume => {
                guard.operator(&self.journal, CapitalEvent::Resume { at: now, reason })?;
                reply(true, "resumed".into())
            }
            Action::Kill => {
                guard.operator(&self.journal, CapitalEvent::Kill { at: now, reason })?;
                reply(true, "killed: nothing trades until a resume".into())
            }
            Action::Promote => {
                let to = cmd.to.clone().unwrap_or_default();
                let cfg = guard.config().clone();
                let r = super::capital::promote(
                    &cfg,
                    &self.journal,
                    &to,
                    cmd.force,
                    Some(reason),
                    now,
                )?;
                guard.reload(&self.journal, now)?;
                match r {
                    Ok(_) => reply(true, format!("now in phase {to}")),
                    Err(why) => reply(false, why),
                }
            }
            Action::Status => reply(true, "status".into()),
            Action::Flatten => {
                if guard.state.killed.is_some() {
                    reply(false, "killed: resume first, then flatten".into())
                } else {
                    let (sold, refused) = self.flatten(cmd, now)?;
                    let g = self.guard.as_mut().expect("checked above");
                    let why = format!("operator {}: flattened", cmd.issuer);
                    g.operator(
                        &self.journal,
                        CapitalEvent::Pause {
                            at: now,
                            until: None,
                            reason: why,
                            keep_baseline: false,
                        },
                    )?;
                    reply(
                        refused == 0,
                        format!(
                            "flattened: {sold} positions sold, {refused} refused; entries paused"
                        ),
                    )
                }
            }
        };
        let status = self.guard.as_ref().map(Guard::status);
        Ok(control::Reply { status, ..out })
    }

    /// Sells every position each pipeline's book holds, as intents of that pipeline (so its book closes
    /// them), through the venue; returns (sold, refused).
    fn flatten(&mut self, cmd: &control::Command, now: i64) -> Result<(u64, u64), ExecutorError> {
        let capital = self
            .cfg
            .capital
            .as_ref()
            .map_or(Default::default(), |c| c.starting_capital);
        let books = super::book::LiveBook::from_journal(&self.journal, capital)?;
        let (mut sold, mut refused) = (0, 0);
        for b in books {
            for p in b.view().positions {
                let intent = OrderIntent {
                    id: format!("flatten-{}-{}-{}", cmd.id, b.pipeline, p.token),
                    pipeline_id: b.pipeline.clone(),
                    token: p.token.clone(),
                    side: crate::model::Side::Sell,
                    quantity: Some(p.quantity),
                    notional: None,
                    reference_price: p.mark,
                    max_slippage_bps: Decimal::from(10_000),
                    protection: Default::default(),
                    reason: format!("flatten by {}", cmd.issuer),
                    decision_time: now,
                    inputs_version: "control".into(),
                    triggered: None,
                };
                if !self.journal.claim(&intent, &self.cfg.instance, now)? {
                    continue;
                }
                let f = self.execute(&intent)?;
                publish_outcome(&mut self.publisher, &f)?;
                self.publisher.flush()?;
                self.journal.mark_published(&f.intent_id)?;
                match f.status {
                    FillStatus::Filled => sold += 1,
                    FillStatus::Rejected => refused += 1,
                }
            }
        }
        Ok((sold, refused))
    }

    /// Transactions signed before a stop are settled on chain (never signed again); what this instance
    /// claimed and signed nothing for is executed (through the protections); what was journaled but not
    /// acknowledged is published.
    fn recover(&mut self) -> Result<(), ExecutorError> {
        self.stats.recovered += self.venue.recover(&self.journal)?.len() as u64;
        // the protections start from the book with what recovery settled
        if let Some(c) = &self.cfg.capital {
            let mut g = Guard::open(c.clone(), &self.journal, self.venue.name(), self.now())?;
            // replaying, the latest prices on the topic are the history's end, not its present: the ladder
            // then marks at fills and the stale-data breaker cannot judge
            if !self.cfg.clock.is_event() {
                g.prices = Some(LatestPrices::connect(&self.cfg.brokers, 10_000)?);
            }
            self.guard = Some(g);
            self.reconcile()?;
        }
        for intent in self.journal.unfinished(&self.cfg.instance)? {
            self.execute(&intent)?;
        }
        for f in self.journal.unpublished()? {
            publish_outcome(&mut self.publisher, &f)?;
            self.publisher.flush()?;
            self.journal.mark_published(&f.intent_id)?;
            self.stats.republished += 1;
        }
        Ok(())
    }

    /// Readiness once a second: the loop runs and holds partitions of `orders.intents` (a group member
    /// without them executes nothing), and the state gauges.
    fn beat(&self, consumer: &BaseConsumer) {
        let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        health().beat(
            "executor",
            Duration::from_secs(30),
            format!(
                "{assigned} orders.intents partitions, venue {}",
                self.venue.name()
            ),
        );
        health().set(
            "kafka",
            assigned > 0,
            if assigned > 0 {
                "joined the group".to_string()
            } else {
                "no orders.intents partition assigned yet (joining the group, or more executors than partitions)".into()
            },
        );
        self.export_state();
    }

    /// A venue failure: a journal failure stops the executor; one that leaves a signed transaction of
    /// `intent` behind stops it too (only recovery at the next start may settle it); anything else is counted
    /// by the error-rate breaker and the executor goes on.
    fn venue_failed(
        &mut self,
        e: VenueError,
        intent: Option<&OrderIntent>,
    ) -> Result<String, ExecutorError> {
        if let VenueError::Journal(_) = e {
            return Err(ExecutorError::Venue(e));
        }
        if let Some(i) = intent {
            if !self.journal.txs_of(&i.id)?.is_empty() {
                return Err(ExecutorError::Venue(VenueError::Rpc(format!(
                    "intent {} has a signed transaction and the venue failed ({e}); restart the executor to settle it from the journal",
                    i.id
                ))));
            }
        }
        let what = e.to_string();
        tracing::warn!("venue {}: {what}", self.venue.name());
        metrics::counter!(names::VENUE_ERRORS, "venue" => self.venue.name().to_string())
            .increment(1);
        let now = self.now();
        if let Some(g) = self.guard.as_mut() {
            g.venue_error(&what, &self.journal, now)?;
        }
        Ok(what)
    }

    /// The venue's outcome for an intent; a failure before anything was signed becomes a refusal.
    fn on_venue(&mut self, intent: &OrderIntent, now: i64) -> Result<Fill, ExecutorError> {
        match self.venue.execute(intent, &self.journal) {
            Ok(f) => Ok(f),
            Err(e) => {
                let what = self.venue_failed(e, Some(intent))?;
                self.refuse(
                    intent,
                    Refused(format!("venue unavailable, not traded: {what}")),
                    now,
                )
            }
        }
    }

    /// Reconciles; a venue that cannot be read for it is a venue failure, counted, not a stop.
    fn reconcile_or_count(&mut self) -> Result<(), ExecutorError> {
        match self.reconcile() {
            Err(ExecutorError::Venue(e)) => self.venue_failed(e, None).map(|_| ()),
            other => other,
        }
    }

    /// The wallet against the book (on chain; paper has no wallet), at start and after every fill.
    fn reconcile(&mut self) -> Result<(), ExecutorError> {
        let now = self.now();
        let (Some(guard), Some(wallet)) = (self.guard.as_mut(), self.venue.holdings()?) else {
            return Ok(());
        };
        guard.reconcile(&wallet, &self.journal, now)?;
        Ok(())
    }

    /// A claimed intent through the protections to the venue; the outcome is journaled either way.
    fn execute(&mut self, intent: &OrderIntent) -> Result<Fill, ExecutorError> {
        let now = self.now();
        if let Err(refused) = intent_in_range(intent, now) {
            return self.refuse(intent, refused, now);
        }
        let Some(guard) = self.guard.as_mut() else {
            return self.on_venue(intent, now);
        };
        match guard.check(intent, &self.journal, now)? {
            Ok(allowed) => {
                let f = self.on_venue(&allowed, now)?;
                let after = self.now();
                let guard = self.guard.as_mut().expect("checked above");
                guard.after_fill(&allowed, &f, &self.journal, after)?;
                if f.status == FillStatus::Filled {
                    self.reconcile_or_count()?;
                }
                Ok(f)
            }
            Err(refused) => self.refuse(intent, refused, now),
        }
    }

    /// The executor's own refusal, journaled as the intent's outcome.
    fn refuse(
        &mut self,
        intent: &OrderIntent,
        refused: Refused,
        now: i64,
    ) -> Result<Fill, ExecutorError> {
        let f = Fill::refusal(
            &intent.id,
            "executor",
            &intent.token,
            intent.side,
            refused.0,
            now,
        );
        self.journal.record_outcome_as(&f, State::Rejected, now)?;
        Ok(f)
    }

    /// One record of `orders.intents` (found `at` a partition and offset) to its published outcome.
    fn handle(&mut self, payload: &[u8], at: &str) -> Result<(), ExecutorError> {
        let intent = match envelope::decode::<OrderIntent>("intent", payload) {
            Ok(i) => i,
            Err(reason) => {
                let why = format!("{at}: {reason}");
                self.publisher
                    .dead_letter("orders.intents", "", payload, &why)?;
                self.publisher.flush()?;
                self.stats.dead_lettered += 1;
                // whoever sent it learns it was refused, when it can be told which intent it was
                if let Some(f) = malformed_reject(payload, &reason.0) {
                    publish_outcome(&mut self.publisher, &f)?;
                    self.stats.rejected += 1;
                }
                return Ok(());
            }
        };
        self.cfg.clock.observe(intent.decision_time);
        if self.cfg.clock.is_event() {
            // every bar closed before the decision is marked before anything it decided fills
            if let Err(e) = self.venue.mark(&self.journal, Some(intent.decision_time)) {
                self.venue_failed(e, None)?;
            }
        }
        if !self
            .journal
            .claim(&intent, &self.cfg.instance, self.now())?
        {
            self.stats.duplicates += 1;
            return Ok(());
        }
        let received = Instant::now();
        self.observe_received(&intent);
        let f = self.execute(&intent)?;
        publish_outcome(&mut self.publisher, &f)?;
        self.publisher.flush()?;
        self.journal.mark_published(&f.intent_id)?;
        match f.status {
            FillStatus::Filled => self.stats.filled += 1,
            FillStatus::Rejected => self.stats.rejected += 1,
        }
        self.observe_outcome(&f, received);
        Ok(())
    }

    /// `hypeflow_intents_received_total`, and live the decision-to-received stage.
    fn observe_received(&self, intent: &OrderIntent) {
        let venue = self.venue.name().to_string();
        metrics::counter!(names::INTENTS_RECEIVED, "venue" => venue.clone()).increment(1);
        if !self.cfg.clock.is_event() {
            let lag = (now_ms() - intent.decision_time).max(0) as f64 / 1000.0;
            metrics::histogram!(names::EXECUTION_LATENCY, "venue" => venue, "stage" => "decision_to_received")
                .record(lag);
        }
    }

    /// Fills and rejects (reason class), received-to-outcome latency, slippage against the quote, and the
    /// book's gauges.
    fn observe_outcome(&self, f: &Fill, received: Instant) {
        let venue = self.venue.name().to_string();
        metrics::histogram!(names::EXECUTION_LATENCY, "venue" => venue.clone(), "stage" => "received_to_outcome")
            .record(received.elapsed().as_secs_f64());
        match f.status {
            FillStatus::Filled => {
                metrics::counter!(names::FILLS, "venue" => venue.clone(), "side" => f.side.as_str())
                    .increment(1);
                alerts::notify(
                    alerts::Kind::Fill,
                    f.intent_id.clone(),
                    format!(
                        "{} {} {} at {} on {} ({})",
                        f.side.as_str(),
                        f.quantity.round_dp(6),
                        f.token,
                        f.price.round_dp(8),
                        f.venue,
                        f.reason
                    ),
                );
                if let Some(q) = f.quoted_price.filter(|q| !q.is_zero()) {
                    let bps = super::book::slippage_bps(f.side, f.price, q);
                    use rust_decimal::prelude::ToPrimitive;
                    metrics::histogram!(names::SLIPPAGE, "venue" => venue)
                        .record(bps.to_f64().unwrap_or(0.0));
                }
            }
            FillStatus::Rejected => {
                let class = super::reasons::class(&f.reason);
                metrics::counter!(names::REJECTS, "venue" => venue, "reason" => class).increment(1);
                alerts::notify(
                    alerts::Kind::Reject,
                    format!("{class} {}", f.token),
                    format!("refused {} {}: {}", f.side.as_str(), f.token, f.reason),
                );
            }
        }
        self.export_state();
    }

    /// The book and the ladder as gauges, and the breakers' readiness check.
    fn export_state(&self) {
        let Some(g) = self.guard.as_ref() else {
            health().set("breakers", true, "no capital ladder");
            return;
        };
        g.export_gauges();
        let held = g.entries_held(self.now());
        health().set(
            "breakers",
            held.is_none(),
            held.unwrap_or_else(|| "closed: entries allowed".into()),
        );
    }
}
