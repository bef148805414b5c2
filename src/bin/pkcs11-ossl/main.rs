//! `pkcs11-ossl`: the helper command of the pkcs11-ossl provider (pkcs11-ossl(1)).
//!
//! - `doctor` checks a set-up step by step, the way a first-time user gets it wrong: the
//!   configuration file and its provider section, the provider library, the PKCS#11 module,
//!   the tokens, the PIN source, one login, and for a URI each key's signature and certificate;
//! - `list` shows tokens, keys and certificates with their URIs;
//! - `keyfile` writes a PEM-URI key file after checking that the URI names exactly one
//!   private key;
//! - `stats` shows the sign-duration metrics the provider writes.
//!
//! It reads URIs, the provider section and key files with the provider's own code
//! (`pkcs11_ossl::tool`), talks to the token directly through cryptoki, and leaves signing to
//! the `openssl` command so that `doctor` tests the path programs use.

mod cnf;
mod doctor;
mod keyfile;
mod list;
mod setup;
mod stats;
mod token;

use std::fmt::Display;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: pkcs11-ossl doctor [--config FILE] [URI]
       pkcs11-ossl list [--config FILE] [URI]
       pkcs11-ossl keyfile [--config FILE] [-o FILE] URI
       pkcs11-ossl stats [--config FILE] [METRICS-FILE]
       pkcs11-ossl --help | --version

  doctor   check the set-up step by step; with a URI, also sign with each key it names
  list     show tokens, keys and certificates with their URIs
  keyfile  write a PEM key file that names the one private key the URI selects
  stats    sign-duration metrics from pkcs11-module-metrics-file (summed over its processes)

The configuration is --config FILE, else $OPENSSL_CONF, else OpenSSL's openssl.cnf; the
PKCS#11 module is $PKCS11_PROVIDER_MODULE, else pkcs11-module-path in the provider section.
See pkcs11-ossl(1) and pkcs11-ossl(7).";

/// Exit status for a command line the helper does not understand.
const USAGE_ERROR: u8 = 2;

/// The parsed command line.
struct Arguments {
    command: String,
    config: Option<PathBuf>,
    output: Option<PathBuf>,
    uri: Option<String>,
}

/// Prints one line on standard output. A closed pipe (`pkcs11-ossl list | head`) is not an
/// error worth a panic: the rest of the output is dropped.
pub(crate) fn say(line: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn parse_arguments(args: &[String]) -> Result<Arguments, String> {
    let mut iter = args.iter();
    let command = iter.next().ok_or("no command given")?.clone();
    let mut parsed = Arguments {
        command,
        config: None,
        output: None,
        uri: None,
    };
    while let Some(arg) = iter.next() {
        let mut value_of = |name: &str| {
            iter.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--config" | "-c" => parsed.config = Some(value_of(arg)?.into()),
            "-o" | "--output" if parsed.command == "keyfile" => {
                parsed.output = Some(value_of(arg)?.into());
            }
            option if option.starts_with('-') && option != "-" => {
                return Err(format!("unknown option {option}"));
            }
            uri if parsed.uri.is_none() => parsed.uri = Some(uri.to_owned()),
            extra => {
                return Err(format!(
                    "unexpected argument '{}'",
                    setup::redact_query(extra)
                ));
            }
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return if args.is_empty() {
                ExitCode::from(USAGE_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
        Some("-V" | "--version") => {
            println!("pkcs11-ossl {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let parsed = match parse_arguments(&args) {
        Ok(parsed) => parsed,
        Err(problem) => {
            eprintln!("pkcs11-ossl: {problem}\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let config = parsed.config.as_deref();
    let uri = parsed.uri.as_deref();
    let result = match parsed.command.as_str() {
        "doctor" => doctor::run(config, uri),
        "list" => list::run(config, uri),
        "stats" => stats::run(config, uri),
        "keyfile" => match uri {
            Some(uri) => keyfile::run(config, uri, parsed.output.as_deref()),
            None => {
                eprintln!("pkcs11-ossl: keyfile needs a pkcs11: URI\n{USAGE}");
                return ExitCode::from(USAGE_ERROR);
            }
        },
        other => {
            eprintln!("pkcs11-ossl: unknown command '{other}'\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(problem) => {
            eprintln!("pkcs11-ossl {}: {problem}", parsed.command);
            ExitCode::FAILURE
        }
    }
}
