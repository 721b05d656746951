//! RE2's parser (`parse.cc`), driven by `regex-syntax`'s syntax tree: the
//! tree gives the tokens in order (literals, classes, groups, bars,
//! repetitions, flag changes) and each one goes through RE2's parse stack
//! exactly as RE2's own lexer would feed it, with its literal merging,
//! its alternation factoring and its class shortcuts. What the two syntaxes
//! read differently (`a**`, `\<`, `[a[b]]`, `{01}`, `(?x)`, ...) is an
//! error here.
//!
//! RE2 reads the pattern as Latin-1, so a character beyond ASCII is the
//! bytes of its UTF-8 encoding, one literal each: `é+` repeats the second
//! byte only, `[à-ÿ]` is the bytes C3, A0-C3 and BF.

use regex_syntax::ast::{
    self, Ast, ClassPerlKind, ClassSet, ClassSetItem, ClassUnicodeKind, Flag, FlagsItemKind,
    GroupKind, LiteralKind, RepetitionKind, RepetitionRange, SpecialLiteralKind,
};

use super::regexp::{equal, flags::*, CharClass, Op, Regexp, Rune, LATIN1_MAX};
use super::unicode;

/// RE2's `maximum_repeat_count`.
const MAX_REPEAT: i32 = 1000;

type Result<T> = std::result::Result<T, String>;

/// Parses `ast` (of `pattern`) as RE2 would parse `pattern` with default
/// options.
pub(super) fn parse(pattern: &str, ast: &Ast) -> Result<Regexp> {
    let mut ps = ParseState {
        pattern,
        flags: ENVOY,
        stack: Vec::new(),
        ncap: 0,
    };
    ps.walk(ast)?;
    ps.do_finish()
}

struct ParseState<'p> {
    pattern: &'p str,
    flags: u32,
    /// The parse stack, top last.
    stack: Vec<Regexp>,
    ncap: i32,
}

fn text<'p>(pattern: &'p str, span: &ast::Span) -> &'p str {
    pattern
        .get(span.start.offset..span.end.offset)
        .unwrap_or("")
}

