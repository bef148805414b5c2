//! The documentation against the code (issue 13): the configuration keys the provider reads
//! (`Config::KEYS`, through `pkcs11_ossl::tool::config_keys`) must be exactly the keys of the
//! README's configuration table, of `openssl.cnf.example` and of the CONFIGURATION KEYS
//! section of pkcs11-ossl(7); both manual pages must render without a single warning; the
//! README keeps its shape (Install before a two-command Quick start, the helper instead of a
//! script for key files).

// A test-only crate: a failed read or a missing tool is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_file(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    (path, text)
}

/// The lines of the Markdown section `## heading`, up to the next `## ` heading.
fn markdown_section<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    let start = format!("## {heading}");
    text.lines()
        .skip_while(|line| line.trim_end() != start)
        .skip(1)
        .take_while(|line| !line.starts_with("## "))
        .collect()
}

/// A key name at the start of `text`: `pkcs11-module-` and the letters, digits and hyphens
/// after it.
fn key_at_start(text: &str) -> Option<String> {
    let rest = text.strip_prefix("pkcs11-module-")?;
    let tail: String = rest
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .collect();
    (!tail.is_empty()).then(|| format!("pkcs11-module-{}", tail.trim_end_matches('-')))
}

/// Keys in the README's configuration table: rows whose first cell is `` `pkcs11-module-…` ``.
fn readme_keys(readme: &str) -> Vec<String> {
    markdown_section(readme, "Configuration")
        .iter()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(key_at_start)
        .collect()
}

/// Keys set or shown commented out in `openssl.cnf.example` (`key = value`, `#key = value`).
fn example_keys(example: &str) -> Vec<String> {
    example
        .lines()
        .map(|line| line.trim_start_matches('#').trim_start())
        .filter(|line| line.contains('='))
        .filter_map(|line| {
            let key = key_at_start(line)?;
            line[key.len()..]
                .trim_start()
                .starts_with('=')
                .then_some(key)
        })
        .collect()
}

/// Keys of the CONFIGURATION KEYS section of a roff man page: the tag line after each `.TP`.
fn man_page_keys(page: &str) -> Vec<String> {
    let lines: Vec<String> = page.lines().map(|line| line.replace("\\-", "-")).collect();
    let start = lines
        .iter()
        .position(|line| line.trim() == ".SH CONFIGURATION KEYS")
        .expect("pkcs11-ossl.7 has a CONFIGURATION KEYS section");
    let section: Vec<&String> = lines[start + 1..]
        .iter()
        .take_while(|line| !line.starts_with(".SH"))
        .collect();
    section
        .windows(2)
        .filter(|pair| pair[0].trim() == ".TP")
        .filter_map(|pair| {
            let tag = pair[1].trim();
            let text = tag.split_once(' ').map_or(tag, |(_, rest)| rest);
            key_at_start(text.trim_start_matches('"'))
        })
        .collect()
}

/// Asserts `found` lists exactly the keys of the code, each once.
#[track_caller]
fn assert_same_keys(what: &str, found: &[String]) {
    let code: BTreeSet<String> = pkcs11_ossl::tool::config_keys()
        .iter()
        .map(|key| (*key).to_owned())
        .collect();
    let listed: BTreeSet<String> = found.iter().cloned().collect();
    let duplicates: Vec<&String> = found
        .iter()
        .filter(|key| found.iter().filter(|k| k == key).count() > 1)
        .collect();
    let missing: Vec<&String> = code.difference(&listed).collect();
    let extra: Vec<&String> = listed.difference(&code).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && duplicates.is_empty(),
        "{what} does not list exactly the keys the provider reads (Config::KEYS)\n\
         missing: {missing:?}\nnot read by the provider: {extra:?}\nlisted twice: {duplicates:?}"
    );
}

#[test]
fn every_key_list_is_the_providers() {
    assert!(
        pkcs11_ossl::tool::config_keys().len() >= 14,
        "Config::KEYS shrank: {:?}",
        pkcs11_ossl::tool::config_keys()
    );
    let (_, readme) = repo_file("README.md");
    assert_same_keys("README.md's configuration table", &readme_keys(&readme));
    let (_, example) = repo_file("openssl.cnf.example");
    assert_same_keys("openssl.cnf.example", &example_keys(&example));
    let (_, page) = repo_file("man/pkcs11-ossl.7");
    assert_same_keys(
        "man/pkcs11-ossl.7 CONFIGURATION KEYS",
        &man_page_keys(&page),
    );
}

