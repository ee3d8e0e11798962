//! `thumbora migrate [-o OUT.yaml] THUMBOR_CONF`: a thumbor.conf (read, never executed, by
//! [`super::pyconf`]) turned into Thumbora's YAML. Each migrated value names the thumbor setting
//! and line it comes from; a setting with no Thumbora equivalent is listed in the file and
//! printed as a warning, with the reason; where thumbor's default for a setting the file leaves
//! out differs from Thumbora's, a note says which applies. Secrets go into the YAML as given,
//! never into a warning.

mod keys;
pub mod yaml;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use super::options::{parse, Spec};
use super::pyconf::{self, SyntaxError, Value};
use crate::config::EMBEDDED_DEFAULT;
use crate::s3::S3Config;
use yaml::{Doc, Scalar};

const USAGE: &str = "\
usage: thumbora migrate [-o OUT.yaml] THUMBOR_CONF

Reads a thumbor.conf (its literal assignments; nothing in it is executed) and writes the
equivalent Thumbora configuration to standard output, or to OUT.yaml with -o. Settings that
cannot be migrated are listed in the output and printed as warnings on standard error.
Exit status: 0 when the configuration was written (even with warnings), 2 when the file cannot
be read or has a syntax error.

  -o, --output FILE   write the YAML to FILE instead of standard output
  -h, --help          this help
";

const SPECS: &[Spec] = &[
    Spec { short: Some('o'), long: &["output"], value: true },
    Spec { short: Some('h'), long: &["help"], value: false },
];

/// Comment lines are wrapped at this width.
const WIDTH: usize = 100;

/// `thumbora migrate ARGS`.
pub fn run(args: &[String], out: &mut impl std::io::Write) -> Result<(), String> {
    let p = parse(SPECS, args)?;
    if p.flag("help") {
        return out.write_all(USAGE.as_bytes()).map_err(|e| e.to_string());
    }
    let [path] = p.positional.as_slice() else {
        return Err("expected one thumbor.conf to read (see --help)".into());
    };
    let text = read_conf(path)?;
    let migration = migrate(&text, path).map_err(|e| format!("{path}: {e}"))?;
    for warning in &migration.warnings {
        eprintln!("thumbora migrate: warning: {warning}");
    }
    match p.value("output") {
        Some(file) => std::fs::write(file, &migration.yaml).map_err(|e| format!("cannot write {file}: {e}"))?,
        None => out.write_all(migration.yaml.as_bytes()).map_err(|e| e.to_string())?,
    }
    eprintln!(
        "thumbora migrate: {} settings migrated, {} warnings; check the result with `thumbora -t -c FILE`",
        migration.mapped,
        migration.warnings.len()
    );
    Ok(())
}

/// The file's text: at most [`pyconf::MAX_BYTES`], UTF-8 as Python 3 reads it.
fn read_conf(path: &str) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(pyconf::MAX_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read {path}: {e}"))?;
    if bytes.len() > pyconf::MAX_BYTES {
        return Err(format!("{path}: larger than {} bytes: not read", pyconf::MAX_BYTES));
    }
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        format!("{path}: line {line}: not UTF-8 (Python 3 reads thumbor.conf as UTF-8)")
    })
}

/// A migrated configuration.
#[derive(Debug)]
pub struct Migration {
    /// The whole YAML file.
    pub yaml: String,
    /// One line per setting or statement not migrated (no secret in them).
    pub warnings: Vec<String>,
    /// How many thumbor settings were migrated.
    pub mapped: usize,
}

/// Migrates the thumbor.conf `text`; `source` names it in the output's first comment.
pub fn migrate(text: &str, source: &str) -> Result<Migration, SyntaxError> {
    let module = pyconf::parse(text)?;
    let mut m = Migrator::default();
    for skipped in &module.skipped {
        let lines = if skipped.last_line > skipped.line {
            format!("lines {}-{}", skipped.line, skipped.last_line)
        } else {
            format!("line {}", skipped.line)
        };
        let name = skipped.name.as_deref().map(|n| format!("{n}: ")).unwrap_or_default();
        let warning = format!("{lines}: {name}{}", skipped.reason);
        m.unreadable.extend(skipped.name.clone());
        m.warnings.push(warning.clone());
        m.not_read.push(warning);
    }
    for a in module.assignments {
        if let Some((_, first)) = m.values.get(&a.name) {
            let warning =
                format!("line {}: {}: set again (first on line {first}): the last value is used", a.line, a.name);
            m.warnings.push(warning);
        }
        m.values.insert(a.name, (a.value, a.line));
    }
    m.rules();
    Ok(m.finish(source, module.skipped.is_empty()))
}

/// A thumbor value and the line that set it.
type Setting = (Value, usize);

#[derive(Default)]
struct Migrator {
    values: BTreeMap<String, Setting>,
    taken: HashSet<String>,
    doc: Doc,
    warnings: Vec<String>,
    not_migrated: Vec<String>,
    nothing_to_do: Vec<String>,
    not_read: Vec<String>,
    /// Settings assigned by a statement that was not read (not a literal).
    unreadable: HashSet<String>,
    mapped: usize,
}

/// Where the settings a rule reads went, for a bucket's section.
struct S3Field {
    value: String,
    from: String,
}

/// The names of a bucket's settings in one thumbor plugin, with the plugin's defaults.
struct S3Keys {
    what: &'static str,
    region: (&'static str, &'static str),
    bucket: (&'static str, &'static str),
    endpoint: &'static str,
    root: (&'static str, &'static str),
    access_key: Option<&'static str>,
    secret_key: Option<&'static str>,
}

const T: &str = "thumbora";

impl Migrator {
    fn rules(&mut self) {
        self.doc.set("thumbora.listen", Scalar::List(vec![Scalar::str("0.0.0.0:8888")]), "");
        self.doc.note(
            "thumbora.listen",
            "thumbor's address and port are its command-line options (-i/--ip, -p/--port; default 0.0.0.0:8888), \
             not thumbor.conf settings.",
        );
        for section in ["healthcheck_path", "security", "sources", "image", "response", "cache"] {
            self.doc.map(&format!("{T}.{section}"));
        }
        self.doc.set("thumbora.healthcheck_path", Scalar::str("/healthcheck"), "");
        self.security();
        self.healthcheck();
        self.response();
        self.meta_callback();
        self.loader();
        self.http_loader();
        self.allowed_sources();
        self.storage();
        self.result_storage();
        self.image();
        self.the_rest();
    }

    // --- reading settings ---------------------------------------------------------------------

    fn take(&mut self, key: &str) -> Option<Setting> {
        self.taken.insert(key.to_string());
        self.values.get(key).cloned()
    }

