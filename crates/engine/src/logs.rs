//! Merged logs of a stack's tasks for `berth logs`: every line prefixed by `service.slot@node`
//! (global services: `service@node`).
//!
//! Each task's log is read through the Swarm task-logs API (works for tasks on any node), with
//! timestamps so lines of different tasks can be merged in time order. Without `follow`, all lines
//! are collected, sorted by timestamp (stable per task) and handed on. With `follow`, the tasks'
//! streams are read concurrently and lines are handed on as they arrive; tasks that start later
//! (scale up, rolling update) are picked up by polling the task list every second.

use crate::inspect::{parse_rfc3339, pick_service, service_mode, service_name, short_name};
use crate::run::LineSplitter;
use crate::{Engine, EngineError};
use bollard::container::LogOutput;
use bollard::models::Service;
use bollard::query_parameters::{ListNodesOptions, ListTasksOptions};
use futures_util::StreamExt;
use futures_util::stream::SelectAll;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// What `berth logs` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsOptions {
    /// Keep streaming new lines (until the caller drops the future).
    pub follow: bool,
    /// Only lines since this Unix time (seconds); see [`parse_since`].
    pub since: Option<i64>,
    /// Only the last N lines of each task.
    pub tail: Option<u64>,
}

/// One log line of a task.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// Short service name.
    pub service: String,
    /// Replica slot (replicated services).
    pub slot: Option<i64>,
    /// Hostname of the task's node.
    pub node: String,
    /// Task ID.
    pub task_id: String,
    /// The engine's timestamp of the line (RFC 3339, nanoseconds), when it gave one.
    pub timestamp: Option<String>,
    /// True when the line came from stderr.
    pub stderr: bool,
    /// The line, without its newline.
    pub text: String,
}

impl LogLine {
    /// `service.slot@node` (or `service@node` without a slot).
    pub fn prefix(&self) -> String {
        match self.slot {
            Some(s) if s > 0 => format!("{}.{}@{}", self.service, s, self.node),
            _ => format!("{}@{}", self.service, self.node),
        }
    }

    /// `service.slot@node | text`.
    pub fn render(&self) -> String {
        format!("{} | {}", self.prefix(), self.text)
    }
}

/// Parses `--since`: a Unix time, an RFC 3339 timestamp, or a duration ago (`30s`, `10m`, `2h`, `1d`,
/// `1h30m`). `now` is the current Unix time.
pub fn parse_since(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().map_err(|_| bad_since(s))?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad_since(s)),
        };
    }
    if !num.is_empty() || s.is_empty() {
        return Err(bad_since(s));
    }
    Ok(now - total)
}

fn bad_since(s: &str) -> String {
    format!("cannot read `{s}` as a time: give a duration like `10m`, `2h`, `1h30m`, an RFC 3339 time or a Unix time")
}

/// Sort key of an RFC 3339 timestamp with fraction: (seconds, nanoseconds).
fn ts_key(ts: &str) -> (i64, u32) {
    let secs = parse_rfc3339(ts).unwrap_or(0);
    let nanos = ts
        .get(19..)
        .and_then(|r| r.strip_prefix('.'))
        .map(|r| {
            let digits: String = r.chars().take_while(char::is_ascii_digit).take(9).collect();
            format!("{digits:0<9}").parse::<u32>().unwrap_or(0)
        })
        .unwrap_or(0);
    (secs, nanos)
}

/// Splits `TIMESTAMP text` as the engine sends it with timestamps on.
fn split_timestamp(line: &str) -> (Option<String>, String) {
    match line.split_once(' ') {
        Some((ts, rest)) if parse_rfc3339(ts).is_some() => (Some(ts.to_string()), rest.to_string()),
        _ => (None, line.to_string()),
    }
}

/// Who a task's lines belong to.
#[derive(Clone)]
struct Source {
    service: String,
    slot: Option<i64>,
    node: String,
    task_id: String,
}

type Chunk = (usize, bool, Result<LogOutput, bollard::errors::Error>);

