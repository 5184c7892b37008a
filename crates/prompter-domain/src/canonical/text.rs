//! The text rule and Python's whitespace set.

/// `true` for exactly the characters Python's `str.isspace()` (and so
/// `str.strip()`) treats as whitespace: U+0009–U+000D, U+001C–U+001F, U+0020,
/// U+0085, U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F,
/// U+3000. Unlike [`char::is_whitespace`] this includes U+001C–U+001F; like
/// it, it excludes U+180E and U+200B.
pub fn is_py_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{d}'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Python's `s.strip()`: removes leading and trailing [`is_py_whitespace`]
/// characters.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_whitespace)
}

/// The contract's text rule: CRLF → LF, lone CR → LF, every run of spaces and
/// tabs → one space (other whitespace kept), then Python `str.strip()`.
pub fn normalize_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    normalize_text_into(s, &mut out);
    out
}

/// [`normalize_text`] appending to `out`.
///
/// Stripping first is equivalent to stripping last: the replacements only
/// turn whitespace into whitespace, so they cannot change what the ends are.
pub(crate) fn normalize_text_into(s: &str, out: &mut String) {
    let t = py_strip(s);
    let b = t.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\r' => {
                out.push_str(&t[start..i]);
                out.push('\n');
                i += 1;
                if b.get(i) == Some(&b'\n') {
                    i += 1;
                }
                start = i;
            }
            b' ' | b'\t' => {
                let run = i;
                while let Some(b' ' | b'\t') = b.get(i) {
                    i += 1;
                }
                if i - run == 1 && b[run] == b' ' {
                    continue;
                }
                out.push_str(&t[start..run]);
                out.push(' ');
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&t[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_set_is_pythons() {
        // python3: [hex(c) for c in range(0x110000) if chr(c).isspace()]
        let python: &[u32] = &[
            0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000,
            0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028,
            0x2029, 0x202f, 0x205f, 0x3000,
        ];
        let ours: Vec<u32> = (0..=0x10ffff)
            .filter_map(char::from_u32)
            .filter(|&c| is_py_whitespace(c))
            .map(u32::from)
            .collect();
        assert_eq!(ours, python);
        assert!(!is_py_whitespace('\u{180e}'));
        assert!(!is_py_whitespace('\u{200b}'));
        assert!(is_py_whitespace('\u{1c}') && !'\u{1c}'.is_whitespace());
    }

    #[test]
    fn text_rule() {
        let cases = [
            ("", ""),
            ("  ", ""),
            ("Hi  {{brand}}\r\n", "Hi {{brand}}"),
            ("a\r\nb\rc\n\rd\r\r\ne", "a\nb\nc\n\nd\n\ne"),
            ("\t a \t\t b  \n  c \t", "a b \n c"),
            ("a\n\n\nb", "a\n\n\nb"),
            ("a \u{a0} b", "a \u{a0} b"),
            ("a\u{3000}\u{3000}b", "a\u{3000}\u{3000}b"),
            ("\u{1c}\u{1d} x \u{1e}\u{1f}", "x"),
            ("\u{85}\u{a0}x\u{2028}\u{3000}", "x"),
            ("\u{200b} x \u{200b}", "\u{200b} x \u{200b}"),
            ("\u{180e}x\u{180e}", "\u{180e}x\u{180e}"),
            ("\u{b}\u{c}a\u{b}b\u{c}", "a\u{b}b"),
            ("a b", "a b"),
            ("a\tb", "a b"),
            ("x \r\n y", "x \n y"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_text(input), want, "{input:?}");
        }
    }
}