impl ParseState<'_> {
    /// Feeds one syntax tree node to the parse stack.
    fn walk(&mut self, ast: &Ast) -> Result<()> {
        match ast {
            Ast::Empty(_) => Ok(()),
            Ast::Flags(set) => {
                self.flags = self.apply_flags(&set.flags)?;
                Ok(())
            }
            Ast::Literal(lit) => {
                for r in self.literal(lit)? {
                    self.push_literal(r);
                }
                Ok(())
            }
            Ast::Dot(_) => {
                self.push_dot();
                Ok(())
            }
            Ast::Assertion(a) => {
                use ast::AssertionKind as K;
                match a.kind {
                    K::StartLine => self.push_caret(),
                    K::EndLine => self.push_dollar(),
                    K::StartText => self.push_simple_op(Op::BeginText),
                    K::EndText => self.push_simple_op(Op::EndText),
                    K::WordBoundary => self.push_simple_op(Op::WordBoundary),
                    K::NotWordBoundary => self.push_simple_op(Op::NoWordBoundary),
                    _ => {
                        return Err(format!(
                            "{} is not an RE2 assertion",
                            text(self.pattern, &a.span)
                        ))
                    }
                }
                Ok(())
            }
            Ast::ClassUnicode(u) => {
                let mut class = CharClass::default();
                self.unicode_class(u, &mut class)?;
                self.push_regexp(Regexp::char_class(class, self.flags & !FOLD_CASE));
                Ok(())
            }
            Ast::ClassPerl(p) => {
                let mut class = CharClass::default();
                class.add_group(perl_group(&p.kind), !p.negated, self.flags);
                self.push_regexp(Regexp::char_class(class, self.flags & !FOLD_CASE));
                Ok(())
            }
            Ast::ClassBracketed(b) => {
                let class = self.bracketed(b)?;
                self.push_regexp(Regexp::char_class(class, self.flags & !FOLD_CASE));
                Ok(())
            }
            Ast::Repetition(rep) => self.repetition(rep),
            Ast::Group(g) => self.group(g),
            Ast::Alternation(alt) => {
                for (i, a) in alt.asts.iter().enumerate() {
                    if i > 0 {
                        self.do_vertical_bar();
                    }
                    self.walk(a)?;
                }
                Ok(())
            }
            Ast::Concat(c) => c.asts.iter().try_for_each(|a| self.walk(a)),
        }
    }

    fn apply_flags(&self, f: &ast::Flags) -> Result<u32> {
        let mut flags = self.flags;
        let mut negated = false;
        for item in &f.items {
            let flag = match &item.kind {
                FlagsItemKind::Negation => {
                    negated = true;
                    continue;
                }
                FlagsItemKind::Flag(flag) => flag,
            };
            let (bit, set) = match flag {
                Flag::CaseInsensitive => (FOLD_CASE, !negated),
                Flag::MultiLine => (ONE_LINE, negated),
                Flag::DotMatchesNewLine => (DOT_NL, !negated),
                Flag::SwapGreed => (NON_GREEDY, !negated),
                Flag::IgnoreWhitespace | Flag::Unicode | Flag::CRLF => {
                    return Err(format!(
                        "RE2 has no flag {}",
                        text(self.pattern, &item.span)
                    ))
                }
            };
            if set {
                flags |= bit;
            } else {
                flags &= !bit;
            }
        }
        Ok(flags)
    }

    /// The Latin-1 characters RE2 reads for a literal: one, or the UTF-8
    /// bytes of a character beyond ASCII written as itself.
    fn literal(&self, lit: &ast::Literal) -> Result<Vec<Rune>> {
        let escape = match &lit.kind {
            LiteralKind::Verbatim | LiteralKind::Meta | LiteralKind::Superfluous => {
                let mut buf = [0; 4];
                let bytes = lit.c.encode_utf8(&mut buf).bytes();
                return Ok(bytes.map(Rune::from).collect());
            }
            LiteralKind::HexFixed(k) | LiteralKind::HexBrace(k) => *k == ast::HexLiteralKind::X,
            LiteralKind::Special(s) => *s != SpecialLiteralKind::Space,
            LiteralKind::Octal => false,
        };
        let written = text(self.pattern, &lit.span);
        if !escape {
            return Err(format!("RE2 has no escape {written}"));
        }
        let r = Rune::from(lit.c);
        if r > LATIN1_MAX {
            return Err(format!(
                "invalid escape sequence {written}: Envoy's RE2 reads Latin-1, up to \\xFF"
            ));
        }
        Ok(vec![r])
    }

    fn unicode_class(&self, u: &ast::ClassUnicode, class: &mut CharClass) -> Result<()> {
        let (name, mut positive) = match &u.kind {
            ClassUnicodeKind::OneLetter(c) => (c.to_string(), !u.negated),
            ClassUnicodeKind::Named(n) => (n.clone(), !u.negated),
            ClassUnicodeKind::NamedValue { .. } => {
                return Err(format!(
                    "RE2 has no Unicode class {}",
                    text(self.pattern, &u.span)
                ))
            }
        };
        let name = match name.strip_prefix('^') {
            Some(rest) => {
                positive = !positive;
                rest.to_string()
            }
            None => name,
        };
        let group = unicode::unicode_group(&name)
            .ok_or_else(|| format!("RE2 has no Unicode class {}", text(self.pattern, &u.span)))?;
        class.add_group(&group, positive, self.flags);
        Ok(())
    }

    /// A bracketed class, read by RE2's own class lexer from the pattern
    /// text: RE2 reads it byte by byte (after the two bytes of `ÿ`, `-\D`
    /// is a range), which the syntax tree cannot show. The tree only tells
    /// what RE2 would read differently from the `regex` crate.
    fn bracketed(&self, b: &ast::ClassBracketed) -> Result<CharClass> {
        let whole = text(self.pattern, &b.span);
        if has_set_operation(&b.kind) {
            return Err(format!(
                "RE2 has no class operations (&&, --, ~~) in {whole}"
            ));
        }
        let rest = &self.pattern.as_bytes()[b.span.start.offset..];
        let mut lexer = ClassLexer {
            t: rest,
            i: 0,
            flags: self.flags,
        };
        let class = lexer.parse_char_class()?;
        if lexer.i != whole.len() {
            return Err(format!(
                "RE2 reads the class {whole} differently (a [ inside a class is a character to RE2)"
            ));
        }
        Ok(class)
    }

    fn repetition(&mut self, rep: &ast::Repetition) -> Result<()> {
        let op_text = text(self.pattern, &rep.op.span);
        if matches!(*rep.ast, Ast::Repetition(_)) {
            return Err(format!(
                "bad repetition operator {}: RE2 does not stack repetitions",
                text(self.pattern, &rep.span)
            ));
        }
        self.walk(&rep.ast)?;
        let nongreedy = !rep.greedy;
        match &rep.op.kind {
            RepetitionKind::ZeroOrOne => self.push_repeat_op(Op::Quest, nongreedy),
            RepetitionKind::ZeroOrMore => self.push_repeat_op(Op::Star, nongreedy),
            RepetitionKind::OneOrMore => self.push_repeat_op(Op::Plus, nongreedy),
            RepetitionKind::Range(range) => {
                // RE2 reads a count with a leading zero as literal text.
                let digits = op_text.trim_start_matches('{');
                let leading_zero = digits
                    .split([',', '}'])
                    .any(|d| d.len() > 1 && d.starts_with('0'));
                if leading_zero {
                    return Err(format!(
                        "RE2 reads {op_text} as text, not a repetition (leading zero)"
                    ));
                }
                let clamp = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
                let (min, max) = match *range {
                    RepetitionRange::Exactly(n) => (clamp(n), clamp(n)),
                    RepetitionRange::AtLeast(n) => (clamp(n), -1),
                    RepetitionRange::Bounded(m, n) => (clamp(m), clamp(n)),
                };
                self.push_repetition(min, max, nongreedy, op_text)
            }
        }
    }

    fn group(&mut self, g: &ast::Group) -> Result<()> {
        match &g.kind {
            GroupKind::CaptureIndex(_) => self.do_left_paren(None),
            GroupKind::CaptureName { name, .. } => {
                let valid = !name.name.is_empty()
                    && name.name.chars().all(|c| c == '_' || c.is_alphanumeric());
                if !valid {
                    return Err(format!(
                        "invalid named capture group {:?} for RE2",
                        name.name
                    ));
                }
                self.do_left_paren(Some(name.name.clone()));
            }
            GroupKind::NonCapturing(flags) => {
                let new_flags = self.apply_flags(flags)?;
                self.do_left_paren_no_capture();
                self.flags = new_flags;
            }
        }
        self.walk(&g.ast)?;
        self.do_right_paren()
    }

    /// `PushRegexp`: single-rune classes become literals, `[Aa]` a folded
    /// literal.
    fn push_regexp(&mut self, re: Regexp) {
        self.push_regexp_converted(re, true);
    }

    /// `PushRegexp`; `fresh` for a class just built (RE2 converts only
    /// those, not a finished one such as the class an alternation of
    /// literals merged into).
    fn push_regexp_converted(&mut self, mut re: Regexp, fresh: bool) {
        self.maybe_concat_string(None, 0);
        if fresh && re.op == Op::CharClass {
            re.class.remove_above(LATIN1_MAX);
            let n = re.class.nrunes();
            let first = re.class.ranges.first().map(|r| r.0).unwrap_or(0);
            if n == 1 {
                re = Regexp::literal(first, self.flags);
            } else if n == 2
                && (Rune::from(b'A')..=Rune::from(b'Z')).contains(&first)
                && re.class.contains(first + 32)
            {
                re = Regexp::literal(first + 32, self.flags | FOLD_CASE);
            }
        }
        self.stack.push(re);
    }

    /// `MaybeConcatString`: merges the two literals on top of the stack;
    /// with `r`, reuses the top for the literal `r` and says so.
    fn maybe_concat_string(&mut self, r: Option<Rune>, flags: u32) -> bool {
        let n = self.stack.len();
        if n < 2 {
            return false;
        }
        let is_lit = |re: &Regexp| matches!(re.op, Op::Literal | Op::LiteralString);
        let (below, top) = self.stack.split_at_mut(n - 1);
        let (re2, re1) = (&mut below[n - 2], &mut top[0]);
        if !is_lit(re1) || !is_lit(re2) || (re1.flags & FOLD_CASE) != (re2.flags & FOLD_CASE) {
            return false;
        }
        if re2.op == Op::Literal {
            re2.op = Op::LiteralString;
            re2.runes = vec![re2.rune];
        }
        if re1.op == Op::Literal {
            re2.runes.push(re1.rune);
        } else {
            re2.runes.append(&mut re1.runes);
        }
        if let Some(r) = r {
            re1.op = Op::Literal;
            re1.rune = r;
            re1.flags = flags;
            return true;
        }
        self.stack.pop();
        false
    }

    fn push_literal(&mut self, r: Rune) {
        if self.flags & FOLD_CASE != 0 && u8::try_from(r).is_ok_and(|b| b.is_ascii_alphabetic()) {
            let mut class = CharClass::default();
            class.add_range_flags(r, r, FOLD_CASE | CLASS_NL);
            self.push_regexp(Regexp::char_class(class, self.flags & !FOLD_CASE));
            return;
        }
        if self.maybe_concat_string(Some(r), self.flags) {
            return;
        }
        self.push_regexp(Regexp::literal(r, self.flags));
    }

    fn push_caret(&mut self) {
        let op = if self.flags & ONE_LINE != 0 {
            Op::BeginText
        } else {
            Op::BeginLine
        };
        self.push_simple_op(op);
    }

    fn push_dollar(&mut self) {
        if self.flags & ONE_LINE != 0 {
            let flags = self.flags;
            self.flags |= WAS_DOLLAR;
            self.push_simple_op(Op::EndText);
            self.flags = flags;
        } else {
            self.push_simple_op(Op::EndLine);
        }
    }

    fn push_dot(&mut self) {
        if self.flags & DOT_NL != 0 && self.flags & NEVER_NL == 0 {
            self.push_simple_op(Op::AnyChar);
            return;
        }
        let mut class = CharClass::default();
        class.add_range(0, Rune::from(b'\n') - 1);
        class.add_range(Rune::from(b'\n') + 1, LATIN1_MAX);
        self.push_regexp(Regexp::char_class(class, self.flags & !FOLD_CASE));
    }

    fn push_simple_op(&mut self, op: Op) {
        self.push_regexp(Regexp::new(op, self.flags));
    }

    fn top_operand(&mut self, what: &str) -> Result<Regexp> {
        match self.stack.pop() {
            Some(re) if !re.op.is_marker() => Ok(re),
            other => {
                self.stack.extend(other);
                Err(format!("missing argument to repetition operator {what}"))
            }
        }
    }

    /// `PushRepeatOp`: `*`, `+`, `?`, squashing repeats of repeats.
    fn push_repeat_op(&mut self, op: Op, nongreedy: bool) -> Result<()> {
        let fl = if nongreedy {
            self.flags ^ NON_GREEDY
        } else {
            self.flags
        };
        let sub = self.top_operand("*")?;
        if op == sub.op && fl == sub.flags {
            self.stack.push(sub);
            return Ok(());
        }
        if sub.op.is_repeat() && fl == sub.flags {
            self.stack.push(Regexp {
                op: Op::Star,
                ..sub
            });
            return Ok(());
        }
        self.stack.push(Regexp::with_subs(op, fl, vec![sub]));
        Ok(())
    }

    /// `PushRepetition`: `{n,m}`, at most 1000 copies in all.
    fn push_repetition(&mut self, min: i32, max: i32, nongreedy: bool, what: &str) -> Result<()> {
        if (max != -1 && max < min) || min > MAX_REPEAT || max > MAX_REPEAT {
            return Err(format!(
                "bad repetition operator {what}: RE2 allows at most {MAX_REPEAT}"
            ));
        }
        let fl = if nongreedy {
            self.flags ^ NON_GREEDY
        } else {
            self.flags
        };
        let sub = self.top_operand(what)?;
        let re = Regexp::repeat(sub, fl, min, max);
        if (min >= 2 || max >= 2) && repetition_budget(&re, MAX_REPEAT) == 0 {
            return Err(format!(
                "bad repetition operator {what}: nested repetitions make more than {MAX_REPEAT} copies"
            ));
        }
        self.stack.push(re);
        Ok(())
    }

    fn do_left_paren(&mut self, name: Option<String>) {
        self.ncap += 1;
        let mut re = Regexp::new(Op::LeftParen, self.flags);
        re.cap = self.ncap;
        re.name = name;
        self.push_regexp(re);
    }

    fn do_left_paren_no_capture(&mut self) {
        let mut re = Regexp::new(Op::LeftParen, self.flags);
        re.cap = -1;
        self.push_regexp(re);
    }

    /// `DoVerticalBar`: the alternatives so far sit below a bar marker.
    fn do_vertical_bar(&mut self) {
        self.maybe_concat_string(None, 0);
        self.do_concatenation();
        let n = self.stack.len();
        if n >= 2 && self.stack[n - 2].op == Op::VerticalBar {
            if n >= 3 {
                let (r1, r3) = (self.stack[n - 1].op, self.stack[n - 3].op);
                let subsumable = |op| matches!(op, Op::Literal | Op::CharClass | Op::AnyChar);
                if r3 == Op::AnyChar && subsumable(r1) {
                    self.stack.pop();
                    return;
                }
                if r1 == Op::AnyChar && subsumable(r3) {
                    // The AnyChar takes the place of the alternative below.
                    self.stack.swap(n - 3, n - 1);
                    self.stack.pop();
                    return;
                }
            }
            self.stack.swap(n - 2, n - 1);
            return;
        }
        self.push_simple_op(Op::VerticalBar);
    }

    fn do_right_paren(&mut self) -> Result<()> {
        self.do_alternation();
        let n = self.stack.len();
        if n < 2 || self.stack[n - 2].op != Op::LeftParen {
            return Err("unexpected )".into());
        }
        let r1 = self
            .stack
            .pop()
            .unwrap_or_else(|| Regexp::new(Op::NoMatch, 0));
        let paren = self
            .stack
            .pop()
            .unwrap_or_else(|| Regexp::new(Op::NoMatch, 0));
        self.flags = paren.flags;
        let re = if paren.cap > 0 {
            Regexp {
                op: Op::Capture,
                subs: vec![r1],
                ..paren
            }
        } else {
            r1
        };
        // A class here was converted when it was pushed, or is finished.
        self.push_regexp_converted(re, false);
        Ok(())
    }

    fn do_finish(&mut self) -> Result<Regexp> {
        self.do_alternation();
        match (self.stack.pop(), self.stack.is_empty()) {
            (Some(re), true) => Ok(re),
            _ => Err("missing )".into()),
        }
    }

    fn do_concatenation(&mut self) {
        if self.stack.last().is_none_or(|re| re.op.is_marker()) {
            self.push_regexp(Regexp::new(Op::EmptyMatch, self.flags));
        }
        self.do_collapse(Op::Concat);
    }

    fn do_alternation(&mut self) {
        self.do_vertical_bar();
        self.stack.pop(); // the bar
        self.do_collapse(Op::Alternate);
    }

    /// `DoCollapse`: everything down to the marker becomes one concatenation
    /// or alternation, flattening ones of the same op.
    fn do_collapse(&mut self, op: Op) {
        let start = self
            .stack
            .iter()
            .rposition(|re| re.op.is_marker())
            .map_or(0, |i| i + 1);
        if self.stack.len() - start == 1 {
            return;
        }
        let mut subs = Vec::new();
        for re in self.stack.drain(start..) {
            if re.op == op {
                subs.extend(re.subs);
            } else {
                subs.push(re);
            }
        }
        let re = if op == Op::Alternate {
            alternate(subs, self.flags)
        } else {
            Regexp::concat_or_alternate(op, subs, self.flags)
        };
        self.stack.push(re);
    }
}

