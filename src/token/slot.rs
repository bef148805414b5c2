//! One slot with a token: its identity (for URI matching), a pool of sessions, and the login
//! state (PKCS#11 3.0 §5.6 session management, §5.7 login).
//!
//! Login is per application per token in PKCS#11, and lasts while at least one session is open,
//! so each slot keeps one dedicated login session open. PIN order (DESIGN.md): URI
//! `pin-value`/`pin-source`, then config `pkcs11-module-token-pin`, then a PIN cached from an
//! earlier successful login, then the OpenSSL passphrase callback. A PIN the token rejected with
//! `CKR_PIN_INCORRECT` is remembered and never sent again automatically; a token reporting
//! "final try" or "locked" is not sent a PIN at all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot as SlotId;
use cryptoki::types::RawAuthPin;
use zeroize::Zeroizing;

use crate::config::{CachePins, Config, LoginBehavior};
use crate::error::{Error, Result};
use crate::sys::pkcs11::SignFunctions;
use crate::uri::Pkcs11Uri;

/// Longest wait for a session when the token's session limit is reached.
pub(crate) const SESSION_WAIT: Duration = Duration::from_secs(30);

/// A PIN in memory: wiped when dropped.
pub(crate) type Pin = Zeroizing<Vec<u8>>;

/// Per-module settings every slot needs.
pub(crate) struct SlotSettings {
    pub(crate) login_behavior: LoginBehavior,
    pub(crate) config_pin: Option<Pin>,
    pub(crate) cache_pins: bool,
    pub(crate) max_idle_sessions: usize,
    /// `pkcs11-module-allow-export = 1` turns this off: public keys stay in this provider.
    pub(crate) allow_export: bool,
}

impl SlotSettings {
    pub(crate) fn from_config(config: &Config) -> SlotSettings {
        SlotSettings {
            login_behavior: config.login_behavior,
            config_pin: config
                .token_pin
                .as_ref()
                .map(|p| Zeroizing::new(p.as_bytes().to_vec())),
            cache_pins: matches!(config.cache_pins, CachePins::Cache),
            max_idle_sessions: config.cache_sessions,
            allow_export: config.allow_export,
        }
    }
}

/// Identity strings of a slot and its token, blank-padding removed.
#[derive(Clone, Debug)]
pub(crate) struct TokenIdentity {
    pub(crate) label: String,
    pub(crate) manufacturer: String,
    pub(crate) model: String,
    pub(crate) serial: String,
    pub(crate) slot_description: String,
    pub(crate) slot_manufacturer: String,
}

impl TokenIdentity {
    /// True when `other` describes the same token (label, manufacturer, model, serial).
    pub(crate) fn is_same_token(&self, other: &TokenIdentity) -> bool {
        self.label == other.label
            && self.manufacturer == other.manufacturer
            && self.model == other.model
            && self.serial == other.serial
    }

    /// True when every token/slot attribute the URI gives matches (RFC 7512 §2.3).
    pub(crate) fn matches(&self, uri: &Pkcs11Uri, slot_id: u64) -> bool {
        fn same(want: &Option<String>, have: &str) -> bool {
            want.as_deref().is_none_or(|w| w == have)
        }
        same(&uri.token, &self.label)
            && same(&uri.manufacturer, &self.manufacturer)
            && same(&uri.model, &self.model)
            && same(&uri.serial, &self.serial)
            && same(&uri.slot_description, &self.slot_description)
            && same(&uri.slot_manufacturer, &self.slot_manufacturer)
            && uri.slot_id.is_none_or(|id| id == slot_id)
    }
}

