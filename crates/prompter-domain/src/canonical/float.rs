//! The float rule for `inference_params`.

use std::fmt::Write as _;

/// Python's `float(f"{x:.4f}")`: formats the exact binary value of `x` with
/// four decimals (round-half-even on the exact value, as C `printf`; Rust's
/// `{:.4}` does the same) and parses that decimal back to the nearest `f64`.
/// `buf` is scratch space.
pub(crate) fn round4(x: f64, buf: &mut String) -> f64 {
    round4_fast(x).unwrap_or_else(|| round4_slow(x, buf))
}

/// The definition: format, then parse.
fn round4_slow(x: f64, buf: &mut String) -> f64 {
    if !x.is_finite() {
        return x;
    }
    buf.clear();
    let _ = write!(buf, "{x:.4}");
    buf.parse().unwrap_or(x)
}

/// The same result with exact float arithmetic, for `|x| < 4e11`.
///
/// `x * 10^4 = p + err` exactly (`err` from a fused multiply-add). The
/// decimal `f"{x:.4f}"` is `N / 10^4` with `N` that exact product rounded
/// half-to-even to an integer, and parsing it yields the `f64` nearest to
/// `N / 10^4`, which is what the correctly rounded IEEE division `N / 1e4`
/// gives, since `N` and `1e4` are exact.
fn round4_fast(x: f64) -> Option<f64> {
    // |p| stays below 2^52, so `p - r` below is exact and N fits the mantissa.
    // (NaN and infinities fail the test too.)
    if x.is_nan() || x.abs() >= 4.0e11 {
        return None;
    }
    let p = x * 1e4;
    let err = x.mul_add(1e4, -p);
    let r = p.round_ties_even();
    let d = p - r;
    // |d| < 0.5 means |d| <= 0.5 - ulp(p) and |err| <= ulp(p) / 2: N = r.
    // |d| == 0.5: a tie only if err == 0; otherwise err decides the side.
    let n = if d.abs() == 0.5 && err != 0.0 && (err > 0.0) == (d > 0.0) {
        r + d.signum()
    } else {
        r
    };
    Some(n / 1e4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::excessive_precision)] // exact binary values on purpose
    fn rounding_matches_python() {
        let mut buf = String::new();
        // Expected values from python3: float(f"{x:.4f}")
        let cases: &[(f64, f64)] = &[
            (0.70001, 0.7),
            (0.00015, 0.0001),
            (0.00025, 0.0003),
            (0.99995, 1.0),
            (0.03125, 0.0312),
            (0.03135, 0.0314),
            (2.00005, 2.0),
            (-0.00005, -0.0001),
            (0.123456, 0.1235),
            (1e-05, 0.0),
            (1e300, 1e300),
            (1.7976931348623157e308, 1.7976931348623157e308),
            (123456789.123456789, 123456789.1235),
            (5e-324, 0.0),
        ];
        for &(x, want) in cases {
            let got = round4(x, &mut buf);
            assert_eq!(got.to_bits(), want.to_bits(), "{x:e}: {got:e} != {want:e}");
        }
        let neg = round4(-0.00001, &mut buf);
        assert!(neg == 0.0 && neg.is_sign_negative());
        let neg = round4(-0.0, &mut buf);
        assert!(neg == 0.0 && neg.is_sign_negative());
    }

    /// The fast path agrees bit for bit with format-then-parse.
    #[test]
    fn fast_path_equals_definition() {
        let mut buf = String::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut check = |x: f64| {
            if let Some(fast) = round4_fast(x) {
                let slow = round4_slow(x, &mut buf);
                assert_eq!(
                    fast.to_bits(),
                    slow.to_bits(),
                    "{x:e}: {fast:e} vs {slow:e}"
                );
            }
        };
        for _ in 0..200_000 {
            let bits = next();
            // Random bit patterns (mostly tiny or huge) ...
            check(f64::from_bits(bits));
            // ... values with few decimals, ties of 4 and 5 decimals ...
            let m = (bits >> 11) as i64 % 2_000_000_000 - 1_000_000_000;
            check(m as f64 / 100_000.0);
            check((m as f64 + 0.5) / 10_000.0);
            check(m as f64 / 32.0);
            // ... and magnitudes up to the fast-path bound.
            let scale = 10f64.powi((bits % 12) as i32);
            check((m as f64 / 1e9) * scale);
        }
        for x in [
            0.00005,
            -0.00005,
            0.00015,
            0.00025,
            0.99995,
            0.03125,
            4.0e11 - 0.00005,
            1e-300,
        ] {
            check(x);
        }
    }
}
