//! The sides of the comparison and the three stores behind one interface: open, write, read, measure.

use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;

use crate::BenchError;
use crate::cqrs::Cqrs;
use crate::db;
use crate::event::ItemAdded;
use crate::ours::{Ours, OursWriter};
use crate::prima::{Esrs, EsrsWriter};

/// A column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Pgbench,
    Ours,
    PostgresEs,
    Esrs,
}

impl Side {
    pub(crate) const ALL: [Self; 4] = [Self::Pgbench, Self::Ours, Self::PostgresEs, Self::Esrs];
    pub(crate) const STORES: [Self; 3] = [Self::Ours, Self::PostgresEs, Self::Esrs];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Pgbench => "pgbench",
            Self::Ours => "composable-rust",
            Self::PostgresEs => "postgres-es",
            Self::Esrs => "esrs",
        }
    }

    /// A name for its databases.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Self::Pgbench => "pgbench",
            Self::Ours => "ours",
            Self::PostgresEs => "pges",
            Self::Esrs => "esrs",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// `sides` rotated by `run`, so each side goes first in turn.
    pub(crate) fn rotated(sides: &[Self], run: u32) -> Vec<Self> {
        let shift = run as usize % sides.len();
        sides[shift..].iter().chain(&sides[..shift]).copied().collect()
    }
}

/// One of the three stores, opened on its own database.
#[derive(Debug)]
pub(crate) enum Store {
    Ours(Ours),
    Cqrs(Arc<Cqrs>),
    Esrs(Esrs),
}

impl Store {
    pub(crate) async fn open(side: Side, options: PgConnectOptions) -> Result<Self, BenchError> {
        Ok(match side {
            Side::Ours => Self::Ours(Ours::open(options).await?),
            Side::PostgresEs => Self::Cqrs(Arc::new(Cqrs::open(options).await?)),
            Side::Esrs => Self::Esrs(Esrs::open(options).await?),
            Side::Pgbench => return Err(BenchError::new("pgbench is not a store")),
        })
    }

    /// A writer of the new order `order`.
    pub(crate) fn writer(&self, order: u64) -> Result<Writer, BenchError> {
        Ok(match self {
            Self::Ours(store) => Writer::Ours(store.writer(order)?),
            Self::Cqrs(store) => Writer::Cqrs { store: Arc::clone(store), order, sequence: 0 },
            Self::Esrs(store) => Writer::Esrs(store.writer(order)),
        })
    }

    pub(crate) async fn replay(&self, order: u64) -> Result<u64, BenchError> {
        match self {
            Self::Ours(store) => store.replay(order).await,
            Self::Cqrs(store) => store.replay(order).await,
            Self::Esrs(store) => store.replay(order).await,
        }
    }

    pub(crate) async fn read_global(&self, total: u64) -> Result<u64, BenchError> {
        match self {
            Self::Ours(store) => store.read_global(total).await,
            Self::Cqrs(store) => store.read_global().await,
            Self::Esrs(store) => store.read_global().await,
        }
    }

    pub(crate) async fn table_size(&self) -> Result<(u64, u64), BenchError> {
        match self {
            Self::Ours(store) => store.table_size().await,
            Self::Cqrs(store) => store.table_size().await,
            Self::Esrs(store) => store.table_size().await,
        }
    }

    pub(crate) async fn vacuum_analyze(&self) -> Result<(), BenchError> {
        let pool = match self {
            Self::Ours(store) => store.pool(),
            Self::Cqrs(store) => store.pool(),
            Self::Esrs(store) => store.pool(),
        };
        db::vacuum_analyze(pool).await
    }

    pub(crate) async fn close(&self) {
        match self {
            Self::Ours(store) => store.close().await,
            Self::Cqrs(store) => store.close().await,
            Self::Esrs(store) => store.close().await,
        }
    }
}

/// Appends to one order's stream, remembering where it stands.
#[derive(Debug)]
pub(crate) enum Writer {
    Ours(OursWriter),
    Cqrs { store: Arc<Cqrs>, order: u64, sequence: u64 },
    Esrs(EsrsWriter),
}

impl Writer {
    pub(crate) async fn append(&mut self, events: Vec<ItemAdded>) -> Result<(), BenchError> {
        match self {
            Self::Ours(writer) => writer.append(events).await,
            Self::Cqrs { store, order, sequence } => {
                let count = events.len() as u64;
                store.commit(*order, *sequence, events).await?;
                *sequence += count;
                Ok(())
            }
            Self::Esrs(writer) => writer.append(events).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Side;

    #[test]
    fn each_side_goes_first_in_turn() {
        assert_eq!(Side::rotated(&Side::STORES, 0), Side::STORES);
        assert_eq!(Side::rotated(&Side::STORES, 1), [Side::PostgresEs, Side::Esrs, Side::Ours]);
        assert_eq!(Side::rotated(&Side::STORES, 3), Side::STORES);
    }
}
