//! The first matches in session order, reading little of the index.
//!
//! A command's place in session order is its `order` number (session start in seconds, then
//! its seq), one per command document: 50 bits each over a year of sessions. Reading it for
//! every match of a common word touches most of that column: for `"sudo su"` over the 1 GiB
//! benchmark index (105,000 matches), the column's 21 MB, a quarter of the search's time.
//!
//! Each command also has its session's `day` (its start's day number), about 10 bits. The
//! collector reads the day of every match, and the `order` only of a match whose day is not
//! after the day of the `limit`-th match kept so far: `order` grows with `day`, so a match of a
//! later day cannot be among the first. Session order sets sessions that started in the same
//! second apart by their ids, which `order` does not hold: so every match of the second of the
//! `limit`-th is kept, for the caller to sort by session id and cut.
//!
//! A phrase is costlier to match than its words: each document with all the words has their
//! positions read. So a query with a phrase is run [`loosened`], its phrases as plain words,
//! and only a match that may be among the first is checked against the query itself.

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query, Scorer, TermQuery, Weight};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, DocSet, Score, SegmentOrdinal, SegmentReader};

/// The day number of an `order` number (see [`super::order_key`]).
pub(super) fn day_of(order: u64) -> u64 {
    (order >> super::schema::SEQ_BITS) / 86_400
}

/// The last `order` number of the second of `order`.
fn second_end(order: u64) -> u64 {
    order | ((1 << super::schema::SEQ_BITS) - 1)
}

/// A query that matches every document `query` matches (and maybe more), with each phrase
/// that must match replaced by its words; `None` if `query` has no such phrase. A phrase under
/// a `NOT` is kept whole: its words alone would exclude more.
pub(super) fn loosened(query: &dyn Query) -> Option<Box<dyn Query>> {
    if let Some(p) = query.downcast_ref::<PhraseQuery>() {
        let words = p
            .phrase_terms()
            .into_iter()
            .map(|t| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(t, IndexRecordOption::Basic));
                (Occur::Must, q)
            })
            .collect();
        return Some(Box::new(BooleanQuery::new(words)));
    }
    let b = query.downcast_ref::<BooleanQuery>()?;
    let mut changed = false;
    let clauses = b
        .clauses()
        .iter()
        .map(|(occur, q)| {
            let loose = (*occur != Occur::MustNot)
                .then(|| loosened(q.as_ref()))
                .flatten();
            changed |= loose.is_some();
            (*occur, loose.unwrap_or_else(|| q.box_clone()))
        })
        .collect();
    changed.then(|| {
        let q: Box<dyn Query> = Box::new(BooleanQuery::with_minimum_required_clauses(
            clauses,
            b.get_minimum_number_should_match(),
        ));
        q
    })
}

/// The `limit` matches of smallest `order`, and every other match of the second of the last of
/// them, in `order` order. Reads the fast fields `order` and `day`.
pub(super) struct Earliest {
    /// At least 1.
    limit: usize,
    /// The query itself, when the collector is given the matches of a looser one: a match is
    /// kept only if this matches it too.
    exact: Option<Box<dyn Weight>>,
}

impl Earliest {
    /// The first `limit` matches (at least one), kept only where `exact` matches too, if given.
    pub(super) fn new(limit: usize, exact: Option<Box<dyn Weight>>) -> Earliest {
        Earliest {
            limit: limit.max(1),
            exact,
        }
    }
}

pub(super) struct SegmentEarliest {
    segment: SegmentOrdinal,
    limit: usize,
    day: Column<u64>,
    order: Column<u64>,
    /// The matches of [`Earliest::exact`] in this segment, visited in step with the collected
    /// documents.
    exact: Option<Box<dyn Scorer>>,
    /// Matches that may be among the first: `(order, doc)`.
    kept: Vec<(u64, DocId)>,
    /// No match after this `order` can be among the first (nor after its day).
    cutoff: u64,
    cutoff_day: u64,
    /// `kept` is cut down to the first `limit` (and the rest of their last second) when it
    /// reaches this length.
    room: usize,
}

/// Keeps the `limit` entries of smallest `order` and the others of the second of the last of
/// them; returns the last `order` of that second, if there were more than `limit`.
fn cut<D: Ord + Copy>(kept: &mut Vec<(u64, D)>, limit: usize) -> Option<u64> {
    if kept.len() <= limit {
        return None;
    }
    let (_, &mut (last, _), _) = kept.select_nth_unstable(limit - 1);
    let end = second_end(last);
    kept.retain(|&(o, _)| o <= end);
    Some(end)
}

impl SegmentEarliest {
    fn cut(&mut self) {
        if let Some(last) = cut(&mut self.kept, self.limit) {
            self.cutoff = last;
            self.cutoff_day = day_of(last);
        }
        // Many matches tied at the cutoff: cut less often.
        self.room = self.room.max(2 * self.kept.len());
    }
}