/// Whether a class uses `&&`, `--` or `~~`, which RE2 reads as characters.
fn has_set_operation(set: &ClassSet) -> bool {
    fn item(i: &ClassSetItem) -> bool {
        match i {
            ClassSetItem::Bracketed(b) => has_set_operation(&b.kind),
            ClassSetItem::Union(u) => u.items.iter().any(item),
            _ => false,
        }
    }
    match set {
        ClassSet::BinaryOp(_) => true,
        ClassSet::Item(i) => item(i),
    }
}

/// RE2's `ParseCharClass` and the lexing it does (`ParseCCName`,
/// `ParseUnicodeGroup`, `MaybeParsePerlCCEscape`, `ParseCCRange`,
/// `ParseEscape`), over the pattern's bytes as Latin-1 runes.
struct ClassLexer<'t> {
    t: &'t [u8],
    i: usize,
    flags: u32,
}

impl ClassLexer<'_> {
    fn left(&self) -> usize {
        self.t.len() - self.i
    }

    fn peek(&self, k: usize) -> Option<u8> {
        self.t.get(self.i + k).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek(0)?;
        self.i += 1;
        Some(c)
    }

    fn written(&self, from: usize) -> String {
        String::from_utf8_lossy(&self.t[from..self.i.min(self.t.len())]).into_owned()
    }

    fn parse_char_class(&mut self) -> Result<CharClass> {
        let mut class = CharClass::default();
        self.i += 1; // '['
        let negated = self.peek(0) == Some(b'^');
        if negated {
            self.i += 1;
            if self.flags & CLASS_NL == 0 || self.flags & NEVER_NL != 0 {
                class.add_range(Rune::from(b'\n'), Rune::from(b'\n'));
            }
        }
        let mut first = true;
        while let Some(c) = self.peek(0) {
            if c == b']' && !first {
                break;
            }
            first = false;
            if self.left() > 2
                && c == b'['
                && self.peek(1) == Some(b':')
                && self.posix_class(&mut class)?
            {
                continue;
            }
            if self.left() > 2 && c == b'\\' && matches!(self.peek(1), Some(b'p' | b'P')) {
                self.unicode_group(&mut class)?;
                continue;
            }
            if c == b'\\' {
                let group = match self.peek(1) {
                    Some(b'd') => Some((unicode::PERL_DIGIT, true)),
                    Some(b'D') => Some((unicode::PERL_DIGIT, false)),
                    Some(b's') => Some((unicode::PERL_SPACE, true)),
                    Some(b'S') => Some((unicode::PERL_SPACE, false)),
                    Some(b'w') => Some((unicode::PERL_WORD, true)),
                    Some(b'W') => Some((unicode::PERL_WORD, false)),
                    _ => None,
                };
                if let Some((group, positive)) = group {
                    self.i += 2;
                    class.add_group(group, positive, self.flags);
                    continue;
                }
            }
            let start = self.i;
            let lo = self.class_char()?;
            let mut hi = lo;
            if self.left() >= 2 && self.peek(0) == Some(b'-') && self.peek(1) != Some(b']') {
                self.i += 1;
                hi = self.class_char()?;
                if hi < lo {
                    return Err(format!(
                        "invalid character class range {}",
                        self.written(start)
                    ));
                }
            }
            // Explicit characters keep `\n` whatever the flags.
            class.add_range_flags(lo, hi, self.flags | CLASS_NL);
        }
        if self.next().is_none() {
            return Err("missing ]".into());
        }
        if negated {
            class.negate();
        }
        Ok(class)
    }

    /// `[:alpha:]`; false when there is no closing `:]`.
    fn posix_class(&mut self, class: &mut CharClass) -> Result<bool> {
        let rest = &self.t[self.i..];
        let close =
            (2..rest.len().saturating_sub(1)).find(|&q| rest[q] == b':' && rest[q + 1] == b']');
        let Some(end) = close else {
            return Ok(false);
        };
        let name = String::from_utf8_lossy(&rest[..end + 2]).into_owned();
        let (group, positive) = unicode::posix_group(&name)
            .ok_or_else(|| format!("invalid character class range {name}"))?;
        self.i += end + 2;
        class.add_group(group, positive, self.flags);
        Ok(true)
    }

    /// `\pL`, `\p{Greek}`, `\P{...}`, `\p{^...}`.
    fn unicode_group(&mut self, class: &mut CharClass) -> Result<()> {
        let start = self.i;
        let mut positive = self.peek(1) == Some(b'p');
        self.i += 2;
        let name = match self.next() {
            None => return Err("missing ]".into()),
            Some(b'{') => {
                let rest = &self.t[self.i..];
                let Some(end) = rest.iter().position(|&c| c == b'}') else {
                    return Err(format!(
                        "invalid character class range {}",
                        self.written(start)
                    ));
                };
                self.i += end + 1;
                String::from_utf8_lossy(&rest[..end]).into_owned()
            }
            Some(c) => char::from(c).to_string(),
        };
        let name = match name.strip_prefix('^') {
            Some(n) => {
                positive = !positive;
                n.to_string()
            }
            None => name,
        };
        let group = unicode::unicode_group(&name)
            .ok_or_else(|| format!("invalid character class range {}", self.written(start)))?;
        class.add_group(&group, positive, self.flags);
        Ok(())
    }

    /// `ParseCCCharacter`.
    fn class_char(&mut self) -> Result<Rune> {
        match self.peek(0) {
            None => Err("missing ]".into()),
            Some(b'\\') => self.escape(),
            Some(c) => {
                self.i += 1;
                Ok(Rune::from(c))
            }
        }
    }

    /// `ParseEscape`, with Latin-1's largest rune.
    fn escape(&mut self) -> Result<Rune> {
        let start = self.i;
        self.i += 1; // '\\'
        let bad = |l: &Self| Err(format!("invalid escape sequence {}", l.written(start)));
        let Some(c) = self.next() else {
            return Err("trailing \\".into());
        };
        let octal = |c: Option<u8>| c.filter(|c| (b'0'..=b'7').contains(c));
        match c {
            b'0'..=b'7' => {
                if c != b'0' && octal(self.peek(0)).is_none() {
                    return bad(self);
                }
                let mut code = Rune::from(c - b'0');
                for _ in 0..2 {
                    match octal(self.peek(0)) {
                        Some(d) => {
                            code = code * 8 + Rune::from(d - b'0');
                            self.i += 1;
                        }
                        None => break,
                    }
                }
                if code > LATIN1_MAX {
                    return bad(self);
                }
                Ok(code)
            }
            b'x' => {
                let hex = |c: u8| char::from(c).to_digit(16);
                let Some(c) = self.next() else {
                    return bad(self);
                };
                if c == b'{' {
                    let mut code = 0;
                    let mut n = 0;
                    loop {
                        let Some(c) = self.next() else {
                            return bad(self);
                        };
                        match hex(c) {
                            Some(d) => {
                                n += 1;
                                code = code * 16 + d;
                                if code > LATIN1_MAX {
                                    return bad(self);
                                }
                            }
                            None if c == b'}' && n > 0 => return Ok(code),
                            None => return bad(self),
                        }
                    }
                }
                let Some(c1) = self.next() else {
                    return bad(self);
                };
                match (hex(c), hex(c1)) {
                    (Some(a), Some(b)) => Ok(a * 16 + b),
                    _ => bad(self),
                }
            }
            b'n' => Ok(0x0a),
            b'r' => Ok(0x0d),
            b't' => Ok(0x09),
            b'a' => Ok(0x07),
            b'f' => Ok(0x0c),
            b'v' => Ok(0x0b),
            c if c < 0x80 && !c.is_ascii_alphanumeric() => Ok(Rune::from(c)),
            _ => bad(self),
        }
    }
}

