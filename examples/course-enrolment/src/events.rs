//! The events of the example, the ids they name, and their tags.
//!
//! The tags are declared once, as [`TagSpec`]s listing the event types that carry each kind of tag:
//! [`Event::tags`] builds an event's tags from them, and the decisions build their queries from them, so a
//! query cannot ask for a tag no event carries (and `TagSpec::check` in the tests proves the list right).

use std::fmt;
use std::str::FromStr;

use composable_rust::decision::TagSpec;
use composable_rust::query::Tag;
use composable_rust::{Event, StreamId};
use serde::{Deserialize, Serialize};

/// The type name of [`CourseEvent::CourseDefined`].
pub const COURSE_DEFINED: &str = "CourseDefined.v1";
/// The type name of [`CourseEvent::CourseCapacityChanged`].
pub const COURSE_CAPACITY_CHANGED: &str = "CourseCapacityChanged.v1";
/// The type name of [`CourseEvent::StudentRegistered`].
pub const STUDENT_REGISTERED: &str = "StudentRegistered.v1";
/// The type name of [`CourseEvent::StudentEnrolled`].
pub const STUDENT_ENROLLED: &str = "StudentEnrolled.v1";

/// `course:{id}`: every event about a course.
pub const COURSE: TagSpec = TagSpec::new("course", &[COURSE_DEFINED, COURSE_CAPACITY_CHANGED, STUDENT_ENROLLED]);
/// `student:{id}`: every event about a student.
pub const STUDENT: TagSpec = TagSpec::new("student", &[STUDENT_REGISTERED, STUDENT_ENROLLED]);
/// `username:{name}`: the registration that claimed a username.
pub const USERNAME: TagSpec = TagSpec::new("username", &[STUDENT_REGISTERED]);

/// Everything that happens in the example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CourseEvent {
    /// A course was defined with room for `capacity` students.
    CourseDefined {
        /// The course.
        course: CourseId,
        /// How many students it takes.
        capacity: u32,
    },
    /// A course's capacity changed.
    CourseCapacityChanged {
        /// The course.
        course: CourseId,
        /// How many students it takes now.
        capacity: u32,
    },
    /// A student registered under a username no one else has.
    StudentRegistered {
        /// The student.
        student: StudentId,
        /// The unique username.
        username: Username,
    },
    /// A student joined a course.
    StudentEnrolled {
        /// The student.
        student: StudentId,
        /// The course.
        course: CourseId,
    },
}

impl Event for CourseEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::CourseDefined { .. } => COURSE_DEFINED,
            Self::CourseCapacityChanged { .. } => COURSE_CAPACITY_CHANGED,
            Self::StudentRegistered { .. } => STUDENT_REGISTERED,
            Self::StudentEnrolled { .. } => STUDENT_ENROLLED,
        }
    }

    fn tags(&self) -> Vec<Tag> {
        match self {
            Self::CourseDefined { course, .. } | Self::CourseCapacityChanged { course, .. } => vec![COURSE.tag(course)],
            Self::StudentRegistered { student, username } => vec![STUDENT.tag(student), USERNAME.tag(username)],
            Self::StudentEnrolled { student, course } => vec![STUDENT.tag(student), COURSE.tag(course)],
        }
    }
}

impl CourseEvent {
    /// The stream the event is stored in: the course's for course events, the student's for the others
    /// (an enrolment is part of the student's history).
    ///
    /// # Errors
    /// When the id does not make a valid stream id (cannot happen for ids that parsed).
    pub fn stream_id(&self) -> Result<StreamId, composable_rust::event_store::InvalidInput> {
        match self {
            Self::CourseDefined { course, .. } | Self::CourseCapacityChanged { course, .. } => {
                StreamId::for_entity("course", course)
            }
            Self::StudentRegistered { student, .. } | Self::StudentEnrolled { student, .. } => {
                StreamId::for_entity("student", student)
            }
        }
    }
}

/// Why an id or a username given on the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not valid: {reason}")]
pub struct InvalidName {
    what: &'static str,
    value: String,
    reason: &'static str,
}

/// Checks a name: 1 to 64 characters, letters, digits, `_`, `.` and `-` only (so it fits a tag and a stream id).
fn checked(what: &'static str, value: &str) -> Result<String, InvalidName> {
    let reason = if value.is_empty() {
        "it is empty"
    } else if value.chars().count() > 64 {
        "it is longer than 64 characters"
    } else if !value.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        "use letters, digits, '_', '.' and '-' only"
    } else {
        return Ok(value.to_owned());
    };
    Err(InvalidName { what, value: value.chars().take(64).collect(), reason })
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $normalise:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The name as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidName;

            fn from_str(value: &str) -> Result<Self, InvalidName> {
                let normalise: fn(&str) -> String = $normalise;
                checked($what, &normalise(value)).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A course's id, as given when it was defined: `math-101`.
    CourseId,
    "the course id",
    str::to_owned
);
name_type!(
    /// A student's id: `s-42`.
    StudentId,
    "the student id",
    str::to_owned
);
name_type!(
    /// A username, unique among students; compared without regard to case (`Ada` and `ada` are the same).
    Username,
    "the username",
    str::to_lowercase
);

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<CourseEvent> {
        let course: CourseId = "c1".parse().unwrap();
        let student: StudentId = "s1".parse().unwrap();
        vec![
            CourseEvent::CourseDefined { course: course.clone(), capacity: 2 },
            CourseEvent::CourseCapacityChanged { course: course.clone(), capacity: 3 },
            CourseEvent::StudentRegistered { student: student.clone(), username: "ada".parse().unwrap() },
            CourseEvent::StudentEnrolled { student, course },
        ]
    }

    #[test]
    fn every_event_carries_the_tags_its_tag_specs_list() {
        for spec in [COURSE, STUDENT, USERNAME] {
            assert_eq!(spec.check(&samples()), Ok(()), "{}", spec.kind());
        }
    }

    #[test]
    fn usernames_are_compared_without_case_and_names_are_checked() {
        assert_eq!("Ada".parse::<Username>().unwrap(), "ada".parse::<Username>().unwrap());
        let error = "a b".parse::<CourseId>().unwrap_err().to_string();
        assert_eq!(error, "the course id \"a b\" is not valid: use letters, digits, '_', '.' and '-' only");
        assert!("".parse::<StudentId>().is_err());
    }
}
