//! `pkcs11:` URIs (RFC 7512): parsing what users give `OSSL_STORE_open` and printing our own
//! canonical form for messages and PEM-URI files.
//!
//! Pure logic, no FFI and no token access, so it can be unit-tested and fuzzed on its own.
//! Grammar (RFC 7512 §2.3): `pkcs11:` (scheme case-insensitive), path attributes separated
//! by `;`, then an optional `?` and query attributes separated by `&`. Values are
//! percent-decoded; characters outside `pk11-pchar` / `pk11-qchar` must be escaped. Known
//! attributes may appear once. An unknown path attribute is an error (names are
//! case-sensitive), because skipping a misspelt `object`, `id` or `type` would make the URI
//! select another key; so is a known attribute in the wrong section (`object` in the query,
//! `module-path` in the path; `pin-value` and `pin-source`, which select nothing, are also read
//! in the path, as latchset's provider does). Vendor path attributes (`x-*`) and other unknown query attributes
//! are checked for syntax and then skipped, as the RFC lets consumers do; [`UriOptions`]
//! skips every unknown attribute instead. The PIN (`pin-value`) is kept in a zeroizing buffer
//! and never appears in `Display`, `Debug` or error messages.
//!
//! This file holds the types and their canonical printing; `parse` holds the parser and
//! `error` the parse error. Callers name everything through `crate::uri`.

mod error;
mod parse;

#[cfg(test)]
mod tests;

use std::fmt::{self, Write as _};

use zeroize::Zeroizing;

pub(crate) use error::{ParseError, ParseErrorKind};

/// Longest input we accept. Real URIs are a few hundred bytes; the cap bounds the work and
/// the allocations an attacker-supplied string can cause.
const MAX_URI_LEN: usize = 64 * 1024;

const SCHEME: &[u8] = b"pkcs11:";

/// Error messages quote names and values only up to this many bytes.
const MAX_QUOTED: usize = 64;

/// Path attributes whose name starts with this are vendor attributes: skipped, not refused.
const VENDOR_PREFIX: &[u8] = b"x-";

/// How [`Pkcs11Uri::parse_with`] treats attributes it does not know. The default is what
/// [`Pkcs11Uri::parse`] does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct UriOptions {
    /// Skip unknown path attributes, and known attributes in the wrong section, instead of
    /// refusing the URI: what the parser did before issue 15, and what config
    /// `pkcs11-module-uri-unknown-attributes = ignore` asks for (for URIs from tools that add
    /// attributes of their own).
    pub(crate) ignore_unknown_path_attributes: bool,
}

/// The `type` path attribute: which kind of object (`CKA_CLASS`) the URI names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ObjectType {
    /// `private`: CKO_PRIVATE_KEY.
    Private,
    /// `public`: CKO_PUBLIC_KEY.
    Public,
    /// `cert`: CKO_CERTIFICATE.
    Cert,
    /// `secret-key`: CKO_SECRET_KEY.
    SecretKey,
    /// `data`: CKO_DATA.
    Data,
}

impl ObjectType {
    const ALL: [ObjectType; 5] = [
        ObjectType::Private,
        ObjectType::Public,
        ObjectType::Cert,
        ObjectType::SecretKey,
        ObjectType::Data,
    ];