impl Collector for Earliest {
    type Fruit = Vec<(u64, DocAddress)>;
    type Child = SegmentEarliest;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentEarliest> {
        // A segment of trails and inventory alone has neither column.
        let column = |name: &str| -> tantivy::Result<Column<u64>> {
            Ok(reader
                .fast_fields()
                .column_opt(name)?
                .unwrap_or_else(|| Column::build_empty_column(reader.max_doc())))
        };
        let limit = self.limit;
        Ok(SegmentEarliest {
            segment,
            limit,
            day: column("day")?,
            order: column("order")?,
            exact: match &self.exact {
                Some(w) => Some(w.scorer(reader, 1.0)?),
                None => None,
            },
            kept: Vec::new(),
            cutoff: u64::MAX,
            cutoff_day: u64::MAX,
            room: 2 * limit + 64,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(u64, DocAddress)>>) -> tantivy::Result<Self::Fruit> {
        let mut all: Vec<(u64, DocAddress)> = fruits.into_iter().flatten().collect();
        cut(&mut all, self.limit);
        all.sort_unstable();
        Ok(all)
    }
}

impl SegmentCollector for SegmentEarliest {
    type Fruit = Vec<(u64, DocAddress)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        // A command document has both fields; others never match a command filter.
        let Some(day) = self.day.first(doc) else {
            return;
        };
        if day > self.cutoff_day {
            return;
        }
        let Some(order) = self.order.first(doc) else {
            return;
        };
        if order > self.cutoff {
            return;
        }
        if let Some(exact) = &mut self.exact {
            // Documents come in increasing order, so the scorer only moves forward.
            if exact.doc() < doc {
                exact.seek(doc);
            }
            if exact.doc() != doc {
                return;
            }
        }
        self.kept.push((order, doc));
        if self.kept.len() >= self.room {
            self.cut();
        }
    }

    fn harvest(mut self) -> Self::Fruit {
        self.cut();
        let segment = self.segment;
        self.kept
            .into_iter()
            .map(|(o, doc_id)| {
                (
                    o,
                    DocAddress {
                        segment_ord: segment,
                        doc_id,
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_the_first_and_the_rest_of_the_last_ones_second() {
        let at = |secs: i64, seq: u32| super::super::schema::order_key(Some(secs), seq);
        let end = |secs: i64| second_end(at(secs, 0));
        // (orders, limit, orders kept, the cut's end)
        type Case<'a> = (&'a [u64], usize, &'a [u64], Option<u64>);
        let cases: &[Case] = &[
            (
                &[at(5, 1), at(1, 1), at(4, 1), at(2, 1), at(3, 1)],
                2,
                &[at(1, 1), at(2, 1)],
                Some(end(2)),
            ),
            // Sessions of the same second: a later seq of one may come before the other's first.
            (
                &[at(1, 2), at(1, 1), at(1, 3), at(2, 1), at(1, 1)],
                2,
                &[at(1, 1), at(1, 1), at(1, 2), at(1, 3)],
                Some(end(1)),
            ),
            (&[at(3, 1), at(1, 1)], 2, &[at(3, 1), at(1, 1)], None),
            (
                &[at(7, 1), at(7, 1), at(7, 1)],
                1,
                &[at(7, 1), at(7, 1), at(7, 1)],
                Some(end(7)),
            ),
        ];
        for (orders, limit, want, last) in cases {
            let mut kept: Vec<(u64, DocId)> = orders.iter().map(|&o| (o, 0)).collect();
            assert_eq!(cut(&mut kept, *limit), *last, "{orders:?} limit {limit}");
            let mut got: Vec<u64> = kept.iter().map(|&(o, _)| o).collect();
            let mut want = want.to_vec();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{orders:?} limit {limit}");
        }
    }

    /// The phrases of a query, and whether each must match (`false` under a NOT).
    fn phrases(q: &dyn Query, must: bool, out: &mut Vec<(usize, bool)>) {
        if let Some(p) = q.downcast_ref::<PhraseQuery>() {
            out.push((p.phrase_terms().len(), must));
        } else if let Some(b) = q.downcast_ref::<BooleanQuery>() {
            for (occur, q) in b.clauses() {
                phrases(q.as_ref(), must == (*occur != Occur::MustNot), out);
            }
        }
    }

    #[test]
    fn loosened_drops_the_phrases_that_must_match() {
        let mut schema = tantivy::schema::Schema::builder();
        let text = schema.add_text_field("text", tantivy::schema::TEXT);
        let index = tantivy::Index::create_in_ram(schema.build());
        let mut parser = tantivy::query::QueryParser::for_index(&index, vec![text]);
        parser.set_conjunction_by_default();
        // (query, the phrases of the loosened query as (terms, must match); None: nothing to
        // loosen)
        type Case<'a> = (&'a str, Option<&'a [(usize, bool)]>);
        let cases: &[Case] = &[
            ("sudo", None),
            ("sudo su", None),
            ("\"sudo su\"", Some(&[])),
            ("\"sudo su -\" vim", Some(&[])),
            ("NOT \"sudo su\" sudo", None),
            ("\"cat /etc\" NOT \"sudo su\"", Some(&[(2, false)])),
            ("(\"a b\" OR c) AND d", Some(&[])),
        ];
        for (text, want) in cases {
            let q = parser.parse_query(text).expect("a query");
            let loose = loosened(q.as_ref());
            assert_eq!(loose.is_some(), want.is_some(), "{text}");
            if let (Some(loose), Some(want)) = (loose, want) {
                let mut got = Vec::new();
                phrases(loose.as_ref(), true, &mut got);
                assert_eq!(got, *want, "{text}");
            }
        }
    }

    #[test]
    fn day_of_is_the_start_day() {
        let order = super::super::schema::order_key(Some(86_400 * 20_000 + 86_399), 7);
        assert_eq!(day_of(order), 20_000);
        assert_eq!(day_of(super::super::schema::order_key(None, 3)), 0);
    }
}
