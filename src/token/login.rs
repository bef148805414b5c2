//! A slot's login state (PKCS#11 3.0 §5.7) and the PIN order.
//!
//! Login is per application per token in PKCS#11, and lasts while at least one session is open,
//! so each slot keeps one dedicated login session open. PIN order (DESIGN.md): URI
//! `pin-value`/`pin-source`, then config `pkcs11-module-token-pin`, then a PIN cached from an
//! earlier successful login, then the OpenSSL passphrase callback. A PIN the token rejected with
//! `CKR_PIN_INCORRECT` is remembered and never sent again automatically; a token reporting
//! "final try" or "locked" is not sent a PIN at all.

use std::sync::{Arc, Mutex, MutexGuard};

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot as SlotId;
use cryptoki::types::RawAuthPin;

use super::info::TokenFacts;
use super::pool::{SessionPool, is_session_lost};
use super::settings::SlotSettings;
use crate::config::LoginBehavior;
use crate::error::{Error, Result};
use crate::sys::pkcs11::SignFunctions;

pub(crate) use super::settings::Pin;

#[derive(Default)]
struct LoginState {
    logged_in: bool,
    cached_pin: Option<Pin>,
    rejected_pins: Vec<Pin>,
}

/// Asks the user for a PIN (the OpenSSL passphrase callback); the text says which token.
pub(crate) type Prompt<'p> = dyn FnMut(&str) -> Result<Option<Pin>> + 'p;

/// Where a PIN may come from for one login attempt, besides config and cache.
pub(crate) struct PinRequest<'a, 'p> {
    /// PIN given in the URI (`pin-value` or the content of `pin-source`).
    pub(crate) uri_pin: Option<Pin>,
    /// Asks the user; `None` when there is no passphrase callback.
    pub(crate) prompt: Option<&'a mut Prompt<'p>>,
}

/// The login state of one slot's token.
pub(crate) struct Login {
    pkcs11: Pkcs11,
    id: SlotId,
    label: String,
    login_required: bool,
    protected_path: bool,
    settings: Arc<SlotSettings>,
    /// The module's own entry points, for `C_GetTokenInfo` answers cryptoki cannot parse.
    direct: Option<Arc<SignFunctions>>,
    state: Mutex<LoginState>,
}

impl Login {
    pub(crate) fn new(
        pkcs11: Pkcs11,
        id: SlotId,
        token: &TokenFacts,
        settings: Arc<SlotSettings>,
        direct: Option<Arc<SignFunctions>>,
    ) -> Login {
        Login {
            pkcs11,
            id,
            label: token.label.clone(),
            login_required: token.login_required,
            protected_path: token.protected_path,
            settings,
            direct,
            state: Mutex::new(LoginState::default()),
        }
    }

    fn label(&self) -> &str {
        &self.label
    }

    /// What a PIN prompt names, as latchset/pkcs11-provider words it (scripts expect
    /// `Enter pass phrase for PKCS#11 Token (Slot 1 - web):` from OpenSSL's UI).
    fn prompt_info(&self) -> String {
        format!("PKCS#11 Token (Slot {} - {})", self.id.id(), self.label())
    }

