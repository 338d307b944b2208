//! The schema: the fields of every document, the keys that say what a document replaces, and
//! the terms a principal, an instance and a session's order are indexed as.

use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, STORED,
};
use tantivy::Term;

/// What a commit records beside its documents: the ledger's head as the commit was made.
#[derive(serde::Serialize, serde::Deserialize)]
struct CommitPayload {
    ledger: crate::ledger::Head,
}

/// The payload recorded with a commit.
pub(super) fn commit_payload(head: &crate::ledger::Head) -> String {
    serde_json::to_string(&CommitPayload {
        ledger: head.clone(),
    })
    .unwrap_or_default()
}

/// The ledger head a commit recorded: `None` for a commit made before heads were recorded.
pub(super) fn committed_head(payload: Option<&str>) -> Option<crate::ledger::Head> {
    serde_json::from_str::<CommitPayload>(payload?)
        .ok()
        .map(|p| p.ledger)
}

#[derive(Clone, Copy)]
pub(super) struct Fields {
    pub(super) kind: Field,
    /// What a document replaces when it is written again (see [`keys`]).
    pub(super) key: Field,
    /// The session of a source or trail document, for counting by session (a fast
    /// field only: a session's documents are found by their keys).
    pub(super) sid: Field,
    pub(super) command: Field,
    pub(super) output: Field,
    pub(super) program: Field,
    /// The instance id of a source, trail or inventory document (commands have `ran_on`).
    pub(super) instance: Field,
    pub(super) run_as: Field,
    /// Who ran a command: principal ARN and name as one term (see [`pair_term`]).
    pub(super) principal: Field,
    /// Where a command ran: instance id and Name as one term (see [`pair_term`]).
    pub(super) ran_on: Field,
    /// Session order of a command: its session's start (seconds) and its seq, as one number.
    pub(super) order: Field,
    /// The day of `order`: a narrow column that tells which matches may be the first (see
    /// [`super::earliest`]).
    pub(super) day: Field,
    /// A command's session and who it belongs to ([`super::WhoKey`] as JSON), for counting by session.
    pub(super) who: Field,
    pub(super) body: Field,
}

/// The keys of documents, one term each; a document written again replaces the documents of
/// its key.
///
/// Keys are short, and start with the session they belong to: every session adds a few keys no
/// other document has, and a term dictionary costs per byte a term does not share with its
/// neighbours.
pub(super) mod keys {
    /// `tag`, a NUL, then `rest` (with room for a source's suffix).
    fn key(tag: &str, rest: &str) -> String {
        let mut k = String::with_capacity(tag.len() + 1 + rest.len() + 17);
        k.push_str(tag);
        k.push('\u{0}');
        k.push_str(rest);
        k
    }

    /// The command, abandoned-line and session documents of a session.
    pub(in crate::store) fn commands(sid: &str) -> String {
        key("c", sid)
    }

    /// The CloudTrail document of a session.
    pub(in crate::store) fn trail(sid: &str) -> String {
        key("t", sid)
    }

    /// The document of a file refused as a transcript of a session.
    pub(in crate::store) fn unreadable(sid: &str, source: &str) -> String {
        let mut k = key("u", sid);
        k.push('\u{0}');
        k.push_str(&crate::model::sha256_hex(source.as_bytes())[..16]);
        k
    }

    /// The document of one source of a session: the session, then the first 64 bits of the
    /// SHA-256 of the source's name, and of its version when it has one (two versions of one
    /// S3 object are two sources; two sources of one session would need 2^32 sources to share
    /// these bits by chance).
    pub(in crate::store) fn source(sid: &str, source: &str, version: Option<&str>) -> String {
        let mut k = sources_from(sid);
        let named = match version {
            Some(v) => crate::model::sha256_hex(format!("{source}\u{0}{v}").as_bytes()),
            None => crate::model::sha256_hex(source.as_bytes()),
        };
        k.push_str(&named[..16]);
        k
    }

