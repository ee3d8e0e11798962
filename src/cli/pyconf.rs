//! A reader of thumbor.conf files: Python read for its top-level `NAME = literal` assignments
//! only, never executed. Anything else (imports, names, arithmetic, calls, `if` blocks,
//! f-strings) is skipped and reported with its line.
//!
//! Literals are Python's: strings (single, double and triple quotes, `r`/`b`/`u` prefixes,
//! escapes, adjacent strings concatenated), integers (`0x`, `0o`, `0b`, `_` separators), floats,
//! `True`/`False`/`None`, lists, tuples, dicts and sets of literals (nested, trailing commas,
//! spanning lines inside brackets or after a backslash), signed numbers. One call is read as a
//! literal too: `re.compile('...')` with a string, which thumbor's `ALLOWED_SOURCES` documents.
//!
//! Bounds: the text is at most [`MAX_BYTES`]; brackets nest at most [`MAX_DEPTH`] deep (deeper
//! statements are skipped, so the recursive reader never goes deeper). What cannot be skipped
//! (an unterminated string, unbalanced brackets) is a [`SyntaxError`] naming its line.

/// The largest file read, in bytes.
pub const MAX_BYTES: usize = 1024 * 1024;
/// The deepest bracket nesting read; a deeper statement is skipped.
pub const MAX_DEPTH: usize = 64;

/// A Python literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Set(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// `re.compile(pattern)`.
    Regex(String),
}

impl Value {
    /// Equal as Python compares them (`75e6 == 75000000`, `True == 1`), with a tuple equal to a
    /// list of the same items (thumbor's defaults are written either way).
    pub fn same(&self, other: &Value) -> bool {
        use Value::*;
        let number = |v: &Value| match v {
            Bool(b) => Some(f64::from(u8::from(*b))),
            Int(i) => Some(*i as f64),
            Float(f) => Some(*f),
            _ => Option::None,
        };
        let items = |v: &Value| match v {
            List(items) | Tuple(items) => Some(items.clone()),
            _ => Option::None,
        };
        match (self, other) {
            (Int(a), Int(b)) => a == b,
            (Str(a), Str(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (None, None) => true,
            (Regex(a), Regex(b)) => a == b,
            (Dict(a), Dict(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0.same(&y.0) && x.1.same(&y.1)),
            (Set(a), Set(b)) => a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| x.same(y))),
            _ => match (number(self), number(other), items(self), items(other)) {
                (Some(a), Some(b), _, _) => a == b,
                (_, _, Some(a), Some(b)) => a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.same(y)),
                _ => false,
            },
        }
    }

    /// Python's truth value.
    pub fn truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(v) | Value::Tuple(v) | Value::Set(v) => !v.is_empty(),
            Value::Dict(v) => !v.is_empty(),
            Value::Regex(_) => true,
        }
    }

    /// The text of a `str` (or of `bytes` that are UTF-8).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// What kind of value this is, as Python names it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Set(_) => "set",
            Value::Dict(_) => "dict",
            Value::Regex(_) => "re.compile()",
        }
    }
}

/// One `NAME = literal` statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub name: String,
    pub value: Value,
    pub line: usize,
}

/// A statement that was not read: its first line (and last, for a block), the name it assigns
/// when it is an assignment, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub line: usize,
    pub last_line: usize,
    pub name: Option<String>,
    pub reason: String,
}

/// What a file says: its literal assignments in order, and the statements skipped.
#[derive(Debug, Default)]
pub struct Module {
    pub assignments: Vec<Assignment>,
    pub skipped: Vec<Skipped>,
}

/// A fault that makes the rest of the file unreadable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

fn fault(line: usize, message: impl Into<String>) -> SyntaxError {
    SyntaxError { line, message: message.into() }
}

