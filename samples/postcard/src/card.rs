//! Rendering of the postcard page that `greeter` serves.
//!
//! The message text is HTML-escaped but otherwise copied verbatim, so a test
//! can look for it in the body.

/// What `greeter` learned from `messenger` for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The text messenger returned.
    Text(String),
    /// Messenger could not be reached or answered with an error; the reason
    /// is shown on the card.
    Unavailable(String),
}

/// The line shown on the card in place of a message when messenger failed.
pub fn unavailable_line(reason: &str) -> String {
    format!("no message: messenger is unavailable ({reason})")
}

/// Renders the postcard page for `message`.
pub fn render(message: &Message) -> String {
    let (class, body) = match message {
        Message::Text(text) => ("message", escape_html(text)),
        Message::Unavailable(reason) => ("message missing", escape_html(&unavailable_line(reason))),
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Postcard</title>
<style>
  body {{ margin: 0; min-height: 100vh; display: flex; align-items: center;
         justify-content: center; background: #e8eef3;
         font-family: Georgia, "Times New Roman", serif; }}
  .card {{ width: 34rem; max-width: 92vw; background: #fffdf6; padding: 2rem 2.5rem;
          border-radius: 6px; box-shadow: 0 8px 24px rgba(0,0,0,.15);
          border-left: 10px solid #c0392b; }}
  .stamp {{ float: right; width: 4.5rem; height: 5rem; border: 3px dashed #c0392b;
           color: #c0392b; font: bold .8rem sans-serif; display: flex;
           align-items: center; justify-content: center; text-align: center; }}
  h1 {{ margin-top: 0; color: #2c3e50; font-weight: normal; }}
  .message {{ font-size: 1.6rem; line-height: 1.4; color: #1a1a1a; }}
  .missing {{ font-size: 1.1rem; color: #a94442; font-style: italic; }}
  .from {{ margin-top: 2rem; color: #7f8c8d; font-size: .9rem; }}
</style>
</head>
<body>
<div class="card">
  <div class="stamp">MESH<br>POST</div>
  <h1>Greetings!</h1>
  <p class="{class}">{body}</p>
  <p class="from">sent by greeter, delivered by messenger</p>
</div>
</body>
</html>
"#
    )
}

/// Escapes the five characters that matter in HTML text and attributes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_appears_verbatim() {
        let html = render(&Message::Text("Hello from messenger v1".into()));
        assert!(html.contains("Hello from messenger v1"));
        assert!(!html.contains("no message"));
    }

    #[test]
    fn failure_line_names_the_reason() {
        let html = render(&Message::Unavailable("connection refused".into()));
        assert!(html.contains("no message: messenger is unavailable (connection refused)"));
    }

    #[test]
    fn markup_in_the_message_is_escaped() {
        let html = render(&Message::Text("<b>hi</b> & bye".into()));
        assert!(html.contains("&lt;b&gt;hi&lt;/b&gt; &amp; bye"));
        assert!(!html.contains("<b>hi"));
    }
}
