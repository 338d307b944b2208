//! A terminal screen model: rows of cells, a cursor, autowrap at a width that may be unknown.
//!
//! Only what shells and their line editors do to the primary screen is modelled: printing with
//! autowrap, CR, LF, BS, tabs, cursor moves, erase in line/display, insert/delete characters.
//! Rows scroll off the top of a bounded window; the caller drains them with [`Screen::take_evicted`].

use std::collections::VecDeque;

/// A cell that was never written, or was erased.
pub const EMPTY: char = '\0';

/// The second cell of a double-width character (Korean, CJK, most emoji): it holds no text of
/// its own. A C1 control, which is never printed (see `Term::print`).
pub const WIDE_TAIL: char = '\u{9f}';

/// Widest a row may grow while the terminal width is unknown.
const MAX_UNKNOWN_WIDTH: usize = 16 * 1024;

/// Rows kept for cursor-up moves and redraws before older ones are evicted.
const WINDOW_ROWS: usize = 512;

/// Rows a screen has when a program addresses it absolutely (`CSI H`).
const SCREEN_ROWS: usize = 48;

/// Most cells kept of the start of a logical line whose first rows scrolled out of the window
/// while it went on (a line longer than the window holds): what a command's rules and `who`
/// need is at its start.
pub const HEAD_CELLS: usize = 64 * 1024;

/// The start of a logical line whose first rows scrolled out of the window.
#[derive(Debug, Default)]
struct LostHead {
    /// The absolute row after the last one lost: the line goes on there.
    next: u64,
    /// Its first cells, [`HEAD_CELLS`] at most.
    cells: Vec<char>,
    /// How many cells were lost in all.
    total: usize,
    /// The source bytes that wrote them.
    bytes: Option<(u64, u64)>,
}

/// One physical row.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// The cells; [`EMPTY`] where nothing is written.
    pub cells: Vec<char>,
    /// The row continues on the next one (autowrap happened at its end).
    pub wrapped: bool,
    /// Byte offsets (in the source) of the first and last byte that wrote into the row.
    pub bytes: Option<(u64, u64)>,
}

/// Append cells to `out`, empty ones as spaces: runs of ASCII are narrowed a block at a time
/// instead of encoded one character at a time.
fn push_cells(out: &mut String, cells: &[char]) {
    const BLOCK: usize = 128;
    out.reserve(cells.len());
    let mut buf = [0u8; BLOCK];
    for block in cells.chunks(BLOCK) {
        // Branch-free passes over the block, which the compiler turns into vector code.
        if block.iter().fold(0u32, |a, &c| a | c as u32) < 0x80 {
            let buf = &mut buf[..block.len()];
            for (b, &c) in buf.iter_mut().zip(block) {
                let v = c as u8;
                *b = if v == 0 { b' ' } else { v };
            }
            // ASCII bytes are always UTF-8.
            out.push_str(std::str::from_utf8(buf).unwrap_or_default());
        } else {
            out.extend(block.iter().filter(|&&c| c != WIDE_TAIL).map(|&c| {
                if c == EMPTY {
                    ' '
                } else {
                    c
                }
            }));
        }
    }
}

/// Append the text of cells to `out`: empty cells inside become spaces, trailing ones are
/// dropped.
pub fn push_cells_text(out: &mut String, cells: &[char]) {
    let end = cells.iter().rposition(|&c| c != EMPTY).map_or(0, |i| i + 1);
    push_cells(out, &cells[..end]);
}

/// The text of cells (see [`push_cells_text`]).
pub fn cells_text(cells: &[char]) -> String {
    let mut out = String::new();
    push_cells_text(&mut out, cells);
    out
}

/// The first [`EMPTY`] cell: blocks are tested without a branch per cell, then searched.
fn first_empty(cells: &[char]) -> Option<usize> {
    const BLOCK: usize = 32;
    let mut at = 0;
    for block in cells.chunks(BLOCK) {
        if block.iter().fold(false, |a, &c| a | (c == EMPTY)) {
            return block.iter().position(|&c| c == EMPTY).map(|i| at + i);
        }
        at += block.len();
    }
    None
}

