//! Asking for a PIN on the terminal with OpenSSL's default UI method (UI(3): `UI_new`,
//! `UI_construct_prompt`, `UI_add_input_string`, `UI_process`), as latchset/pkcs11-provider
//! does when the application's passphrase callback gives no PIN or there is none (a store
//! opened without a UI method, a key that needs its PIN for every signature). The prompt reads
//! `Enter PIN for <what>:`.
//!
//! Only when standard input is a terminal: a server, a cron job or `... | openssl dgst -sign`
//! never waits for a terminal or has its input read as a PIN.

use std::ffi::{CString, c_char, c_int, c_void};

use zeroize::Zeroizing;

use super::abi;
use crate::error::{Error, Result};

/// Longest PIN the prompt accepts.
const MAX_PIN_LEN: usize = 256;

/// True when standard input is a terminal and the process has a controlling terminal.
pub(crate) fn terminal_available() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    let stdin_is_tty = unsafe { libc::isatty(0) } == 1;
    stdin_is_tty
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_ok()
}

/// Prompts `Enter PIN for <object>:` on the terminal and returns what was typed; `None` when
/// there is no terminal, the user gave nothing or the prompt was interrupted.
pub(crate) fn ask_pin(object: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
    if !terminal_available() {
        return Ok(None);
    }
    let object = CString::new(object.replace('\0', ""))
        .map_err(|_| Error::BadParam("prompt text".into()))?;
    // SAFETY: UI_new returns a new UI with the default method, or NULL.
    let ui = unsafe { abi::UI_new() };
    if ui.is_null() {
        return Err(Error::Openssl("UI_new"));
    }
    let mut buffer = Zeroizing::new([0u8; MAX_PIN_LEN + 1]);
    // SAFETY: ui is live; both strings are NUL-terminated; the prompt is allocated for us.
    let prompt = unsafe { abi::UI_construct_prompt(ui, c"PIN".as_ptr(), object.as_ptr()) };
    let result = if prompt.is_null() {
        Err(Error::Openssl("UI_construct_prompt"))
    } else {
        // SAFETY: ui and prompt are live; buffer has room for MAX_PIN_LEN bytes and the NUL,
        // as UI_add_input_string requires (maxsize + 1).
        let added = unsafe {
            abi::UI_add_input_string(
                ui,
                prompt,
                abi::UI_INPUT_FLAG_DEFAULT_PWD as c_int,
                buffer.as_mut_ptr().cast::<c_char>(),
                0,
                MAX_PIN_LEN as c_int,
            )
        };
        // SAFETY: ui is live with one input string whose buffer lives across the call.
        if added > 0 && unsafe { abi::UI_process(ui) } == 0 {
            let len = buffer.iter().position(|b| *b == 0).unwrap_or(MAX_PIN_LEN);
            Ok((len > 0).then(|| Zeroizing::new(buffer[..len].to_vec())))
        } else {
            Ok(None)
        }
    };
    // SAFETY: the UI is ours and freed once; it does not own the prompt, which OpenSSL
    // allocated for us and is freed once after the UI that used it.
    unsafe {
        abi::UI_free(ui);
        if !prompt.is_null() {
            openssl_sys::OPENSSL_free(prompt.cast::<c_void>());
        }
    }
    result
}
