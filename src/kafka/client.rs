//! Every Kafka client hypeflow makes starts from here, so the settings they share (bootstrap, librdkafka debug
//! contexts, manual offset commits, group timeouts) are written once and each caller adds only what is its own.

use rdkafka::config::ClientConfig;

/// Bootstrap servers, and librdkafka's own debug contexts from `HYPEFLOW_KAFKA_DEBUG` (e.g. "fetch,broker"),
/// logged through HYPEFLOW_LOG.
pub fn base(brokers: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    if let Ok(contexts) = std::env::var("HYPEFLOW_KAFKA_DEBUG") {
        cfg.set("debug", contexts);
    }
    cfg.set("bootstrap.servers", brokers);
    cfg
}

/// A consumer that commits its offsets itself (after its output is safe), never automatically.
pub fn consumer(brokers: &str, group: &str) -> ClientConfig {
    let mut cfg = base(brokers);
    cfg.set("group.id", group)
        .set("enable.auto.commit", "false");
    cfg
}

/// A member of a consumer group that shares a topic's partitions (executors, the scoring stage): from the
/// start of what the group has not committed, and quick to notice a member that is gone.
pub fn group_member(brokers: &str, group: &str) -> ClientConfig {
    let mut cfg = consumer(brokers, group);
    cfg.set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500");
    cfg
}

/// An idempotent producer (acks from all replicas, lz4) that batches for `linger_ms`.
pub fn producer(brokers: &str, linger_ms: u32) -> ClientConfig {
    let mut cfg = base(brokers);
    cfg.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", linger_ms.to_string())
        .set("batch.num.messages", "10000")
        .set("message.timeout.ms", "30000");
    cfg
}
