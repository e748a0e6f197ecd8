//! The `[retention]` table: which old events an operator's `retention apply` may remove. Nothing is ever
//! removed by the application itself; without this table every category keeps every event.
//!
//! ```toml
//! [retention]
//! default = { max_age_days = 3650 }     # categories without their own policy (unset: keep forever)
//!
//! [retention.categories.audit]
//! max_age_days = 90                     # events older than 90 days
//! replay_free = true                    # nothing loads these streams: no snapshot needed
//!
//! [retention.categories.order]
//! max_count = 100                       # keep the last 100 events of each order (below its snapshot)
//!
//! [retention.categories.session]
//! keep = { event_types = ["SessionStarted.v1"], metadata = { legal_hold = "true" } }
//! ```
//!
//! Each rule names at most one of `max_age_days`, `max_count` and `keep`; none keeps everything.

use std::collections::BTreeMap;

use composable_rust_core::{CategoryPolicy, KeepCriteria, RetentionPolicies, RetentionRule};
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The `[retention]` table of a configuration file. Default: keep everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetentionConfig {
    /// The rule of every category without its own entry (default: keep forever).
    #[serde(default)]
    pub default: RuleConfig,
    /// Policies by category (`order` for stream `order-42`).
    #[serde(default)]
    pub categories: BTreeMap<String, CategoryConfig>,
}

/// One rule: at most one of its fields; none keeps everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RuleConfig {
    /// Events recorded more than this many days ago may go.
    pub max_age_days: Option<u32>,
    /// Keep the last this many events of each stream.
    pub max_count: Option<u64>,
    /// Keep the events that match; the others may go.
    pub keep: Option<KeepConfig>,
}

/// A category's policy: its rule, and whether nothing replays its streams.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CategoryConfig {
    /// As [`RuleConfig::max_age_days`].
    pub max_age_days: Option<u32>,
    /// As [`RuleConfig::max_count`].
    pub max_count: Option<u64>,
    /// As [`RuleConfig::keep`].
    pub keep: Option<KeepConfig>,
    /// No aggregate loads this category's streams (an audit log), so events may go without a snapshot.
    /// Default: false.
    #[serde(default)]
    pub replay_free: bool,
}

/// What a `keep` rule keeps: events matching any of these.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeepConfig {
    /// Event types to keep.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Categories to keep.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Metadata values to keep (`actor`, `correlation_id`, `causation_id`, or a top-level key of the
    /// free-form metadata).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl RetentionConfig {
    /// The policies this table describes, checked.
    ///
    /// # Errors
    /// [`ConfigError::Retention`] naming the key that is wrong: a rule with two kinds, a zero age or count, a
    /// `keep` with no criterion, a bad category name.
    pub fn policies(&self) -> Result<RetentionPolicies, ConfigError> {
        let mut policies = RetentionPolicies::default().default_rule(rule(
            "retention.default",
            &self.default.max_age_days,
            &self.default.max_count,
            &self.default.keep,
        )?);
        for (category, config) in &self.categories {
            let key = format!("retention.categories.{category}");
            let rule = rule(&key, &config.max_age_days, &config.max_count, &config.keep)?;
            policies = policies.category(category.clone(), CategoryPolicy { rule, replay_free: config.replay_free });
        }
        policies
            .validate()
            .map_err(|e| ConfigError::Retention { key: "retention".to_owned(), reason: e.to_string() })?;
        Ok(policies)
    }
}

fn rule(
    key: &str,
    max_age_days: &Option<u32>,
    max_count: &Option<u64>,
    keep: &Option<KeepConfig>,
) -> Result<RetentionRule, ConfigError> {
    match (max_age_days, max_count, keep) {
        (None, None, None) => Ok(RetentionRule::Forever),
        (Some(days), None, None) => Ok(RetentionRule::MaxAge { days: *days }),
        (None, Some(keep), None) => Ok(RetentionRule::MaxCount { keep: *keep }),
        (None, None, Some(keep)) => Ok(RetentionRule::Keep(KeepCriteria {
            event_types: keep.event_types.clone(),
            categories: keep.categories.clone(),
            metadata: keep.metadata.clone(),
        })),
        _ => Err(ConfigError::Retention {
            key: key.to_owned(),
            reason: "name one of max_age_days, max_count and keep (a rule has one kind); use another category \
                     entry for another rule"
                .to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;

    fn parse(text: &str) -> Result<RetentionPolicies, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Parse { message: e.to_string() })?;
        file.retention.policies()
    }

    #[test]
    fn no_retention_table_keeps_everything() {
        let policies = parse("").unwrap();
        assert!(policies.is_forever());
    }

    #[test]
    fn every_rule_kind_reads_from_toml() {
        let policies = parse(
            r#"
            [retention]
            default = { max_age_days = 3650 }
            [retention.categories.audit]
            max_age_days = 90
            replay_free = true
            [retention.categories.order]
            max_count = 100
            [retention.categories.session]
            keep = { event_types = ["SessionStarted.v1"], metadata = { legal_hold = "true" } }
            "#,
        )
        .unwrap();
        assert_eq!(policies.default, RetentionRule::MaxAge { days: 3650 });
        assert_eq!(
            policies.for_category("audit"),
            CategoryPolicy { rule: RetentionRule::MaxAge { days: 90 }, replay_free: true }
        );
        assert_eq!(policies.for_category("order").rule, RetentionRule::MaxCount { keep: 100 });
        let RetentionRule::Keep(keep) = policies.for_category("session").rule else { panic!("a keep rule") };
        assert_eq!(keep.event_types, vec!["SessionStarted.v1".to_owned()]);
        assert_eq!(keep.metadata["legal_hold"], "true");
    }

    #[test]
    fn bad_policies_are_refused_naming_the_key() {
        let two = parse("[retention.categories.order]\nmax_count = 5\nmax_age_days = 3\n").unwrap_err().to_string();
        assert!(two.contains("retention.categories.order") && two.contains("one of"), "{two}");
        let zero = parse("[retention.categories.order]\nmax_count = 0\n").unwrap_err().to_string();
        assert!(zero.contains("max_count is 0"), "{zero}");
        let empty_keep = parse("[retention.categories.order]\nkeep = {}\n").unwrap_err().to_string();
        assert!(empty_keep.contains("no criterion"), "{empty_keep}");
        let unknown = parse("[retention.categories.order]\nmax_events = 5\n").unwrap_err().to_string();
        assert!(unknown.contains("max_events"), "{unknown}");
    }
}
