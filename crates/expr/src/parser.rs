//! The machinery every expression parser shares: the token cursor, syntax errors quoted as
//! DynamoDB quotes them, document paths and placeholders, and the semantic diagnostics.
//!
//! DynamoDB reports a syntax error first; only a syntactically valid expression gets semantic
//! checks, and when several semantic problems exist DynamoDB reports them in a fixed order per
//! expression kind (e.g. redundant parentheses before an unknown function before a reserved
//! word). So the parsers record the first problem of each [`Diag`] category and
//! [`Parser::finish`] picks one by the kind's priority.

use crate::ExprKind;
use crate::ast::{Path, PathElem};
use crate::attrs::Attrs;
use crate::lexer::{Tok, Token, tokenize};
use crate::reserved::is_reserved;
use meridian_model::{ApiError, AttributeValue};

/// Longest expression DynamoDB accepts, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 4096;
/// Deepest nesting of parentheses we parse (DynamoDB has no documented limit; this keeps the
/// recursive descent's stack bounded).
pub const MAX_NESTING: usize = 160;

/// Expressions with more opening parentheses than this are parsed on a larger stack: the
/// recursive descent needs a few frames per level, more than a runtime worker's stack holds at
/// [`MAX_NESTING`] levels in unoptimised builds.
const SHALLOW_PARENS: usize = 24;
const DEEP_STACK_BYTES: usize = 64 << 20;

/// Runs `f` (a parse of `src`) directly, or — when `src` nests deeply — on a fresh stack
/// segment of [`DEEP_STACK_BYTES`] on this same thread (`stacker`), so no thread is started
/// per request and nothing can fail to spawn.
pub(crate) fn on_deep_stack<T>(src: &str, f: impl FnOnce() -> T) -> T {
    if src.bytes().filter(|b| *b == b'(').count() <= SHALLOW_PARENS {
        return f();
    }
    stacker::grow(DEEP_STACK_BYTES, f)
}

/// Most operators and function calls in one expression.
pub const MAX_OPERATORS: usize = 300;

/// Categories of semantic problems, each reported with its own message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diag {
    Parens,
    UnknownFunction,
    MisusedFunction,
    Reserved,
    Undefined,
    UndefinedName,
    UndefinedValue,
    OperandCount,
    Distinct,
    Function,
    Section,
    Overlap,
    Conflict,
    UpdateOperand,
    /// The first problem of the first condition (comparison, `BETWEEN`, `IN`, function) that
    /// has one: DynamoDB reports an undefined value, a wrong operand count, identical operands
    /// or a wrong operand type in source order across conditions, and in that order within one.
    Condition,
}

const N_DIAGS: usize = 15;

/// The problems [`Diag::Condition`] is sealed from, in their order within one condition.
const CONDITION_DIAGS: [Diag; 4] = [
    Diag::Undefined,
    Diag::OperandCount,
    Diag::Distinct,
    Diag::Function,
];

impl Diag {
    fn index(self) -> usize {
        self as usize
    }
}

/// The report order of each expression kind.
fn priority(kind: ExprKind) -> &'static [Diag] {
    use Diag::*;
    match kind {
        ExprKind::Condition | ExprKind::Filter | ExprKind::KeyCondition => &[
            Parens,
            UnknownFunction,
            MisusedFunction,
            Reserved,
            Condition,
            Undefined,
            OperandCount,
            Distinct,
            Function,
        ],
        ExprKind::Update => &[
            Reserved,
            UnknownFunction,
            Section,
            UndefinedName,
            UndefinedValue,
            Overlap,
            Conflict,
            UpdateOperand,
            Function,
        ],
        ExprKind::Projection => &[Reserved, Undefined, Overlap, Conflict],
    }
}

/// A cursor over one expression's tokens.
pub struct Parser<'s, 'a, 'b> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    pub kind: ExprKind,
    attrs: &'b Attrs<'a>,
    diags: [Option<String>; N_DIAGS],
    /// Words that are keywords in this kind of expression and so cannot name an attribute.
    keywords: &'static [&'static str],
    pub depth: usize,
    /// Operators and function calls seen (DynamoDB allows [`MAX_OPERATORS`]).
    operators: usize,
}

