//! The web console at `/ui/` (`--ui`, on by default): static HTML, CSS and
//! JavaScript modules embedded in the binary (`crates/prompter-api/ui/`, no
//! build step), which read and write only through the JSON API.
//!
//! Every page path under `/ui/` answers the same `index.html` (the client
//! routes by path, so each page has a URL that reloads); `/ui/assets/*` are
//! the files. `GET /` redirects to `/ui/`. Every console response carries a
//! strict `Content-Security-Policy` (scripts and styles from this origin
//! only, no inline code, no framing) and the other security headers.

use crate::error::{ApiError, Code};
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};

/// `(path under ui/, content type, bytes)` of every embedded file.
macro_rules! embed {
    ($($name:literal => $mime:literal),+ $(,)?) => {
        &[$(($name, $mime, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $name)) as &[u8])),+]
    };
}

/// The console's files.
pub static FILES: &[(&str, &str, &[u8])] = embed! {
    "index.html" => "text/html; charset=utf-8",
    "assets/style.css" => "text/css; charset=utf-8",
    "assets/icon.svg" => "image/svg+xml",
    "assets/app.js" => "text/javascript; charset=utf-8",
    "assets/api.js" => "text/javascript; charset=utf-8",
    "assets/dom.js" => "text/javascript; charset=utf-8",
    "assets/diff.js" => "text/javascript; charset=utf-8",
    "assets/pages/signin.js" => "text/javascript; charset=utf-8",
    "assets/pages/prompts.js" => "text/javascript; charset=utf-8",
    "assets/pages/prompt.js" => "text/javascript; charset=utf-8",
    "assets/pages/compare.js" => "text/javascript; charset=utf-8",
    "assets/pages/template.js" => "text/javascript; charset=utf-8",
    "assets/pages/results.js" => "text/javascript; charset=utf-8",
    "assets/pages/drift.js" => "text/javascript; charset=utf-8",
    "assets/pages/batches.js" => "text/javascript; charset=utf-8",
};

/// The console's `Content-Security-Policy`: nothing inline, nothing from
/// another origin, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Whether an actix match pattern is one of the console's (always open:
/// the pages hold no data; the API calls they make carry the key).
pub fn is_console_pattern(pattern: &str) -> bool {
    pattern == "/" || pattern == "/ui" || pattern.starts_with("/ui/")
}

#[derive(Clone, Copy)]
enum Handler {
    Redirect,
    Asset,
    Page,
}

/// Registers `/`, `/ui`, `/ui/assets/{file}` and `/ui/{page}` (GET and HEAD).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, handler) in [
        ("/", Handler::Redirect),
        ("/ui", Handler::Redirect),
        ("/ui/assets/{file:.*}", Handler::Asset),
        ("/ui/{page:.*}", Handler::Page),
    ] {
        let route = || match handler {
            Handler::Redirect => web::route().to(to_console),
            Handler::Asset => web::route().to(asset),
            Handler::Page => web::route().to(page),
        };
        cfg.service(
            web::resource(path)
                .route(route().method(Method::GET))
                .route(route().method(Method::HEAD)),
        );
    }
}

fn with_headers(mut res: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    res.insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header(("Cross-Origin-Opener-Policy", "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    res
}

async fn to_console() -> HttpResponse {
    with_headers(HttpResponse::Found())
        .insert_header((header::LOCATION, "/ui/"))
        .finish()
}

/// An embedded file: content type and bytes. With `PROMPTER_UI_DIR` set
/// (console development: edit, reload), the same file is read from that
/// directory instead; only names in [`FILES`] are ever read.
fn file(name: &str) -> Option<(&'static str, std::borrow::Cow<'static, [u8]>)> {
    let (_, mime, bytes) = FILES.iter().find(|(n, _, _)| *n == name)?;
    if let Some(dir) = std::env::var_os("PROMPTER_UI_DIR") {
        if let Ok(b) = std::fs::read(std::path::Path::new(&dir).join(name)) {
            return Some((mime, b.into()));
        }
    }
    Some((mime, std::borrow::Cow::Borrowed(*bytes)))
}

async fn asset(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = format!("assets/{}", req.match_info().query("file"));
    match file(&name) {
        Some((mime, bytes)) => Ok(with_headers(HttpResponse::Ok())
            .content_type(mime)
            .body(bytes.into_owned())),
        None => Err(ApiError::new(Code::NotFound, "no such console file")),
    }
}

async fn page() -> HttpResponse {
    let (mime, bytes) = file("index.html").expect("index.html is embedded");
    with_headers(HttpResponse::Ok())
        .content_type(mime)
        .body(bytes.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_modules_without_inline_code() {
        let (_, index) = file("index.html").unwrap();
        let index = std::str::from_utf8(&index).unwrap();
        assert!(index.contains(r#"<script type="module" src="/ui/assets/app.js"></script>"#));
        for banned in ["onclick=", "onload=", "style=", "javascript:", "<script>"] {
            assert!(!index.contains(banned), "index.html has inline {banned}");
        }
        // Only text is inserted: no innerHTML, eval or Function in any script.
        for (name, _, bytes) in FILES.iter().filter(|(n, _, _)| n.ends_with(".js")) {
            let js = std::str::from_utf8(bytes).unwrap();
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "eval(",
                "new Function",
                "document.write",
            ] {
                assert!(!js.contains(banned), "{name} uses {banned}");
            }
        }
        assert!(!CSP.contains("unsafe-"));
    }

    #[test]
    fn every_file_under_ui_is_embedded() {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, root, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut on_disk = Vec::new();
        walk(&root, &root, &mut on_disk);
        for f in on_disk
            .iter()
            .filter(|f| !f.ends_with("LICENSE") && !f.ends_with(".md"))
        {
            assert!(file(f).is_some(), "ui/{f} is not in console::FILES");
        }
    }
}
