//! An account: what happened to it (events), what can be asked of it (commands), what it refuses (errors),
//! and the aggregate that decides commands and applies events. Everything here is pure: no I/O, no async.

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

/// Something that happened to an account. Events are facts, stored forever, so each type name carries a
/// schema version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    /// The account was opened for `owner`.
    Opened {
        /// Who owns the account.
        owner: String,
    },
    /// Money came in.
    Deposited {
        /// How much, in cents.
        cents: u64,
    },
    /// Money went out.
    Withdrawn {
        /// How much, in cents.
        cents: u64,
    },
}

impl Event for AccountEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Opened { .. } => "AccountOpened.v1",
            Self::Deposited { .. } => "Deposited.v1",
            Self::Withdrawn { .. } => "Withdrawn.v1",
        }
    }
}

/// What can be asked of an account.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    /// Open the account for `owner`.
    Open {
        /// Who will own the account.
        owner: String,
    },
    /// Put money in.
    Deposit {
        /// How much, in cents.
        cents: u64,
    },
    /// Take money out.
    Withdraw {
        /// How much, in cents.
        cents: u64,
    },
}

/// Why an account refuses a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    /// Open was asked of an account that is already open.
    #[error("the account is already open")]
    AlreadyOpen,
    /// Money was moved on an account that was never opened.
    #[error("the account is not open; open it first")]
    NotOpen,
    /// A withdrawal asked for more than the balance.
    #[error("insufficient funds: the balance is {balance} cents, {asked} cents were asked for")]
    InsufficientFunds {
        /// The balance when the withdrawal was asked for.
        balance: u64,
        /// The amount asked for.
        asked: u64,
    },
}

/// An account, rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Who owns it; `None` until it is opened.
    pub owner: Option<String>,
    /// The balance, in cents.
    pub balance: u64,
}

impl Aggregate for Account {
    const CATEGORY: &'static str = "account";
    const EVENT_TYPES: &'static [&'static str] = &["AccountOpened.v1", "Deposited.v1", "Withdrawn.v1"];
    const SNAPSHOT_SCHEMA_VERSION: u32 = 1;
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = AccountError;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner } => self.owner = Some(owner.clone()),
            AccountEvent::Deposited { cents } => self.balance += cents,
            AccountEvent::Withdrawn { cents } => self.balance -= cents,
        }
    }

    fn decide(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match (command, &self.owner) {
            (AccountCommand::Open { .. }, Some(_)) => Err(AccountError::AlreadyOpen),
            (AccountCommand::Open { owner }, None) => Ok(vec![AccountEvent::Opened { owner: owner.clone() }]),
            (_, None) => Err(AccountError::NotOpen),
            (AccountCommand::Deposit { cents }, Some(_)) => Ok(vec![AccountEvent::Deposited { cents: *cents }]),
            (AccountCommand::Withdraw { cents }, Some(_)) if *cents > self.balance => {
                Err(AccountError::InsufficientFunds { balance: self.balance, asked: *cents })
            }
            (AccountCommand::Withdraw { cents }, Some(_)) => Ok(vec![AccountEvent::Withdrawn { cents: *cents }]),
        }
    }
}

// The rules, tested without any store: given events, when a command, then events or an error.
#[cfg(test)]
mod tests {
    use super::*;

    fn opened() -> Account {
        Account::from_events(&[AccountEvent::Opened { owner: "ada".into() }])
    }

    #[test]
    fn a_deposit_to_an_open_account_is_recorded() {
        let mut account = opened();
        let events = account.handle(&AccountCommand::Deposit { cents: 500 });
        assert_eq!(events, Ok(vec![AccountEvent::Deposited { cents: 500 }]));
        assert_eq!(account.balance, 500);
    }

    #[test]
    fn a_withdrawal_beyond_the_balance_is_refused_and_changes_nothing() {
        let mut account = opened();
        let refused = account.handle(&AccountCommand::Withdraw { cents: 900 });
        assert_eq!(refused, Err(AccountError::InsufficientFunds { balance: 0, asked: 900 }));
        assert_eq!(account, opened());
    }

    #[test]
    fn an_account_that_was_never_opened_refuses_money() {
        let refused = Account::default().decide(&AccountCommand::Deposit { cents: 1 });
        assert_eq!(refused, Err(AccountError::NotOpen));
    }
}