fn perl_group(kind: &ClassPerlKind) -> &'static [(Rune, Rune)] {
    match kind {
        ClassPerlKind::Digit => unicode::PERL_DIGIT,
        ClassPerlKind::Space => unicode::PERL_SPACE,
        ClassPerlKind::Word => unicode::PERL_WORD,
    }
}

/// `RepetitionWalker`: the budget left once every repetition on a path
/// divides it by its count.
fn repetition_budget(re: &Regexp, budget: i32) -> i32 {
    let mut arg = budget;
    if re.op == Op::Repeat {
        let m = if re.max < 0 { re.min } else { re.max };
        if m > 0 {
            arg /= m;
        }
    }
    re.subs
        .iter()
        .map(|s| repetition_budget(s, arg))
        .fold(arg, i32::min)
}

/// `Regexp::Alternate`: an alternation with its common prefixes factored.
pub(super) fn alternate(subs: Vec<Regexp>, flags: u32) -> Regexp {
    if subs.len() <= 1 {
        return Regexp::concat_or_alternate(Op::Alternate, subs, flags);
    }
    let subs = factor_alternation(subs, flags);
    Regexp::concat_or_alternate(Op::Alternate, subs, flags)
}

/// A factored run: its prefix (or merged class) and the range of `subs`.
struct Splice {
    prefix: Regexp,
    start: usize,
    len: usize,
}

