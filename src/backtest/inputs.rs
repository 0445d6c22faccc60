//! Loading history files: tweets JSONL, ticks JSONL, bars CSV and freqtrade/ccxt JSON. Input need not be
//! sorted. Bad records go to the dead-letter list with file, line and reason; only problems that make the whole
//! input meaningless (missing file, wrong CSV header, nothing valid at all) are errors.

use crate::dataflow::input::{check_post, check_scored, check_tick, DeadLetter, InputEvent};
use crate::dataflow::records::{BarRec, TickRec, TweetRec};
use crate::model::money::{f64_to_decimal, parse_decimal};
use crate::model::time::{format_duration_ms, parse_time, Millis};
use crate::model::{Bar, PriceTick, Tweet};
use crate::model::{Invalid, TokenTable};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is empty: it has no records to replay")]
    Empty { path: String },
    #[error("{path} line {line}: {message}")]
    Fatal {
        path: String,
        line: u64,
        message: String,
    },
    #[error("{path}: no valid records ({rejected} rejected; the first: {first})")]
    NothingValid {
        path: String,
        rejected: usize,
        first: String,
    },
    #[error("cannot tell the bar interval: {0}; pass --bar-interval (e.g. --bar-interval 5m)")]
    Interval(Invalid),
    #[error(
        "{path}: unsupported price file (want .jsonl ticks, .csv bars or .json freqtrade candles)"
    )]
    Format { path: String },
}

#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub events: Vec<InputEvent>,
    pub dead: Vec<DeadLetter>,
    pub bar_interval: Millis,
    pub ticks: usize,
    pub bars: usize,
    pub tweets: usize,
    pub first_time: Option<Millis>,
    pub last_time: Option<Millis>,
    /// How long the event-time sort took (the rest of the load is reading, parsing and checking).
    pub sort_time: std::time::Duration,
}

/// A span of event time: `from` inclusive, `to` exclusive, either open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub from: Option<Millis>,
    pub to: Option<Millis>,
}

impl Span {
    pub fn new(from: Millis, to: Millis) -> Self {
        Span {
            from: Some(from),
            to: Some(to),
        }
    }

    pub fn is_all(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    /// Whether an input event lies in the span; a bar only when its whole interval does (it opens at or after
    /// `from` and closes by `to`), so a cut never keeps half a bar's ticks' worth of a bar.
    pub fn holds(&self, e: &InputEvent) -> bool {
        let (start, end) = match e {
            InputEvent::Bar(b) => (b.open_time, b.close_time() - 1),
            other => (other.time(), other.time()),
        };
        self.from.is_none_or(|f| start >= f) && self.to.is_none_or(|t| end < t)
    }
}

impl Loaded {
    /// What `span` keeps: the whole load itself when it keeps everything (no copy), else `within`.
    pub fn restricted_to(self, span: Span) -> Loaded {
        if span.is_all() {
            self
        } else {
            self.within(span)
        }
    }

    /// The events in `span`, the counts and first/last times of what is kept.
    pub fn within(&self, span: Span) -> Loaded {
        let events: Vec<InputEvent> = self
            .events
            .iter()
            .filter(|e| span.holds(e))
            .cloned()
            .collect();
        let count = |f: fn(&InputEvent) -> bool| events.iter().filter(|e| f(e)).count();
        Loaded {
            ticks: count(|e| matches!(e, InputEvent::Tick(_))),
            bars: count(|e| matches!(e, InputEvent::Bar(_))),
            tweets: count(|e| matches!(e, InputEvent::Tweet(_))),
            first_time: events.first().map(|e| e.time()),
            last_time: events.last().map(|e| e.time()),
            events,
            dead: self.dead.clone(),
            bar_interval: self.bar_interval,
            sort_time: self.sort_time,
        }
    }
}

/// Where to read from, as the CLI got it.
pub struct Sources<'a> {
    pub tweets: Option<&'a Path>,
    /// `tweets` holds scored mentions rather than posts.
    pub scored: bool,
    pub prices: &'a Path,
    pub bar_interval: Option<Millis>,
    pub tick_bar_interval: Millis,
}

