//! Prompt variables and rendering: `{{ name }}` placeholders in a template's
//! system instructions and user prompt, filled exactly as the server does.
//!
//! A placeholder is `{{`, optional spaces, a name matching
//! `[A-Za-z_][A-Za-z0-9_.-]*`, optional spaces, `}}`. Anything else (a lone
//! `{{`, `{{ 1x }}`) is literal text. Values are inserted as given: no
//! escaping and no second pass, so a value containing `{{x}}` stays literal.
//! Values must be strings, numbers (written as JSON spells them) or booleans.
//!
//! ```
//! use prompter_domain::render::{render, variables, PromptText};
//! use prompter_domain::Json;
//!
//! let text = PromptText { system: "You are {{ role }}.", user: "Hi {{brand}}, {{ brand }}!" };
//! assert_eq!(variables(text), vec!["role", "brand"]);
//! let vars = Json::Object(vec![
//!     ("role".into(), Json::Str("helpful".into())),
//!     ("brand".into(), Json::Str("{{role}}".into())),
//! ]);
//! let out = render(text, &vars).unwrap();
//! assert_eq!(out.system, "You are helpful.");
//! assert_eq!(out.user, "Hi {{role}}, {{role}}!");
//! ```

use crate::json::{write_float, Json};
use crate::TemplateConfig;

/// The two texts that carry placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptText<'a> {
    /// System instructions.
    pub system: &'a str,
    /// User prompt template.
    pub user: &'a str,
}

impl<'a> From<&'a TemplateConfig> for PromptText<'a> {
    fn from(c: &'a TemplateConfig) -> Self {
        PromptText {
            system: c.system_instructions.as_deref().unwrap_or(""),
            user: c.user_prompt_template.as_deref().unwrap_or(""),
        }
    }
}

/// The rendered texts and what was (not) used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Rendered system instructions.
    pub system: String,
    /// Rendered user prompt.
    pub user: String,
    /// Every variable the texts use, in order of first appearance.
    pub variables: Vec<String>,
    /// Given variables the texts do not use, in the order given.
    pub unused: Vec<String>,
}

/// Why a render failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// Variables the texts use that were not given (in order of first use).
    #[error("missing variables: {}", .0.join(", "))]
    Missing(Vec<String>),
    /// Given values that are not strings, numbers or booleans (by name).
    #[error("variables must be strings, numbers or booleans: {}", .0.join(", "))]
    BadValue(Vec<String>),
    /// The variables are not a JSON object.
    #[error("variables must be an object")]
    NotAnObject,
}

/// One piece of a text: literal or placeholder.
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// At `s[i..]` starting with `{{`: the placeholder's name and its end, if it is one.
fn placeholder_at(s: &str, i: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    let mut j = i + 2;
    while j < b.len() && b[j] == b' ' {
        j += 1;
    }
    let start = j;
    if j >= b.len() || !is_name_start(b[j]) {
        return None;
    }
    while j < b.len() && is_name_char(b[j]) {
        j += 1;
    }
    let end = j;
    while j < b.len() && b[j] == b' ' {
        j += 1;
    }
    if b.get(j) == Some(&b'}') && b.get(j + 1) == Some(&b'}') {
        Some((&s[start..end], j + 2))
    } else {
        None
    }
}

/// Splits a text into literal pieces and placeholders.
fn pieces(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut lit = 0;
    let mut i = 0;
    let b = s.as_bytes();
    while i + 1 < b.len() {
        if b[i] == b'{' && b[i + 1] == b'{' {
            if let Some((name, end)) = placeholder_at(s, i) {
                if lit < i {
                    out.push(Piece::Text(&s[lit..i]));
                }
                out.push(Piece::Var(name));
                i = end;
                lit = end;
                continue;
            }
        }
        i += 1;
    }
    if lit < s.len() {
        out.push(Piece::Text(&s[lit..]));
    }
    out
}

/// Every variable the texts use, system first, in order of first appearance.
pub fn variables(text: PromptText<'_>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for s in [text.system, text.user] {
        for p in pieces(s) {
            if let Piece::Var(name) = p {
                if !seen.iter().any(|v| v == name) {
                    seen.push(name.to_owned());
                }
            }
        }
    }
    seen
}

