//! UpdateExpression: parsing (`SET`, `REMOVE`, `ADD`, `DELETE`, each at most once).
//!
//! ```text
//! update := clause+
//! clause := SET path '=' value (',' …)* | REMOVE path (',' path)*
//!         | ADD path :v (',' …)* | DELETE path :v (',' …)*
//! value  := term [ ('+' | '-') term ]  |  '(' value ')'
//! term   := '(' term ')' | if_not_exists '(' path ',' term ')'
//!         | list_append '(' term ',' term ')' | :v | path
//! ```
//!
//! Applying an update is in [`crate::update_apply`]: see [`Update::apply`].

use crate::ast::Path;
use crate::lexer::Tok;
use crate::parser::{Diag, Parser, check_paths};
use crate::{Attrs, ExprKind};
use meridian_model::key::KeySchema;
use meridian_model::{ApiError, AttributeValue};
use std::collections::BTreeSet;

const KEYWORDS: &[&str] = &["SET", "REMOVE", "ADD", "DELETE"];

/// A value-producing term of a `SET` action.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    Path(Path),
    Value(AttributeValue),
    IfNotExists(Path, Box<Term>),
    ListAppend(Box<Term>, Box<Term>),
}

/// The right-hand side of a `SET` action.
#[derive(Clone, Debug, PartialEq)]
pub enum SetValue {
    Term(Term),
    Plus(Term, Term),
    Minus(Term, Term),
}

/// One action of an update.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Set(Path, SetValue),
    Remove(Path),
    Add(Path, AttributeValue),
    Delete(Path, AttributeValue),
}

impl Action {
    /// The document path the action writes.
    pub fn path(&self) -> &Path {
        match self {
            Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => p,
        }
    }
}

/// A parsed UpdateExpression.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    pub(crate) actions: Vec<Action>,
}

impl Update {
    /// The actions, clause by clause in source order.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// The document paths the update writes (for `UPDATED_OLD` / `UPDATED_NEW`: project the
    /// old or new item on them with [`crate::Projection::from_paths`]).
    pub fn paths(&self) -> Vec<Path> {
        self.actions.iter().map(|a| a.path().clone()).collect()
    }

    /// The top-level attributes the update writes (to refuse key attributes).
    pub fn top_level_attrs(&self) -> BTreeSet<String> {
        self.actions
            .iter()
            .map(|a| a.path().top().to_owned())
            .collect()
    }

    /// Refuses an update that writes a key attribute, in DynamoDB's words.
    pub fn refuse_key_updates(&self, schema: &KeySchema) -> Result<(), ApiError> {
        for a in &self.actions {
            let top = a.path().top();
            if schema.is_key_attr(top) {
                return Err(ApiError::validation(format!(
                    "One or more parameter values were invalid: Cannot update attribute {top}. This attribute is part of the key"
                )));
            }
        }
        Ok(())
    }
}

/// Parses an UpdateExpression.
pub fn parse_update(src: &str, attrs: &Attrs<'_>) -> Result<Update, ApiError> {
    crate::parser::on_deep_stack(src, || parse_update_here(src, attrs))
}

fn parse_update_here(src: &str, attrs: &Attrs<'_>) -> Result<Update, ApiError> {
    let mut p = Parser::new(src, ExprKind::Update, attrs, KEYWORDS)?;
    let mut actions = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    loop {
        let Some(clause) = KEYWORDS.iter().copied().find(|k| p.at_keyword(k)) else {
            return Err(p.syntax_error());
        };
        p.bump();
        if seen.contains(&clause) {
            p.diag(
                Diag::Section,
                format!("The \"{clause}\" section can only be used once in an update expression;"),
            );
        }
        seen.push(clause);
        loop {
            actions.push(action(&mut p, clause)?);
            if !p.eat(&Tok::Comma) {
                break;
            }
        }
        if p.at_end() {
            break;
        }
    }
    check_paths(&mut p, actions.iter().map(Action::path));
    p.finish()?;
    Ok(Update { actions })
}

fn action(p: &mut Parser<'_, '_, '_>, clause: &str) -> Result<Action, ApiError> {
    let path = p.path()?;
    match clause {
        "SET" => {
            p.expect(&Tok::Eq)?;
            Ok(Action::Set(path, set_value(p)?))
        }
        "REMOVE" => Ok(Action::Remove(path)),
        _ => {
            let Some(Tok::Value(v)) = p.peek().cloned() else {
                return Err(p.syntax_error());
            };
            p.bump();
            let val = p.resolve_value(&v);
            check_add_delete_operand(p, clause, &val);
            Ok(if clause == "ADD" {
                Action::Add(path, val)
            } else {
                Action::Delete(path, val)
            })
        }
    }
}

