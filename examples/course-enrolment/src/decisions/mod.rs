//! One [`Decision`](composable_rust::Decision) per command, each reading exactly the events its rule
//! needs:
//!
//! | decision | query | rule |
//! |---|---|---|
//! | [`DefineCourse`] | the course's events | a course id is defined once |
//! | [`ChangeCapacity`] | the course's events | capacity at least 1, and not below the students enrolled |
//! | [`RegisterStudent`] | the username's registration, the student's events | usernames and student ids are unique |
//! | [`EnrolStudent`] | the course's events, the student's events | at most `capacity` students per course, at most [`MAX_COURSES_PER_STUDENT`] courses per student |
//!
//! Two enrolments in different courses by different students share no tag and never conflict; two in
//! the same course do, and the one that appends second reads the first's event and decides again.

mod change_capacity;
mod define_course;
mod enrol;
mod register_student;

pub use change_capacity::{ChangeCapacity, CourseCapacity};
pub use define_course::DefineCourse;
pub use enrol::{EnrolStudent, Enrolment};
pub use register_student::{RegisterStudent, Registration};

use crate::events::{CourseId, StudentId, Username};

/// The most courses one student may take.
pub const MAX_COURSES_PER_STUDENT: u32 = 3;

/// Why a command was refused. Nothing is written when a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The course id is taken.
    #[error("course {0} already exists")]
    CourseExists(CourseId),
    /// No course has this id.
    #[error("course {0} does not exist; define it first with `define-course`")]
    NoSuchCourse(CourseId),
    /// A capacity of zero.
    #[error("a course needs a capacity of at least 1")]
    ZeroCapacity,
    /// The new capacity is below the number of students enrolled.
    #[error(
        "course {course} has {enrolled} students enrolled; its capacity cannot go below that (asked for {capacity})"
    )]
    CapacityBelowEnrolled {
        /// The course.
        course: CourseId,
        /// Students enrolled.
        enrolled: u32,
        /// The capacity asked for.
        capacity: u32,
    },
    /// The student id is taken.
    #[error("student {0} already exists")]
    StudentExists(StudentId),
    /// The username is taken.
    #[error("the username {0} is taken; choose another")]
    UsernameTaken(Username),
    /// No student has this id.
    #[error("student {0} does not exist; register them first with `register-student`")]
    NoSuchStudent(StudentId),
    /// The student is in the course already.
    #[error("student {student} is already enrolled in course {course}")]
    AlreadyEnrolled {
        /// The student.
        student: StudentId,
        /// The course.
        course: CourseId,
    },
    /// The course has no free place.
    #[error("course {course} is full: {} taken", if *capacity == 1 { "its 1 place is".to_owned() } else { format!("all {capacity} places are") })]
    CourseFull {
        /// The course.
        course: CourseId,
        /// Its capacity.
        capacity: u32,
    },
    /// The student takes the most courses allowed.
    #[error("student {student} already takes {max} courses, the most allowed")]
    TooManyCourses {
        /// The student.
        student: StudentId,
        /// [`MAX_COURSES_PER_STUDENT`].
        max: u32,
    },
}
