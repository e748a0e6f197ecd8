//! The disintegrate side: `PgEventStore` with a `DecisionMaker` (state query, decision, conditional append),
//! the library's own way to make a decision.

use disintegrate::serde::json::Json;
use disintegrate::{BoxDynError, Decision, DecisionError, Event, EventStore, NoSnapshot, StateMutate, StateQuery};
use disintegrate_postgres::{PgDecisionMaker, PgEventStore};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

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
pub(crate) enum Refused {
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
        Ok(vec![DomainEvent::StudentEnrolled {
            course_id: self.course_id.clone(),
            student_id: self.student_id.clone(),
        }])
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
    ///
    /// disintegrate 4.0's schema writes two bit masks as hexadecimal literals, which PostgreSQL accepts
    /// from version 16 on. On an older server the schema is created with function bodies unchecked, and
    /// the one function holding them is replaced by [`BEGIN_EPOCH_BEFORE_PG16`], which takes the same locks.
    pub(crate) async fn open(pool: PgPool) -> Result<Self, BenchError> {
        let serde = Json::<DomainEvent>::default();
        let version: String = sqlx::query_scalar("SHOW server_version_num")
            .fetch_one(&pool)
            .await
            .map_err(|e| failed("reading the server version", &e))?;
        let store = if version.parse::<u32>().is_ok_and(|v| v >= 160_000) {
            PgEventStore::try_new(pool, serde).await.map_err(|e| failed("creating the schema", &e))?
        } else {
            let options = (*pool.connect_options()).clone().options([("check_function_bodies", "off")]);
            let setup = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(|e| failed("connecting to create the schema", &e))?;
            PgEventStore::try_new(setup.clone(), serde.clone()).await.map_err(|e| failed("creating the schema", &e))?;
            setup.close().await;
            sqlx::query(BEGIN_EPOCH_BEFORE_PG16)
                .execute(&pool)
                .await
                .map_err(|e| failed("replacing event_store_begin_epoch for PostgreSQL before 16", &e))?;
            PgEventStore::new_uninitialized(pool, serde)
        };
        let decisions = disintegrate_postgres::decision_maker(store.clone(), NoSnapshot);
        Ok(Self { store, decisions })
    }
}

/// disintegrate's `event_store_begin_epoch()` for PostgreSQL before 16: a writer announces the event id
/// it may take with three shared transaction-level advisory locks (this database, then the low and the
/// high 32 bits of the id sequence's last value), which `event_store_current_epoch()` looks up so readers
/// never pass an id still being written. The same locks on the same keys, with the mask in decimal.
const BEGIN_EPOCH_BEFORE_PG16: &str = r"
CREATE OR REPLACE FUNCTION event_store_begin_epoch() RETURNS void AS $$
DECLARE
    last_id BIGINT;
    database_key INT;
BEGIN
    SELECT last_value INTO last_id FROM seq_event_event_id;
    SELECT oid INTO database_key FROM pg_database WHERE datname = current_database();
    PERFORM pg_try_advisory_xact_lock_shared(database_key, 0);
    PERFORM pg_try_advisory_xact_lock_shared(1, (last_id & 4294967295)::bit(32)::integer);
    PERFORM pg_try_advisory_xact_lock_shared(2, (last_id >> 32)::bit(32)::integer);
END;
$$ LANGUAGE plpgsql";

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
