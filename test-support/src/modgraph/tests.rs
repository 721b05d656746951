//! The module-graph reader on made-up crates: cycles found, one-way
//! imports, nested scopes, and what is not an import.

use super::*;

fn graph(files: &[(&str, &str)]) -> CrateGraph {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
    }
    CrateGraph::read(dir.path()).expect("read")
}

#[test]
fn siblings_that_import_each_other_are_a_cycle() {
    let g = graph(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a.rs", "use crate::b::Thing;\n"),
        ("b/mod.rs", "mod inner;\n"),
        ("b/inner.rs", "fn f() { crate::a::run() }\n"),
    ]);
    let cycles = g.cycles();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert_eq!(cycles[0].members, ["a", "b"]);
    assert_eq!(cycles[0].edges.len(), 2);
}

#[test]
fn parent_and_child_and_one_way_siblings_are_fine() {
    let g = graph(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub fn root() {}\n"),
        (
            "a/mod.rs",
            "mod x;\nmod y;\npub struct S;\nuse self::x::X;\n",
        ),
        ("a/x.rs", "use super::{S, y::Y};\nuse crate::root;\n"),
        ("a/y.rs", "use super::S;\n"),
        ("b.rs", "use crate::a::{self, S};\n"),
    ]);
    assert!(g.cycles().is_empty(), "{:?}", g.cycles());
}

#[test]
fn nested_scopes_and_super_chains_resolve() {
    let g = graph(&[
        ("lib.rs", "pub mod t;\n"),
        ("t/mod.rs", "mod l;\nmod r;\n"),
        ("t/l.rs", "use super::r::h::f;\n"),
        ("t/r/mod.rs", "pub mod h;\n"),
        ("t/r/h.rs", "use super::super::l::g;\n"),
    ]);
    let cycles = g.cycles();
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0].scope, ["t"]);
    assert_eq!(cycles[0].members, ["l", "r"]);
}

#[test]
fn tests_comments_and_strings_are_not_imports() {
    let g = graph(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a.rs", "use crate::b::B;\n"),
        (
            "b.rs",
            "// crate::a::x\nconst S: &str = \"crate::a::y\";\n#[cfg(test)]\nmod tests {\n use crate::a::A;\n}\n",
        ),
        ("b/tests.rs", "use crate::a::A;\n"),
    ]);
    assert!(g.cycles().is_empty(), "{:?}", g.cycles());
}