/// `FactorAlternation`: round 1 factors common literal prefixes, round 2
/// common simple leading pieces, round 3 merges runs of literals and
/// classes into one class; rounds 1 and 2 recurse into the suffixes.
fn factor_alternation(mut subs: Vec<Regexp>, flags: u32) -> Vec<Regexp> {
    for round in 1..=3 {
        let splices = match round {
            1 => round1(&mut subs),
            2 => round2(&mut subs),
            _ => round3(&mut subs, flags),
        };
        if splices.is_empty() {
            continue;
        }
        let mut old: Vec<Option<Regexp>> = subs.into_iter().map(Some).collect();
        let mut out = Vec::new();
        let mut i = 0;
        for splice in splices {
            out.extend(old[i..splice.start].iter_mut().filter_map(Option::take));
            let range: Vec<Regexp> = old[splice.start..splice.start + splice.len]
                .iter_mut()
                .filter_map(Option::take)
                .collect();
            if round == 3 {
                out.push(splice.prefix);
            } else {
                let suffixes = factor_alternation(range, flags);
                out.push(Regexp::concat(
                    vec![splice.prefix, Regexp::alternate_no_factor(suffixes, flags)],
                    flags,
                ));
            }
            i = splice.start + splice.len;
        }
        out.extend(old[i..].iter_mut().filter_map(Option::take));
        subs = out;
    }
    subs
}

