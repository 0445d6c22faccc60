//! The live dashboard of `execute --ui-addr` (and `up`): equity and drawdown, open positions with their
//! unrealized PnL, recent fills and rejects with reasons, the capital phase with each gate's progress, the
//! breakers and kill switch, updated every second over server-sent events. Everything shown is read from the
//! executor's journal on its own connection (SQLite WAL: readers never block the executor), so what the page
//! says is what `hypeflow book` and `capital status` would say.
//!
//! Pause, resume and flatten buttons publish the same HMAC-signed commands as `hypeflow ctl`, and only for a
//! request carrying `Authorization: Bearer $HYPEFLOW_UI_TOKEN`; without that token set the page is read-only.

use super::approval::ApprovalQueue;
use super::book::LiveBook;
use super::capital::{self, CapitalConfig};
use super::control::{self, Action, Command};
use super::journal::{Journal, JournalError};
use crate::kafka::{envelope, publish::Publisher, topics};
use crate::model::time::to_rfc3339;
use crate::model::FillStatus;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use rust_decimal::Decimal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The env var holding the bearer token that enables the page's buttons.
pub const TOKEN_ENV: &str = "HYPEFLOW_UI_TOKEN";
/// Points of the equity curve sent to the page (evenly thinned, the last one kept).
const CURVE_POINTS: usize = 400;
/// Recent outcomes listed.
const RECENT: usize = 50;

#[derive(Clone)]
pub struct DashboardSpec {
    pub journal: PathBuf,
    /// The capital ladder, when the executor runs under one.
    pub capital: Option<CapitalConfig>,
    /// The starting capital of a pipeline's book without a ladder (the pipeline's initial equity).
    pub book_capital: Decimal,
    pub brokers: String,
    /// Bearer token of the buttons and the control secret that signs their commands.
    pub control: Option<(String, String)>,
    /// Source freshness and per-token sentiment, when the topics could be read.
    pub market: Option<Arc<std::sync::Mutex<super::market_view::MarketView>>>,
    /// The wallet-approval queue of `execute --signer browser`, and the bearer token its answers need
    /// (HYPEFLOW_UI_TOKEN, when set).
    pub approvals: Option<(Arc<ApprovalQueue>, Option<String>)>,
}

/// Everything the page shows, as of `now`.
pub fn state(spec: &DashboardSpec, now: i64) -> Result<serde_json::Value, JournalError> {
    let journal = Journal::open(&spec.journal)?;
    let books = LiveBook::from_journal(&journal, spec.book_capital)?;
    let pipelines: Vec<serde_json::Value> = books
        .iter()
        .map(|b| {
            let mut v = serde_json::to_value(b.view()).unwrap_or_default();
            v["curve"] = thin(&b.curve);
            v
        })
        .collect();
    let mut recent = journal.outcomes_since(0)?;
    recent.sort_by_key(|f| std::cmp::Reverse(f.fill_time));
    recent.truncate(RECENT);
    let recent: Vec<serde_json::Value> = recent
        .iter()
        .map(|f| {
            serde_json::json!({
                "time": to_rfc3339(f.fill_time), "token": f.token, "side": f.side.as_str(),
                "status": if f.status == FillStatus::Filled { "filled" } else { "rejected" },
                "quantity": f.quantity, "price": f.price, "quoted_price": f.quoted_price,
                "reason": f.reason, "class": super::reasons::class(&f.reason), "venue": f.venue,
            })
        })
        .collect();
    let ladder = match &spec.capital {
        Some(cfg) => {
            let (book, _, st) = capital::load(cfg, &journal, now)?;
            let gates = capital::gates(cfg, &book, &st, now);
            serde_json::json!({
                "phase": cfg.phases[st.phase].name, "venue": cfg.phases[st.phase].venue.as_str(),
                "phase_since": to_rfc3339(st.phase_since),
                "paused": st.paused.map(|(s, u)| serde_json::json!({"since": to_rfc3339(s), "until": u.map(to_rfc3339), "reason": st.pause_reason})),
                "killed": st.killed.map(to_rfc3339),
                "equity": book.equity(), "drawdown": capital::drawdown(&book, &st).round_dp(6),
                "gates": gates,
            })
        }
        None => serde_json::Value::Null,
    };
    let market = spec
        .market
        .as_ref()
        .and_then(|m| m.lock().ok().map(|m| m.to_json(now)))
        .unwrap_or(serde_json::Value::Null);
    Ok(serde_json::json!({
        "market": market,
        "updated": to_rfc3339(now),
        "fills": journal.filled()?.len(),
        "pipelines": pipelines,
        "recent": recent,
        "ladder": ladder,
        "controls": spec.control.is_some(),
    }))
}

