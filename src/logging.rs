//! Debug logging: a small `log::Log` implementation, off unless `PKCS11_PROVIDER_DEBUG` is set.
//!
//! The variable uses latchset/pkcs11-provider's format, a comma-separated list of `file:/path`
//! (append to that file; default stderr) and `level:N` (0 = off, 1 = info, 2 = debug,
//! 3 or more = trace; default 1). A provider runs inside programs such as nginx or curl, so
//! nothing is written anywhere unless the user asked for it. Lines look like
//! `[pkcs11-ossl 4242] DEBUG pkcs11_ossl::session: opened session 3 on slot 0`.
//!
//! A cdylib carries its own copy of `log`'s statics, so installing our logger cannot clash with
//! one the host program installed. Callers must never log PINs or key bytes.

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use log::{Level, LevelFilter, Log, Metadata, Record};
use once_cell::sync::OnceCell;

const DEBUG_ENV: &str = "PKCS11_PROVIDER_DEBUG";
const LINE_TAG: &str = "pkcs11-ossl";
const FILE_PREFIX: &str = "file:";
const LEVEL_PREFIX: &str = "level:";
/// Level used when the variable is set but names no level.
const DEFAULT_LEVEL: u32 = 1;

/// Parsed `PKCS11_PROVIDER_DEBUG` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DebugSpec {
    /// Log file (opened for appending); `None` means stderr.
    pub(crate) file: Option<PathBuf>,
    /// 0 = off, 1 = info, 2 = debug, 3 or more = trace.
    pub(crate) level: u32,
}

impl DebugSpec {
    fn level_filter(&self) -> LevelFilter {
        match self.level {
            0 => LevelFilter::Off,
            1 => LevelFilter::Info,
            2 => LevelFilter::Debug,
            _ => LevelFilter::Trace,
        }
    }
}

/// Parses a `PKCS11_PROVIDER_DEBUG` value such as `file:/tmp/p11.log,level:2`. Empty items are
/// skipped, so "" (the variable set to nothing) means level 1 on stderr.
pub(crate) fn parse_debug_spec(spec: &str) -> Result<DebugSpec, String> {
    let mut file = None;
    let mut level = None;
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if let Some(path) = item.strip_prefix(FILE_PREFIX) {
            if path.is_empty() {
                return Err("'file:' must be followed by a path".to_owned());
            }
            if file.replace(PathBuf::from(path)).is_some() {
                return Err("'file:' given more than once".to_owned());
            }
        } else if let Some(number) = item.strip_prefix(LEVEL_PREFIX) {
            let parsed = number.parse::<u32>().map_err(|_| {
                format!(
                    "invalid level '{}' (expected 0 to 3)",
                    number.escape_debug()
                )
            })?;
            if level.replace(parsed).is_some() {
                return Err("'level:' given more than once".to_owned());
            }
        } else {
            return Err(format!(
                "unknown item '{}' (expected file:PATH or level:N)",
                item.escape_debug()
            ));
        }
    }
    Ok(DebugSpec {
        file,
        level: level.unwrap_or(DEFAULT_LEVEL),
    })
}

/// Installs the logger if `PKCS11_PROVIDER_DEBUG` asks for one. Only the first call does
/// anything; later and concurrent calls return at once.
pub(crate) fn init_from_env() {
    static INIT: OnceCell<()> = OnceCell::new();
    INIT.get_or_init(|| install(std::env::var_os(DEBUG_ENV)));
}

fn install(raw: Option<OsString>) {
    let Some(raw) = raw else { return };
    let spec = match raw.to_str() {
        Some(text) => parse_debug_spec(text),
        None => Err("the value is not valid UTF-8".to_owned()),
    };
    let spec = match spec {
        Ok(spec) => spec,
        Err(problem) => {
            // The user asked for debugging, so say why it is not happening.
            note(&format!("ignoring {DEBUG_ENV}: {problem}"));
            return;
        }
    };
    let Some(logger) = DebugLogger::from_spec(&spec) else {
        return;
    };
    let max_level = logger.max_level;
    // Fails only if a logger is already installed in this copy of `log` (e.g. a test harness
    // using the rlib); then leave that logger and its level alone.
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max_level);
    }
}

