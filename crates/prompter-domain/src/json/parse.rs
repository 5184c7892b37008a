//! Strict RFC 8259 parser producing [`Json`].

use std::collections::hash_map::{Entry, HashMap};

use super::write::word_needs_escape;
use super::{Json, Limits, MAX_INT_DIGITS};
use crate::error::DomainError;

/// Parses one JSON text (any JSON value at the top level).
///
/// Strict RFC 8259: no comments, no trailing commas, no `NaN`/`Infinity`
/// (reported as `non_finite_number`, as are numbers such as `1e400` that
/// overflow `f64`). The input must be UTF-8; one leading UTF-8 byte-order
/// mark is skipped, as Python's `json.loads(bytes)` (and so V7) did. Escapes
/// are decoded, surrogate pairs combined, and a lone surrogate is rejected
/// (`lone_surrogate`). Duplicate keys: the last value wins, at the position of
/// the first occurrence. `limits` are enforced while parsing.
///
/// Errors inside a value carry the dotted path of that value
/// ([`DomainError::field`]), e.g. `inference_params.temperature`.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Json, DomainError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DomainError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: start,
        limits,
        values: Vec::new(),
        members: Vec::new(),
    };
    parser.skip_ws();
    let value = parser.value(0).map_err(finish)?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(finish(
            parser.syntax("unexpected characters after the JSON value"),
        ));
    }
    Ok(value)
}

/// One step of the path to the value being parsed when an error occurred.
enum Seg {
    Key(String),
    Index(usize),
}

/// Parser error while unwinding: the error plus the path, innermost first.
struct PErr {
    err: DomainError,
    path: Vec<Seg>,
}

type PResult<T> = Result<T, Box<PErr>>;

#[allow(clippy::boxed_local)] // it arrives boxed from `map_err`
fn finish(e: Box<PErr>) -> DomainError {
    let PErr { mut err, path } = *e;
    if !path.is_empty() {
        let mut field = String::new();
        for (i, seg) in path.iter().rev().enumerate() {
            if i > 0 {
                field.push('.');
            }
            match seg {
                Seg::Key(k) => field.push_str(k),
                Seg::Index(n) => field.push_str(&n.to_string()),
            }
        }
        err.set_field(field);
    }
    err
}

fn fail<T>(err: DomainError) -> PResult<T> {
    Err(Box::new(PErr {
        err,
        path: Vec::new(),
    }))
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    limits: &'a Limits,
    /// Scratch stack of array items being parsed, shared by all nesting
    /// levels, so each finished array is allocated once at its exact size.
    values: Vec<Json>,
    /// The same for object members.
    members: Vec<(String, Json)>,
}

