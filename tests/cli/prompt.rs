//! PIN prompts on a terminal, as latchset/pkcs11-provider words and counts them (issue 12):
//! OpenSSL's own prompt names the token `PKCS#11 Token (Slot <n> - <label>)` (`Enter pass
//! phrase for ...`); a program that opened the store without a UI method gets the provider's
//! terminal prompt `Enter PIN for PKCS#11 Token (Slot <n> - <label>):`, once for the login and
//! once per signature of a `CKA_ALWAYS_AUTHENTICATE` key. Runs under `expect`, which gives the
//! program a terminal and answers every prompt with the PIN.

use crate::common::softhsm::USER_PIN;
use crate::common::{Fixture, KeyType, Ran, SignatureCheck, TOKEN_LABEL};

/// Runs `program args` under expect, answering each PIN prompt with the user PIN.
fn run_answering_prompts(fx: &Fixture, program: &str, args: &[&str]) -> Ran {
    let script = fx.write_file(
        "answer-pin.exp",
        format!(
            "set timeout 30\n\
             spawn -noecho {{*}}$argv\n\
             expect {{\n\
             -re {{Enter (PIN|pass phrase) for [^\\r\\n]*:}} {{ send \"{USER_PIN}\\r\"; exp_continue }}\n\
             eof\n\
             }}\n\
             lassign [wait] pid spawnid os_error status\n\
             exit $status\n"
        ),
    );
    let mut all = vec![script.as_str(), program];
    all.extend_from_slice(args);
    fx.run_with_provider("expect", &all)
}

/// How many times `prompt` (a whole prompt, up to its colon) appears in the run's output.
fn prompts(run: &Ran, prompt: &str) -> usize {
    run.stdout().matches(prompt).count()
}

/// The prompt text for this fixture's token, without the slot number.
fn token_prompt(kind: &str) -> (String, String) {
    (
        format!("Enter {kind} for PKCS#11 Token (Slot "),
        format!(" - {TOKEN_LABEL}):"),
    )
}

/// Counts the prompts `Enter <kind> for PKCS#11 Token (Slot <digits> - <label>):`.
fn count_token_prompts(run: &Ran, kind: &str) -> usize {
    let (start, end) = token_prompt(kind);
    let stdout = run.stdout();
    let mut count = 0;
    let mut rest = stdout.as_str();
    while let Some(at) = rest.find(&start) {
        let after = &rest[at + start.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(&end) {
            count += 1;
        }
        rest = after;
    }
    count
}

#[test]
fn openssl_prompt_names_the_token_latchset_style() {
    let mut fx = Fixture::new("prompt-passphrase");
    fx.generate_key(KeyType::EcP256, "01", "ec");
    fx.config_mut().token_pin = None;
    let uri = fx.private_key_uri("ec");
    let run =
        run_answering_prompts(&fx, "openssl", &["pkey", "-in", &uri, "-text", "-noout"]).success();
    assert_eq!(
        count_token_prompts(&run, "pass phrase"),
        1,
        "one 'Enter pass phrase for PKCS#11 Token (Slot N - {TOKEN_LABEL}):' prompt\n{}",
        run.report()
    );
    assert!(
        run.stdout().contains("PKCS11 EC Private Key (256 bits)"),
        "{}",
        run.report()
    );
    assert_eq!(prompts(&run, "Enter PIN for"), 0, "{}", run.report());
}

#[test]
fn store_without_ui_method_prompts_on_the_terminal_once() {
    let mut fx = Fixture::new("prompt-terminal");
    fx.generate_key(KeyType::Rsa2048, "01", "rsa");
    fx.config_mut().token_pin = None;
    let program = fx.compile_program("sign_steps");
    let message = fx.message("message.txt");
    let (one, two) = (fx.file("one.sig"), fx.file("two.sig"));
    let run = run_answering_prompts(
        &fx,
        &program,
        &[
            &fx.private_key_uri("rsa"),
            &message,
            &format!("sign={one}"),
            &format!("sign={two}"),
        ],
    )
    .success();
    assert_eq!(count_token_prompts(&run, "PIN"), 1, "{}", run.report());
    let public_key = fx.export_pubkey("01");
    for signature in [&one, &two] {
        let check = SignatureCheck::new(&public_key, &message, signature, Some("sha256"));
        fx.assert_valid_signature(&check, &run);
    }
}

#[test]
fn always_authenticate_key_prompts_once_per_signature() {
    let mut fx = Fixture::new("prompt-always-authenticate");
    fx.token()
        .pkcs11_tool_login()
        .args(["--keypairgen", "--key-type", "EC:prime256v1", "--id", "02"])
        .args(["--label", "always", "--usage-sign", "--always-auth"])
        .run()
        .success();
    fx.config_mut().token_pin = None;
    let program = fx.compile_program("sign_steps");
    let message = fx.message("message.txt");
    let signatures: Vec<String> = (0..3).map(|i| fx.file(&format!("sig-{i}"))).collect();
    let mut args = vec![fx.private_key_uri("always"), message.clone()];
    args.extend(signatures.iter().map(|s| format!("sign={s}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_answering_prompts(&fx, &program, &args).success();
    // One login to read the key, one context-specific login per signature.
    assert_eq!(count_token_prompts(&run, "PIN"), 4, "{}", run.report());
    let public_key = fx.export_pubkey("02");
    for signature in &signatures {
        let check = SignatureCheck::new(&public_key, &message, signature, Some("sha256"));
        fx.assert_valid_signature(&check, &run);
    }
}
