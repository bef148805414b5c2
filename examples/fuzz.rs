//! Seeded random fuzzer for the parsers of untrusted input: the `pkcs11:` URI parser and the
//! PEM-URI key file decoder (through `pkcs11_ossl::fuzzing`).
//!
//! ```text
//! cargo run --release --example fuzz -- [iterations] [seed]    # default 10000000 and 1
//! ```
//!
//! cargo-fuzz needs a nightly toolchain with libFuzzer and a new crate; this driver needs
//! neither. Each input is made by one of three generators, picked at random: byte-level
//! mutation of a seed corpus (valid URIs, PEM-URI files and their DER bodies), grammar-based
//! URIs, and PEM-URI files around generated DER (with lengths and tags that are often wrong).
//! Every input goes through both `fuzzing::uri` and `fuzzing::pem_uri` inside `catch_unwind`.
//! The first panic stops the run: the input is printed in hex, and the exit status is 1. The
//! same seed gives the same inputs, so a finding can be replayed.

use std::env;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pkcs11_ossl::fuzzing;

const DEFAULT_ITERATIONS: u64 = 10_000_000;

/// splitmix64: small, fast, and good enough to drive a fuzzer.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Bytes that mean something to one of the parsers.
const SPECIAL: &[u8] = b"%;=?&:/\0\xff\x80\r\n -=+0aFf9";

const NAMES: &[&str] = &[
    "token",
    "manufacturer",
    "model",
    "serial",
    "slot-id",
    "slot-description",
    "slot-manufacturer",
    "library-description",
    "library-manufacturer",
    "library-version",
    "object",
    "id",
    "type",
    "x-vendor",
    "unknown",
    "",
];

const QUERY_NAMES: &[&str] = &[
    "pin-value",
    "pin-source",
    "module-name",
    "module-path",
    "x-q",
    "",
];

const VALUES: &[&str] = &[
    "",
    "private",
    "public",
    "cert",
    "secret-key",
    "data",
    "0",
    "18446744073709551615",
    "18446744073709551616",
    "2.40",
    "255.255",
    "256",
    "1.",
    ".1",
    "file:/etc/pin",
    "file://localhost/x",
    "file://otherhost/x",
    "file:",
    "https://x/y",
    "%00",
    "%FF%FE",
    "%C3%A1",
    "%C3(",
    "%",
    "%4",
    "%zz",
    "%%",
    "abc",
];

const PEM_BEGIN: &str = "-----BEGIN PKCS#11 PROVIDER URI-----";
const PEM_END: &str = "-----END PKCS#11 PROVIDER URI-----";
const DESCRIPTION: &str = "PKCS#11 Provider URI v1.0";

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_length(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

fn pem_uri_body(description: &str, uri: &[u8]) -> Vec<u8> {
    let mut body = der(0x1a, description.as_bytes());
    body.extend(der(0x0c, uri));
    der(0x30, &body)
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in data.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            text.push(if i <= chunk.len() {
                char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize])
            } else {
                '='
            });
        }
    }
    text
}

fn pem(der_body: &[u8], line_width: usize) -> Vec<u8> {
    let text = base64(der_body);
    let mut out = format!("{PEM_BEGIN}\n").into_bytes();
    for line in text.as_bytes().chunks(line_width.max(1)) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(PEM_END.as_bytes());
    out.push(b'\n');
    out
}