impl Row {
    fn touch(&mut self, start: u64, end: u64) {
        self.bytes = Some(match self.bytes {
            None => (start, end),
            Some((a, b)) => (a.min(start), b.max(end)),
        });
    }

    /// The row's text: empty cells inside become spaces, trailing ones are dropped.
    pub fn text(&self) -> String {
        cells_text(&self.cells)
    }

    /// Append the row's text (as [`Row::text`]) to `out`.
    pub fn push_text(&self, out: &mut String) {
        push_cells_text(out, &self.cells);
    }

    fn set(&mut self, col: usize, ch: char) {
        if self.cells.len() <= col {
            self.cells.resize(col + 1, EMPTY);
        }
        self.cells[col] = ch;
    }
}

/// The screen: a window of rows, a cursor, a width.
#[derive(Debug)]
pub struct Screen {
    rows: VecDeque<Row>,
    /// Absolute index of `rows[0]`.
    top: u64,
    row: u64,
    col: usize,
    pending_wrap: bool,
    width: Option<usize>,
    saved: Option<(u64, usize)>,
    evicted: Vec<(u64, Row)>,
    /// Cell buffers of rows handed back by [`Screen::recycle`], for new rows.
    spare: Vec<Vec<char>>,
    /// The start of the logical line at the top of the window, when its first rows were lost.
    lost: Option<LostHead>,
}

impl Default for Screen {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Screen {
    /// A screen of `width` columns, or of unknown width.
    pub fn new(width: Option<usize>) -> Self {
        let mut rows = VecDeque::new();
        rows.push_back(Row::default());
        Screen {
            rows,
            top: 0,
            row: 0,
            col: 0,
            pending_wrap: false,
            width,
            saved: None,
            evicted: Vec::new(),
            spare: Vec::new(),
            lost: None,
        }
    }

    /// The width, when known.
    pub fn width(&self) -> Option<usize> {
        self.width
    }

    /// Learn the width (from a wrap the line editor made visible).
    pub fn set_width(&mut self, width: usize) {
        self.width = Some(width.max(2));
    }

    fn limit(&self) -> usize {
        self.width.unwrap_or(MAX_UNKNOWN_WIDTH)
    }

    /// Absolute row of the cursor.
    pub fn cursor_row(&self) -> u64 {
        self.row
    }

    /// Column of the cursor.
    pub fn cursor_col(&self) -> usize {
        self.col
    }

    /// Absolute index of the oldest row still held.
    pub fn first_row(&self) -> u64 {
        self.top
    }

    /// Absolute index of the newest row.
    pub fn last_row(&self) -> u64 {
        self.top + self.rows.len() as u64 - 1
    }

    /// The row at an absolute index, if still held.
    pub fn row(&self, abs: u64) -> Option<&Row> {
        abs.checked_sub(self.top)
            .and_then(|i| self.rows.get(usize::try_from(i).ok()?))
    }

    fn row_mut(&mut self, abs: u64) -> &mut Row {
        let i = (abs - self.top) as usize;
        &mut self.rows[i]
    }

    fn cur(&mut self) -> &mut Row {
        let r = self.row;
        self.row_mut(r)
    }

    /// Have rows scrolled out of the window since [`Screen::take_evicted`]?
    pub fn has_evicted(&self) -> bool {
        !self.evicted.is_empty()
    }

    /// Rows that scrolled out of the window since the last call, oldest first.
    pub fn take_evicted(&mut self) -> Vec<(u64, Row)> {
        std::mem::take(&mut self.evicted)
    }

    /// Hand back the (emptied) list [`Screen::take_evicted`] returned, to keep its capacity.
    pub fn give_back_evicted(&mut self, list: Vec<(u64, Row)>) {
        if self.evicted.is_empty() {
            self.evicted = list;
        }
    }

    /// Give back the cells of an evicted row once read, so that a new row reuses them.
    pub fn recycle(&mut self, row: Row) {
        if self.spare.len() < 64 {
            let mut cells = row.cells;
            cells.clear();
            self.spare.push(cells);
        }
    }