/// `LeadingString`: the literal runes `re` starts with, and their flags.
fn leading_string(re: &Regexp) -> (&[Rune], u32) {
    let mut re = re;
    while re.op == Op::Concat && !re.subs.is_empty() {
        re = &re.subs[0];
    }
    let flags = re.flags & FOLD_CASE;
    match re.op {
        Op::Literal => (std::slice::from_ref(&re.rune), flags),
        Op::LiteralString => (&re.runes, flags),
        _ => (&[], flags),
    }
}

/// `RemoveLeadingString`: drops `n` leading runes, in place.
fn remove_leading_string(re: &mut Regexp, n: usize) {
    remove_leading_string_at(re, n, 0);
}

fn remove_leading_string_at(re: &mut Regexp, n: usize, depth: usize) {
    if re.op == Op::Concat {
        if re.subs.is_empty() {
            return;
        }
        remove_leading_string_at(&mut re.subs[0], n, depth + 1);
        // RE2 tidies up at most four levels of concatenation.
        if depth < 4 && re.subs[0].op == Op::EmptyMatch {
            re.subs.remove(0);
            if re.subs.len() == 1 {
                let only = re.subs.remove(0);
                *re = only;
            } else if re.subs.is_empty() {
                re.op = Op::EmptyMatch;
            }
        }
        return;
    }
    match re.op {
        Op::Literal => {
            re.rune = 0;
            re.op = Op::EmptyMatch;
        }
        Op::LiteralString => {
            if n >= re.runes.len() {
                re.runes.clear();
                re.op = Op::EmptyMatch;
            } else if n == re.runes.len() - 1 {
                re.rune = re.runes[re.runes.len() - 1];
                re.runes.clear();
                re.op = Op::Literal;
            } else {
                re.runes.drain(..n);
            }
        }
        _ => {}
    }
}

