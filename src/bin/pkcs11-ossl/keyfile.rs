//! `pkcs11-ossl keyfile URI [-o FILE]`: writes a PEM-URI key file (DESIGN.md "PEM-URI key
//! files") for the one private key the URI selects. The URI is checked on the token first:
//! exactly one private key must match, on the tokens the URI matches, after logging in with
//! the PIN the provider would use. The file gets the URI with `type=private` and without
//! `pin-value`/`pin-source`; it never holds a PIN.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use pkcs11_ossl::tool::{self, ObjectKind};

use crate::setup;
use crate::token::{self, LoginError, Module};

pub(crate) fn run(
    config: Option<&Path>,
    text: &str,
    output: Option<&Path>,
) -> Result<bool, String> {
    let (settings, entry) = setup::load_settings(config)?;
    let uri = setup::parse_uri(text, &settings)?;
    if let Some(kind) = uri.kind().filter(|k| *k != ObjectKind::Private) {
        return Err(format!(
            "the URI names type={}; a key file names a private key (type=private)",
            kind.as_str()
        ));
    }
    let module_path = settings.module_path.clone().ok_or(
        "no PKCS#11 module: set pkcs11-module-path in the provider section or PKCS11_PROVIDER_MODULE",
    )?;
    let module = Module::load(&module_path)?;
    let tokens: Vec<_> = module
        .tokens()?
        .into_iter()
        .filter(|t| t.is_initialized() && uri.matches_token(&t.facts))
        .collect();
    if tokens.is_empty() {
        return Err(format!("no token matches {uri} (see `pkcs11-ossl list`)"));
    }
    let config_pin = entry.as_ref().and_then(|e| e.value(tool::TOKEN_PIN_KEY));
    let pin = setup::pin_for(Some(&uri), &settings, config_pin)?;
    let mut matches = Vec::new();
    let mut not_logged_in = Vec::new();
    for token in &tokens {
        let session = module.open_session(token)?;
        match &pin {
            Some(pin) if token.info.login_required() => {
                token::login(&session, token, pin).map_err(|e| match e {
                    LoginError::WrongPin => format!(
                        "token '{}' refused the PIN from {} (CKR_PIN_INCORRECT); it was tried \
                         once and is not tried again",
                        token.facts.label, pin.source
                    ),
                    LoginError::Refused(why) | LoginError::Failed(why) => {
                        format!("token '{}': {why}", token.facts.label)
                    }
                })?;
            }
            None if token.info.login_required() => not_logged_in.push(token.facts.label.clone()),
            _ => {}
        }
        let keys = token::find_with(&session, uri.object(), uri.id(), Some(ObjectKind::Private))?;
        matches.extend(keys.into_iter().map(|key| (key.uri(token), key)));
    }
    let key_uri = uri.for_key_file();
    match matches.len() {
        0 if !not_logged_in.is_empty() => Err(format!(
            "no private key matches {key_uri}; no PIN was found (URI pin-value/pin-source or \
             {}) to log in to {}, and private keys are only visible after login",
            tool::TOKEN_PIN_KEY,
            not_logged_in.join(", ")
        )),
        0 => Err(format!(
            "no private key matches {key_uri} (see `pkcs11-ossl list`)"
        )),
        1 => {
            let (found_uri, key) = &matches[0];
            let text = tool::key_file_text(&key_uri);
            write_output(output, &text)?;
            eprintln!(
                "pkcs11-ossl keyfile: {} names the {} key {found_uri}",
                output.map_or_else(|| "the key file".to_owned(), |p| p.display().to_string()),
                key.key_type
            );
            Ok(true)
        }
        count => {
            let listed: Vec<String> = matches
                .iter()
                .map(|(u, k)| format!("  {u} ({})", k.key_type))
                .collect();
            Err(format!(
                "{key_uri} matches {count} private keys; a key file must name exactly one. \
                 Add id= or token= to the URI to choose:\n{}",
                listed.join("\n")
            ))
        }
    }
}

fn write_output(output: Option<&Path>, text: &str) -> Result<(), String> {
    match output {
        Some(path) => {
            fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write to standard output: {e}")),
    }
}