impl Engine {
    /// Reads the logs of the stack's services (or of one service, by short or full name) and hands
    /// each line to `on_line`, merged in time order (or, with `follow`, as they arrive; returns only
    /// on error or when the caller drops the future). Unknown service: [`EngineError::NotFound`].
    pub async fn logs(
        &self,
        stack: &str,
        service: Option<&str>,
        opts: &LogsOptions,
        on_line: &mut (dyn FnMut(&LogLine) + Send),
    ) -> Result<(), EngineError> {
        let all = self.stack_services(stack).await?;
        let services: Vec<Service> = match service {
            Some(want) => vec![pick_service(stack, &all, want)?.clone()],
            None => all,
        };
        if services.is_empty() {
            return Ok(());
        }
        let mut seen: HashSet<String> = HashSet::new();
        let mut sources: Vec<Source> = Vec::new();
        let mut splitters: Vec<(LineSplitter, LineSplitter)> = Vec::new();
        let mut streams: SelectAll<std::pin::Pin<Box<dyn futures_util::Stream<Item = Chunk> + Send>>> =
            SelectAll::new();

        let new = self.new_sources(stack, &services, &mut seen).await?;
        if !opts.follow {
            let mut lines: Vec<((i64, u32), usize, LogLine)> = Vec::new();
            for src in new {
                let mut stream = self.docker().task_logs(&src.task_id, Some(log_options(opts, false)));
                let mut split = (LineSplitter::default(), LineSplitter::default());
                let mut raw: Vec<(bool, String)> = Vec::new();
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(chunk) => push_chunk(&mut split, chunk, &mut |e, l| raw.push((e, l))),
                        // A task whose container is gone (pruned) has no logs: skip it.
                        Err(_) => break,
                    }
                }
                split.0.finish(&mut |l| raw.push((false, l)));
                split.1.finish(&mut |l| raw.push((true, l)));
                for (stderr, l) in raw {
                    let line = make_line(&src, stderr, &l);
                    let key = line.timestamp.as_deref().map(ts_key).unwrap_or((0, 0));
                    let n = lines.len();
                    lines.push((key, n, line));
                }
            }
            lines.sort_by_key(|a| (a.0, a.1));
            for (_, _, l) in &lines {
                on_line(l);
            }
            return Ok(());
        }

        let add = |srcs: Vec<Source>,
                   sources: &mut Vec<Source>,
                   splitters: &mut Vec<(LineSplitter, LineSplitter)>,
                   streams: &mut SelectAll<_>| {
            for src in srcs {
                let i = sources.len();
                let s = self.docker().task_logs(&src.task_id, Some(log_options(opts, true)));
                streams.push(Box::pin(s.map(move |item| (i, matches!(item, Ok(LogOutput::StdErr { .. })), item)))
                    as std::pin::Pin<Box<dyn futures_util::Stream<Item = Chunk> + Send>>);
                sources.push(src);
                splitters.push((LineSplitter::default(), LineSplitter::default()));
            }
        };
        add(new, &mut sources, &mut splitters, &mut streams);
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        loop {
            tokio::select! {
                Some((i, _, item)) = streams.next(), if !streams.is_empty() => {
                    if let Ok(chunk) = item {
                        let src = sources[i].clone();
                        push_chunk(&mut splitters[i], chunk, &mut |e, l| on_line(&make_line(&src, e, &l)));
                    }
                }
                _ = ticker.tick() => {
                    let all = self.stack_services(stack).await?;
                    let services: Vec<Service> = match service {
                        Some(want) => match pick_service(stack, &all, want) {
                            Ok(s) => vec![s.clone()],
                            Err(_) => Vec::new(),
                        },
                        None => all,
                    };
                    let new = self.new_sources(stack, &services, &mut seen).await?;
                    add(new, &mut sources, &mut splitters, &mut streams);
                }
            }
        }
    }

    /// Tasks of `services` not yet in `seen` that have (or had) a container.
    async fn new_sources(
        &self,
        stack: &str,
        services: &[Service],
        seen: &mut HashSet<String>,
    ) -> Result<Vec<Source>, EngineError> {
        let d = self.docker();
        let ids: Vec<String> = services.iter().filter_map(|s| s.id.clone()).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let info: HashMap<String, (String, bool)> = services
            .iter()
            .filter_map(|s| Some((s.id.clone()?, (short_name(stack, &service_name(s)), service_mode(s) == "global"))))
            .collect();
        let tasks = d
            .list_tasks(Some(ListTasksOptions { filters: Some(HashMap::from([("service".to_string(), ids)])) }))
            .await
            .map_err(|source| EngineError::Api { call: "list tasks", source })?;
        let nodes = d
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(|source| EngineError::Api { call: "list nodes", source })?;
        let hostnames: HashMap<String, String> = nodes
            .into_iter()
            .filter_map(|n| Some((n.id.clone()?, n.description.and_then(|d| d.hostname).or(n.id)?)))
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            let Some(id) = t.id.clone() else { continue };
            let has_container = t
                .status
                .as_ref()
                .and_then(|s| s.container_status.as_ref())
                .and_then(|c| c.container_id.as_ref())
                .is_some();
            if !has_container || seen.contains(&id) {
                continue;
            }
            let Some((service, global)) = t.service_id.as_ref().and_then(|s| info.get(s)).cloned() else { continue };
            seen.insert(id.clone());
            let node = t.node_id.as_ref().and_then(|n| hostnames.get(n)).cloned().unwrap_or_else(|| "?".into());
            out.push(Source { service, slot: if global { None } else { t.slot }, node, task_id: id });
        }
        out.sort_by(|a, b| (a.service.as_str(), a.slot).cmp(&(b.service.as_str(), b.slot)));
        Ok(out)
    }
}

