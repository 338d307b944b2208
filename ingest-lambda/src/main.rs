//! The `ingest-lambda` binary: environment and clients once, then the runtime loop.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

/// The replay allocates a few small strings per command; mimalloc serves them faster than the
/// system allocator (`BENCHMARKS.md`, target 1), as in the `ssm-audit` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let deps = ingest_lambda::deps_from_env().await.map_err(Error::from)?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        ingest_lambda::handler::handle(event.payload, deps)
            .await
            .map_err(Error::from)
    }))
    .await
}
