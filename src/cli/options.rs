//! A small getopt-style parser for the subcommands, as Python's optparse reads thumbor-url's
//! arguments: `-w 300`, `-w300`, `--width 300`, `--width=300`, clustered flags (`-ns`), a value
//! taken even when it starts with `-` (`-w -300`), options anywhere, `--` ending them.

/// One option: its short letter, its long names (the first is the canonical one) and whether it
/// takes a value.
pub(crate) struct Spec {
    pub short: Option<char>,
    pub long: &'static [&'static str],
    pub value: bool,
}

/// What the command line said: options by canonical long name, in order, and the positionals.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub options: Vec<(&'static str, Option<String>)>,
    pub positional: Vec<String>,
}

impl Parsed {
    pub fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| *n == name)
    }

    /// The last value given for `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options.iter().rev().find(|(n, _)| *n == name).and_then(|(_, v)| v.as_deref())
    }

    /// Every value given for `name`, in order.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.options.iter().filter(|(n, _)| *n == name).filter_map(|(_, v)| v.clone()).collect()
    }
}

pub(crate) fn parse(specs: &[Spec], args: &[String]) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            parsed.positional.extend(args.by_ref().cloned());
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            };
            let spec = specs
                .iter()
                .find(|s| s.long.contains(&name))
                .ok_or_else(|| format!("unknown option --{name} (see --help)"))?;
            let value = match (spec.value, inline) {
                (true, Some(v)) => Some(v),
                (true, None) => Some(args.next().cloned().ok_or_else(|| format!("--{name} needs a value"))?),
                (false, Some(_)) => return Err(format!("--{name} takes no value")),
                (false, None) => None,
            };
            parsed.options.push((spec.long[0], value));
        } else if arg.len() > 1 && arg.starts_with('-') {
            for (i, letter) in arg[1..].char_indices() {
                let spec = specs
                    .iter()
                    .find(|s| s.short == Some(letter))
                    .ok_or_else(|| format!("unknown option -{letter} (see --help)"))?;
                if !spec.value {
                    parsed.options.push((spec.long[0], None));
                    continue;
                }
                let rest = &arg[1 + i + letter.len_utf8()..];
                let value = if rest.is_empty() {
                    args.next().cloned().ok_or_else(|| format!("-{letter} needs a value"))?
                } else {
                    rest.to_string()
                };
                parsed.options.push((spec.long[0], Some(value)));
                break;
            }
        } else {
            parsed.positional.push(arg.clone());
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[Spec] = &[
        Spec { short: Some('w'), long: &["width"], value: true },
        Spec { short: Some('n'), long: &["fitin"], value: false },
        Spec { short: Some('s'), long: &["smart"], value: false },
        Spec { short: None, long: &["key-file", "key_file"], value: true },
    ];

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn optparse_spellings() {
        for line in [&["-w", "300"][..], &["-w300"], &["--width", "300"], &["--width=300"], &["-nsw300"]] {
            let p = parse(SPECS, &args(line)).unwrap();
            assert_eq!(p.value("width"), Some("300"), "{line:?}");
        }
        let p = parse(SPECS, &args(&["-w", "-300", "img", "-ns", "--key_file", "f", "--", "-x"])).unwrap();
        assert_eq!(p.value("width"), Some("-300"));
        assert!(p.flag("fitin") && p.flag("smart"));
        assert_eq!(p.value("key-file"), Some("f"));
        assert_eq!(p.positional, vec!["img".to_string(), "-x".to_string()]);
    }

    #[test]
    fn mistakes_are_named() {
        assert!(parse(SPECS, &args(&["-q"])).unwrap_err().contains("-q"));
        assert!(parse(SPECS, &args(&["--nope"])).unwrap_err().contains("--nope"));
        assert!(parse(SPECS, &args(&["-w"])).unwrap_err().contains("needs a value"));
        assert!(parse(SPECS, &args(&["--smart=1"])).unwrap_err().contains("takes no value"));
    }
}