fn log_options(opts: &LogsOptions, follow: bool) -> bollard::query_parameters::LogsOptions {
    bollard::query_parameters::LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        since: opts.since.map(|s| s.clamp(0, i32::MAX as i64) as i32).unwrap_or(0),
        until: 0,
        timestamps: true,
        tail: opts.tail.map(|t| t.to_string()).unwrap_or_else(|| "all".into()),
    }
}

fn push_chunk(split: &mut (LineSplitter, LineSplitter), chunk: LogOutput, emit: &mut dyn FnMut(bool, String)) {
    match chunk {
        LogOutput::StdErr { message } => split.1.push(&message, &mut |l| emit(true, l)),
        other => split.0.push(&other.into_bytes(), &mut |l| emit(false, l)),
    }
}

fn make_line(src: &Source, stderr: bool, raw: &str) -> LogLine {
    let (timestamp, text) = split_timestamp(raw);
    LogLine {
        service: src.service.clone(),
        slot: src.slot,
        node: src.node.clone(),
        task_id: src.task_id.clone(),
        timestamp,
        stderr,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_since_reads_durations_timestamps_and_unix_times() {
        assert_eq!(parse_since("10m", 1000), Ok(400));
        assert_eq!(parse_since("1h30m", 10_000), Ok(10_000 - 5400));
        assert_eq!(parse_since("1700000000", 0), Ok(1_700_000_000));
        assert_eq!(parse_since("1970-01-01T00:01:00Z", 0), Ok(60));
        assert!(parse_since("10x", 0).is_err());
        assert!(parse_since("10", 0).is_ok());
        assert!(parse_since("m", 0).is_err());
    }

    #[test]
    fn ts_key_orders_fractions_of_different_length_numerically() {
        assert!(ts_key("2026-01-01T00:00:00.1Z") < ts_key("2026-01-01T00:00:00.12Z"));
        assert!(ts_key("2026-01-01T00:00:00.9Z") < ts_key("2026-01-01T00:00:01Z"));
    }

    #[test]
    fn log_line_prefix_is_service_slot_at_node() {
        let (ts, text) = split_timestamp("2026-01-01T00:00:00.5Z hello world");
        let l = LogLine {
            service: "web".into(),
            slot: Some(2),
            node: "n1".into(),
            task_id: "t".into(),
            timestamp: ts,
            stderr: false,
            text,
        };
        assert_eq!(l.render(), "web.2@n1 | hello world");
        assert_eq!(LogLine { slot: None, ..l }.prefix(), "web@n1");
    }
}
