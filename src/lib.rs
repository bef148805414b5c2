//! pkcs11-ossl: an OpenSSL 3 provider that uses private keys kept on PKCS#11 tokens.
//!
//! OpenSSL loads the cdylib through openssl.cnf and calls `OSSL_provider_init` (`edge`). From
//! there the provider offers a `pkcs11:` URI store, key management, signatures and PEM-URI key
//! files. The source tree shows the layers, data flowing one way:
//!
//! - `edge/`: the inbound C edge (entry points, dispatch tables, panic boundary, handles);
//! - `ops/`: one module per OpenSSL operation (store, keymgmt, signature, encoder, decoder);
//! - `token/`: the token model (module, slot, session pool, login, objects, the key-operation
//!   chokepoint);
//! - `sys/`: outbound wrappers (libcrypto, core upcalls, direct PKCS#11 calls, atfork).
//!
//! Beside them, pure code any layer may use: `uri` (RFC 7512), `config`, `asn1`, `pemuri`,
//! `error`, `logging`. `unsafe` lives only in `edge` and `sys`.

// The two C-facing layers are the only ones allowed `unsafe` (STYLE.md).
#[allow(unsafe_code)]
mod edge;
#[allow(unsafe_code)]
mod sys;

mod ops;
mod token;

mod asn1;
mod config;
mod error;
mod logging;
mod pemuri;
mod uri;

pub use edge::OSSL_provider_init;

/// The crate's URI, configuration and PEM-URI code for the `pkcs11-ossl` helper command
/// (`src/bin/pkcs11-ossl/`) and the documentation tests. Not part of the provider's API.
#[doc(hidden)]
pub mod tool;

/// Entry points for the fuzz driver (`examples/fuzz.rs`): the parsers of untrusted input are
/// crate-private, so these two functions expose them, and nothing else, to outside code. Each
/// ignores the parse result; a panic is the only failure. Not part of the provider's API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::uri::{Pkcs11Uri, UriOptions};

    /// Parses `input` as a `pkcs11:` URI twice: with the default options and with unknown
    /// attributes ignored. A URI the default parser accepts must give the same value both
    /// ways; a URI that parses must print to one the default parser reads back as the same
    /// value (skipped attributes are not printed, nor is the PIN, which is therefore left out
    /// of the comparison).
    pub fn uri(input: &[u8]) {
        let strict = Pkcs11Uri::parse(input);
        let ignoring_unknown = Pkcs11Uri::parse_with(
            input,
            UriOptions {
                ignore_unknown_path_attributes: true,
            },
        );
        match &strict {
            Ok(parsed) => assert!(ignoring_unknown.as_ref() == Ok(parsed), "options differ"),
            Err(error) => drop(error.to_string()),
        }
        match ignoring_unknown {
            Ok(mut parsed) => {
                parsed.pin_value = None;
                let printed = parsed.to_string();
                // Escaping can make the printed form longer than the parser's 64 KiB input limit.
                if printed.len() <= 64 * 1024 {
                    let again = Pkcs11Uri::parse(printed.as_bytes());
                    assert!(again.as_ref() == Ok(&parsed), "round trip: {printed}");
                }
                let _ = parsed.pin_source_path();
            }
            Err(error) => drop(error.to_string()),
        }
    }

    /// Decodes `input` as a PEM-URI key file (armour, base64, DER) and as a bare DER body, and
    /// parses any URI found, as the decoder does.
    pub fn pem_uri(input: &[u8]) {
        if let Ok(Some((der, text))) = crate::pemuri::der_body(input) {
            uri(text.as_bytes());
            // The key decoders' step, on the body the first step hands on.
            let _ = crate::pemuri::decode_der(&der);
        }
        if let Ok(Some(text)) = crate::pemuri::decode_der(input) {
            uri(text.as_bytes());
        }
        let _ = crate::pemuri::is_end_line(input);
    }
}
