//! Instance names at the time of a session.
//!
//! A session's records name its instance by the `Name` tag it had when the session started.
//! Three kinds of fact say what a name is:
//! - **tag history**: CloudTrail's `CreateTags`, `DeleteTags` and `RunInstances` (tag
//!   specifications) for the instance, each a change at a known time;
//! - **observations**: an `aws ec2 describe-instances` file (inventory), or the EC2 API asked at
//!   ingest time (`ec2`): the name the instance had when it was looked at, not when the session
//!   ran.
//!
//! The name of a session at time `t` is the last change of the history at or before `t`. When the
//! history has no change before `t` but some after it, the name then is not known (a later rename
//! must not rewrite an old session): no name, origin `unknown`. Without any history, the
//! observation stands (the trail shows no rename), with its origin. An instance that no longer
//! exists keeps the name last observed: an observation is only ever replaced by another name.

use crate::formats::Instance;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Where the name a record carries comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum NameOrigin {
    /// CloudTrail's tag history: the name set at or before the session's start.
    Cloudtrail,
    /// An `aws ec2 describe-instances` file.
    #[default]
    Inventory,
    /// The EC2 API, asked at ingest time.
    Ec2,
    /// The instance was renamed after the session and CloudTrail does not say what it was called
    /// before: no name is given.
    Unknown,
}

impl NameOrigin {
    /// The name as JSON says it.
    pub fn as_str(self) -> &'static str {
        match self {
            NameOrigin::Cloudtrail => "cloudtrail",
            NameOrigin::Inventory => "inventory",
            NameOrigin::Ec2 => "ec2",
            NameOrigin::Unknown => "unknown",
        }
    }
}

/// A change of an instance's `Name` tag recorded by CloudTrail.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TagChange {
    /// `eventTime` (RFC 3339).
    pub time: String,
    /// The instance.
    pub instance_id: String,
    /// The new name; `None` when the tag was deleted.
    pub name: Option<String>,
    /// `CreateTags`, `DeleteTags` or `RunInstances`.
    pub event_name: String,
    /// `eventID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// Everything known of one instance's name. Stored as JSON: `instance_id` and `name` (the name
/// observed) are the shape of [`Instance`], so an older inventory document still reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceNames {
    /// `i-…` or `mi-…`.
    pub instance_id: String,
    /// The name observed (inventory or EC2 API).
    #[serde(default)]
    pub name: Option<String>,
    /// Where the observed name comes from.
    #[serde(default)]
    pub origin: NameOrigin,
    /// The region the instance was looked up in, when the EC2 API was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// When the EC2 API was last asked (RFC 3339), whatever it answered: it is asked once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub looked_up: Option<String>,
    /// The changes CloudTrail recorded, in time order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<TagChange>,
}

impl InstanceNames {
    /// Should the EC2 API be asked for its name in `region` (the SDK's own when `None`)? Only
    /// when nothing observed names it and it was never asked there: a session whose CloudTrail
    /// record comes later, with its region, is asked about again in that region.
    pub fn wants_lookup(&self, region: Option<&str>) -> bool {
        self.name.is_none() && (self.looked_up.is_none() || self.region.as_deref() != region)
    }

    /// Take what the EC2 API answered in `region` at time `at`: the name, if it found one, and
    /// that it was asked there (so that it is not asked there again).
    pub fn looked_up(&mut self, name: Option<&str>, region: Option<&str>, at: String) {
        self.observe(name, NameOrigin::Ec2);
        self.region = region.map(String::from);
        self.looked_up = Some(at);
    }

    /// Nothing known yet of `instance_id`.
    pub fn new(instance_id: &str) -> Self {
        InstanceNames {
            instance_id: instance_id.to_string(),
            name: None,
            origin: NameOrigin::Inventory,
            region: None,
            looked_up: None,
            history: Vec::new(),
        }
    }

    /// Take an observed name; true when it changed what is known. A missing name (the instance
    /// is gone, or has no Name tag any more) does not erase the name last known.
    pub fn observe(&mut self, name: Option<&str>, origin: NameOrigin) -> bool {
        let Some(name) = name else { return false };
        if self.name.as_deref() == Some(name) && self.origin == origin {
            return false;
        }
        self.name = Some(name.to_string());
        self.origin = origin;
        true
    }

    /// Take a change of the tag history; true when it is new.
    pub fn change(&mut self, c: TagChange) -> bool {
        if self.history.contains(&c) {
            return false;
        }
        self.history.push(c);
        self.history
            .sort_by(|a, b| (time_key(&a.time), a).cmp(&(time_key(&b.time), b)));
        true
    }

    /// The name at time `at` (RFC 3339; `None`: the time is not known) and where it comes from.
    pub fn at(&self, at: Option<&str>) -> (Option<String>, Option<NameOrigin>) {
        if self.history.is_empty() {
            return match &self.name {
                Some(n) => (Some(n.clone()), Some(self.origin)),
                None => (None, None),
            };
        }
        let Some(t) = at.and_then(time_key) else {
            // When the session ran is not known: the history cannot say which name it saw.
            return (None, Some(NameOrigin::Unknown));
        };
        match self
            .history
            .iter()
            .rev()
            .find(|c| time_key(&c.time).is_some_and(|ct| ct <= t))
        {
            Some(c) => (c.name.clone(), Some(NameOrigin::Cloudtrail)),
            None => (None, Some(NameOrigin::Unknown)),
        }
    }
}

/// Seconds since the epoch of an RFC 3339 time.
fn time_key(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}

/// What is known of the names of many instances.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    by_id: BTreeMap<String, InstanceNames>,
}