/// Reads `text`, a thumbor.conf.
pub fn parse(text: &str) -> Result<Module, SyntaxError> {
    if text.len() > MAX_BYTES {
        return Err(fault(1, format!("the file is larger than {MAX_BYTES} bytes")));
    }
    // Python reads \r\n and \r as \n, and skips a leading byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).replace("\r\n", "\n").replace('\r', "\n");
    let lines = Lexer::new(&text).logical_lines()?;
    let mut module = Module::default();
    // Whether the last statement read opened a block (`if ...:`) that was skipped: the indented
    // lines after it, and its `else:`/`elif`/`except`/`finally` parts, go with it.
    let mut in_block = false;
    for line in lines {
        let first = line.tokens.first().map_or(line.line, |t| t.line);
        let last = line.tokens.last().map_or(first, |t| t.line);
        let continuation = matches!(&line.tokens[0].kind,
            Tok::Name(word) if matches!(word.as_str(), "else" | "elif" | "except" | "finally"));
        if in_block && (line.indented || continuation) {
            if let Some(block) = module.skipped.last_mut() {
                block.last_line = last;
            }
            continue;
        }
        if line.indented {
            in_block = false;
            module.skipped.push(Skipped {
                line: first,
                last_line: last,
                name: None,
                reason: "unexpected indentation: not executed".into(),
            });
            continue;
        }
        match statement(&line) {
            Ok(assignment) => {
                in_block = false;
                module.assignments.push(assignment);
            }
            Err(skipped) => {
                in_block = skipped.opens_block();
                module.skipped.push(skipped);
            }
        }
    }
    Ok(module)
}

impl Skipped {
    /// Whether the statement ends with `:` (an `if`, `for`, `def`, ... header), so that the
    /// indented lines after it are its body.
    fn opens_block(&self) -> bool {
        self.reason.ends_with(BLOCK)
    }
}

const BLOCK: &str = "(a block): not executed";

/// One statement: `NAME = literal`, or why it is skipped.
fn statement(line: &LogicalLine) -> Result<Assignment, Skipped> {
    let tokens = &line.tokens;
    let first = tokens[0].line;
    let last = tokens.last().map_or(first, |t| t.line);
    let name = match (&tokens[0].kind, tokens.get(1).map(|t| &t.kind)) {
        (Tok::Name(name), Some(Tok::Op('='))) if !is_keyword(name) => Some(name.clone()),
        _ => None,
    };
    let skip = |reason: String| Skipped { line: first, last_line: last, name: name.clone(), reason };
    let Some(name) = name.clone() else {
        let what = match &tokens[0].kind {
            Tok::Name(word) if matches!(word.as_str(), "import" | "from") => "an import: not executed".to_string(),
            _ if matches!(tokens.last().map(|t| &t.kind), Some(Tok::Op(':'))) => format!("a statement {BLOCK}"),
            _ => "not an assignment of a literal: not executed".to_string(),
        };
        return Err(skip(what));
    };
    if line.depth > MAX_DEPTH {
        return Err(skip(format!("brackets nested more than {MAX_DEPTH} deep: not read")));
    }
    let mut reader = Reader { tokens: &tokens[2..], pos: 0 };
    match reader.expression() {
        Ok(value) if reader.pos == reader.tokens.len() => Ok(Assignment { name, value, line: first }),
        Ok(_) | Err(NotLiteral) => Err(skip(format!("not a literal{}: not executed", reader.why()))),
    }
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "False"
            | "None"
            | "True"
            | "and"
            | "as"
            | "assert"
            | "async"
            | "await"
            | "break"
            | "class"
            | "continue"
            | "def"
            | "del"
            | "elif"
            | "else"
            | "except"
            | "finally"
            | "for"
            | "from"
            | "global"
            | "if"
            | "import"
            | "in"
            | "is"
            | "lambda"
            | "nonlocal"
            | "not"
            | "or"
            | "pass"
            | "raise"
            | "return"
            | "try"
            | "while"
            | "with"
            | "yield"
    )
}

// --- tokens -----------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// An f-string (an expression, never a literal).
    FString,
    /// A token that is no literal, with why (`1j`, `0755`, a bad escape).
    Invalid(&'static str),
    Op(char),
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    line: usize,
}