/// A value's text, or None when it is not a string, number or boolean.
fn value_text(v: &Json) -> Option<String> {
    match v {
        Json::Str(s) => Some(s.clone()),
        Json::Int(digits) => Some(digits.clone()),
        Json::Float(x) => {
            let mut out = String::new();
            write_float(&mut out, *x);
            Some(out)
        }
        Json::Bool(b) => Some(if *b { "true" } else { "false" }.to_owned()),
        Json::Null | Json::Array(_) | Json::Object(_) => None,
    }
}

/// Renders both texts with `vars` (a JSON object). Fails naming every
/// missing variable, or every value of a wrong type.
pub fn render(text: PromptText<'_>, vars: &Json) -> Result<Rendered, RenderError> {
    let Json::Object(members) = vars else {
        return Err(RenderError::NotAnObject);
    };
    let used = variables(text);
    let bad: Vec<String> = members
        .iter()
        .filter(|(_, v)| value_text(v).is_none())
        .map(|(k, _)| k.clone())
        .collect();
    if !bad.is_empty() {
        return Err(RenderError::BadValue(bad));
    }
    let lookup = |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let missing: Vec<String> = used
        .iter()
        .filter(|n| lookup(n).is_none())
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(RenderError::Missing(missing));
    }
    let fill = |s: &str| -> String {
        let mut out = String::with_capacity(s.len());
        for p in pieces(s) {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(name) => {
                    if let Some(t) = lookup(name).and_then(value_text) {
                        out.push_str(&t);
                    }
                }
            }
        }
        out
    };
    let unused = members
        .iter()
        .filter(|(k, _)| !used.iter().any(|u| u == k))
        .map(|(k, _)| k.clone())
        .collect();
    Ok(Rendered {
        system: fill(text.system),
        user: fill(text.user),
        variables: used,
        unused,
    })
}

/// Variables `to` uses that `from` does not (a label move's contract check).
pub fn added_variables(from: PromptText<'_>, to: PromptText<'_>) -> Vec<String> {
    let before = variables(from);
    variables(to)
        .into_iter()
        .filter(|v| !before.contains(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<'a>(system: &'a str, user: &'a str) -> PromptText<'a> {
        PromptText { system, user }
    }

    fn obj(pairs: &[(&str, Json)]) -> Json {
        Json::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn finds_names_with_optional_spaces_and_skips_non_placeholders() {
        let text = t(
            "{{a}} {{  b.c-d  }} {{ 1x }} {{ a }}",
            "{{ lone {{_e}} {{f g}} }} {{",
        );
        assert_eq!(variables(text), vec!["a", "b.c-d", "_e"]);
    }

    #[test]
    fn renders_values_as_given_without_second_pass() {
        let text = t("", "{{s}}|{{i}}|{{f}}|{{b}}|{{ 1x }}");
        let vars = obj(&[
            ("s", Json::Str("{{i}}".into())),
            ("i", Json::Int("100000000000000000000000000001".into())),
            ("f", Json::Float(0.5)),
            ("b", Json::Bool(false)),
            ("extra", Json::Str("x".into())),
        ]);
        let r = render(text, &vars).unwrap();
        assert_eq!(
            r.user,
            "{{i}}|100000000000000000000000000001|0.5|false|{{ 1x }}"
        );
        assert_eq!(r.unused, vec!["extra"]);
        assert_eq!(r.system, "");
    }

    #[test]
    fn names_every_missing_and_bad_variable() {
        let text = t("{{a}}", "{{b}} {{c}}");
        assert_eq!(
            render(text, &obj(&[("b", Json::Str("x".into()))])),
            Err(RenderError::Missing(vec!["a".into(), "c".into()]))
        );
        assert_eq!(
            render(text, &obj(&[("a", Json::Null), ("b", Json::Array(vec![]))])),
            Err(RenderError::BadValue(vec!["a".into(), "b".into()]))
        );
        assert_eq!(render(text, &Json::Null), Err(RenderError::NotAnObject));
    }

    #[test]
    fn added_variables_are_the_new_ones() {
        assert_eq!(
            added_variables(t("", "{{a}}"), t("{{c}}", "{{a}} {{b}}")),
            vec!["c", "b"]
        );
    }
}
