//! RE2's compiler (`compile.cc`, Latin-1 encoding) and the two passes
//! `Prog` runs after it (`prog.cc`: `Optimize`, `Flatten`), instruction
//! for instruction: the same allocation order, the same patch lists. Only
//! the count matters here, but `Flatten`'s result depends on the
//! instruction numbering, so all of it is kept.

use super::regexp::{flags::*, Op, Regexp, Rune, LATIN1_MAX, RUNE_MAX};

/// Instructions RE2 allows one program with the default 8 MiB memory
/// budget (two thirds of it for the forward program, 8-byte
/// instructions; `sizeof(Prog)` rounded up).
const MAX_INST: usize = ((8 << 20) * 2 / 3 - 1024) / 8;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum IOp {
    /// Zeroed memory is an Alt, as in RE2.
    #[default]
    Alt,
    AltMatch,
    ByteRange,
    Capture,
    EmptyWidth,
    Match,
    Nop,
    Fail,
}

#[derive(Clone, Copy, Debug, Default)]
struct Inst {
    op: IOp,
    out: u32,
    out1: u32,
    lo: u8,
    hi: u8,
}

/// The holes of a fragment: `head` and `tail` name `inst[n>>1].out` (even)
/// or `.out1` (odd); the list is threaded through those fields.
#[derive(Clone, Copy, Debug, Default)]
struct PatchList {
    head: u32,
    tail: u32,
}

