//! A slot's pool of sessions (PKCS#11 3.0 §5.6): idle sessions are reused, a session is used
//! by one thread at a time, and the token's session limit (`ulMaxSessionCount`) is honoured by
//! waiting for a session to come back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::session::Session;
use cryptoki::slot::Slot as SlotId;

use crate::error::{Error, Result};
use crate::sys::atfork::TokenCall;

/// Longest wait for a session when the token's session limit is reached.
pub(crate) const SESSION_WAIT: Duration = Duration::from_secs(30);

/// The sessions of one slot that are not in use, and the counts that let a thread wait for one.
pub(crate) struct SessionPool {
    pkcs11: Pkcs11,
    id: SlotId,
    /// Token label for messages.
    label: String,
    /// Idle sessions kept beyond those in use (`pkcs11-module-cache-sessions`).
    max_idle: usize,
    /// The session that keeps the login alive (login lasts while one session is open); lent
    /// to `session()` when the token allows no other.
    reserved: Mutex<Option<Session>>,
    idle: Mutex<Vec<Session>>,
    /// Signalled when a session is returned or closed.
    returned: Condvar,
    /// Threads waiting in `session()` for the token's session limit.
    waiting: AtomicUsize,
    /// Sessions handed out by `session()` and not yet back.
    checked_out: AtomicUsize,
}

impl SessionPool {
    pub(crate) fn new(pkcs11: Pkcs11, id: SlotId, label: &str, max_idle: usize) -> SessionPool {
        SessionPool {
            pkcs11,
            id,
            label: label.to_string(),
            max_idle,
            reserved: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            returned: Condvar::new(),
            waiting: AtomicUsize::new(0),
            checked_out: AtomicUsize::new(0),
        }
    }

    /// Opens a new read-only session outside the pool.
    pub(crate) fn open(&self) -> cryptoki::error::Result<Session> {
        self.pkcs11.open_ro_session(self.id)
    }

    /// The reserved (login) session's place.
    pub(crate) fn reserved(&self) -> Result<MutexGuard<'_, Option<Session>>> {
        self.reserved
            .lock()
            .map_err(|_| Error::Module("reserved session lock poisoned".into()))
    }

    /// Takes an idle session or opens a new one; it returns to the pool when dropped.
    ///
    /// When the token's session limit (`ulMaxSessionCount`) is reached it waits, up to
    /// [`SESSION_WAIT`], for another thread to return a session. If none of the pool's sessions
    /// is out, nothing can come back: then the login session is lent (a token that allows one
    /// session), or the call fails at once.
    pub(crate) fn session(&self) -> Result<PooledSession<'_>> {
        // Everything done with the session (and its return) counts as one token call for fork.
        let call = TokenCall::enter();
        let deadline = Instant::now() + SESSION_WAIT;
        loop {
            let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let (session, from_login) = match reused {
                Some(s) => (s, false),
                None => match self.open() {
                    Ok(s) => (s, false),
                    Err(cryptoki::error::Error::Pkcs11(RvError::SessionCount, _)) => {
                        if self.checked_out.load(Ordering::SeqCst) > 0 {
                            self.wait_for_returned_session(deadline)?;
                            continue;
                        }
                        match self.reserved()?.take() {
                            Some(s) => (s, true),
                            None => {
                                return Err(Error::Token {
                                    func: cryptoki::context::Function::OpenSession,
                                    rv: RvError::SessionCount,
                                }
                                .context(format!(
                                    "token '{}' allows no more sessions, and none is in use \
                                     here",
                                    self.label
                                )));
                            }
                        }
                    }
                    Err(e) => {
                        return Err(Error::from(e).context(format!("token '{}'", self.label)));
                    }
                },
            };
            self.checked_out.fetch_add(1, Ordering::SeqCst);
            return Ok(PooledSession {
                pool: self,
                session: Some(session),
                from_login,
                _call: call,
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
                self.label,
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

    /// Closes the idle sessions (after the token was reset or removed they are all invalid).
    pub(crate) fn close_idle_sessions(&self) {
        let stale = self
            .idle
            .lock()
            .map(|mut idle| std::mem::take(&mut *idle))
            .unwrap_or_default();
        drop(stale);
    }

    /// Back to the pool (kept beyond the idle limit while a thread waits for one), or closed
    /// (`None`: the session was discarded); a lent login session goes back to its place.
    ///
    /// A waiting thread registers in `waiting` while it holds the pool lock, and this reads it
    /// under the same lock after the session is back (or closed) and counted as returned, so
    /// no wake-up is lost by notifying only when someone waits: the common case (nobody waits)
    /// costs no futex call per signature.
    fn return_session(&self, session: Option<Session>, from_login: bool) {
        let mut session = session;
        if from_login {
            if let Ok(mut reserved) = self.reserved.lock() {
                if reserved.is_none() {
                    *reserved = session.take();
                }
            }
        }
        let Ok(mut idle) = self.idle.lock() else {
            self.checked_out.fetch_sub(1, Ordering::SeqCst);
            return;
        };
        let waiters = self.waiting.load(Ordering::SeqCst) > 0;
        if let Some(session) = session {
            if waiters || idle.len() < self.max_idle {
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

/// A session checked out of a slot's pool.
pub(crate) struct PooledSession<'a> {
    pool: &'a SessionPool,
    session: Option<Session>,
    /// The slot's login session, lent because the token allows no other.
    from_login: bool,
    /// Dropped after the session is back: a fork waits until then.
    _call: TokenCall,
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
        self.pool
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
