//! What the provider needs from a token's `C_GetTokenInfo`: identity strings, the flags that
//! decide login, and the session limit.
//!
//! Read through cryptoki; when cryptoki refuses the answer because a field the provider never
//! uses is malformed (opencryptoki 3.8, Debian 12's, sets `CKF_CLOCK_ON_TOKEN` and writes
//! `utcTime` as `hh:mm:ss`: cryptoki's date parsing fails and the token was skipped), through
//! the module's own `C_GetTokenInfo`, which ignores `utcTime`. Found by scripts/matrix.sh.

use cryptoki::context::Pkcs11;
use cryptoki::slot::{Limit, Slot as SlotId};

use crate::error::Result;
use crate::sys::pkcs11::SignFunctions;

/// The token facts the provider uses; strings without their blank padding.
pub(crate) struct TokenFacts {
    pub(crate) label: String,
    pub(crate) manufacturer: String,
    pub(crate) model: String,
    pub(crate) serial: String,
    pub(crate) initialized: bool,
    pub(crate) write_protected: bool,
    pub(crate) login_required: bool,
    pub(crate) protected_path: bool,
    pub(crate) user_pin_locked: bool,
    pub(crate) user_pin_final_try: bool,
    /// The token's session limit, when it states one.
    pub(crate) session_limit: Option<usize>,
}

impl TokenFacts {
    /// `C_GetTokenInfo` of slot `id`: through cryptoki, or directly (`direct`, the module's
    /// entry points) when cryptoki cannot parse the structure.
    pub(crate) fn read(
        pkcs11: &Pkcs11,
        id: SlotId,
        direct: Option<&SignFunctions>,
    ) -> Result<TokenFacts> {
        let token = match pkcs11.get_token_info(id) {
            Ok(token) => token,
            Err(e @ (cryptoki::error::Error::ParseInt(_) | cryptoki::error::Error::Utf8(_))) => {
                let Some(direct) = direct else {
                    return Err(e.into());
                };
                log::debug!(
                    "slot {id}: cryptoki cannot parse C_GetTokenInfo ({e}); reading it directly, \
                     without utcTime"
                );
                let raw = direct.token_info(id)?;
                return Ok(TokenFacts {
                    label: raw.label,
                    manufacturer: raw.manufacturer,
                    model: raw.model,
                    serial: raw.serial,
                    initialized: raw.initialized,
                    write_protected: raw.write_protected,
                    login_required: raw.login_required,
                    protected_path: raw.protected_path,
                    user_pin_locked: raw.user_pin_locked,
                    user_pin_final_try: raw.user_pin_final_try,
                    session_limit: raw.max_session_count,
                });
            }
            Err(e) => return Err(e.into()),
        };
        Ok(TokenFacts {
            label: token.label().trim_end().to_string(),
            manufacturer: token.manufacturer_id().trim_end().to_string(),
            model: token.model().trim_end().to_string(),
            serial: token.serial_number().trim_end().to_string(),
            initialized: token.token_initialized(),
            write_protected: token.write_protected(),
            login_required: token.login_required(),
            protected_path: token.protected_authentication_path(),
            user_pin_locked: token.user_pin_locked(),
            user_pin_final_try: token.user_pin_final_try(),
            session_limit: match token.max_session_count() {
                Limit::Max(n) => usize::try_from(n).ok().filter(|n| *n > 0),
                Limit::Unavailable | Limit::Infinite => None,
            },
        })
    }
}
