//! One function per subcommand. Each opens the store only if it needs one, and read commands never create a
//! store that is not there.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::SecondsFormat;
use composable_rust::config::{self, Backend, EventStoreConfig};
use composable_rust::event_store::{LogCursor, LogFilter, StreamRange};
use composable_rust::{EventStore, GlobalPosition, StreamId, Version};
use composable_rust_archive::{ArchiveError, Progress, ReadLimits, Selection, VerifiedArchive, export, verify};
use futures::StreamExt;

use crate::cli::{
    Cli, Command, EventsArgs, ExportArgs, GlobalArgs, ImportArgs, ShowStreamArgs, StreamsArgs, TailArgs, VerifyArgs,
};
use crate::output;
use crate::{Exit, Failure};

/// Events per read of the global log.
const PAGE: usize = 1000;

/// Runs the command `cli` names.
pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let global = &cli.global;
    match cli.command {
        Command::Streams(args) => streams(global, args).await,
        Command::ShowStream(args) => show_stream(global, args).await,
        Command::Tail(args) => tail(global, args).await,
        Command::Events(args) => events(global, args).await,
        Command::Export(args) => export_archive(global, args).await,
        Command::Import(args) => import_archive(global, args).await,
        Command::Verify(args) => verify_archive(global, args).await,
        Command::Stats => stats(global).await,
        Command::Migrate => migrate(global).await,
        Command::Retention(command) => crate::retention::run(global, command).await,
    }
}

/// Whether a command may create the store when it is not there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// `import` and `migrate`.
    Allowed,
    /// Every command that only reads.
    Never,
}

/// The configuration the options and the environment name.
fn configuration(global: &GlobalArgs) -> Result<EventStoreConfig, Failure> {
    let config = match &global.config {
        Some(path) => EventStoreConfig::from_file(path).map_err(|e| Failure::from_error(Exit::Store, &e))?,
        None => EventStoreConfig::default(),
    };
    let url = global.database_url.clone();
    config
        .apply_env(|name| match (name, &url) {
            ("DATABASE_URL", Some(url)) => Some(url.clone()),
            _ => std::env::var(name).ok(),
        })
        .map_err(|e| Failure::from_error(Exit::Store, &e))
}

/// Opens the configured store (running its migrations, as the application does).
pub(crate) async fn open(global: &GlobalArgs, create: Create) -> Result<Arc<dyn EventStore>, Failure> {
    let config = configuration(global)?;
    let local_path = match config.backend {
        Backend::Sqlite => Some(config.sqlite.path_or_default()),
        Backend::File => Some(config.file.path_or_default()),
        _ => None,
    };
    if let (Some(path), Create::Never) = (local_path, create) {
        if !path.exists() {
            return Err(Failure::new(
                Exit::Store,
                format!(
                    "there is no event store at {}: name the application's store with --config FILE, \
                     --database-url or DATABASE_URL (this command never creates one)",
                    path.display()
                ),
            ));
        }
    }
    config::open(&config).await.map_err(|e| Failure::from_error(Exit::Store, &e))
}

pub(crate) fn store_failed(action: &str) -> impl FnOnce(composable_rust::EventStoreError) -> Failure + '_ {
    move |error| {
        let mut failure = Failure::from_error(Exit::Store, &error);
        failure.message = format!("could not {action}: {}", failure.message);
        failure
    }
}

pub(crate) fn archive_failed(error: &ArchiveError) -> Failure {
    let code = match error {
        ArchiveError::Invalid { .. } => Exit::InvalidArchive,
        ArchiveError::Io { .. } => Exit::File,
        _ => Exit::Store,
    };
    Failure::from_error(code, error)
}

