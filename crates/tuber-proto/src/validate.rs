//! Shared field checks. Every decoder runs them before handing a value on.

use std::fmt;

/// A field that breaks one of the protocol's limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` {kind}")]
pub struct LimitError {
    /// The field, as named on the wire.
    pub field: &'static str,
    /// What is wrong with it.
    pub kind: LimitKind,
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKind {
    /// Longer than its limit (bytes).
    TooLong(usize),
    /// More entries than its limit.
    TooMany(usize),
    /// A value outside its allowed range or form.
    OutOfRange,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitKind::TooLong(n) => write!(f, "is longer than {n} bytes"),
            LimitKind::TooMany(n) => write!(f, "has more than {n} entries"),
            LimitKind::OutOfRange => f.write_str("is out of range or malformed"),
        }
    }
}

impl LimitError {
    pub(crate) fn too_long(field: &'static str, max: usize) -> Self {
        Self {
            field,
            kind: LimitKind::TooLong(max),
        }
    }
    pub(crate) fn too_many(field: &'static str, max: usize) -> Self {
        Self {
            field,
            kind: LimitKind::TooMany(max),
        }
    }
    pub(crate) fn out_of_range(field: &'static str) -> Self {
        Self {
            field,
            kind: LimitKind::OutOfRange,
        }
    }
}

/// A string of at most `max` bytes with no control characters.
pub(crate) fn check_len(field: &'static str, s: &str, max: usize) -> Result<(), LimitError> {
    if s.len() > max {
        return Err(LimitError::too_long(field, max));
    }
    if s.chars().any(char::is_control) {
        return Err(LimitError::out_of_range(field));
    }
    Ok(())
}

/// A string of at most `max` bytes that may hold line breaks (SDP).
pub(crate) fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), LimitError> {
    if s.len() > max {
        return Err(LimitError::too_long(field, max));
    }
    if s.chars().any(|c| c.is_control() && c != '\r' && c != '\n') {
        return Err(LimitError::out_of_range(field));
    }
    Ok(())
}

/// A list of at most `max` entries.
pub(crate) fn check_count<T>(field: &'static str, v: &[T], max: usize) -> Result<(), LimitError> {
    if v.len() > max {
        Err(LimitError::too_many(field, max))
    } else {
        Ok(())
    }
}

/// An integer that JavaScript reads exactly.
pub(crate) fn check_json_int(field: &'static str, n: u64) -> Result<(), LimitError> {
    if n > crate::limits::MAX_JSON_INT {
        Err(LimitError::out_of_range(field))
    } else {
        Ok(())
    }
}

/// An absolute URL with one of `schemes`, at most [`MAX_URL_LEN`] bytes.
///
/// This is a shape check, not a URL parser: the point is to refuse what no
/// client should try to connect to (`file:`, `javascript:`, control bytes).
///
/// [`MAX_URL_LEN`]: crate::limits::MAX_URL_LEN
pub(crate) fn check_url(field: &'static str, s: &str, schemes: &[&str]) -> Result<(), LimitError> {
    check_len(field, s, crate::limits::MAX_URL_LEN)?;
    let Some((scheme, rest)) = s.split_once(':') else {
        return Err(LimitError::out_of_range(field));
    };
    let scheme_ok = schemes.iter().any(|w| scheme.eq_ignore_ascii_case(w));
    if !scheme_ok || rest.is_empty() || s.contains(char::is_whitespace) {
        return Err(LimitError::out_of_range(field));
    }
    Ok(())
}
