//! [`RegisterStudent`]: usernames (and student ids) are unique.

use composable_rust::event_store::InvalidInput;
use composable_rust::query::EventQuery;
use composable_rust::{Decision, StreamId};

use super::Refused;
use crate::events::{CourseEvent, STUDENT, StudentId, USERNAME, Username};

/// Register `student` under `username`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterStudent {
    /// The new student's id.
    pub student: StudentId,
    /// The username, which no other student may have.
    pub username: Username,
}

/// What [`RegisterStudent`] knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    /// The student id is registered.
    pub student_exists: bool,
    /// The username is taken.
    pub username_taken: bool,
}

impl Decision for RegisterStudent {
    type Event = CourseEvent;
    type State = Registration;
    type Error = Refused;

    fn query(&self) -> EventQuery {
        USERNAME.query(&self.username).or(STUDENT.item(&self.student))
    }

    fn apply(&self, state: &mut Registration, event: &CourseEvent) {
        if let CourseEvent::StudentRegistered { student, username } = event {
            state.student_exists |= *student == self.student;
            state.username_taken |= *username == self.username;
        }
    }

    fn decide(&self, state: &Registration) -> Result<Vec<CourseEvent>, Refused> {
        if state.student_exists {
            return Err(Refused::StudentExists(self.student.clone()));
        }
        if state.username_taken {
            return Err(Refused::UsernameTaken(self.username.clone()));
        }
        Ok(vec![CourseEvent::StudentRegistered { student: self.student.clone(), username: self.username.clone() }])
    }

    fn stream_id(&self, event: &CourseEvent) -> Result<StreamId, InvalidInput> {
        event.stream_id()
    }
}
