//! Rule-based lexicon scorer in the manner of VADER (Hutto & Gilbert, 2014): word valences from the VADER
//! lexicon, adjusted for negation, intensifiers, ALL-CAPS emphasis, "but" shifts and !/? emphasis, normalized
//! to a compound score in [-1, 1]. A crypto-slang overlay (and a few phrases) sits on top, because the stock
//! lexicon has no idea what "rekt" or "wagmi" mean.
//!
//! The lexicon and the emoji table come from the `vader_sentiment` crate (its `LEXICON` and `EMOJI_LEXICON`);
//! only its data is used, the scoring rules are this module's.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Where the crate's table differs from the VADER lexicon file (vaderSentiment 3.3.2) this scorer was built and
/// measured on. The crate ships the file from before 3.3.2 added "heart" and "hearts"; and it folds case, so the
/// file's ":p" (1.0) and ":P" (1.4) became one entry holding 1.4 where this scorer always read the lowercase one.
const VADER_CORRECTIONS: &[(&str, f64)] = &[("heart", 3.2), ("hearts", 3.3), (":p", 1.0)];

/// Emoticons the VADER file spells with capitals that tokenize as all punctuation and one letter: they are kept
/// whole as tokens (and looked up lowercased, as every token is). Any other capitalized form is dropped, as
/// before the table came from a crate.
const CAPITAL_EMOTICONS: &[&str] = &[
    "(-:O", "(:O", ":-D", ":D", ":P", ";D", "=-D", "=D", ":\u{de}", ":-\u{de}",
];

/// Valence added to an ALL-CAPS word when the rest of the text is not shouting.
const CAPS_BOOST: f64 = 0.733;
/// Intensifier strength ("very", "extremely"): added in the direction of the word it modifies.
const BOOST_UP: f64 = 0.293;
const BOOST_DOWN: f64 = -0.293;
/// A negated word keeps about three quarters of its strength with the sign flipped.
const NEGATION_SCALAR: f64 = -0.74;
/// Normalization constant of the compound score: x / sqrt(x^2 + alpha).
const ALPHA: f64 = 15.0;

/// Crypto slang and market vocabulary missing from (or misread by) the stock lexicon, on its -4..4 scale.
const CRYPTO_OVERLAY: &[(&str, f64)] = &[
    ("moon", 2.4),
    ("mooning", 2.8),
    ("moonshot", 2.4),
    ("pump", 1.4),
    ("pumping", 1.9),
    ("pumped", 1.6),
    ("dump", -2.0),
    ("dumping", -2.3),
    ("dumped", -2.1),
    ("rug", -3.0),
    ("rugged", -3.2),
    ("rugpull", -3.4),
    ("rekt", -2.8),
    ("hodl", 1.4),
    ("hodling", 1.4),
    ("wagmi", 2.4),
    ("ngmi", -2.4),
    ("fud", -1.8),
    ("fomo", 0.8),
    ("bullish", 2.6),
    ("bearish", -2.6),
    ("bull", 1.5),
    ("bear", -1.5),
    ("ath", 2.0),
    ("lfg", 2.4),
    ("gem", 1.9),
    ("gems", 1.9),
    ("100x", 2.6),
    ("10x", 2.2),
    ("1000x", 2.8),
    ("breakout", 2.0),
    ("rally", 2.0),
    ("rallying", 2.1),
    ("undervalued", 1.7),
    ("overvalued", -1.4),
    ("accumulate", 1.1),
    ("accumulating", 1.2),
    ("airdrop", 0.9),
    ("rocket", 2.0),
    ("bullrun", 2.4),
    ("uptrend", 1.6),
    ("downtrend", -1.6),
    ("selloff", -2.2),
    ("capitulation", -2.2),
    ("liquidated", -2.6),
    ("liquidation", -2.0),
    ("exploit", -2.6),
    ("exploited", -2.8),
    ("hacked", -3.0),
    ("drained", -2.6),
    ("ponzi", -3.2),
    ("honeypot", -3.2),
    ("delist", -2.6),
    ("delisted", -2.9),
    ("bagholder", -1.7),
    ("bagholders", -1.7),
    ("shill", -1.3),
    ("shilling", -1.3),
    ("bleeding", -2.0),
    ("tanking", -2.3),
    ("plummet", -2.5),
    ("plummeting", -2.6),
    ("soaring", 2.3),
    ("skyrocketing", 2.6),
    ("btfd", 1.2),
    ("gm", 0.6),
    // chain vocabulary the stock lexicon reads as emotional
    ("block", 0.0),
    ("blocks", 0.0),
    ("support", 0.6),
    ("send", 0.0),
    ("sending", 1.0),
    ("🚀", 2.2),
    ("📈", 1.6),
    ("📉", -1.6),
    ("💎", 1.2),
    ("🌕", 2.0),
    ("🐂", 1.4),
    ("🐻", -1.4),
    ("🩸", -1.8),
];