/// One line to stderr about the debug setup itself; errors are ignored.
fn note(message: &str) {
    let _ = writeln!(
        io::stderr(),
        "[{LINE_TAG} {}] {message}",
        std::process::id()
    );
}

/// Where log lines go.
enum Sink {
    Stderr,
    File(File),
}

impl Sink {
    /// Writes a whole line in one call, so lines from concurrent threads and processes sharing
    /// the file (`O_APPEND`) stay intact without a lock of ours: a lock held by another thread
    /// at `fork()` would never be released in the child. Failures are ignored: logging must
    /// never break the provider.
    fn write_line(&self, line: &[u8]) {
        let _ = match self {
            Sink::Stderr => io::stderr().write_all(line),
            Sink::File(file) => {
                let mut file: &File = file;
                file.write_all(line)
            }
        };
    }

    fn flush(&self) {
        let _ = match self {
            Sink::Stderr => io::stderr().flush(),
            Sink::File(file) => {
                let mut file: &File = file;
                file.flush()
            }
        };
    }
}

struct DebugLogger {
    max_level: LevelFilter,
    sink: Sink,
}

impl DebugLogger {
    /// `None` when the level turns logging off. A log file that cannot be opened falls back
    /// to stderr, with a note saying so.
    fn from_spec(spec: &DebugSpec) -> Option<DebugLogger> {
        let max_level = spec.level_filter();
        if max_level == LevelFilter::Off {
            return None;
        }
        let sink = match &spec.file {
            None => Sink::Stderr,
            Some(path) => match open_log_file(path) {
                Ok(file) => Sink::File(file),
                Err(e) => {
                    note(&format!(
                        "cannot open log file '{}': {e}; logging to stderr",
                        path.display()
                    ));
                    Sink::Stderr
                }
            },
        };
        Some(DebugLogger { max_level, sink })
    }
}

fn open_log_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    // Log lines name tokens, labels and URIs: keep a new log file private to the user.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Formats one log line, newline included. The pid is read per line because a forked child
/// keeps logging through the same logger.
fn format_line(pid: u32, level: Level, target: &str, message: &fmt::Arguments<'_>) -> String {
    let mut line = String::new();
    // `write!` into a String fails only if a Display impl does; keep what we have then.
    let _ = writeln!(line, "[{LINE_TAG} {pid}] {level} {target}: {message}");
    line
}