    /// Every key of a source of `sid` is at or after this, and before [`sources_until`].
    pub(in crate::store) fn sources_from(sid: &str) -> String {
        let mut k = key("s", sid);
        k.push('\u{0}');
        k
    }

    /// See [`sources_from`].
    pub(in crate::store) fn sources_until(sid: &str) -> String {
        let mut k = key("s", sid);
        k.push('\u{1}');
        k
    }

    /// The inventory document of an instance.
    pub(in crate::store) fn instance(id: &str) -> String {
        key("i", id)
    }

    /// The document of a CloudTrail digest file (at a version).
    pub(in crate::store) fn digest(name: &str, version: Option<&str>) -> String {
        let mut k = key("d", name);
        if let Some(v) = version {
            k.push('\u{0}');
            k.push_str(v);
        }
        k
    }
}

/// An exact-match field. No field norms: results are ordered by session, never scored.
fn keyword() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic),
    )
}

/// A full-text field, with positions for phrase queries.
fn text() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    )
}

pub(super) fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        kind: b.add_text_field("kind", keyword() | STORED),
        key: b.add_text_field("key", keyword()),
        sid: b.add_text_field("sid", TextOptions::default().set_fast("raw")),
        command: b.add_text_field("command", text()),
        output: b.add_text_field("output", text()),
        program: b.add_text_field("program", keyword()),
        instance: b.add_text_field("instance", keyword()),
        run_as: b.add_text_field("run_as", keyword()),
        principal: b.add_text_field("principal", keyword()),
        ran_on: b.add_text_field("ran_on", keyword()),
        order: b.add_u64_field("order", FAST),
        day: b.add_u64_field("day", FAST),
        who: b.add_text_field("who", TextOptions::default().set_fast("raw")),
        body: b.add_text_field("body", STORED),
    };
    (b.build(), f)
}

/// Stored documents are mostly JSON text that repeats itself across a session: zstd over
/// 128 KiB blocks keeps them at a fraction of lz4's size, and a search decompresses only the
/// blocks of the few documents it returns. Level 1: on these blocks it compresses as small as
/// the default level 3 (40.3 against 41.0 MB of doc store for the 256 MiB benchmark corpus), in
/// less time.
pub(super) fn index_settings() -> tantivy::IndexSettings {
    tantivy::IndexSettings {
        docstore_compression: tantivy::store::Compressor::Zstd(tantivy::store::ZstdCompressor {
            compression_level: Some(1),
        }),
        docstore_blocksize: 128 * 1024,
        ..tantivy::IndexSettings::default()
    }
}

/// The term of `text` in `field`.
pub(super) fn term(field: Field, text: &str) -> Term {
    Term::from_field_text(field, text)
}

/// Between the two parts of a [`pair_term`].
pub(super) const PAIR_SEP: char = '\u{1}';

/// A part of a [`pair_term`], as it is compared: lowercase, without the separator.
pub(super) fn pair_part(s: &str) -> String {
    s.to_lowercase().replace(PAIR_SEP, "\u{fffd}")
}

/// Two names of one thing (principal ARN and name, instance id and Name) as one term: each
/// lowercase, empty when unknown, joined by [`PAIR_SEP`]; `None` when both are unknown.
pub(super) fn pair_term(a: &Option<String>, b: &Option<String>) -> Option<String> {
    if a.is_none() && b.is_none() {
        return None;
    }
    let part = |p: &Option<String>| p.as_deref().map(pair_part).unwrap_or_default();
    Some(format!("{}{PAIR_SEP}{}", part(a), part(b)))
}

/// Bits of an [`order_key`] under its seconds.
pub(super) const SEQ_BITS: u32 = 24;

/// The number that sorts commands in session order: start seconds, then seq. Sessions that
/// started in the same second share these numbers (their ids set them apart).
pub(super) fn order_key(start: Option<i64>, seq: u32) -> u64 {
    let secs = start.unwrap_or(0).max(0) as u64;
    (secs << SEQ_BITS) | u64::from(seq.min((1 << SEQ_BITS) - 1))
}