fn check_add_delete_operand(p: &mut Parser<'_, '_, '_>, clause: &str, v: &AttributeValue) {
    let t = match v {
        AttributeValue::S(_) => "STRING",
        AttributeValue::N(_) if clause == "ADD" => return,
        AttributeValue::N(_) => "NUMBER",
        AttributeValue::B(_) => "BINARY",
        AttributeValue::Null => "NULL",
        AttributeValue::Bool(_) => "BOOLEAN",
        AttributeValue::L(_) => "LIST",
        AttributeValue::M(_) => "MAP",
        AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_) => return,
    };
    p.diag(
        Diag::UpdateOperand,
        format!(
            "Incorrect operand type for operator or function; operator: {clause}, operand type: {t}"
        ),
    );
}

fn set_value(p: &mut Parser<'_, '_, '_>) -> Result<SetValue, ApiError> {
    // `'(' value ')'` and `'(' term ')' op term` both start with `(`: parse the inner
    // value, and keep it as a term when an operator follows.
    let first = if p.peek() == Some(&Tok::LParen) {
        p.bump();
        p.enter()?;
        let inner = set_value(p)?;
        p.expect(&Tok::RParen)?;
        p.leave();
        match inner {
            SetValue::Term(t) => t,
            other => return Ok(other),
        }
    } else {
        term(p)?
    };
    let op = match p.peek() {
        Some(Tok::Plus) => "+",
        Some(Tok::Minus) => "-",
        _ => return Ok(SetValue::Term(first)),
    };
    p.bump();
    p.count_operator();
    let second = term(p)?;
    for t in [&first, &second] {
        if let Term::Value(v) = t
            && !matches!(v, AttributeValue::N(_))
        {
            type_error(p, op, v.type_name());
            break;
        }
    }
    Ok(if op == "+" {
        SetValue::Plus(first, second)
    } else {
        SetValue::Minus(first, second)
    })
}

fn type_error(p: &mut Parser<'_, '_, '_>, f: &str, t: &str) {
    p.diag(
        Diag::Function,
        format!("Incorrect operand type for operator or function; operator or function: {f}, operand type: {t}"),
    );
}

fn term(p: &mut Parser<'_, '_, '_>) -> Result<Term, ApiError> {
    match p.peek().cloned() {
        Some(Tok::LParen) => {
            p.bump();
            p.enter()?;
            let t = term(p)?;
            p.expect(&Tok::RParen)?;
            p.leave();
            Ok(t)
        }
        Some(Tok::Value(v)) => {
            p.bump();
            Ok(Term::Value(p.resolve_value(&v)))
        }
        Some(Tok::Ident(name)) if p.peek2() == Some(&Tok::LParen) => {
            p.bump();
            p.bump();
            p.enter()?;
            let mut args = vec![term(p)?];
            while p.eat(&Tok::Comma) {
                args.push(term(p)?);
            }
            p.expect(&Tok::RParen)?;
            p.leave();
            Ok(function(p, &name, args))
        }
        _ if p.at_path() => Ok(Term::Path(p.path()?)),
        _ => Err(p.syntax_error()),
    }
}

fn function(p: &mut Parser<'_, '_, '_>, name: &str, mut args: Vec<Term>) -> Term {
    p.count_operator();
    let poison = Term::Value(AttributeValue::Null);
    if name != "if_not_exists" && name != "list_append" {
        p.diag(
            Diag::UnknownFunction,
            format!("Invalid function name; function: {name}"),
        );
        return poison;
    }
    if args.len() != 2 {
        p.diag(
            Diag::Function,
            format!(
                "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
                args.len()
            ),
        );
        return poison;
    }
    let (Some(b), Some(a)) = (args.pop(), args.pop()) else {
        return poison;
    };
    if name == "if_not_exists" {
        let Term::Path(path) = a else {
            p.diag(
                Diag::Function,
                format!(
                    "Operator or function requires a document path; operator or function: {name}"
                ),
            );
            return poison;
        };
        return Term::IfNotExists(path, Box::new(b));
    }
    for t in [&a, &b] {
        if let Term::Value(v) = t
            && !matches!(v, AttributeValue::L(_))
        {
            type_error(p, name, v.type_name());
            break;
        }
    }
    Term::ListAppend(Box::new(a), Box::new(b))
}
