//! The decisions, tested two ways: as pure functions with `Decision::handle` (given the history, when
//! the command, then the events or the refusal), and through a `Decider` in a `TestStore`, which asserts
//! every read by query, every conditional append and every action, including the path where another
//! writer appends a matching event between the read and the append.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed set-up step should fail loudly")]

use std::fmt::Debug;

use composable_rust::decision::DeciderConfig;
use composable_rust::decision::{DecisionAction, DecisionFailure, Decisions, RunId};
use composable_rust::event::CodecId;
use composable_rust::query::AppendCondition;
use composable_rust::testing::TestStore;
use composable_rust::{Decider, Decision, Event, EventStore, ExpectedVersion, GlobalPosition, Metadata, StreamId};
use course_enrolment::decisions::{
    ChangeCapacity, CourseCapacity, DefineCourse, EnrolStudent, Enrolment, Refused, RegisterStudent,
};
use course_enrolment::events::{CourseEvent, CourseId, StudentId, Username};

fn course(id: &str) -> CourseId {
    id.parse().unwrap()
}

fn student(id: &str) -> StudentId {
    id.parse().unwrap()
}

fn username(name: &str) -> Username {
    name.parse().unwrap()
}

fn defined(id: &str, capacity: u32) -> CourseEvent {
    CourseEvent::CourseDefined { course: course(id), capacity }
}

fn registered(id: &str, name: &str) -> CourseEvent {
    CourseEvent::StudentRegistered { student: student(id), username: username(name) }
}

fn enrolled(student_id: &str, course_id: &str) -> CourseEvent {
    CourseEvent::StudentEnrolled { student: student(student_id), course: course(course_id) }
}

fn stream(id: &str) -> StreamId {
    StreamId::new(id).unwrap()
}

fn position(n: u64) -> GlobalPosition {
    GlobalPosition::new(n)
}

/// Appends `event` to its stream, as another process would.
async fn append(events: &std::sync::Arc<dyn EventStore>, event: &CourseEvent) {
    let new = event.to_new_event(CodecId::Json, Metadata::default()).unwrap();
    events.append(&event.stream_id().unwrap(), ExpectedVersion::Any, vec![new]).await.unwrap();
}

/// A test store running `decider` on an in-memory event store holding `history`.
fn store_with<D>(decider: Decider<D>, history: &[CourseEvent]) -> TestStore<Decider<D>>
where
    D: Decision<Event = CourseEvent, Error = Refused> + Clone + PartialEq + Debug,
    D::State: Clone + PartialEq + Debug,
{
    let store = TestStore::new(decider, Decisions::default(), ());
    for event in history {
        store.block_on(append(store.event_store(), event));
    }
    store
}

// ---- The rules, as pure functions -------------------------------------------------------------------

#[test]
fn a_course_id_is_defined_once_with_a_capacity_of_at_least_one() {
    let define = DefineCourse { course: course("c1"), capacity: 2 };
    assert_eq!(define.handle(&[]), Ok(vec![defined("c1", 2)]));
    assert_eq!(define.handle(&[defined("c1", 5)]), Err(Refused::CourseExists(course("c1"))));
    assert!(define.handle(&[defined("c2", 5)]).is_ok(), "another course's events are not read");
    assert_eq!(DefineCourse { course: course("c1"), capacity: 0 }.handle(&[]), Err(Refused::ZeroCapacity));
}

#[test]
fn a_capacity_never_goes_below_the_students_enrolled_and_an_unchanged_one_writes_nothing() {
    let history = [
        defined("c1", 3),
        registered("s1", "ada"),
        enrolled("s1", "c1"),
        registered("s2", "bob"),
        enrolled("s2", "c1"),
    ];
    let shrink = ChangeCapacity { course: course("c1"), capacity: 1 };
    assert_eq!(
        shrink.handle(&history),
        Err(Refused::CapacityBelowEnrolled { course: course("c1"), enrolled: 2, capacity: 1 })
    );
    assert_eq!(ChangeCapacity { course: course("c1"), capacity: 3 }.handle(&history), Ok(vec![]));
    assert_eq!(
        ChangeCapacity { course: course("c1"), capacity: 2 }.handle(&history),
        Ok(vec![CourseEvent::CourseCapacityChanged { course: course("c1"), capacity: 2 }])
    );
    assert_eq!(
        ChangeCapacity { course: course("c9"), capacity: 2 }.handle(&history),
        Err(Refused::NoSuchCourse(course("c9")))
    );
}