impl Parser<'_> {
    fn syntax(&self, reason: &'static str) -> Box<PErr> {
        Box::new(PErr {
            err: DomainError::InvalidJson {
                offset: self.pos,
                reason,
                field: None,
            },
            path: Vec::new(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> PResult<Json> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Json::Str),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'N') if self.bytes[self.pos..].starts_with(b"NaN") => self.non_finite(),
            Some(b'I') if self.bytes[self.pos..].starts_with(b"Infinity") => self.non_finite(),
            Some(_) => Err(self.syntax("expected a JSON value")),
            None => Err(self.syntax("unexpected end of input")),
        }
    }

    fn non_finite<T>(&self) -> PResult<T> {
        fail(DomainError::NonFiniteNumber {
            offset: self.pos,
            field: None,
        })
    }

    fn literal(&mut self, word: &'static str, value: Json) -> PResult<Json> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.syntax("invalid literal"))
        }
    }

    fn enter(&self, depth: usize) -> PResult<()> {
        if depth > self.limits.max_depth {
            return fail(DomainError::NestingTooDeep {
                max: self.limits.max_depth,
                field: None,
            });
        }
        Ok(())
    }

    fn too_long<T>(&self) -> PResult<T> {
        fail(DomainError::ListTooLong {
            max: self.limits.max_list_len,
            field: None,
        })
    }

    fn array(&mut self, depth: usize) -> PResult<Json> {
        self.enter(depth)?;
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(Vec::new()));
        }
        let base = self.values.len();
        loop {
            let count = self.values.len() - base;
            if count == self.limits.max_list_len {
                return self.too_long();
            }
            match self.value(depth) {
                Ok(v) => self.values.push(v),
                Err(mut e) => {
                    e.path.push(Seg::Index(count));
                    return Err(e);
                }
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(self.values.drain(base..).collect()));
                }
                _ => return Err(self.syntax("expected ',' or ']' in array")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> PResult<Json> {
        self.enter(depth)?;
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(Vec::new()));
        }
        let base = self.members.len();
        loop {
            if self.members.len() - base == self.limits.max_list_len {
                return self.too_long();
            }
            if self.peek() != Some(b'"') {
                return Err(self.syntax("expected a string key in object"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.syntax("expected ':' after object key"));
            }
            self.pos += 1;
            self.skip_ws();
            match self.value(depth) {
                Ok(v) => self.members.push((key, v)),
                Err(mut e) => {
                    e.path.push(Seg::Key(key));
                    return Err(e);
                }
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    let mut members: Vec<(String, Json)> = self.members.drain(base..).collect();
                    dedup_keys(&mut members);
                    return Ok(Json::Object(members));
                }
                _ => return Err(self.syntax("expected ',' or '}' in object")),
            }
        }
    }

    fn string(&mut self) -> PResult<String> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.pos += 1;
        let start = self.pos;
        // Fast path: no escapes. Skip 8 plain bytes at a time.
        self.skip_plain_words();
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'"' => {
                    self.check_len(self.pos - start)?;
                    let s = self.text[start..self.pos].to_owned();
                    self.pos += 1;
                    return Ok(s);
                }
                b'\\' => break,
                0..=0x1f => return Err(self.syntax("control character in string")),
                _ => self.pos += 1,
            }
        }
        let mut out = String::with_capacity(self.pos - start + 16);
        out.push_str(&self.text[start..self.pos]);
        loop {
            let run = self.pos;
            self.skip_plain_words();
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    self.check_len(out.len())?;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.escape(&mut out)?;
                    self.check_len(out.len())?;
                }
                Some(_) => return Err(self.syntax("control character in string")),
                None => return Err(self.syntax("unterminated string")),
            }
        }
    }

    /// Advances over whole 8-byte words containing no `"`, `\\` or control
    /// byte.
    fn skip_plain_words(&mut self) {
        while let Some(word) = self.bytes.get(self.pos..self.pos + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            if word_needs_escape(word) {
                return;
            }
            self.pos += 8;
        }
    }

    fn check_len(&self, len: usize) -> PResult<()> {
        if len > self.limits.max_string_bytes {
            return fail(DomainError::StringTooLong {
                max: self.limits.max_string_bytes,
                field: None,
            });
        }
        Ok(())
    }

    fn escape(&mut self, out: &mut String) -> PResult<()> {
        let at = self.pos;
        self.pos += 1;
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let hi = self.hex4()?;
                let cp = match hi {
                    0xD800..=0xDBFF => {
                        if !self.bytes[self.pos..].starts_with(b"\\u") {
                            return self.lone_surrogate(at);
                        }
                        self.pos += 2;
                        let lo = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return self.lone_surrogate(at);
                        }
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return self.lone_surrogate(at),
                    _ => hi,
                };
                // Every non-surrogate code point is a valid char.
                out.push(char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER));
                return Ok(());
            }
            _ => return Err(self.syntax("invalid escape in string")),
        };
        self.pos += 1;
        out.push(c);
        Ok(())
    }

    fn lone_surrogate<T>(&self, at: usize) -> PResult<T> {
        fail(DomainError::LoneSurrogate {
            offset: at,
            field: None,
        })
    }

    fn hex4(&mut self) -> PResult<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.syntax("invalid \\u escape")),
            };
            v = v * 16 + u32::from(d);
            self.pos += 1;
        }
        Ok(v)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> PResult<Json> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
            if self.bytes[self.pos..].starts_with(b"Infinity") {
                self.pos = start;
                return self.non_finite();
            }
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.syntax("invalid number")),
        }
        let int_end = self.pos;
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.syntax("expected digits after '.'"));
            }
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.syntax("expected digits in exponent"));
            }
            is_float = true;
        }
        let lexeme = &self.text[start..self.pos];
        if is_float {
            match lexeme.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Json::Float(x)),
                Ok(_) => fail(DomainError::NonFiniteNumber {
                    offset: start,
                    field: None,
                }),
                Err(_) => Err(self.syntax("invalid number")),
            }
        } else {
            let negative = self.bytes[start] == b'-';
            if int_end - start - usize::from(negative) > MAX_INT_DIGITS {
                return fail(DomainError::NumberTooLong {
                    offset: start,
                    max: MAX_INT_DIGITS,
                    field: None,
                });
            }
            if lexeme == "-0" {
                Ok(Json::Int("0".to_owned()))
            } else {
                Ok(Json::Int(lexeme.to_owned()))
            }
        }
    }
}

