//! [`Decision`]: a command that reads the events it depends on by query, decides, and appends under the
//! condition that none of those events changed meanwhile (the Dynamic Consistency Boundary pattern,
//! dcb.events). [`TagSpec`] declares, once, which event types carry a kind of tag, so that the queries of
//! decisions and the tags of events come from the same description.
//!
//! A decision is the command itself, like disintegrate's `Decision`: its fields (the course, the student)
//! are what its query selects by and what its fold compares with. Nothing here touches storage: the
//! runtime's `Decider` reads by [`Decision::query`], folds with [`Decision::apply`], calls
//! [`Decision::decide`] and appends the events to their [`Decision::stream_id`]s with the append condition
//! "no event matching the query after the position I read up to".

use std::fmt;

use crate::error::InvalidInput;
use crate::event::Event;
use crate::query::{EventQuery, QueryItem, Tag};
use crate::stream::StreamId;

/// A command decided on the events its query selects, across streams, and appended atomically under
/// the condition that no such event was appended since it read them.
///
/// Where an [`Aggregate`](crate::Aggregate) guards one stream, a decision guards exactly the facts its
/// rule needs: "at most 30 students in course c1" reads the course's events, "at most 3 courses per
/// student" the student's enrolments, and a decision that enrols s1 in c1 reads both and conflicts only
/// with appends that touch c1 or s1.
///
/// Rules that keep decisions correct:
/// - [`query`](Decision::query) selects every event [`apply`](Decision::apply) needs, by type and tag;
///   the events declare those tags through [`Event::tags`] (see [`TagSpec`], which derives both from one
///   description). Every item of the query names a tag: the append condition is enforced per tag.
/// - [`apply`](Decision::apply) is deterministic and infallible; it may be called for events the query
///   matched for another of its items (an enrolment of the same student in another course), so it
///   compares the event's ids with the decision's.
/// - [`decide`](Decision::decide) does not mutate; returning no events is a valid answer and appends
///   nothing.
///
/// ```
/// use composable_rust_core::{Decision, Event, EventQuery, InvalidInput, StreamId, Tag, TagSpec};
/// use serde::{Deserialize, Serialize};
///
/// const USERNAME: TagSpec = TagSpec::new("username", &["Registered.v1"]);
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// enum UserEvent {
///     Registered { user: String, username: String },
/// }
///
/// impl Event for UserEvent {
///     fn event_type(&self) -> &'static str {
///         "Registered.v1"
///     }
///     fn tags(&self) -> Vec<Tag> {
///         let Self::Registered { username, .. } = self;
///         vec![USERNAME.tag(username)]
///     }
/// }
///
/// /// Register `user` under `username`, which must be unique.
/// #[derive(Debug, Clone, PartialEq)]
/// struct Register {
///     user: String,
///     username: String,
/// }
///
/// #[derive(Debug, PartialEq, thiserror::Error)]
/// #[error("the username {0} is taken")]
/// struct Taken(String);
///
/// impl Decision for Register {
///     type Event = UserEvent;
///     type State = bool; // whether the username is taken
///     type Error = Taken;
///
///     fn query(&self) -> EventQuery {
///         USERNAME.query(&self.username)
///     }
///     fn apply(&self, taken: &mut bool, _: &UserEvent) {
///         *taken = true;
///     }
///     fn decide(&self, taken: &bool) -> Result<Vec<UserEvent>, Taken> {
///         if *taken {
///             return Err(Taken(self.username.clone()));
///         }
///         Ok(vec![UserEvent::Registered { user: self.user.clone(), username: self.username.clone() }])
///     }
///     fn stream_id(&self, _: &UserEvent) -> Result<StreamId, InvalidInput> {
///         StreamId::for_entity("user", &self.user)
///     }
/// }
///
/// // Given / when / then, without any store: `handle` folds only the events the query selects.
/// let ada = Register { user: "u1".into(), username: "ada".into() };
/// let registered = ada.handle(&[])?;
/// assert_eq!(registered.len(), 1);
/// let again = Register { user: "u2".into(), username: "ada".into() };
/// assert_eq!(again.handle(&registered), Err(Taken("ada".into())));
/// let grace = Register { user: "u2".into(), username: "grace".into() };
/// assert!(grace.handle(&registered).is_ok(), "another username's events are not read");
/// # Ok::<(), Taken>(())
/// ```
pub trait Decision: Send + Sync + 'static {
    /// The events the decision reads and appends (usually the domain's event enum).
    type Event: Event;

    /// What the decision folds the queried events into; [`Default`] is the state when none match.
    type State: Default + Send + Sync + 'static;

    /// Why the command is rejected (course full, username taken, ...).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The events this command depends on, across streams. Every item names at least one tag.
    fn query(&self) -> EventQuery;

    /// Folds one event the query matched. Pure, deterministic and infallible.
    fn apply(&self, state: &mut Self::State, event: &Self::Event);

    /// Checks the command against the folded state and returns the events it causes.
    ///
    /// Called again, with the state brought up to date, when the append's condition fails because a
    /// matching event was appended meanwhile; which is why it takes the state by reference.
    ///
    /// # Errors
    /// [`Decision::Error`] when the command is not allowed; nothing is appended.
    fn decide(&self, state: &Self::State) -> Result<Vec<Self::Event>, Self::Error>;

    /// The stream `event` is stored in. Events are appended with
    /// [`ExpectedVersion::Any`](crate::ExpectedVersion::Any): the append condition, not the streams'
    /// versions, makes the decision safe.
    ///
    /// # Errors
    /// [`InvalidInput::StreamId`] when the id is not a valid stream id.
    fn stream_id(&self, event: &Self::Event) -> Result<StreamId, InvalidInput>;

    /// The state after folding, in order, those of `history` that the query matches.
    fn fold<'a>(&self, history: impl IntoIterator<Item = &'a Self::Event>) -> Self::State {
        let query = self.query();
        let mut state = Self::State::default();
        for event in history {
            if query.matches(event.event_type(), &event.tags()) {
                self.apply(&mut state, event);
            }
        }
        state
    }

    /// Decides on `history`, every event stored so far in any stream, as the store would: only the
    /// events the query matches (by their [`Event::event_type`] and [`Event::tags`]) are folded.
    ///
    /// The in-memory version of what the runtime's `Decider` does, for unit tests of a decision. An
    /// event missing from the fold because it lacks a tag shows up here as a wrong decision.
    ///
    /// # Errors
    /// [`Decision::Error`] from [`Decision::decide`].
    fn handle<'a>(&self, history: impl IntoIterator<Item = &'a Self::Event>) -> Result<Vec<Self::Event>, Self::Error> {
        self.decide(&self.fold(history))
    }
}