/// Multi-word expressions scored as one unit (valence goes to the first word, the rest are consumed).
const CRYPTO_PHRASES: &[(&[&str], f64)] = &[
    (&["to", "the", "moon"], 2.8),
    (&["pump", "and", "dump"], -3.0),
    (&["rug", "pull"], -3.4),
    (&["rug", "pulled"], -3.4),
    (&["all", "time", "high"], 2.2),
    (&["diamond", "hands"], 1.8),
    (&["paper", "hands"], -1.2),
    (&["buy", "the", "dip"], 1.3),
    (&["going", "to", "zero"], -3.0),
    (&["exit", "scam"], -3.4),
    (&["dead", "cat", "bounce"], -1.8),
];

const NEGATIONS: &[&str] = &[
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "dont", "hadnt",
    "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither", "neednt", "never", "none", "nope",
    "nor", "not", "nothing", "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent",
    "without", "wont", "wouldnt", "rarely", "seldom", "despite", "no",
];

const BOOSTERS_UP: &[&str] = &[
    "absolutely",
    "amazingly",
    "awfully",
    "completely",
    "considerably",
    "decidedly",
    "deeply",
    "enormously",
    "entirely",
    "especially",
    "exceptionally",
    "extremely",
    "fabulously",
    "fully",
    "greatly",
    "hella",
    "highly",
    "hugely",
    "incredibly",
    "intensely",
    "majorly",
    "more",
    "most",
    "particularly",
    "purely",
    "quite",
    "really",
    "remarkably",
    "so",
    "substantially",
    "thoroughly",
    "totally",
    "tremendously",
    "uber",
    "unbelievably",
    "unusually",
    "utterly",
    "very",
    "insanely",
    "massively",
    "super",
];

const BOOSTERS_DOWN: &[&str] = &[
    "almost",
    "barely",
    "hardly",
    "kinda",
    "less",
    "little",
    "marginally",
    "occasionally",
    "partly",
    "scarcely",
    "slightly",
    "somewhat",
    "sorta",
];

/// A loaded lexicon; cheap to share (`&'static` via [`LexiconScorer::shared`]).
pub struct LexiconScorer {
    valence: HashMap<String, f64>,
    capital_emoticons: &'static [&'static str],
    emoji_words: HashMap<char, &'static str>,
    boosters: HashMap<&'static str, f64>,
    negations: std::collections::HashSet<&'static str>,
    phrases: Vec<(Vec<&'static str>, f64)>,
}

/// One word of the text after tokenization.
struct Word {
    lower: String,
    shouting: bool,
}

impl LexiconScorer {
    pub fn new() -> Self {
        Self::with_valence(vader_table(), CAPITAL_EMOTICONS)
    }