#[test]
fn a_username_is_claimed_once_whatever_its_case() {
    let history = [registered("s1", "ada")];
    let again = RegisterStudent { student: student("s2"), username: username("ADA") };
    assert_eq!(again.handle(&history), Err(Refused::UsernameTaken(username("ada"))));
    let same_id = RegisterStudent { student: student("s1"), username: username("grace") };
    assert_eq!(same_id.handle(&history), Err(Refused::StudentExists(student("s1"))));
    let other = RegisterStudent { student: student("s2"), username: username("grace") };
    assert_eq!(other.handle(&history), Ok(vec![registered("s2", "grace")]));
}

#[test]
fn an_enrolment_needs_a_place_in_the_course_and_room_in_the_students_timetable() {
    let mut history = vec![registered("s1", "ada"), registered("s2", "bob")];
    for c in ["c1", "c2", "c3", "c4"] {
        history.push(defined(c, 1));
    }
    let enrol = |s: &str, c: &str| EnrolStudent { student: student(s), course: course(c) };
    assert_eq!(enrol("s1", "c9").handle(&history), Err(Refused::NoSuchCourse(course("c9"))));
    assert_eq!(enrol("s9", "c1").handle(&history), Err(Refused::NoSuchStudent(student("s9"))));
    for c in ["c1", "c2", "c3"] {
        let events = enrol("s1", c).handle(&history).unwrap();
        history.extend(events);
    }
    assert_eq!(
        enrol("s1", "c1").handle(&history),
        Err(Refused::AlreadyEnrolled { student: student("s1"), course: course("c1") })
    );
    assert_eq!(enrol("s1", "c4").handle(&history), Err(Refused::TooManyCourses { student: student("s1"), max: 3 }));
    assert_eq!(enrol("s2", "c1").handle(&history), Err(Refused::CourseFull { course: course("c1"), capacity: 1 }));
    assert_eq!(enrol("s2", "c4").handle(&history), Ok(vec![enrolled("s2", "c4")]));
}

// ---- Through the Decider, every request and action asserted -----------------------------------------

#[test]
fn an_enrolment_reads_the_course_and_the_student_then_appends_under_that_reads_condition() {
    let history = [defined("c1", 2), registered("s1", "ada"), defined("c2", 9), registered("s2", "bob")];
    let decider = Decider::<EnrolStudent>::new();
    let mut store = store_with(decider.clone(), &history);
    let enrol = EnrolStudent { student: student("s1"), course: course("c1") };
    let run = RunId(0);

    store.send(DecisionAction::decide(enrol.clone(), Metadata::default()), |s| {
        s.start(enrol.clone(), Metadata::default(), None);
    });
    store.receive_request(decider.read_request(&enrol, GlobalPosition::START));
    // Only the course's and the student's events; the horizon is the end of the log.
    store.receive(
        DecisionAction::Read {
            run,
            events: vec![defined("c1", 2), registered("s1", "ada")],
            horizon: position(4),
            more: false,
        },
        |s| {
            let running = s.running_mut(run).unwrap();
            running.state = Enrolment { capacity: Some(2), student_exists: true, ..Enrolment::default() };
            running.horizon = position(4);
            running.attempts = 1;
        },
    );
    store.receive_append_atomic(
        [(stream("student-s1"), ExpectedVersion::Any, vec![enrolled("s1", "c1")])],
        Some(&AppendCondition::new(enrol.query(), position(4))),
        &Metadata::default(),
    );
    store.receive(DecisionAction::Appended { run, decision: enrol.clone(), events: vec![enrolled("s1", "c1")] }, |s| {
        s.remove(run);
    });
    store.finish();
}

#[test]
fn a_refused_enrolment_writes_nothing() {
    let history = [defined("c1", 1), registered("s1", "ada"), registered("s2", "bob"), enrolled("s2", "c1")];
    let decider = Decider::<EnrolStudent>::new();
    let mut store = store_with(decider.clone(), &history);
    let enrol = EnrolStudent { student: student("s1"), course: course("c1") };
    let run = RunId(0);

    store.send(DecisionAction::decide(enrol.clone(), Metadata::default()), |s| {
        s.start(enrol.clone(), Metadata::default(), None);
    });
    store.receive_request(decider.read_request(&enrol, GlobalPosition::START));
    store.receive(
        DecisionAction::Read {
            run,
            events: vec![defined("c1", 1), registered("s1", "ada"), enrolled("s2", "c1")],
            horizon: position(4),
            more: false,
        },
        |s| {
            let running = s.running_mut(run).unwrap();
            running.state =
                Enrolment { capacity: Some(1), course_students: 1, student_exists: true, ..Enrolment::default() };
            running.horizon = position(4);
            running.attempts = 1;
        },
    );
    let error = Refused::CourseFull { course: course("c1"), capacity: 1 };
    store.receive(DecisionAction::Rejected { run, decision: enrol, error }, |s| {
        s.remove(run);
    });
    store.finish();
    let log = store.block_on(store.event_store().read_all(GlobalPosition::START, &Default::default(), 100)).unwrap();
    assert_eq!(log.len(), history.len(), "nothing was appended");
}

