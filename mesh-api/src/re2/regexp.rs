//! RE2's parse tree (`re2/regexp.h`, `regexp.cc`): the node, the parse
//! flags, the character class builder and structural equality, with the
//! same rules as the C++ so that parsing, simplification and compilation
//! built on them make the same decisions RE2 makes. The encoding is
//! Latin-1 throughout (see [`flags::ENVOY`]): runes are bytes, classes end
//! at 0xFF once pushed, case folding is ASCII's.

/// A code point; RE2 keeps surrogates too, so not a `char`.
pub(super) type Rune = u32;
pub(super) const RUNE_MAX: Rune = 0x10FFFF;
/// The largest rune of Latin-1, the encoding Envoy's RE2 runs with.
pub(super) const LATIN1_MAX: Rune = 0xFF;

/// RE2's `Regexp::ParseFlags`.
pub(super) mod flags {
    pub const FOLD_CASE: u32 = 1 << 0;
    pub const CLASS_NL: u32 = 1 << 2;
    pub const DOT_NL: u32 = 1 << 3;
    pub const ONE_LINE: u32 = 1 << 4;
    pub const NON_GREEDY: u32 = 1 << 6;
    pub const PERL_CLASSES: u32 = 1 << 7;
    pub const PERL_B: u32 = 1 << 8;
    pub const PERL_X: u32 = 1 << 9;
    pub const UNICODE_GROUPS: u32 = 1 << 10;
    pub const NEVER_NL: u32 = 1 << 11;
    pub const WAS_DOLLAR: u32 = 1 << 13;
    pub const LIKE_PERL: u32 =
        CLASS_NL | ONE_LINE | PERL_CLASSES | PERL_B | PERL_X | UNICODE_GROUPS;
    /// The parse flags of the options Envoy 1.40 compiles `safe_regex`
    /// with (RE2's defaults). Envoy's RE2 runs them in Latin-1, as
    /// measured: `\x{100}` is refused as an invalid escape, `\p{Greek}`
    /// matches nothing, `.` is one byte; the Latin-1 flag itself is left
    /// out since every node here has it.
    pub const ENVOY: u32 = CLASS_NL | LIKE_PERL;
}
use flags::*;

/// `RegexpOp`, plus the two parse-stack markers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    NoMatch,
    EmptyMatch,
    Literal,
    LiteralString,
    Concat,
    Alternate,
    Star,
    Plus,
    Quest,
    Repeat,
    Capture,
    AnyChar,
    BeginLine,
    EndLine,
    WordBoundary,
    NoWordBoundary,
    BeginText,
    EndText,
    CharClass,
    LeftParen,
    VerticalBar,
}

impl Op {
    pub(super) fn is_marker(self) -> bool {
        matches!(self, Op::LeftParen | Op::VerticalBar)
    }

    pub(super) fn is_empty_width(self) -> bool {
        matches!(
            self,
            Op::BeginLine
                | Op::EndLine
                | Op::WordBoundary
                | Op::NoWordBoundary
                | Op::BeginText
                | Op::EndText
        )
    }

    pub(super) fn is_repeat(self) -> bool {
        matches!(self, Op::Star | Op::Plus | Op::Quest)
    }
}

/// One node. Fields a node's op does not use stay at their defaults.
#[derive(Clone, Debug)]
pub(super) struct Regexp {
    pub op: Op,
    pub flags: u32,
    pub subs: Vec<Regexp>,
    /// `Literal`.
    pub rune: Rune,
    /// `LiteralString`.
    pub runes: Vec<Rune>,
    /// `CharClass`.
    pub class: CharClass,
    /// `Repeat`: `max` is -1 for no upper bound.
    pub min: i32,
    pub max: i32,
    /// `Capture` and `LeftParen`: the group number, -1 for non-capturing.
    pub cap: i32,
    pub name: Option<String>,
}

impl Regexp {
    pub(super) fn new(op: Op, flags: u32) -> Self {
        Regexp {
            op,
            flags,
            subs: Vec::new(),
            rune: 0,
            runes: Vec::new(),
            class: CharClass::default(),
            min: 0,
            max: 0,
            cap: 0,
            name: None,
        }
    }

    pub(super) fn literal(rune: Rune, flags: u32) -> Self {
        Regexp {
            rune,
            ..Regexp::new(Op::Literal, flags)
        }
    }

    pub(super) fn with_subs(op: Op, flags: u32, subs: Vec<Regexp>) -> Self {
        Regexp {
            subs,
            ..Regexp::new(op, flags)
        }
    }

