//! Skipped tests made visible. A test that cannot run here (no root for
//! network namespaces, no IPv6 loopback, no etcd with `GOSSAMER_SKIP_ETCD=1`)
//! returns early and so passes; libtest captures what a passing test prints,
//! so a green run would hide it. [`skip`] therefore also appends a line to
//! the file named by `GOSSAMER_SKIP_LOG` (set by `scripts/test.sh`, which
//! prints the count, names and reasons at the end of the run).

use std::io::Write;

/// The environment variable naming the file [`skip`] appends to.
pub const SKIP_LOG_VAR: &str = "GOSSAMER_SKIP_LOG";

/// Reports that `test` is skipped because of `reason`: prints
/// `SKIPPED test: reason` (in the test's own output) and appends
/// `package/binary::test<TAB>reason` as one line to `$GOSSAMER_SKIP_LOG`
/// when it is set.
/// The caller returns right after, so the test passes without having run.
///
/// Appending cannot fail the test: the skip is the news, and a log that
/// cannot be written is reported on stderr instead.
pub fn skip(test: &str, reason: &str) {
    println!("SKIPPED {test}: {reason}");
    let Some(path) = std::env::var_os(SKIP_LOG_VAR) else {
        return;
    };
    // One line, one write: lines from tests (and test binaries) running at
    // the same time do not interleave in a file opened for appending.
    let reason = reason.replace(['\n', '\t'], " ");
    let line = format!("{}\t{reason}\n", qualified(test));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("cannot record the skip of {test} in {}: {e}", path.to_string_lossy());
    }
}

/// `test` with the package and test binary it belongs to
/// (`gossamer-net/multicast::ipv6_...`): the same test name exists in
/// several suites. `cargo test` sets `CARGO_PKG_NAME` for the binaries it
/// runs; the binary's file name ends in a hash, dropped here.
fn qualified(test: &str) -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name.to_owned(),
            _ => stem,
        });
    match (std::env::var("CARGO_PKG_NAME").ok(), binary) {
        (Some(package), Some(binary)) => format!("{package}/{binary}::{test}"),
        (None, Some(binary)) => format!("{binary}::{test}"),
        (package, None) => format!("{}::{test}", package.unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_appended_to_the_log_named_by_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips");
        std::fs::write(&log, "earlier\tline\n").unwrap();
        // The only test in this crate touching the variable: the crate's
        // other tests do not skip, so setting it here races with nothing.
        std::env::set_var(SKIP_LOG_VAR, &log);
        skip("first_test", "no root here");
        skip("second_test", "two\nlines\tand a tab");
        std::env::remove_var(SKIP_LOG_VAR);
        skip("not_logged", "the variable is unset");
        // This unit test runs in the binary `gossamer_testkit-<hash>` of
        // package gossamer-testkit (cargo sets CARGO_PKG_NAME when it runs it).
        let prefix = match std::env::var("CARGO_PKG_NAME") {
            Ok(_) => "gossamer-testkit/gossamer_testkit",
            Err(_) => "gossamer_testkit",
        };
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!("earlier\tline\n{prefix}::first_test\tno root here\n{prefix}::second_test\ttwo lines and a tab\n")
        );
    }
}
