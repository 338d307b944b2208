//! Streamed sessions from CloudWatch Logs: a group's streams (`DescribeLogStreams`), then each
//! stream's events on their own (`FilterLogEvents` on that stream, all pages).

/// The CloudWatch Logs client type, for callers that keep one.
pub use aws_sdk_cloudwatchlogs::Client;
use indexer::formats::StreamEvent;

/// A CloudWatch Logs client from the standard environment.
pub async fn client() -> Client {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Client::new(&config)
}

/// Split `GROUP[/STREAM-PREFIX]`: group names may hold `/`, so the longest leading part that
/// names an existing group is the group.
pub async fn resolve_group(
    client: &Client,
    path: &str,
) -> Result<(String, Option<String>), String> {
    let mut split = path.len();
    loop {
        let group = &path[..split];
        let found = client
            .describe_log_groups()
            .log_group_name_prefix(group)
            .send()
            .await
            .map_err(|e| format!("describe-log-groups: {}", crate::one_line(&e)))?;
        if found
            .log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some(group))
        {
            let rest = path[split..].trim_start_matches('/');
            return Ok((
                group.to_string(),
                (!rest.is_empty()).then(|| rest.to_string()),
            ));
        }
        match path[..split].rfind('/') {
            Some(p) if p > 0 => split = p,
            _ => return Err("no such log group".to_string()),
        }
    }
}

/// The streams of `group` whose names start with `prefix`, in name order
/// (`DescribeLogStreams`, all pages): a listing, nothing of their events. With `since_ms`, a
/// stream whose last event is known to be older is left out.
pub async fn list_streams(
    client: &Client,
    group: &str,
    prefix: Option<&str>,
    since_ms: Option<i64>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut pages = client
        .describe_log_streams()
        .log_group_name(group)
        .set_log_stream_name_prefix(prefix.filter(|p| !p.is_empty()).map(String::from))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("describe-log-streams: {}", crate::one_line(&e)))?;
        out.extend(
            page.log_streams()
                .iter()
                .filter(|s| match (since_ms, s.last_event_timestamp()) {
                    (Some(since), Some(last)) => last >= since,
                    _ => true,
                })
                .filter_map(|s| s.log_stream_name().map(String::from)),
        );
    }
    out.sort();
    Ok(out)
}

/// Every event of one stream since `since_ms`, with its event id (`FilterLogEvents` on that
/// stream, all pages): one stream in memory at a time, never the whole group.
pub async fn stream_events(
    client: &Client,
    group: &str,
    stream: &str,
    since_ms: Option<i64>,
) -> Result<Vec<StreamEvent>, String> {
    let mut out = Vec::new();
    let mut pages = client
        .filter_log_events()
        .log_group_name(group)
        .log_stream_names(stream)
        .set_start_time(since_ms)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            format!(
                "filter-log-events {group} {stream}: {}",
                crate::one_line(&e)
            )
        })?;
        out.extend(page.events().iter().map(|e| StreamEvent {
            log_stream_name: Some(stream.to_string()),
            timestamp: e.timestamp().unwrap_or(0),
            message: e.message().unwrap_or_default().to_string(),
            event_id: e.event_id().map(String::from),
        }));
    }
    Ok(out)
}