fn truncate(s: &str) -> String {
    if s.len() > 2_000 {
        let mut end = 2_000;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_string()
    }
}

struct Rejects<'a> {
    dead: &'a mut Vec<DeadLetter>,
    file: String,
    file_index: usize,
}

impl Rejects<'_> {
    /// A line's text; None for a blank line, and for one that is not UTF-8 (dead-lettered here).
    fn text<'l>(&mut self, line: u64, l: &'l Line) -> Option<&'l str> {
        match l {
            Ok(t) if t.trim().is_empty() => None,
            Ok(t) => Some(t),
            Err(lossy) => {
                self.reject(line, NOT_UTF8, lossy);
                None
            }
        }
    }

    fn reject(&mut self, line: u64, reason: impl Into<String>, raw: &str) {
        self.dead.push(DeadLetter {
            file: self.file.clone(),
            line,
            reason: reason.into(),
            raw: truncate(raw),
        });
    }
}

/// A file without one valid record: how many were refused and why the first was (a fatal error writes no
/// output folder, so the reason is said here).
fn nothing_valid(path: String, refused: &[DeadLetter]) -> InputError {
    InputError::NothingValid {
        path,
        rejected: refused.len(),
        first: refused.first().map_or_else(
            || "no record at all".into(),
            |d| format!("line {}: {}", d.line, d.reason),
        ),
    }
}