#[derive(Default)]
struct LoginState {
    session: Option<Session>,
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

/// A slot with a token.
pub(crate) struct Slot {
    id: SlotId,
    identity: TokenIdentity,
    login_required: bool,
    protected_path: bool,
    pkcs11: Pkcs11,
    settings: Arc<SlotSettings>,
    sign_functions: Option<Arc<SignFunctions>>,
    idle: Mutex<Vec<Session>>,
    /// Signalled when a session is returned or closed.
    returned: Condvar,
    /// Threads waiting in `session()` for the token's session limit.
    waiting: AtomicUsize,
    /// Sessions handed out by `session()` and not yet back.
    checked_out: AtomicUsize,
    login: Mutex<LoginState>,
}

impl Slot {
    pub(crate) fn open(
        pkcs11: Pkcs11,
        id: SlotId,
        settings: Arc<SlotSettings>,
        sign_functions: Option<Arc<SignFunctions>>,
    ) -> Result<Slot> {
        let slot_info = pkcs11.get_slot_info(id)?;
        let token = pkcs11.get_token_info(id)?;
        // An uninitialised token (SoftHSM2 always offers one more) has no objects and refuses
        // sessions with CKR_TOKEN_NOT_RECOGNIZED: not a place to look for keys.
        if !token.token_initialized() {
            return Err(Error::NotFound(format!(
                "the token in slot {id} is not initialised"
            )));
        }
        let identity = TokenIdentity {
            label: token.label().trim_end().to_string(),
            manufacturer: token.manufacturer_id().trim_end().to_string(),
            model: token.model().trim_end().to_string(),
            serial: token.serial_number().trim_end().to_string(),
            slot_description: slot_info.slot_description().trim_end().to_string(),
            slot_manufacturer: slot_info.manufacturer_id().trim_end().to_string(),
        };
        Ok(Slot {
            id,
            identity,
            login_required: token.login_required(),
            protected_path: token.protected_authentication_path(),
            pkcs11,
            settings,
            sign_functions,
            idle: Mutex::new(Vec::new()),
            returned: Condvar::new(),
            waiting: AtomicUsize::new(0),
            checked_out: AtomicUsize::new(0),
            login: Mutex::new(LoginState::default()),
        })
    }

    pub(crate) fn id(&self) -> SlotId {
        self.id
    }

    pub(crate) fn identity(&self) -> &TokenIdentity {
        &self.identity
    }

    /// Whether public keys of this token may be exported to other providers.
    pub(crate) fn allows_export(&self) -> bool {
        self.settings.allow_export
    }

    /// Token label for messages.
    pub(crate) fn label(&self) -> &str {
        &self.identity.label
    }

    /// Takes an idle session or opens a new one; it returns to the pool when dropped.
    ///
    /// When the token's session limit (`ulMaxSessionCount`) is reached it waits, up to
    /// [`SESSION_WAIT`], for another thread to return a session. If none of the pool's sessions
    /// is out, nothing can come back: then the login session is lent (a token that allows one
    /// session), or the call fails at once.
    pub(crate) fn session(&self) -> Result<PooledSession<'_>> {
        let deadline = Instant::now() + SESSION_WAIT;
        loop {
            let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let (session, from_login) = match reused {
                Some(s) => (s, false),
                None => match self.pkcs11.open_ro_session(self.id) {
                    Ok(s) => (s, false),
                    Err(cryptoki::error::Error::Pkcs11(RvError::SessionCount, _)) => {
                        if self.checked_out.load(Ordering::SeqCst) > 0 {
                            self.wait_for_returned_session(deadline)?;
                            continue;
                        }
                        match self.login_state()?.session.take() {
                            Some(s) => (s, true),
                            None => {
                                return Err(Error::Token {
                                    func: cryptoki::context::Function::OpenSession,
                                    rv: RvError::SessionCount,
                                }
                                .context(format!(
                                    "token '{}' allows no more sessions, and none is in use \
                                     here",
                                    self.label()
                                )));
                            }
                        }
                    }
                    Err(e) => {
                        return Err(Error::from(e).context(format!("token '{}'", self.label())));
                    }
                },
            };
            self.checked_out.fetch_add(1, Ordering::SeqCst);
            return Ok(PooledSession {
                slot: self,
                session: Some(session),
                from_login,
            });
        }
    }

