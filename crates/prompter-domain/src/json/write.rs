//! Writing JSON exactly as Python's
//! `json.dumps(..., separators=(",", ":"), ensure_ascii=False)` does.

use std::fmt::Write as _;

use super::Json;

/// For each byte: 0 if written raw, else the letter of its short escape
/// (`\n` → `n`), or `u` for the `\u00XX` form.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Whether any of the 8 bytes in `v` is below 0x20, `"` or `\` (SWAR).
pub(super) fn word_needs_escape(v: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = v.wrapping_sub(ONES * 0x20) & !v;
    let q = v ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let bs = v ^ (ONES * u64::from(b'\\'));
    let backslash = bs.wrapping_sub(ONES) & !bs;
    (below_space | quote | backslash) & HIGH != 0
}

/// Writes `s` as a JSON string literal with Python's escaping: `\"`, `\\`,
/// `\n \r \t \b \f`, other U+0000–U+001F as `\u00XX` (lowercase hex);
/// everything else (U+007F, non-ASCII) raw.
pub(crate) fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        while let Some(word) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            if word_needs_escape(word) {
                break;
            }
            i += 8;
        }
        let Some(&b) = bytes.get(i) else { break };
        let esc = ESCAPE[usize::from(b)];
        if esc == 0 {
            i += 1;
            continue;
        }
        out.push_str(&s[start..i]);
        out.push('\\');
        if esc == b'u' {
            out.push_str("u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push(char::from(esc));
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Writes a finite `x` as Python's `repr(float)`: the shortest digits that
/// round-trip, in positional form with at least one fractional digit
/// (`1.0`, `0.0001`, `1234.5`) when the decimal exponent is in `-4..16`,
/// otherwise in exponent form with a signed, at least two-digit exponent
/// (`1e-05`, `1e+16`, `1.5e+300`). `-0.0` keeps its sign.
pub(crate) fn write_float(out: &mut String, x: f64) {
    if !x.is_finite() {
        // Never produced by the parser; written as Python would.
        out.push_str(if x.is_nan() {
            "NaN"
        } else if x > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        });
        return;
    }
    if x == 0.0 {
        out.push_str(if x.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    // Shortest round-trip digits (Żmij, as serde_json uses), in whatever
    // layout it picks; only the digits and the exponent are kept.
    let mut buf = zmij::Buffer::new();
    let (mut digits, mut n, mut exp) = decompose(buf.format_finite(x.abs()));
    if let Some((even, even_exp)) = half_even_tie(x.abs(), &digits[..n]) {
        n = even.len();
        digits[..n].copy_from_slice(even.as_bytes());
        exp = even_exp;
    }
    if x < 0.0 {
        out.push('-');
    }
    layout(out, &digits[..n], exp);
}

/// Splits a positive decimal such as `544431068535091.6`, `0.0001`,
/// `1342178.0`, `5.9e-7` or `1e16` into its significant digits (no leading
/// or trailing zeros) and the decimal exponent of the first one.
fn decompose(text: &str) -> ([u8; 40], usize, i32) {
    let (mantissa, e) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let mut digits = [b'0'; 40];
    let mut n = 0;
    let mut int_digits = None;
    let mut leading_zeros = 0;
    for &b in mantissa.as_bytes() {
        match b {
            b'.' => int_digits = Some(n + leading_zeros),
            b'0' if n == 0 => leading_zeros += 1,
            b'0'..=b'9' if n < digits.len() => {
                digits[n] = b;
                n += 1;
            }
            _ => {}
        }
    }
    let int_digits = int_digits.unwrap_or(n + leading_zeros) as i32;
    let exp = int_digits - leading_zeros as i32 - 1 + e;
    while n > 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    (digits, n.max(1), exp)
}

/// Python (David Gay's dtoa) and shortest-digit generators such as Rust's
/// std or Żmij agree on the digit count and on the candidate nearest to `x`,
/// but when `x` lies exactly halfway between two shortest candidates Python
/// takes the one with an even last digit while the generator may take the
/// other (e.g. `1059438285926254.25`: Python `...254.2`, Rust std
/// `...254.3`). Such a tie needs the exact decimal expansion of `x` to have
/// exactly one digit more than the shortest form, ending in 5; this returns
/// the even candidate (digits, decimal exponent) when that happens and it
/// differs from `digits`.
fn half_even_tie(x: f64, digits: &[u8]) -> Option<(String, i32)> {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mut m, mut k) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    let shift = m.trailing_zeros();
    m >>= shift;
    k += shift as i32;
    // Exact value = e * 10^scale, with e free of trailing zeros.
    let (mut e, mut scale): (u128, i32) = if k >= 0 {
        if k > 63 {
            return None; // no factor 5: at least 20 significant digits
        }
        (u128::from(m) << k, 0)
    } else {
        if k < -27 {
            return None; // m * 5^-k has more than 18 digits
        }
        (u128::from(m) * 5u128.pow(k.unsigned_abs()), k)
    };
    while e % 10 == 0 {
        e /= 10;
        scale += 1;
    }
    if e % 10 != 5 || e.ilog10() as usize + 1 != digits.len() + 1 {
        return None;
    }
    let down = e / 10;
    let even = if down % 2 == 0 { down } else { down + 1 };
    let even = even.to_string();
    if even.as_bytes() == digits {
        return None;
    }
    let candidate: f64 = format!("{even}e{}", scale + 1).parse().ok()?;
    (candidate == x).then(|| {
        let exp = even.len() as i32 - 1 + scale + 1;
        (even, exp)
    })
}

/// Python's `repr` layout of shortest `digits` with decimal exponent `exp`
/// (value = d.ddd × 10^exp).
fn layout(out: &mut String, digits: &[u8], exp: i32) {
    let push_digits = |out: &mut String, d: &[u8]| {
        for &b in d {
            out.push(char::from(b));
        }
    };
    if !(-4..16).contains(&exp) {
        push_digits(out, &digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            push_digits(out, &digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push('0');
        }
        let _ = write!(out, "{abs}");
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() > int_len {
            push_digits(out, &digits[..int_len]);
            out.push('.');
            push_digits(out, &digits[int_len..]);
        } else {
            push_digits(out, digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
            out.push_str(".0");
        }
    } else {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        push_digits(out, digits);
    }
}

/// Compact JSON in member order (no key sorting), Python style.
pub(crate) fn write_compact(out: &mut String, v: &Json) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Int(digits) => out.push_str(digits),
        Json::Float(x) => write_float(out, *x),
        Json::Str(s) => write_str(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(out, item);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_compact(out, item);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> String {
        let mut s = String::new();
        write_float(&mut s, x);
        s
    }

    fn s(v: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, v);
        out
    }

    #[test]
    #[allow(clippy::excessive_precision)] // exact binary values on purpose
    fn float_repr_matches_python() {
        // Expected values from python3: repr(x)
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (100.0, "100.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (0.7, "0.7"),
            (-2.5, "-2.5"),
            (1e-05, "1e-05"),
            (1.5e-05, "1.5e-05"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (1.5e300, "1.5e+300"),
            (-1.5e300, "-1.5e+300"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (0.30000000000000004, "0.30000000000000004"),
            (1.2345678901234567e-7, "1.2345678901234566e-07"),
            (123456.789, "123456.789"),
            (1e100, "1e+100"),
            (12345678901234.5, "12345678901234.5"),
            // Exact ties between two shortest candidates: Python rounds half
            // to even; shortest-digit generators may round up.
            (1059438285926254.25, "1059438285926254.2"),
            (-1059438285926254.25, "-1059438285926254.2"),
            (1059438285926254.75, "1059438285926254.8"),
        ];
        for &(x, want) in cases {
            assert_eq!(f(x), want, "{x:e}");
        }
    }

    #[test]
    fn decompose_any_layout() {
        let d = |t: &str| {
            let (digits, n, exp) = decompose(t);
            (String::from_utf8(digits[..n].to_vec()).unwrap(), exp)
        };
        assert_eq!(d("544431068535091.6"), ("5444310685350916".into(), 14));
        assert_eq!(d("0.0001"), ("1".into(), -4));
        assert_eq!(d("0.00012"), ("12".into(), -4));
        assert_eq!(d("134217800.0"), ("1342178".into(), 8));
        assert_eq!(d("1.0"), ("1".into(), 0));
        assert_eq!(d("1e16"), ("1".into(), 16));
        assert_eq!(d("1e+16"), ("1".into(), 16));
        assert_eq!(d("5.960464477539062e-7"), ("5960464477539062".into(), -7));
        assert_eq!(d("1.5e300"), ("15".into(), 300));
        assert_eq!(d("5e-324"), ("5".into(), -324));
        assert_eq!(d("100"), ("1".into(), 2));
    }

    #[test]
    fn string_escaping_matches_python() {
        assert_eq!(s("plain"), "\"plain\"");
        assert_eq!(s("\"\\/"), r#""\"\\/""#);
        assert_eq!(s("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(
            s("\u{0}\u{1}\u{b}\u{1b}\u{1f}"),
            r#""\u0000\u0001\u000b\u001b\u001f""#
        );
        assert_eq!(
            s("\u{7f}\u{80}\u{85}\u{a0}"),
            "\"\u{7f}\u{80}\u{85}\u{a0}\""
        );
        assert_eq!(s("é中😀\u{2028}\u{2029}"), "\"é中😀\u{2028}\u{2029}\"");
        // Escapes at every position relative to the 8-byte fast path.
        for len in 0..20 {
            for at in 0..len {
                for (c, esc) in [
                    ('"', "\\\""),
                    ('\\', "\\\\"),
                    ('\u{1}', "\\u0001"),
                    ('\n', "\\n"),
                ] {
                    let mut input = "a".repeat(len);
                    input.replace_range(at..=at, &c.to_string());
                    let want = format!("\"{}{esc}{}\"", "a".repeat(at), "a".repeat(len - at - 1));
                    assert_eq!(s(&input), want);
                }
            }
        }
        for b in 0u8..=0x7f {
            let c = char::from(b);
            let want = match c {
                '"' => "\\\"".to_owned(),
                '\\' => "\\\\".to_owned(),
                '\n' => "\\n".to_owned(),
                '\r' => "\\r".to_owned(),
                '\t' => "\\t".to_owned(),
                '\u{8}' => "\\b".to_owned(),
                '\u{c}' => "\\f".to_owned(),
                c if (c as u32) < 0x20 => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            };
            assert_eq!(
                s(&format!("xxxxxxxxx{c}yyyyyyyyy")),
                format!("\"xxxxxxxxx{want}yyyyyyyyy\"")
            );
        }
    }
}