/// A file's bytes: gunzipped when it is gzip (by its magic bytes, whatever its name), without a leading
/// UTF-8 byte-order mark.
fn read_input(path: &Path) -> Result<Vec<u8>, InputError> {
    let io = |source| InputError::Io {
        path: path.display().to_string(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let mut bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    if bytes.starts_with(b"\xef\xbb\xbf") {
        bytes.drain(..3);
    }
    Ok(bytes)
}

/// A line of a text file, or its bytes shown lossily when they are not UTF-8 (dead-lettered, not fatal).
type Line = Result<String, String>;

fn open_lines(path: &Path) -> Result<Vec<Line>, InputError> {
    let bytes = read_input(path)?;
    let lines: Vec<Line> = bytes
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .map(|l| String::from_utf8(l.to_vec()).map_err(|_| String::from_utf8_lossy(l).into_owned()))
        .collect();
    if lines
        .iter()
        .all(|l| l.as_ref().is_ok_and(|t| t.trim().is_empty()))
    {
        return Err(InputError::Empty {
            path: path.display().to_string(),
        });
    }
    Ok(lines)
}

const NOT_UTF8: &str = "the line is not UTF-8 text";

/// One record a line, each checked (a bad or duplicate record is dead-lettered with its line); an error only when
/// the file is missing, empty or holds nothing valid. `check` returns the record's identity (for duplicates) or
/// why it is refused; `duplicate` says what a repeat is.
fn load_jsonl<T, K>(
    path: &Path,
    dead: &mut Vec<DeadLetter>,
    what: &str,
    check: impl Fn(&T) -> Result<K, Invalid>,
    duplicate: impl Fn(&T) -> String,
) -> Result<Vec<T>, InputError>
where
    T: serde::de::DeserializeOwned,
    K: std::hash::Hash + Eq,
{
    let lines = open_lines(path)?;
    let mut sink = Rejects {
        dead,
        file: path.display().to_string(),
        file_index: 0,
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let before = sink.dead.len();
    for (i, line) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        let Some(line) = sink.text(n, line) else {
            continue;
        };
        match serde_json::from_str::<T>(line) {
            Ok(r) => match check(&r) {
                Ok(key) => {
                    if seen.insert(key) {
                        out.push(r);
                    } else {
                        sink.reject(n, duplicate(&r), line);
                    }
                }
                Err(why) => sink.reject(n, why, line),
            },
            Err(e) => sink.reject(n, format!("not a valid {what}: {e}"), line),
        }
    }
    if out.is_empty() {
        return Err(nothing_valid(sink.file, &sink.dead[before..]));
    }
    Ok(out)
}

/// Scored mentions as `hypeflow score` writes them, one (post, token) per line.
pub fn load_scored(
    path: &Path,
    dead: &mut Vec<DeadLetter>,
) -> Result<Vec<crate::model::ScoredMention>, InputError> {
    load_jsonl(
        path,
        dead,
        "scored mention",
        |m: &crate::model::ScoredMention| {
            check_scored(m).map(|()| (m.tweet_id.clone(), m.token.clone()))
        },
        |m| format!("duplicate mention of {} in post {}", m.token, m.tweet_id),
    )
}

pub fn load_tweets(path: &Path, dead: &mut Vec<DeadLetter>) -> Result<Vec<Tweet>, InputError> {
    load_jsonl(
        path,
        dead,
        "tweet",
        |t: &Tweet| check_post(t).map(|()| t.id.clone()),
        |t| format!("duplicate tweet id {}", t.id),
    )
}

pub fn load_ticks(
    path: &Path,
    table: &TokenTable,
    dead: &mut Vec<DeadLetter>,
) -> Result<Vec<TickRec>, InputError> {
    let lines = open_lines(path)?;
    let mut sink = Rejects {
        dead,
        file: path.display().to_string(),
        file_index: 0,
    };
    let before = sink.dead.len();
    let mut seen: HashSet<(u32, i64, Decimal, Decimal)> = HashSet::new();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        let Some(line) = sink.text(n, line) else {
            continue;
        };
        let tick: PriceTick = match serde_json::from_str(line) {
            Ok(t) => t,
            Err(e) => {
                sink.reject(n, format!("not a valid price tick: {e}"), line);
                continue;
            }
        };
        match check_tick(&tick.token, tick.price, tick.volume, tick.event_time, table) {
            Ok(id) => {
                if !seen.insert((id, tick.event_time, tick.price, tick.volume)) {
                    sink.reject(
                        n,
                        "duplicate tick (same token, time, price and volume)",
                        line,
                    );
                } else {
                    out.push(TickRec {
                        token: id,
                        time: tick.event_time,
                        seq: 0,
                        price: tick.price,
                        volume: tick.volume,
                    });
                }
            }
            Err(reason) => sink.reject(n, reason, line),
        }
    }
    if out.is_empty() {
        return Err(nothing_valid(sink.file, &sink.dead[before..]));
    }
    Ok(out)
}

/// Bars before their interval is known: (token, open time, o, h, l, c, v, line).
type RawBar = (u32, Millis, [Decimal; 5], u64, String, usize);

fn load_bar_csv(
    path: &Path,
    table: &TokenTable,
    sink: &mut Rejects,
) -> Result<Vec<RawBar>, InputError> {
    let p = path.display().to_string();
    let bytes = read_input(path)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::Empty { path: p });
    }
    // the csv crate's reading: quoted fields, quotes doubled inside them, CRLF
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(&bytes[..]);
    let want = [
        "token",
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
    ];
    let header: Vec<String> = rd
        .headers()
        .map(|h| h.iter().map(str::to_ascii_lowercase).collect())
        .unwrap_or_default();
    if header != want {
        return Err(InputError::Fatal {
            path: p,
            line: 1,
            message: format!(
                "header is {:?}; bar CSV files need exactly `{}`",
                header.join(","),
                want.join(",")
            ),
        });
    }
    let mut out = Vec::new();
    // line numbers from byte offsets (counted once, forwards): the reader's own count is not the file's
    let mut lines = LineCounter::new(&bytes);
    for rec in rd.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let n = e.position().map_or(0, |pos| lines.at(pos.byte()));
                sink.reject(n, format!("not a CSV row: {e}"), "");
                continue;
            }
        };
        let n = rec.position().map_or(0, |pos| lines.at(pos.byte()));
        let line = rec.iter().collect::<Vec<_>>().join(",");
        if rec.iter().all(str::is_empty) {
            continue;
        }
        match bar_row(&rec, &want, table) {
            Ok((id, time, vals)) => out.push((id, time, vals, n, line, sink.file_index)),
            Err(reason) => sink.reject(n, reason, &line),
        }
    }
    Ok(out)
}

