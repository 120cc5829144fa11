//! Bytes → tokens. Whitespace separates tokens and is dropped; every token keeps its byte span
//! so a syntax error can quote the source around it as DynamoDB does (`near: "…"`).

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// A bare word: an attribute name, a keyword (`AND`, `SET`, …) or a function name.
    Ident(String),
    /// `#name`: an expression attribute name placeholder (with its `#`).
    Name(String),
    /// `:value`: an expression attribute value placeholder (with its `:`).
    Value(String),
    /// A run of decimal digits (list indexes).
    Digits(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    /// Any other character: always a syntax error where it stands.
    Other(char),
}

/// A token and where it stands in the source (byte offsets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Consumes word characters following a token's first character; returns the token's end.
fn scan_word(mut end: usize, chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> usize {
    while let Some(&(i, d)) = chars.peek() {
        if !is_word_char(d) {
            break;
        }
        end = i + d.len_utf8();
        chars.next();
    }
    end
}

/// Splits `src` into tokens. Never fails: unknown characters become [`Tok::Other`].
pub fn tokenize(src: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let tok = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '=' => Tok::Eq,
            '<' | '>' => {
                let next = chars.peek().map(|&(_, d)| d);
                let (tok, two) = match (c, next) {
                    ('<', Some('>')) => (Tok::Ne, true),
                    ('<', Some('=')) => (Tok::Le, true),
                    ('>', Some('=')) => (Tok::Ge, true),
                    ('<', _) => (Tok::Lt, false),
                    _ => (Tok::Gt, false),
                };
                if two {
                    chars.next();
                }
                out.push(Token {
                    tok,
                    start,
                    end: start + if two { 2 } else { 1 },
                });
                continue;
            }
            '#' | ':' => {
                let end = scan_word(start + 1, &mut chars);
                let text = src.get(start..end).unwrap_or_default().to_owned();
                out.push(Token {
                    tok: if c == '#' {
                        Tok::Name(text)
                    } else {
                        Tok::Value(text)
                    },
                    start,
                    end,
                });
                continue;
            }
            d if d.is_ascii_digit() => {
                let mut end = start + 1;
                while let Some(&(i, d)) = chars.peek() {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    end = i + 1;
                    chars.next();
                }
                let text = src.get(start..end).unwrap_or_default().to_owned();
                out.push(Token {
                    tok: Tok::Digits(text),
                    start,
                    end,
                });
                continue;
            }
            // A bare word starts with a letter: DynamoDB's lexer sees `_abc` as the token `_`
            // (a syntax error) followed by `abc`.
            w if w.is_ascii_alphabetic() => {
                let end = scan_word(start + 1, &mut chars);
                let text = src.get(start..end).unwrap_or_default().to_owned();
                out.push(Token {
                    tok: Tok::Ident(text),
                    start,
                    end,
                });
                continue;
            }
            other => Tok::Other(other),
        };
        out.push(Token {
            tok,
            start,
            end: start + c.len_utf8(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        tokenize(src).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn splits_operators_and_words() {
        assert_eq!(
            kinds("a.b[12] <> :v AND #n>=x<=y<z>w"),
            vec![
                Tok::Ident("a".into()),
                Tok::Dot,
                Tok::Ident("b".into()),
                Tok::LBracket,
                Tok::Digits("12".into()),
                Tok::RBracket,
                Tok::Ne,
                Tok::Value(":v".into()),
                Tok::Ident("AND".into()),
                Tok::Name("#n".into()),
                Tok::Ge,
                Tok::Ident("x".into()),
                Tok::Le,
                Tok::Ident("y".into()),
                Tok::Lt,
                Tok::Ident("z".into()),
                Tok::Gt,
                Tok::Ident("w".into()),
            ]
        );
    }

    #[test]
    fn keeps_spans_and_unknown_chars() {
        let t = tokenize("  é!=");
        assert_eq!(
            t[0],
            Token {
                tok: Tok::Other('é'),
                start: 2,
                end: 4
            }
        );
        assert_eq!(
            t[1],
            Token {
                tok: Tok::Other('!'),
                start: 4,
                end: 5
            }
        );
        assert_eq!(t[2].tok, Tok::Eq);
        assert_eq!(kinds("#"), vec![Tok::Name("#".into())]);
        assert_eq!(
            kinds("1a"),
            vec![Tok::Digits("1".into()), Tok::Ident("a".into())]
        );
        assert_eq!(
            kinds("_a1_"),
            vec![Tok::Other('_'), Tok::Ident("a1_".into())]
        );
    }
}
