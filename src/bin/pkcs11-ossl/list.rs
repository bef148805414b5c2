//! `pkcs11-ossl list [URI]`: the tokens the module offers and, on each initialised token the
//! URI matches, the keys and certificates the URI selects, each with a URI that selects it.
//! Private objects are shown after one login with the PIN the provider would use; without a
//! PIN, a note says they are hidden. Exit status 1 when a login failed.

use std::path::Path;

use pkcs11_ossl::tool::{self, Uri};

use crate::setup;
use crate::token::{self, LoginError, Module, ObjectEntry};

pub(crate) fn run(config: Option<&Path>, text: Option<&str>) -> Result<bool, String> {
    let (settings, entry) = setup::load_settings(config)?;
    let uri = text.map(|t| setup::parse_uri(t, &settings)).transpose()?;
    let module_path = settings.module_path.clone().ok_or(
        "no PKCS#11 module: set pkcs11-module-path in the provider section or PKCS11_PROVIDER_MODULE",
    )?;
    let module = Module::load(&module_path)?;
    crate::say(format!("module: {module_path} ({})", module.description));
    crate::say("");
    let tokens = module.tokens()?;
    let config_pin = entry.as_ref().and_then(|e| e.value(tool::TOKEN_PIN_KEY));
    let pin = setup::pin_for(uri.as_ref(), &settings, config_pin)?;

    let mut token_rows = vec![row(&[
        "SLOT",
        "TOKEN",
        "MANUFACTURER",
        "MODEL",
        "SERIAL",
        "STATE",
    ])];
    let mut object_rows = vec![row(&["TYPE", "KEY TYPE", "LABEL", "ID", "URI"])];
    let mut notes = Vec::new();
    let mut all_ok = true;
    for token in &tokens {
        let selected = uri.as_ref().is_none_or(|u| u.matches_token(&token.facts));
        let mut state = if !token.is_initialized() {
            "not initialised".to_owned()
        } else if !selected {
            "not selected by the URI".to_owned()
        } else if token.info.login_required() {
            "login required".to_owned()
        } else {
            "no login needed".to_owned()
        };
        if token.is_initialized() && selected {
            let session = module.open_session(token)?;
            if token.info.login_required() && !settings.never_login {
                match &pin {
                    Some(pin) => match token::login(&session, token, pin) {
                        Ok(()) => state = "logged in".to_owned(),
                        Err(error) => {
                            all_ok = false;
                            state = "login failed".to_owned();
                            notes.push(format!(
                                "token '{}': {}; private objects are not shown",
                                token.facts.label,
                                login_problem(&error, &pin.source)
                            ));
                        }
                    },
                    None => notes.push(format!(
                        "token '{}': not logged in (no PIN in the URI or {}); private objects \
                         are not shown",
                        token.facts.label,
                        tool::TOKEN_PIN_KEY
                    )),
                }
            }
            let filter = uri
                .clone()
                .unwrap_or_else(|| Uri::for_object(&token.facts.label, None, None, None));
            let mut objects = token::find_objects(&session, &filter)?;
            objects.sort_by_key(|o| (kind_order(o), o.id.clone(), o.label.clone()));
            for object in objects {
                object_rows.push(object_row(&object, token));
            }
        }
        token_rows.push(vec![
            token.facts.slot_id.to_string(),
            token.facts.label.clone(),
            token.facts.manufacturer.clone(),
            token.facts.model.clone(),
            token.facts.serial.clone(),
            state,
        ]);
    }
    print_table(&token_rows);
    crate::say("");
    if object_rows.len() == 1 {
        crate::say("no keys or certificates found");
    } else {
        print_table(&object_rows);
    }
    for note in notes {
        crate::say(format!("note: {note}"));
    }
    Ok(all_ok)
}

fn login_problem(error: &LoginError, source: &str) -> String {
    match error {
        LoginError::WrongPin => {
            format!("the PIN from {source} was refused (CKR_PIN_INCORRECT; tried once, not again)")
        }
        LoginError::Refused(why) | LoginError::Failed(why) => why.clone(),
    }
}

fn kind_order(object: &ObjectEntry) -> u8 {
    use pkcs11_ossl::tool::ObjectKind as K;
    match object.kind {
        K::Private => 0,
        K::Public => 1,
        K::Cert => 2,
        K::SecretKey => 3,
        K::Data => 4,
    }
}

fn object_row(object: &ObjectEntry, token: &token::TokenEntry) -> Vec<String> {
    vec![
        object.kind.as_str().to_owned(),
        object.key_type.clone(),
        object.label.clone().unwrap_or_else(|| "-".to_owned()),
        object.id_hex(),
        object.uri(token).to_string(),
    ]
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// Prints rows in columns two spaces apart; the last column is not padded.
fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[index] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        crate::say(line.trim_end());
    }
}