impl Log for DebugLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.max_level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(
            std::process::id(),
            record.level(),
            record.target(),
            record.args(),
        );
        self.sink.write_line(line.as_bytes());
    }

    fn flush(&self) {
        self.sink.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(file: Option<&str>, level: u32) -> DebugSpec {
        DebugSpec {
            file: file.map(PathBuf::from),
            level,
        }
    }

    #[test]
    fn parse_defaults() {
        assert_eq!(parse_debug_spec("").unwrap(), spec(None, 1));
        assert_eq!(parse_debug_spec(",").unwrap(), spec(None, 1));
        assert_eq!(
            parse_debug_spec("file:/tmp/p11.log").unwrap(),
            spec(Some("/tmp/p11.log"), 1)
        );
    }

    #[test]
    fn parse_levels() {
        for n in [0, 1, 2, 3, 9] {
            assert_eq!(
                parse_debug_spec(&format!("level:{n}")).unwrap(),
                spec(None, n)
            );
        }
    }

    #[test]
    fn parse_file_and_level_in_any_order() {
        let expected = spec(Some("/var/log/p11 x.log"), 2);
        assert_eq!(
            parse_debug_spec("file:/var/log/p11 x.log,level:2").unwrap(),
            expected
        );
        assert_eq!(
            parse_debug_spec("level:2,file:/var/log/p11 x.log").unwrap(),
            expected
        );
        assert_eq!(
            parse_debug_spec(" level:2 , file:/var/log/p11 x.log ,").unwrap(),
            expected
        );
    }

    #[test]
    fn parse_errors() {
        for (bad, needle) in [
            ("level:", "invalid level ''"),
            ("level:abc", "invalid level 'abc'"),
            ("level:-1", "invalid level '-1'"),
            ("file:", "must be followed by a path"),
            ("verbose", "unknown item 'verbose'"),
            ("level:1,level:2", "'level:' given more than once"),
            ("file:/a,file:/b", "'file:' given more than once"),
        ] {
            let err = parse_debug_spec(bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn level_filters() {
        assert_eq!(spec(None, 0).level_filter(), LevelFilter::Off);
        assert_eq!(spec(None, 1).level_filter(), LevelFilter::Info);
        assert_eq!(spec(None, 2).level_filter(), LevelFilter::Debug);
        assert_eq!(spec(None, 3).level_filter(), LevelFilter::Trace);
        assert_eq!(spec(None, u32::MAX).level_filter(), LevelFilter::Trace);
    }

    #[test]
    fn level_zero_installs_nothing() {
        assert!(DebugLogger::from_spec(&spec(None, 0)).is_none());
        assert!(DebugLogger::from_spec(&spec(Some("/nonexistent/dir/x.log"), 0)).is_none());
    }

    #[test]
    fn line_format() {
        let line = format_line(
            42,
            Level::Debug,
            "pkcs11_ossl::session",
            &format_args!("x={}", 7),
        );
        assert_eq!(line, "[pkcs11-ossl 42] DEBUG pkcs11_ossl::session: x=7\n");
    }

    fn log_at(logger: &DebugLogger, level: Level, message: &str) {
        logger.log(
            &Record::builder()
                .level(level)
                .target("pkcs11_ossl::test")
                .args(format_args!("{message}"))
                .build(),
        );
    }

    #[test]
    fn writes_to_file_in_append_mode_and_filters_levels() {
        let path = std::env::temp_dir().join(format!(
            "pkcs11-ossl-logging-test-{}.log",
            std::process::id()
        ));
        std::fs::write(&path, "existing\n").unwrap();
        let logger = DebugLogger::from_spec(&DebugSpec {
            file: Some(path.clone()),
            level: 2,
        })
        .unwrap();
        assert!(logger.enabled(&Metadata::builder().level(Level::Debug).build()));
        assert!(!logger.enabled(&Metadata::builder().level(Level::Trace).build()));

        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..25 {
                        log_at(&logger, Level::Info, "info line");
                    }
                });
            }
        });
        log_at(&logger, Level::Debug, "debug line");
        log_at(&logger, Level::Trace, "trace line");
        logger.flush();

        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let pid = std::process::id();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 100 + 1, "{text}");
        assert_eq!(lines[0], "existing");
        let info = format!("[pkcs11-ossl {pid}] INFO pkcs11_ossl::test: info line");
        assert!(lines[1..101].iter().all(|l| *l == info), "{text}");
        assert_eq!(
            lines[101],
            format!("[pkcs11-ossl {pid}] DEBUG pkcs11_ossl::test: debug line")
        );
    }

    #[test]
    fn unopenable_file_falls_back_to_stderr() {
        let logger = DebugLogger::from_spec(&spec(Some("/nonexistent/dir/x.log"), 1)).unwrap();
        assert!(matches!(logger.sink, Sink::Stderr));
    }

    #[test]
    fn install_sets_global_logger_and_max_level() {
        if std::env::var_os(DEBUG_ENV).is_some() {
            return; // init_from_env may already have installed the process-wide logger
        }
        let path = std::env::temp_dir().join(format!(
            "pkcs11-ossl-logging-install-{}.log",
            std::process::id()
        ));
        install(Some(OsString::from(format!(
            "level:2,file:{}",
            path.display()
        ))));
        assert_eq!(log::max_level(), LevelFilter::Debug);
        log::debug!(target: "pkcs11_ossl::install", "hello {}", 1);
        log::trace!(target: "pkcs11_ossl::install", "dropped");
        log::logger().flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            text,
            format!(
                "[pkcs11-ossl {}] DEBUG pkcs11_ossl::install: hello 1\n",
                std::process::id()
            )
        );
        // A second install cannot replace the logger and must not panic.
        install(Some(OsString::from("level:3")));
        assert_eq!(log::max_level(), LevelFilter::Debug);
    }

    #[test]
    fn init_from_env_is_idempotent_across_threads() {
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(init_from_env);
            }
        });
        init_from_env();
    }
}
