//! What each command does: open the store, run one decision through a [`Decider`] (or read everything for
//! `list`), print the outcome.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::process::ExitCode;
use std::sync::Arc;

use composable_rust::config::{self, Backend, EventStoreConfig};
use composable_rust::decision::{DeciderConfig, DecisionAction, Decisions};
use composable_rust::event::CodecId;
use composable_rust::event_store::LogFilter;
use composable_rust::{
    Decider, Decision, Event, EventStore, EventStoreError, GlobalPosition, Metadata, Reducer, Store, error_chain,
    reducer_fn,
};

use crate::cli::{Cli, Command, StoreArgs};
use crate::decisions::{ChangeCapacity, DefineCourse, EnrolStudent, Refused, RegisterStudent};
use crate::events::{CourseEvent, CourseId, StudentId, Username};

/// How a run ended, as the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done.
    Ok,
    /// Refused by the rules; nothing was written.
    Refused,
    /// The event store failed.
    StoreError,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        match exit {
            Exit::Ok => Self::SUCCESS,
            Exit::Refused => Self::from(1),
            Exit::StoreError => Self::from(3),
        }
    }
}

/// Runs one command line to the end, printing what happened.
pub async fn run(cli: Cli) -> Exit {
    let events = match open(&cli.store).await {
        Ok(events) => events,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::StoreError;
        }
    };
    let report = execute(&events, cli.command).await;
    match report.exit {
        Exit::Ok => print!("{}", report.text),
        Exit::Refused | Exit::StoreError => eprint!("{}", report.text),
    }
    if let Err(error) = events.close().await {
        eprintln!("warning: the event store did not close cleanly: {}", error_chain(&error));
    }
    report.exit
}

/// How a command ended and what to print: on stdout when it succeeded, on stderr otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The exit code.
    pub exit: Exit,
    /// The text to print, ending with a newline.
    pub text: String,
}

impl Report {
    fn new(exit: Exit, text: impl std::fmt::Display) -> Self {
        Self { exit, text: format!("{text}\n") }
    }
}

/// "1 place", "2 places".
fn places(capacity: u32) -> String {
    if capacity == 1 { "1 place".to_owned() } else { format!("{capacity} places") }
}

/// Runs one command against `events` and reports what happened.
pub async fn execute(events: &Arc<dyn EventStore>, command: Command) -> Report {
    match command {
        Command::DefineCourse { course, capacity } => {
            let done = format!("defined course {course} with {}", places(capacity));
            decide(events, DefineCourse { course, capacity }, done).await
        }
        Command::ChangeCapacity { course, capacity } => {
            let done = format!("course {course} now has {}", places(capacity));
            decide(events, ChangeCapacity { course, capacity }, done).await
        }
        Command::RegisterStudent { student, username } => {
            let done = format!("registered student {student} as {username}");
            decide(events, RegisterStudent { student, username }, done).await
        }
        Command::Enrol { student, course } => {
            let done = format!("enrolled student {student} in course {course}");
            decide(events, EnrolStudent { student, course }, done).await
        }
        Command::List => list(events.as_ref()).await,
    }
}

/// Opens the event store the arguments name, creating or migrating it.
async fn open(args: &StoreArgs) -> Result<Arc<dyn EventStore>, String> {
    let mut config = EventStoreConfig::default();
    config.codec = CodecId::Json;
    match &args.database_url {
        Some(url) => {
            config.backend = Backend::Postgres;
            config.postgres.url = Some(url.clone());
        }
        None => {
            if let Err(error) = std::fs::create_dir_all(&args.data_dir) {
                return Err(format!("could not create the folder {}: {error}", args.data_dir.display()));
            }
            config.sqlite.path = Some(args.data_dir.join("courses.db"));
        }
    }
    let location = config.location();
    config::open(&config)
        .await
        .map_err(|error| format!("could not open the event store at {location}: {}", error_chain(&error)))
}

/// A [`Decider`]'s state plus the final action of the decision it ran: what the program reports.
struct Run<D: Decision> {
    decisions: Decisions<D>,
    outcome: Option<DecisionAction<D>>,
}

