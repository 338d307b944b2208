//! Collectors over the index's fast fields.

use std::collections::BTreeMap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// Counts matching documents by the value of a string fast field (`who`, `sid`), per segment by
/// term ordinal.
pub(super) struct CountBy(pub(super) &'static str);

pub(super) struct SegmentCountBy {
    column: Option<tantivy::columnar::StrColumn>,
    counts: std::collections::HashMap<u64, usize>,
}

impl Collector for CountBy {
    type Fruit = BTreeMap<String, usize>;
    type Child = SegmentCountBy;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentCountBy> {
        Ok(SegmentCountBy {
            column: reader.fast_fields().str(self.0)?,
            counts: std::collections::HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<std::result::Result<BTreeMap<String, usize>, String>>,
    ) -> tantivy::Result<BTreeMap<String, usize>> {
        let mut all = BTreeMap::new();
        for fruit in fruits {
            for (k, n) in fruit.map_err(tantivy::TantivyError::InternalError)? {
                *all.entry(k).or_insert(0) += n;
            }
        }
        Ok(all)
    }
}

impl SegmentCollector for SegmentCountBy {
    /// The counts by key, or why the column's dictionary could not be read.
    type Fruit = std::result::Result<BTreeMap<String, usize>, String>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(c) = &self.column {
            for ord in c.term_ords(doc) {
                *self.counts.entry(ord).or_insert(0) += 1;
            }
        }
    }

    fn harvest(self) -> Self::Fruit {
        let mut out = BTreeMap::new();
        let Some(c) = self.column else {
            return Ok(out);
        };
        // One pass through the dictionary, in ordinal order.
        let mut counts: Vec<(u64, usize)> = self.counts.into_iter().collect();
        counts.sort_unstable();
        let ords: Vec<u64> = counts.iter().map(|&(o, _)| o).collect();
        let mut n = counts.iter().map(|&(_, n)| n);
        c.dictionary()
            .sorted_ords_to_term_cb(&ords, |term| {
                if let Some(n) = n.next() {
                    out.insert(String::from_utf8_lossy(term).into_owned(), n);
                }
            })
            .map_err(|e| format!("reading the who column's dictionary: {e}"))?;
        Ok(out)
    }
}
