//! The payloads both sides store, as JSON: the same fields on both sides, so rows are the same size.

use serde::{Deserialize, Serialize};

/// A username was taken (workloads 1 and 2, and the plain append).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UsernameRegistered {
    pub(crate) username: String,
    pub(crate) user_id: String,
}

/// A course opened with a capacity (workload 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CourseDefined {
    pub(crate) course_id: String,
    pub(crate) capacity: u32,
}

/// A student took a seat in a course (workload 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StudentEnrolled {
    pub(crate) course_id: String,
    pub(crate) student_id: String,
}

/// Money reached an account (workload 4's log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Deposited {
    pub(crate) account_id: String,
    pub(crate) amount: u64,
}