/// 1-based line numbers of byte offsets asked in increasing order.
struct LineCounter<'a> {
    bytes: &'a [u8],
    upto: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            upto: 0,
            line: 1,
        }
    }

    /// The line of the first byte at or after `byte` that is not a line end (after a CRLF the csv reader
    /// reports a record as starting at the LF before it).
    fn at(&mut self, byte: u64) -> u64 {
        let mut to = usize::try_from(byte).map_or(self.bytes.len(), |b| b.min(self.bytes.len()));
        while self
            .bytes
            .get(to)
            .is_some_and(|b| *b == b'\n' || *b == b'\r')
        {
            to += 1;
        }
        if to > self.upto {
            self.line += self.bytes[self.upto..to]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            self.upto = to;
        }
        self.line
    }
}

/// One CSV row's token, open time and values, or why it is refused.
fn bar_row(
    rec: &csv::StringRecord,
    want: &[&str; 7],
    table: &TokenTable,
) -> Result<(u32, Millis, [Decimal; 5]), String> {
    if rec.len() != 7 {
        return Err(format!("expected 7 columns, found {}", rec.len()));
    }
    let time = parse_time(&rec[1]).map_err(|e| e.to_string())?;
    let mut vals = [Decimal::ZERO; 5];
    for (k, v) in rec.iter().skip(2).enumerate() {
        vals[k] = parse_decimal(v).map_err(|e| format!("{}: {e}", want[k + 2]))?;
    }
    let id = table
        .id(&rec[0])
        .ok_or_else(|| format!("token {} is not in the pipeline's universe", &rec[0]))?;
    Ok((id, time, vals))
}

/// Token from a freqtrade/ccxt file name: `BTC_USDT-5m.json`, `btc-usdt.json`, `ETH.json` -> BTC / BTC / ETH.
pub fn token_from_file_name(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    stem.split(['_', '-', '.', '/'])
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

fn load_bar_json(
    path: &Path,
    table: &TokenTable,
    sink: &mut Rejects,
) -> Result<Vec<RawBar>, InputError> {
    let p = path.display().to_string();
    let text = String::from_utf8(read_input(path)?).map_err(|e| InputError::Fatal {
        path: p.clone(),
        line: 0,
        message: format!(
            "not UTF-8 text (byte {}): a JSON file of bars must be",
            e.utf8_error().valid_up_to()
        ),
    })?;
    if text.trim().is_empty() {
        return Err(InputError::Empty { path: p });
    }
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| InputError::Fatal {
            path: p.clone(),
            line: e.line() as u64,
            message: format!("not a JSON array of [ms, open, high, low, close, volume] rows: {e}"),
        })?;
    let sym = token_from_file_name(path);
    let Some(id) = table.id(&sym) else {
        sink.reject(
            0,
            format!("token {sym} (from the file name) is not in the pipeline's universe"),
            &p,
        );
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let n = i as u64 + 1; // row number within the array
        let raw = row.to_string();
        let Some(arr) = row.as_array().filter(|a| a.len() >= 6) else {
            sink.reject(n, "row is not [ms, open, high, low, close, volume]", &raw);
            continue;
        };
        let Some(time) = arr[0].as_i64() else {
            sink.reject(n, "timestamp is not integer milliseconds", &raw);
            continue;
        };
        let mut vals = [Decimal::ZERO; 5];
        let mut ok = true;
        for k in 0..5 {
            let v = &arr[k + 1];
            let d = match v {
                serde_json::Value::String(s) => parse_decimal(s).ok(),
                _ => v.as_f64().and_then(f64_to_decimal),
            };
            match d {
                Some(d) => vals[k] = d,
                None => ok = false,
            }
        }
        if !ok {
            sink.reject(n, "a price or volume is not a finite number", &raw);
            continue;
        }
        out.push((id, time, vals, n, raw, sink.file_index));
    }
    Ok(out)
}