    /// The value as written in a URI.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ObjectType::Private => "private",
            ObjectType::Public => "public",
            ObjectType::Cert => "cert",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }

    /// Exact, case-sensitive match, as RFC 7512 defines the values.
    fn from_bytes(value: &[u8]) -> Option<ObjectType> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().as_bytes() == value)
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed `pkcs11:` URI. Every attribute is optional; an absent one matches anything.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Pkcs11Uri {
    /// `token`: CK_TOKEN_INFO.label.
    pub(crate) token: Option<String>,
    /// `manufacturer`: CK_TOKEN_INFO.manufacturerID.
    pub(crate) manufacturer: Option<String>,
    /// `model`: CK_TOKEN_INFO.model.
    pub(crate) model: Option<String>,
    /// `serial`: CK_TOKEN_INFO.serialNumber.
    pub(crate) serial: Option<String>,
    /// `slot-description`: CK_SLOT_INFO.slotDescription.
    pub(crate) slot_description: Option<String>,
    /// `slot-manufacturer`: CK_SLOT_INFO.manufacturerID.
    pub(crate) slot_manufacturer: Option<String>,
    /// `slot-id`: CK_SLOT_ID, decimal.
    pub(crate) slot_id: Option<u64>,
    /// `library-description`: CK_INFO.libraryDescription.
    pub(crate) library_description: Option<String>,
    /// `library-manufacturer`: CK_INFO.manufacturerID.
    pub(crate) library_manufacturer: Option<String>,
    /// `library-version`: CK_INFO.libraryVersion as (major, minor); "M" means (M, 0).
    pub(crate) library_version: Option<(u8, u8)>,
    /// `object`: CKA_LABEL.
    pub(crate) object: Option<String>,
    /// `id`: CKA_ID, arbitrary bytes.
    pub(crate) id: Option<Vec<u8>>,
    /// `type`: CKA_CLASS.
    pub(crate) object_type: Option<ObjectType>,
    /// `pin-value` (query): the user PIN itself. Never printed.
    pub(crate) pin_value: Option<Zeroizing<String>>,
    /// `pin-source` (query): where to read the PIN, as given (decoded); see
    /// [`Pkcs11Uri::pin_source_path`].
    pub(crate) pin_source: Option<String>,
    /// `module-name` (query): PKCS#11 module name without path or suffix.
    pub(crate) module_name: Option<String>,
    /// `module-path` (query): PKCS#11 module file.
    pub(crate) module_path: Option<String>,
}

/// Which part of the URI an attribute sits in; decides the separators, the attribute
/// names that are known, and which characters may appear unescaped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Path,
    Query,
}

impl Section {
    /// The section's name in messages.
    fn name(self) -> &'static str {
        match self {
            Section::Path => "path",
            Section::Query => "query",
        }
    }

    /// Characters RFC 7512 lets stand unescaped in a value (`pk11-pchar` / `pk11-qchar`
    /// minus `pct-encoded`).
    fn allows_literal(self, b: u8) -> bool {
        is_unreserved(b)
            || is_res_avail(b)
            || match self {
                Section::Path => b == b'&',
                Section::Query => matches!(b, b'/' | b'?' | b'|'),
            }
    }

    /// Characters we print unescaped. Same as accepted, except `|` in the query: it was
    /// added late to the RFC and older parsers reject it raw.
    fn prints_literal(self, b: u8) -> bool {
        self.allows_literal(b) && b != b'|'
    }
}

/// RFC 3986 `unreserved`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 7512 `pk11-res-avail`: reserved characters that are not delimiters inside a value.
fn is_res_avail(b: u8) -> bool {
    matches!(
        b,
        b':' | b'[' | b']' | b'@' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'='
    )
}

/// RFC 7512 `pk11-v-attr-nm-char`; standard names are a subset.
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

/// The attributes this parser understands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Attr {
    Token,
    Manufacturer,
    Model,
    Serial,
    SlotDescription,
    SlotManufacturer,
    SlotId,
    LibraryDescription,
    LibraryManufacturer,
    LibraryVersion,
    Object,
    Type,
    Id,
    PinValue,
    PinSource,
    ModuleName,
    ModulePath,
}

impl Attr {
    /// Path attributes, in the order `Display` prints them.
    const PATH: [Attr; 13] = [
        Attr::Token,
        Attr::Manufacturer,
        Attr::Model,
        Attr::Serial,
        Attr::SlotDescription,
        Attr::SlotManufacturer,
        Attr::SlotId,
        Attr::LibraryDescription,
        Attr::LibraryManufacturer,
        Attr::LibraryVersion,
        Attr::Object,
        Attr::Type,
        Attr::Id,
    ];
    /// Query attributes, in the order `Display` prints them.
    const QUERY: [Attr; 4] = [
        Attr::PinValue,
        Attr::PinSource,
        Attr::ModuleName,
        Attr::ModulePath,
    ];

