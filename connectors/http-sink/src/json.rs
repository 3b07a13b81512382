//! Whether bytes are one JSON text (RFC 8259), checked without building anything: UTF-8 first
//! (the standard library's check), then one pass over the structure in which the bodies of
//! strings, where most of a record's bytes are, are skipped eight bytes at a time. It accepts
//! exactly what `serde_json` accepts (the tests compare the two), at a fraction of the cost of
//! parsing into `IgnoredAny`: that parse was a third of the sink's time per record.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `word` is `byte`.
fn has_byte(word: u64, byte: u8) -> bool {
    let x = word ^ (ONES * u64::from(byte));
    (x.wrapping_sub(ONES) & !x & HIGHS) != 0
}

/// Whether any byte of `word` is below 0x20 (a control character, not allowed in a string).
fn has_control(word: u64) -> bool {
    (word.wrapping_sub(ONES * 0x20) & !word & HIGHS) != 0
}

/// Whether `bytes` is exactly one JSON value, with whitespace around it allowed.
pub fn is_json(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok() && Scanner { bytes, at: 0 }.document()
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn document(&mut self) -> bool {
        // Open containers, innermost last: `true` for an object. A heap stack, not recursion, so
        // nesting is bounded by the value's size only, as `serde_json` skips an `IgnoredAny`.
        let mut stack: Vec<bool> = Vec::new();
        self.skip_whitespace();
        loop {
            // A value is expected here.
            match self.peek() {
                Some(b'{') => {
                    self.at += 1;
                    self.skip_whitespace();
                    if self.eat(b'}') {
                        if !self.after_value(&mut stack) {
                            return false;
                        }
                    } else {
                        if !self.key() {
                            return false;
                        }
                        stack.push(true);
                        self.skip_whitespace();
                        continue;
                    }
                }
                Some(b'[') => {
                    self.at += 1;
                    self.skip_whitespace();
                    if self.eat(b']') {
                        if !self.after_value(&mut stack) {
                            return false;
                        }
                    } else {
                        stack.push(false);
                        continue;
                    }
                }
                Some(b'"') => {
                    if !self.string() || !self.after_value(&mut stack) {
                        return false;
                    }
                }
                Some(b'-' | b'0'..=b'9') => {
                    if !self.number() || !self.after_value(&mut stack) {
                        return false;
                    }
                }
                Some(b't') => {
                    if !self.literal(b"true") || !self.after_value(&mut stack) {
                        return false;
                    }
                }
                Some(b'f') => {
                    if !self.literal(b"false") || !self.after_value(&mut stack) {
                        return false;
                    }
                }
                Some(b'n') => {
                    if !self.literal(b"null") || !self.after_value(&mut stack) {
                        return false;
                    }
                }
                _ => return false,
            }
            if stack.is_empty() {
                self.skip_whitespace();
                return self.at == self.bytes.len();
            }
            // `after_value` consumed a comma: the next value (an object's after its key).
            self.skip_whitespace();
        }
    }

    /// After a value: close containers and consume a comma (and, in an object, the next key), so
    /// the next value can be read; or the document ends (empty stack).
    fn after_value(&mut self, stack: &mut Vec<bool>) -> bool {
        loop {
            let Some(&object) = stack.last() else { return true };
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    if object {
                        self.skip_whitespace();
                        return self.key();
                    }
                    return true;
                }
                Some(b'}') if object => {
                    self.at += 1;
                    stack.pop();
                }
                Some(b']') if !object => {
                    self.at += 1;
                    stack.pop();
                }
                _ => return false,
            }
            if stack.is_empty() {
                return true;
            }
        }
    }

    /// A key and its colon.
    fn key(&mut self) -> bool {
        if self.peek() != Some(b'"') || !self.string() {
            return false;
        }
        self.skip_whitespace();
        self.eat(b':')
    }

    fn string(&mut self) -> bool {
        self.at += 1; // the opening quote
        loop {
            // Eight bytes at a time while none is a quote, a backslash or a control character.
            while let Some(chunk) = self.bytes.get(self.at..self.at + 8) {
                let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
                if has_byte(word, b'"') || has_byte(word, b'\\') || has_control(word) {
                    break;
                }
                self.at += 8;
            }
            match self.peek() {
                None => return false,
                Some(b'"') => {
                    self.at += 1;
                    return true;
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 1,
                        Some(b'u') => {
                            let hex = self.bytes.get(self.at + 1..self.at + 5);
                            if !hex.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                                return false;
                            }
                            self.at += 5;
                        }
                        _ => return false,
                    }
                }
                Some(byte) if byte < 0x20 => return false,
                Some(_) => self.at += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> bool {
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return false,
        }
        if self.eat(b'.') && self.digits() == 0 {
            return false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.bytes.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_accepts(bytes: &[u8]) -> bool {
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    }

    #[rustfmt::skip]
    const CASES: &[&str] = &[
        "{}", "[]", "0", "-0", "1.5e10", "-1.25E-3", "1e+2", "\"\"", "true", "false", "null", " {\"a\" : [1, 2, {\"b\": null}] } ",
        "{\"a\":1,\"b\":[true,false],\"c\":{\"d\":\"e\\n\\u00e9\\\"\"}}", "[[[[]]]]", "\"a long string without escapes\"",
        "\"é ü 漢字\"", "[1,2,3,4,5,6,7,8,9,10]", "{\"k\":\"0123456789abcdef0123456789abcdef\"}",
        // Refused:
        "", " ", "{", "}", "[", "]", "{,}", "[,]", "[1,]", "{\"a\":1,}", "{\"a\"}", "{\"a\":}", "{a:1}", "{1:1}",
        "01", "1.", ".5", "-", "1e", "1e+", "+1", "tru", "nul", "falsey", "\"unterminated", "\"bad \\x escape\"",
        "\"\\u12\"", "\"\\u12g4\"", "\"tab\there\"", "[1 2]", "{\"a\" 1}", "1 2", "[]]", "{}}", "[}", "{]", "\"a\"\"b\"",
        "[\"a\",]", "{\"a\":[1,{\"b\":2]}}", "nulll", "[1,,2]", "\"ends with backslash\\", "\"\\",
    ];

    #[test]
    fn agrees_with_serde_json() {
        for case in CASES {
            assert_eq!(is_json(case.as_bytes()), serde_accepts(case.as_bytes()), "{case:?}");
        }
        assert!(!is_json(&[b'"', 0xff, b'"']), "not UTF-8");
        assert!(!is_json(b"\"a\x01b\""), "a control character in a string");
    }

    #[test]
    fn agrees_with_serde_json_on_every_cut_of_a_document() {
        let document = br#"{"id":12,"name":"a \"quoted\" name with \u00e9 and more text to span words","tags":["x","y"],"n":-3.5e2,"ok":true,"none":null,"deep":[[{"a":[]}]]}"#;
        for end in 0..=document.len() {
            let cut = &document[..end];
            assert_eq!(is_json(cut), serde_accepts(cut), "{:?}", String::from_utf8_lossy(cut));
        }
        // One byte changed at each position, to each of a few troublemakers.
        for position in 0..document.len() {
            for byte in [b'"', b'\\', b',', b'}', b' ', 0x01] {
                let mut changed = document.to_vec();
                changed[position] = byte;
                assert_eq!(is_json(&changed), serde_accepts(&changed), "{:?}", String::from_utf8_lossy(&changed));
            }
        }
    }

    #[test]
    fn deep_nesting_is_accepted_as_serde_json_skips_it() {
        let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for depth in [1, 127, 128, 129, 100_000] {
            let text = deep(depth);
            assert_eq!(is_json(text.as_bytes()), serde_accepts(text.as_bytes()), "depth {depth}");
        }
    }

    #[test]
    fn word_tricks_find_their_bytes() {
        let word = |bytes: &[u8; 8]| u64::from_le_bytes(*bytes);
        assert!(has_byte(word(b"abcdefg\""), b'"'));
        assert!(!has_byte(word(b"abcdefgh"), b'"'));
        assert!(has_control(word(b"abc\ndefg")));
        assert!(!has_control(word(b"abc defg")));
        assert!(!has_control(word(&[0x80, 0xc3, 0xa9, b'a', b'b', b'c', b'd', b'e'])));
    }
}
