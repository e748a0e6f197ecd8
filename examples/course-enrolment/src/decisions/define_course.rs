//! [`DefineCourse`]: a course id is defined once.

use composable_rust::event_store::InvalidInput;
use composable_rust::query::EventQuery;
use composable_rust::{Decision, StreamId};

use super::Refused;
use crate::events::{COURSE, CourseEvent, CourseId};

/// Define `course` with room for `capacity` students.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefineCourse {
    /// The new course's id.
    pub course: CourseId,
    /// How many students it takes (at least 1).
    pub capacity: u32,
}

impl Decision for DefineCourse {
    type Event = CourseEvent;
    /// Whether the course exists.
    type State = bool;
    type Error = Refused;

    fn query(&self) -> EventQuery {
        COURSE.query(&self.course)
    }

    fn apply(&self, exists: &mut bool, event: &CourseEvent) {
        if matches!(event, CourseEvent::CourseDefined { .. }) {
            *exists = true;
        }
    }

    fn decide(&self, exists: &bool) -> Result<Vec<CourseEvent>, Refused> {
        if *exists {
            return Err(Refused::CourseExists(self.course.clone()));
        }
        if self.capacity == 0 {
            return Err(Refused::ZeroCapacity);
        }
        Ok(vec![CourseEvent::CourseDefined { course: self.course.clone(), capacity: self.capacity }])
    }

    fn stream_id(&self, event: &CourseEvent) -> Result<StreamId, InvalidInput> {
        event.stream_id()
    }
}
