//! Warnings for the client, sent as `Warning: 299 - "text"` response headers as kube-apiserver sends them
//! (kubectl prints each as `Warning: text`). Any code serving a request adds to the request's list; the
//! router turns the list into headers. Outside a request, adding does nothing.

use std::cell::RefCell;
use std::future::Future;

use axum::http::HeaderValue;

tokio::task_local! {
    static WARNINGS: RefCell<Vec<String>>;
}

pub fn add(text: impl Into<String>) {
    let text = text.into();
    let _ = WARNINGS.try_with(|w| {
        let mut w = w.borrow_mut();
        if !w.contains(&text) {
            w.push(text);
        }
    });
}

/// Runs `f` with a warning list of its own; returns its output and the warnings it added.
pub async fn collect<F: Future>(f: F) -> (F::Output, Vec<String>) {
    WARNINGS
        .scope(RefCell::new(Vec::new()), async {
            let out = f.await;
            let warnings = WARNINGS.with(|w| w.take());
            (out, warnings)
        })
        .await
}

/// The header value: code 299, agent "-", the text quoted (RFC 7234 §5.5).
pub fn header_value(text: &str) -> Option<HeaderValue> {
    let mut v = String::with_capacity(text.len() + 8);
    v.push_str("299 - \"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                v.push('\\');
                v.push(c);
            }
            // Header values are visible ASCII; anything else would make the response invalid.
            c if c.is_ascii_graphic() || c == ' ' => v.push(c),
            _ => v.push('?'),
        }
    }
    v.push('"');
    HeaderValue::from_str(&v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn warnings_are_per_request_deduplicated_and_quoted() {
        let ((), w) = collect(async {
            add("unknown field \"spec.foo\"");
            add("unknown field \"spec.foo\"");
            add("second");
        })
        .await;
        assert_eq!(w, vec!["unknown field \"spec.foo\"", "second"]);
        assert_eq!(
            header_value(&w[0]).unwrap(),
            "299 - \"unknown field \\\"spec.foo\\\"\""
        );
        // Outside a request nothing is kept and nothing fails.
        add("lost");
        let ((), w) = collect(async {}).await;
        assert!(w.is_empty());
    }
}