/// The tokens of one statement, whether its first line is indented, and how deep its brackets
/// nest.
#[derive(Debug)]
struct LogicalLine {
    tokens: Vec<Token>,
    line: usize,
    indented: bool,
    depth: usize,
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    /// Open brackets: the bracket and the line it opened on.
    open: Vec<(char, usize)>,
    at_line_start: bool,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer { chars: text.chars().peekable(), line: 1, open: Vec::new(), at_line_start: true }
    }

    fn logical_lines(mut self) -> Result<Vec<LogicalLine>, SyntaxError> {
        let mut lines = Vec::new();
        let mut current = LogicalLine { tokens: Vec::new(), line: 1, indented: false, depth: 0 };
        let mut finish = |current: &mut LogicalLine, next_line: usize| {
            let done = std::mem::replace(
                current,
                LogicalLine { tokens: Vec::new(), line: next_line, indented: false, depth: 0 },
            );
            if !done.tokens.is_empty() {
                lines.push(done);
            }
        };
        let mut indent_seen = false;
        while let Some(&c) = self.chars.peek() {
            let line_start = std::mem::replace(&mut self.at_line_start, false);
            if line_start {
                indent_seen = false;
            }
            match c {
                '\n' => {
                    self.chars.next();
                    self.line += 1;
                    self.at_line_start = true;
                    if self.open.is_empty() {
                        finish(&mut current, self.line);
                    }
                }
                ' ' | '\t' | '\x0c' => {
                    self.chars.next();
                    if line_start || indent_seen {
                        indent_seen = true;
                        self.at_line_start = false;
                    }
                }
                '#' => {
                    while self.chars.peek().is_some_and(|&c| c != '\n') {
                        self.chars.next();
                    }
                }
                '\\' => {
                    self.chars.next();
                    if self.chars.peek() == Some(&'\n') {
                        self.chars.next();
                        self.line += 1;
                    } else {
                        current.tokens.push(Token { kind: Tok::Op('\\'), line: self.line });
                    }
                }
                ';' if self.open.is_empty() => {
                    self.chars.next();
                    finish(&mut current, self.line);
                }
                _ => {
                    if current.tokens.is_empty() {
                        current.indented = indent_seen;
                        current.line = self.line;
                    }
                    indent_seen = false;
                    let token = self.token()?;
                    current.depth = current.depth.max(self.open.len());
                    current.tokens.push(token);
                }
            }
        }
        if let Some((bracket, line)) = self.open.last() {
            return Err(fault(*line, format!("`{bracket}` is never closed")));
        }
        finish(&mut current, self.line);
        Ok(lines)
    }

    fn token(&mut self) -> Result<Token, SyntaxError> {
        let line = self.line;
        let c = *self.chars.peek().expect("a character");
        let kind = if c.is_alphabetic() || c == '_' {
            let mut word = String::new();
            while let Some(&c) = self.chars.peek().filter(|c| c.is_alphanumeric() || **c == '_') {
                word.push(c);
                self.chars.next();
            }
            match self.chars.peek() {
                Some('\'' | '"') if is_string_prefix(&word) => self.string(&word.to_ascii_lowercase())?,
                _ => Tok::Name(word),
            }
        } else if c.is_ascii_digit() || (c == '.' && self.next_is_digit()) {
            self.number()
        } else if c == '\'' || c == '"' {
            self.string("")?
        } else {
            self.chars.next();
            match c {
                '(' | '[' | '{' => self.open.push((c, line)),
                ')' | ']' | '}' => {
                    let want = match c {
                        ')' => '(',
                        ']' => '[',
                        _ => '{',
                    };
                    match self.open.pop() {
                        Some((open, _)) if open == want => {}
                        Some((open, at)) => {
                            return Err(fault(line, format!("`{c}` does not close the `{open}` of line {at}")))
                        }
                        None => return Err(fault(line, format!("`{c}` closes nothing"))),
                    }
                }
                _ => {}
            }
            Tok::Op(c)
        };
        Ok(Token { kind, line })
    }

    fn next_is_digit(&self) -> bool {
        let mut ahead = self.chars.clone();
        ahead.next();
        ahead.next().is_some_and(|c| c.is_ascii_digit())
    }

    /// A number as Python writes them; a malformed one is an [`Tok::Invalid`] token.
    fn number(&mut self) -> Tok {
        let mut text = String::new();
        while let Some(&c) = self.chars.peek() {
            let sign_of_exponent = matches!(c, '+' | '-')
                && text.ends_with(['e', 'E'])
                && !text.starts_with("0x")
                && !text.starts_with("0X");
            if c.is_alphanumeric() || c == '_' || c == '.' || sign_of_exponent {
                text.push(c);
                self.chars.next();
            } else {
                break;
            }
        }
        number_token(&text)
    }

    /// A string literal after its prefix (lowercase); adjacent ones are joined by the reader.
    fn string(&mut self, prefix: &str) -> Result<Tok, SyntaxError> {
        let start = self.line;
        let quote = self.chars.next().expect("a quote");
        let triple = {
            let mut ahead = self.chars.clone();
            ahead.next() == Some(quote) && ahead.next() == Some(quote)
        };
        if triple {
            self.chars.next();
            self.chars.next();
        }
        let raw = prefix.contains('r');
        let bytes = prefix.contains('b');
        let mut body = String::new();
        let unterminated = || fault(start, "unterminated string");
        loop {
            let c = self.chars.next().ok_or_else(unterminated)?;
            match c {
                '\\' => {
                    let next = self.chars.next().ok_or_else(unterminated)?;
                    if next == '\n' {
                        self.line += 1;
                    }
                    body.push('\\');
                    body.push(next);
                }
                '\n' if !triple => return Err(unterminated()),
                '\n' => {
                    self.line += 1;
                    body.push('\n');
                }
                c if c == quote => {
                    if !triple {
                        break;
                    }
                    let mut ahead = self.chars.clone();
                    if ahead.next() == Some(quote) && ahead.next() == Some(quote) {
                        self.chars.next();
                        self.chars.next();
                        break;
                    }
                    body.push(c);
                }
                c => body.push(c),
            }
        }
        if prefix.contains('f') {
            return Ok(Tok::FString);
        }
        Ok(match (bytes, raw) {
            (false, true) => Tok::Str(body),
            (false, false) => match unescape(&body, false) {
                Ok(Unescaped::Text(s)) => Tok::Str(s),
                Ok(Unescaped::Bytes(_)) => unreachable!("text escapes give text"),
                Err(why) => Tok::Invalid(why),
            },
            (true, _) if !body.is_ascii() => Tok::Invalid("bytes can only contain ASCII characters"),
            (true, true) => Tok::Bytes(body.into_bytes()),
            (true, false) => match unescape(&body, true) {
                Ok(Unescaped::Bytes(b)) => Tok::Bytes(b),
                Ok(Unescaped::Text(_)) => unreachable!("byte escapes give bytes"),
                Err(why) => Tok::Invalid(why),
            },
        })
    }
}

