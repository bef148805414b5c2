//! What the `pkcs11-ossl` helper command (`src/bin/pkcs11-ossl/`) uses of this crate, and
//! nothing more: the `pkcs11:` URI parser and printer, the provider configuration (key names,
//! value checks, PIN files), token matching, the PEM-URI key file writer, and the provider's
//! wording of token errors. The helper reads URIs and `openssl.cnf` values and writes key
//! files with the same code as the provider, so the two cannot disagree about what a URI
//! selects or what a setting means. `tests/docs.rs` reads `config_keys` too.
//!
//! Not part of the provider's API (hidden from the docs); nothing inside the crate uses it.
//! Everything crossing this boundary is a plain Rust type: strings, byte slices and the small
//! structs below.

use std::fmt;

use zeroize::Zeroizing;

use crate::config::{self, Config, UnknownAttributes};
use crate::token::slot::TokenIdentity;
use crate::uri::{ObjectType, Pkcs11Uri, UriOptions};

/// The environment variable that names the PKCS#11 module and takes precedence over
/// `pkcs11-module-path` (the provider's rule; `settings` applies it).
pub const MODULE_PATH_ENV: &str = "PKCS11_PROVIDER_MODULE";

/// The prefix of a `pkcs11-module-token-pin` value that names a PIN file.
pub const PIN_FILE_PREFIX: &str = "file:";

/// The configuration key of the user PIN.
pub const TOKEN_PIN_KEY: &str = "pkcs11-module-token-pin";

/// Every key of the provider section the provider reads (`Config::KEYS`), in its order: the
/// one list the README, `openssl.cnf.example` and pkcs11-ossl(7) are checked against.
pub fn config_keys() -> &'static [&'static str] {
    Config::KEYS
}

/// The settings of a provider section the helper needs, checked as the provider checks them.
pub struct Settings {
    /// The PKCS#11 module: `PKCS11_PROVIDER_MODULE`, else `pkcs11-module-path`.
    pub module_path: Option<String>,
    /// `pkcs11-module-init-args`.
    pub init_args: Option<String>,
    /// `pkcs11-module-token-pin`: the literal PIN, or the first line of its `file:`.
    pub token_pin: Option<Zeroizing<String>>,
    /// `pkcs11-module-uri-unknown-attributes = ignore`.
    pub ignore_unknown_uri_attributes: bool,
    /// `pkcs11-module-login-behavior = never`.
    pub never_login: bool,
}

/// Builds the settings from the section's raw values (`value_of`, `None` for an absent key)
/// and the environment (`env_var`), with the provider's own parser. The error names the key
/// and the problem, never a PIN.
pub fn settings(
    value_of: impl Fn(&str) -> Option<String>,
    env_var: impl Fn(&str) -> Option<String>,
) -> Result<Settings, String> {
    let config = Config::from_lookup(value_of, env_var).map_err(|e| e.to_string())?;
    Ok(Settings {
        module_path: config.module_path.clone(),
        init_args: config.init_args.clone(),
        token_pin: config.token_pin.clone(),
        ignore_unknown_uri_attributes: config.uri_unknown_attributes == UnknownAttributes::Ignore,
        never_login: config.login_behavior == config::LoginBehavior::Never,
    })
}

/// The first line of a PIN file, read as the provider reads `file:` PINs (regular files only,
/// never blocking on a FIFO). The error names the file, never the PIN.
pub fn read_pin_file(path: &str) -> Result<Zeroizing<String>, String> {
    config::read_pin_file(path)
}

/// The kind of object a URI's `type` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// `private`
    Private,
    /// `public`
    Public,
    /// `cert`
    Cert,
    /// `secret-key`
    SecretKey,
    /// `data`
    Data,
}

