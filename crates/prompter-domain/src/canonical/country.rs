//! Country normalisation (contract §1, `country_set`).

use super::text::py_strip;

/// Normalises one country entry as V7 did: Python `strip()`, full Unicode
/// uppercase (`ß` → `SS`, as Python `str.upper()`), then `UK` and `UKK` →
/// `GB` (exact matches only). Returns `None` when the result is empty (V7
/// drops such entries).
pub fn normalize_country(raw: &str) -> Option<String> {
    let t = py_strip(raw);
    if t.is_empty() {
        return None;
    }
    let upper = if t.is_ascii() {
        t.to_ascii_uppercase()
    } else {
        t.to_uppercase()
    };
    if upper == "UK" || upper == "UKK" {
        return Some("GB".to_owned());
    }
    Some(upper)
}

/// The canonical `country_set`: each entry normalised with
/// [`normalize_country`], empties dropped, de-duplicated and sorted by code
/// point (Rust's byte order on UTF-8 is code-point order).
pub fn normalize_countries<S: AsRef<str>>(raw: &[S]) -> Vec<String> {
    let mut out: Vec<String> = raw
        .iter()
        .filter_map(|c| normalize_country(c.as_ref()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(normalize_country(" uk "), Some("GB".into()));
        assert_eq!(normalize_country("Ukk"), Some("GB".into()));
        assert_eq!(normalize_country("UKKK"), Some("UKKK".into()));
        assert_eq!(normalize_country("u k"), Some("U K".into()));
        assert_eq!(normalize_country("straße"), Some("STRASSE".into()));
        assert_eq!(normalize_country("\u{a0}fr\u{3000}"), Some("FR".into()));
        assert_eq!(normalize_country("\u{1c}"), None);
        assert_eq!(normalize_country(""), None);
        assert_eq!(normalize_country("ŉ"), Some("ʼN".into()));
        assert_eq!(normalize_country("ǅ"), Some("Ǆ".into()));
    }

    #[test]
    fn set() {
        assert_eq!(
            normalize_countries(&["us", "de", " US", "", "uk", "gb", "éa", "Z", "_"]),
            vec!["DE", "GB", "US", "Z", "_", "ÉA"]
        );
        assert!(normalize_countries::<&str>(&[]).is_empty());
    }
}