async fn streams(global: &GlobalArgs, args: StreamsArgs) -> Result<(), Failure> {
    let store = open(global, Create::Never).await?;
    let prefix = match (&args.category, args.prefix) {
        (Some(category), _) => format!("{category}{}", StreamId::CATEGORY_SEPARATOR),
        (None, prefix) => prefix.unwrap_or_default(),
    };
    let (mut listed, mut events) = (0_usize, 0_u64);
    let mut after: Option<StreamId> = None;
    'pages: while listed < args.limit {
        let page = store.list_streams(&prefix, after.as_ref(), PAGE).await.map_err(store_failed("list the streams"))?;
        for info in &page {
            if info.version.get() < args.min_events {
                continue;
            }
            if listed == args.limit {
                break 'pages;
            }
            if global.json {
                output::json(&serde_json::json!({ "stream": info.stream_id, "events": info.version.get() }))?;
            } else {
                output::line(&format!("{:>10}  {}", info.version.get(), info.stream_id))?;
            }
            listed += 1;
            events += info.version.get();
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.stream_id.clone()),
            _ => break,
        }
    }
    if !global.json {
        output::line(&format!("{listed} streams, {events} events"))?;
    }
    Ok(())
}

async fn show_stream(global: &GlobalArgs, args: ShowStreamArgs) -> Result<(), Failure> {
    let stream = StreamId::new(args.stream).map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
    if args.from == 0 || args.to.is_some_and(|to| to < args.from) {
        return Err(Failure::new(Exit::Usage, "versions start at 1, and --to must not be below --from"));
    }
    let store = open(global, Create::Never).await?;
    let version = store.stream_version(&stream).await.map_err(store_failed("read the stream's version"))?;
    if version == Version::INITIAL {
        return Err(Failure::new(
            Exit::NoSuchStream,
            format!("there is no stream {stream}: `eventstore-admin streams` lists them"),
        ));
    }
    let range = StreamRange { from: Version::new(args.from), to: args.to.map(Version::new) };
    let mut events = store.read_stream(&stream, range);
    while let Some(event) = events.next().await {
        let event = event.map_err(store_failed("read the stream"))?;
        output::event(&event, global.json)?;
    }
    Ok(())
}

async fn tail(global: &GlobalArgs, args: TailArgs) -> Result<(), Failure> {
    let store = open(global, Create::Never).await?;
    let mut filter = args.category.as_deref().map_or_else(LogFilter::all, |c| LogFilter::all().category(c));
    filter.actor = args.actor;
    filter.event_types = args.types;
    // The last `lines` events: one read of the log newest first (one event to learn where to follow from).
    let mut last = store
        .read_log(LogCursor::Newest, &filter, args.lines.max(1))
        .await
        .map_err(store_failed("read the global log"))?;
    let mut after = last.first().map_or(GlobalPosition::START, |newest| newest.position);
    last.truncate(args.lines);
    for event in last.iter().rev() {
        output::event(event, global.json)?;
    }
    if !args.follow {
        return Ok(());
    }
    // Live: woken by the store's commit notifications, and polling for stores that send none to this process.
    let mut commits = store.commit_notifications();
    let poll = Duration::from_millis(args.poll_ms.max(10));
    loop {
        let page = store.read_all(after, &filter, PAGE).await.map_err(store_failed("read the global log"))?;
        let full = page.len() == PAGE;
        for event in &page {
            output::event(event, global.json)?;
            after = event.position;
        }
        if full {
            continue;
        }
        match commits.as_mut() {
            Some(commits) => {
                let _ = tokio::time::timeout(poll, commits.next()).await;
            }
            None => tokio::time::sleep(poll).await,
        }
    }
}

