//! Reading `openssl.cnf` the way OpenSSL 3 does (config(5)), as far as the helper needs it: to
//! find the provider section of pkcs11-ossl and its values.
//!
//! Supported: the default section and `[ sections ]`, `name = value`, `#` comments, `"…"` and
//! `'…'` quoting, backslash escapes and line continuation, `$var`, `${var}`, `$(var)`,
//! `$section::name` and `$ENV::NAME` expansion, and `.include` of files and directories
//! (`*.cnf`, `*.conf`). Whether OpenSSL itself loads the provider is asked of OpenSSL
//! (`doctor` runs `openssl list -providers`), so a corner this reader gets wrong cannot make
//! a broken configuration look good.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The section OpenSSL calls `default`: what comes before the first `[section]`.
const DEFAULT_SECTION: &str = "default";

/// Deepest `.include` nesting followed (OpenSSL refuses recursion as well).
const MAX_INCLUDE_DEPTH: usize = 10;

/// A parsed configuration file: sections, each with its `name = value` entries
/// in order (a later entry with the same name replaces the value, as in OpenSSL).
#[derive(Debug, Default)]
pub(crate) struct Cnf {
    sections: BTreeMap<String, Vec<(String, String)>>,
}

impl Cnf {
    /// Reads and parses `path`.
    pub(crate) fn load(path: &Path) -> Result<Cnf, String> {
        let mut cnf = Cnf::default();
        let mut section = DEFAULT_SECTION.to_owned();
        cnf.read_file(path, &mut section, 0)?;
        Ok(cnf)
    }

    /// Parses `text` (for tests; `.include` paths are taken relative to the current directory).
    #[cfg(test)]
    pub(crate) fn parse(text: &str) -> Result<Cnf, String> {
        let mut cnf = Cnf::default();
        let mut section = DEFAULT_SECTION.to_owned();
        cnf.parse_text(text, Path::new("<text>"), &mut section, 0)?;
        Ok(cnf)
    }

    /// The value of `name` in `section`.
    pub(crate) fn value(&self, section: &str, name: &str) -> Option<&str> {
        self.sections
            .get(section)?
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The entries of `section` in file order, or `None` when there is no such section.
    pub(crate) fn entries(&self, section: &str) -> Option<&[(String, String)]> {
        self.sections.get(section).map(Vec::as_slice)
    }

    fn read_file(&mut self, path: &Path, section: &mut String, depth: usize) -> Result<(), String> {
        let text =
            fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        self.parse_text(&text, path, section, depth)
    }

    fn parse_text(
        &mut self,
        text: &str,
        path: &Path,
        section: &mut String,
        depth: usize,
    ) -> Result<(), String> {
        self.open_section(section);
        let lines = logical_lines(text);
        for (number, line) in lines {
            let at = || format!("{}:{number}", path.display());
            let line = strip_comment(&line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("{}: missing ']' in section header", at()))?
                    .trim();
                *section = name.to_owned();
                self.open_section(section);
                continue;
            }
            if let Some(rest) = line.strip_prefix(".include") {
                let target = rest.trim_start().trim_start_matches('=').trim();
                let target = unquote(target);
                self.include(Path::new(&target), section, depth)
                    .map_err(|e| format!("{}: {e}", at()))?;
                continue;
            }
            if line.starts_with(".pragma") {
                continue;
            }
            let (name, raw_value) = line
                .split_once('=')
                .ok_or_else(|| format!("{}: expected 'name = value'", at()))?;
            let name = name.trim().to_owned();
            let value = self.expand(section, &unquote(raw_value.trim()));
            self.sections
                .entry(section.clone())
                .or_default()
                .push((name, value));
        }
        Ok(())
    }

    fn open_section(&mut self, name: &str) {
        self.sections.entry(name.to_owned()).or_default();
    }