    /// A scorer over a given VADER table (word -> valence) with the crypto overlay on top.
    fn with_valence(
        mut valence: HashMap<String, f64>,
        capital_emoticons: &'static [&'static str],
    ) -> Self {
        for (w, v) in CRYPTO_OVERLAY {
            valence.insert((*w).to_string(), *v);
        }
        let mut emoji_words = HashMap::new();
        for (e, desc) in vader_sentiment::EMOJI_LEXICON.iter() {
            let mut chars = e.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                emoji_words.insert(c, *desc);
            }
        }
        let mut boosters = HashMap::new();
        for w in BOOSTERS_UP {
            boosters.insert(*w, BOOST_UP);
        }
        for w in BOOSTERS_DOWN {
            boosters.insert(*w, BOOST_DOWN);
        }
        LexiconScorer {
            valence,
            capital_emoticons,
            emoji_words,
            boosters,
            negations: NEGATIONS.iter().copied().collect(),
            phrases: CRYPTO_PHRASES
                .iter()
                .map(|(p, v)| (p.to_vec(), *v))
                .collect(),
        }
    }

    /// One process-wide instance: the lexicon is parsed once.
    pub fn shared() -> &'static LexiconScorer {
        static S: OnceLock<LexiconScorer> = OnceLock::new();
        S.get_or_init(LexiconScorer::new)
    }

    pub fn model_name(&self) -> &'static str {
        "lexicon-vader+crypto-v1"
    }

    fn is_negation(&self, w: &str) -> bool {
        self.negations.contains(w) || w.ends_with("n't")
    }

    fn tokenize(&self, text: &str) -> Vec<Word> {
        let mut words = Vec::with_capacity(32);
        for piece in text.split_whitespace() {
            // Emoji become their own tokens: a known one by itself, otherwise its description's words.
            if piece
                .chars()
                .any(|c| !c.is_ascii() && self.emoji_words.contains_key(&c))
            {
                let mut rest = String::new();
                for c in piece.chars() {
                    if let Some(desc) = self.emoji_words.get(&c) {
                        self.push_piece(&rest, &mut words);
                        rest.clear();
                        let key = c.to_string();
                        if self.valence.contains_key(&key) {
                            words.push(Word {
                                lower: key,
                                shouting: false,
                            });
                        } else {
                            for w in desc.split_whitespace() {
                                words.push(Word {
                                    lower: w.to_string(),
                                    shouting: false,
                                });
                            }
                        }
                    } else {
                        rest.push(c);
                    }
                }
                self.push_piece(&rest, &mut words);
            } else {
                self.push_piece(piece, &mut words);
            }
        }
        words
    }

    fn push_piece(&self, piece: &str, words: &mut Vec<Word>) {
        if piece.is_empty() {
            return;
        }
        let stripped = piece.trim_matches(|c: char| {
            c.is_ascii_punctuation() || c == '\u{2019}' || c == '\u{201c}' || c == '\u{201d}'
        });
        // Emoticons like ":)" are all punctuation: keep them whole when the lexicon knows them.
        let word = if stripped.chars().count() <= 1 {
            if self.valence.contains_key(piece) || self.capital_emoticons.contains(&piece) {
                piece
            } else {
                return;
            }
        } else {
            stripped
        };
        let letters = word.chars().filter(|c| c.is_alphabetic()).count();
        let shouting = letters > 1 && word.chars().all(|c| !c.is_lowercase());
        let mut lower = word.to_lowercase();
        if lower.contains('\u{2019}') {
            lower = lower.replace('\u{2019}', "'");
        }
        words.push(Word { lower, shouting });
    }

    /// Compound score in [-1, 1].
    pub fn score(&self, text: &str) -> f64 {
        let words = self.tokenize(text);
        if words.is_empty() {
            return 0.0;
        }
        let shouting_words = words.iter().filter(|w| w.shouting).count();
        let caps_differ = shouting_words > 0 && shouting_words < words.len();

        let mut valences = vec![0.0f64; words.len()];
        let mut consumed = vec![false; words.len()];
        for i in 0..words.len() {
            if consumed[i] {
                continue;
            }
            let w = &words[i];
            let mut v = match self.phrase_at(&words, i) {
                Some((len, v)) => {
                    for c in consumed.iter_mut().skip(i + 1).take(len - 1) {
                        *c = true;
                    }
                    v
                }
                None => {
                    if self.boosters.contains_key(w.lower.as_str()) {
                        continue;
                    }
                    match self.valence.get(&w.lower) {
                        Some(&v) => v,
                        None => continue,
                    }
                }
            };
            if w.shouting && caps_differ {
                v += CAPS_BOOST * v.signum();
            }
            // Look back up to three words for intensifiers and negations.
            for dist in 1..=3usize {
                if i < dist {
                    break;
                }
                let prev = &words[i - dist];
                if self.valence.contains_key(&prev.lower) {
                    continue;
                }
                if let Some(&b) = self.boosters.get(prev.lower.as_str()) {
                    let mut s = b * v.signum();
                    if prev.shouting && caps_differ {
                        s += CAPS_BOOST * s.signum();
                    }
                    s *= match dist {
                        1 => 1.0,
                        2 => 0.95,
                        _ => 0.9,
                    };
                    v += s;
                }
                if self.is_negation(&prev.lower) {
                    v *= NEGATION_SCALAR;
                }
            }
            valences[i] = v;
        }

        // "but" shifts weight to what follows it.
        if let Some(b) = words.iter().position(|w| w.lower == "but") {
            for (i, v) in valences.iter_mut().enumerate() {
                if i < b {
                    *v *= 0.5;
                } else if i > b {
                    *v *= 1.5;
                }
            }
        }

        let mut sum: f64 = valences.iter().sum();
        if sum != 0.0 {
            let bangs = text.matches('!').count().min(4) as f64 * 0.292;
            let q = text.matches('?').count();
            let qs = if q > 3 {
                0.96
            } else if q > 1 {
                q as f64 * 0.18
            } else {
                0.0
            };
            sum += (bangs + qs) * sum.signum();
        }
        (sum / (sum * sum + ALPHA).sqrt()).clamp(-1.0, 1.0)
    }

    fn phrase_at(&self, words: &[Word], i: usize) -> Option<(usize, f64)> {
        for (p, v) in &self.phrases {
            if i + p.len() <= words.len()
                && p.iter()
                    .enumerate()
                    .all(|(k, pw)| words[i + k].lower == *pw)
            {
                return Some((p.len(), *v));
            }
        }
        None
    }
}