impl ObjectKind {
    fn from_type(object_type: ObjectType) -> ObjectKind {
        match object_type {
            ObjectType::Private => ObjectKind::Private,
            ObjectType::Public => ObjectKind::Public,
            ObjectType::Cert => ObjectKind::Cert,
            ObjectType::SecretKey => ObjectKind::SecretKey,
            ObjectType::Data => ObjectKind::Data,
        }
    }

    fn to_type(self) -> ObjectType {
        match self {
            ObjectKind::Private => ObjectType::Private,
            ObjectKind::Public => ObjectType::Public,
            ObjectKind::Cert => ObjectType::Cert,
            ObjectKind::SecretKey => ObjectType::SecretKey,
            ObjectKind::Data => ObjectType::Data,
        }
    }

    /// The value as written in a URI (`private`, `cert`, ...).
    pub fn as_str(self) -> &'static str {
        self.to_type().as_str()
    }
}

/// The identity of a slot and its token, blank padding removed, for [`Uri::matches_token`].
#[derive(Clone, Debug, Default)]
pub struct TokenFacts {
    pub slot_id: u64,
    pub label: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub slot_description: String,
    pub slot_manufacturer: String,
}

/// A parsed `pkcs11:` URI. `Display` prints the canonical form without `pin-value`.
#[derive(Clone)]
pub struct Uri(Pkcs11Uri);

impl Uri {
    /// Parses `text` as the provider does: unknown path attributes are refused unless
    /// `ignore_unknown_attributes` (config `pkcs11-module-uri-unknown-attributes = ignore`).
    pub fn parse(text: &str, ignore_unknown_attributes: bool) -> Result<Uri, String> {
        let options = UriOptions {
            ignore_unknown_path_attributes: ignore_unknown_attributes,
        };
        Pkcs11Uri::parse_with(text.as_bytes(), options)
            .map(Uri)
            .map_err(|e| e.to_string())
    }

    /// The URI of one object on the token labelled `token`: `object` (label), `id` and `type`
    /// where given.
    pub fn for_object(
        token: &str,
        label: Option<&str>,
        id: Option<&[u8]>,
        kind: Option<ObjectKind>,
    ) -> Uri {
        Uri(Pkcs11Uri {
            token: Some(token.to_owned()),
            object: label.map(str::to_owned),
            id: id.map(<[u8]>::to_vec),
            object_type: kind.map(ObjectKind::to_type),
            ..Pkcs11Uri::default()
        })
    }

    /// `object` (`CKA_LABEL`).
    pub fn object(&self) -> Option<&str> {
        self.0.object.as_deref()
    }

    /// `id` (`CKA_ID`).
    pub fn id(&self) -> Option<&[u8]> {
        self.0.id.as_deref()
    }

    /// `type`.
    pub fn kind(&self) -> Option<ObjectKind> {
        self.0.object_type.map(ObjectKind::from_type)
    }

    /// `pin-value`.
    pub fn pin_value(&self) -> Option<&str> {
        self.0.pin_value.as_deref().map(String::as_str)
    }

    /// `pin-source` as given (decoded).
    pub fn pin_source(&self) -> Option<&str> {
        self.0.pin_source.as_deref()
    }

    /// The file `pin-source` names (`file:` URIs and plain paths); `None` without a
    /// `pin-source` or for one the provider cannot read (another scheme, a remote host).
    pub fn pin_source_path(&self) -> Option<&str> {
        self.0.pin_source_path()
    }

    /// True when every token and slot attribute of the URI matches `token` (RFC 7512 §2.3),
    /// with the provider's own matching code.
    pub fn matches_token(&self, token: &TokenFacts) -> bool {
        let identity = TokenIdentity {
            label: token.label.clone(),
            manufacturer: token.manufacturer.clone(),
            model: token.model.clone(),
            serial: token.serial.clone(),
            slot_description: token.slot_description.clone(),
            slot_manufacturer: token.slot_manufacturer.clone(),
        };
        identity.matches(&self.0, token.slot_id)
    }