/// Most common gap between consecutive bars of each token; all tokens must agree.
fn infer_interval(raw: &[RawBar]) -> Result<Millis, Invalid> {
    let mut per_token: BTreeMap<u32, Vec<Millis>> = BTreeMap::new();
    for b in raw {
        per_token.entry(b.0).or_default().push(b.1);
    }
    let mut found: Option<Millis> = None;
    for times in per_token.values_mut() {
        times.sort_unstable();
        times.dedup();
        let mut gaps: HashMap<Millis, usize> = HashMap::new();
        for w in times.windows(2) {
            *gaps.entry(w[1] - w[0]).or_default() += 1;
        }
        let Some((&gap, _)) = gaps
            .iter()
            .max_by_key(|(g, c)| (**c, std::cmp::Reverse(**g)))
        else {
            continue;
        };
        match found {
            None => found = Some(gap),
            Some(f) if f != gap => {
                return Err(Invalid(format!(
                    "tokens have different bar intervals ({} and {})",
                    format_duration_ms(f),
                    format_duration_ms(gap)
                )))
            }
            _ => {}
        }
    }
    found.ok_or_else(|| Invalid("no token has two bars".into()))
}

/// A price file's kind from its extension, looking through a `.gz` (read transparently).
fn kind_of(path: &Path) -> &str {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.rsplit_once('.').map_or("", |(_, ext)| ext)
}

fn price_files(path: &Path) -> Result<Vec<PathBuf>, InputError> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|source| InputError::Io {
                path: path.display().to_string(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(kind_of(p), "json" | "jsonl" | "csv"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(InputError::Empty {
                path: path.display().to_string(),
            });
        }
        Ok(files)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

/// The token symbols in the price data (upper case, sorted, each once), for `universe.tokens = "*"`: every
/// tick line's `token`, every bar CSV row's first column, every JSON bar file's name. Records that do not
/// name a usable symbol are skipped here; the load proper dead-letters them with their reason.
pub fn price_symbols(prices: &Path) -> Result<Vec<String>, InputError> {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        token: std::borrow::Cow<'a, str>,
    }
    let mut symbols = std::collections::BTreeSet::new();
    let mut add = |s: &str| {
        if (1..=16).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            symbols.insert(s.to_ascii_uppercase());
        }
    };
    for file in price_files(prices)? {
        match kind_of(&file) {
            "jsonl" => {
                for line in read_input(&file)?.split(|b| *b == b'\n') {
                    if let Ok(n) = serde_json::from_slice::<Named>(line) {
                        add(&n.token);
                    }
                }
            }
            "csv" => {
                // only the first field, as bytes, and only when it changes (a token's rows are usually
                // together): this pass is a fraction of the load that follows, not a second one
                let bytes = read_input(&file)?;
                let mut rd = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .flexible(true)
                    .from_reader(&bytes[..]);
                let (mut rec, mut last) = (csv::ByteRecord::new(), Vec::new());
                loop {
                    match rd.read_byte_record(&mut rec) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(_) => continue,
                    }
                    let Some(t) = rec.get(0).map(<[u8]>::trim_ascii) else {
                        continue;
                    };
                    if t != last.as_slice() {
                        last = t.to_vec();
                        if let Ok(t) = std::str::from_utf8(t) {
                            add(t);
                        }
                    }
                }
            }
            _ => add(&token_from_file_name(&file)),
        }
    }
    Ok(symbols.into_iter().collect())
}