fn round1(subs: &mut [Regexp]) -> Vec<Splice> {
    let mut splices = Vec::new();
    let mut start = 0;
    let mut runes: Vec<Rune> = Vec::new();
    let mut runeflags = 0;
    for i in 0..=subs.len() {
        let mut next: Option<(Vec<Rune>, u32)> = None;
        if i < subs.len() {
            let (rune_i, flags_i) = leading_string(&subs[i]);
            if flags_i == runeflags {
                let same = runes.iter().zip(rune_i).take_while(|(a, b)| a == b).count();
                if same > 0 {
                    runes.truncate(same);
                    continue;
                }
            }
            next = Some((rune_i.to_vec(), flags_i));
        }
        if i > start + 1 {
            let prefix = Regexp::literal_string(&runes, runeflags);
            for sub in &mut subs[start..i] {
                remove_leading_string(sub, runes.len());
            }
            splices.push(Splice {
                prefix,
                start,
                len: i - start,
            });
        }
        if let Some((r, f)) = next {
            start = i;
            runes = r;
            runeflags = f;
        }
    }
    splices
}

/// `LeadingRegexp`.
fn leading_regexp(re: &Regexp) -> Option<&Regexp> {
    if re.op == Op::EmptyMatch {
        return None;
    }
    if re.op == Op::Concat && re.subs.len() >= 2 {
        if re.subs[0].op == Op::EmptyMatch {
            return None;
        }
        return Some(&re.subs[0]);
    }
    Some(re)
}

