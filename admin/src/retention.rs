//! `retention plan`, `retention apply` and `retention runs`: the policies come from the `[retention]` table
//! of `--config FILE` (none: keep everything); see docs/operations.md ("Retention").

use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use composable_rust::EventStore;
use composable_rust::config::ConfigFile;
use composable_rust::retention::{RetentionPlan, RetentionPolicies, RetentionRunId, apply_retention, plan_retention};
use composable_rust_archive::{ArchiveError, ReadLimits, archived_size, export_removals, verify};

use crate::cli::{ApplyArgs, GlobalArgs, RetentionCommand};
use crate::output;
use crate::run::{Create, archive_failed, open, partial_path, store_failed};
use crate::{Exit, Failure};

/// Runs one `retention` subcommand.
pub(crate) async fn run(global: &GlobalArgs, command: RetentionCommand) -> Result<(), Failure> {
    match command {
        RetentionCommand::Plan => plan(global).await,
        RetentionCommand::Apply(args) => apply(global, args).await,
        RetentionCommand::Runs => runs(global).await,
    }
}

/// The policies of `--config`'s `[retention]` table; without a file, keep everything.
fn policies(global: &GlobalArgs) -> Result<RetentionPolicies, Failure> {
    let Some(path) = &global.config else { return Ok(RetentionPolicies::default()) };
    let file = ConfigFile::from_file(path).map_err(|e| Failure::from_error(Exit::Store, &e))?;
    file.retention.policies().map_err(|e| Failure::from_error(Exit::Store, &e))
}

async fn make_plan(store: &dyn EventStore, policies: &RetentionPolicies) -> Result<RetentionPlan, Failure> {
    plan_retention(store, policies, Utc::now(), &archived_size).await.map_err(store_failed("plan retention"))
}