    fn is_set(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// How a note says that `key` is missing: not in the file, or in a statement not read.
    fn unset(&self, key: &str) -> String {
        if self.unreadable.contains(key) {
            format!("{key} not read (not a literal)")
        } else {
            format!("{key} not set")
        }
    }

    /// A `True`/`False` setting (Python's truth value of a number or `None`, as thumbor reads
    /// it); another type is warned about.
    fn flag(&mut self, key: &str) -> Option<(bool, usize)> {
        let (value, line) = self.take(key)?;
        match value {
            Value::Bool(_) | Value::Int(_) | Value::None => Some((value.truthy(), line)),
            other => {
                self.warn(key, line, &format!("expected True or False, not a {}", other.type_name()));
                None
            }
        }
    }

    /// A whole number at least 0 (`75e6` too); another value is warned about.
    fn count(&mut self, key: &str) -> Option<(u64, usize)> {
        let (value, line) = self.take(key)?;
        match value {
            Value::Int(n) if n >= 0 && n <= i128::from(u64::MAX) => Some((n as u64, line)),
            Value::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Some((f as u64, line)),
            other => {
                self.warn(key, line, &format!("expected a whole number, at least 0, not {}", describe(&other)));
                None
            }
        }
    }

    /// Seconds (a number at least 0) as milliseconds.
    fn millis(&mut self, key: &str) -> Option<(u64, usize)> {
        let (value, line) = self.take(key)?;
        match value {
            Value::Int(n) if (0..=i128::from(u64::MAX / 1000)).contains(&n) => Some((n as u64 * 1000, line)),
            Value::Float(f) if (0.0..1e15).contains(&f) => Some(((f * 1000.0).round() as u64, line)),
            other => {
                self.warn(key, line, &format!("expected seconds, not {}", describe(&other)));
                None
            }
        }
    }

    /// A string (`None`: unset); another type is warned about.
    fn text(&mut self, key: &str) -> Option<(Option<String>, usize)> {
        let (value, line) = self.take(key)?;
        match value {
            Value::None => Some((None, line)),
            ref v if v.as_str().is_some() => Some((v.as_str().map(str::to_string), line)),
            other => {
                self.warn(key, line, &format!("expected a string, not a {}", other.type_name()));
                None
            }
        }
    }

    // --- writing ------------------------------------------------------------------------------

    /// `path` (under `thumbora.`) set from thumbor's `key` on `line`.
    fn set(&mut self, path: &str, value: Scalar, key: &str, line: usize) {
        self.doc.set(&format!("{T}.{path}"), value, &format!("{key}, line {line}"));
        self.mapped += 1;
    }

    /// `path` set to Thumbora's value with a comment (not from the file).
    fn put(&mut self, path: &str, value: Scalar, beside: &str) {
        self.doc.set(&format!("{T}.{path}"), value, beside);
    }

    /// A comment above `path` (set already, or a section).
    fn note(&mut self, path: &str, text: &str) {
        self.doc.note(&format!("{T}.{path}"), text);
    }

    /// A setting not migrated: listed in the file and printed as a warning.
    fn warn(&mut self, key: &str, line: usize, reason: &str) {
        let text = format!("line {line}: {key}: {reason}");
        self.warnings.push(text.clone());
        self.not_migrated.push(text);
    }

    /// A setting that needs nothing in Thumbora: listed in the file.
    fn nothing(&mut self, key: &str, line: usize, reason: &str) {
        self.nothing_to_do.push(format!("line {line}: {key}: {reason}"));
    }

    // --- the rules ----------------------------------------------------------------------------

    fn security(&mut self) {
        match self.take("SECURITY_KEY") {
            None => {
                self.put("security.keys", Scalar::List(vec![]), "");
                let unset = self.unset("SECURITY_KEY");
                self.note(
                    "security.keys",
                    &format!(
                        "{unset}: thumbor's default key is MY_SECURE_KEY, published; Thumbora has no default \
                         key, so signed URLs are refused (400) until a key is listed here."
                    ),
                );
                if !self.unreadable.contains("SECURITY_KEY") {
                    self.warnings.push(
                        "SECURITY_KEY is not set: thumbor's default key (MY_SECURE_KEY) is not carried over; signed \
                         URLs are refused until security.keys has a key"
                            .into(),
                    );
                }
            }
            Some((value, line)) => match value.as_str() {
                Some("") => self.warn("SECURITY_KEY", line, "empty: no key to carry over (signed URLs are refused)"),
                Some(key) => {
                    let key = key.to_string();
                    self.set("security.keys", Scalar::List(vec![Scalar::Str(key.clone())]), "SECURITY_KEY", line);
                    if key == "MY_SECURE_KEY" {
                        let why = "thumbor's published default key: anyone can sign URLs with it; set a secret of \
                                   your own";
                        self.warnings.push(format!("line {line}: SECURITY_KEY: {why}"));
                        self.note("security.keys", &format!("SECURITY_KEY is {why}."));
                    }
                }
                None => self.warn("SECURITY_KEY", line, &format!("expected a string, not a {}", value.type_name())),
            },
        }
        match self.flag("ALLOW_UNSAFE_URL") {
            Some((allow, line)) => self.set("security.allow_unsafe", Scalar::Bool(allow), "ALLOW_UNSAFE_URL", line),
            None if !self.is_set("ALLOW_UNSAFE_URL") => {
                self.put("security.allow_unsafe", Scalar::Bool(true), "");
                self.note(
                    "security.allow_unsafe",
                    &format!(
                        "{}: thumbor's default, True, is Thumbora's too: /unsafe/ URLs are served.",
                        self.unset("ALLOW_UNSAFE_URL")
                    ),
                );
            }
            None => {}
        }
    }

    fn healthcheck(&mut self) {
        let Some((route, line)) = self.text("HEALTHCHECK_ROUTE") else { return };
        let route = route.unwrap_or_default();
        match healthcheck_path(&route) {
            Some(path) => self.set("healthcheck_path", Scalar::Str(path), "HEALTHCHECK_ROUTE", line),
            None => self.warn(
                "HEALTHCHECK_ROUTE",
                line,
                &format!(
                    "`{route}` is a regular expression that is not one path: Thumbora answers one path \
                     (healthcheck_path, with or without a trailing slash); /healthcheck kept"
                ),
            ),
        }
    }

    fn response(&mut self) {
        if let Some((age, line)) = self.count("MAX_AGE") {
            self.set("response.max_age", Scalar::Int(age.into()), "MAX_AGE", line);
        }
        if let Some((etags, line)) = self.flag("ENABLE_ETAGS") {
            self.set("response.etags", Scalar::Bool(etags), "ENABLE_ETAGS", line);
        }
        if let Some((value, line)) = self.take("ACCESS_CONTROL_ALLOW_ORIGIN_HEADER") {
            let key = "ACCESS_CONTROL_ALLOW_ORIGIN_HEADER";
            match value {
                Value::Bool(false) | Value::None => self.set("response.cors_allow_origin", Scalar::Null, key, line),
                ref v if v.as_str().is_some_and(|s| !s.is_empty()) => {
                    let origin = v.as_str().unwrap_or_default().to_string();
                    self.set("response.cors_allow_origin", Scalar::Str(origin), key, line)
                }
                Value::Str(_) => self.set("response.cors_allow_origin", Scalar::Null, key, line),
                other => self.warn(
                    key,
                    line,
                    &format!(
                        "thumbor sends this value as the header ({}); Thumbora needs the origin text, e.g. \"*\"",
                        describe(&other)
                    ),
                ),
            }
        }
    }

    /// `META_CALLBACK_NAME`: a name JSONP can call, or nothing (thumbor's `None` or `''`).
    fn meta_callback(&mut self) {
        let key = "META_CALLBACK_NAME";
        let Some((value, line)) = self.take(key) else { return };
        match value {
            Value::None => {}
            Value::Str(ref name) if name.is_empty() => {}
            Value::Str(ref name) if crate::pipeline::meta::safe_callback(name).is_some() => {
                self.set("response.meta_callback_name", Scalar::Str(name.clone()), key, line)
            }
            Value::Str(_) => self.warn(key, line, "not a plain JavaScript name (letters, digits, `_`, `.`, `$`)"),
            other => self.warn(key, line, &format!("{}: expected a function name", describe(&other))),
        }
    }

    fn loader(&mut self) {
        let (module, line) = match self.text("LOADER") {
            Some((Some(module), line)) => (module, Some(line)),
            Some((None, line)) => {
                self.warn("LOADER", line, "None: thumbor cannot load images without a loader; http kept");
                ("thumbor.loaders.http_loader".into(), None)
            }
            None => ("thumbor.loaders.http_loader".into(), None),
        };
        let from = |line: Option<usize>| match line {
            Some(line) => format!("LOADER, line {line}"),
            None => "LOADER not set: thumbor's default, http_loader".into(),
        };
        let count = |m: &mut Migrator| m.mapped += usize::from(line.is_some());
        let short = module.trim_start_matches("thumbor.loaders.");
        match short {
            "http_loader" | "https_loader" | "strict_https_loader" => {
                self.put("sources.loader", Scalar::str("http"), &from(line));
                count(self);
                if short == "https_loader" {
                    self.loader_warning(
                        line,
                        "https_loader fetches image URLs without a scheme over https://; Thumbora, like \
                         http_loader, over http:// (write https:// in those image URLs)",
                    );
                } else if short == "strict_https_loader" {
                    self.loader_warning(
                        line,
                        "strict_https_loader refuses http:// image URLs; Thumbora's http loader fetches them too, \
                         and fetches URLs without a scheme over http://",
                    );
                }
            }
            "file_loader" | "file_loader_http_fallback" => {
                let kind = if short == "file_loader" { "file" } else { "file_then_http" };
                self.put("sources.loader", Scalar::str(kind), &from(line));
                count(self);
                self.file_root();
            }
            "thumbor_aws.loader" | "tc_aws.loaders.s3_loader" => {
                let keys = if short == "tc_aws.loaders.s3_loader" {
                    if let Some((true, at)) = self.flag("TC_AWS_ENABLE_HTTP_LOADER") {
                        self.warn(
                            "TC_AWS_ENABLE_HTTP_LOADER",
                            at,
                            "Thumbora's s3 loader reads every image URL from the bucket: http:// URLs are not \
                             fetched (loader: file_then_http has no S3 equivalent)",
                        );
                    }
                    TC_AWS_LOADER
                } else if self.compatibility_mode() {
                    TC_AWS_COMPAT_LOADER
                } else {
                    THUMBOR_AWS_LOADER
                };
                if self.s3_section("sources.s3", &keys) {
                    self.put("sources.loader", Scalar::str("s3"), &from(line));
                    count(self);
                } else {
                    self.put("sources.loader", Scalar::str("http"), "");
                    self.note("sources.loader", &format!("{module}: not migrated (see the end of this file)."));
                }
            }
            _ => {
                self.put("sources.loader", Scalar::str("http"), "");
                self.loader_warning(
                    line,
                    &format!(
                        "`{module}` is not a loader Thumbora has (http, file, file_then_http, s3); sources.loader \
                         is http"
                    ),
                );
            }
        }
        if !matches!(short, "file_loader" | "file_loader_http_fallback") {
            if let Some((_, at)) = self.take("FILE_LOADER_ROOT_PATH") {
                self.nothing("FILE_LOADER_ROOT_PATH", at, "not used: LOADER is not a file loader");
            }
        }
        if let Some((_, at)) = self.take("TC_AWS_ENABLE_HTTP_LOADER") {
            if short != "tc_aws.loaders.s3_loader" {
                self.nothing("TC_AWS_ENABLE_HTTP_LOADER", at, "not used: LOADER is not tc_aws's");
            }
        }
    }

    fn loader_warning(&mut self, line: Option<usize>, why: &str) {
        match line {
            Some(line) => self.warn("LOADER", line, why),
            None => self.warnings.push(format!("LOADER: {why}")),
        }
    }

    fn file_root(&mut self) {
        match self.text("FILE_LOADER_ROOT_PATH") {
            Some((Some(root), line)) if !root.is_empty() => {
                self.set("sources.file_root", Scalar::Str(root), "FILE_LOADER_ROOT_PATH", line)
            }
            Some((_, line)) => {
                self.warn("FILE_LOADER_ROOT_PATH", line, "empty: the file loader needs a root directory; `.` written");
                self.put("sources.file_root", Scalar::str("."), "");
            }
            None => {
                let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
                self.put("sources.file_root", Scalar::Str(home.clone()), "");
                self.note(
                    "sources.file_root",
                    "FILE_LOADER_ROOT_PATH not set: thumbor reads files under the home directory of the user it runs \
                     as; written: the home directory of the user who ran `thumbora migrate`. Check it.",
                );
                self.warnings.push(format!(
                    "FILE_LOADER_ROOT_PATH is not set: thumbor's default is its user's home directory; sources.file_root \
                     is {home} (the home directory of this user): check it"
                ));
            }
        }
    }

    fn compatibility_mode(&mut self) -> bool {
        self.flag("THUMBOR_AWS_RUN_IN_COMPATIBILITY_MODE").is_some_and(|(on, _)| on)
    }

    /// A bucket's section at `at` from the settings `keys` names; false (and warned) when it
    /// cannot be written.
    fn s3_section(&mut self, at: &str, keys: &S3Keys) -> bool {
        let bucket = self.s3_field(keys.bucket.0, Some(keys.bucket.1), keys.what);
        let region = self.s3_field(keys.region.0, Some(keys.region.1), keys.what);
        let endpoint = self.s3_field(keys.endpoint, None, keys.what);
        let root = self.s3_field(keys.root.0, Some(keys.root.1), keys.what);
        let secret = |m: &mut Migrator, key: Option<&'static str>, fallback: &'static str| {
            key.and_then(|k| m.s3_field(k, None, keys.what)).or_else(|| m.s3_field(fallback, None, keys.what))
        };
        let access_key = secret(self, keys.access_key, "AWS_ACCESS_KEY_ID");
        let secret_key = secret(self, keys.secret_key, "AWS_SECRET_ACCESS_KEY");
        let session_token = self.s3_field("AWS_SESSION_TOKEN", None, keys.what);
        let (Some(bucket), Some(region)) = (bucket, region) else { return false };
        if bucket.value.is_empty() {
            let why = format!(
                "no bucket: {} then takes the bucket from the first segment of each image URL; Thumbora reads one \
                 configured bucket. Not migrated: set {T}.{at}.bucket by hand",
                keys.what
            );
            self.warnings.push(format!("{}: {why}", keys.bucket.0));
            self.not_migrated.push(format!("{}: {why}", keys.bucket.0));
            return false;
        }
        let path_style = endpoint.is_some() || bucket.value.contains('.');
        let config = S3Config {
            endpoint: endpoint.as_ref().map(|f| f.value.clone()),
            region: region.value.clone(),
            bucket: bucket.value.clone(),
            prefix: root.as_ref().map(|f| f.value.clone()).unwrap_or_default(),
            path_style,
            access_key: access_key.as_ref().map(|f| f.value.clone()),
            secret_key: secret_key.as_ref().map(|f| f.value.clone()),
            session_token: session_token.as_ref().map(|f| f.value.clone()),
            ..S3Config::default()
        };
        if let Err(why) = config.validate(&format!("{T}.{at}")) {
            let why = format!("{} not migrated: {why}", keys.what);
            self.warnings.push(why.clone());
            self.not_migrated.push(why);
            return false;
        }
        let field = |m: &mut Migrator, name: &str, f: Option<S3Field>| {
            if let Some(f) = f {
                m.doc.set(&format!("{T}.{at}.{name}"), Scalar::Str(f.value), &f.from);
                m.mapped += usize::from(!f.from.contains("not set"));
            }
        };
        field(self, "endpoint", endpoint);
        field(self, "region", Some(region));
        field(self, "bucket", Some(bucket));
        field(self, "prefix", root);
        let style = if path_style {
            "path-style URLs ({endpoint}/{bucket}/{key}), what S3-compatible servers expect; false: virtual-hosted"
        } else {
            "virtual-hosted URLs ({bucket}.s3.{region}.amazonaws.com), as botocore uses on AWS"
        };
        self.doc.set(&format!("{T}.{at}.path_style"), Scalar::Bool(path_style), style);
        let with_keys = access_key.is_some();
        field(self, "access_key", access_key);
        field(self, "secret_key", secret_key);
        field(self, "session_token", session_token);
        if !with_keys {
            self.doc.note(
                &format!("{T}.{at}.bucket"),
                "No credentials in thumbor.conf: like botocore, Thumbora takes AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY from its environment, else the EC2 instance role.",
            );
        }
        true
    }

    /// One setting of a bucket: its value, or the plugin's default, with where it comes from.
    fn s3_field(&mut self, key: &str, default: Option<&str>, what: &str) -> Option<S3Field> {
        match self.text(key) {
            Some((Some(value), line)) if !value.is_empty() || default.is_some() => {
                Some(S3Field { value, from: format!("{key}, line {line}") })
            }
            Some((_, _)) | None => {
                default.map(|d| S3Field { value: d.to_string(), from: format!("{key} not set: {what}'s default") })
            }
        }
    }

    fn http_loader(&mut self) {
        for (key, path) in [
            ("HTTP_LOADER_CONNECT_TIMEOUT", "sources.connect_timeout_ms"),
            ("HTTP_LOADER_REQUEST_TIMEOUT", "sources.request_timeout_ms"),
        ] {
            match self.millis(key) {
                Some((0, line)) => {
                    self.warn(key, line, "0 (no timeout in thumbor): Thumbora always bounds fetches; its default kept")
                }
                Some((ms, line)) => self.set(path, Scalar::Int(ms.into()), key, line),
                None => {}
            }
        }
        if let Some((follow, line)) = self.flag("HTTP_LOADER_FOLLOW_REDIRECTS") {
            self.set("sources.follow_redirects", Scalar::Bool(follow), "HTTP_LOADER_FOLLOW_REDIRECTS", line);
        }
        if let Some((n, line)) = self.count("HTTP_LOADER_MAX_REDIRECTS") {
            self.set("sources.max_redirects", Scalar::Int(n.into()), "HTTP_LOADER_MAX_REDIRECTS", line);
        }
        match self.text("HTTP_LOADER_DEFAULT_USER_AGENT") {
            Some((Some(agent), line)) if !agent.is_empty() => {
                self.set("sources.user_agent", Scalar::Str(agent), "HTTP_LOADER_DEFAULT_USER_AGENT", line)
            }
            Some((_, line)) => {
                self.warn("HTTP_LOADER_DEFAULT_USER_AGENT", line, "empty: Thumbora's default (Thumbora/<version>) kept")
            }
            None => self.note(
                "sources",
                &format!(
                    "{}: thumbor sends `User-Agent: Thumbor/7.8.0`, Thumbora \
                 `Thumbora/<version>` (sources.user_agent).",
                    self.unset("HTTP_LOADER_DEFAULT_USER_AGENT")
                ),
            ),
        }
        match self.text("HTTP_LOADER_CA_CERTS") {
            Some((Some(file), line)) if !file.is_empty() => {
                self.set("sources.ca_file", Scalar::Str(file), "HTTP_LOADER_CA_CERTS", line);
                self.note(
                    "sources.ca_file",
                    "thumbor trusts only HTTP_LOADER_CA_CERTS; Thumbora trusts these besides the system's.",
                );
            }
            Some((_, line)) => {
                self.nothing("HTTP_LOADER_CA_CERTS", line, "not set: the system's authorities, as in Thumbora")
            }
            None => {}
        }
        if let Some((value, line)) = self.take("HTTP_LOADER_VALIDATE_CERTS") {
            match value {
                Value::None | Value::Bool(true) => self.nothing(
                    "HTTP_LOADER_VALIDATE_CERTS",
                    line,
                    "Thumbora validates origin certificates, as this says",
                ),
                _ => self.warn(
                    "HTTP_LOADER_VALIDATE_CERTS",
                    line,
                    "Thumbora always validates origin certificates; trust a private authority with sources.ca_file",
                ),
            }
        }
        self.put("sources.allow_private_networks", Scalar::Bool(false), "");
        self.note(
            "sources.allow_private_networks",
            "thumbor fetches origins at any address; Thumbora refuses private, loopback and link-local addresses \
             (an SSRF guard) unless they are listed in `allowed` (addresses or CIDR ranges) or this is true.",
        );
        self.put("sources.thumbor_error_statuses", Scalar::Bool(false), "");
        self.note(
            "sources.thumbor_error_statuses",
            "thumbor answers every origin HTTP error with 404 and a refused connection with 500; Thumbora answers \
             404 for an origin's 404/403/410, 502 for other failures, 504 for timeouts. true: as thumbor.",
        );
    }

    fn allowed_sources(&mut self) {
        let Some((value, line)) = self.take("ALLOWED_SOURCES") else { return };
        let key = "ALLOWED_SOURCES";
        let entries = match value {
            Value::List(items) | Value::Tuple(items) | Value::Set(items) => items,
            Value::None => vec![],
            other => {
                self.warn(key, line, &format!("expected a list, not a {}", other.type_name()));
                return;
            }
        };
        let mut allowed = Vec::new();
        let mut notes = Vec::new();
        let mut everything = false;
        for (i, entry) in entries.iter().enumerate() {
            match allowed_pattern(entry) {
                Ok(Allowed::Everything) => everything = true,
                Ok(Allowed::Pattern(pattern, note)) => {
                    if let Some(note) = note {
                        notes.push(format!("{} -> {pattern}: {note}", show(entry)));
                    }
                    if !allowed.contains(&pattern) {
                        allowed.push(pattern);
                    }
                }
                Err(why) => self.warn(key, line, &format!("entry {} ({}) left out: {why}", i + 1, show(entry))),
            }
        }
        if everything {
            self.set("sources.allowed", Scalar::List(vec![]), key, line);
            self.note("sources.allowed", "ALLOWED_SOURCES has a pattern that matches every host: empty, any host.");
            return;
        }
        if allowed.is_empty() && !entries.is_empty() {
            // Nothing expressible: an empty list would allow every host.
            allowed.push(UNMAPPED_SOURCES.to_string());
            notes.push(format!(
                "no entry of ALLOWED_SOURCES could be migrated; `{UNMAPPED_SOURCES}` (a name that never resolves) \
                 keeps every origin refused, as an empty list would allow them all. Write the hosts here."
            ));
        }
        let list = allowed.into_iter().map(Scalar::Str).collect();
        self.set("sources.allowed", Scalar::List(list), key, line);
        for note in notes {
            self.note("sources.allowed", &note);
        }
    }

    fn storage(&mut self) {
        let storage = match self.text("STORAGE") {
            Some((Some(module), line)) => Some((module, line)),
            Some((None, line)) => Some(("thumbor.storages.no_storage".into(), line)),
            None => None,
        };
        let short = storage.as_ref().map(|(m, _)| m.trim_start_matches("thumbor.storages.").to_string());
        let expiration = self.take("STORAGE_EXPIRATION_SECONDS");
        let mut root = self.take("FILE_STORAGE_ROOT_PATH");
        let bucket_keys: Vec<(String, usize)> =
            keys::ORIGINALS_BUCKET.iter().filter_map(|k| self.take(k).map(|(_, line)| (k.to_string(), line))).collect();
        let in_bucket = matches!(short.as_deref(), Some("thumbor_aws.storage" | "tc_aws.storages.s3_storage"));
        for (key, line) in bucket_keys {
            let why = if in_bucket {
                "the originals' bucket: Thumbora keeps originals in memory and on local disk, not in a bucket"
            } else {
                "not used: STORAGE is not thumbor-aws's or tc_aws's"
            };
            self.nothing(&key, line, why);
        }
        let uses_expiration = !matches!(short.as_deref(), Some("no_storage" | "mixed_storage"));
        self.put("sources.cache_ttl_seconds", Scalar::Int(3600), "");
        match (&expiration, uses_expiration) {
            (Some((value, line)), true) => match value {
                Value::Int(n) if *n > 0 => {
                    self.set("sources.cache_ttl_seconds", Scalar::Int(*n), "STORAGE_EXPIRATION_SECONDS", *line)
                }
                Value::Float(f) if *f >= 1.0 => self.set(
                    "sources.cache_ttl_seconds",
                    Scalar::Int(f.round() as i128),
                    "STORAGE_EXPIRATION_SECONDS",
                    *line,
                ),
                _ => self.warn(
                    "STORAGE_EXPIRATION_SECONDS",
                    *line,
                    &format!(
                        "{}: thumbor keeps originals forever; Thumbora needs a lifetime: its default (3600) kept",
                        describe(value)
                    ),
                ),
            },
            (Some((_, line)), false) => self.nothing("STORAGE_EXPIRATION_SECONDS", *line, "not used by this STORAGE"),
            (None, _) => {}
        }
        let Some((module, line)) = storage else {
            self.note(
                "sources.cache_ttl_seconds",
                &format!(
                    "{}: thumbor keeps originals on disk (/tmp/thumbor/storage) for \
                 STORAGE_EXPIRATION_SECONDS (30 days by default); Thumbora keeps them in memory (cache_bytes) for \
                 cache_ttl_seconds, and on disk too when sources.disk is set.",
                    self.unset("STORAGE")
                ),
            );
            if let Some((_, at)) = root {
                self.nothing(
                    "FILE_STORAGE_ROOT_PATH",
                    at,
                    "not used: STORAGE is not set, and Thumbora's default keeps originals in memory",
                );
            }
            return;
        };
        match short.as_deref().unwrap_or_default() {
            "file_storage" => {
                let dir = match root.take() {
                    Some((Value::Str(dir), at)) if !dir.is_empty() => {
                        self.doc.set("thumbora.sources.disk.dir", Scalar::Str(dir), &format!("FILE_STORAGE_ROOT_PATH, line {at}"));
                        self.mapped += 1;
                        true
                    }
                    Some((other, at)) => {
                        self.warn("FILE_STORAGE_ROOT_PATH", at, &format!("expected a directory, not {}", describe(&other)));
                        false
                    }
                    None => {
                        self.put("sources.disk.dir", Scalar::str("/tmp/thumbor/storage"), "FILE_STORAGE_ROOT_PATH not set: thumbor's default");
                        true
                    }
                };
                if dir {
                    self.put("sources.disk.max_bytes", Scalar::Int(4 << 30), "");
                    self.note(
                        "sources.disk.max_bytes",
                        "thumbor's file storage has no size limit; Thumbora's disk tier keeps at most this many bytes \
                         (least recently used go first). thumbor's files in that directory are not read: they are \
                         laid out differently.",
                    );
                    self.mapped += 1;
                    if expiration.is_none() {
                        self.put(
                            "sources.cache_ttl_seconds",
                            Scalar::Int(2_592_000),
                            "STORAGE_EXPIRATION_SECONDS not set: thumbor's default, 30 days",
                        );
                    }
                }
            }
            "no_storage" => {
                self.mapped += 1;
                self.note(
                    "sources.cache_ttl_seconds",
                    &format!(
                        "STORAGE = no_storage (line {line}): no originals on disk. Thumbora still keeps fetched \
                         originals in memory for cache_ttl_seconds (sources.cache_bytes: 0 turns that off)."
                    ),
                );
            }
            "thumbor_aws.storage" | "tc_aws.storages.s3_storage" => self.warn(
                "STORAGE",
                line,
                &format!(
                    "`{module}` keeps originals in a bucket; Thumbora keeps them in memory (sources.cache_bytes) and, \
                     with sources.disk, on local disk, not in a bucket: add sources.disk with a local directory to keep \
                     them across restarts"
                ),
            ),
            _ => self.warn(
                "STORAGE",
                line,
                &format!(
                    "`{module}` is not a storage Thumbora has: originals are kept in memory (sources.cache_bytes) and, \
                     with sources.disk, on local disk"
                ),
            ),
        }
        if short.as_deref() != Some("file_storage") {
            if let Some((_, at)) = root {
                self.nothing("FILE_STORAGE_ROOT_PATH", at, "not used: STORAGE is not file_storage");
            }
        }
    }

    fn result_storage(&mut self) {
        let storage = self.text("RESULT_STORAGE");
        let expiration = self.take("RESULT_STORAGE_EXPIRATION_SECONDS");
        let mut root = self.take("RESULT_STORAGE_FILE_STORAGE_ROOT_PATH");
        let stores_unsafe = self.flag("RESULT_STORAGE_STORES_UNSAFE");
        self.put("cache.enabled", Scalar::Bool(true), "");
        let (module, line) = match storage {
            Some((Some(module), line)) => (module, line),
            Some((None, line)) => ("thumbor.result_storages.no_storage".to_string(), line),
            None => (String::new(), 0),
        };
        let short = module.trim_start_matches("thumbor.result_storages.");
        let mut stored = true;
        let mut shared = false;
        match short {
            "" | "no_storage" => {
                stored = false;
                let what = if line == 0 {
                    format!("{} (thumbor's default: no result storage)", self.unset("RESULT_STORAGE"))
                } else {
                    self.mapped += 1;
                    format!("RESULT_STORAGE = no_storage (line {line})")
                };
                self.note(
                    "cache.enabled",
                    &format!(
                        "{what}: Thumbora caches results in memory (max_bytes) all the same; false turns that off."
                    ),
                );
            }
            "file_storage" => {
                match root.take() {
                    Some((Value::Str(dir), at)) if !dir.is_empty() => {
                        self.set("cache.disk.dir", Scalar::Str(dir), "RESULT_STORAGE_FILE_STORAGE_ROOT_PATH", at)
                    }
                    Some((other, at)) => {
                        let why = format!("expected a directory, not {}: thumbor's default written", describe(&other));
                        self.warn("RESULT_STORAGE_FILE_STORAGE_ROOT_PATH", at, &why);
                        self.put("cache.disk.dir", Scalar::str("/tmp/thumbor/result_storage"), "");
                    }
                    None => self.put(
                        "cache.disk.dir",
                        Scalar::str("/tmp/thumbor/result_storage"),
                        "RESULT_STORAGE_FILE_STORAGE_ROOT_PATH not set: thumbor's default",
                    ),
                }
                self.put("cache.disk.max_bytes", Scalar::Int(1 << 30), "");
                self.note(
                    "cache.disk.max_bytes",
                    "thumbor's result storage has no size limit; Thumbora's disk tier keeps at most this many bytes \
                     (least recently used go first), below the memory tier. thumbor's files there are not read.",
                );
                self.mapped += 1;
            }
            "thumbor_aws.result_storage" | "tc_aws.result_storages.s3_storage" => {
                let keys = if short.starts_with("tc_aws") {
                    TC_AWS_RESULT
                } else if self.compatibility_mode() {
                    TC_AWS_COMPAT_RESULT
                } else {
                    THUMBOR_AWS_RESULT
                };
                shared = self.s3_section("cache.shared.s3", &keys);
                stored = shared;
                if shared {
                    self.mapped += 1;
                    self.note(
                        "cache.shared",
                        &format!(
                            "RESULT_STORAGE = {module} (line {line}): every node reads and writes results in this \
                             bucket (Thumbora's own object names: thumbor's stored results are not reused)."
                        ),
                    );
                }
            }
            _ => {
                stored = false;
                self.warn(
                    "RESULT_STORAGE",
                    line,
                    &format!(
                        "`{module}` is not a result storage Thumbora has (memory, cache.disk, cache.shared.s3); \
                         results are cached in memory"
                    ),
                );
            }
        }
        if let Some((_, at)) = root {
            self.nothing("RESULT_STORAGE_FILE_STORAGE_ROOT_PATH", at, "not used: RESULT_STORAGE is not file_storage");
        }
        match (stores_unsafe, shared) {
            (Some((store, at)), true) => {
                self.set("cache.shared.store_unsafe", Scalar::Bool(store), "RESULT_STORAGE_STORES_UNSAFE", at)
            }
            (None, true) => self.put(
                "cache.shared.store_unsafe",
                Scalar::Bool(false),
                "RESULT_STORAGE_STORES_UNSAFE not set: thumbor's default",
            ),
            (Some((_, at)), false) => self.nothing(
                "RESULT_STORAGE_STORES_UNSAFE",
                at,
                "Thumbora's memory and disk tiers keep results of unsafe URLs too; only the shared bucket \
                 (cache.shared.store_unsafe) leaves them out",
            ),
            (None, false) => {}
        }
        let Some((value, at)) = expiration else { return };
        let key = "RESULT_STORAGE_EXPIRATION_SECONDS";
        let seconds = match value {
            Value::Int(n) if n > 0 => u64::try_from(n).ok(),
            Value::Float(f) if (1.0..1e15).contains(&f) => Some(f.round() as u64),
            _ => None,
        };
        match (stored, seconds) {
            (false, _) => self.nothing(key, at, "not used: no result storage"),
            (true, None) => self.nothing(
                key,
                at,
                &format!(
                    "{}: thumbor's stored results never expire; Thumbora keeps a result for its max-age \
                     (response.max_age)",
                    describe(&value)
                ),
            ),
            (true, Some(seconds)) => match self.values.get("MAX_AGE").map(|(v, _)| v.clone()) {
                None => {
                    self.set("response.max_age", Scalar::Int(seconds.into()), key, at);
                    self.note(
                        "response.max_age",
                        "MAX_AGE not set: Thumbora keeps a cached result for its max-age, so \
                         RESULT_STORAGE_EXPIRATION_SECONDS is the max-age here (thumbor's MAX_AGE default: 86400).",
                    );
                }
                Some(max_age) if max_age.same(&Value::Int(seconds.into())) => {
                    self.nothing(key, at, "the same as MAX_AGE, which Thumbora's cache keeps results for")
                }
                Some(_) => self.warn(
                    key,
                    at,
                    "Thumbora keeps a cached result for its max-age (response.max_age, from MAX_AGE); a separate \
                     lifetime in the cache is not possible",
                ),
            },
        }
    }

    fn image(&mut self) {
        if let Some((quality, line)) = self.count("QUALITY") {
            if (1..=100).contains(&quality) {
                self.set("image.quality", Scalar::Int(quality.into()), "QUALITY", line);
            } else {
                self.warn(
                    "QUALITY",
                    line,
                    &format!("{quality}: Thumbora's quality is 1 to 100; its default (80) kept"),
                );
            }
        }
        for (key, path) in [("WEBP_QUALITY", "image.webp_quality"), ("AVIF_QUALITY", "image.avif_quality")] {
            match self.take(key) {
                Some((Value::None, line)) => self.set(path, Scalar::Null, key, line),
                Some((Value::Int(q), line)) if (1..=100).contains(&q) => self.set(path, Scalar::Int(q), key, line),
                Some((other, line)) => {
                    self.warn(key, line, &format!("{}: expected 1 to 100 or None", describe(&other)))
                }
                None => {}
            }
        }
        match self.take("AVIF_SPEED") {
            Some((Value::None, line)) => {
                self.nothing("AVIF_SPEED", line, "None: the encoder's default; Thumbora's is image.avif_speed (10)")
            }
            Some((Value::Int(speed), line)) if (0..=10).contains(&speed) => {
                self.set("image.avif_speed", Scalar::Int(speed.max(1)), "AVIF_SPEED", line);
                if speed == 0 {
                    self.note("image.avif_speed", "AVIF_SPEED = 0: Thumbora's slowest speed is 1.");
                }
            }
            Some((other, line)) => self.warn("AVIF_SPEED", line, &format!("{}: expected 0 to 10", describe(&other))),
            None => {}
        }
        for (key, path) in [
            ("PROGRESSIVE_JPEG", "image.progressive_jpeg"),
            ("AUTO_WEBP", "image.auto_webp"),
            ("AUTO_AVIF", "image.auto_avif"),
            ("AUTO_PNG_TO_JPG", "image.auto_png_to_jpg"),
            ("RESPECT_ORIENTATION", "image.respect_orientation"),
            ("ALLOW_ANIMATED_GIFS", "image.animated_gifs"),
            ("PRESERVE_EXIF_INFO", "image.preserve_exif"),
            ("SEND_IF_MODIFIED_LAST_MODIFIED_HEADERS", "response.last_modified"),
        ] {
            if let Some((on, line)) = self.flag(key) {
                self.set(path, Scalar::Bool(on), key, line);
            }
        }
        if !self.is_set("RESPECT_ORIENTATION") {
            self.put("image.respect_orientation", Scalar::Bool(true), "");
            self.note(
                "image.respect_orientation",
                &format!(
                    "{}: thumbor's default, False, ignores the EXIF orientation (phone photos \
                 come out sideways); Thumbora's default, true, applies it. false: as thumbor.",
                    self.unset("RESPECT_ORIENTATION")
                ),
            );
        }
        for (key, path) in [("MAX_WIDTH", "image.max_width"), ("MAX_HEIGHT", "image.max_height")] {
            match self.count(key) {
                Some((n, line)) if n <= u64::from(u32::MAX) => self.set(path, Scalar::Int(n.into()), key, line),
                Some((n, line)) => self.warn(key, line, &format!("{n}: too large")),
                None => {}
            }
        }
        match self.take("MAX_PIXELS") {
            Some((Value::Int(n), line)) if n > 0 => {
                self.set("image.max_source_pixels", Scalar::Int(n), "MAX_PIXELS", line)
            }
            Some((Value::Float(f), line)) if (1.0..1.8e19).contains(&f) => {
                self.set("image.max_source_pixels", Scalar::Int(f as i128), "MAX_PIXELS", line)
            }
            Some((other, line)) => self.warn(
                "MAX_PIXELS",
                line,
                &format!("{}: no limit in thumbor; Thumbora keeps its limit (75000000 pixels)", describe(&other)),
            ),
            None => {}
        }
        self.detectors();
        self.filters();
    }

    fn detectors(&mut self) {
        match self.take("DETECTORS") {
            Some((Value::List(items) | Value::Tuple(items), line)) if items.is_empty() => {
                self.set("image.smart_detection", Scalar::Bool(false), "DETECTORS", line);
                self.note(
                    "image.smart_detection",
                    "DETECTORS is empty: thumbor's smart/ is a centre crop, and so is Thumbora's with false (true: \
                     Thumbora finds the subject itself).",
                );
            }
            Some((Value::List(_) | Value::Tuple(_), line)) => {
                self.set("image.smart_detection", Scalar::Bool(true), "DETECTORS", line);
                self.warn(
                    "DETECTORS",
                    line,
                    "smart/ uses Thumbora's own detector (edges, saturated colours, skin tones; \
                     image.smart_detection), not thumbor's detector modules",
                );
            }
            Some((other, line)) => {
                self.warn("DETECTORS", line, &format!("expected a list, not a {}", other.type_name()))
            }
            None => {
                self.put("image.smart_detection", Scalar::Bool(true), "");
                self.note(
                    "image.smart_detection",
                    &format!(
                        "{}: thumbor has no detector by default, so its smart/ is a centre crop; \
                     Thumbora's smart/ finds the subject (edges, saturated colours, skin tones). false: as thumbor.",
                        self.unset("DETECTORS")
                    ),
                );
            }
        }
    }

    fn filters(&mut self) {
        let Some((value, line)) = self.take("FILTERS") else { return };
        let type_name = value.type_name();
        let (Value::List(items) | Value::Tuple(items)) = value else {
            return self.warn("FILTERS", line, &format!("expected a list, not a {type_name}"));
        };
        let Some(names) = items
            .iter()
            .map(|item| item.as_str().map(|m| m.trim_start_matches("thumbor.filters.").to_string()))
            .collect::<Option<Vec<String>>>()
        else {
            return self.warn("FILTERS", line, "expected a list of module names");
        };
        let autojpg = names.iter().any(|n| n == "autojpg");
        self.set("image.autojpg_filter", Scalar::Bool(autojpg), "FILTERS", line);
        if autojpg {
            self.note("image.autojpg_filter", "FILTERS loads thumbor.filters.autojpg: autojpg() is honoured.");
        }
        let missing: Vec<&str> =
            keys::BUILTIN_FILTERS.iter().copied().filter(|b| !names.iter().any(|n| n == b)).collect();
        if !missing.is_empty() {
            let why = format!(
                "leaves out {}: Thumbora cannot turn its filters off, so URLs asking for them get them",
                missing.join(", ")
            );
            self.warn("FILTERS", line, &why);
        }
        let unknown: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| *n != "autojpg" && !keys::BUILTIN_FILTERS.contains(n))
            .collect();
        if !unknown.is_empty() {
            let why = format!(
                "{}: not filters Thumbora has; they are ignored in URLs (400 with image.strict_filters: true)",
                unknown.join(", ")
            );
            self.warn("FILTERS", line, &why);
        }
    }

