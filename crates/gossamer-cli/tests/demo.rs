//! `gossamer demo` tells its whole story and exits 0 by itself.

mod common;

use std::process::Command;
use std::time::Instant;

use common::bin;

#[test]
fn demo_completes_its_story_and_exits_zero() {
    let started = Instant::now();
    let out =
        Command::new(bin()).args(["demo", "--nodes", "4", "--duration", "120", "--pause-ms", "0"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    for step in [
        "all 4 nodes see each other alive",
        "killed node2@127.0.0.1 (no leave)",
        "node2@127.0.0.1 is suspected",
        "every survivor declares node2@127.0.0.1 dead",
        "restarted node2@127.0.0.1",
        "node2@127.0.0.1 is back",
        "demo complete",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    // Not a TTY: plain timestamped lines, no escape codes.
    assert!(!stdout.contains('\x1b'));
    println!("demo took {:?}", started.elapsed());
}

#[test]
fn demo_refuses_too_few_nodes() {
    let out = Command::new(bin()).args(["demo", "--nodes", "2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