pub fn load(src: &Sources, table: &TokenTable) -> Result<Loaded, InputError> {
    let mut loaded = Loaded {
        bar_interval: src.tick_bar_interval,
        ..Default::default()
    };
    let mut raw_bars: Vec<RawBar> = Vec::new();
    let mut bar_files: Vec<String> = Vec::new();
    let mut events: Vec<InputEvent> = Vec::new();
    for file in price_files(src.prices)? {
        let before = loaded.dead.len();
        let ext = kind_of(&file);
        match ext {
            "jsonl" => {
                let ticks = load_ticks(&file, table, &mut loaded.dead)?;
                loaded.ticks += ticks.len();
                events.extend(ticks.into_iter().map(InputEvent::Tick));
            }
            "csv" | "json" => {
                let mut sink = Rejects {
                    dead: &mut loaded.dead,
                    file: file.display().to_string(),
                    file_index: bar_files.len(),
                };
                let got = if ext == "csv" {
                    load_bar_csv(&file, table, &mut sink)?
                } else {
                    load_bar_json(&file, table, &mut sink)?
                };
                if got.is_empty() {
                    return Err(nothing_valid(
                        file.display().to_string(),
                        &loaded.dead[before..],
                    ));
                }
                raw_bars.extend(got);
                bar_files.push(file.display().to_string());
            }
            _ => {
                return Err(InputError::Format {
                    path: file.display().to_string(),
                })
            }
        }
    }
    if !raw_bars.is_empty() {
        let interval = match src.bar_interval {
            Some(i) => i,
            None => infer_interval(&raw_bars).map_err(InputError::Interval)?,
        };
        loaded.bar_interval = interval;
        let bars = checked_bars(raw_bars, &bar_files, interval, table, &mut loaded.dead);
        loaded.bars = bars.len();
        events.extend(bars.into_iter().map(InputEvent::Bar));
    }
    load_posts(src, &mut loaded, &mut events)?;
    // Replay order: event time, then file order (stable), which also fixes every tie-break sequence number.
    let sorting = std::time::Instant::now();
    events.sort_by_key(|e| e.time());
    loaded.sort_time = sorting.elapsed();
    for (i, e) in events.iter_mut().enumerate() {
        e.set_seq(i as u64);
    }
    loaded.first_time = events.first().map(|e| e.time());
    loaded.last_time = events.last().map(|e| e.time());
    loaded.events = events;
    Ok(loaded)
}

/// Bars in (token, time, line) order, each checked against its shape and against the token's previous bar
/// (no duplicates, no overlaps at `interval`); the refused ones go to the dead letters.
fn checked_bars(
    mut raw_bars: Vec<RawBar>,
    bar_files: &[String],
    interval: Millis,
    table: &TokenTable,
    dead: &mut Vec<DeadLetter>,
) -> Vec<BarRec> {
    raw_bars.sort_by_key(|b| (b.0, b.1, b.3));
    let mut last: HashMap<u32, Millis> = HashMap::new();
    let mut events = Vec::new();
    for (token, time, v, line, raw, fidx) in raw_bars {
        let bar = Bar {
            token: table.symbol(token).to_string(),
            open_time: time,
            interval_ms: interval,
            open: v[0],
            high: v[1],
            low: v[2],
            close: v[3],
            volume: v[4],
        };
        let file = bar_files.get(fidx).cloned().unwrap_or_default();
        let mut reject = |reason: String| {
            dead.push(DeadLetter {
                file: file.clone(),
                line,
                reason,
                raw: truncate(&raw),
            })
        };
        if let Err(e) = bar.validate() {
            reject(e.into());
            continue;
        }
        if time < 0 {
            reject("timestamp is before 1970".into());
            continue;
        }
        if let Some(prev) = last.get(&token) {
            if *prev == time {
                reject(format!(
                    "duplicate bar for {} at {}",
                    bar.token,
                    crate::model::time::to_rfc3339(time)
                ));
                continue;
            }
            if time < prev + interval {
                reject(format!(
                    "bar overlaps the previous one (interval {})",
                    format_duration_ms(interval)
                ));
                continue;
            }
        }
        last.insert(token, time);
        events.push(BarRec {
            token,
            open_time: time,
            interval,
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            volume: bar.volume,
        });
    }
    events
}

