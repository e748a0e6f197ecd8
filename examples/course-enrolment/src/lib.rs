//! The course-enrolment example: the Dynamic Consistency Boundary specification's own example, on
//! composable-rust. Three rules span streams: a course has at most `capacity` students, a student takes at
//! most [`MAX_COURSES_PER_STUDENT`](decisions::MAX_COURSES_PER_STUDENT) courses, and usernames are unique.
//! Each rule is a [`Decision`](composable_rust::Decision) with its own query, run by a
//! [`Decider`](composable_rust::Decider): no aggregate holds all of a rule's facts, and no lock either.
//!
//! - [`events`]: the events, their tags, and the [`TagSpec`](composable_rust::decision::TagSpec)s queries are
//!   built from.
//! - [`decisions`]: one decision per command.
//! - [`cli`] and [`app`]: the command line and what each command does.

pub mod app;
pub mod cli;
pub mod decisions;
pub mod events;

#[cfg(test)]
mod tests {
    /// docs/dcb.md shows `src/decisions/enrol.rs` verbatim; this keeps the copy honest.
    #[test]
    fn the_dcb_guide_shows_the_enrolment_decision_verbatim() {
        let guide = include_str!("../../../docs/dcb.md");
        let source = include_str!("decisions/enrol.rs");
        assert!(
            guide.contains(&format!("```rust\n{source}```")),
            "docs/dcb.md no longer shows src/decisions/enrol.rs verbatim: copy the file into its ```rust block"
        );
    }
}
