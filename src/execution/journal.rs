//! The executor's journal: one row per intent id, in SQLite (WAL, synchronous=FULL). Claiming an id is an
//! `INSERT OR IGNORE` on the primary key, so among any number of executor processes sharing the file exactly one
//! executes an intent, whatever Kafka redelivers. An outcome is journaled before it is published and before the
//! intent's offset is committed; on restart, unpublished outcomes are published again.

use crate::model::{Fill, OrderIntent};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Sql {
        path: String,
        source: rusqlite::Error,
    },
    #[error("journal {path}: stored record for {id} is unreadable: {message}")]
    Corrupt {
        path: String,
        id: String,
        message: String,
    },
}

pub struct Journal {
    conn: Connection,
    path: String,
}

/// Where an intent stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Received,
    Filled,
    Rejected,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Received => "received",
            State::Filled => "filled",
            State::Rejected => "rejected",
        }
    }
    fn parse(s: &str) -> Option<State> {
        match s {
            "received" => Some(State::Received),
            "filled" => Some(State::Filled),
            "rejected" => Some(State::Rejected),
            _ => None,
        }
    }
}

impl Journal {
    /// Opens (creating if needed). Executors starting together race to switch the file to WAL and create the
    /// table; a busy database is retried for up to ten seconds.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Self::try_open(path) {
                Err(JournalError::Sql {
                    source: rusqlite::Error::SqliteFailure(e, _),
                    ..
                }) if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn try_open(path: &Path) -> Result<Self, JournalError> {
        let p = path.display().to_string();
        let err = |source| JournalError::Sql {
            path: p.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS intents (
                id TEXT PRIMARY KEY,
                token TEXT NOT NULL,
                side TEXT NOT NULL,
                state TEXT NOT NULL,
                executor TEXT NOT NULL,
                intent_json TEXT NOT NULL,
                outcome_json TEXT,
                published INTEGER NOT NULL DEFAULT 0,
                received_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            );",
        )
        .map_err(err)?;
        Ok(Journal { conn, path: p })
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> JournalError + '_ {
        move |source| JournalError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// True when this call took the intent (first time anyone saw its id).
    pub fn claim(
        &self,
        intent: &OrderIntent,
        executor: &str,
        now: i64,
    ) -> Result<bool, JournalError> {
        let json = serde_json::to_string(intent).unwrap_or_default();
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO intents (id, token, side, state, executor, intent_json, received_at, updated_at)
                 VALUES (?1, ?2, ?3, 'received', ?4, ?5, ?6, ?6)",
                params![intent.id, intent.token, intent.side.as_str(), executor, json, now],
            )
            .map_err(self.sql())?;
        Ok(n == 1)
    }

    pub fn record_outcome(&self, fill: &Fill, now: i64) -> Result<(), JournalError> {
        let state = match fill.status {
            crate::model::FillStatus::Filled => State::Filled,
            crate::model::FillStatus::Rejected => State::Rejected,
        };
        let json = serde_json::to_string(fill).unwrap_or_default();
        self.conn
            .execute(
                "UPDATE intents SET state = ?2, outcome_json = ?3, updated_at = ?4 WHERE id = ?1",
                params![fill.intent_id, state.as_str(), json, now],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    pub fn mark_published(&self, id: &str) -> Result<(), JournalError> {
        self.conn
            .execute(
                "UPDATE intents SET published = 1 WHERE id = ?1",
                params![id],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Outcomes journaled but not yet acknowledged by the broker.
    pub fn unpublished(&self) -> Result<Vec<Fill>, JournalError> {
        let mut st = self
            .conn
            .prepare("SELECT id, outcome_json FROM intents WHERE published = 0 AND outcome_json IS NOT NULL ORDER BY received_at, id")
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(self.sql())?;
            let f: Fill = serde_json::from_str(&json).map_err(|e| JournalError::Corrupt {
                path: self.path.clone(),
                id,
                message: e.to_string(),
            })?;
            out.push(f);
        }
        Ok(out)
    }

    /// Intents this executor claimed but has no outcome for (it stopped in between).
    pub fn unfinished(&self, executor: &str) -> Result<Vec<OrderIntent>, JournalError> {
        let mut st = self
            .conn
            .prepare("SELECT id, intent_json FROM intents WHERE state = 'received' AND executor = ?1 ORDER BY received_at, id")
            .map_err(self.sql())?;
        let rows = st
            .query_map(params![executor], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(self.sql())?;
            out.push(
                serde_json::from_str(&json).map_err(|e| JournalError::Corrupt {
                    path: self.path.clone(),
                    id,
                    message: e.to_string(),
                })?,
            );
        }
        Ok(out)
    }

    pub fn state(&self, id: &str) -> Result<Option<State>, JournalError> {
        let s: Option<String> = self
            .conn
            .query_row(
                "SELECT state FROM intents WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())?;
        Ok(s.as_deref().and_then(State::parse))
    }

    pub fn count(&self) -> Result<u64, JournalError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM intents", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FillStatus, Protection, Side};

    fn intent(id: &str) -> OrderIntent {
        OrderIntent {
            id: id.into(),
            pipeline_id: "p".into(),
            token: "AXL".into(),
            side: Side::Buy,
            quantity: None,
            notional: Some("100".parse().unwrap()),
            reference_price: "10".parse().unwrap(),
            max_slippage_bps: "50".parse().unwrap(),
            protection: Protection::default(),
            reason: "r".into(),
            decision_time: 0,
            inputs_version: "v".into(),
        }
    }

    #[test]
    fn an_id_is_claimed_once_across_connections_and_outcomes_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let a = Journal::open(&path).unwrap();
        let b = Journal::open(&path).unwrap();
        assert!(a.claim(&intent("x"), "a", 1).unwrap());
        assert!(
            !b.claim(&intent("x"), "b", 2).unwrap(),
            "second executor must not take it"
        );
        assert_eq!(a.unfinished("a").unwrap().len(), 1);
        let fill = Fill {
            intent_id: "x".into(),
            venue: "paper".into(),
            token: "AXL".into(),
            side: Side::Buy,
            quantity: "10".parse().unwrap(),
            price: "10".parse().unwrap(),
            fee: "0.1".parse().unwrap(),
            gas: Default::default(),
            tx_hash: None,
            status: FillStatus::Filled,
            reason: "entry".into(),
            fill_time: 5,
        };
        a.record_outcome(&fill, 3).unwrap();
        drop(a);
        let c = Journal::open(&path).unwrap();
        assert_eq!(c.state("x").unwrap(), Some(State::Filled));
        assert_eq!(c.unpublished().unwrap(), vec![fill]);
        c.mark_published("x").unwrap();
        assert!(c.unpublished().unwrap().is_empty());
        assert!(c.unfinished("a").unwrap().is_empty());
    }
}
