//! The in-memory bus keeps JetStream's promises: de-duplication by event id, durable groups that share
//! the work, redelivery of what is not acknowledged, backpressure, and replay from a position or a time.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::time::Duration;

use composable_rust_bus::{ConsumerConfig, EventBus, InMemoryBus, PublishReport, StartAt};
use futures::StreamExt;

use common::events;

#[tokio::test]
async fn an_event_published_twice_is_stored_once() {
    let bus = InMemoryBus::new();
    let batch = events("order", 2, 4);
    assert_eq!(bus.publish(&batch).await.unwrap(), PublishReport { stored: 4, duplicates: 0 });
    assert_eq!(bus.publish(&batch[1..]).await.unwrap(), PublishReport { stored: 0, duplicates: 3 });
    assert_eq!(bus.events(), batch);
}

#[tokio::test]
async fn consumers_of_one_group_share_the_events_and_other_groups_get_all_of_them() {
    let bus = InMemoryBus::new();
    bus.publish(&events("order", 3, 6)).await.unwrap();
    let group = ConsumerConfig::group("billing");
    let (mut a, mut b) = (bus.consume(&group).await.unwrap(), bus.consume(&group).await.unwrap());
    let mut seen = Vec::new();
    for _ in 0..3 {
        for stream in [&mut a, &mut b] {
            let delivery = stream.next().await.unwrap().unwrap();
            delivery.ack.ack().await.unwrap();
            seen.push(delivery.sequence);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, vec![1, 2, 3, 4, 5, 6], "each event went to exactly one consumer of the group");
    let mut other = bus.consume(&ConsumerConfig::group("shipping")).await.unwrap();
    assert_eq!(other.next().await.unwrap().unwrap().sequence, 1, "another group starts from the beginning");
}

#[tokio::test(start_paused = true)]
async fn an_unacknowledged_delivery_comes_again_after_the_ack_wait_and_a_refused_one_after_its_delay() {
    let bus = InMemoryBus::new();
    bus.publish(&events("order", 1, 1)).await.unwrap();
    let mut deliveries = bus.consume(&ConsumerConfig::group("g").ack_wait(Duration::from_secs(5))).await.unwrap();
    let first = deliveries.next().await.unwrap().unwrap();
    assert_eq!(first.attempt, 1);
    let again = deliveries.next().await.unwrap().unwrap(); // the paused clock jumps to the ack wait
    assert_eq!((again.sequence, again.attempt), (1, 2));
    again.ack.nak(Duration::from_secs(1)).await.unwrap();
    let third = deliveries.next().await.unwrap().unwrap();
    assert_eq!(third.attempt, 3);
    third.ack.ack().await.unwrap();
    assert_eq!(bus.in_flight("g"), 0);
    let nothing = tokio::time::timeout(Duration::from_secs(60), deliveries.next()).await;
    assert!(nothing.is_err(), "an acknowledged event is not delivered again");
}

#[tokio::test]
async fn a_group_holds_back_deliveries_past_its_limit_until_some_are_acknowledged() {
    let bus = InMemoryBus::new();
    bus.publish(&events("order", 1, 5)).await.unwrap();
    let mut deliveries = bus.consume(&ConsumerConfig::group("g").max_in_flight(2)).await.unwrap();
    let first = deliveries.next().await.unwrap().unwrap();
    let _second = deliveries.next().await.unwrap().unwrap();
    let held = tokio::time::timeout(Duration::from_millis(50), deliveries.next()).await;
    assert!(held.is_err(), "a third delivery waits while two are unacknowledged");
    assert_eq!(bus.in_flight("g"), 2);
    first.ack.ack().await.unwrap();
    assert_eq!(deliveries.next().await.unwrap().unwrap().sequence, 3);
}

#[tokio::test]
async fn a_new_group_starts_at_a_sequence_a_time_or_the_end_and_reads_only_its_categories() {
    let bus = InMemoryBus::new();
    bus.publish(&events("order", 1, 3)).await.unwrap();
    let later = chrono::Utc::now();
    bus.publish(&events("payment", 1, 2)).await.unwrap();

    let mut from_two = bus.consume(&ConsumerConfig::group("a").start_at(StartAt::Sequence(2))).await.unwrap();
    assert_eq!(from_two.next().await.unwrap().unwrap().sequence, 2);
    let mut from_time = bus.consume(&ConsumerConfig::group("b").start_at(StartAt::Time(later))).await.unwrap();
    assert_eq!(from_time.next().await.unwrap().unwrap().sequence, 4);
    let mut payments = bus.consume(&ConsumerConfig::group("c").category("payment")).await.unwrap();
    assert_eq!(payments.next().await.unwrap().unwrap().event.stream_id.category(), "payment");
    let mut new = bus.consume(&ConsumerConfig::group("d").start_at(StartAt::New)).await.unwrap();
    let fresh = common::event("order-9", 1, 99);
    bus.publish(std::slice::from_ref(&fresh)).await.unwrap();
    assert_eq!(*new.next().await.unwrap().unwrap().event, fresh);
}

#[tokio::test]
async fn a_group_name_with_a_dot_or_wildcard_is_refused_with_the_rule_it_breaks() {
    let bus = InMemoryBus::new();
    for name in ["a.b", "a*", "a>", "", "a b"] {
        let Err(error) = bus.consume(&ConsumerConfig::group(name)).await else { panic!("{name:?} accepted") };
        assert!(error.to_string().contains("consumer group"), "{error}");
    }
}