    fn name(self) -> &'static str {
        match self {
            Attr::Token => "token",
            Attr::Manufacturer => "manufacturer",
            Attr::Model => "model",
            Attr::Serial => "serial",
            Attr::SlotDescription => "slot-description",
            Attr::SlotManufacturer => "slot-manufacturer",
            Attr::SlotId => "slot-id",
            Attr::LibraryDescription => "library-description",
            Attr::LibraryManufacturer => "library-manufacturer",
            Attr::LibraryVersion => "library-version",
            Attr::Object => "object",
            Attr::Type => "type",
            Attr::Id => "id",
            Attr::PinValue => "pin-value",
            Attr::PinSource => "pin-source",
            Attr::ModuleName => "module-name",
            Attr::ModulePath => "module-path",
        }
    }

    /// The attributes of `section`, in the order `Display` prints them.
    fn of(section: Section) -> &'static [Attr] {
        match section {
            Section::Path => &Self::PATH,
            Section::Query => &Self::QUERY,
        }
    }

    /// Names are case-sensitive (RFC 7512 §2.3); a query name in the path (or the other
    /// way round) is unknown there.
    fn lookup(section: Section, name: &[u8]) -> Option<Attr> {
        Self::of(section)
            .iter()
            .copied()
            .find(|a| a.name().as_bytes() == name)
    }

    /// The attribute of `section` whose name equals `name` but for ASCII case, to point out a
    /// name that only has the wrong case.
    fn lookup_ignoring_case(section: Section, name: &[u8]) -> Option<Attr> {
        Self::of(section)
            .iter()
            .copied()
            .find(|a| a.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

impl Pkcs11Uri {
    /// True when the URI names no object (no `object`, `id` or `type`): the caller should
    /// list everything on the matching tokens.
    pub(crate) fn is_token_only(&self) -> bool {
        self.object.is_none() && self.id.is_none() && self.object_type.is_none()
    }

    /// The file named by `pin-source`: `file:/x`, `file:///x` and `file://localhost/x`
    /// give `/x`, and a value without a scheme is taken as a path as is. Returns `None`
    /// when there is no `pin-source`, it uses another scheme, or names a remote host.
    pub(crate) fn pin_source_path(&self) -> Option<&str> {
        let source = self.pin_source.as_deref()?;
        let Some(colon) = scheme_end(source) else {
            return (!source.is_empty()).then_some(source);
        };
        if !source[..colon].eq_ignore_ascii_case("file") {
            return None;
        }
        let rest = &source[colon + 1..];
        let path = match rest.strip_prefix("//") {
            // RFC 8089: "file://host/path"; only the local host makes sense for us.
            Some(authority_and_path) => {
                let slash = authority_and_path.find('/')?;
                let host = &authority_and_path[..slash];
                if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
                    return None;
                }
                &authority_and_path[slash..]
            }
            // "file:/x", and the common non-standard "file:relative/x".
            None => rest,
        };
        (!path.is_empty()).then_some(path)
    }
    /// The value of a text attribute, for `Display`. `pin-value` is deliberately absent.
    fn text_value(&self, attr: Attr) -> Option<&str> {
        let field = match attr {
            Attr::Token => &self.token,
            Attr::Manufacturer => &self.manufacturer,
            Attr::Model => &self.model,
            Attr::Serial => &self.serial,
            Attr::SlotDescription => &self.slot_description,
            Attr::SlotManufacturer => &self.slot_manufacturer,
            Attr::LibraryDescription => &self.library_description,
            Attr::LibraryManufacturer => &self.library_manufacturer,
            Attr::Object => &self.object,
            Attr::PinSource => &self.pin_source,
            Attr::ModuleName => &self.module_name,
            Attr::ModulePath => &self.module_path,
            Attr::SlotId | Attr::LibraryVersion | Attr::Type | Attr::Id | Attr::PinValue => {
                return None;
            }
        };
        field.as_deref()
    }

    /// Writes one attribute's value if it is present; returns whether it was.
    fn write_value(
        &self,
        f: &mut fmt::Formatter<'_>,
        attr: Attr,
        sep: &str,
    ) -> Result<bool, fmt::Error> {
        let section = if Attr::QUERY.contains(&attr) {
            Section::Query
        } else {
            Section::Path
        };
        let start = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            f.write_str(sep)?;
            f.write_str(attr.name())?;
            f.write_char('=')
        };
        match attr {
            Attr::PinValue => return Ok(false),
            Attr::SlotId => {
                let Some(slot) = self.slot_id else {
                    return Ok(false);
                };
                start(f)?;
                write!(f, "{slot}")?;
            }
            Attr::LibraryVersion => {
                let Some((major, minor)) = self.library_version else {
                    return Ok(false);
                };
                start(f)?;
                write!(f, "{major}.{minor}")?;
            }
            Attr::Type => {
                let Some(object_type) = self.object_type else {
                    return Ok(false);
                };
                start(f)?;
                f.write_str(object_type.as_str())?;
            }
            Attr::Id => {
                let Some(id) = &self.id else {
                    return Ok(false);
                };
                start(f)?;
                // Always escaped: ids are binary, and "%01%02" reads better than a mix.
                write_encoded(f, id, |_| false)?;
            }
            _ => {
                let Some(text) = self.text_value(attr) else {
                    return Ok(false);
                };
                start(f)?;
                write_encoded(f, text.as_bytes(), |b| section.prints_literal(b))?;
            }
        }
        Ok(true)
    }
}