    fn login_state(&self) -> Result<MutexGuard<'_, LoginState>> {
        self.state
            .lock()
            .map_err(|_| Error::Module("login state lock poisoned".into()))
    }

    /// True once a login on this token succeeded in this process.
    pub(crate) fn is_logged_in(&self) -> bool {
        self.state.lock().map(|s| s.logged_in).unwrap_or(false)
    }

    /// Whether reading `want_private` objects needs a login first, per `login-behavior`.
    pub(crate) fn needs_login(&self, want_private: bool) -> bool {
        match self.settings.login_behavior {
            LoginBehavior::Never => false,
            LoginBehavior::Always => !self.is_logged_in(),
            LoginBehavior::Auto => want_private && self.login_required && !self.is_logged_in(),
        }
    }

    /// True when the token hides its private objects until a login that this provider was told
    /// not to make (`pkcs11-module-login-behavior = never`) and nobody else made.
    pub(crate) fn private_objects_hidden(&self) -> bool {
        self.settings.login_behavior == LoginBehavior::Never
            && self.login_required
            && !self.is_logged_in()
    }

    /// Logs the user in unless already logged in.
    pub(crate) fn login(&self, pool: &SessionPool, mut request: PinRequest<'_, '_>) -> Result<()> {
        if self.is_logged_in() {
            return Ok(());
        }
        let token = TokenFacts::read(&self.pkcs11, self.id, self.direct.as_deref())?;
        if token.user_pin_locked {
            return Err(Error::PinRefused(format!(
                "the user PIN of token '{}' is locked",
                self.label()
            )));
        }
        if token.user_pin_final_try {
            return Err(Error::PinRefused(format!(
                "token '{}' reports that one more wrong PIN locks it; refusing to log in \
                 automatically (log in once with the token's own tool)",
                self.label()
            )));
        }
        let (pin, prompted) = if self.protected_path {
            (None, false)
        } else {
            // Gathered without holding the login lock: the prompt calls back into OpenSSL.
            let (pin, prompted) = self.choose_pin(&mut request)?;
            (Some(pin), prompted)
        };
        let mut state = self.login_state()?;
        if state.logged_in {
            return Ok(());
        }
        let mut reserved = pool.reserved()?;
        if let Some(pin) = &pin {
            if state
                .rejected_pins
                .iter()
                .any(|bad| bad.as_slice() == pin.as_slice())
            {
                return Err(Error::PinRefused(format!(
                    "the PIN for token '{}' was already rejected with CKR_PIN_INCORRECT; \
                     not sending it again",
                    self.label()
                )));
            }
        }
        let log_in = |session: &Session| log_in_as(session, UserType::User, pin.as_ref());
        let (session, result) = match reserved.take() {
            None => {
                let session = self.pkcs11.open_ro_session(self.id)?;
                let result = log_in(&session);
                (session, result)
            }
            Some(kept) => match log_in(&kept) {
                // The kept session died with the token's state (removed and inserted again):
                // the PIN was not checked, so one try on a fresh session is still the first.
                Err(cryptoki::error::Error::Pkcs11(rv, _)) if is_session_lost(rv) => {
                    drop(kept);
                    let session = self.pkcs11.open_ro_session(self.id)?;
                    let result = log_in(&session);
                    (session, result)
                }
                result => (kept, result),
            },
        };
        match result {
            Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                log::debug!("logged in to token '{}'", self.label());
                *reserved = Some(session);
                state.logged_in = true;
                if let Some(pin) = pin {
                    if !prompted || self.settings.cache_pins {
                        state.cached_pin = Some(pin);
                    }
                }
                Ok(())
            }
            Err(e) => {
                let err = Error::from(e);
                if err.token_rv() == Some(RvError::PinIncorrect) {
                    if let Some(pin) = pin {
                        state.rejected_pins.push(pin);
                    }
                }
                *reserved = Some(session);
                Err(err.context(format!("login to token '{}'", self.label())))
            }
        }
    }

    /// Picks the PIN to try; the flag is true when it was typed at the prompt.
    fn choose_pin(&self, request: &mut PinRequest<'_, '_>) -> Result<(Pin, bool)> {
        if let Some(pin) = request.uri_pin.take() {
            return Ok((pin, false));
        }
        if let Some(pin) = &self.settings.config_pin {
            return Ok((pin.clone(), false));
        }
        if let Some(pin) = self.login_state()?.cached_pin.clone() {
            return Ok((pin, false));
        }
        if let Some(prompt) = request.prompt.as_mut() {
            if let Some(pin) = prompt(&self.prompt_info())? {
                return Ok((pin, true));
            }
            // The application's callback gave nothing (a store opened without a UI method):
            // ask on the terminal, if there is one.
            if let Some(pin) = crate::sys::ui::ask_pin(&self.prompt_info())? {
                return Ok((pin, true));
            }
        }
        Err(Error::LoginRequired(format!(
            "token '{}' requires login and no PIN was given (use pin-value or pin-source in \
             the URI, pkcs11-module-token-pin in openssl.cnf, or a passphrase prompt)",
            self.label()
        )))
    }

    /// The context-specific login (`CKU_CONTEXT_SPECIFIC`) that a `CKA_ALWAYS_AUTHENTICATE`
    /// key needs between `C_SignInit` and `C_Sign`: a NULL PIN on a protected authentication
    /// path, else the PIN of the user login when it may be reused, else one typed at the
    /// terminal for this signature (when standard input is a terminal).
    pub(super) fn context_login(&self, session: &Session) -> Result<()> {
        let pin = if self.protected_path {
            None
        } else {
            let kept = self
                .cached_pin()
                .or_else(|| self.settings.config_pin.clone());
            let pin = match kept {
                Some(pin) => pin,
                None => crate::sys::ui::ask_pin(&self.prompt_info())?.ok_or_else(|| {
                    Error::LoginRequired(format!(
                        "a key on token '{}' needs its PIN for every signature \
                         (CKA_ALWAYS_AUTHENTICATE) and no PIN is kept: give it in the URI or \
                         openssl.cnf, or set pkcs11-module-cache-pins = cache",
                        self.label()
                    ))
                })?,
            };
            Some(pin)
        };
        log_in_as(session, UserType::ContextSpecific, pin.as_ref()).map_err(|e| {
            Error::from(e).context(format!(
                "context-specific login to token '{}'",
                self.label()
            ))
        })
    }

    /// The PIN of the last successful non-interactive (or, with `cache-pins`, prompted) login.
    pub(crate) fn cached_pin(&self) -> Option<Pin> {
        self.state.lock().ok().and_then(|s| s.cached_pin.clone())
    }

    /// Logs in again after the token forgot the login (e.g. `CKR_USER_NOT_LOGGED_IN`), using
    /// only non-interactive sources.
    pub(crate) fn relogin(&self, pool: &SessionPool) -> Result<()> {
        if let Ok(mut state) = self.login_state() {
            state.logged_in = false;
        }
        self.login(
            pool,
            PinRequest {
                uri_pin: None,
                prompt: None,
            },
        )
    }
}

/// `C_Login` as `user` with `pin` (NULL on a protected authentication path), dropping the
/// OpenSSL errors the module leaves behind (SoftHSM2 uses OpenSSL itself).
fn log_in_as(
    session: &Session,
    user: UserType,
    pin: Option<&Pin>,
) -> std::result::Result<(), cryptoki::error::Error> {
    crate::sys::libcrypto::discarding_errors(|| match pin {
        None => session.login(user, None),
        Some(pin) => session.login_with_raw(user, &RawAuthPin::new(Box::new(pin.to_vec()))),
    })
}