    fn include(&mut self, target: &Path, section: &mut String, depth: usize) -> Result<(), String> {
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(format!(".include nested deeper than {MAX_INCLUDE_DEPTH}"));
        }
        let target = if target.is_relative() {
            match std::env::var_os("OPENSSL_CONF_INCLUDE") {
                Some(base) => PathBuf::from(base).join(target),
                None => target.to_path_buf(),
            }
        } else {
            target.to_path_buf()
        };
        if target.is_dir() {
            let mut files: Vec<PathBuf> = fs::read_dir(&target)
                .map_err(|e| format!("cannot read {}: {e}", target.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "cnf" || e == "conf"))
                .collect();
            files.sort();
            for file in files {
                self.read_file(&file, section, depth + 1)?;
            }
            Ok(())
        } else {
            self.read_file(&target, section, depth + 1)
        }
    }

    /// Expands `$name`, `${name}`, `$(name)`, `$section::name` and `$ENV::NAME`; an unknown
    /// variable is left as written (OpenSSL would refuse the file; `doctor` asks OpenSSL too).
    fn expand(&self, section: &str, value: &str) -> String {
        let mut out = String::new();
        let mut rest = value;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            let (reference, consumed) = match after.chars().next() {
                Some(open @ ('{' | '(')) => {
                    let close = if open == '{' { '}' } else { ')' };
                    match after.find(close) {
                        Some(end) => (&after[1..end], end + 1),
                        None => ("", 0),
                    }
                }
                _ => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                        .unwrap_or(after.len());
                    (&after[..end], end)
                }
            };
            let resolved = if reference.is_empty() {
                None
            } else {
                self.lookup_variable(section, reference)
            };
            match resolved {
                Some(text) => out.push_str(&text),
                None => {
                    out.push('$');
                    out.push_str(&after[..consumed]);
                }
            }
            rest = &after[consumed..];
        }
        out.push_str(rest);
        out
    }

    fn lookup_variable(&self, section: &str, reference: &str) -> Option<String> {
        match reference.split_once("::") {
            Some(("ENV", name)) => std::env::var(name).ok(),
            Some((other, name)) => self.value(other, name).map(str::to_owned),
            None => self
                .value(section, reference)
                .or_else(|| self.value(DEFAULT_SECTION, reference))
                .map(str::to_owned),
        }
    }
}

/// Joins lines ending in a backslash; yields (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(head) if !head.ends_with('\\') => {
                joined.push_str(head);
                pending = Some((start, joined));
            }
            _ => {
                joined.push_str(line);
                out.push((start, joined));
            }
        }
    }
    if let Some(last) = pending {
        out.push(last);
    }
    out
}

/// Cuts a `#` comment that is outside quotes and not escaped.
fn strip_comment(line: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            ('#', None) => break,
            ('"' | '\'', None) => {
                quote = Some(c);
                out.push(c);
            }
            (q, Some(open)) if q == open => {
                quote = None;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Removes quotes and resolves backslash escapes (`\n`, `\t`, `\\`, `\#`, ...).
fn unquote(value: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('b') => out.push('\u{8}'),
                Some(other) => out.push(other),
                None => {}
            },
            ('"' | '\'', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            _ => out.push(c),
        }
    }
    out
}

/// Where the provider section of pkcs11-ossl is, and what it holds.
#[derive(Debug)]
pub(crate) struct ProviderEntry {
    /// The provider's name in the providers section (`pkcs11` in `pkcs11 = pkcs11_sect`).
    pub(crate) name: String,
    /// The name of its own section (`pkcs11_sect`).
    pub(crate) section: String,
    /// Its `name = value` lines.
    pub(crate) entries: Vec<(String, String)>,
}