fn seed_corpus() -> Vec<Vec<u8>> {
    let uris = [
        "pkcs11:",
        "pkcs11:token=web;object=tls%20key;type=private;id=%01%02",
        "pkcs11:object=my-pubkey;type=public",
        "pkcs11:token=a;manufacturer=b;model=c;serial=d;slot-description=e;slot-manufacturer=f;\
         slot-id=42;library-description=g;library-manufacturer=h;library-version=2.40;object=i;\
         type=data;id=%01?pin-source=file:///run/pin&module-name=softhsm2&module-path=/usr/lib/x.so",
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;id=%69%95?pin-value=p",
        "pkcs11:object=%E2%82%AC%20euro%3B%3F%2F%25",
        "PKCS11:type=cert?module-name=a?b",
        "pkcs11:x-vendor=1;object=k?x-q=2&pin-value=1234",
    ];
    let mut corpus: Vec<Vec<u8>> = uris.iter().map(|u| u.as_bytes().to_vec()).collect();
    for uri in uris {
        let body = pem_uri_body(DESCRIPTION, uri.as_bytes());
        corpus.push(pem(&body, 64));
        corpus.push(body);
    }
    corpus
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(10) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 => {
                let byte = rng.next() as u8;
                input.insert(rng.below(len + 1), byte);
            }
            2 => {
                let byte = *rng.pick(SPECIAL);
                input.insert(rng.below(len + 1), byte);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                input.drain(at..end);
            }
            4 => {
                let other = rng.pick(corpus);
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let to = (from + 1 + rng.below(64)).min(other.len());
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[from..to].iter().copied());
                }
            }
            5 if len > 0 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(16)).min(len);
                let chunk = input[from..to].to_vec();
                for _ in 0..rng.below(8) {
                    input.splice(to..to, chunk.iter().copied());
                }
            }
            6 => {
                let byte = *rng.pick(SPECIAL);
                let run = if rng.chance(50) {
                    rng.below(70_000)
                } else {
                    rng.below(300)
                };
                let at = rng.below(len + 1);
                input.splice(at..at, std::iter::repeat_n(byte, run));
            }
            7 if len > 0 => {
                let at = rng.below(len);
                input[at] = *rng.pick(SPECIAL);
            }
            8 if len > 0 => input.truncate(rng.below(len)),
            _ => {
                let at = rng.below(len + 1);
                input.splice(at..at, rng.pick(VALUES).bytes());
            }
        }
    }
}

fn random_value(rng: &mut Rng, out: &mut Vec<u8>) {
    for _ in 0..rng.below(4) {
        match rng.below(5) {
            0 => out.extend_from_slice(rng.pick(VALUES).as_bytes()),
            1 => out.extend(format!("%{:02X}", rng.next() as u8).bytes()),
            2 => out.push(*rng.pick(SPECIAL)),
            3 => out.push(b'a' + rng.below(26) as u8),
            _ => {
                let byte = rng.next() as u8;
                out.push(byte);
            }
        }
    }
}

fn grammar_uri(rng: &mut Rng) -> Vec<u8> {
    let scheme = *rng.pick(&["pkcs11:", "PKCS11:", "PkCs11:", "pkcs11", "pkcs12:", ""]);
    let mut out = scheme.as_bytes().to_vec();
    for i in 0..rng.below(6) {
        if i > 0 {
            out.push(if rng.chance(20) { b'&' } else { b';' });
        }
        out.extend_from_slice(rng.pick(NAMES).as_bytes());
        if !rng.chance(20) {
            out.push(b'=');
        }
        random_value(rng, &mut out);
    }
    if rng.chance(2) {
        out.push(b'?');
        for i in 0..rng.below(4) {
            if i > 0 {
                out.push(if rng.chance(20) { b';' } else { b'&' });
            }
            out.extend_from_slice(rng.pick(QUERY_NAMES).as_bytes());
            if !rng.chance(20) {
                out.push(b'=');
            }
            random_value(rng, &mut out);
        }
    }
    out
}

