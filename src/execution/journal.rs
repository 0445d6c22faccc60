//! The executor's journal: one row per intent id, in SQLite (WAL, synchronous=FULL). Claiming an id is an
//! `INSERT OR IGNORE` on the primary key, so among any number of executor processes sharing the file exactly one
//! executes an intent, whatever Kafka redelivers. An outcome is journaled before it is published and before the
//! intent's offset is committed; on restart, unpublished outcomes are published again.
//!
//! On chain an intent moves received -> simulated -> signed -> broadcast -> filled (confirmed) or failed, and
//! every signed transaction (raw bytes, hash, account, nonce) is journaled, synchronously, before it is
//! broadcast: after a crash the executor finds it here and resolves it on chain instead of signing a second
//! swap.

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

/// A token's bar close on the pipeline's bar grid, as the paper venue saw it on `market.ticks`: the live
/// book marks its positions with these, at the times the backtest marks its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BarMark {
    pub open: i64,
    pub close: i64,
    pub token: String,
    pub price: rust_decimal::Decimal,
}

/// A signed transaction as journaled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRow {
    pub tx_hash: String,
    pub intent_id: String,
    pub chain_id: u64,
    pub account: String,
    pub nonce: u64,
    /// EIP-2718 bytes, hex.
    pub raw_tx: String,
    pub state: TxState,
}

impl TxRow {
    /// From the columns tx_hash, intent_id, chain_id, account, nonce, raw_tx, state (in that order, first).
    fn from_row(r: &rusqlite::Row) -> rusqlite::Result<TxRow> {
        Ok(TxRow {
            tx_hash: r.get(0)?,
            intent_id: r.get(1)?,
            chain_id: r.get::<_, i64>(2)? as u64,
            account: r.get(3)?,
            nonce: r.get::<_, i64>(4)? as u64,
            raw_tx: r.get(5)?,
            state: {
                let text: String = r.get(6)?;
                TxState::parse(&text).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        6,
                        rusqlite::types::Type::Text,
                        format!("unknown transaction state {text:?}").into(),
                    )
                })?
            },
        })
    }
}

/// A swap offered to a browser wallet: enough to find it on chain whatever the page reported (the wallet
/// picks the nonce and may re-price it, never the call).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferRow {
    pub intent_id: String,
    pub account: String,
    pub to: String,
    /// The calldata, hex.
    pub input: String,
    /// The head when it was offered: the wallet's transaction is in a later block.
    pub from_block: u64,
    /// The router's deadline (unix seconds): after it the swap cannot execute.
    pub deadline: u64,
}

impl OfferRow {
    /// From the columns intent_id, account, to_addr, input, from_block, deadline (in that order, first).
    fn from_row(r: &rusqlite::Row) -> rusqlite::Result<OfferRow> {
        Ok(OfferRow {
            intent_id: r.get(0)?,
            account: r.get(1)?,
            to: r.get(2)?,
            input: r.get(3)?,
            from_block: r.get::<_, i64>(4)? as u64,
            deadline: r.get::<_, i64>(5)? as u64,
        })
    }
}

/// Where an intent stands. Stored as its name, so journals written before these enums read the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Claimed by an executor; nothing done yet.
    Received,
    /// The exact transaction simulated; nothing signed.
    Simulated,
    /// A transaction signed and journaled, maybe not broadcast.
    Signed,
    /// A transaction handed to the node.
    Broadcast,
    /// A prepared transaction offered to the user's browser wallet (`--signer browser`): it may be sent by the
    /// wallet at any moment until its deadline, so it is never prepared or offered again.
    Offered,
    Filled,
    /// Refused before anything was signed.
    Rejected,
    /// A transaction went out and did not swap.
    Failed,
}

/// Where one signed transaction stands (an intent may have several: replacements).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxState {
    Signed,
    Broadcast,
    /// The node refused it: nothing went out.
    NotSent,
    /// Another transaction took its nonce.
    Replaced,
    Confirmed,
    /// Mined and reverted.
    Failed,
}

