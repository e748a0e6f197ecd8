//! A bank with one aggregate, `Account`: the project the getting-started guide builds.

pub mod account;
