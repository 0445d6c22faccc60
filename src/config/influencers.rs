//! The influencer list a pipeline follows (`hypeflow influencers sync` writes it): `handle,user_id,followers,
//! counted_on`. With a list, only its accounts' posts count, and its follower count (dated, so its age is
//! visible) stands in for a post that carries none.

use crate::model::Invalid;
use std::collections::HashMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InfluencerBook {
    by_id: HashMap<String, u64>,
    by_handle: HashMap<String, u64>,
}

impl InfluencerBook {
    pub fn parse(text: &str, origin: &str) -> Result<Self, Invalid> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        match lines.next() {
            Some((_, h)) if h.trim().starts_with("handle,user_id,followers") => {}
            _ => {
                return Err(Invalid(format!(
                    "{origin}: want the header handle,user_id,followers,counted_on (make it with `hypeflow influencers sync`)"
                )))
            }
        }
        let mut book = InfluencerBook::default();
        for (i, line) in lines {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let (Some(handle), Some(id), Some(followers)) = (f.first(), f.get(1), f.get(2)) else {
                return Err(Invalid(format!("{origin} line {}: want 4 fields", i + 1)));
            };
            let followers: u64 = followers.parse().map_err(|_| {
                Invalid(format!(
                    "{origin} line {}: followers {followers:?} is not a count",
                    i + 1
                ))
            })?;
            if !id.is_empty() {
                book.by_id.insert(id.to_string(), followers);
            }
            if !handle.is_empty() {
                book.by_handle.insert(
                    handle.trim_start_matches('@').to_ascii_lowercase(),
                    followers,
                );
            }
        }
        if book.by_id.is_empty() && book.by_handle.is_empty() {
            return Err(Invalid(format!("{origin}: the influencer list is empty")));
        }
        Ok(book)
    }

    /// The listed follower count of a post's author (by id, else by handle); `None` if not on the list.
    pub fn followers(&self, author_id: &str, handle: &str) -> Option<u64> {
        self.by_id.get(author_id).copied().or_else(|| {
            self.by_handle
                .get(&handle.trim_start_matches('@').to_ascii_lowercase())
                .copied()
        })
    }

    pub fn len(&self) -> usize {
        self.by_id.len().max(self.by_handle.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_found_by_id_or_handle() {
        let b = InfluencerBook::parse(
            "handle,user_id,followers,counted_on\nAlice,11,90000,2026-11-24\nbob,,70000,2026-11-24\n",
            "list",
        )
        .unwrap();
        assert_eq!(b.followers("11", ""), Some(90_000));
        assert_eq!(b.followers("999", "@ALICE"), Some(90_000));
        assert_eq!(b.followers("", "bob"), Some(70_000));
        assert_eq!(b.followers("12", "carol"), None);
        assert!(InfluencerBook::parse("rank\thandle\n1\tx\n", "seed").is_err());
        assert!(
            InfluencerBook::parse("handle,user_id,followers,counted_on\na,1,many,x\n", "l")
                .unwrap_err()
                .0
                .contains("line 2")
        );
    }
}
