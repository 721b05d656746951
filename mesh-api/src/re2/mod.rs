//! Regexes as the data planes run them, so that validation accepts exactly
//! what they accept.
//!
//! Envoy compiles every `safe_regex` with RE2 and refuses one whose
//! program is larger than `re2.max_program_size.error_level` (100 unless
//! the runtime says otherwise): the whole resource is NACKed. There is no
//! RE2 in Rust, so [`program_size`] computes `RE2::ProgramSize()` itself:
//! `regex-syntax` parses the pattern, and RE2's own parser rules, its
//! simplification and its compiler (with the program flattening that
//! gives the size) are replayed on that tree. The tests check it against
//! sizes Envoy 1.40 reported.
//!
//! ```text
//! pattern ─► regex-syntax AST ─► RE2 parse (literal strings, factored alternations)
//!         ─► required ^prefix dropped ─► simplify (x{n,m} as copies) ─► compile ─► flatten ─► size
//! ```
//!
//! mesh-proxy runs the same patterns with the `regex` crate; it compiles
//! them through [`whole_match`] and [`unanchored`], with the size limits
//! validation uses, so what validates also compiles there.

mod compile;
mod parse;
mod regexp;
mod simplify;
mod unicode;

#[cfg(test)]
mod tests;

use regex::{Regex, RegexBuilder};

/// Envoy's default `re2.max_program_size.error_level`: a regex whose RE2
/// program is larger is rejected.
pub const ENVOY_MAX_PROGRAM_SIZE: usize = 100;

/// The runtime key of that limit.
pub const ENVOY_PROGRAM_SIZE_KEY: &str = "re2.max_program_size.error_level";

/// The `regex` crate's limit on one compiled regex (its NFA), in bytes.
/// The largest patterns Envoy takes stay well below it: `\w{32}`, at
/// Envoy's limit of 100 instructions, takes 1.6 MB with the crate's
/// Unicode classes.
pub const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// The `regex` crate's lazy DFA cache per regex, in bytes (the crate's
/// default).
pub const REGEX_DFA_SIZE_LIMIT: usize = 2 << 20;

/// Why RE2 would not take a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Re2Error {
    /// The syntax is not RE2's, or RE2 reads it differently from the
    /// `regex` crate (`a**`, `\<`, `[a[b]]`, `(?x)`, a repetition over
    /// 1000); the reason says which.
    Syntax(String),
    /// More instructions than RE2 compiles at all.
    TooLarge,
}

/// The size of the RE2 program Envoy compiles for `pattern`
/// (`RE2::ProgramSize()`, default options).
pub fn program_size(pattern: &str) -> Result<usize, Re2Error> {
    let ast = regex_syntax::ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|e| Re2Error::Syntax(e.kind().to_string()))?;
    let re = parse::parse(pattern, &ast).map_err(Re2Error::Syntax)?;
    // RE2 matches a `^literal` prefix by comparing bytes and compiles
    // only the rest.
    let suffix = parse::required_prefix(re);
    let sre = simplify::simplify(suffix);
    compile::program_size(sre).ok_or(Re2Error::TooLarge)
}

fn build(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
}

/// `pattern` as a `regex` crate regex matching the whole input, as
/// Envoy's `safe_regex` matches (RE2 `FullMatch`). The pattern must parse
/// on its own: wrapped, `a)|(b` would.
pub fn whole_match(pattern: &str) -> Result<Regex, regex::Error> {
    regex_syntax::ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|e| regex::Error::Syntax(e.to_string()))?;
    build(&format!("^(?:{pattern})$"))
}

/// `pattern` as a `regex` crate regex matching anywhere (a regex rewrite,
/// RE2 `GlobalReplace`).
pub fn unanchored(pattern: &str) -> Result<Regex, regex::Error> {
    build(pattern)
}