/// The last place of c1 is taken by another process between this decision's read and its append: the
/// condition fails, the decision reads the new event (only what follows its horizon), decides again on
/// the full course and refuses.
#[test]
fn a_matching_event_appended_between_read_and_append_makes_the_decision_read_and_decide_again() {
    let history = [defined("c1", 1), registered("s1", "ada"), registered("s2", "bob")];
    let decider = Decider::<EnrolStudent>::new();
    let mut store = store_with(decider.clone(), &history);
    let enrol = EnrolStudent { student: student("s1"), course: course("c1") };
    let run = RunId(0);
    let first_read = Enrolment { capacity: Some(1), student_exists: true, ..Enrolment::default() };

    store.send(DecisionAction::decide(enrol.clone(), Metadata::default()), |s| {
        s.start(enrol.clone(), Metadata::default(), None);
    });
    store.receive_request(decider.read_request(&enrol, GlobalPosition::START));
    store.receive(
        DecisionAction::Read {
            run,
            events: vec![defined("c1", 1), registered("s1", "ada")],
            horizon: position(3),
            more: false,
        },
        |s| {
            let running = s.running_mut(run).unwrap();
            running.state = first_read.clone();
            running.horizon = position(3);
            running.attempts = 1;
        },
    );
    // Another process enrols s2 in c1 now, at position 4.
    store.block_on(append(store.event_store(), &enrolled("s2", "c1")));
    store.receive_append_atomic(
        [(stream("student-s1"), ExpectedVersion::Any, vec![enrolled("s1", "c1")])],
        Some(&AppendCondition::new(enrol.query(), position(3))),
        &Metadata::default(),
    );
    store.receive(DecisionAction::Conflicted { run, after: position(3), position: position(4) }, |_| {});
    store.receive_request(decider.read_request(&enrol, position(3)));
    store.receive(
        DecisionAction::Read { run, events: vec![enrolled("s2", "c1")], horizon: position(4), more: false },
        |s| {
            let running = s.running_mut(run).unwrap();
            running.state.course_students = 1;
            running.horizon = position(4);
            running.attempts = 2;
        },
    );
    let error = Refused::CourseFull { course: course("c1"), capacity: 1 };
    store.receive(DecisionAction::Rejected { run, decision: enrol, error }, |s| {
        s.remove(run);
    });
    store.finish();
}

/// With no retries allowed, a failed condition ends the run with a failure that says why.
#[test]
fn a_decision_gives_up_after_its_conflict_retries() {
    let history = [defined("c1", 5)];
    let decider = Decider::<ChangeCapacity>::with_config(DeciderConfig::default().with_max_conflict_retries(0));
    let mut store = store_with(decider.clone(), &history);
    let change = ChangeCapacity { course: course("c1"), capacity: 4 };
    let run = RunId(0);

    store.send(DecisionAction::decide(change.clone(), Metadata::default()), |s| {
        s.start(change.clone(), Metadata::default(), None);
    });
    store.receive_request(decider.read_request(&change, GlobalPosition::START));
    store.receive(
        DecisionAction::Read { run, events: vec![defined("c1", 5)], horizon: position(1), more: false },
        |s| {
            let running = s.running_mut(run).unwrap();
            running.state = CourseCapacity { capacity: Some(5), enrolled: 0 };
            running.horizon = position(1);
            running.attempts = 1;
        },
    );
    store.block_on(append(
        store.event_store(),
        &CourseEvent::CourseCapacityChanged { course: course("c1"), capacity: 6 },
    ));
    store.receive_append_atomic(
        [(
            stream("course-c1"),
            ExpectedVersion::Any,
            vec![CourseEvent::CourseCapacityChanged { course: course("c1"), capacity: 4 }],
        )],
        Some(&AppendCondition::new(change.query(), position(1))),
        &Metadata::default(),
    );
    store.receive(DecisionAction::Conflicted { run, after: position(1), position: position(2) }, |_| {});
    let error = DecisionFailure::Conflict { attempts: 1, position: position(2) };
    store.receive(DecisionAction::Failed { run, decision: change, error }, |s| {
        s.remove(run);
    });
    store.finish();
}

