//! The getting-started guide shows whole files that a reader pastes into a project; each must be exactly a
//! file that is compiled and run here, so that a pasted file always compiles.
#![allow(clippy::expect_used, reason = "a guide without its marker or block is a test failure")]

/// The fenced ` ```rust ` block that follows `marker` in `guide`, with a newline at the end.
fn block_after<'a>(guide: &'a str, marker: &str) -> &'a str {
    let start = guide.find(marker).unwrap_or_else(|| panic!("the guide has no `{marker}`"));
    let after = &guide[start..];
    let open = after.find("```rust\n").expect("a ```rust block follows the marker") + "```rust\n".len();
    let close = after[open..].find("\n```").expect("the block is closed") + 1;
    &after[open..open + close]
}

#[test]
fn the_store_step_of_the_getting_started_guide_is_the_compiled_test_file() {
    let guide = include_str!("../../docs/getting-started.md");
    let shown = block_after(guide, "<!-- file: composable-rust/tests/guide_account_store.rs -->");
    let compiled = include_str!("guide_account_store.rs");
    assert!(
        shown == compiled,
        "docs/getting-started.md shows a tests/account_store.rs that differs from \
         composable-rust/tests/guide_account_store.rs; copy the file into the guide"
    );
}
