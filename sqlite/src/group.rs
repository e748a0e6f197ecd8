//! [`AppendQueue`]: the appends waiting for the write connection, committed together (group commit).
//!
//! Under `synchronous = FULL` a commit costs one fsync of the write-ahead log, whatever it holds. Appends
//! that arrive while another append holds the write connection therefore wait in this queue, and the
//! next append to get the connection (the leader) commits every waiting append in one transaction: one
//! fsync for all of them. Each append keeps its own checks and its own result (see
//! `SqliteEventStore::commit_group`); the queue only decides who goes together and carries the answers.
//!
//! Fairness follows from two rules. The write connection is handed out in the order it was asked for
//! ([`crate::writer`]), and a leader takes every waiting append, in arrival order. So an append is
//! committed by the group after the one in progress when it arrived, at the latest: between its arrival
//! and its commit, every other task commits at most two appends.

use std::sync::{Arc, Mutex, PoisonError};

use composable_rust_core::{AppendResult, AtomicAppend, EventStoreError};
use tokio::sync::oneshot;

/// What an append returns to its caller.
pub(crate) type Reply = Result<Vec<AppendResult>, EventStoreError>;

/// An append waiting for a group commit, and where its result goes.
pub(crate) struct Queued {
    pub(crate) append: Arc<AtomicAppend>,
    reply: oneshot::Sender<Reply>,
}

impl Queued {
    /// Hands the append's result to its caller. A caller that gave up waiting (its future was dropped)
    /// is not there to receive it; its write stands, as any write that reached the database does.
    pub(crate) fn answer(self, reply: Reply) {
        // An error here only means the receiver is gone; see above.
        let _ = self.reply.send(reply);
    }
}

/// The appends of this process waiting for the write connection, in arrival order.
#[derive(Default)]
pub(crate) struct AppendQueue {
    waiting: Mutex<Vec<Queued>>,
}

impl AppendQueue {
    /// Queues `append` for the next group commit; its result arrives on the returned receiver. The
    /// receiver reports an error (the sender was dropped) when the leader that took the append was
    /// cancelled before answering: queue the append again (its event ids make that safe even if that
    /// leader's group did commit).
    pub(crate) fn push(&self, append: Arc<AtomicAppend>) -> oneshot::Receiver<Reply> {
        let (reply, receiver) = oneshot::channel();
        self.lock().push(Queued { append, reply });
        receiver
    }

    /// Takes every waiting append, in arrival order: the next group.
    pub(crate) fn take(&self) -> Vec<Queued> {
        std::mem::take(&mut *self.lock())
    }

    /// Removes `append` if it is still waiting (no leader took it), so that a caller that stops waiting
    /// with an error can be sure it will not be written later. Whether it was still waiting.
    pub(crate) fn withdraw(&self, append: &Arc<AtomicAppend>) -> bool {
        let mut waiting = self.lock();
        let before = waiting.len();
        waiting.retain(|queued| !Arc::ptr_eq(&queued.append, append));
        waiting.len() < before
    }

    /// How many appends are waiting: lets tests order arrivals.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        // Nothing can panic while the lock is held (pushes and takes of a Vec), so a poisoned lock still
        // holds a consistent queue.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use composable_rust_core::{ExpectedVersion, StreamId};

    fn append(stream: &str) -> Arc<AtomicAppend> {
        Arc::new(AtomicAppend::new().stream(StreamId::new(stream).unwrap(), ExpectedVersion::Any, Vec::new()))
    }

    #[test]
    fn a_group_takes_every_waiting_append_in_arrival_order() {
        let queue = AppendQueue::default();
        let appends: Vec<_> = ["a-1", "b-1", "c-1"].into_iter().map(append).collect();
        let _receivers: Vec<_> = appends.iter().map(|a| queue.push(Arc::clone(a))).collect();
        let group = queue.take();
        assert_eq!(group.len(), 3);
        for (queued, arrived) in group.iter().zip(&appends) {
            assert!(Arc::ptr_eq(&queued.append, arrived), "the group must keep the order of arrival");
        }
        assert!(queue.take().is_empty(), "a taken append belongs to one group only");
    }

    #[test]
    fn a_withdrawn_append_is_in_no_later_group_and_an_answer_reaches_its_caller() {
        let queue = AppendQueue::default();
        let (first, second) = (append("a-1"), append("b-1"));
        let _first_reply = queue.push(Arc::clone(&first));
        let mut second_reply = queue.push(Arc::clone(&second));
        assert!(queue.withdraw(&first));
        assert!(!queue.withdraw(&first), "only once");
        let group = queue.take();
        assert_eq!(group.len(), 1);
        assert!(Arc::ptr_eq(&group[0].append, &second));
        for queued in group {
            queued.answer(Ok(Vec::new()));
        }
        assert!(matches!(second_reply.try_recv(), Ok(Ok(results)) if results.is_empty()));
    }
}