    fn ensure_row(&mut self, abs: u64) {
        while self.last_row() < abs {
            let cells = self.spare.pop().unwrap_or_default();
            self.rows.push_back(Row {
                cells,
                wrapped: false,
                bytes: None,
            });
        }
        while self.rows.len() > WINDOW_ROWS {
            let row = self.rows.pop_front().unwrap_or_default();
            self.keep_head(&row);
            self.evicted.push((self.top, row));
            self.top += 1;
        }
    }

    /// A row leaves the window: when its logical line goes on below, the line's start is kept
    /// (up to [`HEAD_CELLS`]); when it ends there, nothing of it is.
    fn keep_head(&mut self, row: &Row) {
        if !row.wrapped {
            self.lost = None;
            return;
        }
        if self.lost.as_ref().is_none_or(|h| h.next != self.top) {
            self.lost = Some(LostHead::default());
        }
        if let Some(h) = &mut self.lost {
            let room = HEAD_CELLS.saturating_sub(h.cells.len());
            h.cells
                .extend_from_slice(&row.cells[..row.cells.len().min(room)]);
            h.total += row.cells.len();
            if let Some((a, b)) = row.bytes {
                h.bytes = Some(h.bytes.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
            }
            h.next = self.top + 1;
        }
    }

    /// The lost start of the logical line whose first held row is `first`, if it has one.
    fn head(&self, first: u64) -> Option<&LostHead> {
        self.lost
            .as_ref()
            .filter(|h| first == self.top && h.next == self.top)
    }

    /// When the logical line `first..=last` is longer than what is kept of it (its start
    /// scrolled out past [`HEAD_CELLS`]): how many cells it has in all. Its text is then its
    /// first [`HEAD_CELLS`] cells.
    pub fn truncated(&self, first: u64, last: u64) -> Option<u64> {
        let h = self.head(first).filter(|h| h.total > h.cells.len())?;
        let held: usize = (first..=last)
            .filter_map(|abs| self.row(abs))
            .map(|r| r.cells.len())
            .sum();
        Some((h.total + held) as u64)
    }

    /// A character printed at the last column moved the cursor past it: the next one starts a
    /// new row, and the row it leaves continues there.
    fn wrap_if_pending(&mut self) {
        if self.pending_wrap {
            self.cur().wrapped = true;
            self.pending_wrap = false;
            self.row += 1;
            self.col = 0;
            let r = self.row;
            self.ensure_row(r);
        }
    }

    /// Print one character written by the bytes `start..end` of the source: in two cells
    /// when it is double-width, as a terminal shows it (a line editor moves over it by two).
    pub fn print(&mut self, ch: char, start: u64, end: u64) {
        let wide = !ch.is_ascii() && unicode_width::UnicodeWidthChar::width(ch) == Some(2);
        let limit = self.limit();
        if wide && (self.pending_wrap || self.col + 2 > limit) && limit >= 2 {
            // No room for both halves at the right margin: it goes to the next row, and the
            // cells it left (a line editor's padding, erased) hold no text.
            self.pad_to_margin();
            self.pending_wrap = true;
        }
        self.wrap_if_pending();
        let col = self.col;
        let row = self.cur();
        // Writing over half of a double-width character blanks its other half.
        if row.cells.get(col) == Some(&WIDE_TAIL) && col > 0 {
            row.cells[col - 1] = EMPTY;
        }
        row.set(col, ch);
        let span = if wide && col + 1 < limit {
            row.set(col + 1, WIDE_TAIL);
            2
        } else {
            1
        };
        if row.cells.get(col + span) == Some(&WIDE_TAIL) {
            row.cells[col + span] = EMPTY;
        }
        row.touch(start, end);
        if self.col + span >= limit {
            self.col += span - 1;
            self.pending_wrap = true;
        } else {
            self.col += span;
        }
    }

    /// Print a run of printable ASCII written by the bytes from `start` on, as far as the row
    /// allows; returns how many were printed (at least one) and the column of the last one.
    pub fn print_ascii(&mut self, run: &[u8], start: u64) -> (usize, usize) {
        self.wrap_if_pending();
        let limit = self.limit();
        let col = self.col;
        let n = run.len().min(limit - col).max(1);
        let row = self.cur();
        if row.cells.len() == col {
            // Appending, as typing and output mostly do.
            row.cells.extend(run[..n].iter().map(|&b| char::from(b)));
        } else {
            if row.cells.len() < col + n {
                row.cells.resize(col + n, EMPTY);
            }
            for (cell, &b) in row.cells[col..col + n].iter_mut().zip(run) {
                *cell = char::from(b);
            }
        }
        row.touch(start, start + n as u64);
        let last = col + n - 1;
        if last + 1 >= limit {
            self.col = last;
            self.pending_wrap = true;
        } else {
            self.col = last + 1;
        }
        (n, last)
    }

    /// Fill the cursor's row up to the margin with cells that hold no text.
    fn pad_to_margin(&mut self) {
        let limit = self.limit();
        let row = self.cur();
        if row.cells.len() < limit {
            row.cells.resize(limit, WIDE_TAIL);
        }
    }

    /// A line editor padded the right margin (a space, then erase to the end of the line)
    /// before a double-width character that did not fit, at a width not known yet: the margin
    /// is after `col`, the padding holds no text, and the cursor goes on at the next row.
    pub fn pad_and_wrap(&mut self, col: usize) {
        self.set_width(col + 1);
        let row = self.cur();
        row.cells.truncate(col + 1);
        row.cells.resize(col + 1, WIDE_TAIL);
        row.cells[col] = WIDE_TAIL;
        self.col = col;
        self.pending_wrap = true;
    }

    /// Undo the wrap readline forces at the right margin when the width was not known:
    /// the space printed at `col` really went to the start of a new row.
    /// `replayed` characters printed since the CR matched the row's start; they belong to the new row.
    pub fn split_for_wrap(&mut self, col: usize, replayed: usize) {
        let r = self.row;
        let (tail, bytes) = {
            let row = self.row_mut(r);
            let tail: Vec<char> = if row.cells.len() > col {
                row.cells.split_off(col)
            } else {
                Vec::new()
            };
            row.wrapped = true;
            (tail, row.bytes)
        };
        self.set_width(col);
        self.ensure_row(r + 1);
        // The new row may already exist (a redraw over old lines): rewrite its start.
        let head: Vec<char> = self
            .row_mut(r)
            .cells
            .iter()
            .take(replayed)
            .copied()
            .collect();
        let next = self.row_mut(r + 1);
        for (i, ch) in tail.into_iter().enumerate() {
            next.set(i, ch);
        }
        for (i, ch) in head.into_iter().enumerate() {
            next.set(i, ch);
        }
        next.bytes = next.bytes.or(bytes);
        self.row = r + 1;
        self.col = replayed;
        self.pending_wrap = false;
    }

    /// Carriage return.
    pub fn carriage_return(&mut self) {
        self.col = 0;
        self.pending_wrap = false;
    }

    /// Line feed: down one row (and to column 0, as the pty's output processing makes every LF).
    pub fn line_feed(&mut self) {
        self.pending_wrap = false;
        self.row += 1;
        self.col = 0;
        let r = self.row;
        self.ensure_row(r);
    }

    /// Reverse index / cursor up without scrolling past the window.
    pub fn up(&mut self, n: usize) {
        self.pending_wrap = false;
        self.row = self.row.saturating_sub(n as u64).max(self.top);
    }

    /// Cursor down (CUD: no scrolling beyond the last row written).
    pub fn down(&mut self, n: usize) {
        self.pending_wrap = false;
        self.row = (self.row + n as u64).min(self.last_row());
    }

    /// Cursor forward.
    pub fn forward(&mut self, n: usize) {
        self.pending_wrap = false;
        self.col = (self.col + n).min(self.limit() - 1);
    }

    /// Cursor back (and backspace).
    pub fn back(&mut self, n: usize) {
        if self.pending_wrap {
            self.pending_wrap = false;
            self.col = self.col.saturating_sub(n.saturating_sub(1));
            return;
        }
        self.col = self.col.saturating_sub(n);
    }

    /// Absolute column (CHA), 0-based.
    pub fn column(&mut self, col: usize) {
        self.pending_wrap = false;
        self.col = col.min(self.limit() - 1);
    }

    /// Absolute position (CUP), 0-based within the visible screen.
    pub fn position(&mut self, row: usize, col: usize) {
        let screen_top = self
            .last_row()
            .saturating_sub(SCREEN_ROWS as u64 - 1)
            .max(self.top);
        let target = screen_top + row.min(SCREEN_ROWS - 1) as u64;
        self.ensure_row(target);
        self.row = target.max(self.top);
        self.column(col);
    }

    /// Horizontal tab to the next multiple of eight. The cells passed over read as spaces
    /// (a tab echoed inside a typed line is part of it, not a gap before a right prompt).
    pub fn tab(&mut self) {
        let next = ((self.col / 8 + 1) * 8).min(self.limit() - 1);
        let col = self.col;
        let row = self.cur();
        for c in col..next {
            if row.cells.get(c).is_none_or(|&x| x == EMPTY) {
                row.set(c, ' ');
            }
        }
        self.column(next);
    }

    /// Erase in line: 0 to the end, 1 to the start, 2 all.
    pub fn erase_line(&mut self, mode: u16) {
        let col = self.col;
        let row = self.cur();
        match mode {
            0 => row.cells.truncate(col),
            1 => {
                for c in row.cells.iter_mut().take(col + 1) {
                    *c = EMPTY;
                }
            }
            _ => row.cells.clear(),
        }
        if mode != 1 {
            row.wrapped = false;
        }
    }

    /// Erase in display: 0 below (and the rest of the line), 1 above, 2/3 all.
    pub fn erase_display(&mut self, mode: u16) {
        match mode {
            0 => {
                self.erase_line(0);
                let from = self.row + 1;
                for abs in from..=self.last_row() {
                    let row = self.row_mut(abs);
                    row.cells.clear();
                    row.wrapped = false;
                }
            }
            1 => {
                for abs in self.top..self.row {
                    self.row_mut(abs).cells.clear();
                }
                self.erase_line(1);
            }
            _ => {
                let screen_top = self
                    .last_row()
                    .saturating_sub(SCREEN_ROWS as u64 - 1)
                    .max(self.top);
                for abs in screen_top..=self.last_row() {
                    let row = self.row_mut(abs);
                    row.cells.clear();
                    row.wrapped = false;
                }
            }
        }
    }

    /// Erase `n` characters from the cursor without moving anything (ECH).
    pub fn erase_chars(&mut self, n: usize) {
        let col = self.col;
        let row = self.cur();
        for c in row.cells.iter_mut().skip(col).take(n) {
            *c = EMPTY;
        }
    }

    /// Delete `n` characters at the cursor, pulling the rest of the row left (DCH).
    pub fn delete_chars(&mut self, n: usize) {
        let col = self.col;
        let row = self.cur();
        if col < row.cells.len() {
            let end = (col + n).min(row.cells.len());
            row.cells.drain(col..end);
        }
    }

    /// Insert `n` blank characters at the cursor, pushing the rest right (ICH).
    pub fn insert_chars(&mut self, n: usize) {
        let col = self.col;
        let limit = self.limit();
        let row = self.cur();
        if col < row.cells.len() {
            let n = n.min(limit);
            row.cells.splice(col..col, std::iter::repeat_n(' ', n));
            row.cells.truncate(limit);
        }
    }

    /// Save the cursor (DECSC).
    pub fn save_cursor(&mut self) {
        self.saved = Some((self.row, self.col));
    }

    /// Remember a cursor position to restore later (leaving the alternate screen).
    pub fn save_cursor_at(&mut self, row: u64, col: usize) {
        self.saved = Some((row, col));
    }

    /// Restore the cursor (DECRC).
    pub fn restore_cursor(&mut self) {
        if let Some((r, c)) = self.saved {
            self.row = r.clamp(self.top, self.last_row());
            self.col = c;
            self.pending_wrap = false;
        }
    }

    /// First and last absolute rows of the logical line (rows joined by autowrap) holding `abs`.
    pub fn logical_line(&self, abs: u64) -> (u64, u64) {
        let mut first = abs;
        while first > self.top && self.row(first - 1).is_some_and(|r| r.wrapped) {
            first -= 1;
        }
        let mut last = abs;
        while last < self.last_row() && self.row(last).is_some_and(|r| r.wrapped) {
            last += 1;
        }
        (first, last)
    }

    /// The text of rows `first..=last` joined, up to the first cell never written (a wrapped
    /// row that is not full ends the text there): what [`Screen::cells`] holds before its
    /// first gap, without copying the cells.
    pub fn text_to_gap(&self, first: u64, last: u64) -> String {
        let mut out = String::with_capacity(64);
        if let Some(h) = self.head(first) {
            push_cells(&mut out, &h.cells);
            if h.total > h.cells.len() {
                return out;
            }
        }
        for abs in first..=last {
            let Some(row) = self.row(abs) else { continue };
            match first_empty(&row.cells) {
                Some(gap) => {
                    push_cells(&mut out, &row.cells[..gap]);
                    return out;
                }
                None => push_cells(&mut out, &row.cells),
            }
            let padded = row.wrapped && self.width.is_some_and(|w| w > row.cells.len());
            if padded {
                return out;
            }
        }
        out
    }

    /// The source bytes that wrote rows `first..=last`.
    pub fn bytes_of(&self, first: u64, last: u64) -> Option<(u64, u64)> {
        let mut bytes: Option<(u64, u64)> = self.head(first).and_then(|h| h.bytes);
        for abs in first..=last {
            if let Some((a, b)) = self.row(abs).and_then(|r| r.bytes) {
                bytes = Some(bytes.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
            }
        }
        bytes
    }

    /// The cells of rows `first..=last`, joined, and the source bytes that wrote them.
    pub fn cells(&self, first: u64, last: u64) -> (Vec<char>, Option<(u64, u64)>) {
        let mut out = Vec::new();
        let mut bytes: Option<(u64, u64)> = None;
        if let Some(h) = self.head(first) {
            out.extend_from_slice(&h.cells);
            bytes = h.bytes;
            if h.total > h.cells.len() {
                // Only the start is kept: the bytes run on to the end of the line.
                let end = self.bytes_of(first, last).map(|(_, b)| b);
                return (out, bytes.map(|(a, b)| (a, end.unwrap_or(b).max(b))));
            }
        }
        for abs in first..=last {
            if let Some(row) = self.row(abs) {
                let mut cells = row.cells.clone();
                if row.wrapped {
                    if let Some(w) = self.width {
                        cells.resize(w.max(cells.len()), EMPTY);
                    }
                }
                out.extend(cells);
                if let Some((a, b)) = row.bytes {
                    bytes = Some(bytes.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
                }
            }
        }
        (out, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_str(s: &mut Screen, text: &str) {
        for ch in text.chars() {
            s.print(ch, 0, 1);
        }
    }

    #[test]
    fn double_width_characters_take_two_cells() {
        let mut s = Screen::new(Some(10));
        type_str(&mut s, "ls 문서");
        assert_eq!(s.cursor_col(), 7);
        // Backspace over one, as a line editor does: two columns back, erase.
        s.back(2);
        s.erase_line(0);
        type_str(&mut s, "류");
        assert_eq!(s.cells(0, 0).0.len(), 7);
        assert_eq!(cells_text(&s.cells(0, 0).0), "ls 문류");
        // One that does not fit at the margin goes to the next row; the cell left holds no text.
        type_str(&mut s, "가나");
        assert_eq!(s.cursor_row(), 1);
        let (first, last) = s.logical_line(1);
        assert_eq!(cells_text(&s.cells(first, last).0), "ls 문류가나");
        assert_eq!(s.text_to_gap(first, last), "ls 문류가나");
    }

    #[test]
    fn autowrap_joins_rows_into_one_logical_line() {
        let mut s = Screen::new(Some(10));
        type_str(&mut s, "0123456789abc");
        assert_eq!(s.cursor_row(), 1);
        let (first, last) = s.logical_line(1);
        assert_eq!((first, last), (0, 1));
        let (cells, _) = s.cells(first, last);
        assert_eq!(cells.iter().collect::<String>(), "0123456789abc");
    }

    #[test]
    fn a_line_longer_than_the_window_keeps_its_start() {
        // 10 columns, a window of WINDOW_ROWS rows: a line of more rows loses its first ones
        // from the window, and its start is kept.
        let mut s = Screen::new(Some(10));
        let line: String = (0..(WINDOW_ROWS + 20) * 10)
            .map(|i| char::from(b'a' + (i / 10 % 26) as u8))
            .collect();
        type_str(&mut s, &line);
        let (first, last) = s.logical_line(s.cursor_row());
        assert_eq!(first, s.first_row());
        assert!(first > 0, "rows were lost");
        assert_eq!(
            s.text_to_gap(first, last),
            line,
            "whole: the lost start is short"
        );
        assert_eq!(s.truncated(first, last), None);
        // A line ending scrolls out: nothing of it is kept for the next.
        s.carriage_return();
        for _ in 0..WINDOW_ROWS + 1 {
            s.line_feed();
        }
        type_str(&mut s, "next");
        let (first, last) = s.logical_line(s.cursor_row());
        assert_eq!(s.text_to_gap(first, last), "next");
    }

    #[test]
    fn a_line_past_the_kept_start_is_its_start_and_says_how_long_it_was() {
        let mut s = Screen::new(Some(1000));
        let line = "sudo cat /etc/shadow; : ".to_string() + &"A".repeat((WINDOW_ROWS + 100) * 1000);
        type_str(&mut s, &line);
        let (first, last) = s.logical_line(s.cursor_row());
        let text = s.text_to_gap(first, last);
        assert_eq!(text.chars().count(), HEAD_CELLS);
        assert!(text.starts_with("sudo cat /etc/shadow; : AAA"));
        assert_eq!(s.truncated(first, last), Some(line.len() as u64));
    }

    #[test]
    fn backspace_space_backspace_erases() {
        let mut s = Screen::default();
        type_str(&mut s, "lss");
        s.back(1);
        type_str(&mut s, " ");
        s.back(1);
        type_str(&mut s, " -a");
        assert_eq!(s.row(0).unwrap().text(), "ls -a");
    }

    #[test]
    fn erase_line_and_delete_insert_chars() {
        let mut s = Screen::default();
        type_str(&mut s, "abcdef");
        s.column(2);
        s.delete_chars(2);
        assert_eq!(s.row(0).unwrap().text(), "abef");
        s.insert_chars(1);
        type_str(&mut s, "X");
        assert_eq!(s.row(0).unwrap().text(), "abXef");
        s.erase_line(0);
        assert_eq!(s.row(0).unwrap().text(), "abX");
    }

    #[test]
    fn tabs_leave_spaces_not_gaps() {
        let mut s = Screen::default();
        type_str(&mut s, "$ echo a");
        s.tab();
        type_str(&mut s, "b");
        assert_eq!(
            s.row(0).unwrap().cells.iter().collect::<String>(),
            "$ echo a        b"
        );
    }

    #[test]
    fn cells_are_appended_and_gaps_found_as_one_cell_at_a_time_would() {
        for len in [0usize, 1, 31, 32, 33, 127, 128, 129, 300] {
            for special in [
                None,
                Some((0, EMPTY)),
                Some((len / 2, EMPTY)),
                Some((len.saturating_sub(1), 'é')),
            ] {
                let mut cells: Vec<char> = (0..len)
                    .map(|i| char::from(b'a' + (i % 26) as u8))
                    .collect();
                if let Some((at, c)) = special.filter(|_| len > 0) {
                    cells[at] = c;
                }
                let mut got = String::from("x");
                push_cells(&mut got, &cells);
                let want: String = std::iter::once('x')
                    .chain(cells.iter().map(|&c| if c == EMPTY { ' ' } else { c }))
                    .collect();
                assert_eq!(got, want, "{len} {special:?}");
                assert_eq!(first_empty(&cells), cells.iter().position(|&c| c == EMPTY));
            }
        }
    }

    #[test]
    fn split_for_wrap_moves_the_space_to_a_new_row() {
        let mut s = Screen::default();
        type_str(&mut s, "$ abcdefgh ");
        s.split_for_wrap(10, 0);
        type_str(&mut s, "ij");
        assert_eq!(s.width(), Some(10));
        let (cells, _) = s.cells(0, 1);
        assert_eq!(cells.iter().collect::<String>(), "$ abcdefghij");
    }
}