fn is_string_prefix(word: &str) -> bool {
    matches!(word.to_ascii_lowercase().as_str(), "r" | "u" | "b" | "f" | "br" | "rb" | "fr" | "rf")
}

/// A number token from its text (`1_000`, `0x1F`, `75e6`, `.5`); `Invalid` when Python would
/// refuse it or it is not a plain number (`1j`).
fn number_token(text: &str) -> Tok {
    let lower = text.to_ascii_lowercase();
    if lower.ends_with('j') {
        return Tok::Invalid("complex numbers are not read");
    }
    let digits_ok = |digits: &str, valid: &dyn Fn(char) -> bool| {
        !digits.is_empty()
            && !digits.starts_with('_')
            && !digits.ends_with('_')
            && !digits.contains("__")
            && digits.chars().all(|c| c == '_' || valid(c))
    };
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let rest = rest.strip_prefix('_').unwrap_or(rest);
            if !digits_ok(rest, &|c| c.is_digit(radix)) {
                return Tok::Invalid("a malformed number");
            }
            return match i128::from_str_radix(&rest.replace('_', ""), radix) {
                Ok(n) => Tok::Int(n),
                Err(_) => Tok::Invalid("an integer too large"),
            };
        }
    }
    // Every `_` must sit between two digits.
    let chars: Vec<char> = lower.chars().collect();
    let underscores_ok = chars.iter().enumerate().all(|(i, &c)| {
        c != '_' || (i > 0 && chars[i - 1].is_ascii_digit() && chars.get(i + 1).is_some_and(char::is_ascii_digit))
    });
    let plain = lower.replace('_', "");
    if !underscores_ok || !plain.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-')) {
        return Tok::Invalid("a malformed number");
    }
    if plain.chars().all(|c| c.is_ascii_digit()) {
        if plain.len() > 1 && plain.starts_with('0') && plain.chars().any(|c| c != '0') {
            return Tok::Invalid("a number with a leading zero (Python 2's octal)");
        }
        return match plain.parse::<i128>() {
            Ok(n) => Tok::Int(n),
            Err(_) => Tok::Invalid("an integer too large"),
        };
    }
    let mantissa = plain.split('e').next().unwrap_or_default();
    let exponent_ok = match plain.split_once('e') {
        None => true,
        Some((_, exp)) => {
            let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit())
        }
    };
    if mantissa.matches('.').count() > 1 || mantissa == "." || !exponent_ok {
        return Tok::Invalid("a malformed number");
    }
    match plain.parse::<f64>() {
        Ok(f) if f.is_finite() => Tok::Float(f),
        _ => Tok::Invalid("a malformed number"),
    }
}

enum Unescaped {
    Text(String),
    Bytes(Vec<u8>),
}

