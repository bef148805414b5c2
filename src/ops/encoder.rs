//! Encoders (provider-encoder(7)) for token keys: SubjectPublicKeyInfo DER/PEM for the public
//! key, PEM-URI files for the private key (on request), and the text encoder: what
//! `openssl pkey -text` prints. The private key never leaves the token, so the text names the
//! key by its `pkcs11:` URI and shows the public parts in OpenSSL's own format (printed by the
//! default provider from a public-only copy).

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

/// The first lines of the text form of `key`.
fn header(key: &KeyObj) -> String {
    let kind = key.algorithm.type_name().to_string_lossy();
    match key_uri(key) {
        Some(uri) if key.has_private() => format!(
            "PKCS#11 {kind} private key ({} bit), kept on the token\nURI: {uri}\n",
            key.bits()
        ),
        Some(uri) => format!(
            "PKCS#11 {kind} public key ({} bit)\nURI: {uri}\n",
            key.bits()
        ),
        None => format!("{kind} public key ({} bit)\n", key.bits()),
    }
}

impl EncoderCtx {
    /// `OSSL_FUNC_encoder_encode` for `pem`/`PrivateKeyInfo`: with
    /// `pkcs11-module-encode-provider-uri-to-pem = true` a PEM-URI key file naming the key;
    /// otherwise an error saying why a token private key cannot be written to a file.
    pub(crate) fn encode_pem_uri(&self, data: &KeyData, out: &CoreBio) -> Result<()> {
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
    pub(crate) fn encode_public_key(&self, data: &KeyData, out: &CoreBio, pem: bool) -> Result<()> {
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

    /// `OSSL_FUNC_encoder_encode` for `text`.
    pub(crate) fn encode_text(&self, data: &KeyData, out: &CoreBio) -> Result<()> {
        let key = data.key()?;
        let all = abi::OSSL_KEYMGMT_SELECT_PUBLIC_KEY | abi::OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS;
        let mut params = keymgmt::public_params(&key.public, all);
        let pkey = PublicPkey::from_params(
            self.prov.libctx(),
            key.algorithm.type_name(),
            params.finish(),
        )
        .map_err(|e| e.context("printing a pkcs11 key"))?;
        pkey.print(self.prov.libctx(), out, &header(key))
            .map_err(|e| e.context("printing a pkcs11 key"))
    }
}