async fn events(global: &GlobalArgs, args: EventsArgs) -> Result<(), Failure> {
    let prefix = match (args.category, args.prefix) {
        (Some(category), _) => Some(format!("{category}{}", StreamId::CATEGORY_SEPARATOR)),
        (None, prefix) => prefix,
    };
    let filter = LogFilter {
        event_types: args.types,
        stream_prefix: prefix,
        correlation_id: args.correlation_id,
        recorded_from: args.since,
        recorded_before: args.until,
        actor: args.actor,
    };
    let mut cursor = match (args.after, args.before) {
        (_, Some(before)) => LogCursor::Before(GlobalPosition::new(before)),
        (Some(after), None) => LogCursor::After(GlobalPosition::new(after)),
        (None, None) if args.newest_first => LogCursor::Newest,
        (None, None) => LogCursor::OLDEST,
    };
    let store = open(global, Create::Never).await?;
    let mut left = args.limit;
    while left > 0 {
        let page =
            store.read_log(cursor, &filter, left.min(PAGE)).await.map_err(store_failed("read the global log"))?;
        for event in &page {
            output::event(event, global.json)?;
        }
        if page.len() < left.min(PAGE) {
            break;
        }
        left -= page.len();
        cursor = cursor.next(&page);
    }
    Ok(())
}

fn selection(args: &ExportArgs) -> Selection {
    match (&args.category, args.after, args.up_to) {
        (Some(category), ..) => Selection::Category(category.clone()),
        (None, None, None) => Selection::All,
        (None, after, up_to) => Selection::Positions { after: after.unwrap_or(0), up_to },
    }
}

async fn export_archive(global: &GlobalArgs, args: ExportArgs) -> Result<(), Failure> {
    let selection = selection(&args);
    let to_stdout = args.output.as_os_str() == "-";
    if !to_stdout && args.output.exists() && !args.force {
        return Err(Failure::new(
            Exit::Usage,
            format!("{} exists: pass --force to replace it, or choose another file", args.output.display()),
        ));
    }
    let store = open(global, Create::Never).await?;
    let bar = output::progress(None, "events", global.json || to_stdout);
    let report = |p: Progress| bar.set_position(p.events);
    let summary = if to_stdout {
        export(&*store, &selection, tokio::io::stdout(), report).await.map_err(|e| archive_failed(&e))?
    } else {
        let partial = partial_path(&args.output);
        let written = async {
            let file = tokio::fs::File::create(&partial)
                .await
                .map_err(|source| ArchiveError::Io { action: format!("create {}", partial.display()), source })?;
            let summary = export(&*store, &selection, file, report).await?;
            tokio::fs::rename(&partial, &args.output).await.map_err(|source| ArchiveError::Io {
                action: format!("rename {} to {}", partial.display(), args.output.display()),
                source,
            })?;
            Ok::<_, ArchiveError>(summary)
        }
        .await;
        if written.is_err() {
            // Never leave a file that looks like an archive but is not one.
            let _ = tokio::fs::remove_file(&partial).await;
        }
        written.map_err(|e| archive_failed(&e))?
    };
    bar.finish_and_clear();
    if to_stdout {
        return Ok(());
    }
    if global.json {
        output::json(&serde_json::json!({
            "file": args.output, "events": summary.events, "streams": summary.streams,
            "snapshots": summary.snapshots, "checkpoints": summary.checkpoints, "bytes": summary.bytes,
            "sha256": summary.sha256,
        }))
    } else {
        output::line(&format!(
            "exported {} events of {} streams, {} snapshots and {} checkpoints to {} ({} bytes, sha256 {})",
            summary.events,
            summary.streams,
            summary.snapshots,
            summary.checkpoints,
            args.output.display(),
            summary.bytes,
            summary.sha256
        ))
    }
}

/// `FILE.partial`, next to `FILE`, so the rename stays on one file system.
pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