/// Python's escapes in a non-raw string (`bytes`: the byte escapes only, `\u` kept as written).
fn unescape(body: &str, bytes: bool) -> Result<Unescaped, &'static str> {
    let mut out: Vec<u32> = Vec::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c as u32);
            continue;
        }
        let Some(e) = chars.next() else { break };
        let mut hex = |n: usize| -> Result<u32, &'static str> {
            let digits: String = (0..n).filter_map(|_| chars.next_if(char::is_ascii_hexdigit)).collect();
            if digits.len() != n {
                return Err("a truncated \\x, \\u or \\U escape");
            }
            u32::from_str_radix(&digits, 16).map_err(|_| "a bad escape")
        };
        match e {
            '\n' => {}
            '\\' | '\'' | '"' => out.push(e as u32),
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(10),
            'r' => out.push(13),
            't' => out.push(9),
            'v' => out.push(11),
            '0'..='7' => {
                let mut n = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.next_if(|c| c.is_digit(8)) {
                        Some(d) => n = n * 8 + d.to_digit(8).unwrap_or(0),
                        None => break,
                    }
                }
                out.push(n);
            }
            'x' => out.push(hex(2)?),
            'u' if !bytes => out.push(hex(4)?),
            'U' if !bytes => out.push(hex(8)?),
            'N' if !bytes => return Err("\\N{...} escapes are not read"),
            other => {
                out.push('\\' as u32);
                out.push(other as u32);
            }
        }
    }
    if bytes {
        let bytes: Option<Vec<u8>> = out.iter().map(|&n| u8::try_from(n).ok()).collect();
        return bytes.map(Unescaped::Bytes).ok_or("an octal escape above \\377 in bytes");
    }
    let text: Option<String> = out.iter().map(|&n| char::from_u32(n)).collect();
    text.map(Unescaped::Text).ok_or("an escape that is no Unicode character (a surrogate or above U+10FFFF)")
}

// --- literals ---------------------------------------------------------------------------------

/// The statement is not a literal.
struct NotLiteral;

