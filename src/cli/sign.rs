//! `thumbora sign`: thumbor-url's options in, the signed path libthumbor's
//! `CryptoURL(key).generate(...)` returns out, byte for byte.
//!
//! The segments come from the crate's own composer ([`crate::url::compose_unsigned`], the one
//! that writes cache keys), the signature from [`crate::security::signature::sign`]. Where
//! libthumbor writes something else, libthumbor wins (it is what users' templates call):
//! - the image URL is percent-encoded as thumbor-url does (Python's `quote`, `/` kept), not as
//!   the composer does; `--no-quote` passes it as given (already encoded);
//! - the filters are written as given, joined with `:`, never percent-encoded;
//! - a flip of a side that is 0 while the other is not is dropped (`-f -e 100` gives `0x100`:
//!   libthumbor negates the 0); a warning says so on standard error.

use crate::security::signature;
use crate::url::{compose_unsigned, Crop, Dim, FitIn, HAlign, ImageRequest, Trim, VAlign};

use super::options::{parse, Spec};

/// The environment variable read for the key when neither `-k` nor `--key-file` is given.
pub const KEY_ENV: &str = "THUMBORA_SECURITY_KEY";

const USAGE: &str = "\
usage: thumbora sign [options] IMAGE_URL

Prints the signed thumbor path of IMAGE_URL, as thumbor-url and libthumbor's CryptoURL write it.

The key (one of, in this order):
  -k, --key KEY            the security key (visible in the shell history and `ps`)
  -l, --key-file FILE      read the key from the first line of FILE
  THUMBORA_SECURITY_KEY    the key from the environment

Options (thumbor-url's):
  -w, --width N            target width (0: proportional; negative: flip horizontally)
  -e, --height N           target height (0: proportional; negative: flip vertically)
  -n, --fitin              fit-in: fit the image in the box (needs -w or -e)
      --adaptive           with -n: adaptive-fit-in
      --full               with -n: full-fit-in
  -s, --smart              smart cropping
  -t, --trim               trim the uniform border
  -f, --horizontal-flip    flip horizontally
  -v, --vertical-flip      flip vertically
  -a, --halign ALIGN       left, center (default) or right
  -i, --valign ALIGN       top, middle (default) or bottom
  -c, --crop LxT:RxB       manual crop in source pixels, e.g. 10x20:300x400
      --filters FILTERS    filters, e.g. 'quality(80)'; repeat for several
  -m, --meta               meta/: the operations as JSON instead of the image
      --no-quote           IMAGE_URL is already percent-encoded: use it as given
  -h, --help               this help
";

const SPECS: &[Spec] = &[
    Spec { short: Some('k'), long: &["key"], value: true },
    Spec { short: Some('l'), long: &["key-file", "key_file"], value: true },
    Spec { short: Some('w'), long: &["width"], value: true },
    Spec { short: Some('e'), long: &["height"], value: true },
    Spec { short: Some('n'), long: &["fitin", "fit-in"], value: false },
    Spec { short: None, long: &["adaptive"], value: false },
    Spec { short: None, long: &["full"], value: false },
    Spec { short: Some('s'), long: &["smart"], value: false },
    Spec { short: Some('t'), long: &["trim"], value: false },
    Spec { short: Some('f'), long: &["horizontal-flip", "horizontal_flip"], value: false },
    Spec { short: Some('v'), long: &["vertical-flip", "vertical_flip"], value: false },
    Spec { short: Some('a'), long: &["halign"], value: true },
    Spec { short: Some('i'), long: &["valign"], value: true },
    Spec { short: Some('c'), long: &["crop"], value: true },
    Spec { short: None, long: &["filters"], value: true },
    Spec { short: Some('m'), long: &["meta"], value: false },
    Spec { short: None, long: &["no-quote"], value: false },
    Spec { short: Some('h'), long: &["help"], value: false },
];

/// Where the key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Given(String),
    File(String),
}

