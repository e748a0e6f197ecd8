//! [`ChangeCapacity`]: a course's capacity is at least 1 and never below the students enrolled.

use composable_rust::event_store::InvalidInput;
use composable_rust::query::EventQuery;
use composable_rust::{Decision, StreamId};

use super::Refused;
use crate::events::{COURSE, CourseEvent, CourseId};

/// Give `course` room for `capacity` students.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeCapacity {
    /// The course.
    pub course: CourseId,
    /// Its new capacity.
    pub capacity: u32,
}

/// What [`ChangeCapacity`] knows of its course.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CourseCapacity {
    /// The current capacity; `None` when the course does not exist.
    pub capacity: Option<u32>,
    /// Students enrolled.
    pub enrolled: u32,
}

impl Decision for ChangeCapacity {
    type Event = CourseEvent;
    type State = CourseCapacity;
    type Error = Refused;

    fn query(&self) -> EventQuery {
        COURSE.query(&self.course)
    }

    fn apply(&self, state: &mut CourseCapacity, event: &CourseEvent) {
        match event {
            CourseEvent::CourseDefined { capacity, .. } | CourseEvent::CourseCapacityChanged { capacity, .. } => {
                state.capacity = Some(*capacity);
            }
            CourseEvent::StudentEnrolled { .. } => state.enrolled += 1,
            CourseEvent::StudentRegistered { .. } => {}
        }
    }

    fn decide(&self, state: &CourseCapacity) -> Result<Vec<CourseEvent>, Refused> {
        let Some(current) = state.capacity else { return Err(Refused::NoSuchCourse(self.course.clone())) };
        if self.capacity == 0 {
            return Err(Refused::ZeroCapacity);
        }
        if self.capacity < state.enrolled {
            return Err(Refused::CapacityBelowEnrolled {
                course: self.course.clone(),
                enrolled: state.enrolled,
                capacity: self.capacity,
            });
        }
        if self.capacity == current {
            return Ok(Vec::new());
        }
        Ok(vec![CourseEvent::CourseCapacityChanged { course: self.course.clone(), capacity: self.capacity }])
    }

    fn stream_id(&self, event: &CourseEvent) -> Result<StreamId, InvalidInput> {
        event.stream_id()
    }
}
