//! Instance names from the EC2 API: the `Name` tag of each instance, asked in the instance's
//! region with `DescribeTags` (an instance that no longer exists, or has no Name, is simply not
//! in the answer; no call fails for it).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Asks EC2 for instances' `Name` tags, one client per region, made on first use.
pub struct Ec2Names {
    config: aws_config::SdkConfig,
    clients: Mutex<BTreeMap<String, aws_sdk_ec2::Client>>,
}

/// Ids per `DescribeTags` call (the API takes up to 200 filter values).
const IDS_PER_CALL: usize = 100;

impl Ec2Names {
    /// From the standard environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, profiles).
    pub async fn from_env() -> Self {
        Ec2Names::new(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    }

    /// With an SDK configuration.
    pub fn new(config: aws_config::SdkConfig) -> Self {
        Ec2Names {
            config,
            clients: Mutex::new(BTreeMap::new()),
        }
    }

    fn client(&self, region: Option<&str>) -> aws_sdk_ec2::Client {
        let key = region.unwrap_or("").to_string();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(key)
            .or_insert_with(|| {
                let mut b = aws_sdk_ec2::config::Builder::from(&self.config);
                if let Some(r) = region {
                    b = b.region(aws_sdk_ec2::config::Region::new(r.to_string()));
                }
                aws_sdk_ec2::Client::from_conf(b.build())
            })
            .clone()
    }

    /// The `Name` tag of each of `ids` that has one, in `region` (the SDK's own region when
    /// `None`). An error says why the answer could not be had (permission, throttling after the
    /// SDK's retries, no network).
    pub async fn names(
        &self,
        region: Option<&str>,
        ids: &[String],
    ) -> Result<BTreeMap<String, String>, String> {
        let client = self.client(region);
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let filters = [
                aws_sdk_ec2::types::Filter::builder()
                    .name("resource-id")
                    .set_values(Some(chunk.to_vec()))
                    .build(),
                aws_sdk_ec2::types::Filter::builder()
                    .name("key")
                    .values("Name")
                    .build(),
            ];
            let mut pages = client
                .describe_tags()
                .set_filters(Some(filters.to_vec()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    format!(
                        "ec2:DescribeTags in {}: {}",
                        region.unwrap_or("the default region"),
                        crate::one_line(&e)
                    )
                })?;
                for t in page.tags() {
                    if let (Some(id), Some("Name"), Some(v)) = (t.resource_id(), t.key(), t.value())
                    {
                        out.insert(id.to_string(), v.to_string());
                    }
                }
            }
        }
        Ok(out)
    }
}