/// thumbor-url's options, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignOptions {
    pub width: i64,
    pub height: i64,
    pub fit_in: bool,
    pub adaptive: bool,
    pub full: bool,
    pub smart: bool,
    pub trim: bool,
    pub horizontal_flip: bool,
    pub vertical_flip: bool,
    pub halign: HAlign,
    pub valign: VAlign,
    pub crop: Crop,
    pub filters: Vec<String>,
    pub meta: bool,
    /// Percent-encode the image URL as thumbor-url does (default), or use it as given.
    pub quote: bool,
    pub image: String,
}

/// The path without its signature (what is signed), and warnings about options libthumbor
/// drops.
pub fn unsigned_path(o: &SignOptions) -> Result<(String, Vec<String>), String> {
    let mut warnings = vec![];
    if (o.adaptive || o.full) && !o.fit_in {
        return Err("--adaptive and --full go with -n/--fitin".into());
    }
    if o.fit_in && o.width == 0 && o.height == 0 {
        // libthumbor: "When using fit-in or full-fit-in, you must specify width and/or height."
        return Err("-n/--fitin needs a width (-w) or a height (-e)".into());
    }
    let side =
        |n: i64, what: &str| u32::try_from(n.unsigned_abs()).map_err(|_| format!("the {what} {n} is out of range"));
    let (width, height) = (side(o.width, "width")?, side(o.height, "height")?);
    // libthumbor's calculate_width_and_height: a flip negates the side; both sides 0 and a flip
    // give `-0`; a flipped 0 beside a non-zero side stays `0` (the flip is lost).
    let (flip_h, flip_v) = if width == 0 && height == 0 {
        (o.horizontal_flip, o.vertical_flip)
    } else {
        for (flip, zero, name) in [
            (o.horizontal_flip, width == 0, "-f/--horizontal-flip"),
            (o.vertical_flip, height == 0, "-v/--vertical-flip"),
        ] {
            if flip && zero {
                warnings.push(format!("{name} of a side that is 0 is dropped, as libthumbor drops it"));
            }
        }
        ((o.width < 0) != o.horizontal_flip && width != 0, (o.height < 0) != o.vertical_flip && height != 0)
    };
    // Everything but the filters and the image goes through the crate's composer; an empty image
    // leaves exactly the segments, each followed by `/`.
    let request = ImageRequest {
        meta: o.meta,
        trim: o.trim.then(Trim::default),
        crop: o.crop,
        fit_in: FitIn { enabled: o.fit_in, adaptive: o.adaptive, full: o.full },
        flip_h,
        flip_v,
        width: Dim::Px(width),
        height: Dim::Px(height),
        halign: o.halign,
        valign: o.valign,
        smart: o.smart,
        ..ImageRequest::default()
    };
    let mut path = compose_unsigned(&request);
    if !o.filters.is_empty() {
        path.push_str("filters:");
        path.push_str(&o.filters.join(":"));
        path.push('/');
    }
    if o.quote {
        path.push_str(&crate::url::python_quote(&o.image));
    } else {
        path.push_str(&o.image);
    }
    Ok((path, warnings))
}

/// `/<signature>/<path>`, as `CryptoURL(key).generate(...)` returns it.
pub fn signed_path(key: &[u8], o: &SignOptions) -> Result<(String, Vec<String>), String> {
    let (path, warnings) = unsigned_path(o)?;
    Ok((format!("/{}/{path}", signature::sign(key, &path)), warnings))
}

/// The key: `-k`, else `--key-file` (its first line), else `$THUMBORA_SECURITY_KEY`.
pub fn read_key(source: Option<KeySource>, env: Option<String>) -> Result<Vec<u8>, String> {
    let key = match source {
        Some(KeySource::Given(key)) => key,
        Some(KeySource::File(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read the key file {path}: {e}"))?;
            let line = text.split('\n').next().unwrap_or_default();
            line.strip_suffix('\r').unwrap_or(line).to_string()
        }
        None => env.filter(|k| !k.is_empty()).ok_or_else(|| {
            format!(
                "no key: give it with -k KEY, --key-file FILE (its first line) or the environment variable {KEY_ENV}"
            )
        })?,
    };
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    Ok(key.into_bytes())
}

/// What the command line asks: help, or a path to sign with a key from somewhere.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Sign { key: Option<KeySource>, options: SignOptions },
}