impl PatchList {
    fn mk(p: u32) -> Self {
        PatchList { head: p, tail: p }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Frag {
    begin: u32,
    end: PatchList,
    nullable: bool,
}

const NO_MATCH: Frag = Frag {
    begin: 0,
    end: PatchList { head: 0, tail: 0 },
    nullable: false,
};

/// The size of the flattened program (`RE2::ProgramSize`) of the simplified
/// `re`, or `None` when RE2 would give up compiling it.
pub(super) fn program_size(mut re: Regexp) -> Option<usize> {
    let anchor_start = super::simplify::take_anchor_start(&mut re, 0);
    super::simplify::take_anchor_end(&mut re, 0);
    let mut c = Compiler {
        inst: vec![Inst {
            op: IOp::Fail,
            ..Inst::default()
        }],
        failed: false,
        visits: 2 * MAX_INST,
        rune_range: NO_MATCH,
    };
    let all = c.walk(&re);
    if c.failed {
        return None;
    }
    let m = c.match_();
    let mut all = c.cat(all, m);
    let start = all.begin;
    if !anchor_start {
        let dot_star = c.dot_star();
        all = c.cat(dot_star, all);
    }
    let start_unanchored = all.begin;
    if c.failed {
        return None;
    }
    if start == 0 && start_unanchored == 0 {
        c.inst.truncate(1);
    }
    let mut prog = c.inst;
    optimize(&mut prog, start);
    Some(flatten(&prog, start_unanchored, start))
}

struct Compiler {
    inst: Vec<Inst>,
    failed: bool,
    /// Nodes the walk may still visit (`WalkExponential`'s budget).
    visits: usize,
    /// The alternation of byte ranges of the class being compiled.
    rune_range: Frag,
}

impl Compiler {
    fn alloc(&mut self, n: usize) -> Option<u32> {
        if self.failed || self.inst.len() + n > MAX_INST {
            self.failed = true;
            return None;
        }
        let id = self.inst.len() as u32;
        self.inst.extend(std::iter::repeat_n(Inst::default(), n));
        Some(id)
    }

    fn patch(&mut self, l: PatchList, p: u32) {
        let mut head = l.head;
        while head != 0 {
            let ip = &mut self.inst[(head >> 1) as usize];
            if head & 1 != 0 {
                head = ip.out1;
                ip.out1 = p;
            } else {
                head = ip.out;
                ip.out = p;
            }
        }
    }

    fn append(&mut self, l1: PatchList, l2: PatchList) -> PatchList {
        if l1.head == 0 {
            return l2;
        }
        if l2.head == 0 {
            return l1;
        }
        let ip = &mut self.inst[(l1.tail >> 1) as usize];
        if l1.tail & 1 != 0 {
            ip.out1 = l2.head;
        } else {
            ip.out = l2.head;
        }
        PatchList {
            head: l1.head,
            tail: l2.tail,
        }
    }

    fn cat(&mut self, a: Frag, b: Frag) -> Frag {
        if a.begin == 0 || b.begin == 0 {
            return NO_MATCH;
        }
        let begin = self.inst[a.begin as usize];
        if begin.op == IOp::Nop && a.end.head == (a.begin << 1) && begin.out == 0 {
            self.patch(a.end, b.begin);
            return b;
        }
        self.patch(a.end, b.begin);
        Frag {
            begin: a.begin,
            end: b.end,
            nullable: a.nullable && b.nullable,
        }
    }

    fn alt(&mut self, a: Frag, b: Frag) -> Frag {
        if a.begin == 0 {
            return b;
        }
        if b.begin == 0 {
            return a;
        }
        let Some(id) = self.alloc(1) else {
            return NO_MATCH;
        };
        self.inst[id as usize] = Inst {
            op: IOp::Alt,
            out: a.begin,
            out1: b.begin,
            ..Inst::default()
        };
        let end = self.append(a.end, b.end);
        Frag {
            begin: id,
            end,
            nullable: a.nullable || b.nullable,
        }
    }

    /// The Alt of a loop or an option: the repetition goes to `out` when
    /// greedy, to `out1` when not; the other field is the hole.
    fn loop_alt(&mut self, target: u32, nongreedy: bool) -> Option<(u32, PatchList)> {
        let id = self.alloc(1)?;
        let (out, out1, hole) = if nongreedy {
            (0, target, id << 1)
        } else {
            (target, 0, (id << 1) | 1)
        };
        self.inst[id as usize] = Inst {
            op: IOp::Alt,
            out,
            out1,
            ..Inst::default()
        };
        Some((id, PatchList::mk(hole)))
    }

    fn plus(&mut self, a: Frag, nongreedy: bool) -> Frag {
        let Some((id, pl)) = self.loop_alt(a.begin, nongreedy) else {
            return NO_MATCH;
        };
        self.patch(a.end, id);
        Frag {
            begin: a.begin,
            end: pl,
            nullable: a.nullable,
        }
    }

    fn star(&mut self, a: Frag, nongreedy: bool) -> Frag {
        if a.nullable {
            let p = self.plus(a, nongreedy);
            return self.quest(p, nongreedy);
        }
        let Some((id, pl)) = self.loop_alt(a.begin, nongreedy) else {
            return NO_MATCH;
        };
        self.patch(a.end, id);
        Frag {
            begin: id,
            end: pl,
            nullable: true,
        }
    }

    fn quest(&mut self, a: Frag, nongreedy: bool) -> Frag {
        if a.begin == 0 {
            return self.nop();
        }
        let Some((id, pl)) = self.loop_alt(a.begin, nongreedy) else {
            return NO_MATCH;
        };
        let end = self.append(pl, a.end);
        Frag {
            begin: id,
            end,
            nullable: true,
        }
    }

    fn simple(&mut self, inst: Inst, nullable: bool) -> Frag {
        let Some(id) = self.alloc(1) else {
            return NO_MATCH;
        };
        self.inst[id as usize] = inst;
        Frag {
            begin: id,
            end: PatchList::mk(id << 1),
            nullable,
        }
    }

    /// A byte range (RE2 also records whether it folds ASCII case, which
    /// does not change the count).
    fn byte_range(&mut self, lo: u8, hi: u8) -> Frag {
        let inst = Inst {
            op: IOp::ByteRange,
            lo,
            hi,
            ..Inst::default()
        };
        self.simple(inst, false)
    }

    fn nop(&mut self) -> Frag {
        let inst = Inst {
            op: IOp::Nop,
            ..Inst::default()
        };
        self.simple(inst, true)
    }

    fn empty_width(&mut self) -> Frag {
        let inst = Inst {
            op: IOp::EmptyWidth,
            ..Inst::default()
        };
        self.simple(inst, true)
    }

    fn match_(&mut self) -> Frag {
        let Some(id) = self.alloc(1) else {
            return NO_MATCH;
        };
        self.inst[id as usize] = Inst {
            op: IOp::Match,
            ..Inst::default()
        };
        Frag {
            begin: id,
            end: PatchList::default(),
            nullable: false,
        }
    }

    fn capture(&mut self, a: Frag) -> Frag {
        if a.begin == 0 {
            return NO_MATCH;
        }
        let Some(id) = self.alloc(2) else {
            return NO_MATCH;
        };
        self.inst[id as usize] = Inst {
            op: IOp::Capture,
            out: a.begin,
            ..Inst::default()
        };
        self.inst[id as usize + 1] = Inst {
            op: IOp::Capture,
            ..Inst::default()
        };
        self.patch(a.end, id + 1);
        Frag {
            begin: id,
            end: PatchList::mk((id + 1) << 1),
            nullable: a.nullable,
        }
    }

    fn dot_star(&mut self) -> Frag {
        let any = self.byte_range(0x00, 0xff);
        self.star(any, true)
    }

    fn literal(&mut self, r: Rune) -> Frag {
        let b = r.min(LATIN1_MAX) as u8;
        self.byte_range(b, b)
    }

    /// The post-order walk (`WalkExponential` with `PostVisit`): shared
    /// subtrees, such as the copies of a counted repetition, compile once
    /// per copy.
    fn walk(&mut self, re: &Regexp) -> Frag {
        if self.failed {
            return NO_MATCH;
        }
        if self.visits == 0 {
            self.failed = true;
            return NO_MATCH;
        }
        self.visits -= 1;
        let mut children = Vec::with_capacity(re.subs.len());
        for sub in &re.subs {
            children.push(self.walk(sub));
            if self.failed {
                return NO_MATCH;
            }
        }
        let nongreedy = re.flags & NON_GREEDY != 0;
        match re.op {
            Op::NoMatch => NO_MATCH,
            Op::EmptyMatch => self.nop(),
            Op::Concat => {
                let mut iter = children.into_iter();
                let first = iter.next().unwrap_or(NO_MATCH);
                iter.fold(first, |f, c| self.cat(f, c))
            }
            Op::Alternate => {
                let mut iter = children.into_iter();
                let first = iter.next().unwrap_or(NO_MATCH);
                iter.fold(first, |f, c| self.alt(f, c))
            }
            Op::Star => self.star(children[0], nongreedy),
            Op::Plus => self.plus(children[0], nongreedy),
            Op::Quest => self.quest(children[0], nongreedy),
            Op::Literal => self.literal(re.rune),
            Op::LiteralString => {
                if re.runes.is_empty() {
                    return self.nop();
                }
                let mut f = NO_MATCH;
                for (i, &r) in re.runes.iter().enumerate() {
                    let f1 = self.literal(r);
                    f = if i == 0 { f1 } else { self.cat(f, f1) };
                }
                f
            }
            Op::AnyChar => {
                self.begin_range();
                self.add_rune_range(0, RUNE_MAX);
                self.rune_range
            }
            Op::CharClass => self.char_class(re),
            Op::Capture => {
                if re.cap < 0 {
                    children[0]
                } else {
                    self.capture(children[0])
                }
            }
            Op::BeginLine
            | Op::EndLine
            | Op::BeginText
            | Op::EndText
            | Op::WordBoundary
            | Op::NoWordBoundary => self.empty_width(),
            Op::Repeat | Op::LeftParen | Op::VerticalBar => {
                self.failed = true;
                NO_MATCH
            }
        }
    }

    fn char_class(&mut self, re: &Regexp) -> Frag {
        if re.class.is_empty() {
            self.failed = true;
            return NO_MATCH;
        }
        // ASCII case folding: a range of a-z marked folding stands for A-Z
        // too, so A-Z ranges go.
        let fold_ascii = re.class.folds_ascii();
        let (ua, uz) = (Rune::from(b'A'), Rune::from(b'Z'));
        self.begin_range();
        for &(lo, hi) in &re.class.ranges {
            if fold_ascii && ua <= lo && hi <= uz {
                continue;
            }
            self.add_rune_range(lo, hi);
        }
        self.rune_range
    }

    fn begin_range(&mut self) {
        self.rune_range = NO_MATCH;
    }

    /// `AddRuneRangeLatin1`: runes are bytes; each range is one more
    /// alternative.
    fn add_rune_range(&mut self, lo: Rune, hi: Rune) {
        if lo > hi || lo > LATIN1_MAX {
            return;
        }
        let hi = hi.min(LATIN1_MAX);
        let f = self.byte_range(lo as u8, hi as u8);
        self.rune_range.end = self.append(self.rune_range.end, f.end);
        if self.failed {
            return;
        }
        if self.rune_range.begin == 0 {
            self.rune_range.begin = f.begin;
            return;
        }
        let Some(alt) = self.alloc(1) else {
            self.rune_range.begin = 0;
            return;
        };
        self.inst[alt as usize] = Inst {
            op: IOp::Alt,
            out: self.rune_range.begin,
            out1: f.begin,
            ..Inst::default()
        };
        self.rune_range.begin = alt;
    }
}

/// A work queue of instruction ids, each once (`Workq`); 0 never goes in.
struct Workq {
    ids: Vec<u32>,
    seen: Vec<bool>,
}

impl Workq {
    fn new(n: usize) -> Self {
        Workq {
            ids: Vec::new(),
            seen: vec![false; n],
        }
    }

    fn add(&mut self, id: u32) {
        if id != 0 && !self.seen[id as usize] {
            self.seen[id as usize] = true;
            self.ids.push(id);
        }
    }
}

fn is_match(prog: &[Inst], mut id: u32) -> bool {
    loop {
        let ip = prog[id as usize];
        match ip.op {
            IOp::Capture | IOp::Nop => id = ip.out,
            IOp::Match => return true,
            _ => return false,
        }
    }
}

/// `Prog::Optimize`: skips Nops (from `start`, as RE2 does) and marks the
/// `.*` loops before a match as AltMatch.
fn optimize(prog: &mut [Inst], start: u32) {
    let skip = |prog: &[Inst], mut j: u32| {
        while j != 0 && prog[j as usize].op == IOp::Nop {
            j = prog[j as usize].out;
        }
        j
    };
    let mut q = Workq::new(prog.len());
    q.add(start);
    let mut i = 0;
    while i < q.ids.len() {
        let id = q.ids[i] as usize;
        i += 1;
        let out = skip(prog, prog[id].out);
        prog[id].out = out;
        q.add(out);
        if prog[id].op == IOp::Alt {
            let out1 = skip(prog, prog[id].out1);
            prog[id].out1 = out1;
            q.add(out1);
        }
    }
    let mut q = Workq::new(prog.len());
    q.add(start);
    let mut i = 0;
    while i < q.ids.len() {
        let id = q.ids[i];
        i += 1;
        let ip = prog[id as usize];
        q.add(ip.out);
        if ip.op == IOp::Alt {
            q.add(ip.out1);
            let (j, k) = (prog[ip.out as usize], prog[ip.out1 as usize]);
            let any_loop =
                |x: Inst| x.op == IOp::ByteRange && x.out == id && x.lo == 0x00 && x.hi == 0xff;
            if (any_loop(j) && is_match(prog, ip.out1)) || (is_match(prog, ip.out) && any_loop(k)) {
                prog[id as usize].op = IOp::AltMatch;
            }
        }
    }
}

/// Roots in the order they were marked, with their numbers.
struct RootMap {
    order: Vec<u32>,
    has: Vec<bool>,
}

impl RootMap {
    fn add(&mut self, id: u32) {
        if !self.has[id as usize] {
            self.has[id as usize] = true;
            self.order.push(id);
        }
    }

    fn contains(&self, id: u32) -> bool {
        self.has[id as usize]
    }
}

/// A set of ids that remembers insertion order (`SparseSet`).
struct Reached {
    ids: Vec<u32>,
    seen: Vec<bool>,
}

impl Reached {
    fn clear(&mut self) {
        for &id in &self.ids {
            self.seen[id as usize] = false;
        }
        self.ids.clear();
    }

    /// Inserts `id`; false when it was there.
    fn insert(&mut self, id: u32) -> bool {
        if self.seen[id as usize] {
            return false;
        }
        self.seen[id as usize] = true;
        self.ids.push(id);
        true
    }
}

/// `Prog::Flatten`'s instruction count: the program cut into "trees" at
/// roots (successors of ByteRange, Capture and EmptyWidth, and dominators
/// of nullable loops), each emitted as a list of its leaves, with a Nop for
/// each other root it reaches. Alts and Nops disappear.
fn flatten(prog: &[Inst], start_unanchored: u32, start: u32) -> usize {
    let n = prog.len();
    let mut roots = RootMap {
        order: Vec::new(),
        has: vec![false; n],
    };
    let mut preds: Vec<Option<Vec<u32>>> = vec![None; n];
    let mut reached = Reached {
        ids: Vec::new(),
        seen: vec![false; n],
    };

    // MarkSuccessors.
    roots.add(0);
    roots.add(start_unanchored);
    roots.add(start);
    let mut stk = vec![start_unanchored];
    while let Some(mut id) = stk.pop() {
        loop {
            if !reached.insert(id) {
                break;
            }
            let ip = prog[id as usize];
            match ip.op {
                IOp::Alt | IOp::AltMatch => {
                    for out in [ip.out, ip.out1] {
                        preds[out as usize].get_or_insert_with(Vec::new).push(id);
                    }
                    stk.push(ip.out1);
                    id = ip.out;
                }
                IOp::ByteRange | IOp::Capture | IOp::EmptyWidth => {
                    roots.add(ip.out);
                    id = ip.out;
                }
                IOp::Nop => id = ip.out,
                IOp::Match | IOp::Fail => break,
            }
        }
    }

    // MarkDominator, from the highest-numbered root down, the lowest (the
    // Fail instruction) and the two starts excluded.
    let mut sorted = roots.order.clone();
    sorted.sort_unstable();
    for &root in sorted.iter().skip(1).rev() {
        if root == start_unanchored || root == start {
            continue;
        }
        reached.clear();
        let mut stk = vec![root];
        while let Some(mut id) = stk.pop() {
            loop {
                if !reached.insert(id) {
                    break;
                }
                if id != root && roots.contains(id) {
                    break;
                }
                let ip = prog[id as usize];
                match ip.op {
                    IOp::Alt | IOp::AltMatch => {
                        stk.push(ip.out1);
                        id = ip.out;
                    }
                    IOp::Nop => id = ip.out,
                    _ => break,
                }
            }
        }
        let mut new_roots = Vec::new();
        for &id in &reached.ids {
            if let Some(ps) = &preds[id as usize] {
                if ps.iter().any(|p| !reached.seen[*p as usize]) {
                    new_roots.push(id);
                }
            }
        }
        for id in new_roots {
            roots.add(id);
        }
    }

    // EmitList, counted.
    let mut size = 0;
    for &root in &roots.order {
        reached.clear();
        let mut stk = vec![root];
        while let Some(mut id) = stk.pop() {
            loop {
                if !reached.insert(id) {
                    break;
                }
                if id != root && roots.contains(id) {
                    size += 1; // a Nop to that root's list
                    break;
                }
                let ip = prog[id as usize];
                match ip.op {
                    IOp::AltMatch | IOp::Alt => {
                        if ip.op == IOp::AltMatch {
                            size += 1;
                        }
                        stk.push(ip.out1);
                        id = ip.out;
                    }
                    IOp::Nop => id = ip.out,
                    IOp::ByteRange | IOp::Capture | IOp::EmptyWidth | IOp::Match | IOp::Fail => {
                        size += 1;
                        break;
                    }
                }
            }
        }
    }
    size
}