/// Runs `decision` through a [`Decider`] on `events`, prints `done` or why it was refused or failed.
async fn decide<D>(events: &Arc<dyn EventStore>, decision: D, done: String) -> Report
where
    D: Decision<Event = CourseEvent, Error = Refused> + Clone + Debug,
{
    let decider = Decider::<D>::with_config(DeciderConfig::default().with_codec(CodecId::Json));
    // The parent reducer keeps the final action; the decider does everything else.
    let reducer = reducer_fn(move |run: &mut Run<D>, action: DecisionAction<D>, env: &()| {
        if action.is_final() {
            run.outcome = Some(action.clone());
        }
        decider.reduce(&mut run.decisions, action, env)
    });
    let store = Store::builder(reducer, Run { decisions: Decisions::default(), outcome: None }, ())
        .event_store(Arc::clone(events))
        .build();
    store.send(DecisionAction::decide(decision, Metadata::default())).finished().await;
    let outcome = store.state(|run| run.outcome.clone());
    store.shutdown();
    match outcome {
        Some(DecisionAction::Appended { events, .. }) if events.is_empty() => {
            Report::new(Exit::Ok, "nothing to change")
        }
        Some(DecisionAction::Appended { .. } | DecisionAction::AlreadyApplied { .. }) => Report::new(Exit::Ok, done),
        Some(DecisionAction::Rejected { error, .. }) => Report::new(Exit::Refused, format_args!("refused: {error}")),
        Some(DecisionAction::Failed { error, .. }) => Report::new(Exit::StoreError, format_args!("error: {error}")),
        _ => Report::new(Exit::StoreError, "error: the decision did not finish; check the store with `list`"),
    }
}

/// The courses and students as every event so far describes them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Each course: its capacity and its students.
    pub courses: BTreeMap<CourseId, (u32, Vec<StudentId>)>,
    /// Each student: their username and courses.
    pub students: BTreeMap<StudentId, (Username, Vec<CourseId>)>,
}

impl Listing {
    /// Folds one event in.
    pub fn apply(&mut self, event: CourseEvent) {
        match event {
            CourseEvent::CourseDefined { course, capacity }
            | CourseEvent::CourseCapacityChanged { course, capacity } => {
                self.courses.entry(course).or_default().0 = capacity;
            }
            CourseEvent::StudentRegistered { student, username } => {
                self.students.insert(student, (username, Vec::new()));
            }
            CourseEvent::StudentEnrolled { student, course } => {
                self.courses.entry(course.clone()).or_default().1.push(student.clone());
                if let Some((_, courses)) = self.students.get_mut(&student) {
                    courses.push(course);
                }
            }
        }
    }
}

impl std::fmt::Display for Listing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "courses:")?;
        if self.courses.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for (course, (capacity, students)) in &self.courses {
            let names: Vec<&str> = students.iter().map(StudentId::as_str).collect();
            writeln!(f, "  {course}: {}/{capacity} [{}]", students.len(), names.join(", "))?;
        }
        writeln!(f, "students:")?;
        if self.students.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for (student, (username, courses)) in &self.students {
            let names: Vec<&str> = courses.iter().map(CourseId::as_str).collect();
            writeln!(f, "  {student} ({username}): [{}]", names.join(", "))?;
        }
        Ok(())
    }
}

/// Reads the whole log and reports the listing.
async fn list(events: &dyn EventStore) -> Report {
    match read_listing(events).await {
        Ok(listing) => Report { exit: Exit::Ok, text: listing.to_string() },
        Err(error) => {
            Report::new(Exit::StoreError, format_args!("error: could not read the events: {}", error_chain(&error)))
        }
    }
}

/// The listing from every event of the log, read page by page.
///
/// # Errors
/// The store's error, or a decode error for an event that is not a [`CourseEvent`].
pub async fn read_listing(events: &dyn EventStore) -> Result<Listing, EventStoreError> {
    const PAGE: usize = 500;
    let mut listing = Listing::default();
    let mut after = GlobalPosition::START;
    loop {
        let page = events.read_all(after, &LogFilter::all(), PAGE).await?;
        for recorded in &page {
            listing.apply(CourseEvent::from_recorded(recorded)?);
            after = recorded.position;
        }
        if page.len() < PAGE {
            return Ok(listing);
        }
    }
}
