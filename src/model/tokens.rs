//! The universe's tokens as dense ids: records inside the dataflow carry a `u32`, and every stage that meets a
//! symbol, an alias or a contract address looks it up here.

use std::collections::{BTreeMap, HashMap};

/// Dense ids for the universe's tokens: records inside the dataflow carry a `u32`, not a string.
#[derive(Clone, Debug)]
pub struct TokenTable {
    /// Sorted; a symbol's id is its position (validation refuses a token listed twice).
    symbols: Vec<String>,
    aliases: HashMap<String, u32>,
    addresses: HashMap<String, u32>,
}

/// A symbol's id: its position in the sorted symbols.
fn symbol_position(symbols: &[String], symbol: &str) -> Option<u32> {
    symbols
        .binary_search_by(|x| x.as_str().cmp(symbol))
        .ok()
        .map(|i| i as u32)
}

impl TokenTable {
    /// `tokens` in any case; `aliases` and `addresses` map a word or an address to one of them (entries
    /// naming no listed token are left out: the pipeline's validation has already refused them).
    pub fn new(
        tokens: &[String],
        aliases: &BTreeMap<String, String>,
        addresses: &BTreeMap<String, String>,
    ) -> Self {
        let mut symbols: Vec<String> = tokens.iter().map(|t| t.to_ascii_uppercase()).collect();
        symbols.sort();
        symbols.dedup();
        let by_target = |(k, v): (&String, &String)| {
            symbol_position(&symbols, &v.to_ascii_uppercase()).map(|id| (k.to_lowercase(), id))
        };
        let aliases = aliases.iter().filter_map(by_target).collect();
        let addresses = addresses.iter().filter_map(by_target).collect();
        TokenTable {
            symbols,
            aliases,
            addresses,
        }
    }
    /// Looked up for every tick: a binary search of the sorted symbols costs a few comparisons, where a map
    /// hashed the symbol with SipHash first.
    pub fn id(&self, symbol: &str) -> Option<u32> {
        symbol_position(&self.symbols, symbol)
            .or_else(|| symbol_position(&self.symbols, &symbol.to_ascii_uppercase()))
    }
    pub fn alias(&self, word_lower: &str) -> Option<u32> {
        self.aliases.get(word_lower).copied()
    }
    pub fn address(&self, addr_lower: &str) -> Option<u32> {
        self.addresses.get(addr_lower).copied()
    }
    pub fn symbol(&self, id: u32) -> &str {
        self.symbols
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }
    pub fn len(&self) -> usize {
        self.symbols.len()
    }
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }
    pub fn has_aliases(&self) -> bool {
        !self.aliases.is_empty()
    }
}