impl<'s, 'a, 'b> Parser<'s, 'a, 'b> {
    /// Tokenizes `src`, refusing an empty or oversized expression.
    pub fn new(
        src: &'s str,
        kind: ExprKind,
        attrs: &'b Attrs<'a>,
        keywords: &'static [&'static str],
    ) -> Result<Self, ApiError> {
        if src.is_empty() {
            return Err(kind.error("The expression can not be empty;"));
        }
        if src.len() > MAX_EXPRESSION_BYTES {
            return Err(kind.error(&format!(
                "Expression size has exceeded the maximum allowed size; expression size: {}",
                src.len()
            )));
        }
        Ok(Parser {
            src,
            toks: tokenize(src),
            pos: 0,
            kind,
            attrs,
            diags: Default::default(),
            keywords,
            depth: 0,
            operators: 0,
        })
    }

    /// The current token.
    pub fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    /// The token after the current one.
    pub fn peek2(&self) -> Option<&Tok> {
        self.toks.get(self.pos + 1).map(|t| &t.tok)
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    pub fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    /// Consumes the current token if it is `want`.
    pub fn eat(&mut self, want: &Tok) -> bool {
        if self.peek() == Some(want) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `want` or fails with a syntax error at the current token.
    pub fn expect(&mut self, want: &Tok) -> Result<(), ApiError> {
        if self.eat(want) {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    /// Whether the current token is the keyword `kw` (case-insensitive).
    pub fn at_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(kw))
    }

    /// Consumes the keyword `kw` if present.
    pub fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.at_keyword(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn is_keyword(&self, w: &str) -> bool {
        self.keywords.iter().any(|k| k.eq_ignore_ascii_case(w))
    }

    /// `Syntax error; token: "<tok>", near: "<prev tok … next tok>"` at the current token.
    pub fn syntax_error(&self) -> ApiError {
        let (token, start, end) = match self.toks.get(self.pos) {
            Some(t) => (self.text(t.start, t.end).to_owned(), t.start, t.end),
            None => ("<EOF>".to_owned(), self.src.len(), self.src.len()),
        };
        let near_start = match self.pos.checked_sub(1).and_then(|p| self.toks.get(p)) {
            Some(prev) => prev.start,
            None => start,
        };
        let near_end = if self.pos < self.toks.len() {
            self.toks.get(self.pos + 1).map_or(end, |next| next.end)
        } else {
            self.src.len()
        };
        let near = self.text(near_start, near_end);
        self.kind.error(&format!(
            "Syntax error; token: \"{token}\", near: \"{near}\""
        ))
    }

    fn text(&self, start: usize, end: usize) -> &str {
        self.src.get(start..end).unwrap_or_default()
    }

    /// Records a semantic problem (the first of each category wins).
    pub fn diag(&mut self, d: Diag, msg: impl Into<String>) {
        let slot = &mut self.diags[d.index()];
        if slot.is_none() {
            *slot = Some(msg.into());
        }
    }

    /// Counts one operator or function call.
    pub fn count_operator(&mut self) {
        self.operators += 1;
    }

    /// Ends one condition: if it is the first with a problem, its problem is the one reported.
    pub fn seal_condition(&mut self) {
        if self.diags[Diag::Condition.index()].is_some() {
            return;
        }
        let first = CONDITION_DIAGS
            .iter()
            .find_map(|d| self.diags[d.index()].clone());
        self.diags[Diag::Condition.index()] = first;
    }

    /// After a successful parse: the most important recorded problem, if any.
    pub fn finish(&self) -> Result<(), ApiError> {
        if self.operators > MAX_OPERATORS {
            return Err(self.kind.error(&format!(
                "The expression contains too many operators; operator count: {}",
                self.operators
            )));
        }
        for d in priority(self.kind) {
            if let Some(msg) = &self.diags[d.index()] {
                return Err(self.kind.error(msg));
            }
        }
        Ok(())
    }

    /// A path element name: a bare word (not a keyword; reserved words are recorded) or `#n`.
    fn path_name(&mut self) -> Result<String, ApiError> {
        match self.peek().cloned() {
            Some(Tok::Ident(w)) if !self.is_keyword(&w) => {
                self.pos += 1;
                if is_reserved(&w) {
                    self.diag(
                        Diag::Reserved,
                        format!("Attribute name is a reserved keyword; reserved keyword: {w}"),
                    );
                }
                Ok(w)
            }
            Some(Tok::Name(n)) => {
                self.pos += 1;
                Ok(self.resolve_name(&n))
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// Substitutes `#n`, recording an undefined name.
    pub fn resolve_name(&mut self, n: &str) -> String {
        match self.attrs.name(n) {
            Some(v) => v.to_owned(),
            None => {
                let msg = format!(
                    "An expression attribute name used in the document path is not defined; attribute name: {n}"
                );
                self.diag(Diag::Undefined, msg.clone());
                self.diag(Diag::UndefinedName, msg);
                n.to_owned()
            }
        }
    }

    /// Substitutes `:v`, recording an undefined value (then standing in `NULL`).
    pub fn resolve_value(&mut self, v: &str) -> AttributeValue {
        match self.attrs.value(v) {
            Some(val) => val.clone(),
            None => {
                let msg = format!(
                    "An expression attribute value used in expression is not defined; attribute value: {v}"
                );
                self.diag(Diag::Undefined, msg.clone());
                self.diag(Diag::UndefinedValue, msg);
                AttributeValue::Null
            }
        }
    }

    /// Whether the current token can start a document path.
    pub fn at_path(&self) -> bool {
        match self.peek() {
            Some(Tok::Ident(w)) => !self.is_keyword(w),
            Some(Tok::Name(_)) => true,
            _ => false,
        }
    }

    /// `name ( '.' name | '[' digits ']' )*`
    pub fn path(&mut self) -> Result<Path, ApiError> {
        let mut elems = vec![PathElem::Attr(self.path_name()?)];
        loop {
            match self.peek() {
                Some(Tok::Dot) => {
                    self.pos += 1;
                    elems.push(PathElem::Attr(self.path_name()?));
                }
                Some(Tok::LBracket) => {
                    self.pos += 1;
                    let idx = match self.peek() {
                        Some(Tok::Digits(d)) => d.parse::<usize>().ok(),
                        _ => None,
                    };
                    let Some(idx) = idx else {
                        return Err(self.syntax_error());
                    };
                    self.pos += 1;
                    self.expect(&Tok::RBracket)?;
                    elems.push(PathElem::Index(idx));
                }
                _ => return Ok(Path(elems)),
            }
        }
    }

    /// Fails with a syntax error unless every token was consumed.
    pub fn expect_end(&self) -> Result<(), ApiError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    /// Enters one level of parentheses.
    pub fn enter(&mut self) -> Result<(), ApiError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.syntax_error());
        }
        Ok(())
    }

    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}

/// Checks a list of paths for overlap (one a prefix of another) or conflict (a name where
/// another has an index), recording the first problem.
pub fn check_paths<'p>(p: &mut Parser<'_, '_, '_>, paths: impl IntoIterator<Item = &'p Path>) {
    let paths: Vec<&Path> = paths.into_iter().collect();
    for (i, b) in paths.iter().enumerate() {
        for a in paths.iter().take(i) {
            let mut conflict = false;
            let mut diverged = false;
            for (x, y) in a.0.iter().zip(b.0.iter()) {
                match (x, y) {
                    (PathElem::Attr(_), PathElem::Index(_))
                    | (PathElem::Index(_), PathElem::Attr(_)) => {
                        conflict = true;
                        break;
                    }
                    _ if x != y => {
                        diverged = true;
                        break;
                    }
                    _ => {}
                }
            }
            if conflict {
                p.diag(
                    Diag::Conflict,
                    format!(
                        "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: {a}, path two: {b}"
                    ),
                );
            } else if !diverged {
                p.diag(
                    Diag::Overlap,
                    format!(
                        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {a}, path two: {b}"
                    ),
                );
            }
        }
    }
}
