//! Unit tests of the position index: nested maps and sequences, documents,
//! lists, flow style, quoted keys, comments, anchors, missing fields and
//! text that is not YAML.

use super::*;

/// The VirtualService of the acceptance case: the second route's regex.
const VS: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews   # a comment
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination: {host: reviews}
  - match:
    - uri:
        regex: \"/api/(v1\"
    route:
    - destination:
        host: reviews
";

fn one(text: &str) -> Positions {
    Positions::first(text)
}

#[test]
fn mapping_keys_and_sequence_items_have_their_lines() {
    let p = one(VS);
    assert_eq!(p.exact(""), Some(1));
    assert_eq!(p.exact("kind"), Some(2));
    assert_eq!(p.exact("metadata.name"), Some(4));
    assert_eq!(p.exact("spec"), Some(5));
    assert_eq!(p.exact("spec.hosts"), Some(6));
    assert_eq!(p.exact("spec.hosts[0]"), Some(7));
    assert_eq!(p.exact("spec.http[0]"), Some(9));
    assert_eq!(p.exact("spec.http[0].route[0].destination.host"), Some(10));
    assert_eq!(p.exact("spec.http[1]"), Some(11));
    assert_eq!(p.exact("spec.http[1].match[0].uri"), Some(12));
    assert_eq!(p.exact("spec.http[1].match[0].uri.regex"), Some(13));
    assert_eq!(p.exact("spec.http[1].route[0].destination.host"), Some(16));
    assert_eq!(p.exact("spec.http[2]"), None);
}

#[test]
fn a_missing_field_resolves_to_its_deepest_present_ancestor() {
    let p = one(VS);
    assert_eq!(p.line("spec.http[1].match[0].uri.regex"), Some(13));
    assert_eq!(p.line("spec.http[1].match[0].uri.exact"), Some(12));
    assert_eq!(p.line("spec.http[1].timeout"), Some(11));
    assert_eq!(p.line("spec.tcp[0].route"), Some(5));
    assert_eq!(p.line("status"), Some(1));
    assert_eq!(Positions::default().line("spec"), None);
}

#[test]
fn documents_count_lines_from_the_start_of_the_text() {
    let text = "# leading comment\n---\na: 1\n---\n\nb:\n  c: 2\n...\n---\n- x\n- y: 3\n";
    let docs = Positions::documents(text);
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0].exact("a"), Some(3));
    assert_eq!(docs[1].exact("b.c"), Some(7));
    assert_eq!(docs[1].exact("a"), None);
    assert_eq!(docs[2].exact("[0]"), Some(10));
    assert_eq!(docs[2].exact("[1].y"), Some(11));
}

#[test]
fn list_items_are_found_through_their_base_path() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n- apiVersion: networking.istio.io/v1\n  kind: Gateway\n  metadata: {name: gw}\n  spec:\n    servers: []\n";
    let doc = Arc::new(one(text));
    let item = FieldLines::new(doc.clone(), "items[1]");
    assert_eq!(item.line(""), Some(6));
    assert_eq!(item.exact("metadata.name"), Some(8));
    assert_eq!(item.exact("spec.servers"), Some(10));
    assert_eq!(item.line("spec.selector"), Some(9));
    let whole = FieldLines::new(doc, "");
    assert_eq!(whole.exact("items[0].kind"), Some(5));
}

#[test]
fn flow_style_is_indexed_on_its_own_line() {
    let p = one("spec: {hosts: [a, b], http: [{route: [{destination: {host: a}}]},\n  {match: [{uri: {regex: x}}]}]}\n");
    assert_eq!(p.exact("spec.hosts[1]"), Some(1));
    assert_eq!(p.exact("spec.http[0].route[0].destination.host"), Some(1));
    assert_eq!(p.exact("spec.http[1].match[0].uri.regex"), Some(2));
}

#[test]
fn quoted_keys_and_comments() {
    let text = "# head\n\"spec\":   # trailing\n  # between\n  'hosts': [a]\n  \"user-agent\": {regex: \"x\"}\n";
    let p = one(text);
    assert_eq!(p.exact("spec"), Some(2));
    assert_eq!(p.exact("spec.hosts"), Some(4));
    assert_eq!(p.exact("spec.user-agent.regex"), Some(5));
}

#[test]
fn dotted_keys_keep_the_path_syntax_of_validation() {
    let p = one("metadata:\n  labels:\n    app.kubernetes.io/name: x\n");
    assert_eq!(p.exact("metadata.labels.app.kubernetes.io/name"), Some(3));
    // An ancestor that is not a real key still falls back cleanly.
    assert_eq!(p.line("metadata.labels.app.kubernetes.io/other"), Some(2));
}

#[test]
fn aliases_point_at_their_use_never_at_the_anchor() {
    let text = "base: &m\n  uri: {regex: a}\nspec:\n  match:\n  - *m\n  - uri: {regex: b}\n";
    let p = one(text);
    assert_eq!(p.exact("base.uri.regex"), Some(2));
    assert_eq!(p.exact("spec.match[0]"), Some(5));
    assert_eq!(p.exact("spec.match[0].uri.regex"), None);
    assert_eq!(p.line("spec.match[0].uri.regex"), Some(5));
    assert_eq!(p.exact("spec.match[1].uri.regex"), Some(6));
}

#[test]
fn complex_keys_are_left_out_and_do_not_shift_their_neighbours() {
    let text = "? [a, b]\n: {x: 1}\nafter: 2\n? {k: v}\n: [1]\nlast: 3\n";
    let p = one(text);
    assert_eq!(p.exact("after"), Some(3));
    assert_eq!(p.exact("last"), Some(6));
    assert_eq!(p.exact("x"), None);
    assert_eq!(p.exact("k"), None);
}

#[test]
fn broken_text_keeps_what_came_before_the_error() {
    let p = one("a: 1\nb:\n  c: [unclosed\nd: 4\n");
    assert_eq!(p.exact("a"), Some(1));
    assert_eq!(p.exact("d"), None);
    assert!(Positions::documents("").iter().all(Positions::is_empty));
    assert!(one(":\n- : -\n\t{").exact("zzz").is_none());
}

#[test]
fn no_input_panics_every_prefix_and_some_garbage() {
    let texts = [
        VS,
        "a: &x [1, *x]\n? [k]\n: v\n--- !tag\n%YAML 1.2\n---\n\"\\u12\"\n",
        "{[{[{[",
        "- - - - -\n  - a: b: c\n",
        "key: |\n  literal\n   text\n? \n:\n",
    ];
    for text in texts {
        for end in (0..=text.len()).filter(|i| text.is_char_boundary(*i)) {
            let _ = Positions::documents(&text[..end]);
        }
    }
    let deep = "[".repeat(5000);
    let _ = Positions::documents(&deep);
}