/// The extractors themselves: a key dropped from a list must be noticed.
#[test]
fn the_key_extractors_see_a_missing_key() {
    let (_, readme) = repo_file("README.md");
    let fewer = readme.replace("| `pkcs11-module-cache-pins` |", "| `cache-pins` |");
    assert_eq!(readme_keys(&fewer).len() + 1, readme_keys(&readme).len());
    let (_, example) = repo_file("openssl.cnf.example");
    let fewer = example.replace("#pkcs11-module-cache-pins =", "#cache-pins =");
    assert_eq!(example_keys(&fewer).len() + 1, example_keys(&example).len());
    let (_, page) = repo_file("man/pkcs11-ossl.7");
    let fewer = page.replace(".B pkcs11\\-module\\-cache\\-pins", ".B cache\\-pins");
    assert_eq!(man_page_keys(&fewer).len() + 1, man_page_keys(&page).len());
}

/// `groff -man -ww -z`: all warnings on, no output. Then, where man-db is installed, what
/// Debian's lintian runs: `man --warnings -l`.
#[test]
fn man_pages_render_without_warnings() {
    for page in ["man/pkcs11-ossl.1", "man/pkcs11-ossl.7"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(page);
        let groff = Command::new("groff")
            .args(["-man", "-ww", "-z", "-Tutf8"])
            .arg(&path)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run groff ({e}); install it (Debian: apt-get install groff-base)")
            });
        let stderr = String::from_utf8_lossy(&groff.stderr);
        assert!(
            groff.status.success() && stderr.trim().is_empty(),
            "{page}: groff warns:\n{stderr}"
        );
        let man = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"])
            .arg(&path)
            .env("LC_ALL", "C.UTF-8")
            .env("MANROFFSEQ", "")
            .env("MANWIDTH", "80")
            .output()
            .unwrap_or_else(|e| panic!("cannot run man ({e}); install man-db"));
        let stderr = String::from_utf8_lossy(&man.stderr);
        assert!(
            man.status.success() && stderr.trim().is_empty(),
            "{page}: man --warnings says:\n{stderr}"
        );
        // The rendered page has its sections (an empty render would pass the checks above).
        let rendered = Command::new("groff")
            .args(["-man", "-Tutf8", "-P-cbou"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&rendered.stdout);
        for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "EXAMPLES", "SEE ALSO"] {
            assert!(text.contains(heading), "{page}: no {heading} section");
        }
    }
}

/// pkcs11-ossl(1) documents every command and every doctor check the helper prints.
#[test]
fn the_helper_page_names_every_command_and_check() {
    let (_, page) = repo_file("man/pkcs11-ossl.1");
    let page = page.replace("\\-", "-");
    for word in [
        "doctor",
        "list",
        "keyfile",
        "stats",
        "--config",
        "--output",
        "config file",
        "provider section",
        "provider active",
        "provider library",
        "provider loads",
        "settings",
        "PKCS#11 module",
        "tokens",
        "PIN source",
        "login",
        "keys",
        "certificate",
    ] {
        assert!(
            page.contains(word),
            "man/pkcs11-ossl.1 does not mention '{word}'"
        );
    }
}

/// The README: an Install section before Quick start, Quick start with exactly two commands
/// (demo and tests), a walk-through with the helper, and key files made with the helper.
#[test]
fn readme_install_quick_start_and_first_steps() {
    let (_, readme) = repo_file("README.md");
    let headings: Vec<&str> = readme.lines().filter(|l| l.starts_with("## ")).collect();
    let position = |name: &str| {
        headings
            .iter()
            .position(|h| h.trim_end() == format!("## {name}"))
            .unwrap_or_else(|| panic!("README.md has no '## {name}' section: {headings:?}"))
    };
    assert!(
        position("Install") < position("Quick start"),
        "{headings:?}"
    );
    let quick_start = markdown_section(&readme, "Quick start");
    let commands: Vec<&str> = code_blocks(&quick_start)
        .into_iter()
        .flatten()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(
        commands,
        ["./scripts/demo.sh", "./scripts/test.sh"],
        "Quick start must stay two commands"
    );
    let install = markdown_section(&readme, "Install").join("\n");
    for word in [
        "cargo deb",
        "dpkg -i",
        "scripts/install.sh",
        "--prefix",
        "ossl-modules",
    ] {
        assert!(
            install.contains(word),
            "the Install section does not mention {word}"
        );
    }
    let first_steps = markdown_section(&readme, "First steps with your own token").join("\n");
    for command in [
        "pkcs11-ossl doctor",
        "pkcs11-ossl list",
        "pkcs11-ossl keyfile",
    ] {
        assert!(
            first_steps.contains(command),
            "First steps does not show {command}"
        );
    }
    let key_files =
        markdown_section(&readme, "Key files for programs that only read PEM files").join("\n");
    assert!(key_files.contains("pkcs11-ossl keyfile"), "{key_files}");
    assert!(
        !readme.contains("```python\n  import base64"),
        "the Python key-file script is back"
    );
}

/// The lines inside each fenced code block of `lines`.
fn code_blocks<'a>(lines: &[&'a str]) -> Vec<Vec<&'a str>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in lines {
        if line.trim_start().starts_with("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some(Vec::new()),
            }
        } else if let Some(block) = current.as_mut() {
            block.push(*line);
        }
    }
    blocks
}
