//! A small, strict JSON reader for the few documents the core reads itself (JWT payloads,
//! stored sessions). It never panics, bounds nesting, and costs far fewer wasm bytes than
//! serde_json. Message bodies on the hot path use the browser's own `JSON` instead.

use std::fmt;

/// Deepest nesting accepted; deeper input is rejected instead of recursing further.
pub const MAX_DEPTH: usize = 64;

/// A parsed JSON value.
#[derive(Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// Any number, as f64.
    Num(f64),
    /// A string, unescaped.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object; keys in document order (a repeated key: the last one wins in [`Json::get`]).
    Obj(Vec<(String, Json)>),
}

impl fmt::Debug for Json {
    // Values can hold secrets (a stored session), so Debug shows only the shape.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Num(_) => f.write_str("<number>"),
            Json::Str(_) => f.write_str("<string>"),
            Json::Arr(a) => f.debug_list().entries(a).finish(),
            Json::Obj(o) => f.debug_map().entries(o.iter().map(|(k, v)| (k, v))).finish(),
        }
    }
}

impl Json {
    /// The member `key` of an object (the last one when repeated), or `None`.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The number inside, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }
}

/// Why a document is not JSON. Carries a position, never the document's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset where reading stopped.
    pub at: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

/// Parses one JSON document (surrounding white space allowed, nothing else after it).
pub fn parse(text: &str) -> Result<Json, JsonError> {
    let mut p = Parser {
        b: text.as_bytes(),
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(v)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> JsonError {
        JsonError { at: self.i, what }
    }
    fn ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn lit(&mut self, word: &'static [u8], v: Json) -> Result<Json, JsonError> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("unknown literal"))
        }
    }
    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.ws();
        match self.peek() {
            None => Err(self.err("unexpected end")),
            Some(b'n') => self.lit(b"null", Json::Null),
            Some(b't') => self.lit(b"true", Json::Bool(true)),
            Some(b'f') => self.lit(b"false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::Str),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(self.err("expected , or ]")),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(members));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.err("expected a string key"));
                    }
                    let k = self.string()?;
                    self.ws();
                    if self.peek() != Some(b':') {
                        return Err(self.err("expected :"));
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    members.push((k, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(members));
                        }
                        _ => return Err(self.err("expected , or }")),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }
    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }
    fn number(&mut self) -> Result<Json, JsonError> {
        // Grammar of RFC 8259; the value is computed without the float parser of core
        // (which costs several KB of wasm): exact for integers up to 2^53, close otherwise.
        let neg = self.peek() == Some(b'-');
        if neg {
            self.i += 1;
        }
        let int_start = self.i;
        let n_int = self.digits();
        if n_int == 0 || (n_int > 1 && self.b[int_start] == b'0') {
            return Err(self.err("bad number"));
        }
        let mut mantissa: f64 = 0.0;
        for &d in &self.b[int_start..self.i] {
            mantissa = mantissa * 10.0 + f64::from(d - b'0');
        }
        let mut exp10: i32 = 0;
        if self.peek() == Some(b'.') {
            self.i += 1;
            let frac_start = self.i;
            if self.digits() == 0 {
                return Err(self.err("bad number"));
            }
            for &d in &self.b[frac_start..self.i] {
                mantissa = mantissa * 10.0 + f64::from(d - b'0');
                exp10 = exp10.saturating_sub(1);
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            let eneg = match self.peek() {
                Some(b'-') => {
                    self.i += 1;
                    true
                }
                Some(b'+') => {
                    self.i += 1;
                    false
                }
                _ => false,
            };
            let e_start = self.i;
            if self.digits() == 0 {
                return Err(self.err("bad number"));
            }
            let mut e: i32 = 0;
            for &d in &self.b[e_start..self.i] {
                e = e.saturating_mul(10).saturating_add(i32::from(d - b'0'));
            }
            exp10 = if eneg {
                exp10.saturating_sub(e)
            } else {
                exp10.saturating_add(e)
            };
        }
        let mut v = mantissa;
        let mut e = exp10.clamp(-400, 400);
        while e > 0 {
            v *= 10.0;
            e -= 1;
        }
        while e < 0 {
            v /= 10.0;
            e += 1;
        }
        Ok(Json::Num(if neg { -v } else { v }))
    }
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.err("bad \\u escape")),
            };
            v = v * 16 + u32::from(d);
            self.i += 1;
        }
        Ok(v)
    }
    fn string(&mut self) -> Result<String, JsonError> {
        self.i += 1; // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(self.err("lone surrogate"));
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("lone surrogate"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(cp).ok_or_else(|| self.err("lone surrogate"))?
                        }
                        _ => return Err(self.err("bad escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0x00..=0x1f => return Err(self.err("control character in string")),
                _ => out.push(c),
            }
        }
        // The input was a &str and escapes were encoded as UTF-8, so this cannot fail;
        // map the impossible case to an error rather than unwrap.
        String::from_utf8(out).map_err(|_| self.err("invalid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shapes_a_jwt_payload_has() {
        let v = parse(
            r#" {"sub":"u-1","exp":1700000000,"iat":1699996400,"amr":[{"method":"password"}],"x":null,"ok":true} "#,
        )
        .unwrap();
        assert_eq!(v.get("sub").and_then(Json::as_str), Some("u-1"));
        assert_eq!(v.get("exp").and_then(Json::as_f64), Some(1_700_000_000.0));
        assert_eq!(v.get("x"), Some(&Json::Null));
        assert_eq!(v.get("ok"), Some(&Json::Bool(true)));
        assert!(matches!(v.get("amr"), Some(Json::Arr(a)) if a.len() == 1));
    }

    #[test]
    fn numbers_follow_the_grammar() {
        assert_eq!(parse("-12.5e1").unwrap(), Json::Num(-125.0));
        assert_eq!(parse("0.25").unwrap(), Json::Num(0.25));
        assert_eq!(parse("9007199254740991").unwrap(), Json::Num(9_007_199_254_740_991.0));
        assert_eq!(parse("1E+2").unwrap(), Json::Num(100.0));
        for bad in ["01", "-", "1.", ".5", "1e", "+1", "1e+"] {
            assert!(parse(bad).is_err(), "{bad} must be rejected");
        }
        // Absurd exponents do not hang or panic.
        assert_eq!(parse("1e999999999").unwrap(), Json::Num(f64::INFINITY));
    }

    #[test]
    fn strings_unescape_including_surrogate_pairs() {
        assert_eq!(
            parse(r#""a\"b\\c\/\n\u00e9\ud83d\ude00""#).unwrap(),
            Json::Str("a\"b\\c/\né😀".into())
        );
        assert!(parse(r#""\ud83d""#).is_err());
        assert!(parse(r#""\udc00""#).is_err());
        assert!(parse("\"a\nb\"").is_err());
        assert!(parse(r#""\x""#).is_err());
    }

    #[test]
    fn rejects_malformed_documents_with_a_position() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\"1}",
            "{\"a\":1,}",
            "nul",
            "[1] x",
            "{'a':1}",
            "\"abc",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.at <= bad.len(), "{bad}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse(&deep).unwrap_err().what, "nested too deeply");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn last_repeated_key_wins_and_debug_hides_values() {
        let v = parse(r#"{"a":"secret-1","a":"secret-2"}"#).unwrap();
        assert_eq!(v.get("a").and_then(Json::as_str), Some("secret-2"));
        let shown = format!("{v:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
