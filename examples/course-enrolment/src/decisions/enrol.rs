//! [`EnrolStudent`]: a course has at most `capacity` students; a student takes at most
//! [`MAX_COURSES_PER_STUDENT`] courses.

use composable_rust::event_store::InvalidInput;
use composable_rust::query::EventQuery;
use composable_rust::{Decision, StreamId};

use super::{MAX_COURSES_PER_STUDENT, Refused};
use crate::events::{COURSE, CourseEvent, CourseId, STUDENT, StudentId};

/// Enrol `student` in `course`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolStudent {
    /// Who.
    pub student: StudentId,
    /// In which course.
    pub course: CourseId,
}

/// What [`EnrolStudent`] knows of the course and of the student.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrolment {
    /// The course's capacity; `None` when the course does not exist.
    pub capacity: Option<u32>,
    /// Students in the course.
    pub course_students: u32,
    /// The student is registered.
    pub student_exists: bool,
    /// Courses the student takes.
    pub student_courses: u32,
    /// The student is in this course already.
    pub already_enrolled: bool,
}

impl Decision for EnrolStudent {
    type Event = CourseEvent;
    type State = Enrolment;
    type Error = Refused;

    /// The course's events and the student's: an enrolment of this student in another course matches
    /// too (it counts towards the student's limit), as does one of another student in this course.
    fn query(&self) -> EventQuery {
        COURSE.query(&self.course).or(STUDENT.item(&self.student))
    }

    fn apply(&self, state: &mut Enrolment, event: &CourseEvent) {
        match event {
            CourseEvent::CourseDefined { capacity, .. } | CourseEvent::CourseCapacityChanged { capacity, .. } => {
                state.capacity = Some(*capacity);
            }
            CourseEvent::StudentRegistered { .. } => state.student_exists = true,
            CourseEvent::StudentEnrolled { student, course } => {
                let this_course = *course == self.course;
                let this_student = *student == self.student;
                state.course_students += u32::from(this_course);
                state.student_courses += u32::from(this_student);
                state.already_enrolled |= this_course && this_student;
            }
        }
    }

    fn decide(&self, state: &Enrolment) -> Result<Vec<CourseEvent>, Refused> {
        let (student, course) = (self.student.clone(), self.course.clone());
        let Some(capacity) = state.capacity else { return Err(Refused::NoSuchCourse(course)) };
        if !state.student_exists {
            return Err(Refused::NoSuchStudent(student));
        }
        if state.already_enrolled {
            return Err(Refused::AlreadyEnrolled { student, course });
        }
        if state.course_students >= capacity {
            return Err(Refused::CourseFull { course, capacity });
        }
        if state.student_courses >= MAX_COURSES_PER_STUDENT {
            return Err(Refused::TooManyCourses { student, max: MAX_COURSES_PER_STUDENT });
        }
        Ok(vec![CourseEvent::StudentEnrolled { student, course }])
    }

    fn stream_id(&self, event: &CourseEvent) -> Result<StreamId, InvalidInput> {
        event.stream_id()
    }
}