    pub(super) fn char_class(class: CharClass, flags: u32) -> Self {
        Regexp {
            class,
            ..Regexp::new(Op::CharClass, flags)
        }
    }

    /// `Regexp::LiteralString`: empty match, a literal or a string.
    pub(super) fn literal_string(runes: &[Rune], flags: u32) -> Self {
        match runes {
            [] => Regexp::new(Op::EmptyMatch, flags),
            [r] => Regexp::literal(*r, flags),
            _ => Regexp {
                runes: runes.to_vec(),
                ..Regexp::new(Op::LiteralString, flags)
            },
        }
    }

    pub(super) fn repeat(sub: Regexp, flags: u32, min: i32, max: i32) -> Self {
        Regexp {
            min,
            max,
            ..Regexp::with_subs(Op::Repeat, flags, vec![sub])
        }
    }

    /// `Regexp::ConcatOrAlternate` without factoring (the parser factors
    /// alternations itself, see `parse::factor_alternation`).
    pub(super) fn concat_or_alternate(op: Op, mut subs: Vec<Regexp>, flags: u32) -> Self {
        if subs.len() == 1 {
            return subs
                .pop()
                .unwrap_or_else(|| Regexp::new(Op::NoMatch, flags));
        }
        if subs.is_empty() {
            let op = if op == Op::Alternate {
                Op::NoMatch
            } else {
                Op::EmptyMatch
            };
            return Regexp::new(op, flags);
        }
        Regexp::with_subs(op, flags, subs)
    }

    pub(super) fn concat(subs: Vec<Regexp>, flags: u32) -> Self {
        Regexp::concat_or_alternate(Op::Concat, subs, flags)
    }

    pub(super) fn alternate_no_factor(subs: Vec<Regexp>, flags: u32) -> Self {
        Regexp::concat_or_alternate(Op::Alternate, subs, flags)
    }

    /// `Regexp::Star`, `Plus`, `Quest`: `**`, `++`, `??` squash, and so do
    /// mixed ones (into `*`) when the flags agree.
    pub(super) fn star_plus_or_quest(op: Op, sub: Regexp, flags: u32) -> Self {
        if op == sub.op && flags == sub.flags {
            return sub;
        }
        if sub.op.is_repeat() && flags == sub.flags {
            if sub.op == Op::Star {
                return sub;
            }
            let inner = sub.subs.into_iter().next();
            return Regexp::with_subs(Op::Star, flags, inner.into_iter().collect());
        }
        Regexp::with_subs(op, flags, vec![sub])
    }

    pub(super) fn first_sub(&self) -> &Regexp {
        &self.subs[0]
    }
}

/// `TopEqual`: this node without its subexpressions.
fn top_equal(a: &Regexp, b: &Regexp) -> bool {
    if a.op != b.op {
        return false;
    }
    let differ = |bit: u32| (a.flags ^ b.flags) & bit != 0;
    match a.op {
        Op::EndText => !differ(WAS_DOLLAR),
        Op::Literal => a.rune == b.rune && !differ(FOLD_CASE),
        Op::LiteralString => a.runes == b.runes && !differ(FOLD_CASE),
        Op::Alternate | Op::Concat => a.subs.len() == b.subs.len(),
        Op::Star | Op::Plus | Op::Quest => !differ(NON_GREEDY),
        Op::Repeat => !differ(NON_GREEDY) && a.min == b.min && a.max == b.max,
        Op::Capture => a.cap == b.cap && a.name == b.name,
        Op::CharClass => a.class.ranges == b.class.ranges,
        _ => true,
    }
}

/// `Regexp::Equal`: the whole trees.
pub(super) fn equal(a: &Regexp, b: &Regexp) -> bool {
    top_equal(a, b) && a.subs.iter().zip(&b.subs).all(|(x, y)| equal(x, y))
}

/// A set of rune ranges, sorted, neither overlapping nor abutting: RE2's
/// `CharClassBuilder` and `CharClass` in one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct CharClass {
    pub ranges: Vec<(Rune, Rune)>,
}