fn time(t: Option<chrono::DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

async fn plan(global: &GlobalArgs) -> Result<(), Failure> {
    let policies = policies(global)?;
    let store = open(global, Create::Never).await?;
    let plan = make_plan(&*store, &policies).await?;
    print_plan(global, &plan)
}

fn print_plan(global: &GlobalArgs, plan: &RetentionPlan) -> Result<(), Failure> {
    if global.json {
        let categories: Vec<_> = plan
            .categories
            .iter()
            .map(|(name, c)| {
                serde_json::json!({
                    "category": name, "streams": c.streams, "events": c.events, "remove": c.remove,
                    "kept_without_snapshot": c.kept_without_snapshot, "oldest_kept": time(c.oldest_kept),
                    "archive_bytes": c.archive_bytes,
                })
            })
            .collect();
        let kept: Vec<_> = plan
            .kept
            .iter()
            .map(|k| serde_json::json!({ "stream": k.stream_id, "events": k.events, "reason": k.reason.to_string() }))
            .collect();
        return output::json(&serde_json::json!({
            "policy": plan.policy, "events_to_remove": plan.events_to_remove(), "archive_bytes": plan.archive_bytes(),
            "categories": categories, "kept": kept,
        }));
    }
    output::line(&format!("policy: {}", plan.policy))?;
    if plan.categories.is_empty() {
        return output::line("no category has a retention rule: nothing would be removed");
    }
    output::line(&format!(
        "{:<16} {:>8} {:>10} {:>10} {:>12}  {:<20} {:>14}",
        "category", "streams", "events", "remove", "no snapshot", "oldest kept", "archive bytes"
    ))?;
    for (name, c) in &plan.categories {
        output::line(&format!(
            "{name:<16} {:>8} {:>10} {:>10} {:>12}  {:<20} {:>14}",
            c.streams,
            c.events,
            c.remove,
            c.kept_without_snapshot,
            time(c.oldest_kept).unwrap_or_else(|| "-".to_owned()),
            c.archive_bytes
        ))?;
    }
    output::line(&format!(
        "{} events would be removed ({} bytes of archive)",
        plan.events_to_remove(),
        plan.archive_bytes()
    ))?;
    for kept in &plan.kept {
        output::line(&format!("kept {} old events of {}: {}", kept.events, kept.stream_id, kept.reason))?;
    }
    Ok(())
}

/// The archive of one run: `FILE`, or with a schedule `FILE` with the run id before its extension.
fn archive_path(args: &ApplyArgs, run: RetentionRunId) -> PathBuf {
    if args.every.is_none() {
        return args.archive.clone();
    }
    let stem = args.archive.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match args.archive.extension() {
        Some(ext) => format!("{stem}.{run}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{run}"),
    };
    args.archive.with_file_name(name)
}

async fn apply(global: &GlobalArgs, args: ApplyArgs) -> Result<(), Failure> {
    let policies = policies(global)?;
    let store = open(global, Create::Never).await?;
    let actor = args.actor.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "eventstore-admin".into());
    let Some(every) = args.every else { return apply_once(global, &*store, &policies, &args, &actor).await };
    loop {
        if let Err(failure) = apply_once(global, &*store, &policies, &args, &actor).await {
            // A schedule keeps going: the next run plans again from what the store holds then.
            eprintln!("retention run failed: {}", failure.message);
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

async fn apply_once(
    global: &GlobalArgs,
    store: &dyn EventStore,
    policies: &RetentionPolicies,
    args: &ApplyArgs,
    actor: &str,
) -> Result<(), Failure> {
    let plan = make_plan(store, policies).await?;
    if plan.events_to_remove() == 0 {
        return if global.json {
            output::json(&serde_json::json!({ "removed": 0, "archive": null }))
        } else {
            output::line("nothing to remove under the policies; no archive written, no run recorded")
        };
    }
    let run = RetentionRunId::generate();
    let path = archive_path(args, run);
    if path.exists() && !args.force {
        return Err(Failure::new(
            Exit::Usage,
            format!("{} exists: pass --force to replace it, or choose another file", path.display()),
        ));
    }
    write_archive(store, &plan, run, &path).await?;
    let archive = path.display().to_string();
    let applied = apply_retention(store, &plan, run, actor, Some(&archive)).await.map_err(store_failed(
        "remove the archived events (they are in the archive; plan again and apply to finish)",
    ))?;
    if global.json {
        output::json(&serde_json::json!({
            "run": run.to_string(), "archive": archive, "removed": applied.removed,
            "already_removed": applied.already_removed, "batches": applied.batches,
        }))
    } else {
        output::line(&format!(
            "run {run}: archived {} events to {archive} (verified), then removed {} in {} transactions{}",
            plan.events_to_remove(),
            applied.removed,
            applied.batches,
            if applied.already_removed > 0 {
                format!(" ({} were already gone)", applied.already_removed)
            } else {
                String::new()
            }
        ))
    }
}

/// Writes the events `plan` removes to `path` (through `path.partial`, renamed once complete), then reads
/// it back with the verifier and checks that it holds every one of them. Nothing is removed before.
async fn write_archive(
    store: &dyn EventStore,
    plan: &RetentionPlan,
    run: RetentionRunId,
    path: &Path,
) -> Result<(), Failure> {
    let partial = partial_path(path);
    let written = async {
        let file = tokio::fs::File::create(&partial)
            .await
            .map_err(|source| ArchiveError::Io { action: format!("create {}", partial.display()), source })?;
        let summary = export_removals(store, &plan.removals, &run.to_string(), file, |_| {}).await?;
        tokio::fs::rename(&partial, path).await.map_err(|source| ArchiveError::Io {
            action: format!("rename {} to {}", partial.display(), path.display()),
            source,
        })?;
        Ok::<_, ArchiveError>(summary)
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    let summary = written.map_err(|e| archive_failed(&e))?;
    let verified = verify(path, ReadLimits::default(), |_| {}).await.map_err(|e| archive_failed(&e))?;
    if verified.events != plan.events_to_remove() || verified.sha256 != summary.sha256 {
        return Err(Failure::new(
            Exit::InvalidArchive,
            format!(
                "the archive {} holds {} events, but the plan removes {}: nothing was removed",
                path.display(),
                verified.events,
                plan.events_to_remove()
            ),
        ));
    }
    Ok(())
}

async fn runs(global: &GlobalArgs) -> Result<(), Failure> {
    let store = open(global, Create::Never).await?;
    let runs = store.retention_runs().await.map_err(store_failed("list the retention runs"))?;
    if runs.is_empty() && !global.json {
        return output::line("no retention run was recorded: no event was ever removed");
    }
    for run in runs {
        if global.json {
            output::json(&serde_json::json!({
                "run": run.id.to_string(), "actor": run.actor, "policy": run.policy, "archive": run.archive,
                "started_at": time(Some(run.started_at)), "finished_at": time(Some(run.finished_at)),
                "events_removed": run.events_removed, "batches": run.batches,
            }))?;
        } else {
            output::line(&format!(
                "{} by {} at {}: removed {} events in {} transactions, archive {}; policy {}",
                run.id,
                run.actor,
                time(Some(run.started_at)).unwrap_or_default(),
                run.events_removed,
                run.batches,
                run.archive.as_deref().unwrap_or("-"),
                run.policy
            ))?;
        }
    }
    Ok(())
}
