//! Which tokens a post talks about: `$CASHTAGS`, contract addresses and configured aliases ("bitcoin").
//! Mentions of tokens outside the pipeline's universe are counted, not traded.

use crate::model::TokenTable;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extraction {
    /// Universe token ids, each at most once, in first-mention order.
    pub tokens: Vec<u32>,
    /// Cashtags or addresses that named something outside the universe.
    pub unknown: u32,
}

fn push_unique(v: &mut Vec<u32>, id: u32) {
    if !v.contains(&id) {
        v.push(id);
    }
}

/// Scans the text once; no regex engine needed for these three shapes.
pub fn extract(text: &str, table: &TokenTable) -> Extraction {
    let mut out = Extraction::default();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let prev_is_word = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if b == b'$' && !prev_is_word {
            // Cashtag: $ + letter + up to 11 more alphanumerics; "$100" is money, not a token.
            let start = i + 1;
            let mut j = start;
            while j < bytes.len() && bytes[j].is_ascii_alphanumeric() && j - start < 12 {
                j += 1;
            }
            if j > start
                && bytes[start].is_ascii_alphabetic()
                && (j == bytes.len() || !bytes[j].is_ascii_alphanumeric())
            {
                let sym = &text[start..j];
                // an alias applies to a cashtag too: `$MIOTA` means IOTA with `miota = "IOTA"`
                let id = table.id(sym).or_else(|| {
                    table
                        .has_aliases()
                        .then(|| table.alias(&sym.to_ascii_lowercase()))
                        .flatten()
                });
                match id {
                    Some(id) => push_unique(&mut out.tokens, id),
                    None => out.unknown += 1,
                }
            }
            i = j.max(i + 1);
            continue;
        }
        if b == b'0'
            && !prev_is_word
            && i + 1 < bytes.len()
            && (bytes[i + 1] == b'x' || bytes[i + 1] == b'X')
        {
            let start = i + 2;
            let mut j = start;
            while j < bytes.len() && bytes[j].is_ascii_hexdigit() {
                j += 1;
            }
            if j - start == 40 && (j == bytes.len() || !bytes[j].is_ascii_alphanumeric()) {
                let addr = text[i..j].to_ascii_lowercase();
                match table.address(&addr) {
                    Some(id) => push_unique(&mut out.tokens, id),
                    None => out.unknown += 1,
                }
            }
            i = j.max(i + 1);
            continue;
        }
        if table.has_aliases() && b.is_ascii_alphabetic() && !prev_is_word {
            let start = i;
            let mut j = i;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            let word = &text[start..j];
            if word.len() >= 3 {
                let lower = word.to_ascii_lowercase();
                if let Some(id) = table.alias(&lower) {
                    push_unique(&mut out.tokens, id);
                }
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pipeline::Universe;

    fn table() -> TokenTable {
        let mut u = Universe {
            tokens: vec!["BTC".into(), "ETH".into(), "PEPE".into()],
            ..Default::default()
        };
        u.aliases.insert("bitcoin".into(), "BTC".into());
        u.aliases.insert("ethereum".into(), "ETH".into());
        u.addresses.insert(
            "0x6982508145454Ce325dDbE47a25d4ec3d2311933".into(),
            "PEPE".into(),
        );
        u.token_table()
    }

    #[test]
    fn cashtags_aliases_addresses() {
        let t = table();
        let e = extract("$btc and $ETH, also Bitcoin again; $DOGE too", &t);
        assert_eq!(e.tokens, vec![t.id("BTC").unwrap(), t.id("ETH").unwrap()]);
        assert_eq!(e.unknown, 1);
        // an alias names a token as a cashtag too ($MIOTA for IOTA)
        let e = extract("$ETHEREUM up, $Bitcoin down, $BITCOINS unknown", &t);
        assert_eq!(e.tokens, vec![t.id("ETH").unwrap(), t.id("BTC").unwrap()]);
        assert_eq!(e.unknown, 1);
        let e = extract("ape 0x6982508145454ce325ddbe47a25d4ec3d2311933 now", &t);
        assert_eq!(e.tokens, vec![t.id("PEPE").unwrap()]);
    }

    #[test]
    fn money_and_embedded_text_are_not_tokens() {
        let t = table();
        assert!(extract("I made $100 today", &t).tokens.is_empty());
        assert!(extract("US$ETH", &t).tokens.is_empty());
        assert!(extract("bitcoins are not an alias match", &t)
            .tokens
            .is_empty());
        // a 39-hex-digit string is not an address
        assert_eq!(
            extract("0x6982508145454ce325ddbe47a25d4ec3d231193", &t).unknown,
            0
        );
    }
}