/// The VADER table as this scorer reads it: tokens are lowercased before lookup, so only the entries the
/// lexicon spells in lowercase are reachable (the crate keeps each case-folded entry under its first spelling).
fn vader_table() -> HashMap<String, f64> {
    let mut table =
        HashMap::with_capacity(vader_sentiment::LEXICON.len() + VADER_CORRECTIONS.len());
    for (word, v) in vader_sentiment::LEXICON.iter() {
        let spelled: &str = word;
        if spelled == spelled.to_lowercase() {
            table.insert(spelled.to_string(), *v);
        }
    }
    for (w, v) in VADER_CORRECTIONS {
        table.insert((*w).to_string(), *v);
    }
    table
}

impl Default for LexiconScorer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> f64 {
        LexiconScorer::shared().score(t)
    }

    #[test]
    fn polarity_and_neutral() {
        assert!(s("This project is great") > 0.5);
        assert!(s("This project is terrible") < -0.4);
        assert_eq!(s("The block was mined at noon"), 0.0);
        assert_eq!(s(""), 0.0);
    }

    #[test]
    fn negation_flips() {
        assert!(s("this is good") > 0.0);
        assert!(s("this is not good") < 0.0);
        assert!(s("this isn't good") < 0.0);
    }

    #[test]
    fn intensifiers_caps_and_punctuation_amplify() {
        assert!(s("very good") > s("good"));
        assert!(s("slightly good") < s("good"));
        assert!(s("it is GOOD today") > s("it is good today"));
        assert!(s("good!!!") > s("good"));
    }

    #[test]
    fn but_shifts_weight() {
        // the clause after "but" dominates
        assert!(s("the team is great but the token is terrible") < 0.0);
    }

    #[test]
    fn crypto_slang_is_understood() {
        assert!(s("$PEPE is going to the moon, wagmi") > 0.6);
        assert!(s("got rekt, total rug pull") < -0.6);
        assert!(s("so bullish on this 🚀🚀") > 0.5);
        assert!(s("ngmi, dumping everything") < -0.5);
        assert!(s("not bullish anymore") < 0.0);
    }

    /// SHA-256 of the table as sorted `word<TAB>valence` lines: pins the data the scorer reads.
    fn table_digest(table: &HashMap<String, f64>) -> String {
        use sha2::{Digest, Sha256};
        let mut rows: Vec<_> = table.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        let mut h = Sha256::new();
        for (w, v) in rows {
            h.update(format!("{w}\t{v}\n").as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The table equals the VADER file the scorer was built on (vaderSentiment 3.3.2's `vader_lexicon.txt` as
    /// read here): this digest was computed from that file while it was still in the tree, beside a check that
    /// scores from the crate's table and from the file were bit-identical on 137,681 texts. A crate upgrade that
    /// changes a valence fails here.
    #[test]
    fn vader_table_is_the_file_it_replaced() {
        let table = vader_table();
        assert_eq!(table.len(), 7_492);
        assert_eq!(
            table_digest(&table),
            "ddd0b291367ed2bf7efc07440b4d476e191c766a4c42f6034ae475b5351cb286"
        );
        assert_eq!(table.get(":p"), Some(&1.0));
        assert_eq!(table.get("heart"), Some(&3.2));
        assert!(
            !table.contains_key(":\u{fe}"),
            "never reachable before: spelled only with a capital"
        );
        assert_eq!(vader_sentiment::EMOJI_LEXICON.len(), 3_570);
    }

    #[test]
    fn capitalized_emoticons_score_as_their_lowercase_entry() {
        assert_eq!(s(":P"), s(":p"));
        assert!(s(":D") > 0.0);
        // a capitalized form the lexicon does not spell is dropped, as a bare "L" is
        assert_eq!(s("L"), 0.0);
    }

    #[test]
    fn emoji_descriptions_are_read() {
        // 😂 is not in the overlay: read through its description "face with tears of joy"
        assert!(s("😂") > 0.0);
    }
}
