//! The disintegrate side: `PgEventStore` with a `DecisionMaker` (state query, decision, conditional append),
//! the library's own way to make a decision.

use disintegrate::serde::json::Json;
use disintegrate::{BoxDynError, Decision, DecisionError, Event, EventStore, NoSnapshot, StateMutate, StateQuery};
use disintegrate_postgres::{PgDecisionMaker, PgEventStore};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::{BenchError, Enrolment, Side};

/// The events of the benchmark, in disintegrate's shape: the `#[id]` fields are its query keys (one indexed
/// column each), as the tags are on the composable-rust side.
#[derive(Debug, Clone, PartialEq, Eq, Event, Serialize, Deserialize)]
#[stream(UserEvent, [UsernameRegistered])]
#[stream(CourseEvent, [CourseDefined, StudentEnrolled])]
#[stream(AccountEvent, [Deposited])]
pub enum DomainEvent {
    /// See [`crate::events::UsernameRegistered`].
    UsernameRegistered {
        #[id]
        username: String,
        user_id: String,
    },
    /// See [`crate::events::CourseDefined`].
    CourseDefined {
        #[id]
        course_id: String,
        capacity: u32,
    },
    /// See [`crate::events::StudentEnrolled`].
    StudentEnrolled {
        #[id]
        course_id: String,
        #[id]
        student_id: String,
    },
    /// See [`crate::events::Deposited`].
    Deposited {
        #[id]
        account_id: String,
        amount: u64,
    },
}

/// Whether a username is taken.
#[derive(Debug, Default, Clone, StateQuery, Serialize, Deserialize)]
#[state_query(UserEvent)]
pub struct Username {
    #[id]
    username: String,
    taken: bool,
}

impl StateMutate for Username {
    fn mutate(&mut self, _event: Self::Event) {
        self.taken = true;
    }
}

/// A course's capacity and seats taken.
#[derive(Debug, Default, Clone, StateQuery, Serialize, Deserialize)]
#[state_query(CourseEvent)]
pub struct Course {
    #[id]
    course_id: String,
    capacity: u32,
    enrolled: u32,
}

impl StateMutate for Course {
    fn mutate(&mut self, event: Self::Event) {
        match event {
            CourseEvent::CourseDefined { capacity, .. } => self.capacity = capacity,
            CourseEvent::StudentEnrolled { .. } => self.enrolled += 1,
        }
    }
}

/// Why a decision refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The username is someone else's.
    #[error("the username is taken")]
    UsernameTaken,
    /// No seat left.
    #[error("the course is full")]
    CourseFull,
}

struct RegisterUsername {
    username: String,
    user_id: String,
}

impl Decision for RegisterUsername {
    type Event = DomainEvent;
    type StateQuery = Username;
    type Error = Refused;

    fn state_query(&self) -> Username {
        Username { username: self.username.clone(), taken: false }
    }

    fn process(&self, state: &Username) -> Result<Vec<DomainEvent>, Refused> {
        if state.taken {
            return Err(Refused::UsernameTaken);
        }
        Ok(vec![DomainEvent::UsernameRegistered { username: self.username.clone(), user_id: self.user_id.clone() }])
    }
}

struct EnrollStudent {
    course_id: String,
    student_id: String,
}

impl Decision for EnrollStudent {
    type Event = DomainEvent;
    type StateQuery = Course;
    type Error = Refused;

    fn state_query(&self) -> Course {
        Course { course_id: self.course_id.clone(), ..Course::default() }
    }

    fn process(&self, course: &Course) -> Result<Vec<DomainEvent>, Refused> {
        if course.enrolled >= course.capacity {
            return Err(Refused::CourseFull);
        }
        Ok(vec![DomainEvent::StudentEnrolled { course_id: self.course_id.clone(), student_id: self.student_id.clone() }])
    }
}

type Store = PgEventStore<DomainEvent, Json<DomainEvent>>;

/// disintegrate's PostgreSQL store and decision maker on their own database.
#[derive(Clone)]
pub(crate) struct Disintegrate {
    store: Store,
    decisions: PgDecisionMaker<DomainEvent, Json<DomainEvent>, NoSnapshot>,
}