impl ProviderEntry {
    /// The value of `key` in the provider section.
    pub(crate) fn value(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// Why the provider section could not be found, and how to fix it.
#[derive(Debug)]
pub(crate) struct NotFound {
    pub(crate) problem: String,
    pub(crate) fix: String,
}

/// The file names a `module =` line of pkcs11-ossl has: the build output and the installed
/// module.
const MODULE_FILE_NAMES: &[&str] = &["libpkcs11_ossl.so", "pkcs11.so"];

/// Follows `openssl_conf` → `providers` → the entry for pkcs11-ossl: one whose `module` is
/// `libpkcs11_ossl.so`, else the one named `pkcs11`, else one whose section has
/// `pkcs11-module-*` keys.
pub(crate) fn find_provider(cnf: &Cnf) -> Result<ProviderEntry, NotFound> {
    let init = cnf.value(DEFAULT_SECTION, "openssl_conf").ok_or(NotFound {
        problem: "no 'openssl_conf = ...' line before the first section, so OpenSSL loads no \
                  providers from this file"
            .into(),
        fix: "put 'openssl_conf = openssl_init' at the top and add an [openssl_init] section \
              (see /usr/share/doc/pkcs11-ossl/openssl.cnf.example)"
            .into(),
    })?;
    let providers = cnf.value(init, "providers").ok_or_else(|| NotFound {
        problem: format!("section [{init}] (named by openssl_conf) has no 'providers = ...' line"),
        fix: format!("add 'providers = provider_sect' to [{init}] and a [provider_sect] section"),
    })?;
    let list = cnf.entries(providers).ok_or_else(|| NotFound {
        problem: format!("the providers section [{providers}] does not exist"),
        fix: format!(
            "add a [{providers}] section with 'default = default_sect' and 'pkcs11 = pkcs11_sect'"
        ),
    })?;
    let module_name = |section: &str| {
        cnf.value(section, "module")
            .and_then(|m| Path::new(m).file_name())
            .map(|f| f.to_string_lossy().into_owned())
    };
    let ours = list
        .iter()
        .find(|(_, section)| module_name(section).is_some_and(|file| file == MODULE_FILE_NAMES[0]))
        .or_else(|| list.iter().find(|(name, _)| name == "pkcs11"))
        .or_else(|| {
            list.iter().find(|(_, section)| {
                cnf.entries(section)
                    .is_some_and(|e| e.iter().any(|(key, _)| key.starts_with("pkcs11-module-")))
            })
        })
        .ok_or_else(|| NotFound {
            problem: format!("the providers section [{providers}] has no entry for pkcs11-ossl"),
            fix: format!(
                "add 'pkcs11 = pkcs11_sect' to [{providers}] and a [pkcs11_sect] section with \
                 'activate = 1' and 'pkcs11-module-path = <your PKCS#11 module>'"
            ),
        })?;
    let (name, section) = ours;
    let entries = cnf.entries(section).ok_or_else(|| NotFound {
        problem: format!(
            "[{providers}] names the section [{section}] for provider '{name}', but there is no \
             such section"
        ),
        fix: format!("add a [{section}] section with 'activate = 1'"),
    })?;
    Ok(ProviderEntry {
        name: name.clone(),
        section: section.clone(),
        entries: entries.to_vec(),
    })
}

/// True when `file_name` is a name the pkcs11-ossl library has (`module =` lines).
pub(crate) fn is_our_module_file(file_name: &str) -> bool {
    MODULE_FILE_NAMES.contains(&file_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
# comment
HOME = /home/x
openssl_conf = openssl_init   # trailing comment

[ openssl_init ]
providers = provider_sect

[provider_sect]
default = default_sect
pkcs11 = pkcs11_sect

[default_sect]
activate = 1

[pkcs11_sect]
pkcs11-module-path = $HOME/lib/\\
module.so
pkcs11-module-init-args = \"configdir='sql:/etc/pki/nssdb'\"
pkcs11-module-token-pin = file:${HOME}/pin # the PIN file
activate = 1
";

    #[test]
    fn finds_the_provider_section_and_its_values() {
        let cnf = Cnf::parse(GOOD).unwrap();
        let entry = find_provider(&cnf).unwrap();
        assert_eq!(entry.name, "pkcs11");
        assert_eq!(entry.section, "pkcs11_sect");
        assert_eq!(
            entry.value("pkcs11-module-path"),
            Some("/home/x/lib/module.so")
        );
        assert_eq!(
            entry.value("pkcs11-module-init-args"),
            Some("configdir='sql:/etc/pki/nssdb'")
        );
        assert_eq!(
            entry.value("pkcs11-module-token-pin"),
            Some("file:/home/x/pin")
        );
        assert_eq!(entry.value("activate"), Some("1"));
    }

    #[test]
    fn prefers_the_entry_whose_module_is_ours() {
        let text = "openssl_conf = init\n[init]\nproviders = p\n[p]\npkcs11 = a\nmine = b\n\
                    [a]\nmodule = /x/pkcs11.so\n[b]\nmodule = /y/libpkcs11_ossl.so\n";
        let entry = find_provider(&Cnf::parse(text).unwrap()).unwrap();
        assert_eq!(entry.name, "mine");
    }

    #[test]
    fn each_missing_link_is_named() {
        for (text, words) in [
            ("[x]\na = b\n", "openssl_conf"),
            ("openssl_conf = init\n[init]\n", "providers"),
            (
                "openssl_conf = init\n[init]\nproviders = p\n",
                "does not exist",
            ),
            (
                "openssl_conf = init\n[init]\nproviders = p\n[p]\ndefault = d\n",
                "no entry",
            ),
            (
                "openssl_conf = init\n[init]\nproviders = p\n[p]\npkcs11 = s\n",
                "no such section",
            ),
        ] {
            let problem = find_provider(&Cnf::parse(text).unwrap()).unwrap_err();
            assert!(problem.problem.contains(words), "{text}: {problem:?}");
        }
    }

    #[test]
    fn includes_are_read() {
        let dir = std::env::temp_dir().join(format!("p11-cnf-include-{}", std::process::id()));
        fs::create_dir_all(dir.join("conf.d")).unwrap();
        fs::write(
            dir.join("conf.d/pkcs11.cnf"),
            "[pkcs11_sect]\nactivate = 1\n",
        )
        .unwrap();
        let main = dir.join("openssl.cnf");
        fs::write(
            &main,
            format!(
                "openssl_conf = init\n[init]\nproviders = p\n[p]\npkcs11 = pkcs11_sect\n\
                 .include {}\n",
                dir.join("conf.d").display()
            ),
        )
        .unwrap();
        let entry = find_provider(&Cnf::load(&main).unwrap()).unwrap();
        assert_eq!(entry.value("activate"), Some("1"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn quoted_hashes_are_not_comments() {
        let cnf = Cnf::parse("a = \"x # y\" # z\nb = p\\#q\n").unwrap();
        assert_eq!(cnf.value("default", "a"), Some("x # y"));
        assert_eq!(cnf.value("default", "b"), Some("p#q"));
    }
}