    fn wait_for_returned_session(&self, deadline: Instant) -> Result<()> {
        let idle = self
            .idle
            .lock()
            .map_err(|_| Error::Module("session pool lock poisoned".into()))?;
        // Checked under the pool lock, which returning threads take after they put a session
        // back or count one as returned, so a wake-up cannot be missed.
        if !idle.is_empty() || self.checked_out.load(Ordering::SeqCst) == 0 {
            return Ok(());
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::Token {
                func: cryptoki::context::Function::OpenSession,
                rv: RvError::SessionCount,
            }
            .context(format!(
                "token '{}': every session stayed busy for {} s",
                self.label(),
                SESSION_WAIT.as_secs()
            )));
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let waited = self.returned.wait_timeout(idle, remaining);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        // The guard is released here; the caller takes the lock again to pop a session.
        let (_guard, _timeout) =
            waited.map_err(|_| Error::Module("session pool lock poisoned".into()))?;
        Ok(())
    }

    fn login_state(&self) -> Result<MutexGuard<'_, LoginState>> {
        self.login
            .lock()
            .map_err(|_| Error::Module("login state lock poisoned".into()))
    }

    /// True once a login on this token succeeded in this process.
    pub(crate) fn is_logged_in(&self) -> bool {
        self.login.lock().map(|s| s.logged_in).unwrap_or(false)
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
    pub(crate) fn login(&self, mut request: PinRequest<'_, '_>) -> Result<()> {
        if self.is_logged_in() {
            return Ok(());
        }
        let token = self.pkcs11.get_token_info(self.id)?;
        if token.user_pin_locked() {
            return Err(Error::PinRefused(format!(
                "the user PIN of token '{}' is locked",
                self.label()
            )));
        }
        if token.user_pin_final_try() {
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
        let (session, result) = match state.session.take() {
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
                state.session = Some(session);
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
                state.session = Some(session);
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
            let info = format!("PIN for PKCS#11 token '{}'", self.label());
            if let Some(pin) = prompt(&info)? {
                return Ok((pin, true));
            }
        }
        Err(Error::LoginRequired(format!(
            "token '{}' requires login and no PIN was given (use pin-value or pin-source in \
             the URI, pkcs11-module-token-pin in openssl.cnf, or a passphrase prompt)",
            self.label()
        )))
    }

    /// Signs `data` with `key` on `session`: `C_SignInit`, a context-specific login when the
    /// key has `CKA_ALWAYS_AUTHENTICATE`, and one `C_Sign` into `expected_len` bytes.
    pub(crate) fn sign(
        &self,
        session: &Session,
        mechanism: &Mechanism<'_>,
        key: ObjectHandle,
        data: &[u8],
        expected_len: usize,
        always_authenticate: bool,
    ) -> Result<Vec<u8>> {
        let Some(functions) = &self.sign_functions else {
            if always_authenticate {
                return Err(Error::Unsupported(format!(
                    "a key on token '{}' needs a login per signature (CKA_ALWAYS_AUTHENTICATE), \
                     but the module's C_SignInit/C_Sign could not be looked up",
                    self.label()
                )));
            }
            return Ok(session.sign(mechanism, key, data)?);
        };
        functions.sign(session, mechanism, key, data, expected_len, || {
            if always_authenticate {
                self.context_login(session)
            } else {
                Ok(())
            }
        })
    }

    /// The context-specific login (`CKU_CONTEXT_SPECIFIC`) that a `CKA_ALWAYS_AUTHENTICATE`
    /// key needs between `C_SignInit` and `C_Sign`: a NULL PIN on a protected authentication
    /// path, else the PIN of the user login when it may be reused (never a new prompt per
    /// signature).
    fn context_login(&self, session: &Session) -> Result<()> {
        let pin = if self.protected_path {
            None
        } else {
            let pin = self
                .cached_pin()
                .or_else(|| self.settings.config_pin.clone())
                .ok_or_else(|| {
                    Error::LoginRequired(format!(
                        "a key on token '{}' needs its PIN for every signature \
                         (CKA_ALWAYS_AUTHENTICATE) and no PIN is kept: give it in the URI or \
                         openssl.cnf, or set pkcs11-module-cache-pins = cache",
                        self.label()
                    ))
                })?;
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
        self.login.lock().ok().and_then(|s| s.cached_pin.clone())
    }

    /// Copies a key object into a session object (`CKA_TOKEN = false`) on the slot's long-lived
    /// login session, where it lives until that session closes. Some tokens sign faster with a
    /// session copy (`pkcs11-module-cache-keys`).
    pub(crate) fn copy_to_session_object(&self, handle: ObjectHandle) -> Result<ObjectHandle> {
        let mut state = self.login_state()?;
        if state.session.is_none() {
            state.session = Some(self.pkcs11.open_ro_session(self.id)?);
        }
        let session = state
            .session
            .as_ref()
            .ok_or_else(|| Error::Module("no login session".into()))?;
        Ok(session.copy_object(handle, &[Attribute::Token(false)])?)
    }

    /// Closes the idle sessions (after the token was reset or removed they are all invalid).
    pub(crate) fn close_idle_sessions(&self) {
        let stale = self
            .idle
            .lock()
            .map(|mut idle| std::mem::take(&mut *idle))
            .unwrap_or_default();
        drop(stale);
    }

    /// Logs in again after the token forgot the login (e.g. `CKR_USER_NOT_LOGGED_IN`), using
    /// only non-interactive sources.
    pub(crate) fn relogin(&self) -> Result<()> {
        if let Ok(mut state) = self.login_state() {
            state.logged_in = false;
        }
        self.login(PinRequest {
            uri_pin: None,
            prompt: None,
        })
    }

    /// Back to the pool (kept beyond the idle limit while a thread waits for one), or closed
    /// (`None`: the session was discarded); a lent login session goes back to the login state.
    ///
    /// A waiting thread registers in `waiting` while it holds the pool lock, and this reads it
    /// under the same lock after the session is back (or closed) and counted as returned, so
    /// no wake-up is lost by notifying only when someone waits: the common case (nobody waits)
    /// costs no futex call per signature.
    fn return_session(&self, session: Option<Session>, from_login: bool) {
        let mut session = session;
        if from_login {
            if let Ok(mut state) = self.login_state() {
                if state.session.is_none() {
                    state.session = session.take();
                }
            }
        }
        let Ok(mut idle) = self.idle.lock() else {
            self.checked_out.fetch_sub(1, Ordering::SeqCst);
            return;
        };
        let waiters = self.waiting.load(Ordering::SeqCst) > 0;
        if let Some(session) = session {
            if waiters || idle.len() < self.settings.max_idle_sessions {
                idle.push(session);
            } else {
                // Closed before it counts as returned, so a waiter can open one in its place.
                drop(session);
            }
        }
        self.checked_out.fetch_sub(1, Ordering::SeqCst);
        drop(idle);
        if waiters {
            self.returned.notify_one();
        }
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

/// A session checked out of a slot's pool.
pub(crate) struct PooledSession<'a> {
    slot: &'a Slot,
    session: Option<Session>,
    /// The slot's login session, lent because the token allows no other.
    from_login: bool,
}

impl PooledSession<'_> {
    /// The session.
    pub(crate) fn get(&self) -> Result<&Session> {
        self.session
            .as_ref()
            .ok_or_else(|| Error::Module("session already discarded".into()))
    }

    /// Closes the session instead of returning it to the pool (after it failed).
    pub(crate) fn discard(mut self) {
        self.session = None;
    }
}

impl Drop for PooledSession<'_> {
    fn drop(&mut self) {
        self.slot
            .return_session(self.session.take(), self.from_login);
    }
}

/// True for return codes after which a session is unusable but a fresh one may work.
pub(crate) fn is_session_lost(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::SessionHandleInvalid | RvError::SessionClosed | RvError::DeviceRemoved
    )
}
