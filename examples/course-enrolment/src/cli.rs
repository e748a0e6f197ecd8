//! The command line, declared with clap: where the events live, and one subcommand per thing a person
//! can do.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::events::{CourseId, StudentId, Username};

/// Define courses, register students and enrol them, under rules that span courses and students.
///
/// Every invocation is a new process: each command reads the events its rule needs from the store.
#[derive(Debug, Parser)]
#[command(name = "course-enrolment", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Where the events live.
    #[command(flatten)]
    pub store: StoreArgs,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The exit codes, printed under `--help`.
const EXIT_CODES: &str =
    "Exit codes: 0 done, 1 refused by the rules (nothing written), 2 usage error, 3 event store error.";

/// Which event store to use.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Folder of the SQLite event store (the file `courses.db` in it), used unless --database-url is given.
    #[arg(long, global = true, value_name = "DIR", default_value = "./course-data")]
    pub data_dir: PathBuf,

    /// Use PostgreSQL at this URL (postgres://user:password@host:port/database) instead of SQLite.
    #[arg(long, global = true, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Define a course with room for a number of students.
    DefineCourse {
        /// The course's id (letters, digits, '_', '.', '-').
        course: CourseId,
        /// How many students it takes.
        #[arg(long)]
        capacity: u32,
    },
    /// Change a course's capacity (never below the students enrolled).
    ChangeCapacity {
        /// The course.
        course: CourseId,
        /// Its new capacity.
        #[arg(long)]
        capacity: u32,
    },
    /// Register a student under a unique username.
    RegisterStudent {
        /// The student's id.
        student: StudentId,
        /// The username (unique, compared without regard to case).
        #[arg(long)]
        username: Username,
    },
    /// Enrol a student in a course.
    Enrol {
        /// The student.
        student: StudentId,
        /// The course.
        course: CourseId,
    },
    /// List the courses with their students, and the students with their courses.
    List,
}