/// At most [`CURVE_POINTS`] of the curve as `[[rfc3339, equity], ...]`.
fn thin(curve: &[(i64, Decimal)]) -> serde_json::Value {
    let step = curve.len().div_ceil(CURVE_POINTS).max(1);
    let mut pts: Vec<&(i64, Decimal)> = curve.iter().step_by(step).collect();
    if let Some(last) = curve.last() {
        if pts.last().is_none_or(|p| p.0 != last.0) {
            pts.push(last);
        }
    }
    serde_json::Value::Array(
        pts.iter()
            .map(|(t, e)| serde_json::json!([to_rfc3339(*t), e]))
            .collect(),
    )
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The spec and the last state computed: however many pages are open, the journal is read at most once a
/// second (each read replays the journal into the books, work the executor's machine should not multiply).
struct Served {
    spec: DashboardSpec,
    last: tokio::sync::Mutex<Option<(std::time::Instant, serde_json::Value)>>,
}

type Shared = Arc<Served>;

/// The page, its state, its event stream and its buttons.
pub fn routes(spec: DashboardSpec) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/state", get(state_json))
        .route("/api/events", get(events))
        .route("/api/control/{action}", post(control_cmd))
        .route("/api/approvals", get(approvals_json))
        .route("/api/approvals/{id}/{verb}", post(approval_answer))
        .with_state(Arc::new(Served {
            spec,
            last: tokio::sync::Mutex::new(None),
        }))
}

const PAGE: &str = include_str!("dashboard.html");