    /// Every setting no rule read: thumbor's defaults are noted, others warned about.
    fn the_rest(&mut self) {
        let left: Vec<(String, Setting)> =
            self.values.iter().filter(|(k, _)| !self.taken.contains(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        for (key, (value, line)) in left {
            if keys::MAPPED.contains(&key.as_str()) {
                self.nothing(&key, line, "not used by the LOADER, STORAGE and RESULT_STORAGE this file chooses");
            } else if let Some(known) = keys::UNMAPPED.iter().find(|u| u.name == key) {
                if default_value(known.default).is_some_and(|d| d.same(&value)) {
                    self.nothing(&key, line, &format!("thumbor's default; {}", known.reason));
                } else {
                    self.warn(&key, line, known.reason);
                }
            } else {
                self.warn(
                    &key,
                    line,
                    "not a setting of thumbor 7.8, thumbor-aws or tc_aws (a plugin's?): not migrated",
                );
            }
        }
    }

    fn finish(mut self, source: &str, all_read: bool) -> Migration {
        for list in [&mut self.warnings, &mut self.not_migrated, &mut self.not_read, &mut self.nothing_to_do] {
            list.sort_by_key(|text| line_of(text));
        }
        let mut out = String::new();
        let mut comment = |text: &str| {
            for line in yaml::wrap(&yaml::comment_text(text), WIDTH - 2) {
                out.push_str(format!("# {line}").trim_end());
                out.push('\n');
            }
        };
        comment(&format!(
            "Thumbora configuration written by `thumbora migrate` from {source}. Each migrated value names the \
             thumbor setting and line it comes from; notes say where thumbor and Thumbora differ. Settings that \
             could not be migrated are listed at the end. Keys not written here take Thumbora's defaults \
             (`thumbora config` prints them all); `thumbora -t -c FILE` checks this file."
        ));
        if self.values.is_empty() && all_read {
            comment(&format!(
                "{source} sets nothing (every line is a comment or blank): thumbor runs on its defaults there, and \
                 the values below are Thumbora's, with notes where thumbor's default differs."
            ));
        }
        out.push('\n');
        out.push_str(pingora_section());
        out.push('\n');
        out.push_str(&self.doc.render(WIDTH));
        for (title, lines) in [
            ("Not migrated (each printed as a warning too)", &self.not_migrated),
            ("Not read: not literal assignments, never executed (each printed as a warning too)", &self.not_read),
            ("Read; nothing to set in Thumbora", &self.nothing_to_do),
        ] {
            if lines.is_empty() {
                continue;
            }
            out.push_str(&format!("\n# --- {title} ---\n"));
            for line in lines {
                let mut first = true;
                for part in yaml::wrap(&yaml::comment_text(line), WIDTH - 4) {
                    out.push_str(if first { "# " } else { "#     " });
                    out.push_str(part.trim_end());
                    out.push('\n');
                    first = false;
                }
            }
        }
        Migration { yaml: out, warnings: self.warnings, mapped: self.mapped }
    }
}

/// The allow-list entry written when no entry of ALLOWED_SOURCES can be: `.invalid` never
/// resolves (RFC 2606), so every origin stays refused.
const UNMAPPED_SOURCES: &str = "allowed-sources-not-migrated.invalid";

const THUMBOR_AWS_LOADER: S3Keys = S3Keys {
    what: "thumbor-aws's loader",
    region: ("AWS_LOADER_REGION_NAME", "us-east-1"),
    bucket: ("AWS_LOADER_BUCKET_NAME", "thumbor"),
    endpoint: "AWS_LOADER_S3_ENDPOINT_URL",
    root: ("AWS_LOADER_ROOT_PATH", "/st"),
    access_key: Some("AWS_LOADER_S3_ACCESS_KEY_ID"),
    secret_key: Some("AWS_LOADER_S3_SECRET_ACCESS_KEY"),
};

const TC_AWS_COMPAT_LOADER: S3Keys = S3Keys {
    what: "thumbor-aws's loader (compatibility mode)",
    region: ("TC_AWS_REGION", "us-east-1"),
    bucket: ("TC_AWS_LOADER_BUCKET", ""),
    endpoint: "TC_AWS_ENDPOINT",
    root: ("TC_AWS_LOADER_ROOT_PATH", ""),
    access_key: Some("AWS_LOADER_S3_ACCESS_KEY_ID"),
    secret_key: Some("AWS_LOADER_S3_SECRET_ACCESS_KEY"),
};

const TC_AWS_LOADER: S3Keys = S3Keys {
    what: "tc_aws's loader",
    region: ("TC_AWS_REGION", "eu-west-1"),
    bucket: ("TC_AWS_LOADER_BUCKET", ""),
    endpoint: "TC_AWS_ENDPOINT",
    root: ("TC_AWS_LOADER_ROOT_PATH", ""),
    access_key: None,
    secret_key: None,
};

const THUMBOR_AWS_RESULT: S3Keys = S3Keys {
    what: "thumbor-aws's result storage",
    region: ("AWS_RESULT_STORAGE_REGION_NAME", "us-east-1"),
    bucket: ("AWS_RESULT_STORAGE_BUCKET_NAME", "thumbor"),
    endpoint: "AWS_RESULT_STORAGE_S3_ENDPOINT_URL",
    root: ("AWS_RESULT_STORAGE_ROOT_PATH", "/rs"),
    access_key: Some("AWS_RESULT_STORAGE_S3_ACCESS_KEY_ID"),
    secret_key: Some("AWS_RESULT_STORAGE_S3_SECRET_ACCESS_KEY"),
};

const TC_AWS_COMPAT_RESULT: S3Keys = S3Keys {
    what: "thumbor-aws's result storage (compatibility mode)",
    region: ("TC_AWS_REGION", "us-east-1"),
    bucket: ("TC_AWS_RESULT_STORAGE_BUCKET", ""),
    endpoint: "TC_AWS_ENDPOINT",
    root: ("TC_AWS_RESULT_STORAGE_ROOT_PATH", ""),
    access_key: Some("AWS_RESULT_STORAGE_S3_ACCESS_KEY_ID"),
    secret_key: Some("AWS_RESULT_STORAGE_S3_SECRET_ACCESS_KEY"),
};

const TC_AWS_RESULT: S3Keys = S3Keys {
    what: "tc_aws's result storage",
    region: ("TC_AWS_REGION", "eu-west-1"),
    bucket: ("TC_AWS_RESULT_STORAGE_BUCKET", ""),
    endpoint: "TC_AWS_ENDPOINT",
    root: ("TC_AWS_RESULT_STORAGE_ROOT_PATH", ""),
    access_key: None,
    secret_key: None,
};

/// The line a message starts with (`line 12: ...`, `lines 3-5: ...`); 0 for none, so that
/// lists sort in file order.
fn line_of(message: &str) -> usize {
    let rest = message.strip_prefix("lines ").or_else(|| message.strip_prefix("line ")).unwrap_or_default();
    rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// A default from [`keys::UNMAPPED`], read as Python.
fn default_value(literal: &str) -> Option<Value> {
    let module = pyconf::parse(&format!("DEFAULT = {literal}")).ok()?;
    module.assignments.into_iter().next().map(|a| a.value)
}

/// Pingora's settings as the embedded default writes them (its comments included): the
/// migrated file keeps Pingora's defaults.
fn pingora_section() -> &'static str {
    let start = EMBEDDED_DEFAULT.find("# --- Pingora server settings").unwrap_or(0);
    let end = EMBEDDED_DEFAULT.find("\nthumbora:").map_or(start, |e| e + 1);
    &EMBEDDED_DEFAULT[start..end.max(start)]
}

/// A value as a message shows it: its type, and its text when it is short and not a string (a
/// string might be a secret).
fn describe(value: &Value) -> String {
    match value {
        Value::Int(n) => format!("{n}"),
        Value::Float(f) => format!("{f}"),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::None => "None".into(),
        other => format!("a {}", other.type_name()),
    }
}

/// An ALLOWED_SOURCES entry as written in thumbor.conf (they are host names, not secrets).
fn show(entry: &Value) -> String {
    match entry {
        Value::Str(s) => format!("'{s}'"),
        Value::Regex(p) => format!("re.compile('{p}')"),
        other => describe(other),
    }
}

/// What one ALLOWED_SOURCES entry becomes.
#[derive(Debug, PartialEq)]
enum Allowed {
    /// A `sources.allowed` pattern, and what differs from thumbor's matching, if anything.
    Pattern(String, Option<&'static str>),
    /// The entry matches every host.
    Everything,
}

/// Regular-expression characters that make thumbor 7.8 read a string entry as a (deprecated)
/// regular expression over the host name (thumbor/loaders/__init__.py).
const REGEX_MARKERS: &[char] = &['\\', '^', '$', '*', '+', '?', '{', '}', '[', ']', '(', ')', '|'];

/// One ALLOWED_SOURCES entry as a `sources.allowed` pattern. thumbor 7.8 matches a plain string
/// literally against the host name, a string with regular-expression characters as a regular
/// expression over the host name (anchored at both ends), and a `re.compile()` pattern with
/// `re.match` over the whole URL (`http://host/path`, anchored at the start only). The forms a
/// host pattern can say are read; the others are refused with why.
fn allowed_pattern(entry: &Value) -> Result<Allowed, String> {
    let (pattern, compiled) = match entry {
        Value::Str(s) if !s.contains(REGEX_MARKERS) => {
            let host = s.trim().trim_end_matches('.').to_ascii_lowercase();
            if host.is_empty() {
                return Err("an empty entry matches no host".into());
            }
            if host.parse::<std::net::IpAddr>().is_ok() {
                return Ok(Allowed::Pattern(host, None));
            }
            if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) {
                return Err("not a host name (thumbor compares it with the URL's host name only, without port)".into());
            }
            return Ok(Allowed::Pattern(host, None));
        }
        Value::Str(s) => (s.as_str(), false),
        Value::Regex(p) => (p.as_str(), true),
        other => return Err(format!("expected a string or re.compile(), not {}", describe(other))),
    };
    let mut rest = pattern.strip_prefix('^').unwrap_or(pattern);
    let mut scheme = false;
    for prefix in [
        "https?://",
        "https?:\\/\\/",
        "(https?://)?",
        "(?:https?://)?",
        "(http|https)://",
        "http://",
        "https://",
        "http:\\/\\/",
        "https:\\/\\/",
        "[a-z]+://",
    ] {
        if let Some(r) = rest.strip_prefix(prefix) {
            rest = r;
            scheme = true;
            break;
        }
    }
    if matches!(rest, ".*" | ".+" | ".*$" | ".+$" | "") && (scheme || !rest.is_empty() || !compiled) {
        return Ok(Allowed::Everything);
    }
    // What may stand before the domain: any subdomain, optionally none.
    const ANY_OR_NONE: &[&str] =
        &["(.*\\.)?", "(?:.*\\.)?", "(.+\\.)?", "([a-z0-9-]+\\.)*", "([^.]+\\.)*", "(\\w+\\.)*"];
    const SOME: &[&str] =
        &[".*\\.", ".+\\.", "[^.]+\\.", "[a-z0-9-]+\\.", "[a-z0-9]+\\.", "\\w+\\.", "[^/]+\\.", "[^/]*\\."];
    let mut wildcard = None;
    if let Some(r) = rest.strip_prefix("*.").filter(|_| !compiled) {
        rest = r;
        wildcard = Some(Some(
            "thumbor cannot compile this as a regular expression (`*` repeats nothing) and fails on every request; \
             read here as the wildcard it means",
        ));
    } else if let Some(r) = ANY_OR_NONE.iter().find_map(|p| rest.strip_prefix(p)) {
        rest = r;
        wildcard = Some(None);
    } else if let Some(r) = SOME.iter().find_map(|p| rest.strip_prefix(p)) {
        rest = r;
        wildcard = Some(Some("thumbor's pattern needs a subdomain; `*.` also allows the domain itself"));
    }
    if compiled && !scheme && !rest.is_empty() && wildcard.is_none() {
        return Err("re.compile() patterns are matched against the whole URL, from `http://`: this one matches \
                    no URL in thumbor"
            .into());
    }
    let mut end_anchored = false;
    loop {
        let before = rest;
        if let Some(r) = rest.strip_suffix('$') {
            rest = r;
            end_anchored = true;
        }
        for suffix in ["(/.*)?", "/.*", "(:\\d+)?", "(:[0-9]+)?", "/"] {
            if let Some(r) = rest.strip_suffix(suffix) {
                rest = r;
            }
        }
        if rest == before {
            break;
        }
    }
    let mut host = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('.' | '-')) => host.push(e),
                _ => return Err("a regular expression a host pattern cannot say".into()),
            },
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') => host.push(c.to_ascii_lowercase()),
            _ => return Err("a regular expression a host pattern cannot say".into()),
        }
    }
    if host.is_empty() || host.starts_with('.') || host.ends_with('.') {
        return Err("a regular expression a host pattern cannot say".into());
    }
    let note = match (wildcard, compiled && !end_anchored) {
        (Some(Some(note)), _) => Some(note),
        (_, true) => Some("thumbor's pattern is not anchored at its end; Thumbora matches the whole host name"),
        _ => None,
    };
    let unescaped_dot = rest.replace("\\.", "").contains('.');
    let note = note.or(unescaped_dot.then_some("an unescaped `.` matches any character in thumbor; here only a dot"));
    Ok(Allowed::Pattern(if wildcard.is_some() { format!("*.{host}") } else { host }, note))
}

