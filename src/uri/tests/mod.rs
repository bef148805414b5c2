//! Unit tests of `crate::uri`, by topic; the helpers below are shared.

mod display;
mod errors;
mod rfc;
mod syntax;
mod unknown_attributes;

use super::*;

fn parse(s: &str) -> Pkcs11Uri {
    Pkcs11Uri::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// The options of `pkcs11-module-uri-unknown-attributes = ignore`.
const IGNORE_UNKNOWN: UriOptions = UriOptions {
    ignore_unknown_path_attributes: true,
};

/// Parses with unknown attributes skipped ([`IGNORE_UNKNOWN`]).
fn parse_ignoring_unknown(s: &str) -> Pkcs11Uri {
    Pkcs11Uri::parse_with(s.as_bytes(), IGNORE_UNKNOWN).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn parse_err(input: &[u8]) -> ParseError {
    match Pkcs11Uri::parse(input) {
        Ok(uri) => panic!("{:?} parsed as {uri:?}", input.escape_ascii().to_string()),
        Err(e) => e,
    }
}

fn kind_of(input: &str) -> ParseErrorKind {
    parse_err(input.as_bytes()).kind().clone()
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// parse(display(uri)) == uri without its PIN.
fn assert_round_trip(uri: &Pkcs11Uri) {
    let printed = uri.to_string();
    let reparsed = parse(&printed);
    let mut expected = uri.clone();
    expected.pin_value = None;
    assert_eq!(reparsed, expected, "via {printed}");
    assert_eq!(reparsed.to_string(), printed, "display is canonical");
}