pub fn parse_args(args: &[String]) -> Result<Command, String> {
    let p = parse(SPECS, args)?;
    if p.flag("help") {
        return Ok(Command::Help);
    }
    let int = |name: &str| -> Result<i64, String> {
        p.value(name).map_or(Ok(0), |v| v.trim().parse().map_err(|_| format!("--{name}: `{v}` is not an integer")))
    };
    let halign = match p.value("halign").unwrap_or("center") {
        "left" => HAlign::Left,
        "center" => HAlign::Center,
        "right" => HAlign::Right,
        other => return Err(format!("--halign: `{other}` is not left, center or right")),
    };
    let valign = match p.value("valign").unwrap_or("middle") {
        "top" => VAlign::Top,
        "middle" => VAlign::Middle,
        "bottom" => VAlign::Bottom,
        other => return Err(format!("--valign: `{other}` is not top, middle or bottom")),
    };
    let crop = match p.value("crop") {
        None => Crop::default(),
        Some(text) => {
            parse_crop(text).ok_or_else(|| format!("--crop: `{text}` is not LxT:RxB (like 10x20:300x400)"))?
        }
    };
    let key = match (p.value("key"), p.value("key-file")) {
        (Some(_), Some(_)) => return Err("give the key with -k or with --key-file, not both".into()),
        (Some(key), None) => Some(KeySource::Given(key.to_string())),
        (None, Some(file)) => Some(KeySource::File(file.to_string())),
        (None, None) => None,
    };
    let image = match p.positional.as_slice() {
        [image] if !image.is_empty() => image.clone(),
        [] | [_] => return Err("the image URL is required (see --help)".into()),
        more => return Err(format!("one image URL expected, got {}: {more:?}", more.len())),
    };
    let options = SignOptions {
        width: int("width")?,
        height: int("height")?,
        fit_in: p.flag("fitin"),
        adaptive: p.flag("adaptive"),
        full: p.flag("full"),
        smart: p.flag("smart"),
        trim: p.flag("trim"),
        horizontal_flip: p.flag("horizontal-flip"),
        vertical_flip: p.flag("vertical-flip"),
        halign,
        valign,
        crop,
        filters: p.values("filters"),
        meta: p.flag("meta"),
        quote: !p.flag("no-quote"),
        image,
    };
    Ok(Command::Sign { key, options })
}

/// `LxT:RxB` in non-negative integers.
fn parse_crop(text: &str) -> Option<Crop> {
    let (a, b) = text.split_once(':')?;
    let pair = |s: &str| -> Option<(u32, u32)> {
        let (x, y) = s.split_once('x')?;
        Some((x.trim().parse().ok()?, y.trim().parse().ok()?))
    };
    let ((left, top), (right, bottom)) = (pair(a)?, pair(b)?);
    Some(Crop { left, top, right, bottom })
}