    /// The URI to put in a key file: the same attributes, `type=private`, and no
    /// `pin-value` or `pin-source` (a key file never carries PIN information).
    pub fn for_key_file(&self) -> Uri {
        let mut uri = self.0.clone();
        uri.pin_value = None;
        uri.pin_source = None;
        uri.object_type = Some(ObjectType::Private);
        Uri(uri)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The text of a PEM-URI key file naming `uri` (printed without `pin-value`).
pub fn key_file_text(uri: &Uri) -> String {
    crate::pemuri::encode(&uri.to_string())
}

/// A token error as the provider words it: "C_Login failed: CKR_PIN_INCORRECT".
pub fn describe_token_error(error: cryptoki::error::Error) -> String {
    crate::error::Error::from(error).to_string()
}

/// A short name of the curve `CKA_EC_PARAMS` names (`P-256`, `Ed25519`, ...).
pub fn curve_name(ec_params: &[u8]) -> Option<&'static str> {
    use crate::asn1::Curve;
    Curve::from_ec_params(ec_params).map(|curve| match curve {
        Curve::P256 => "P-256",
        Curve::P384 => "P-384",
        Curve::P521 => "P-521",
        Curve::Ed25519 => "Ed25519",
        Curve::Ed448 => "Ed448",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_value(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_module_environment_variable_is_the_providers() {
        let found = settings(no_value, |name| {
            (name == MODULE_PATH_ENV).then(|| "/from/env.so".to_owned())
        })
        .unwrap();
        assert_eq!(found.module_path.as_deref(), Some("/from/env.so"));
    }

    #[test]
    fn the_pin_file_prefix_is_the_providers() {
        let dir = std::env::temp_dir().join(format!("p11-tool-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pin");
        std::fs::write(&file, "4321\n").unwrap();
        let value = format!("{PIN_FILE_PREFIX}{}", file.display());
        let found = settings(
            |key| (key == TOKEN_PIN_KEY).then(|| value.clone()),
            no_value,
        )
        .unwrap();
        assert_eq!(found.token_pin.as_deref().map(String::as_str), Some("4321"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(config_keys().contains(&TOKEN_PIN_KEY));
    }

    #[test]
    fn key_file_uris_name_a_private_key_and_carry_no_pin() {
        let uri = Uri::parse("pkcs11:token=t;object=k?pin-value=1234", false).unwrap();
        let key_file = uri.for_key_file().to_string();
        assert_eq!(key_file, "pkcs11:token=t;object=k;type=private");
        let text = key_file_text(&uri.for_key_file());
        let (_, decoded) = crate::pemuri::der_body(text.as_bytes()).unwrap().unwrap();
        assert_eq!(decoded, key_file);
    }

    #[test]
    fn object_uris_are_escaped() {
        let uri = Uri::for_object("my token", Some("a;b"), Some(&[1, 0xff]), None);
        assert_eq!(
            uri.to_string(),
            "pkcs11:token=my%20token;object=a%3Bb;id=%01%FF"
        );
        let again = Uri::parse(&uri.to_string(), false).unwrap();
        assert_eq!(again.object(), Some("a;b"));
        assert_eq!(again.id(), Some(&[1u8, 0xff][..]));
    }

    #[test]
    fn token_matching_uses_every_token_attribute() {
        let token = TokenFacts {
            slot_id: 7,
            label: "web".into(),
            serial: "42".into(),
            ..TokenFacts::default()
        };
        for (text, expected) in [
            ("pkcs11:token=web", true),
            ("pkcs11:token=web;serial=42", true),
            ("pkcs11:token=web;serial=43", false),
            ("pkcs11:slot-id=7", true),
            ("pkcs11:slot-id=8", false),
            ("pkcs11:token=other", false),
        ] {
            let uri = Uri::parse(text, false).unwrap();
            assert_eq!(uri.matches_token(&token), expected, "{text}");
        }
    }
}
