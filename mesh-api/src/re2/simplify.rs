//! `Regexp::Simplify` (`simplify.cc`): the coalescing pass (`a*a` into
//! `a{1,}`) and the simplifying pass that expands counted repetitions into
//! copies (`x{2,5}` into `xx(x(x(x)?)?)?`) and turns empty and full classes
//! into no-match and any-char, then the anchors RE2 takes off before
//! compiling (`IsAnchorStart`, `IsAnchorEnd`).

use super::regexp::{equal, flags::*, Op, Regexp};

/// The tree the compiler walks.
pub(super) fn simplify(re: Regexp) -> Regexp {
    let re = coalesce(re);
    simplified(&re).unwrap_or(re)
}

/// `CoalesceWalker`.
fn coalesce(mut re: Regexp) -> Regexp {
    if re.subs.is_empty() {
        return re;
    }
    let subs = std::mem::take(&mut re.subs);
    let mut subs: Vec<Regexp> = subs.into_iter().map(coalesce).collect();
    if re.op != Op::Concat || !subs.windows(2).any(|w| can_coalesce(&w[0], &w[1])) {
        re.subs = subs;
        return re;
    }
    for i in 0..subs.len() - 1 {
        if can_coalesce(&subs[i], &subs[i + 1]) {
            let (left, right) = subs.split_at_mut(i + 1);
            do_coalesce(&mut left[i], &mut right[0]);
        }
    }
    re.subs = subs
        .into_iter()
        .filter(|s| s.op != Op::EmptyMatch)
        .collect();
    re
}

fn can_coalesce(r1: &Regexp, r2: &Regexp) -> bool {
    let repeat = |re: &Regexp| re.op.is_repeat() || re.op == Op::Repeat;
    if !repeat(r1) {
        return false;
    }
    let sub = r1.first_sub();
    if !matches!(sub.op, Op::Literal | Op::CharClass | Op::AnyChar) {
        return false;
    }
    if repeat(r2)
        && equal(sub, r2.first_sub())
        && (r1.flags & NON_GREEDY) == (r2.flags & NON_GREEDY)
    {
        return true;
    }
    if equal(sub, r2) {
        return true;
    }
    sub.op == Op::Literal
        && r2.op == Op::LiteralString
        && r2.runes.first() == Some(&sub.rune)
        && (sub.flags & FOLD_CASE) == (r2.flags & FOLD_CASE)
}

fn do_coalesce(r1: &mut Regexp, r2: &mut Regexp) {
    let sub = r1.first_sub().clone();
    let (mut min, mut max) = match r1.op {
        Op::Star => (0, -1),
        Op::Plus => (1, -1),
        Op::Quest => (0, 1),
        _ => (r1.min, r1.max),
    };
    let empty = Regexp::new(Op::EmptyMatch, 0);
    match r2.op {
        Op::Star => max = -1,
        Op::Plus => {
            min += 1;
            max = -1;
        }
        Op::Quest => {
            if max != -1 {
                max += 1;
            }
        }
        Op::Repeat => {
            min += r2.min;
            if r2.max == -1 {
                max = -1;
            } else if max != -1 {
                max += r2.max;
            }
        }
        Op::LiteralString => {
            let n = r2.runes.iter().take_while(|&&r| r == sub.rune).count();
            min += n as i32;
            if max != -1 {
                max += n as i32;
            }
            let flags = r1.flags;
            if n < r2.runes.len() {
                let rest = Regexp::literal_string(&r2.runes[n..], r2.flags);
                *r1 = Regexp::repeat(sub, flags, min, max);
                *r2 = rest;
                return;
            }
            *r2 = Regexp::repeat(sub, flags, min, max);
            *r1 = empty;
            return;
        }
        _ => {
            // The literal, class, any char or any byte itself.
            min += 1;
            if max != -1 {
                max += 1;
            }
        }
    }
    *r2 = Regexp::repeat(sub, r1.flags, min, max);
    *r1 = empty;
}