/// A recursive-descent reader of one literal over a statement's tokens (its depth is bounded by
/// [`MAX_DEPTH`], checked before it starts).
struct Reader<'t> {
    tokens: &'t [Token],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn next(&mut self) -> Option<&Tok> {
        let t = self.tokens.get(self.pos).map(|t| &t.kind);
        self.pos += 1;
        t
    }

    fn eat(&mut self, op: char) -> bool {
        if self.peek() == Some(&Tok::Op(op)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Why reading stopped, for the message: the token at fault when it says more.
    fn why(&self) -> String {
        match self.tokens.get(self.pos.min(self.tokens.len().saturating_sub(1))).map(|t| &t.kind) {
            Some(Tok::Invalid(why)) => format!(" ({why})"),
            Some(Tok::FString) => " (an f-string)".into(),
            Some(Tok::Name(name)) if !matches!(name.as_str(), "True" | "False" | "None") => {
                format!(" (it uses the name `{name}`)")
            }
            Some(Tok::Op(_)) => " (an expression)".into(),
            _ if self.tokens.is_empty() => " (nothing after `=`)".into(),
            _ => String::new(),
        }
    }

    /// `literal (, literal)* [,]`: several make a tuple, as at the top of an assignment.
    fn expression(&mut self) -> Result<Value, NotLiteral> {
        let first = self.literal()?;
        if !self.eat(',') {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek().is_some() && !self.closes() {
            items.push(self.literal()?);
            if !self.eat(',') {
                break;
            }
        }
        Ok(Value::Tuple(items))
    }

    fn closes(&self) -> bool {
        matches!(self.peek(), Some(Tok::Op(')' | ']' | '}')))
    }

    fn literal(&mut self) -> Result<Value, NotLiteral> {
        let mut negative = false;
        let mut signed = false;
        while let Some(Tok::Op(sign @ ('-' | '+'))) = self.peek() {
            negative ^= *sign == '-';
            signed = true;
            self.pos += 1;
        }
        let start = self.pos;
        let value = match self.next().cloned() {
            Some(Tok::Int(n)) => Value::Int(if negative { -n } else { n }),
            Some(Tok::Float(f)) => Value::Float(if negative { -f } else { f }),
            _ if signed => {
                self.pos = start;
                return Err(NotLiteral);
            }
            Some(Tok::Str(s)) => self.strings(Concat::Text(s))?,
            Some(Tok::Bytes(b)) => self.strings(Concat::Bytes(b))?,
            Some(Tok::Name(name)) => match name.as_str() {
                "True" => Value::Bool(true),
                "False" => Value::Bool(false),
                "None" => Value::None,
                "re" => self.re_compile()?,
                _ => {
                    self.pos = start;
                    return Err(NotLiteral);
                }
            },
            Some(Tok::Op('[')) => Value::List(self.items(']')?),
            Some(Tok::Op('(')) => {
                if self.eat(')') {
                    return Ok(Value::Tuple(vec![]));
                }
                let inner = self.literal()?;
                if self.eat(')') {
                    return Ok(inner);
                }
                if !self.eat(',') {
                    return Err(NotLiteral);
                }
                let mut items = vec![inner];
                items.extend(self.items(')')?);
                Value::Tuple(items)
            }
            Some(Tok::Op('{')) => self.braces()?,
            _ => {
                self.pos = start;
                return Err(NotLiteral);
            }
        };
        Ok(value)
    }

    /// Adjacent string literals, joined.
    fn strings(&mut self, mut joined: Concat) -> Result<Value, NotLiteral> {
        loop {
            match (&mut joined, self.peek()) {
                (Concat::Text(s), Some(Tok::Str(more))) => s.push_str(more),
                (Concat::Bytes(b), Some(Tok::Bytes(more))) => b.extend_from_slice(more),
                (_, Some(Tok::Str(_) | Tok::Bytes(_) | Tok::FString | Tok::Invalid(_))) => return Err(NotLiteral),
                _ => break,
            }
            self.pos += 1;
        }
        Ok(match joined {
            Concat::Text(s) => Value::Str(s),
            Concat::Bytes(b) => Value::Bytes(b),
        })
    }

    /// `re.compile(<string>)` after `re`.
    fn re_compile(&mut self) -> Result<Value, NotLiteral> {
        if !self.eat('.') || self.next() != Some(&Tok::Name("compile".into())) || !self.eat('(') {
            return Err(NotLiteral);
        }
        let pattern = match self.next().cloned() {
            Some(Tok::Str(s)) => self.strings(Concat::Text(s))?,
            _ => return Err(NotLiteral),
        };
        self.eat(',');
        if !self.eat(')') {
            return Err(NotLiteral);
        }
        match pattern {
            Value::Str(s) => Ok(Value::Regex(s)),
            _ => Err(NotLiteral),
        }
    }

    /// Items up to `close`, trailing comma allowed (the opening bracket is read).
    fn items(&mut self, close: char) -> Result<Vec<Value>, NotLiteral> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(items);
            }
            items.push(self.literal()?);
            if !self.eat(',') {
                return if self.eat(close) { Ok(items) } else { Err(NotLiteral) };
            }
        }
    }

    /// A dict or a set, after `{`.
    fn braces(&mut self) -> Result<Value, NotLiteral> {
        if self.eat('}') {
            return Ok(Value::Dict(vec![]));
        }
        let first = self.literal()?;
        if !self.eat(':') {
            let mut items = vec![first];
            if self.eat(',') {
                items.extend(self.items('}')?);
            } else if !self.eat('}') {
                return Err(NotLiteral);
            }
            return Ok(Value::Set(items));
        }
        let mut pairs = vec![(first, self.literal()?)];
        loop {
            if self.eat('}') {
                return Ok(Value::Dict(pairs));
            }
            if !self.eat(',') {
                return Err(NotLiteral);
            }
            if self.eat('}') {
                return Ok(Value::Dict(pairs));
            }
            let key = self.literal()?;
            if !self.eat(':') {
                return Err(NotLiteral);
            }
            pairs.push((key, self.literal()?));
        }
    }
}

enum Concat {
    Text(String),
    Bytes(Vec<u8>),
}

#[cfg(test)]
mod tests {
    use super::Value::*;
    use super::*;

    fn one(src: &str) -> Value {
        let m = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert!(m.skipped.is_empty(), "{src:?}: skipped {:?}", m.skipped);
        assert_eq!(m.assignments.len(), 1, "{src:?}");
        m.assignments.into_iter().next().unwrap().value
    }

    fn skipped(src: &str) -> Skipped {
        let m = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert!(m.assignments.is_empty(), "{src:?}: read {:?}", m.assignments);
        assert_eq!(m.skipped.len(), 1, "{src:?}: {:?}", m.skipped);
        m.skipped.into_iter().next().unwrap()
    }

    fn s(text: &str) -> Value {
        Str(text.into())
    }