/// Canonical form: fixed attribute order, uppercase `%XX`, `id` fully escaped, and no
/// `pin-value` at all, so the result is safe to log or store.
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pkcs11:")?;
        let mut sep = "";
        for attr in Attr::PATH {
            if self.write_value(f, attr, sep)? {
                sep = ";";
            }
        }
        let mut sep = "?";
        for attr in Attr::QUERY {
            if self.write_value(f, attr, sep)? {
                sep = "&";
            }
        }
        Ok(())
    }
}

/// Stands in for the PIN in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Uri")
            .field("token", &self.token)
            .field("manufacturer", &self.manufacturer)
            .field("model", &self.model)
            .field("serial", &self.serial)
            .field("slot_description", &self.slot_description)
            .field("slot_manufacturer", &self.slot_manufacturer)
            .field("slot_id", &self.slot_id)
            .field("library_description", &self.library_description)
            .field("library_manufacturer", &self.library_manufacturer)
            .field("library_version", &self.library_version)
            .field("object", &self.object)
            .field("id", &self.id)
            .field("object_type", &self.object_type)
            .field("pin_value", &self.pin_value.as_ref().map(|_| Redacted))
            .field("pin_source", &self.pin_source)
            .field("module_name", &self.module_name)
            .field("module_path", &self.module_path)
            .finish()
    }
}

/// Percent-encodes `bytes`, leaving those for which `literal` is true as they are.
fn write_encoded(
    f: &mut fmt::Formatter<'_>,
    bytes: &[u8],
    literal: impl Fn(u8) -> bool,
) -> fmt::Result {
    for &b in bytes {
        if literal(b) {
            f.write_char(char::from(b))?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

/// Where the scheme of a URI-like string ends (the index of its ':'), if it has one
/// (RFC 3986 `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`).
fn scheme_end(s: &str) -> Option<usize> {
    let colon = s.find(':')?;
    let scheme = &s.as_bytes()[..colon];
    let first_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic);
    let rest_ok = scheme
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    (first_ok && rest_ok).then_some(colon)
}
