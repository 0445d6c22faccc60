//! `hypeflow ctl pause|resume|kill|flatten|promote|status`: a signed command on `control.commands`, and the
//! executor's reply from `control.replies`.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use hypeflow::execution::control::{self, Action, Command, Reply};
use hypeflow::kafka::{envelope, topics};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, ValueEnum)]
enum ActionArg {
    Pause,
    Resume,
    Kill,
    Flatten,
    Promote,
    Status,
}

#[derive(Args)]
pub struct CtlArgs {
    /// What the executors are to do
    #[arg(value_enum)]
    action: ActionArg,
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    brokers: String,
    /// Why (journaled with the command)
    #[arg(long, default_value = "")]
    reason: String,
    /// The phase to promote to
    #[arg(long, required_if_eq("action", "promote"))]
    to: Option<String>,
    /// Promote over failing gates (recorded)
    #[arg(long)]
    force: bool,
    /// Who sends it (journaled)
    #[arg(long, env = "USER", default_value = "operator")]
    issuer: String,
    /// Seconds to wait for an executor's reply
    #[arg(long, default_value_t = 30)]
    wait: u64,
}

pub fn run(a: CtlArgs) -> Result<()> {
    let secret = std::env::var(control::SECRET_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .with_context(|| {
            format!(
                "{} is not set: export the secret the executors share",
                control::SECRET_ENV
            )
        })?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut cmd = Command {
        id: format!("{now}-{}", std::process::id()),
        action: match a.action {
            ActionArg::Pause => Action::Pause,
            ActionArg::Resume => Action::Resume,
            ActionArg::Kill => Action::Kill,
            ActionArg::Flatten => Action::Flatten,
            ActionArg::Promote => Action::Promote,
            ActionArg::Status => Action::Status,
        },
        reason: a.reason,
        to: a.to,
        force: a.force,
        issued_at: now,
        issuer: a.issuer,
        hmac: String::new(),
    };
    cmd.sign(secret.as_bytes());
    let replies = listen(&a.brokers)?;
    let mut p = hypeflow::kafka::publish::Publisher::immediate(&a.brokers)?;
    p.send_until_acked(
        &topics::name("control.commands"),
        &cmd.id,
        &envelope::encode("command", &cmd),
        now,
    )?;
    let reply = wait_for(&replies, &cmd.id, Duration::from_secs(a.wait))?;
    println!("{}", reply.message);
    if let Some(s) = &reply.status {
        println!("{}", serde_json::to_string_pretty(s)?);
    }
    if !reply.ok {
        bail!("the executor did not do it: {}", reply.message);
    }
    Ok(())
}

/// A reader of every partition of `control.replies` from its current end, made before the command goes out.
fn listen(brokers: &str) -> Result<BaseConsumer> {
    let topic = topics::name("control.replies");
    let c: BaseConsumer = hypeflow::kafka::client::base(brokers)
        .set("group.id", topics::name("hypeflow-ctl"))
        .set("enable.auto.commit", "false")
        .create()
        .with_context(|| format!("cannot reach Kafka at {brokers}"))?;
    let missing = || format!("cannot read {topic} (create the topics: hypeflow topics create)");
    let md = c
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .with_context(missing)?;
    let mut tpl = TopicPartitionList::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        let (_, high) = c
            .fetch_watermarks(&topic, p.id(), Duration::from_secs(10))
            .with_context(missing)?;
        tpl.add_partition_offset(&topic, p.id(), Offset::Offset(high))?;
    }
    if tpl.count() == 0 {
        bail!("{}", missing());
    }
    c.assign(&tpl)?;
    Ok(c)
}

fn wait_for(c: &BaseConsumer, id: &str, wait: Duration) -> Result<Reply> {
    let start = Instant::now();
    while start.elapsed() < wait {
        let Some(Ok(m)) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        if let Ok(r) = envelope::decode::<Reply>("reply", m.payload().unwrap_or_default()) {
            if r.command_id == id {
                return Ok(r);
            }
        }
    }
    bail!(
        "no executor answered command {id} within {} s: is one running with {} set to the same secret?",
        wait.as_secs(),
        control::SECRET_ENV
    )
}
