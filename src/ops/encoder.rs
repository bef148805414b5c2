//! Encoders (provider-encoder(7)) for token keys: SubjectPublicKeyInfo DER/PEM for the public
//! key, PEM-URI files for the private key (on request), and the text encoder: what
//! `openssl pkey -text` and `storeutl -text` print. The private key never leaves the token, so
//! the text says so, shows the public parts in OpenSSL's own format (printed by the default
//! provider from a public-only copy) and ends with the key's `pkcs11:` URI. The header and URI
//! lines are latchset/pkcs11-provider's, which scripts grep: `PKCS11 RSA Private Key (2048
//! bits)`, `PKCS11 EC Public Key (256 bits)`, `URI pkcs11:...`.

use std::sync::Arc;

use crate::asn1;
use crate::error::{Error, Result};
use crate::ops::keymgmt::{self, KeyData};
use crate::ops::provider::ProvCtx;
use crate::sys::abi;
use crate::sys::libcrypto::{CoreBio, PublicPkey};
use crate::token::object::{KeyAlgorithm, KeyObj, PublicKey};
use crate::uri::{ObjectType, Pkcs11Uri};

/// An encoder context.
pub(crate) struct EncoderCtx {
    pub(crate) prov: Arc<ProvCtx>,
}

/// The URI that names `key` on its token.
pub(crate) fn key_uri(key: &KeyObj) -> Option<Pkcs11Uri> {
    let token = key.token.as_ref()?;
    Some(Pkcs11Uri {
        token: Some(token.token_label().to_string()),
        object: token.label.clone(),
        id: Some(token.id.clone()).filter(|id| !id.is_empty()),
        object_type: Some(if token.has_private() {
            ObjectType::Private
        } else {
            ObjectType::Public
        }),
        ..Pkcs11Uri::default()
    })
}

/// The key type as the text names it: the PKCS#11 key type (an RSA key restricted to PSS is
/// still `RSA`), as latchset/pkcs11-provider prints it.
fn text_type_name(key: &KeyObj) -> &'static str {
    match key.algorithm {
        KeyAlgorithm::Rsa | KeyAlgorithm::RsaPss => "RSA",
        KeyAlgorithm::Ec => "EC",
        KeyAlgorithm::Ed25519 => "ED25519",
        KeyAlgorithm::Ed448 => "ED448",
    }
}

/// The lines before OpenSSL's public key text: a private-key line when `selection` asks for the
/// private key (and the key has one), then the public-key line.
fn header(key: &KeyObj, selection: i32) -> String {
    let kind = text_type_name(key);
    let bits = key.bits();
    let mut text = String::new();
    if selection & abi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0 && key.has_private() {
        text.push_str(&format!(
            "PKCS11 {kind} Private Key ({bits} bits)\n\
             [Can't export and print private key data]\n"
        ));
    }
    text.push_str(&format!("PKCS11 {kind} Public Key ({bits} bits)\n"));
    text
}

impl EncoderCtx {
    /// `OSSL_FUNC_encoder_encode` for `pem`/`PrivateKeyInfo`: with
    /// `pkcs11-module-encode-provider-uri-to-pem = true` a PEM-URI key file naming the key;
    /// otherwise an error saying why a token private key cannot be written to a file.
    pub(crate) fn encode_pem_uri(
        &self,
        data: &KeyData,
        out: &CoreBio,
        _selection: i32,
    ) -> Result<()> {
        if !self.prov.config().encode_provider_uri_to_pem {
            return Err(Error::Unsupported(
                "a token private key cannot be written to a file; set \
                 pkcs11-module-encode-provider-uri-to-pem = true to write a PEM file that names it"
                    .into(),
            ));
        }
        let key = data.key()?;
        if key.token.as_ref().is_some_and(|t| t.is_ephemeral()) {
            return Err(Error::Unsupported(
                "this key was generated without pkcs11_uri: it is a session object that ends \
                 with the process and cannot be named in a key file; generate it with \
                 -pkeyopt pkcs11_uri:pkcs11:token=... to keep it on the token"
                    .into(),
            ));
        }
        let uri = key_uri(key).filter(|_| key.has_private()).ok_or_else(|| {
            Error::Unsupported("only token private keys can be written as PEM-URI files".into())
        })?;
        out.write_all(
            self.prov.libctx(),
            crate::pemuri::encode(&uri.to_string()).as_bytes(),
        )
    }

    /// `OSSL_FUNC_encoder_encode` for `SubjectPublicKeyInfo` as DER or PEM (`PUBLIC KEY`):
    /// what `openssl pkey -pubout` writes, made here from the token's public attributes.
    pub(crate) fn encode_public_key(
        &self,
        data: &KeyData,
        out: &CoreBio,
        _selection: i32,
        pem: bool,
    ) -> Result<()> {
        let key = data.key()?;
        let der = match &key.public {
            PublicKey::Rsa { modulus, exponent } => asn1::rsa_subject_public_key_info(
                modulus,
                exponent,
                key.algorithm == KeyAlgorithm::RsaPss,
            ),
            PublicKey::Ec { curve, point } => asn1::ec_subject_public_key_info(*curve, point),
        };
        if pem {
            let text = crate::pemuri::pem_block("PUBLIC KEY", &der);
            out.write_all(self.prov.libctx(), text.as_bytes())
        } else {
            out.write_all(self.prov.libctx(), &der)
        }
    }

    /// `OSSL_FUNC_encoder_encode` for `text`: the header lines, OpenSSL's text of the public
    /// key, and `URI <uri>` for a token key.
    pub(crate) fn encode_text(&self, data: &KeyData, out: &CoreBio, selection: i32) -> Result<()> {
        let key = data.key()?;
        let all = abi::OSSL_KEYMGMT_SELECT_PUBLIC_KEY | abi::OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS;
        let mut params = keymgmt::public_params(&key.public, all);
        let pkey = PublicPkey::from_params(
            self.prov.libctx(),
            key.algorithm.type_name(),
            params.finish(),
        )
        .map_err(|e| e.context("printing a pkcs11 key"))?;
        pkey.print(self.prov.libctx(), out, &header(key, selection))
            .map_err(|e| e.context("printing a pkcs11 key"))?;
        if let Some(uri) = key_uri(key) {
            out.write_all(self.prov.libctx(), format!("URI {uri}\n").as_bytes())?;
        }
        Ok(())
    }
}