async fn import_archive(global: &GlobalArgs, args: ImportArgs) -> Result<(), Failure> {
    let size = std::fs::metadata(&args.input)
        .map_err(|e| Failure::new(Exit::File, format!("could not read {}: {e}", args.input.display())))?
        .len();
    let limits = ReadLimits { max_line_bytes: args.max_line_bytes };
    // The whole archive is checked before the store is opened, so a bad archive creates no store either.
    let bar = output::progress(Some(size), "bytes checked", global.json);
    let verified = VerifiedArchive::check(&args.input, limits, |p| bar.set_position(p.bytes))
        .await
        .map_err(|e| archive_failed(&e))?;
    bar.finish_and_clear();
    let store = open(global, Create::Allowed).await?;
    let bar = output::progress(Some(size), "bytes imported", global.json);
    let summary = verified.import(&*store, |p| bar.set_position(p.bytes)).await.map_err(|e| archive_failed(&e))?;
    bar.finish_and_clear();
    let archive = &summary.archive;
    let already_stored = archive.events.saturating_sub(summary.written);
    if global.json {
        output::json(&serde_json::json!({
            "file": args.input, "events": archive.events, "written": summary.written, "already_stored": already_stored,
            "streams": archive.streams, "snapshots": summary.snapshots, "checkpoints": summary.checkpoints,
            "source_backend": archive.header.source_backend,
        }))
    } else {
        output::line(&format!(
            "imported {} events of {} streams ({} written, {already_stored} already stored and left as they were), \
             {} snapshots and {} checkpoints from {} (exported from {} at {})",
            archive.events,
            archive.streams,
            summary.written,
            summary.snapshots,
            summary.checkpoints,
            args.input.display(),
            archive.header.source_backend,
            archive.header.written_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        ))
    }
}

async fn verify_archive(global: &GlobalArgs, args: VerifyArgs) -> Result<(), Failure> {
    let size = std::fs::metadata(&args.input)
        .map_err(|e| Failure::new(Exit::File, format!("could not read {}: {e}", args.input.display())))?
        .len();
    let limits = ReadLimits { max_line_bytes: args.max_line_bytes };
    let bar = output::progress(Some(size), "bytes", global.json);
    let summary = verify(&args.input, limits, |p| bar.set_position(p.bytes)).await.map_err(|e| archive_failed(&e))?;
    bar.finish_and_clear();
    if global.json {
        output::json(&serde_json::json!({
            "file": args.input, "valid": true, "events": summary.events, "streams": summary.streams,
            "snapshots": summary.snapshots, "checkpoints": summary.checkpoints, "lines": summary.lines,
            "sha256": summary.sha256, "source_backend": summary.header.source_backend,
        }))
    } else {
        output::line(&format!(
            "{} is valid: {} events of {} streams, {} snapshots, {} checkpoints, {} lines, sha256 {}",
            args.input.display(),
            summary.events,
            summary.streams,
            summary.snapshots,
            summary.checkpoints,
            summary.lines,
            summary.sha256
        ))
    }
}

async fn stats(global: &GlobalArgs) -> Result<(), Failure> {
    let store = open(global, Create::Never).await?;
    let stats = store.stats().await.map_err(store_failed("count what the store holds"))?;
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true));
    if global.json {
        return output::json(&serde_json::json!({
            "backend": stats.backend, "events": stats.events, "streams": stats.streams,
            "snapshots": stats.snapshots, "checkpoints": stats.checkpoints, "bytes_on_disk": stats.bytes_on_disk,
            "oldest": time(stats.oldest), "newest": time(stats.newest),
        }));
    }
    let none = || "-".to_owned();
    for (name, value) in [
        ("backend", stats.backend.to_owned()),
        ("events", stats.events.to_string()),
        ("streams", stats.streams.to_string()),
        ("snapshots", stats.snapshots.to_string()),
        ("checkpoints", stats.checkpoints.to_string()),
        ("bytes on disk", stats.bytes_on_disk.map_or_else(none, |b| b.to_string())),
        ("oldest event", time(stats.oldest).unwrap_or_else(none)),
        ("newest event", time(stats.newest).unwrap_or_else(none)),
    ] {
        output::line(&format!("{name:<14}{value}"))?;
    }
    Ok(())
}

async fn migrate(global: &GlobalArgs) -> Result<(), Failure> {
    let location = configuration(global)?.location();
    let store = open(global, Create::Allowed).await?;
    let health = store.health_check().await.map_err(store_failed("check the schema"))?;
    if global.json {
        output::json(&serde_json::json!({ "backend": health.backend, "location": location, "schema": "current" }))
    } else {
        output::line(&format!("the {} event store ({location}) has the current schema", health.backend))
    }
}
