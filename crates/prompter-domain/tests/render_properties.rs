//! Properties of prompt rendering: with every variable given no placeholder
//! of a known name is left, and rendering never panics.

use prompter_domain::render::{render, variables, PromptText};
use prompter_domain::Json;
use proptest::prelude::*;

/// Text made of pieces that look like (or almost like) placeholders.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => "[a-z ]{0,4}",
        2 => "[a-zA-Z_][a-zA-Z0-9_.-]{0,5}".prop_map(|n| format!("{{{{{n}}}}}")),
        2 => ("[ ]{0,2}", "[a-c]", "[ ]{0,2}").prop_map(|(a, n, b)| format!("{{{{{a}{n}{b}}}}}")),
        1 => prop::sample::select(vec!["{{", "}}", "{", "}", "{{ 1x }}", "{{a b}}", "{{{a}}}", "é", "😀"])
            .prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// Values that cannot join the text around them into a placeholder (no
/// braces; `#` is not a name character).
fn value() -> impl Strategy<Value = Json> {
    "#[a-z0-9 ]{0,6}".prop_map(Json::Str)
}

/// Any value a caller may send.
fn scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        any::<String>().prop_map(Json::Str),
        any::<i64>().prop_map(|i| Json::Int(i.to_string())),
        any::<bool>().prop_map(Json::Bool),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Json::Float),
    ]
}

fn any_json() -> impl Strategy<Value = Json> {
    prop_oneof![scalar(), Just(Json::Null), Just(Json::Array(vec![])),]
}

proptest! {
    #[test]
    fn every_variable_given_leaves_no_known_placeholder(
        system in text(), user in text(), v in value()
    ) {
        let t = PromptText { system: &system, user: &user };
        let names = variables(t);
        let vars = Json::Object(names.iter().map(|n| (n.clone(), v.clone())).collect());
        let r = render(t, &vars).expect("every variable is given");
        let again = PromptText { system: &r.system, user: &r.user };
        let left = variables(again);
        for n in &names {
            prop_assert!(!left.contains(n), "{n} left in {:?}", again);
        }
        prop_assert!(r.unused.is_empty());
    }

    #[test]
    fn rendering_never_panics(
        system in any::<String>(), user in text(),
        vars in proptest::collection::vec(("[a-c]{1,2}", any_json()), 0..4)
    ) {
        let t = PromptText { system: &system, user: &user };
        let _ = render(t, &Json::Object(vars));
        let _ = render(t, &Json::Str(user.clone()));
    }
}