/// A DER element with a tag and length that are usually right and sometimes not.
fn shaky_der(rng: &mut Rng, tag: u8, content: &[u8]) -> Vec<u8> {
    let tag = if rng.chance(10) {
        rng.next() as u8
    } else {
        tag
    };
    let mut out = vec![tag];
    match rng.below(12) {
        0 => out.push(0x80),                                    // indefinite
        1 => out.extend([0x84, 0xff, 0xff, 0xff, 0xff]),        // huge
        2 => out.extend([0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]),     // longer than usize
        3 => out.extend([0x81, content.len().min(0x7f) as u8]), // not minimal
        4 => der_length(content.len() + 1 + rng.below(4), &mut out),
        5 => der_length(content.len().saturating_sub(1 + rng.below(4)), &mut out),
        _ => der_length(content.len(), &mut out),
    }
    out.extend_from_slice(content);
    out
}

fn grammar_pem(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let uri = if rng.chance(3) {
        rng.pick(corpus).clone()
    } else {
        grammar_uri(rng)
    };
    let description = *rng.pick(&[
        DESCRIPTION,
        DESCRIPTION,
        "PKCS#11 Provider URI v9.9",
        "PKCS#11 Provider URI",
        "",
        "x",
    ]);
    let mut inner = shaky_der(rng, 0x1a, description.as_bytes());
    inner.extend(shaky_der(rng, 0x0c, &uri));
    if rng.chance(10) {
        inner.extend(shaky_der(rng, 0x05, &[]));
    }
    let body = shaky_der(rng, 0x30, &inner);
    if rng.chance(4) {
        return body;
    }
    let mut text = pem(&body, *rng.pick(&[64, 76, 4, 1, 1000]));
    if rng.chance(3) {
        mutate(rng, &mut text, corpus);
    }
    text
}

/// A decimal command-line argument, `default` when absent, `None` when it is not a number.
fn number_arg(arg: Option<String>, default: u64) -> Option<u64> {
    arg.map_or(Some(default), |a| a.parse().ok())
}

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let (Some(iterations), Some(seed)) = (
        number_arg(args.next(), DEFAULT_ITERATIONS),
        number_arg(args.next(), 1),
    ) else {
        eprintln!("usage: fuzz [iterations] [seed]");
        return ExitCode::from(2);
    };

    // Keep the panic message for the report instead of letting the default hook print it.
    let last_panic = Arc::new(Mutex::new(String::new()));
    let hook_panic = Arc::clone(&last_panic);
    panic::set_hook(Box::new(move |info| {
        if let Ok(mut slot) = hook_panic.lock() {
            *slot = info.to_string();
        }
    }));

    let corpus = seed_corpus();
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut bytes: u64 = 0;
    for n in 0..iterations {
        let input = match rng.below(3) {
            0 => {
                let mut input = rng.pick(&corpus).clone();
                mutate(&mut rng, &mut input, &corpus);
                input
            }
            1 => {
                let mut input = grammar_uri(&mut rng);
                if rng.chance(4) {
                    mutate(&mut rng, &mut input, &corpus);
                }
                input
            }
            _ => grammar_pem(&mut rng, &corpus),
        };
        bytes += input.len() as u64;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            fuzzing::uri(&input);
            fuzzing::pem_uri(&input);
        }));
        if outcome.is_err() {
            let message = last_panic.lock().map(|m| m.clone()).unwrap_or_default();
            let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
            eprintln!(
                "fuzz: panic on input {n} (seed {seed}, {} bytes)",
                input.len()
            );
            eprintln!("fuzz: {message}");
            eprintln!("fuzz: input (hex): {hex}");
            eprintln!("fuzz: input (lossy): {:?}", String::from_utf8_lossy(&input));
            println!("fuzz: {} inputs, 1 panics", n + 1);
            return ExitCode::FAILURE;
        }
        if (n + 1) % 1_000_000 == 0 {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "fuzz: {} inputs, {:.0} inputs/s, {:.1} MB/s",
                n + 1,
                (n + 1) as f64 / secs,
                bytes as f64 / secs / 1e6
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz: {iterations} inputs, 0 panics ({secs:.1} s, {:.0} inputs/s, {:.1} MB total, seed {seed})",
        iterations as f64 / secs,
        bytes as f64 / 1e6
    );
    ExitCode::SUCCESS
}