/// `SimplifyWalker`: `None` when `re` stays as it is.
fn simplified(re: &Regexp) -> Option<Regexp> {
    match re.op {
        Op::Concat | Op::Alternate | Op::Capture => {
            let news: Vec<Option<Regexp>> = re.subs.iter().map(simplified).collect();
            if news.iter().all(Option::is_none) {
                return None;
            }
            let subs = news
                .into_iter()
                .zip(&re.subs)
                .map(|(new, old)| new.unwrap_or_else(|| old.clone()))
                .collect();
            Some(Regexp {
                subs,
                ..re.clone_top()
            })
        }
        Op::Star | Op::Plus | Op::Quest => {
            let new = simplified(re.first_sub());
            let changed = new.is_some();
            let newsub = new.unwrap_or_else(|| re.first_sub().clone());
            if newsub.op == Op::EmptyMatch {
                return Some(newsub);
            }
            if !changed {
                return None;
            }
            if re.op == newsub.op && re.flags == newsub.flags {
                return Some(newsub);
            }
            Some(Regexp::with_subs(re.op, re.flags, vec![newsub]))
        }
        Op::Repeat => {
            let newsub = simplified(re.first_sub()).unwrap_or_else(|| re.first_sub().clone());
            if newsub.op == Op::EmptyMatch {
                return Some(newsub);
            }
            Some(simplify_repeat(newsub, re.min, re.max, re.flags))
        }
        Op::CharClass if re.class.is_empty() => Some(Regexp::new(Op::NoMatch, re.flags)),
        Op::CharClass if re.class.is_full() => Some(Regexp::new(Op::AnyChar, re.flags)),
        _ => None,
    }
}

impl Regexp {
    /// This node without its subexpressions.
    fn clone_top(&self) -> Regexp {
        Regexp {
            op: self.op,
            flags: self.flags,
            subs: Vec::new(),
            rune: self.rune,
            runes: self.runes.clone(),
            class: self.class.clone(),
            min: self.min,
            max: self.max,
            cap: self.cap,
            name: self.name.clone(),
        }
    }
}

fn concat2(a: Regexp, b: Regexp, flags: u32) -> Regexp {
    Regexp::with_subs(Op::Concat, flags, vec![a, b])
}

/// `SimplifyRepeat`: `x{n,m}` as n copies of x and m-n nested `x?`.
fn simplify_repeat(re: Regexp, mut min: i32, mut max: i32, f: u32) -> Regexp {
    let empty_width = re.op.is_empty_width()
        || (matches!(re.op, Op::Concat | Op::Alternate)
            && re.subs.iter().all(|s| s.op.is_empty_width()));
    if empty_width {
        min = min.min(1);
        max = max.min(1);
    }
    if max == -1 {
        return match min {
            0 => Regexp::star_plus_or_quest(Op::Star, re, f),
            1 => Regexp::star_plus_or_quest(Op::Plus, re, f),
            _ => {
                let mut subs: Vec<Regexp> = (0..min - 1).map(|_| re.clone()).collect();
                subs.push(Regexp::star_plus_or_quest(Op::Plus, re, f));
                Regexp::concat(subs, f)
            }
        };
    }
    if min == 0 && max == 0 {
        return Regexp::new(Op::EmptyMatch, f);
    }
    if min == 1 && max == 1 {
        return re;
    }
    let mut nre = (min > 0).then(|| Regexp::concat((0..min).map(|_| re.clone()).collect(), f));
    if max > min {
        let mut suf = Regexp::star_plus_or_quest(Op::Quest, re.clone(), f);
        for _ in min + 1..max {
            suf = Regexp::star_plus_or_quest(Op::Quest, concat2(re.clone(), suf, f), f);
        }
        nre = Some(match nre {
            Some(n) => concat2(n, suf, f),
            None => suf,
        });
    }
    nre.unwrap_or_else(|| Regexp::new(Op::NoMatch, f))
}

/// `IsAnchorStart`: takes a leading `\A` off, looking through
/// concatenations and captures at most four levels deep.
pub(super) fn take_anchor_start(re: &mut Regexp, depth: usize) -> bool {
    if depth >= 4 {
        return false;
    }
    match re.op {
        Op::Concat if !re.subs.is_empty() => take_anchor_start(&mut re.subs[0], depth + 1),
        Op::Capture => take_anchor_start(&mut re.subs[0], depth + 1),
        Op::BeginText => {
            *re = Regexp::new(Op::EmptyMatch, re.flags);
            true
        }
        _ => false,
    }
}

/// `IsAnchorEnd`: the same for a trailing `\z`.
pub(super) fn take_anchor_end(re: &mut Regexp, depth: usize) -> bool {
    if depth >= 4 {
        return false;
    }
    match re.op {
        Op::Concat if !re.subs.is_empty() => {
            let last = re.subs.len() - 1;
            take_anchor_end(&mut re.subs[last], depth + 1)
        }
        Op::Capture => take_anchor_end(&mut re.subs[0], depth + 1),
        Op::EndText => {
            *re = Regexp::new(Op::EmptyMatch, re.flags);
            true
        }
        _ => false,
    }
}