/// Names as stored in the journal's `state` columns.
macro_rules! named {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}
named!(State { Received = "received", Simulated = "simulated", Signed = "signed", Broadcast = "broadcast", Offered = "offered", Filled = "filled", Rejected = "rejected", Failed = "failed" });
named!(TxState { Signed = "signed", Broadcast = "broadcast", NotSent = "not-sent", Replaced = "replaced", Confirmed = "confirmed", Failed = "failed" });

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
            );
            CREATE TABLE IF NOT EXISTS txs (
                tx_hash TEXT PRIMARY KEY,
                intent_id TEXT NOT NULL,
                chain_id INTEGER NOT NULL,
                account TEXT NOT NULL,
                nonce INTEGER NOT NULL,
                raw_tx TEXT NOT NULL,
                state TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS txs_by_intent ON txs (intent_id);
            CREATE TABLE IF NOT EXISTS control_commands (
                id TEXT PRIMARY KEY,
                at INTEGER NOT NULL,
                command_json TEXT NOT NULL,
                reply_json TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS capital_events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                at INTEGER NOT NULL,
                event_json TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS marks (
                close INTEGER NOT NULL,
                token TEXT NOT NULL,
                open INTEGER NOT NULL,
                price TEXT NOT NULL,
                PRIMARY KEY (close, token)
            );
            CREATE TABLE IF NOT EXISTS approvals (
                intent_id TEXT PRIMARY KEY,
                account TEXT NOT NULL,
                to_addr TEXT NOT NULL,
                input TEXT NOT NULL,
                from_block INTEGER NOT NULL,
                deadline INTEGER NOT NULL,
                state TEXT NOT NULL,
                tx_hash TEXT,
                reason TEXT,
                created_at INTEGER NOT NULL,
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

    /// Rows of (id, JSON) read as `T`; an unreadable stored record is an error naming its id.
    fn json_rows<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<T>, JournalError> {
        let mut st = self.conn.prepare(sql).map_err(self.sql())?;
        let rows = st
            .query_map(p, |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
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
                 VALUES (?1, ?2, ?3, ?7, ?4, ?5, ?6, ?6)",
                params![intent.id, intent.token, intent.side.as_str(), executor, json, now, State::Received.as_str()],
            )
            .map_err(self.sql())?;
        Ok(n == 1)
    }

    /// The outcome of an intent nothing was signed for: `filled` or `rejected` as the fill says.
    pub fn record_outcome(&self, fill: &Fill, now: i64) -> Result<(), JournalError> {
        let state = match fill.status {
            crate::model::FillStatus::Filled => State::Filled,
            crate::model::FillStatus::Rejected => State::Rejected,
        };
        self.record_outcome_as(fill, state, now)
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
        self.json_rows(
            "SELECT id, outcome_json FROM intents WHERE published = 0 AND outcome_json IS NOT NULL ORDER BY received_at, id",
            [],
        )
    }

    /// Appends a change of the capital ladder's state (a phase change, a pause, a resume) as JSON.
    pub fn record_capital_event<T: serde::Serialize>(
        &self,
        at: i64,
        event: &T,
    ) -> Result<(), JournalError> {
        let json = serde_json::to_string(event).unwrap_or_default();
        self.conn
            .execute(
                "INSERT INTO capital_events (at, event_json) VALUES (?1, ?2)",
                params![at, json],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// The bar closes the paper venue marked, in one transaction (a repeat of a bar is ignored).
    pub fn record_marks(&self, marks: &[BarMark]) -> Result<(), JournalError> {
        if marks.is_empty() {
            return Ok(());
        }
        let tx = self.conn.unchecked_transaction().map_err(self.sql())?;
        for m in marks {
            tx.execute(
                "INSERT OR IGNORE INTO marks (close, token, open, price) VALUES (?1, ?2, ?3, ?4)",
                params![m.close, m.token, m.open, m.price.to_string()],
            )
            .map_err(self.sql())?;
        }
        tx.commit().map_err(self.sql())
    }

    /// Every bar close marked, oldest first.
    pub fn marks(&self) -> Result<Vec<BarMark>, JournalError> {
        let mut st = self
            .conn
            .prepare("SELECT close, token, open, price FROM marks ORDER BY close, token")
            .map_err(self.sql())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (close, token, open, price) = row.map_err(self.sql())?;
            let price = price.parse().map_err(|e| JournalError::Corrupt {
                path: self.path.clone(),
                id: format!("mark {token} at {close}"),
                message: format!("{e}"),
            })?;
            out.push(BarMark {
                open,
                close,
                token,
                price,
            });
        }
        Ok(out)
    }

    /// Whether an operator command with this id was already obeyed.
    pub fn command_seen(&self, id: &str) -> Result<bool, JournalError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM control_commands WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .map_err(self.sql())?;
        Ok(n > 0)
    }

    /// An obeyed operator command and the reply it got.
    pub fn record_command<C: serde::Serialize, R: serde::Serialize>(
        &self,
        id: &str,
        at: i64,
        command: &C,
        reply: &R,
    ) -> Result<(), JournalError> {
        let (c, r) = (
            serde_json::to_string(command).unwrap_or_default(),
            serde_json::to_string(reply).unwrap_or_default(),
        );
        self.conn
            .execute(
                "INSERT OR IGNORE INTO control_commands (id, at, command_json, reply_json) VALUES (?1, ?2, ?3, ?4)",
                params![id, at, c, r],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Every capital event, oldest first.
    pub fn capital_events<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, JournalError> {
        self.json_rows(
            "SELECT CAST(seq AS TEXT), event_json FROM capital_events ORDER BY seq",
            [],
        )
    }

    /// Every filled outcome with its intent, in fill order (the live book's input).
    pub fn filled(&self) -> Result<Vec<(OrderIntent, Fill)>, JournalError> {
        let mut st = self
            .conn
            .prepare("SELECT id, intent_json, outcome_json FROM intents WHERE state = ?1")
            .map_err(self.sql())?;
        let rows = st
            .query_map([State::Filled.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, intent, outcome) = row.map_err(self.sql())?;
            let corrupt = |e: serde_json::Error| JournalError::Corrupt {
                path: self.path.clone(),
                id: id.clone(),
                message: e.to_string(),
            };
            let intent: OrderIntent = serde_json::from_str(&intent).map_err(corrupt)?;
            let fill: Fill = serde_json::from_str(&outcome).map_err(corrupt)?;
            out.push((intent, fill));
        }
        out.sort_by(|a, b| (a.1.fill_time, &a.1.intent_id).cmp(&(b.1.fill_time, &b.1.intent_id)));
        Ok(out)
    }

    /// Filled outcomes journaled since `since_ms` (the daily limits are rebuilt from them at start).
    pub fn outcomes_since(&self, since_ms: i64) -> Result<Vec<Fill>, JournalError> {
        self.json_rows(
            "SELECT id, outcome_json FROM intents WHERE state = ?2 AND updated_at >= ?1 ORDER BY updated_at",
            params![since_ms, State::Filled.as_str()],
        )
    }

    /// Moves an intent to an intermediate state (`simulated`, `signed`, `broadcast`).
    pub fn set_state(&self, id: &str, state: State, now: i64) -> Result<(), JournalError> {
        self.conn
            .execute(
                "UPDATE intents SET state = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, state.as_str(), now],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// The final outcome of an on-chain intent: `filled` when confirmed, else `rejected` (refused before
    /// anything was signed) or `failed` (a transaction went out and did not swap).
    pub fn record_outcome_as(
        &self,
        fill: &Fill,
        state: State,
        now: i64,
    ) -> Result<(), JournalError> {
        let json = serde_json::to_string(fill).unwrap_or_default();
        self.conn
            .execute(
                "UPDATE intents SET state = ?2, outcome_json = ?3, updated_at = ?4 WHERE id = ?1",
                params![fill.intent_id, state.as_str(), json, now],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// A signed transaction, before it is broadcast; the intent becomes `signed`.
    pub fn record_tx(&self, tx: &TxRow, now: i64) -> Result<(), JournalError> {
        let t = self.conn.unchecked_transaction().map_err(self.sql())?;
        t.execute(
            "INSERT OR REPLACE INTO txs (tx_hash, intent_id, chain_id, account, nonce, raw_tx, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            params![tx.tx_hash, tx.intent_id, tx.chain_id as i64, tx.account, tx.nonce as i64, tx.raw_tx, tx.state.as_str(), now],
        )
        .map_err(self.sql())?;
        t.execute(
            "UPDATE intents SET state = ?3, updated_at = ?2 WHERE id = ?1",
            params![tx.intent_id, now, State::Signed.as_str()],
        )
        .map_err(self.sql())?;
        t.commit().map_err(self.sql())
    }

    pub fn set_tx_state(&self, hash: &str, state: TxState, now: i64) -> Result<(), JournalError> {
        self.conn
            .execute(
                "UPDATE txs SET state = ?2, updated_at = ?3 WHERE tx_hash = ?1",
                params![hash, state.as_str(), now],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Transactions of intents still `signed` or `broadcast` (not resolved), with their intents, oldest first.
    pub fn unresolved_txs(&self) -> Result<Vec<(TxRow, OrderIntent)>, JournalError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT t.tx_hash, t.intent_id, t.chain_id, t.account, t.nonce, t.raw_tx, t.state, i.intent_json
                 FROM txs t JOIN intents i ON i.id = t.intent_id
                 WHERE i.state IN (?1, ?2) ORDER BY t.nonce, t.created_at",
            )
            .map_err(self.sql())?;
        let unresolved = [State::Signed.as_str(), State::Broadcast.as_str()];
        let rows = st
            .query_map(unresolved, |r| {
                Ok((TxRow::from_row(r)?, r.get::<_, String>(7)?))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (tx, json) = row.map_err(self.sql())?;
            let intent = serde_json::from_str(&json).map_err(|e| JournalError::Corrupt {
                path: self.path.clone(),
                id: tx.intent_id.clone(),
                message: e.to_string(),
            })?;
            out.push((tx, intent));
        }
        Ok(out)
    }

    /// A swap offered to the browser wallet, before the page can see it; the intent becomes `offered`.
    pub fn record_offer(&self, o: &OfferRow, now: i64) -> Result<(), JournalError> {
        let t = self.conn.unchecked_transaction().map_err(self.sql())?;
        t.execute(
            "INSERT OR REPLACE INTO approvals (intent_id, account, to_addr, input, from_block, deadline, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'offered', ?7, ?7)",
            params![o.intent_id, o.account, o.to, o.input, o.from_block as i64, o.deadline as i64, now],
        )
        .map_err(self.sql())?;
        t.execute(
            "UPDATE intents SET state = ?3, updated_at = ?2 WHERE id = ?1",
            params![o.intent_id, now, State::Offered.as_str()],
        )
        .map_err(self.sql())?;
        t.commit().map_err(self.sql())
    }

    /// What became of an offer: `sent` with its hash, or `rejected` / `expired` / `unseen` with a reason.
    pub fn answer_offer(
        &self,
        intent_id: &str,
        state: &str,
        tx_hash: Option<&str>,
        reason: Option<&str>,
        now: i64,
    ) -> Result<(), JournalError> {
        self.conn
            .execute(
                "UPDATE approvals SET state = ?2, tx_hash = ?3, reason = ?4, updated_at = ?5 WHERE intent_id = ?1",
                params![intent_id, state, tx_hash, reason, now],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Offers whose intents are still `offered` (the executor stopped while the wallet had them), oldest first.
    pub fn open_offers(&self) -> Result<Vec<(OfferRow, OrderIntent)>, JournalError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT a.intent_id, a.account, a.to_addr, a.input, a.from_block, a.deadline, i.intent_json
                 FROM approvals a JOIN intents i ON i.id = a.intent_id
                 WHERE i.state = ?1 ORDER BY a.created_at",
            )
            .map_err(self.sql())?;
        let rows = st
            .query_map([State::Offered.as_str()], |r| {
                Ok((OfferRow::from_row(r)?, r.get::<_, String>(6)?))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (o, json) = row.map_err(self.sql())?;
            let intent = serde_json::from_str(&json).map_err(|e| JournalError::Corrupt {
                path: self.path.clone(),
                id: o.intent_id.clone(),
                message: e.to_string(),
            })?;
            out.push((o, intent));
        }
        Ok(out)
    }

    /// The journaled offer of an intent, if it was offered to a wallet.
    pub fn offer_of(&self, intent_id: &str) -> Result<Option<OfferRow>, JournalError> {
        self.conn
            .query_row(
                "SELECT intent_id, account, to_addr, input, from_block, deadline FROM approvals WHERE intent_id = ?1",
                params![intent_id],
                OfferRow::from_row,
            )
            .optional()
            .map_err(self.sql())
    }

    /// Every transaction journaled for an intent (replacements included).
    pub fn txs_of(&self, intent_id: &str) -> Result<Vec<TxRow>, JournalError> {
        let mut st = self
            .conn
            .prepare("SELECT tx_hash, intent_id, chain_id, account, nonce, raw_tx, state FROM txs WHERE intent_id = ?1 ORDER BY created_at")
            .map_err(self.sql())?;
        let rows = st
            .query_map(params![intent_id], TxRow::from_row)
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    /// The raw state text of an intent (on-chain states included).
    pub fn state_text(&self, id: &str) -> Result<Option<String>, JournalError> {
        self.conn
            .query_row(
                "SELECT state FROM intents WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())
    }

    /// Intents this executor claimed but has no outcome for and signed nothing for (it stopped in between):
    /// safe to execute again from the start.
    pub fn unfinished(&self, executor: &str) -> Result<Vec<OrderIntent>, JournalError> {
        self.json_rows(
            "SELECT id, intent_json FROM intents WHERE state IN (?2, ?3) AND executor = ?1 ORDER BY received_at, id",
            params![executor, State::Received.as_str(), State::Simulated.as_str()],
        )
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
            triggered: None,
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
            quoted_price: None,
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