/// The posts (or scored mentions) file, when the run has one.
fn load_posts(
    src: &Sources,
    loaded: &mut Loaded,
    events: &mut Vec<InputEvent>,
) -> Result<(), InputError> {
    if let (Some(tp), true) = (src.tweets, src.scored) {
        let scored = load_scored(tp, &mut loaded.dead)?;
        loaded.tweets = scored.len();
        events.extend(
            scored
                .into_iter()
                .map(|m| InputEvent::Tweet(TweetRec::scored(0, m))),
        );
    } else if let Some(tp) = src.tweets {
        let tweets = load_tweets(tp, &mut loaded.dead)?;
        loaded.tweets = tweets.len();
        events.extend(
            tweets
                .into_iter()
                .map(|tweet| InputEvent::Tweet(TweetRec::post(0, tweet))),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pipeline::Universe;
    use std::io::Write;

    fn table() -> TokenTable {
        Universe {
            tokens: vec!["BTC".into(), "ETH".into()],
            ..Default::default()
        }
        .token_table()
    }

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p)
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        p
    }

    #[test]
    fn bad_ticks_are_dead_lettered_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "t.jsonl",
            concat!(
                "{\"token\":\"BTC\",\"price\":\"100\",\"volume\":1,\"event_time\":\"2024-01-01T00:00:00Z\"}\n",
                "not json\n",
                "{\"token\":\"DOGE\",\"price\":\"1\",\"event_time\":0}\n",
                "{\"token\":\"BTC\",\"price\":\"-5\",\"event_time\":0}\n",
                "{\"token\":\"BTC\",\"price\":\"NaN\",\"event_time\":0}\n",
                "{\"token\":\"BTC\",\"price\":\"100\",\"volume\":1,\"event_time\":\"2024-01-01T00:00:00Z\"}\n",
                "\n",
                "{\"token\":\"ETH\",\"price\":5,\"event_time\":1}\n",
            ),
        );
        let mut dead = Vec::new();
        let ticks = load_ticks(&p, &table(), &mut dead).unwrap();
        assert_eq!(ticks.len(), 2);
        let lines: Vec<u64> = dead.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
        assert!(dead[1].reason.contains("DOGE"));
        assert!(dead[4].reason.contains("duplicate"));
    }

    #[test]
    fn a_bom_gzip_a_bad_byte_and_quoted_csv_fields_are_read_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let tick = |t: &str| {
            format!("{{\"token\":\"BTC\",\"price\":\"100\",\"volume\":1,\"event_time\":\"{t}\"}}\n")
        };
        // a BOM, then a line with a byte that is not UTF-8 between two good ones
        let mut body = b"\xef\xbb\xbf".to_vec();
        body.extend(tick("2024-01-01T00:00:00Z").as_bytes());
        body.extend(b"{\"token\":\"BTC\xff\"}\n");
        body.extend(tick("2024-01-01T00:01:00Z").as_bytes());
        let p = dir.path().join("t.jsonl");
        std::fs::write(&p, &body).unwrap();
        let mut dead = Vec::new();
        assert_eq!(load_ticks(&p, &table(), &mut dead).unwrap().len(), 2);
        assert_eq!((dead[0].line, dead[0].reason.as_str()), (2, NOT_UTF8));
        // the same gzipped, with .gz on the name: read through
        let gz = dir.path().join("t.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&body).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(kind_of(&gz), "jsonl");
        let mut dead = Vec::new();
        assert_eq!(load_ticks(&gz, &table(), &mut dead).unwrap().len(), 2);
        assert_eq!(dead.len(), 1);
        // CSV with a BOM, CRLF and quoted fields (one with a comma inside: a bad value, one row refused)
        let p = write(
            dir.path(),
            "b.csv",
            "\u{feff}token,timestamp,open,high,low,close,volume\r\n\
             \"BTC\",2024-01-01T00:00:00Z,\"1\",2,0.5,1.5,10\r\n\
             BTC,2024-01-01T00:05:00Z,\"1,5\",2,0.5,1.5,10\r\n\
             BTC,2024-01-01T00:10:00Z,1,2,0.5,1.5,10\r\n",
        );
        let mut dead = Vec::new();
        let mut sink = Rejects {
            dead: &mut dead,
            file: "b.csv".into(),
            file_index: 0,
        };
        let rows = load_bar_csv(&p, &table(), &mut sink).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].line, 3, "{:?}", dead[0]);
        assert!(dead[0].reason.contains("open"), "{}", dead[0].reason);
    }

    #[test]
    fn a_follower_count_of_minus_one_is_unknown_not_a_refused_post() {
        let post = r#"{"id":"1","author_id":"2","followers":-1,"text":"$BTC up","created_at":"2024-01-01T00:00:00Z"}"#;
        let t: Tweet = serde_json::from_str(post).unwrap();
        assert_eq!(t.followers, 0);
        let t: Tweet = serde_json::from_str(&post.replace("-1", "null")).unwrap();
        assert_eq!(t.followers, 0);
        let t: Tweet = serde_json::from_str(&post.replace("-1", "1200")).unwrap();
        assert_eq!(t.followers, 1200);
        assert!(serde_json::from_str::<Tweet>(&post.replace("-1", "1.5")).is_err());
    }

    #[test]
    fn csv_bars_infer_interval_and_reject_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "b.csv",
            "token,timestamp,open,high,low,close,volume\n\
             BTC,2024-01-01T00:10:00Z,1,2,0.5,1.5,10\n\
             BTC,1704067200000,1,2,0.5,1.5,10\n\
             BTC,2024-01-01T00:05:00Z,1,2,0.5,1.5,10\n\
             BTC,2024-01-01T00:15:00Z,1,0.4,0.5,1.5,10\n\
             BTC,2024-01-01T00:05:00Z,1,2,0.5,1.5,10\n",
        );
        let src = Sources {
            tweets: None,
            scored: false,
            prices: &p,
            bar_interval: None,
            tick_bar_interval: 60_000,
        };
        let l = load(&src, &table()).unwrap();
        assert_eq!(l.bar_interval, 300_000);
        assert_eq!(l.bars, 3);
        assert_eq!(l.dead.len(), 2);
        assert!(l
            .dead
            .iter()
            .any(|d| d.reason.contains("high") && d.line == 5));
        assert!(l.dead.iter().any(|d| d.reason.contains("duplicate")));
        // sorted by usability time (close)
        assert!(l.events.windows(2).all(|w| w[0].time() <= w[1].time()));
    }

    #[test]
    fn fatal_problems_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "b.csv", "time,o,h,l,c\n1,2,3,4,5\n");
        let src = Sources {
            tweets: None,
            scored: false,
            prices: &p,
            bar_interval: None,
            tick_bar_interval: 60_000,
        };
        let e = load(&src, &table()).unwrap_err().to_string();
        assert!(
            e.contains("b.csv line 1") && e.contains("token,timestamp"),
            "{e}"
        );
        let p = write(dir.path(), "e.jsonl", "\n");
        let src = Sources {
            tweets: None,
            scored: false,
            prices: &p,
            bar_interval: None,
            tick_bar_interval: 60_000,
        };
        assert!(load(&src, &table())
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }

    #[test]
    fn freqtrade_json_takes_token_from_name() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "ETH_USDT-1h.json",
            "[[0,1,2,0.5,1.5,3],[3600000,1.5,2,1,1.2,3],[7200000,\"x\",1,1,1,1]]",
        );
        let src = Sources {
            tweets: None,
            scored: false,
            prices: dir.path(),
            bar_interval: None,
            tick_bar_interval: 60_000,
        };
        let l = load(&src, &table()).unwrap();
        assert_eq!(l.bars, 2);
        assert_eq!(l.bar_interval, 3_600_000);
        assert_eq!(l.dead.len(), 1);
        assert_eq!(token_from_file_name(Path::new("btc-usdt.json")), "BTC");
    }
}