/// HEALTHCHECK_ROUTE (a regular expression, `/healthcheck/?` by default) as one path.
fn healthcheck_path(route: &str) -> Option<String> {
    let route = route.strip_prefix('^').unwrap_or(route);
    let route = route.strip_suffix('$').unwrap_or(route);
    let route = route.strip_suffix("/?").unwrap_or(route);
    let mut path = String::new();
    let mut chars = route.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('.' | '-' | '/')) => path.push(e),
                _ => return None,
            },
            c if c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~') => path.push(c),
            _ => return None,
        }
    }
    let path = path.trim_end_matches('/').to_string();
    (path.starts_with('/') && path.len() > 1).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_sources_patterns() {
        let s = |x: &str| Value::Str(x.into());
        let re = |x: &str| Value::Regex(x.into());
        let pattern = |v: Value| match allowed_pattern(&v) {
            Ok(Allowed::Pattern(p, _)) => p,
            other => panic!("{v:?}: {other:?}"),
        };
        assert_eq!(pattern(s("Images.Example.com")), "images.example.com");
        assert_eq!(pattern(s("10.0.0.5")), "10.0.0.5");
        assert_eq!(pattern(s("img\\.example\\.com")), "img.example.com");
        assert_eq!(pattern(s("^img\\.example\\.com$")), "img.example.com");
        assert_eq!(pattern(s(".*\\.example\\.com")), "*.example.com");
        assert_eq!(pattern(s("(.*\\.)?example\\.com")), "*.example.com");
        assert_eq!(pattern(re(".*\\.mydomain\\.com")), "*.mydomain.com");
        assert_eq!(pattern(re("^https?://img\\.example\\.com/")), "img.example.com");
        assert_eq!(pattern(re("https?://([a-z0-9-]+\\.)*example\\.com(/.*)?$")), "*.example.com");
        assert_eq!(pattern(s("*.example.com")), "*.example.com");
        assert_eq!(allowed_pattern(&s(".*")), Ok(Allowed::Everything));
        assert_eq!(allowed_pattern(&re("https?://.*")), Ok(Allowed::Everything));
        for bad in [s("cdn[0-9]+\\.example\\.com"), s("(a|b)\\.example\\.com"), s(""), s("host:8080"), Value::Int(1)] {
            assert!(allowed_pattern(&bad).is_err(), "{bad:?}");
        }
        let err = allowed_pattern(&re("img\\.example\\.com")).unwrap_err();
        assert!(err.contains("matches no URL"), "{err}");
        match allowed_pattern(&re("http://img\\.example\\.com")) {
            Ok(Allowed::Pattern(p, Some(note))) => assert!(p == "img.example.com" && note.contains("anchored")),
            other => panic!("{other:?}"),
        }
    }

    /// thumbor-config's file with every setting uncommented: thumbor's defaults, all of them.
    fn thumbor_defaults() -> String {
        let generated = include_str!("../../../tests/fixtures/migrate/thumbor-default.conf");
        // `#NAME = value` lines, and the lines of a list they open (`## Defaults to: [` and the
        // `#]` after it are documentation).
        let mut in_list = false;
        let mut out = Vec::new();
        for line in generated.lines() {
            let setting = line.strip_prefix('#').filter(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()));
            let uncommented = match (setting, in_list) {
                (Some(rest), _) => {
                    in_list = rest.ends_with('[');
                    rest
                }
                (None, true) => {
                    in_list = line != "#]";
                    &line[1..]
                }
                (None, false) => "",
            };
            out.push(uncommented);
        }
        out.join("\n")
    }

    #[test]
    fn every_thumbor_setting_is_known_and_its_default_recorded() {
        let module = pyconf::parse(&thumbor_defaults()).unwrap();
        assert!(module.skipped.is_empty(), "{:?}", module.skipped);
        assert_eq!(module.assignments.len(), 133, "thumbor 7.8 has 133 settings in thumbor-config");
        for a in &module.assignments {
            let unmapped = keys::UNMAPPED.iter().find(|u| u.name == a.name);
            assert!(keys::MAPPED.contains(&a.name.as_str()) || unmapped.is_some(), "{} is unknown", a.name);
            if let Some(u) = unmapped {
                let default = default_value(u.default).unwrap_or_else(|| panic!("{}: {}", u.name, u.default));
                assert!(
                    default.same(&a.value),
                    "{}: recorded {}, thumbor-config says {:?}",
                    u.name,
                    u.default,
                    a.value
                );
            }
        }
        for name in keys::MAPPED.iter().chain(keys::ORIGINALS_BUCKET).chain(keys::UNMAPPED.iter().map(|u| &u.name)) {
            assert!(name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'), "{name}");
        }
    }

    #[test]
    fn thumbors_defaults_written_out_migrate_without_surprises() {
        let m = migrate(&thumbor_defaults(), "defaults.conf").unwrap();
        // The one warning: the published default key.
        assert_eq!(m.warnings.len(), 1, "{:#?}", m.warnings);
        assert!(m.warnings[0].contains("SECURITY_KEY") && m.warnings[0].contains("published"), "{:?}", m.warnings);
        let file = crate::config::FileConfig::from_yaml(&m.yaml).unwrap_or_else(|e| panic!("{e}\n{}", m.yaml));
        let t = &file.thumbora;
        assert_eq!(t.security.keys, ["MY_SECURE_KEY"]);
        assert_eq!(t.sources.loader, crate::config::LoaderKind::Http);
        assert_eq!(t.sources.user_agent, "Thumbor/7.8.0");
        assert_eq!(t.sources.disk.as_ref().map(|d| d.dir.clone()), Some("/tmp/thumbor/storage".into()));
        assert_eq!(t.sources.cache_ttl_seconds, 2_592_000);
        assert!(!t.image.respect_orientation && !t.image.smart_detection && !t.image.autojpg_filter);
        assert_eq!((t.image.max_source_pixels, t.response.max_age, t.image.quality), (75_000_000, 86_400, 80));
        assert_eq!(t.healthcheck_path, "/healthcheck");
        assert!(t.cache.disk.is_none() && t.cache.shared.is_none() && t.response.cors_allow_origin.is_none());
        assert!(m.yaml.contains("FILE_LOADER_ROOT_PATH: not used"), "{}", m.yaml);
        assert!(m.yaml.contains("ENGINE: thumbor's default; "), "{}", m.yaml);
    }

    #[test]
    fn result_storage_expiration_is_the_max_age_when_max_age_is_not_set() {
        let conf = "RESULT_STORAGE = 'thumbor.result_storages.file_storage'\nRESULT_STORAGE_EXPIRATION_SECONDS = 600\n";
        let m = migrate(conf, "c").unwrap();
        let file = crate::config::FileConfig::from_yaml(&m.yaml).unwrap();
        assert_eq!(file.thumbora.response.max_age, 600);
        assert_eq!(file.thumbora.cache.disk.unwrap().dir, std::path::PathBuf::from("/tmp/thumbor/result_storage"));
        let m = migrate(&format!("{conf}MAX_AGE = 60\n"), "c").unwrap();
        assert_eq!(crate::config::FileConfig::from_yaml(&m.yaml).unwrap().thumbora.response.max_age, 60);
        assert!(m.warnings.iter().any(|w| w.contains("RESULT_STORAGE_EXPIRATION_SECONDS")), "{:?}", m.warnings);
    }

    #[test]
    fn allowed_sources_never_widen_to_every_host() {
        let m = migrate("ALLOWED_SOURCES = ['cdn[0-9]+\\.example\\.com']\n", "c").unwrap();
        let file = crate::config::FileConfig::from_yaml(&m.yaml).unwrap();
        assert_eq!(file.thumbora.sources.allowed, [UNMAPPED_SOURCES]);
        assert_eq!(m.warnings.len(), 2, "the entry, and no SECURITY_KEY: {:?}", m.warnings);
    }

    #[test]
    fn s3_settings_that_cannot_work_are_warned_about_not_written() {
        // tc_aws without a loader bucket takes it from the URL.
        let m = migrate("SECURITY_KEY = 'k'\nLOADER = 'tc_aws.loaders.s3_loader'\n", "c").unwrap();
        let file = crate::config::FileConfig::from_yaml(&m.yaml).unwrap();
        assert_eq!(file.thumbora.sources.loader, crate::config::LoaderKind::Http);
        assert!(m.warnings.iter().any(|w| w.contains("TC_AWS_LOADER_BUCKET") && w.contains("first segment")));
        // An access key without its secret.
        let m =
            migrate("SECURITY_KEY = 'k'\nLOADER = 'thumbor_aws.loader'\nAWS_LOADER_S3_ACCESS_KEY_ID = 'AKIA-x'\n", "c")
                .unwrap();
        assert!(m.warnings.iter().any(|w| w.contains("secret_key: required")), "{:?}", m.warnings);
        assert!(!m.warnings.iter().any(|w| w.contains("AKIA-x")));
        // thumbor-aws's defaults: bucket `thumbor` on AWS, virtual-hosted, prefix /st.
        let m = migrate("SECURITY_KEY = 'k'\nLOADER = 'thumbor_aws.loader'\n", "c").unwrap();
        let s3 = crate::config::FileConfig::from_yaml(&m.yaml).unwrap().thumbora.sources.s3.unwrap();
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str(), s3.path_style, s3.endpoint),
            ("thumbor", "/st", false, None)
        );
    }

    #[test]
    fn healthcheck_routes() {
        assert_eq!(healthcheck_path("/healthcheck/?").as_deref(), Some("/healthcheck"));
        assert_eq!(healthcheck_path("^/status$").as_deref(), Some("/status"));
        assert_eq!(healthcheck_path("/health\\.check/").as_deref(), Some("/health.check"));
        for bad in ["/(health|status)", "/", "", "health", "/h.*"] {
            assert_eq!(healthcheck_path(bad), None, "{bad}");
        }
    }
}