/// One kind of tag (`course`) and the event types that carry it: the single description that both the
/// queries of decisions and the tags of events are built from.
///
/// A query built with [`TagSpec::query`] selects exactly the listed event types carrying the tag; an
/// event tags itself with [`TagSpec::tag`]. [`TagSpec::check`] verifies, in a unit test, that every event
/// of a listed type carries the tag and that no event of an unlisted type does, so the list and the
/// events cannot drift apart unnoticed.
///
/// ```
/// use composable_rust_core::{Tag, TagSpec};
///
/// const COURSE: TagSpec = TagSpec::new("course", &["CourseDefined.v1", "StudentEnrolled.v1"]);
///
/// assert_eq!(COURSE.tag("c1"), Tag::new("course:c1"));
/// let query = COURSE.query("c1");
/// assert!(query.matches("StudentEnrolled.v1", &[Tag::new("course:c1"), Tag::new("student:s1")]));
/// assert!(!query.matches("StudentEnrolled.v1", &[Tag::new("course:c2")]));
/// assert!(!query.matches("CourseRenamed.v1", &[Tag::new("course:c1")]), "not a listed type");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagSpec {
    kind: &'static str,
    event_types: &'static [&'static str],
}

impl TagSpec {
    /// Tags `{kind}:{value}`, carried by events of `event_types`.
    #[must_use]
    pub const fn new(kind: &'static str, event_types: &'static [&'static str]) -> Self {
        Self { kind, event_types }
    }

    /// The kind of tag: `course`.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        self.kind
    }