    #[test]
    fn strings() {
        for (src, want) in [
            ("A = 'x'", "x"),
            ("A = \"x\"", "x"),
            ("A = '''a\n'b'\nc'''", "a\n'b'\nc"),
            ("A = \"\"\"a\"\"b\"\"\"", "a\"\"b"),
            ("A = r'\\d+\\.x'", "\\d+\\.x"),
            ("A = R\"\\n\"", "\\n"),
            ("A = u'caf\\xe9'", "café"),
            ("A = 'a' \"b\" '''c'''", "abc"),
            ("A = ('a'\n     'b')", "ab"),
            ("A = 'a' \\\n    'b'", "ab"),
            ("A = '\\t\\n\\\\\\'\\\"\\101\\x41\\u00e9\\U0001F600\\0'", "\t\n\\'\"AAé😀\0"),
            ("A = 'unknown \\d escape'", "unknown \\d escape"),
            ("A = 'line \\\ncontinued'", "line continued"),
            ("A = 'it''s'", "its"),
            ("A = '#not a comment' # a comment", "#not a comment"),
            ("A = ''", ""),
            ("A = ''''''", ""),
        ] {
            assert_eq!(one(src), s(want), "{src:?}");
        }
        assert_eq!(one("A = b'\\x00\\xff' b'z'"), Bytes(vec![0, 255, b'z']));
        assert_eq!(one("A = rb'\\x'"), Bytes(b"\\x".to_vec()));
    }

    #[test]
    fn numbers_and_constants() {
        for (src, want) in [
            ("A = 0", Int(0)),
            ("A = 1_000_000", Int(1_000_000)),
            ("A = -5", Int(-5)),
            ("A = - -5", Int(5)),
            ("A = +7", Int(7)),
            ("A = 0x1F", Int(31)),
            ("A = 0o17", Int(15)),
            ("A = 0b101", Int(5)),
            ("A = 0_0", Int(0)),
            ("A = 75e6", Float(75e6)),
            ("A = 1.5", Float(1.5)),
            ("A = .5", Float(0.5)),
            ("A = 5.", Float(5.0)),
            ("A = -1.5e-3", Float(-1.5e-3)),
            ("A = 1_0.5_0", Float(10.5)),
            ("A = True", Bool(true)),
            ("A = False", Bool(false)),
            ("A = None", None),
        ] {
            assert_eq!(one(src), want, "{src:?}");
        }
        for bad in ["A = 0755", "A = 1__0", "A = 1_", "A = 0x", "A = 1e", "A = 1.2.3", "A = 3j", "A = 0xZZ"] {
            assert!(skipped(bad).reason.starts_with("not a literal"), "{bad:?}");
        }
        assert!(skipped("A = 1 << 200").reason.starts_with("not a literal"));
        assert!(skipped("A = 99999999999999999999999999999999999999999").reason.contains("too large"));
    }

    #[test]
    fn containers() {
        assert_eq!(one("A = []"), List(vec![]));
        assert_eq!(one("A = ()"), Tuple(vec![]));
        assert_eq!(one("A = {}"), Dict(vec![]));
        assert_eq!(one("A = (1)"), Int(1));
        assert_eq!(one("A = (1,)"), Tuple(vec![Int(1)]));
        assert_eq!(one("A = 1, 2,"), Tuple(vec![Int(1), Int(2)]));
        assert_eq!(one("A = {1, 'a',}"), Set(vec![Int(1), s("a")]));
        assert_eq!(
            one("A = [\n    'a',  # first\n    ('b', -1),\n    {'k': [None, {}]},\n]\n"),
            List(vec![s("a"), Tuple(vec![s("b"), Int(-1)]), Dict(vec![(s("k"), List(vec![None, Dict(vec![])]))])])
        );
        assert_eq!(
            one("A = [\n  'x',\n  re.compile(r'.*\\.example\\.com'),\n]"),
            List(vec![s("x"), Regex(".*\\.example\\.com".into())])
        );
        for bad in ["A = [1 2]", "A = {1: }", "A = {1: 2 3}", "A = (1 2)", "A = [*x]", "A = {**d}", "A = [,]"] {
            assert!(skipped(bad).reason.starts_with("not a literal"), "{bad:?}");
        }
    }

