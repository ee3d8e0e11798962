//! Every input the coverage-guided fuzzers found (crashes, timeouts, out-of-memory; see
//! scripts/fuzz.sh), replayed through the same entry point as its target. Each must now finish
//! without a panic; a hang fails the test after a generous bound instead of blocking the suite.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

fn regressions(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn fuzz_findings_stay_fixed() {
    type Target = (&'static str, fn(&[u8]));
    let targets: [Target; 4] = [
        ("url", thumbora::fuzzing::url),
        ("filters", thumbora::fuzzing::filters),
        ("probe", thumbora::fuzzing::probe),
        ("decode", thumbora::fuzzing::decode),
    ];
    for (target, run) in targets {
        for file in regressions(target) {
            let bytes = std::fs::read(&file).unwrap();
            let (done_tx, done_rx) = mpsc::channel();
            std::thread::spawn(move || {
                let outcome = std::panic::catch_unwind(|| run(&bytes));
                let _ = done_tx.send(outcome.is_ok());
            });
            match done_rx.recv_timeout(Duration::from_secs(30)) {
                Ok(true) => {}
                Ok(false) => panic!("{target}: {} panics again", file.display()),
                Err(_) => panic!("{target}: {} still runs after 30 s", file.display()),
            }
        }
    }
}
