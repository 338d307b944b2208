//! An instance renamed by an inventory names its commands by the new name, whether the
//! inventory comes before or after the sessions, in the same first ingest or a later one.

use ssm_audit_tests::{corpus, ingest, search_json};
use std::collections::BTreeMap;
use std::path::Path;

const INSTANCE: &str = "i-0d44dd44dd44dd444";

/// The instance names of the instance's commands, counted.
fn names(index: &Path) -> BTreeMap<String, usize> {
    let (code, out, err) = search_json(index, &[]);
    assert_eq!(code, 0, "search failed: {err}");
    let mut seen = BTreeMap::new();
    for line in out.lines() {
        let r: serde_json::Value = serde_json::from_str(line).expect("a JSON record");
        if r["instance_id"] == INSTANCE {
            let name = r["instance_name"].as_str().unwrap_or("(none)").to_string();
            *seen.entry(name).or_default() += 1;
        }
    }
    seen
}

#[test]
fn a_renamed_instance_names_its_commands_whatever_the_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let corpus = corpus();
    let inventory = corpus.join("describe-instances.json");
    let text = std::fs::read_to_string(&inventory).expect("the corpus inventory");
    assert!(
        text.contains("\"EC2-A\""),
        "the corpus names {INSTANCE} EC2-A"
    );
    let renamed = tmp.path().join("renamed.json");
    std::fs::write(&renamed, text.replacen("\"EC2-A\"", "\"EC2-A-renamed\"", 1)).expect("write");
    let (sessions, trails) = (corpus.join("sessions"), corpus.join("cloudtrail"));

    let before = tmp.path().join("before");
    assert_eq!(ingest(&before, &[&trails, &inventory, &sessions]).0, 0);
    let old = names(&before);
    assert!(old.get("EC2-A").is_some_and(|&n| n > 0), "{old:?}");
    assert_eq!(old.len(), 1, "{old:?}");
    let commands = old["EC2-A"];
    let want = BTreeMap::from([("EC2-A-renamed".to_string(), commands)]);

    // In one first ingest: the new name read before the sessions, or after them.
    for (label, order) in [
        (
            "renamed before the sessions",
            [&trails, &renamed, &sessions],
        ),
        ("renamed after the sessions", [&trails, &sessions, &renamed]),
        ("renamed after all", [&sessions, &trails, &renamed]),
    ] {
        let index = tmp.path().join(label.replace(' ', "-"));
        assert_eq!(ingest(&index, &order.map(|p| p.as_path())).0, 0, "{label}");
        assert_eq!(names(&index), want, "{label}");
    }

    // In a later ingest of the inventory alone.
    assert_eq!(ingest(&before, &[&renamed]).0, 0);
    assert_eq!(names(&before), want, "renamed by a later ingest");
}