/// `RemoveLeadingRegexp`.
fn remove_leading_regexp(re: Regexp) -> Regexp {
    if re.op == Op::EmptyMatch {
        return re;
    }
    if re.op == Op::Concat && re.subs.len() >= 2 {
        if re.subs[0].op == Op::EmptyMatch {
            return re;
        }
        let mut re = re;
        re.subs.remove(0);
        if re.subs.len() == 1 {
            return re.subs.remove(0);
        }
        return re;
    }
    Regexp::new(Op::EmptyMatch, re.flags)
}

/// Round 2 factors only pieces that cannot change the match's paths.
fn factorable(first: &Regexp) -> bool {
    let atom = |re: &Regexp| matches!(re.op, Op::Literal | Op::CharClass | Op::AnyChar);
    first.op.is_empty_width()
        || matches!(first.op, Op::CharClass | Op::AnyChar)
        || (first.op == Op::Repeat && first.min == first.max && atom(first.first_sub()))
}

fn round2(subs: &mut [Regexp]) -> Vec<Splice> {
    let mut splices = Vec::new();
    let mut start = 0;
    let mut first: Option<Regexp> = None;
    for i in 0..=subs.len() {
        let mut first_i = None;
        if i < subs.len() {
            first_i = leading_regexp(&subs[i]).cloned();
            if let (Some(f), Some(fi)) = (&first, &first_i) {
                if factorable(f) && equal(f, fi) {
                    continue;
                }
            }
        }
        if i > start + 1 {
            if let Some(prefix) = first.clone() {
                for sub in &mut subs[start..i] {
                    let taken = std::mem::replace(sub, Regexp::new(Op::NoMatch, 0));
                    *sub = remove_leading_regexp(taken);
                }
                splices.push(Splice {
                    prefix,
                    start,
                    len: i - start,
                });
            }
        }
        if i < subs.len() {
            start = i;
            first = first_i;
        }
    }
    splices
}

fn round3(subs: &mut [Regexp], flags: u32) -> Vec<Splice> {
    let mut splices = Vec::new();
    let mut start = 0;
    let is_atom = |re: &Regexp| matches!(re.op, Op::Literal | Op::CharClass);
    for i in 0..=subs.len() {
        if i < subs.len() && i > start && is_atom(&subs[start]) && is_atom(&subs[i]) {
            continue;
        }
        if i > start + 1 {
            let mut class = CharClass::default();
            for re in &subs[start..i] {
                if re.op == Op::CharClass {
                    for &(lo, hi) in &re.class.ranges {
                        class.add_range_flags(lo, hi, re.flags);
                    }
                } else if re.flags & FOLD_CASE != 0 {
                    let mut tmp = CharClass::default();
                    tmp.add_range_flags(re.rune, re.rune, re.flags);
                    class.add_class(&tmp);
                } else {
                    class.add_range_flags(re.rune, re.rune, re.flags);
                }
            }
            splices.push(Splice {
                prefix: Regexp::char_class(class, flags & !FOLD_CASE),
                start,
                len: i - start,
            });
        }
        if i < subs.len() {
            start = i;
        }
    }
    splices
}

/// `RequiredPrefix`: `^literal rest` is matched as a fixed prefix and the
/// program is compiled for `rest` alone (unanchored).
pub(super) fn required_prefix(re: Regexp) -> Regexp {
    if re.op != Op::Concat {
        return re;
    }
    let i = re.subs.iter().take_while(|s| s.op == Op::BeginText).count();
    if i == 0 || i >= re.subs.len() || !matches!(re.subs[i].op, Op::Literal | Op::LiteralString) {
        return re;
    }
    let flags = re.flags;
    let rest: Vec<Regexp> = re.subs.into_iter().skip(i + 1).collect();
    if rest.is_empty() {
        Regexp::new(Op::EmptyMatch, flags)
    } else {
        Regexp::concat(rest, flags)
    }
}