/// Python `dict` semantics for duplicate keys: the first occurrence keeps its
/// position and takes the value of the last occurrence.
fn dedup_keys(members: &mut Vec<(String, Json)>) {
    if members.len() < 2 {
        return;
    }
    // (later index, index of first occurrence)
    let mut moves: Vec<(usize, usize)> = Vec::new();
    if members.len() <= 16 {
        for i in 1..members.len() {
            if let Some(j) = members[..i].iter().position(|(k, _)| *k == members[i].0) {
                moves.push((i, j));
            }
        }
    } else {
        let mut first: HashMap<&str, usize> = HashMap::with_capacity(members.len());
        for (i, (k, _)) in members.iter().enumerate() {
            match first.entry(k.as_str()) {
                Entry::Occupied(e) => moves.push((i, *e.get())),
                Entry::Vacant(e) => {
                    e.insert(i);
                }
            }
        }
    }
    if moves.is_empty() {
        return;
    }
    let mut removed = vec![false; members.len()];
    for &(later, first) in &moves {
        let value = std::mem::take(&mut members[later].1);
        members[first].1 = value;
        removed[later] = true;
    }
    let mut i = 0;
    members.retain(|_| {
        let keep = !removed[i];
        i += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Json, DomainError> {
        parse(s.as_bytes(), &Limits::default())
    }

    fn code(s: &str) -> &'static str {
        p(s).unwrap_err().code()
    }

    fn obj(members: &[(&str, Json)]) -> Json {
        Json::Object(
            members
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn scalars() {
        assert_eq!(p("null").unwrap(), Json::Null);
        assert_eq!(p(" true ").unwrap(), Json::Bool(true));
        assert_eq!(p("false").unwrap(), Json::Bool(false));
        assert_eq!(p("\"a\"").unwrap(), Json::Str("a".into()));
        assert_eq!(p("\t\r\n 0 \n").unwrap(), Json::Int("0".into()));
    }

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(
            p("1000000000000000000000000000000").unwrap(),
            Json::Int("1000000000000000000000000000000".into())
        );
        assert_eq!(p("-12").unwrap(), Json::Int("-12".into()));
        assert_eq!(p("-0").unwrap(), Json::Int("0".into()));
        assert_eq!(p("1.0").unwrap(), Json::Float(1.0));
        assert_eq!(p("1e2").unwrap(), Json::Float(100.0));
        assert_eq!(p("1E+2").unwrap(), Json::Float(100.0));
        assert_eq!(p("0e0").unwrap(), Json::Float(0.0));
        let neg_zero = p("-0.0").unwrap();
        assert!(matches!(neg_zero, Json::Float(x) if x == 0.0 && x.is_sign_negative()));
        assert_eq!(p("1e-400").unwrap(), Json::Float(0.0));
    }

    #[test]
    fn number_syntax_errors() {
        for bad in [
            "01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "1.5.2", "--1", "- 1",
        ] {
            assert_eq!(code(bad), "invalid_json", "{bad}");
        }
    }

    #[test]
    fn non_finite_rejected() {
        for bad in ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "[1,NaN]"] {
            assert_eq!(code(bad), "non_finite_number", "{bad}");
        }
        let e = p(r#"{"inference_params":{"t":[0,1e999]}}"#).unwrap_err();
        assert_eq!(e.field(), Some("inference_params.t.1"));
    }

    #[test]
    fn int_digit_limit_matches_python() {
        let ok = "9".repeat(MAX_INT_DIGITS);
        assert!(p(&ok).is_ok());
        assert!(p(&format!("-{ok}")).is_ok());
        assert_eq!(code(&format!("{ok}9")), "number_too_long");
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            p(r#""a\"b\\c\/d\b\f\n\r\t\u00e9\u4E2D""#).unwrap(),
            Json::Str("a\"b\\c/d\u{8}\u{c}\n\r\té中".into())
        );
        assert_eq!(
            p(r#""\ud83d\ude00\uD83D\uDC4D""#).unwrap(),
            Json::Str("😀👍".into())
        );
        assert_eq!(p("\"😀 raw é\"").unwrap(), Json::Str("😀 raw é".into()));
        assert_eq!(p(r#""\u0000""#).unwrap(), Json::Str("\0".into()));
    }

    #[test]
    fn lone_surrogates_rejected() {
        for bad in [
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800x""#,
            r#""\ud800\u0041""#,
            r#""\ud800\ud800""#,
            r#"{"k\udfff":1}"#,
        ] {
            assert_eq!(code(bad), "lone_surrogate", "{bad}");
        }
    }

    #[test]
    fn string_syntax_errors() {
        for bad in [
            "\"a",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "\"a\nb\"",
            "\"\t\"",
            "'a'",
        ] {
            assert_eq!(code(bad), "invalid_json", "{bad:?}");
        }
    }

    #[test]
    fn structure_errors() {
        for bad in [
            "",
            " ",
            "[",
            "[1,]",
            "[,1]",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{a:1}",
            "[1 2]",
            "{} {}",
            "nul",
            "truex",
            "// c\n1",
            "[1]]",
        ] {
            assert_eq!(code(bad), "invalid_json", "{bad:?}");
        }
    }

    #[test]
    fn utf8_and_bom() {
        assert_eq!(
            parse(b"\"\xff\"", &Limits::default()).unwrap_err(),
            DomainError::InvalidUtf8 { offset: 1 }
        );
        // Overlong / CESU-8 encoded surrogate.
        assert_eq!(
            parse(b"\"\xed\xa0\x80\"", &Limits::default())
                .unwrap_err()
                .code(),
            "invalid_utf8"
        );
        assert_eq!(
            parse(b"\xef\xbb\xbf{}", &Limits::default()).unwrap(),
            Json::Object(vec![])
        );
        assert_eq!(code("\u{feff}\u{feff}{}"), "invalid_json");
    }

    #[test]
    fn duplicate_keys_last_wins_first_position() {
        let j = p(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(
            j,
            obj(&[("a", Json::Int("3".into())), ("b", Json::Int("2".into()))])
        );
        let j = p(r#"{"a":1,"a":2,"a":{"x":1,"x":null}}"#).unwrap();
        assert_eq!(j, obj(&[("a", obj(&[("x", Json::Null)]))]));
        // Large objects take the hash-map path.
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"k{}\":{},", i % 20, i));
        }
        text.push_str("\"k0\":\"last\"}");
        let Json::Object(members) = p(&text).unwrap() else {
            panic!()
        };
        assert_eq!(members.len(), 20);
        assert_eq!(members[0], ("k0".to_owned(), Json::Str("last".into())));
        assert_eq!(members[19], ("k19".to_owned(), Json::Int("39".into())));
    }

    #[test]
    fn depth_limit() {
        let limits = Limits::default();
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(parse(ok.as_bytes(), &limits).is_ok());
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(
            parse(deep.as_bytes(), &limits).unwrap_err().code(),
            "nesting_too_deep"
        );
        let huge = "[".repeat(1_000_000);
        assert_eq!(
            parse(huge.as_bytes(), &limits).unwrap_err().code(),
            "nesting_too_deep"
        );
        let e = p(&format!("{{\"a\":{{\"b\":{}}}}}", "[".repeat(70))).unwrap_err();
        // The 65th container is the 63rd array, reached through 62 indexes.
        assert_eq!(e.field(), Some(format!("a.b{}", ".0".repeat(62)).as_str()));
    }

    #[test]
    fn size_limits() {
        let limits = Limits {
            max_depth: 8,
            max_string_bytes: 4,
            max_list_len: 3,
        };
        assert!(parse(br#"["abcd","\u00e9\u00e9"]"#, &limits).is_ok());
        let e = parse(br#"{"k":["abcde"]}"#, &limits).unwrap_err();
        assert_eq!(e.code(), "string_too_long");
        assert_eq!(e.field(), Some("k.0"));
        assert_eq!(
            parse(br#"["ab\n\u00e9"]"#, &limits).unwrap_err().code(),
            "string_too_long"
        );
        assert_eq!(
            parse(br#"{"abcde":1}"#, &limits).unwrap_err().code(),
            "string_too_long"
        );
        assert!(parse(b"[1,2,3]", &limits).is_ok());
        assert_eq!(
            parse(b"[1,2,3,4]", &limits).unwrap_err().code(),
            "list_too_long"
        );
        assert_eq!(
            parse(br#"{"a":1,"b":2,"c":3,"d":4}"#, &limits)
                .unwrap_err()
                .code(),
            "list_too_long"
        );
    }
}