/// A full page is followed by a read from its horizon; the decision waits for the last page.
#[test]
fn a_full_page_is_followed_by_another_read() {
    let history = [defined("c1", 2), registered("s1", "ada"), enrolled("s1", "c1")];
    let decider = Decider::<ChangeCapacity>::with_config(DeciderConfig::default().with_page_size(1));
    let mut store = store_with(decider.clone(), &history);
    let change = ChangeCapacity { course: course("c1"), capacity: 2 };
    let run = RunId(0);

    store.send(DecisionAction::decide(change.clone(), Metadata::default()), |s| {
        s.start(change.clone(), Metadata::default(), None);
    });
    store.receive_request(decider.read_request(&change, GlobalPosition::START));
    store.receive(
        DecisionAction::Read { run, events: vec![defined("c1", 2)], horizon: position(1), more: true },
        |s| {
            let running = s.running_mut(run).unwrap();
            running.state.capacity = Some(2);
            running.horizon = position(1);
        },
    );
    store.receive_request(decider.read_request(&change, position(1)));
    store.receive(
        DecisionAction::Read { run, events: vec![enrolled("s1", "c1")], horizon: position(3), more: true },
        |s| {
            let running = s.running_mut(run).unwrap();
            running.state.enrolled = 1;
            running.horizon = position(3);
        },
    );
    store.receive_request(decider.read_request(&change, position(3)));
    store.receive(DecisionAction::Read { run, events: vec![], horizon: position(3), more: false }, |s| {
        s.running_mut(run).unwrap().attempts = 1;
    });
    // The capacity is unchanged: nothing to append.
    store.receive(DecisionAction::Appended { run, decision: change, events: vec![] }, |s| {
        s.remove(run);
    });
    store.finish();
}

/// A wrong expectation fails with a diff of the decoded events, their tags and the condition.
#[test]
#[should_panic(expected = "the atomic append does not match")]
fn a_wrong_conditional_append_fails_with_a_diff() {
    let history = [defined("c1", 2), registered("s1", "ada")];
    let decider = Decider::<EnrolStudent>::new();
    let mut store = store_with(decider.clone(), &history);
    let enrol = EnrolStudent { student: student("s1"), course: course("c1") };
    store.send(DecisionAction::decide(enrol.clone(), Metadata::default()), |s| {
        s.start(enrol.clone(), Metadata::default(), None);
    });
    store.receive_request(decider.read_request(&enrol, GlobalPosition::START));
    store.skip_received_actions();
    store.receive_append_atomic(
        [(stream("student-s1"), ExpectedVersion::Any, vec![enrolled("s1", "c2")])],
        Some(&AppendCondition::new(enrol.query(), position(1))),
        &Metadata::default(),
    );
}

/// Decisions run concurrently in one store, queries overlapping: the conditions keep the course's
/// capacity without any in-process queue. Five students race for two places.
#[test]
fn concurrent_enrolments_in_one_course_never_exceed_its_capacity() {
    use std::sync::Arc;

    use composable_rust::Store;
    use composable_rust::memory::InMemoryEventStore;
    use composable_rust::{Reducer, reducer_fn};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let events: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let students = ["s1", "s2", "s3", "s4", "s5"];
    runtime.block_on(async {
        append(&events, &defined("c1", 2)).await;
        for s in students {
            append(&events, &registered(s, s)).await;
        }
    });
    let decider = Decider::<EnrolStudent>::new();
    // Keeps every final action, so the test can count them.
    let reducer = reducer_fn(
        move |state: &mut (Decisions<EnrolStudent>, Vec<DecisionAction<EnrolStudent>>),
              action: DecisionAction<EnrolStudent>,
              env: &()| {
            if action.is_final() {
                state.1.push(action.clone());
            }
            decider.reduce(&mut state.0, action, env)
        },
    );
    let outcomes = runtime.block_on(async {
        let store =
            Store::builder(reducer, (Decisions::default(), Vec::new()), ()).event_store(Arc::clone(&events)).build();
        let sends: Vec<_> = students
            .iter()
            .map(|s| {
                store.send(DecisionAction::decide(
                    EnrolStudent { student: student(s), course: course("c1") },
                    Metadata::default(),
                ))
            })
            .collect();
        for send in sends {
            send.finished().await;
        }
        store.state(|state| state.1.clone())
    });
    let appended = outcomes.iter().filter(|a| matches!(a, DecisionAction::Appended { .. })).count();
    let full = outcomes
        .iter()
        .filter(|a| matches!(a, DecisionAction::Rejected { error: Refused::CourseFull { .. }, .. }))
        .count();
    assert_eq!((appended, full), (2, 3), "{outcomes:#?}");
    let log = runtime.block_on(events.read_all(GlobalPosition::START, &Default::default(), 100)).unwrap();
    assert_eq!(log.len(), 1 + students.len() + 2, "two enrolments stored");
}
