#!/usr/bin/env python3
"""Reference implementation of Prompter V7's canonical config + config hash.

This restates contract section 1 (`shared/docs/v7-contract.md`) with exactly the
Python primitives V7 used: `json.loads`, `json.dumps(separators=(",", ":"),
ensure_ascii=False)`, `float(f"{x:.4f}")`, `str.strip()`, `str.upper()` and
`sorted()`. The Rust crate must produce the same bytes.

Usage:
    python3 v7_canonical.py < bodies.jsonl       # one JSON result line per body
    python3 v7_canonical.py --emit-rust > cases.rs
        regenerates `tests/reference/v7_cases.rs` (the frozen literals that
        `tests/python_parity.rs` checks) from the CASES list below.
"""
import hashlib
import json
import re
import sys

_WS_RUN = re.compile(r"[ \t]+")


def norm_text(s):
    if s is None:
        return ""
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = _WS_RUN.sub(" ", s)
    return s.strip()


def norm_countries(countries):
    out = set()
    for c in countries or []:
        c = c.strip().upper()
        if c in ("UK", "UKK"):
            c = "GB"
        if c:
            out.add(c)
    return sorted(out)


def sort_deep(obj):
    if isinstance(obj, dict):
        return {k: sort_deep(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [sort_deep(v) for v in obj]
    return obj


def round_floats(obj):
    if isinstance(obj, float):
        return float(f"{obj:.4f}")
    if isinstance(obj, dict):
        return {k: round_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [round_floats(v) for v in obj]
    return obj


def canonical_config(body):
    canon = {
        "system_instructions": norm_text(body.get("system_instructions")),
        "user_prompt_template": norm_text(body.get("user_prompt_template")),
        "country_set": norm_countries(body.get("country_set")),
        "model_id": body.get("model_id") or "",
        "inference_params": round_floats(sort_deep(body.get("inference_params") or {})),
        "tools_spec": [sort_deep(t or {}) for t in (body.get("tools_spec") or [])],
        "response_format": sort_deep(body.get("response_format") or {}),
        "grounding_profile_id": body.get("grounding_profile_id"),
        "grounding_snapshot_id": body.get("grounding_snapshot_id"),
        "retrieval_params": sort_deep(body.get("retrieval_params") or {}),
        "preprocess_pipeline_id": None,
        "postprocess_pipeline_id": None,
    }
    return json.dumps(canon, separators=(",", ":"), ensure_ascii=False)


def hash_body(text):
    canonical = canonical_config(json.loads(text))
    return canonical, hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# (name, request body as JSON text). Every body here is one V7 accepted.
CASES = [
    ("issue_example", '{"workspace_id":"w","name":"n","user_prompt_template":"Hi  {{brand}}\\r\\n","model_id":"gpt-4o","country_set":["uk","de"],"inference_params":{"temperature":0.70001}}'),
    ("empty_body", '{}'),
    ("all_null", '{"system_instructions":null,"user_prompt_template":null,"country_set":null,"model_id":null,"inference_params":null,"tools_spec":null,"response_format":null,"grounding_profile_id":null,"grounding_snapshot_id":null,"retrieval_params":null}'),
    ("ws_c0_separators", '{"user_prompt_template":"\\u001c\\u001d x \\u001e\\u001f"}'),
    ("ws_nel_nbsp", '{"user_prompt_template":"\\u0085\\u00a0hello\\u00a0\\u0085","system_instructions":"\\u1680 sys \\u202f"}'),
    ("ws_180e_not_space", '{"user_prompt_template":"\\u180ex\\u180e"}'),
    ("ws_200b_not_space", '{"user_prompt_template":"\\u200b x \\u200b"}'),
    ("ws_ideographic", '{"user_prompt_template":"\\u3000\\u2028x\\u2029\\u205f\\u3000"}'),
    ("ws_inner_unicode_kept", '{"user_prompt_template":"a\\u00a0\\u00a0b\\u3000\\u3000c  \\t d"}'),
    ("ws_en_quad_range", '{"user_prompt_template":"\\u2000\\u2005\\u200a x \\u2000"}'),
    ("crlf_cr_mix", '{"user_prompt_template":"a\\r\\nb\\rc\\n\\rd\\r\\r\\ne"}'),
    ("tabs_spaces_runs", '{"user_prompt_template":"\\t a \\t\\t b  \\n  c \\t","system_instructions":"  x\\ty  "}'),
    ("newline_runs_kept", '{"user_prompt_template":"a\\n\\n\\nb \\n c"}'),
    ("vertical_tab_formfeed", '{"user_prompt_template":"\\u000b\\fa\\u000bb\\f"}'),
    ("placeholders_verbatim", '{"user_prompt_template":"{{ brand }}  {{country}}\\t{{ x}}"}'),
    ("country_sharp_s", '{"country_set":["ß","straße"," de "]}'),
    ("country_uk_ukk", '{"country_set":["uk","UK"," Ukk ","ukk","gb","UKKK","u k"]}'),
    ("country_dups_empty", '{"country_set":["us","US"," us","",  "   ","\\u3000","fr","\\u00a0fr\\u00a0"]}'),
    ("country_unicode_sort", '{"country_set":["中国","zz","AA","éa","Éb","ǅ","ﬀ","ŉ"]}'),
    ("country_codepoint_order", '{"country_set":["b","a","_","Z","1","\\u00e9","\\ud83d\\ude00"]}'),
    ("big_ints", '{"inference_params":{"seed":1000000000000000000000000000000,"neg":-1000000000000000000000000000001,"zero":-0,"max":18446744073709551616}}'),
    ("float_layouts", '{"inference_params":{"a":1.0,"b":1e2,"c":-0.0,"d":1e-05,"e":1e16,"f":1.5e300,"g":1E-7,"h":123456.78901}}'),
    ("float_ties", '{"inference_params":{"a":0.00015,"b":0.00025,"c":0.99995,"d":0.03125,"e":-0.00005,"f":2.00005}}'),
    ("float_small_and_large", '{"inference_params":{"tiny":5e-324,"big":1.7976931348623157e308,"mid":99999999999.99999,"p":1e15,"q":123456789012345678}}'),
    ("nested_float_rounding", '{"inference_params":{"z":{"y":[0.123456,{"b":2.71828,"a":[3.14159265]}]},"a":0.5}}'),
    ("params_top_level_float", '{"inference_params":0.70001}'),
    ("params_top_level_list", '{"inference_params":[0.33333,{"b":1,"a":2},"s",true]}'),
    ("params_top_level_string", '{"inference_params":"  keep  as is "}'),
    ("params_falsy_zero", '{"inference_params":0,"response_format":0,"retrieval_params":0}'),
    ("params_falsy_false", '{"inference_params":false,"response_format":false,"retrieval_params":false,"tools_spec":false}'),
    ("params_falsy_empty_string", '{"inference_params":"","response_format":"","retrieval_params":"","tools_spec":""}'),
    ("params_falsy_empty_list", '{"inference_params":[],"response_format":[],"retrieval_params":[],"tools_spec":[]}'),
    ("params_falsy_float_zero", '{"inference_params":0.0,"response_format":-0.0}'),
    ("params_bools_not_numbers", '{"inference_params":{"stream":true,"x":false,"n":null}}'),
    ("tools_floats_not_rounded", '{"tools_spec":[{"function":{"name":"f","parameters":{"max":0.123456789,"type":"object"}},"type":"function"}]}'),
    ("tools_falsy_items", '{"tools_spec":[null,0,false,"",[],{},{"b":1,"a":0.70001}]}'),
    ("tools_order_kept", '{"tools_spec":[{"name":"z"},{"name":"a"},"str",[{"d":1,"c":2}]]}'),
    ("response_retrieval_sorted", '{"response_format":{"type":"json_schema","json_schema":{"strict":true,"name":"x","schema":{"b":0.123456,"a":1}}},"retrieval_params":{"top_k":5,"filters":{"z":1,"a":[{"y":2,"x":1}]}}}'),
    ("control_chars", '{"user_prompt_template":"a\\u0000b\\u0001c\\u0008d\\u000ce\\u001ff\\u007fg\\"h\\\\i/j","model_id":"m\\tx\\u0007"}'),
    ("u007f_and_c1", '{"system_instructions":"\\u007f\\u0080\\u009f","user_prompt_template":"del\\u007f"}'),
    ("emoji_raw", '{"user_prompt_template":"Hi 😀 {{brand}} 👍🏽","country_set":["😀"]}'),
    ("surrogate_pair_escape", '{"user_prompt_template":"\\ud83d\\ude00 and \\uD83D\\uDC4D","inference_params":{"\\ud83d\\ude00":1,"a":2}}'),
    ("line_separators_inside", '{"user_prompt_template":"a\\u2028b\\u2029c"}'),
    ("duplicate_keys", '{"model_id":"first","model_id":"second","inference_params":{"b":1,"a":2,"b":3}}'),
    ("duplicate_top_params", '{"inference_params":{"x":1},"inference_params":0}'),
    ("unknown_keys_ignored", '{"org_id":"o","workspace_id":"w","name":"n","provider":"openai","created_by":"me","extra":{"a":1},"preprocess_pipeline_id":"p","model_id":"gpt-4o"}'),
    ("model_id_as_given", '{"model_id":"  GPT-4o\\t "}'),
    ("grounding_ids", '{"grounding_profile_id":"gp-1","grounding_snapshot_id":""}'),
    ("key_sort_codepoint", '{"inference_params":{"b":1,"B":2,"a":3,"_":4,"é":5,"😀":6,"\\u00e9a":7,"aa":8,"a ":9}}'),
    ("escaped_solidus_and_unicode_keys", '{"inference_params":{"a\\/b":"\\u00e9\\u4e2d","\\n":"\\t"}}'),
    ("deep_nesting", '{"inference_params":{"a":[[[[{"z":[0.000051]}]]]]}}'),
    ("long_text_whitespace", '{"system_instructions":"  You are   a\\thelpful\\t\\t assistant.\\r\\n\\r\\n Answer briefly.  ","user_prompt_template":"\\n\\n  Tell me about {{brand}} in {{country}}.\\n\\n"}'),
    ("params_top_level_float_rounds_to_zero", '{"inference_params":0.00001}'),
    ("float_layouts_unrounded", '{"response_format":{"a":1e-05,"b":1e16,"c":1.5e300,"d":-0.0,"e":1.0,"f":1E+2,"g":0.1,"h":1.2345678901234567e-7,"i":5e-324,"j":123456789012345680000.0,"k":0.0001,"l":9999999999999998.0,"m":-2.5e-5}}'),
    ("tools_float_layouts", '{"tools_spec":[{"t":1e-05,"u":[1e16,0.30000000000000004]}]}'),
]


def rust_str(s):
    out = []
    for ch in s:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        else:
            out.append("\\u{%x}" % o)
    return '"' + "".join(out) + '"'


def emit_rust():
    print("// @generated by tests/reference/v7_canonical.py --emit-rust; do not edit by hand.")
    print("// (name, request body, V7 canonical JSON, V7 sha256)")
    print("pub const CASES: &[(&str, &str, &str, &str)] = &[")
    for name, body in CASES:
        canonical, digest = hash_body(body)
        print("    (")
        print("        %s," % rust_str(name))
        print("        %s," % rust_str(body))
        print("        %s," % rust_str(canonical))
        print("        %s," % rust_str(digest))
        print("    ),")
    print("];")


def main():
    if sys.argv[1:] == ["--emit-rust"]:
        emit_rust()
        return
    for line in sys.stdin:
        line = line.rstrip("\n")
        canonical, digest = hash_body(line)
        print(json.dumps({"canonical_json": canonical, "sha256": digest}, ensure_ascii=False))


if __name__ == "__main__":
    main()
