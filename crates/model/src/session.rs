//! Session tokens: what a client has written, so that its later reads are served only by a
//! region that has applied those writes (read-your-writes across regions, like Cosmos DB's
//! session tokens).
//!
//! A token is a set of marks `origin:ts`, comma separated (`eu-west:1234,us-east:5678`): the
//! session has seen every write of region `origin` with a hybrid-logical-clock timestamp up to
//! `ts`. A region *covers* a token when, for every mark, it is the origin or it has applied all
//! of that origin's writes up to `ts`. Marks merge by keeping the larger timestamp per origin,
//! so a token stays as small as the number of regions.

use std::collections::BTreeMap;
use std::fmt;

/// Request and response header carrying a token: a region answers every successful write
/// with its mark, and a client sends its token back on later requests.
pub const SESSION_HEADER: &str = "x-meridian-session";

/// Request header with the token a gateway remembers for a user. Separate from
/// [`SESSION_HEADER`] so that the gateway never alters a header the client may have signed.
pub const REMEMBERED_HEADER: &str = "x-meridian-session-remembered";

/// Response header of a refusal because the region has not applied a mark yet: the mark's
/// origin, where the session's writes are known to be.
pub const BEHIND_HEADER: &str = "x-meridian-session-behind";

/// Most marks in one token (a token has one per region it wrote in).
pub const MAX_MARKS: usize = 32;

/// Longest token text accepted.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Longest region name in a mark.
const MAX_ORIGIN_BYTES: usize = 64;

/// Operations that read items: the ones a token constrains. Writes are never held back by a
/// token: a write that fails over keeps the user's data writable, and last-writer-wins orders
/// it after the session's earlier writes once they meet.
const ITEM_READS: &[&str] = &[
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "TransactGetItems",
];

/// Operations that write items: a region answers them with its mark.
const ITEM_WRITES: &[&str] = &[
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

/// Whether a token constrains which region may serve `op` (item reads).
pub fn constrains(op: &str) -> bool {
    ITEM_READS.contains(&op)
}

/// Whether a successful `op` is answered with a mark.
pub fn is_item_write(op: &str) -> bool {
    ITEM_WRITES.contains(&op)
}

/// A set of marks, one per origin region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionToken {
    marks: BTreeMap<String, u64>,
}

impl SessionToken {
    /// A token of one mark.
    pub fn mark(origin: &str, ts: u64) -> SessionToken {
        SessionToken {
            marks: BTreeMap::from([(origin.to_owned(), ts)]),
        }
    }

    /// Parses `origin:ts[,origin:ts]*`; a repeated origin keeps its larger timestamp.
    pub fn parse(text: &str) -> Result<SessionToken, String> {
        if text.len() > MAX_TOKEN_BYTES {
            return Err(format!("longer than {MAX_TOKEN_BYTES} bytes"));
        }
        let mut token = SessionToken::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (origin, ts) = part
                .rsplit_once(':')
                .ok_or_else(|| format!("mark {part:?} is not origin:timestamp"))?;
            let valid = !origin.is_empty()
                && origin.len() <= MAX_ORIGIN_BYTES
                && origin
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !valid {
                return Err(format!("bad region name in mark {part:?}"));
            }
            let ts: u64 = ts
                .parse()
                .map_err(|_| format!("bad timestamp in mark {part:?}"))?;
            if !token.marks.contains_key(origin) && token.marks.len() >= MAX_MARKS {
                return Err(format!("more than {MAX_MARKS} marks"));
            }
            token.raise(origin, ts);
        }
        Ok(token)
    }

    fn raise(&mut self, origin: &str, ts: u64) {
        match self.marks.get_mut(origin) {
            Some(v) => *v = (*v).max(ts),
            None => {
                self.marks.insert(origin.to_owned(), ts);
            }
        }
    }

    /// Adds `other`'s marks (the larger timestamp per origin). Origins beyond [`MAX_MARKS`]
    /// are left out, so a token never grows without bound.
    pub fn merge(&mut self, other: &SessionToken) {
        for (origin, ts) in &other.marks {
            if self.marks.contains_key(origin) || self.marks.len() < MAX_MARKS {
                self.raise(origin, *ts);
            }
        }
    }

    /// Whether the token has no marks.
    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// The marks, by origin.
    pub fn marks(&self) -> impl Iterator<Item = (&str, u64)> {
        self.marks.iter().map(|(o, t)| (o.as_str(), *t))
    }

    /// The first mark `covers` says is not applied, if any.
    pub fn uncovered(&self, covers: impl Fn(&str, u64) -> bool) -> Option<(&str, u64)> {
        self.marks().find(|(o, t)| !covers(o, *t))
    }

    /// The origins, latest mark first: where the session's most recent writes were made.
    pub fn origins_latest_first(&self) -> Vec<&str> {
        let mut v: Vec<(&str, u64)> = self.marks().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.into_iter().map(|(o, _)| o).collect()
    }
}

impl fmt::Display for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (origin, ts)) in self.marks.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{origin}:{ts}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_merge_and_print() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("", Ok("")),
            ("eu-west:5", Ok("eu-west:5")),
            (" us-east:9 , eu-west:5 ", Ok("eu-west:5,us-east:9")),
            ("eu-west:5,eu-west:3", Ok("eu-west:5")),
            ("eu-west:3,eu-west:5,", Ok("eu-west:5")),
            ("eu-west", Err(())),
            ("eu-west:x", Err(())),
            ("eu-west:-1", Err(())),
            (":5", Err(())),
            ("eu west:5", Err(())),
            ("eu-west:99999999999999999999", Err(())),
        ];
        for (text, want) in cases {
            let got = SessionToken::parse(text).map(|t| t.to_string());
            match want {
                Ok(w) => assert_eq!(got.as_deref(), Ok(*w), "{text:?}"),
                Err(()) => assert!(got.is_err(), "{text:?} parsed as {got:?}"),
            }
        }
        let mut a = SessionToken::parse("a:1,b:7").expect("a");
        a.merge(&SessionToken::parse("b:3,c:4").expect("b"));
        assert_eq!(a.to_string(), "a:1,b:7,c:4");
        assert_eq!(a.origins_latest_first(), ["b", "c", "a"]);
    }

    #[test]
    fn bounded() {
        let many: Vec<String> = (0..=MAX_MARKS).map(|i| format!("r{i}:1")).collect();
        assert!(SessionToken::parse(&many.join(",")).is_err());
        assert!(SessionToken::parse(&"a".repeat(MAX_TOKEN_BYTES + 1)).is_err());
        let mut t = SessionToken::default();
        for i in 0..=MAX_MARKS {
            t.merge(&SessionToken::mark(&format!("r{i}"), 1));
        }
        assert_eq!(t.marks().count(), MAX_MARKS);
    }

    #[test]
    fn coverage() {
        let t = SessionToken::parse("eu-west:10,us-east:20").expect("token");
        let applied = |o: &str, ts: u64| match o {
            "eu-west" => ts <= 10,
            "us-east" => ts <= 15,
            _ => false,
        };
        assert_eq!(t.uncovered(applied), Some(("us-east", 20)));
        assert_eq!(t.uncovered(|_, _| true), None);
    }
}