    #[test]
    fn statements_and_what_is_skipped() {
        let src = "\
# a comment
import os
from x import y
A = 1; B = 'two'
C = os.environ['HOME']
D = 24 * 60 * 60
E = f'{A}'
F = 'a' f'b'
if A:
    G = 1
    H = 2
I = 3
  J = 4
K: int = 5
L += 1
M = N = 6
print('hello')
O = [x for x in 'ab']
P = lambda p: p
Q = re.compile('a', re.I)
R = True
";
        let m = parse(src).unwrap();
        let read: Vec<(&str, usize)> = m.assignments.iter().map(|a| (a.name.as_str(), a.line)).collect();
        assert_eq!(read, [("A", 4), ("B", 4), ("I", 12), ("R", 21)]);
        let skipped: Vec<(usize, usize, &str)> =
            m.skipped.iter().map(|s| (s.line, s.last_line, s.name.as_deref().unwrap_or("-"))).collect();
        assert_eq!(
            skipped,
            [
                (2, 2, "-"),
                (3, 3, "-"),
                (5, 5, "C"),
                (6, 6, "D"),
                (7, 7, "E"),
                (8, 8, "F"),
                (9, 11, "-"),
                (13, 13, "-"),
                (14, 14, "-"),
                (15, 15, "-"),
                (16, 16, "M"),
                (17, 17, "-"),
                (18, 18, "O"),
                (19, 19, "P"),
                (20, 20, "Q"),
            ]
        );
        assert!(m.skipped[0].reason.contains("import"));
        assert!(m.skipped[2].reason.contains("`os`"), "{}", m.skipped[2].reason);
        assert!(m.skipped[4].reason.contains("f-string"), "{}", m.skipped[4].reason);
        assert!(m.skipped[6].reason.contains("block"), "{}", m.skipped[6].reason);
        assert!(m.skipped[7].reason.contains("indentation"), "{}", m.skipped[7].reason);
        assert!(m.skipped.iter().all(|s| s.reason.ends_with("not executed")), "{:?}", m.skipped);
    }

    #[test]
    fn a_block_is_skipped_whole() {
        let m = parse("if X:\n    A = 1\n\n    # c\n    B = 2\nelse:\n    C = 3\nD = 4\n").unwrap();
        assert_eq!(m.assignments.len(), 1);
        assert_eq!(m.assignments[0].name, "D");
        assert_eq!((m.skipped.len(), m.skipped[0].line, m.skipped[0].last_line), (1, 1, 7));
    }

    #[test]
    fn line_endings_and_bom() {
        let m = parse("\u{feff}A = 1\r\nB = '''x\r\ny'''\rC = 3").unwrap();
        let values: Vec<_> = m.assignments.iter().map(|a| (a.name.as_str(), a.value.clone(), a.line)).collect();
        assert_eq!(values, [("A", Int(1), 1), ("B", s("x\ny"), 2), ("C", Int(3), 4)]);
    }

    #[test]
    fn hostile_input_is_an_error_with_its_line_or_skipped() {
        for (src, line, what) in [
            ("A = 1\nB = 'abc\nC = 2", 2, "unterminated string"),
            ("A = '''abc\n\n", 1, "unterminated string"),
            ("A = 'abc\\", 1, "unterminated string"),
            ("A = [1,\n2,\n", 1, "`[` is never closed"),
            ("A = (1]\n", 1, "does not close"),
            ("\n\nA = 1)\n", 3, "closes nothing"),
        ] {
            let err = parse(src).unwrap_err();
            assert_eq!(err.line, line, "{src:?}: {err}");
            assert!(err.message.contains(what), "{src:?}: {err}");
        }
        let deep = format!("A = {}1{}\nB = 2\n", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let m = parse(&deep).unwrap();
        assert_eq!(m.assignments.len(), 1, "B is still read");
        assert!(m.skipped[0].reason.contains("nested"), "{:?}", m.skipped);
        let ok = format!("A = {}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(matches!(one(&ok), List(_)));
        // Far deeper than any stack would survive recursively: read flat, then skipped.
        let deeper = format!("A = {}{}", "(".repeat(200_000), ")".repeat(200_000));
        assert!(parse(&deeper).unwrap().skipped[0].reason.contains("nested"));
        let signs = format!("A = {}1", "-".repeat(100_000));
        assert_eq!(one(&signs), Int(1));
        let huge = "#".repeat(MAX_BYTES + 1);
        assert!(parse(&huge).unwrap_err().message.contains("larger than"));
        assert!(skipped("A = '\\N{BULLET}'").reason.contains("\\N"));
        assert!(skipped("A = '\\ud800'").reason.contains("surrogate"));
        assert!(skipped("A = '\\x4'").reason.contains("truncated"));
        assert!(skipped("A = b'é'").reason.contains("ASCII"));
        assert!(skipped("A = b'a' 'b'").reason.starts_with("not a literal"));
        assert!(skipped("A =").reason.contains("nothing after"));
        assert!(skipped("A = 1 \\ 2").reason.starts_with("not a literal"));
    }

    #[test]
    fn python_equality() {
        assert!(Float(75e6).same(&Int(75_000_000)));
        assert!(Bool(true).same(&Int(1)));
        assert!(List(vec![s("a")]).same(&Tuple(vec![s("a")])));
        assert!(!s("1").same(&Int(1)));
        assert!(!None.same(&Bool(false)));
        assert!(Set(vec![Int(1), Int(2)]).same(&Set(vec![Int(2), Int(1)])));
    }
}
