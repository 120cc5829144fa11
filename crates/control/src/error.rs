//! Errors of the control plane, and where in the spec file a problem is.

use std::ops::Range;

/// A spec that was refused, with the position of the offending key or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct SpecError {
    /// What is wrong.
    pub message: String,
    /// Where, as a dotted path (`regions[1].name`); empty for syntax errors.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
}

impl SpecError {
    /// An error at a byte span of `text`.
    pub fn at(text: &str, span: Option<Range<usize>>, path: String, message: String) -> Self {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        SpecError {
            message,
            path,
            line,
            column,
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if let (Some(l), Some(c)) = (self.line, self.column) {
            out.push_str(&format!("line {l}, column {c}: "));
        }
        if !self.path.is_empty() {
            out.push_str(&self.path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Errors of the control plane's store, server and agent.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The spec was refused.
    #[error("invalid spec: {0}")]
    Spec(#[from] SpecError),
    /// Disk I/O failed (the store stops: its state on disk is unknown).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The control plane could not be reached or answered an error.
    #[error("control plane: {0}")]
    Remote(String),
    /// No spec has been stored yet.
    #[error("no spec has been applied yet")]
    NoSpec,
    /// A role's config could not be derived from the spec.
    #[error("{0}")]
    Derive(String),
    /// A version that does not exist.
    #[error("spec version {0} does not exist")]
    UnknownVersion(u64),
}

impl ControlError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ControlError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 9), (2, 3)); // after the two-byte 'é'
    }
}
