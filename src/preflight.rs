//! What `thumbora -t` checks beyond parsing, and what every start checks before it forks: the
//! files and directories the configuration names exist and can be used by this user. Each
//! problem names its key and its path; all of them are reported at once.

use std::path::Path;

use crate::config::{ConfigError, FileConfig};

/// Every problem found in `file`'s paths (empty: all usable).
pub fn check(file: &FileConfig) -> Vec<ConfigError> {
    let mut problems = Vec::new();
    let mut report = |result: Result<(), ConfigError>| {
        if let Err(e) = result {
            problems.push(e);
        }
    };
    let thumbora = &file.thumbora;
    if let Some(root) = &thumbora.sources.file_root {
        report(readable_dir("thumbora.sources.file_root", root));
    }
    if let Some(ca) = &thumbora.sources.ca_file {
        report(crate::tls::certificate_chain("thumbora.sources.ca_file", ca).map(drop));
    }
    for (i, tls) in thumbora.tls.iter().enumerate() {
        report(crate::tls::certified_key(&format!("thumbora.tls[{i}]"), tls).map(drop));
    }
    if let (true, Some(disk)) = (thumbora.cache.enabled, &thumbora.cache.disk) {
        // Created at start when missing: then its parent must be writable.
        let dir = &disk.dir;
        report(if dir.is_dir() {
            writable_dir("thumbora.cache.disk.dir", dir)
        } else {
            writable_parent("thumbora.cache.disk.dir", dir)
        });
    }
    if let Some(disk) = &thumbora.sources.disk {
        let dir = &disk.dir;
        report(if dir.is_dir() {
            writable_dir("thumbora.sources.disk.dir", dir)
        } else {
            writable_parent("thumbora.sources.disk.dir", dir)
        });
    }
    if let (true, Some(log)) = (thumbora.access_log.enabled, &thumbora.access_log.file) {
        report(appendable("thumbora.access_log.file", log));
    }
    let server = &file.server;
    report(writable_parent("pid_file", Path::new(&server.pid_file)));
    report(writable_parent("upgrade_sock", Path::new(&server.upgrade_sock)));
    if let Some(log) = &server.error_log {
        report(writable_parent("error_log", Path::new(log)));
    }
    problems
}

fn problem(key: &str, path: &Path, what: impl std::fmt::Display) -> ConfigError {
    ConfigError { key: key.to_string(), message: format!("{}: {what}", path.display()) }
}

/// A directory this process can list.
fn readable_dir(key: &str, path: &Path) -> Result<(), ConfigError> {
    match std::fs::read_dir(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(problem(key, path, "no such directory")),
        Err(e) if path.is_file() => Err(problem(key, path, format!("not a directory ({e})"))),
        Err(e) => Err(problem(key, path, format!("cannot be read: {e}"))),
    }
}

/// A file this process can create: its directory exists and is writable.
fn writable_parent(key: &str, path: &Path) -> Result<(), ConfigError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(problem(key, path, format!("directory {} does not exist", dir.display())));
    }
    writable_dir(key, dir).map_err(|e| problem(key, path, e.message))
}

/// A log file this process can append to: the file if it exists, else its directory.
fn appendable(key: &str, path: &Path) -> Result<(), ConfigError> {
    if !path.exists() {
        return writable_parent(key, path);
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|e| problem(key, path, format!("cannot be appended to: {e}")))
}

/// A directory this process can create files in (tried, then removed).
pub fn writable_dir(key: &str, dir: &Path) -> Result<(), ConfigError> {
    let probe = dir.join(format!(".thumbora-check-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(problem(key, dir, format!("directory not writable: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(yaml: &str) -> FileConfig {
        FileConfig::from_yaml(yaml).unwrap()
    }

    #[test]
    fn access_log_file_must_be_appendable() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let yaml = |log: &str| {
            format!("pid_file: {d}/t.pid\nupgrade_sock: {d}/u.sock\nthumbora:\n  access_log:\n    file: {log}\n")
        };
        assert!(check(&conf(&yaml(&format!("{d}/access.log")))).is_empty());
        let problems = check(&conf(&yaml(&format!("{d}/no-dir/access.log"))));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "thumbora.access_log.file");
        assert!(problems[0].message.contains("no-dir"), "{}", problems[0]);
    }

    #[test]
    fn names_key_and_path_of_each_problem() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::write(dir.path().join("not-pem.crt"), "hello").unwrap();
        let yaml = format!(
            "pid_file: {d}/missing/t.pid\nupgrade_sock: {d}/u.sock\nthumbora:\n  sources:\n    file_root: {d}/nope\n    ca_file: {d}/not-pem.crt\n"
        );
        let problems = check(&conf(&yaml));
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["thumbora.sources.file_root", "thumbora.sources.ca_file", "pid_file"], "{problems:?}");
        assert!(problems[0].message.contains(&format!("{d}/nope")), "{}", problems[0]);
        assert!(problems[2].message.contains("missing"), "{}", problems[2]);
    }

    #[test]
    fn a_usable_configuration_has_no_problem() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let yaml =
            format!("pid_file: {d}/t.pid\nupgrade_sock: {d}/u.sock\nthumbora:\n  sources:\n    file_root: {d}\n");
        assert!(check(&conf(&yaml)).is_empty());
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the write probe is removed");
    }
}