/// The state, from the cache while it is younger than a second.
async fn current(served: &Shared) -> Result<serde_json::Value, String> {
    let mut last = served.last.lock().await;
    if let Some((at, v)) = last.as_ref() {
        if at.elapsed() < Duration::from_secs(1) {
            return Ok(v.clone());
        }
    }
    let s = served.clone();
    let v = tokio::task::spawn_blocking(move || state(&s.spec, now_ms()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("journal: {e}"))?;
    *last = Some((std::time::Instant::now(), v.clone()));
    Ok(v)
}

async fn state_json(State(served): State<Shared>) -> impl IntoResponse {
    match current(&served).await {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

/// The state once a second, sent only when it changed (a comment keeps the connection alive otherwise).
async fn events(
    State(served): State<Shared>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let start = (served, String::new(), true);
    let stream = futures_util::stream::unfold(start, |(served, last, first)| async move {
        // a busy journal changes every time: without the pause a page would recompute without rest
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        loop {
            let text = current(&served).await.ok().map(|mut v| {
                v["updated"] = serde_json::Value::Null;
                v.to_string()
            });
            match text {
                Some(t) if t != last => {
                    return Some((
                        Ok(Event::default().event("state").data(t.clone())),
                        (served, t, false),
                    ));
                }
                _ => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn control_cmd(
    State(served): State<Shared>,
    UrlPath(action): UrlPath<String>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let spec = &served.spec;
    let Some((token, secret)) = spec.control.clone() else {
        return (
            StatusCode::FORBIDDEN,
            format!(
                "read-only: set {TOKEN_ENV} and {} to enable the buttons\n",
                control::SECRET_ENV
            ),
        );
    };
    if !authorized(&headers, &token) {
        return (
            StatusCode::UNAUTHORIZED,
            "a bearer token is needed\n".into(),
        );
    }
    let action = match action.as_str() {
        "pause" => Action::Pause,
        "resume" => Action::Resume,
        "flatten" => Action::Flatten,
        other => {
            return (
                StatusCode::NOT_FOUND,
                format!("no action {other:?}: pause, resume or flatten\n"),
            )
        }
    };
    let brokers = spec.brokers.clone();
    let sent = tokio::task::spawn_blocking(move || send(&brokers, action, &secret)).await;
    match sent {
        Ok(Ok(id)) => (StatusCode::ACCEPTED, format!("{id}\n")),
        Ok(Err(e)) => (StatusCode::BAD_GATEWAY, format!("{e}\n")),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// A signed command on `control.commands`, as `hypeflow ctl` sends it; its id.
fn send(brokers: &str, action: Action, secret: &str) -> Result<String, String> {
    let now = now_ms();
    let mut cmd = Command {
        id: format!("ui-{now}-{}", std::process::id()),
        action,
        reason: "dashboard".into(),
        to: None,
        force: false,
        issued_at: now,
        issuer: "dashboard".into(),
        hmac: String::new(),
    };
    cmd.sign(secret.as_bytes());
    let mut p = Publisher::immediate(brokers).map_err(|e| e.to_string())?;
    p.send_until_acked(
        &topics::name("control.commands"),
        &cmd.id,
        &envelope::encode("command", &cmd),
        now,
    )
    .map_err(|e| e.to_string())?;
    Ok(cmd.id)
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
}

/// The open approvals, the account the wallet must connect and the chain it must be on.
async fn approvals_json(State(served): State<Shared>) -> impl IntoResponse {
    Json(match &served.spec.approvals {
        Some((q, token)) => serde_json::json!({
            "enabled": true,
            "account": format!("{:#x}", q.account),
            "chain_id": format!("{:#x}", q.chain_id),
            "auth": token.is_some(),
            "open": q.list(),
            "now": now_ms(),
        }),
        None => serde_json::json!({"enabled": false}),
    })
}

/// `claim` {account} (the transaction to send), `sent` {hash} or `reject` {reason} for one approval.
async fn approval_answer(
    State(served): State<Shared>,
    UrlPath((id, verb)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    use super::approval::ApprovalError as E;
    let Some((q, token)) = &served.spec.approvals else {
        return (
            StatusCode::NOT_FOUND,
            "this executor signs with its own key (--signer local): there is nothing to approve\n",
        )
            .into_response();
    };
    if token.as_deref().is_some_and(|t| !authorized(&headers, t)) {
        return (
            StatusCode::UNAUTHORIZED,
            format!("a bearer token ({TOKEN_ENV}) is needed to answer approvals\n"),
        )
            .into_response();
    }
    let field = |k: &str| -> String {
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get(k).and_then(|x| x.as_str()).map(str::to_string))
            .unwrap_or_default()
    };
    let done = match verb.as_str() {
        "claim" => match q.claim(&id, &field("account"), now_ms()) {
            Ok(tx) => return (StatusCode::OK, Json(tx)).into_response(),
            Err(e) => Err(e),
        },
        "sent" => q.sent(&id, &field("hash")),
        "reject" => q.reject(&id, &field("reason")),
        other => {
            return (
                StatusCode::NOT_FOUND,
                format!("no answer {other:?}: claim, sent or reject\n"),
            )
                .into_response()
        }
    };
    match done {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()).into_response(),
        Err(e) => {
            let code = match e {
                E::NotFound(_) => StatusCode::NOT_FOUND,
                E::Expired { .. } => StatusCode::GONE,
                E::BadAccount(_) | E::BadHash(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::CONFLICT,
            };
            (code, format!("{e}\n")).into_response()
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