impl Names {
    /// Names from a list of what is known per instance.
    pub fn from_list(list: impl IntoIterator<Item = InstanceNames>) -> Self {
        Names {
            by_id: list
                .into_iter()
                .map(|i| (i.instance_id.clone(), i))
                .collect(),
        }
    }

    /// Names observed in an inventory.
    pub fn of_inventory(instances: &[Instance]) -> Self {
        let mut n = Names::default();
        for i in instances {
            n.entry(&i.instance_id)
                .observe(i.name.as_deref(), NameOrigin::Inventory);
        }
        n
    }

    /// What is known of one instance.
    pub fn get(&self, instance_id: &str) -> Option<&InstanceNames> {
        self.by_id.get(instance_id)
    }

    /// What is known of one instance, made empty if nothing is.
    pub fn entry(&mut self, instance_id: &str) -> &mut InstanceNames {
        self.by_id
            .entry(instance_id.to_string())
            .or_insert_with(|| InstanceNames::new(instance_id))
    }

    /// The name of `instance_id` at time `at`, and where it comes from.
    pub fn at(&self, instance_id: &str, at: Option<&str>) -> (Option<String>, Option<NameOrigin>) {
        self.by_id
            .get(instance_id)
            .map_or((None, None), |i| i.at(at))
    }

    /// Every instance known.
    pub fn iter(&self) -> impl Iterator<Item = &InstanceNames> {
        self.by_id.values()
    }

    /// Take observed names and tag changes; returns the instances whose facts changed.
    pub fn apply(&mut self, observed: &[InstanceNames], tags: &[TagChange]) -> BTreeSet<String> {
        let mut changed = BTreeSet::new();
        for o in observed {
            let e = self.entry(&o.instance_id);
            let mut new = e.observe(o.name.as_deref(), o.origin);
            if o.looked_up.is_some() && (e.looked_up.is_none() || e.region != o.region) {
                e.looked_up.clone_from(&o.looked_up);
                new = true;
            }
            if new {
                e.region.clone_from(&o.region);
                changed.insert(o.instance_id.clone());
            }
        }
        for c in tags {
            if self.entry(&c.instance_id).change(c.clone()) {
                changed.insert(c.instance_id.clone());
            }
        }
        changed
    }

    /// Would [`Names::apply`] change anything?
    pub fn would_change(&self, observed: &[InstanceNames], tags: &[TagChange]) -> bool {
        (!observed.is_empty() || !tags.is_empty()) && !self.clone().apply(observed, tags).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(time: &str, name: Option<&str>) -> TagChange {
        TagChange {
            time: time.into(),
            instance_id: "i-1".into(),
            name: name.map(String::from),
            event_name: if name.is_some() {
                "CreateTags"
            } else {
                "DeleteTags"
            }
            .into(),
            event_id: None,
        }
    }

    #[test]
    fn names_at_the_time_of_the_session() {
        let mut i = InstanceNames::new("i-1");
        assert_eq!(i.at(Some("2026-01-01T00:00:00Z")), (None, None));
        assert!(i.observe(Some("web-new"), NameOrigin::Ec2));
        // Without history, the observation stands, and says where it comes from.
        assert_eq!(
            i.at(Some("2026-01-01T00:00:00Z")),
            (Some("web-new".into()), Some(NameOrigin::Ec2))
        );
        assert!(i.wants_lookup(None) || i.name.is_some());
        // Gone from EC2: the name last known is kept.
        assert!(!i.observe(None, NameOrigin::Ec2));
        assert_eq!(i.name.as_deref(), Some("web-new"));
        // Named EC2-A in March, renamed in June, the tag deleted in September.
        assert!(i.change(change("2026-06-01T00:00:00Z", Some("web-new"))));
        assert!(i.change(change("2026-03-01T00:00:00Z", Some("EC2-A"))));
        assert!(!i.change(change("2026-03-01T00:00:00Z", Some("EC2-A"))));
        assert!(i.change(change("2026-09-01T00:00:00+00:00", None)));
        let at = |t| i.at(Some(t));
        let ct = Some(NameOrigin::Cloudtrail);
        assert_eq!(at("2026-04-01T00:00:00Z"), (Some("EC2-A".into()), ct));
        assert_eq!(at("2026-06-01T00:00:00Z"), (Some("web-new".into()), ct));
        assert_eq!(at("2026-10-01T00:00:00Z"), (None, ct));
        // Before the first change the name is not known: the later rename does not rewrite it.
        assert_eq!(
            at("2026-02-01T00:00:00Z"),
            (None, Some(NameOrigin::Unknown))
        );
        assert_eq!(i.at(None), (None, Some(NameOrigin::Unknown)));
    }

    #[test]
    fn an_instance_is_asked_about_once_per_region() {
        let mut i = InstanceNames::new("i-1");
        assert!(i.wants_lookup(None));
        // Asked in the default region (no CloudTrail yet), not found there.
        i.looked_up = Some("2026-01-01T00:00:00Z".into());
        assert!(!i.wants_lookup(None));
        assert!(i.wants_lookup(Some("ap-northeast-2")));
        i.region = Some("ap-northeast-2".into());
        assert!(!i.wants_lookup(Some("ap-northeast-2")));
        i.observe(Some("EC2-A"), NameOrigin::Ec2);
        assert!(!i.wants_lookup(Some("eu-west-1")));
    }

    #[test]
    fn an_older_inventory_document_still_reads() {
        let i: InstanceNames =
            serde_json::from_str(r#"{"instance_id":"i-1","name":"EC2-A"}"#).unwrap();
        assert_eq!(i.origin, NameOrigin::Inventory);
        assert_eq!(i.name.as_deref(), Some("EC2-A"));
    }
}