impl Disintegrate {
    /// The store on `pool`, with its schema created.
    pub(crate) async fn open(pool: PgPool) -> Result<Self, BenchError> {
        let store = PgEventStore::try_new(pool, Json::<DomainEvent>::default())
            .await
            .map_err(|e| BenchError::new(format!("disintegrate: creating the schema: {e}")))?;
        let decisions = disintegrate_postgres::decision_maker(store.clone(), NoSnapshot);
        Ok(Self { store, decisions })
    }
}

/// Whether a failed decision lost a race and may be retried: disintegrate's `Concurrency` error, or a
/// serialization failure (it appends in SERIALIZABLE transactions, which PostgreSQL may abort before the
/// commit, and those come back as database errors).
fn lost_race(error: &BoxDynError) -> bool {
    match error.downcast_ref::<disintegrate_postgres::Error>() {
        Some(disintegrate_postgres::Error::Concurrency) => true,
        Some(disintegrate_postgres::Error::Database(sqlx::Error::Database(db))) => {
            matches!(db.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

fn failed(operation: &str, error: &dyn std::fmt::Display) -> BenchError {
    BenchError::new(format!("disintegrate: {operation} failed: {error}"))
}

impl Side for Disintegrate {
    const NAME: &'static str = "disintegrate";

    async fn plain_append(&self, i: u64) -> Result<(), BenchError> {
        let event = DomainEvent::UsernameRegistered { username: format!("p{i}"), user_id: format!("user-p{i}") };
        self.store.append_without_validation(vec![event]).await.map(|_| ()).map_err(|e| failed("append", &e))
    }

    async fn register(&self, i: u64) -> Result<u32, BenchError> {
        let mut conflicts = 0;
        loop {
            let decision = RegisterUsername { username: format!("u{i}"), user_id: format!("user-{i}") };
            match self.decisions.make(decision).await {
                Ok(_) => return Ok(conflicts),
                Err(DecisionError::StateStore(e) | DecisionError::EventStore(e)) if lost_race(&e) => conflicts += 1,
                Err(e) => return Err(failed("RegisterUsername", &e)),
            }
        }
    }

    async fn define_course(&self, course: &str, capacity: u32) -> Result<(), BenchError> {
        let event = DomainEvent::CourseDefined { course_id: course.to_owned(), capacity };
        self.store.append_without_validation(vec![event]).await.map(|_| ()).map_err(|e| failed("append", &e))
    }

    async fn enroll(&self, course: &str, student: u64) -> Result<Enrolment, BenchError> {
        let mut conflicts = 0;
        loop {
            let decision = EnrollStudent { course_id: course.to_owned(), student_id: format!("s{student}") };
            match self.decisions.make(decision).await {
                Ok(_) => return Ok(Enrolment::Enrolled { conflicts }),
                Err(DecisionError::Domain(Refused::CourseFull)) => return Ok(Enrolment::Full { conflicts }),
                Err(DecisionError::StateStore(e) | DecisionError::EventStore(e)) if lost_race(&e) => conflicts += 1,
                Err(e) => return Err(failed("EnrollStudent", &e)),
            }
        }
    }

    async fn load(&self, _batch: u64, first: u64, count: u64, accounts: u64) -> Result<(), BenchError> {
        let events = (first..first + count)
            .map(|i| DomainEvent::Deposited { account_id: format!("a{}", i % accounts), amount: i })
            .collect();
        self.store.append_without_validation(events).await.map(|_| ()).map_err(|e| failed("append", &e))
    }

    async fn read_account(&self, account: u64) -> Result<usize, BenchError> {
        let account_id = format!("a{account}");
        let query = disintegrate::query!(AccountEvent; account_id == account_id);
        let events: Vec<_> = self.store.stream(&query).try_collect().await.map_err(|e| failed("stream", &e))?;
        // The stream ends with an `End` item carrying the epoch; the rest are the events.
        Ok(events.iter().filter(|item| matches!(item, disintegrate::StreamItem::Event(_))).count())
    }
}