    /// The event types that carry the tag.
    #[must_use]
    pub const fn event_types(&self) -> &'static [&'static str] {
        self.event_types
    }

    /// The tag for `value`: `course:c1`.
    pub fn tag(&self, value: impl fmt::Display) -> Tag {
        Tag::of(self.kind, value)
    }

    /// The events of the listed types that carry the tag for `value`, as one query item (combine items
    /// with [`EventQuery::or`]).
    pub fn item(&self, value: impl fmt::Display) -> QueryItem {
        QueryItem::tagged([self.tag(value)]).types(self.event_types.iter().copied())
    }

    /// The events of the listed types that carry the tag for `value`.
    pub fn query(&self, value: impl fmt::Display) -> EventQuery {
        EventQuery::item(self.item(value))
    }

    /// Whether events of `event_type` carry this kind of tag.
    #[must_use]
    pub fn covers(&self, event_type: &str) -> bool {
        self.event_types.contains(&event_type)
    }

    /// Checks that `samples` agree with the description: an event of a listed type carries exactly one
    /// tag of this kind, an event of another type none. Call it in a unit test with one sample of every
    /// event variant.
    ///
    /// # Errors
    /// A sentence naming the first event type that disagrees and what to change.
    pub fn check<'a, E: Event>(&self, samples: impl IntoIterator<Item = &'a E>) -> Result<(), String> {
        let prefix = format!("{}:", self.kind);
        for event in samples {
            let event_type = event.event_type();
            let carried = event.tags().iter().filter(|tag| tag.as_str().starts_with(&prefix)).count();
            match (self.covers(event_type), carried) {
                (true, 1) | (false, 0) => {}
                (true, 0) => {
                    return Err(format!(
                        "{event_type} is listed for `{}` tags but carries none: queries by `{}` would miss it; add \
                         the tag in `Event::tags` or remove the type from the TagSpec",
                        self.kind, self.kind
                    ));
                }
                (true, n) => {
                    return Err(format!(
                        "{event_type} carries {n} `{}` tags; a TagSpec expects exactly one",
                        self.kind
                    ));
                }
                (false, _) => {
                    return Err(format!(
                        "{event_type} carries a `{}` tag but is not listed in its TagSpec: queries by `{}` would \
                         not select it; list the type or drop the tag",
                        self.kind, self.kind
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    const COURSE: TagSpec = TagSpec::new("course", &["Defined.v1", "Enrolled.v1"]);

    #[derive(Debug, Serialize, Deserialize)]
    enum Sample {
        Defined,
        Enrolled { tagged: bool },
        Renamed,
    }

    impl Event for Sample {
        fn event_type(&self) -> &'static str {
            match self {
                Self::Defined => "Defined.v1",
                Self::Enrolled { .. } => "Enrolled.v1",
                Self::Renamed => "Renamed.v1",
            }
        }
        fn tags(&self) -> Vec<Tag> {
            match self {
                Self::Defined | Self::Enrolled { tagged: true } => vec![COURSE.tag("c1")],
                Self::Enrolled { tagged: false } => Vec::new(),
                Self::Renamed => vec![Tag::of("course", "c1")],
            }
        }
    }

    #[test]
    fn a_spec_query_selects_its_types_with_its_tag() {
        let query = COURSE.query("c1");
        assert_eq!(query.items.len(), 1);
        assert_eq!(query.items[0].event_types, ["Defined.v1", "Enrolled.v1"]);
        assert_eq!(query.items[0].tags, [Tag::new("course:c1")]);
    }

    #[test]
    fn check_names_a_listed_type_without_the_tag_and_an_unlisted_type_with_it() {
        assert!(COURSE.check(&[Sample::Defined, Sample::Enrolled { tagged: true }]).is_ok());
        let missing = COURSE.check(&[Sample::Enrolled { tagged: false }]).unwrap_err();
        assert!(missing.contains("Enrolled.v1 is listed") && missing.contains("carries none"), "{missing}");
        let unlisted = COURSE.check(&[Sample::Renamed]).unwrap_err();
        assert!(unlisted.contains("Renamed.v1 carries a `course` tag but is not listed"), "{unlisted}");
    }
}
