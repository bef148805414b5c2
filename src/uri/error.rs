//! `ParseError`: what was wrong with a URI, where (byte offset) and in which attribute, as
//! one line a user can act on. It never quotes a value except a rejected `type`, so no PIN
//! reaches a message.

use std::fmt;

use super::{Attr, MAX_URI_LEN};

/// What was wrong with a URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParseErrorKind {
    /// More than 64 KiB of input.
    TooLong,
    /// Does not start with `pkcs11:` (any case).
    MissingScheme,
    /// A component without `=`.
    MissingEquals,
    /// A component starting with `=`.
    EmptyName,
    /// An attribute name with a character outside ALPHA / DIGIT / `-` / `_`.
    BadName,
    /// `%` not followed by two hex digits.
    BadPercentEscape,
    /// A character that must be percent-encoded appears raw.
    BadCharacter,
    /// A text value decodes to a NUL byte.
    NulByte,
    /// A text value does not decode to UTF-8.
    NotUtf8,
    /// `slot-id` is not a decimal number.
    BadNumber,
    /// `slot-id` does not fit in 64 bits.
    NumberTooLarge,
    /// `library-version` is not "M" or "M.m" with parts 0..=255.
    BadVersion,
    /// `type` is not one of the five RFC values (the value, escaped).
    UnknownType(String),
    /// An attribute given twice.
    Duplicate,
    /// Both `pin-value` and `pin-source`.
    PinValueAndSource,
    /// A path attribute the parser does not know, such as a misspelt `object` (the name is the
    /// error's attribute). `did_you_mean` is the attribute whose name differs only in case.
    UnknownAttribute { did_you_mean: Option<&'static str> },
    /// A query attribute (`pin-value`, `pin-source`, `module-name`, `module-path`) in the path.
    QueryAttributeInPath,
    /// A path attribute (`object`, `type`, ...) in the query.
    PathAttributeInQuery,
}

/// A URI parse failure: what, where (byte offset in the input) and in which attribute.
/// Never contains attribute values, except the rejected `type` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    kind: ParseErrorKind,
    offset: usize,
    attribute: Option<String>,
}

impl ParseError {
    pub(super) fn new(
        kind: ParseErrorKind,
        offset: usize,
        attribute: Option<String>,
    ) -> ParseError {
        ParseError {
            kind,
            offset,
            attribute,
        }
    }

    pub(super) fn with_attribute(mut self, name: impl Into<String>) -> ParseError {
        self.attribute = Some(name.into());
        self
    }

    /// What went wrong.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "structured access for callers and tests")
    )]
    pub(crate) fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// Byte offset in the input where the problem was found.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "structured access for callers and tests")
    )]
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// The attribute concerned, when there is one.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "structured access for callers and tests")
    )]
    pub(crate) fn attribute(&self) -> Option<&str> {
        self.attribute.as_deref()
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid pkcs11 URI: ")?;
        let attribute = self.attribute.as_deref().unwrap_or("?");
        match &self.kind {
            ParseErrorKind::Duplicate => {
                return write!(
                    f,
                    "attribute '{attribute}' given twice at byte {}",
                    self.offset
                );
            }
            ParseErrorKind::PinValueAndSource => {
                return write!(
                    f,
                    "'pin-value' and 'pin-source' both given (second at byte {})",
                    self.offset
                );
            }
            ParseErrorKind::TooLong => {
                return write!(f, "longer than {MAX_URI_LEN} bytes");
            }
            ParseErrorKind::MissingScheme => {
                return f.write_str("does not start with 'pkcs11:'");
            }
            ParseErrorKind::UnknownAttribute { did_you_mean } => {
                write!(
                    f,
                    "unknown attribute '{attribute}' in the path at byte {}",
                    self.offset
                )?;
                return match did_you_mean {
                    Some(known) => write!(
                        f,
                        ": did you mean '{known}'? attribute names are case-sensitive"
                    ),
                    None => {
                        f.write_str(" (attribute names are case-sensitive; known: ")?;
                        for (i, known) in Attr::PATH.iter().enumerate() {
                            if i > 0 {
                                f.write_str(", ")?;
                            }
                            f.write_str(known.name())?;
                        }
                        f.write_str("; vendor attributes start with 'x-')")
                    }
                };
            }
            ParseErrorKind::QueryAttributeInPath => {
                return write!(
                    f,
                    "query attribute '{attribute}' in the path at byte {} \
                     (query attributes go after '?')",
                    self.offset
                );
            }
            ParseErrorKind::PathAttributeInQuery => {
                return write!(
                    f,
                    "path attribute '{attribute}' in the query at byte {} \
                     (path attributes go before '?')",
                    self.offset
                );
            }
            ParseErrorKind::MissingEquals => f.write_str("attribute without '='")?,
            ParseErrorKind::EmptyName => f.write_str("empty attribute name")?,
            ParseErrorKind::BadName => f.write_str("bad character in attribute name")?,
            ParseErrorKind::BadPercentEscape => f.write_str("bad percent-escape")?,
            ParseErrorKind::BadCharacter => {
                f.write_str("character that must be percent-encoded")?
            }
            ParseErrorKind::NulByte => f.write_str("NUL byte (%00) in a text value")?,
            ParseErrorKind::NotUtf8 => f.write_str("value is not valid UTF-8")?,
            ParseErrorKind::BadNumber => f.write_str("expected a decimal number")?,
            ParseErrorKind::NumberTooLarge => f.write_str("number too large")?,
            ParseErrorKind::BadVersion => {
                f.write_str("expected version 'M' or 'M.m' (0-255 each)")?
            }
            ParseErrorKind::UnknownType(value) => write!(
                f,
                "unknown object type '{value}' (expected private, public, cert, secret-key or data)"
            )?,
        }
        write!(f, " at byte {}", self.offset)?;
        if let Some(attribute) = &self.attribute {
            write!(f, " in attribute '{attribute}'")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}
