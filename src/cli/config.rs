//! `thumbora config`: the documented default YAML as shipped, or with `-c FILE` the effective
//! configuration (every default filled in, relative paths resolved) with its secrets masked.

use serde_norway::{Mapping, Value};

use crate::config::{FileConfig, EMBEDDED_DEFAULT};

use super::options::{parse, Spec};

/// What a secret is printed as.
pub const MASK: &str = "***";

const USAGE: &str = "\
usage: thumbora config [-c FILE]

Without -c: prints the documented default configuration (the one compiled in).
With -c FILE: prints the configuration FILE gives, every default filled in and secrets
(security.keys, cache.purge.tokens, S3 access_key/secret_key/session_token) shown as \"***\".
";

const SPECS: &[Spec] = &[
    Spec { short: Some('c'), long: &["conf"], value: true },
    Spec { short: Some('h'), long: &["help"], value: false },
];

/// `thumbora config ARGS`.
pub fn run(args: &[String], out: &mut impl std::io::Write) -> Result<(), String> {
    let p = parse(SPECS, args)?;
    if let Some(extra) = p.positional.first() {
        return Err(format!("unexpected argument `{extra}` (see --help)"));
    }
    let text = if p.flag("help") {
        USAGE.to_string()
    } else {
        match p.value("conf") {
            None => EMBEDDED_DEFAULT.to_string(),
            Some(path) => {
                let file = FileConfig::load(Some(path)).map_err(|e| format!("configuration error: {e}"))?;
                format!(
                    "# The effective configuration of {path}: every default filled in, secrets shown as \"{MASK}\".\n{}",
                    effective_yaml(&file)?
                )
            }
        }
    };
    out.write_all(text.as_bytes()).map_err(|e| e.to_string())
}

/// The whole configuration as YAML (Pingora's keys at the top, Thumbora's under `thumbora:`),
/// secrets masked.
pub fn effective_yaml(file: &FileConfig) -> Result<String, String> {
    let mut doc = match serde_norway::to_value(&file.server).map_err(|e| e.to_string())? {
        Value::Mapping(m) => m,
        _ => Mapping::new(),
    };
    doc.insert("thumbora".into(), serde_norway::to_value(&file.thumbora).map_err(|e| e.to_string())?);
    let mut doc = Value::Mapping(doc);
    mask_secrets(&mut doc);
    serde_norway::to_string(&doc).map_err(|e| e.to_string())
}

/// Replaces every secret in a configuration document by [`MASK`]: each of `security.keys` and
/// `cache.purge.tokens`, and the credentials of both S3 sections (when set).
pub fn mask_secrets(doc: &mut Value) {
    let Some(thumbora) = doc.get_mut("thumbora") else { return };
    for list in [&["security", "keys"][..], &["cache", "purge", "tokens"]] {
        if let Some(Value::Sequence(items)) = at(thumbora, list) {
            items.iter_mut().for_each(|item| *item = MASK.into());
        }
    }
    for section in [&["cache", "shared", "s3"][..], &["sources", "s3"]] {
        if let Some(Value::Mapping(s3)) = at(thumbora, section) {
            for key in ["access_key", "secret_key", "session_token"] {
                if let Some(value) = s3.get_mut(key).filter(|v| !v.is_null()) {
                    *value = MASK.into();
                }
            }
        }
    }
}

fn at<'a>(mut value: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    for key in path {
        value = value.get_mut(*key)?;
    }
    Some(value)
}
