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
/// `test<TAB>reason` as one line to `$GOSSAMER_SKIP_LOG` when it is set.
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
    let line = format!("{test}\t{reason}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("cannot record the skip of {test} in {}: {e}", path.to_string_lossy());
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
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "earlier\tline\nfirst_test\tno root here\nsecond_test\ttwo lines and a tab\n"
        );
    }
}