/// `thumbora sign ARGS`: the signed path on `out`, warnings on standard error.
pub fn run(args: &[String], out: &mut impl std::io::Write) -> Result<(), String> {
    let (key, options) = match parse_args(args)? {
        Command::Help => return write!(out, "{USAGE}").map_err(|e| e.to_string()),
        Command::Sign { key, options } => (key, options),
    };
    let key = read_key(key, std::env::var(KEY_ENV).ok())?;
    let (path, warnings) = signed_path(&key, &options)?;
    for warning in warnings {
        eprintln!("thumbora sign: warning: {warning}");
    }
    writeln!(out, "{path}").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_line(line: &str) -> Result<String, String> {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        match parse_args(&args)? {
            Command::Sign { key, options } => Ok(signed_path(&read_key(key, None)?, &options)?.0),
            Command::Help => Ok("help".into()),
        }
    }

    #[test]
    fn contract_vectors() {
        // thumbor-compat.md's vectors, written with thumbor-url's options.
        let k = "-k my-security-key";
        assert_eq!(
            sign_line(&format!("{k} -w 300 -e 200 my.server.com/some/path/to/image.jpg")).unwrap(),
            "/8ammJH8D-7tXy6kU3lTvoXlhu4o=/300x200/my.server.com/some/path/to/image.jpg"
        );
        assert_eq!(
            sign_line(&format!("{k} -c 10x10:200x200 -w300 -e200 my.server.com/some/path/to/image.jpg")).unwrap(),
            "/B35oBEIwztbc3jm7vsdqLez2C78=/10x10:200x200/300x200/my.server.com/some/path/to/image.jpg"
        );
        assert_eq!(
            sign_line(&format!(
                "{k} -c 10x10:200x200 -w300 -e200 --filters brightness(20) --filters contrast(10) \
                 my.server.com/some/path/to/image.jpg"
            ))
            .unwrap(),
            "/as8U2DbUUtTMgvPF26LkjS3MocY=/10x10:200x200/300x200/filters:brightness(20):contrast(10)/\
             my.server.com/some/path/to/image.jpg"
        );
        assert_eq!(
            sign_line("-k mysecret -w 500 -e 500 -i top raw.githubusercontent.com/cshum/imagor/master/testdata/gopher.png")
                .unwrap(),
            "/cST4Ko5_FqwT3BDn-Wf4gO3RFSk=/500x500/top/raw.githubusercontent.com/cshum/imagor/master/testdata/gopher.png"
        );
    }

    fn path(line: &str) -> String {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        match parse_args(&args).unwrap() {
            Command::Sign { options, .. } => unsigned_path(&options).unwrap().0,
            Command::Help => panic!("help"),
        }
    }

    #[test]
    fn libthumbor_flips() {
        assert_eq!(path("-f h/i"), "-0x0/h/i");
        assert_eq!(path("-fv h/i"), "-0x-0/h/i");
        assert_eq!(path("-v h/i"), "0x-0/h/i");
        assert_eq!(path("-f -e 100 h/i"), "0x100/h/i", "libthumbor drops the flip of a 0 side");
        assert_eq!(path("-w -300 h/i"), "-300x0/h/i");
        assert_eq!(path("-w -300 -f h/i"), "300x0/h/i");
        assert_eq!(path("-w 300 -e -200 -fv h/i"), "-300x200/h/i");
    }

    #[test]
    fn segments_in_libthumbor_order() {
        assert_eq!(
            path("-m -t -c 1x2:3x4 -n --full --adaptive -w 10 -a left -i bottom -s --filters a(1) h/i"),
            "meta/trim/1x2:3x4/adaptive-full-fit-in/10x0/left/bottom/smart/filters:a(1)/h/i"
        );
        assert_eq!(path("-c 0x0:0x0 h/i"), "h/i", "an empty crop is left out");
        assert_eq!(path("http://h/a?b=c&d"), "http%3A//h/a%3Fb%3Dc%26d");
        assert_eq!(path("--no-quote http%3A%2F%2Fh%2Fi"), "http%3A%2F%2Fh%2Fi");
        assert_eq!(crate::url::python_quote("café é/~"), "caf%C3%A9%20%C3%A9/~");
    }

    #[test]
    fn mistakes_are_refused() {
        for (line, says) in [
            ("-k k -n h/i", "needs a width"),
            ("-k k --adaptive -w 1 h/i", "go with -n"),
            ("-k k -a middle h/i", "--halign"),
            ("-k k -i left h/i", "--valign"),
            ("-k k -c 1x2 h/i", "--crop"),
            ("-k k -c -1x2:3x4 h/i", "--crop"),
            ("-k k -w abc h/i", "not an integer"),
            ("-k k", "image URL is required"),
            ("-k k a b", "one image URL"),
            ("h/i", "--key-file FILE"),
            ("-k k -l f h/i", "not both"),
        ] {
            let err = sign_line(line).unwrap_err();
            assert!(err.contains(says), "{line}: {err}");
        }
    }

    #[test]
    fn key_sources() {
        assert_eq!(read_key(Some(KeySource::Given("a".into())), Some("env".into())).unwrap(), b"a");
        assert_eq!(read_key(None, Some("env".into())).unwrap(), b"env");
        assert!(read_key(None, Some(String::new())).is_err(), "an empty variable is no key");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "from-file\r\nsecond line\n").unwrap();
        let file = file.display().to_string();
        assert_eq!(read_key(Some(KeySource::File(file)), None).unwrap(), b"from-file");
    }
}