impl CharClass {
    pub(super) fn nrunes(&self) -> u64 {
        self.ranges
            .iter()
            .map(|(lo, hi)| u64::from(hi - lo) + 1)
            .sum()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub(super) fn is_full(&self) -> bool {
        self.nrunes() == u64::from(RUNE_MAX) + 1
    }

    /// The index of the first range ending at or after `r`.
    fn lower_bound(&self, r: Rune) -> usize {
        self.ranges.partition_point(|&(_, hi)| hi < r)
    }

    pub(super) fn contains(&self, r: Rune) -> bool {
        let i = self.lower_bound(r);
        i < self.ranges.len() && self.ranges[i].0 <= r
    }

    /// `AddRange`: adds `lo..=hi`; false when it was all there already.
    pub(super) fn add_range(&mut self, lo: Rune, hi: Rune) -> bool {
        if hi < lo {
            return false;
        }
        let i = self.lower_bound(lo);
        if i < self.ranges.len() && self.ranges[i].0 <= lo && hi <= self.ranges[i].1 {
            return false;
        }
        // Merge every range overlapping or abutting lo..=hi.
        let start = self.lower_bound(lo.saturating_sub(1));
        let mut end = start;
        let (mut new_lo, mut new_hi) = (lo, hi);
        while end < self.ranges.len() && self.ranges[end].0 <= hi.saturating_add(1) {
            new_lo = new_lo.min(self.ranges[end].0);
            new_hi = new_hi.max(self.ranges[end].1);
            end += 1;
        }
        self.ranges.splice(start..end, [(new_lo, new_hi)]);
        true
    }

    pub(super) fn add_class(&mut self, other: &CharClass) {
        for &(lo, hi) in &other.ranges {
            self.add_range(lo, hi);
        }
    }

    pub(super) fn negate(&mut self) {
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut next = 0;
        for &(lo, hi) in &self.ranges {
            if lo > next {
                out.push((next, lo - 1));
            }
            next = hi + 1;
        }
        if next <= RUNE_MAX {
            out.push((next, RUNE_MAX));
        }
        self.ranges = out;
    }

    /// `FoldsASCII`: the class has each ASCII letter in both cases or in
    /// neither.
    pub(super) fn folds_ascii(&self) -> bool {
        (b'a'..=b'z').all(|c| {
            self.contains(Rune::from(c)) == self.contains(Rune::from(c.to_ascii_uppercase()))
        })
    }

    /// `RemoveAbove`: drops every rune above `r`.
    pub(super) fn remove_above(&mut self, r: Rune) {
        self.ranges.retain(|&(lo, _)| lo <= r);
        if let Some(last) = self.ranges.last_mut() {
            last.1 = last.1.min(r);
        }
    }

    /// `AddFoldedRangeLatin1`: the range and the other case of its ASCII
    /// letters.
    fn add_folded_range_latin1(&mut self, lo: Rune, hi: Rune) {
        self.add_range(lo, hi);
        for (a, b, delta) in [(b'A', b'Z', 32i64), (b'a', b'z', -32i64)] {
            let (from, to) = (lo.max(Rune::from(a)), hi.min(Rune::from(b)));
            if from <= to {
                let shift = |r: Rune| (i64::from(r) + delta) as Rune;
                self.add_range(shift(from), shift(to));
            }
        }
    }

    /// `AddRangeFlags`: `\n` cut when the flags say so, case folded when
    /// they say so.
    pub(super) fn add_range_flags(&mut self, lo: Rune, hi: Rune, parse_flags: u32) {
        let cut_nl = parse_flags & CLASS_NL == 0 || parse_flags & NEVER_NL != 0;
        let nl = Rune::from(b'\n');
        if cut_nl && lo <= nl && nl <= hi {
            if lo < nl {
                self.add_range_flags(lo, nl - 1, parse_flags);
            }
            if hi > nl {
                self.add_range_flags(nl + 1, hi, parse_flags);
            }
            return;
        }
        if parse_flags & FOLD_CASE != 0 {
            self.add_folded_range_latin1(lo, hi);
        } else {
            self.add_range(lo, hi);
        }
    }

    /// `AddUGroup`: a group (a list of ranges) or its negation.
    pub(super) fn add_group(&mut self, group: &[(Rune, Rune)], positive: bool, parse_flags: u32) {
        if positive {
            for &(lo, hi) in group {
                self.add_range_flags(lo, hi, parse_flags);
            }
            return;
        }
        if parse_flags & FOLD_CASE != 0 {
            // Fold first, then negate.
            let mut folded = CharClass::default();
            folded.add_group(group, true, parse_flags);
            if parse_flags & CLASS_NL == 0 || parse_flags & NEVER_NL != 0 {
                folded.add_range(Rune::from(b'\n'), Rune::from(b'\n'));
            }
            folded.negate();
            self.add_class(&folded);
            return;
        }
        let mut next = 0;
        for &(lo, hi) in group {
            if next < lo {
                self.add_range_flags(next, lo - 1, parse_flags);
            }
            next = hi + 1;
        }
        if next <= RUNE_MAX {
            self.add_range_flags(next, RUNE_MAX, parse_flags);
        }
    }
}
