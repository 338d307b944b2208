//! Inside a terminal multiplexer (tmux, GNU screen): the shells it runs, read off its screen.
//!
//! A multiplexer draws its windows on the alternate screen with cursor addressing, scroll
//! regions and partial redraws, so the line model of [`super::Screen`] cannot follow it. A whole
//! screen can: the bytes go to a [`vt100`] terminal of the multiplexer's size. The multiplexer
//! passes on the bracketed-paste mode of the shell in its active pane (`CSI ?2004h` when the
//! shell starts reading a line, `CSI ?2004l` when it takes it), so the markers still say when
//! a line is taken; the line is then read off the screen, in the pane where it was typed.
//!
//! What it cannot read it says: a line taken whose text holds no prompt, and a multiplexer
//! whose shells never mark their lines (`sh`, `dash`, old bash), are stretches not read.

use super::prompt;
use crate::model::Partial;

/// Rows of the multiplexer's screen: at least as many as a real one has (the multiplexer sets
/// its scroll regions and addresses its rows itself).
const MAX_ROWS: u16 = 200;

/// Columns when the terminal's width is not known.
const WIDE_COLS: u16 = 1024;

/// Narrowest width learnt from a status line.
const MIN_LEARNT_COLS: u16 = 40;

/// Longest escape sequence held back when a chunk ends inside it.
const MAX_CARRY: usize = 64;

/// Rows that scrolled off the top kept for the output of the command that printed them.
const MAX_SCROLLED: usize = 4096;

/// Rows looked at above the cursor for the start of a line taken.
const MAX_LINE_ROWS: u16 = 16;

/// What the multiplexer's screen gave the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Event {
    /// A line its shell took.
    Line(Taken),
    /// Text the last line taken printed.
    Output(String),
    /// A stretch that could not be read.
    Partial(Partial),
}

/// A line a shell inside the multiplexer took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Taken {
    pub prompt: String,
    pub command: String,
    pub abandoned: bool,
    /// From the marker that began the line to the one that ended it.
    pub bytes: (u64, u64),
}

/// Counts the rows that scroll off the top of the screen and keeps their text.
#[derive(Default)]
struct Scrolled {
    rows: Vec<String>,
    lost: u64,
    /// Rows scrolled off in all.
    total: u64,
}

impl vt100::Callbacks for Scrolled {
    fn on_scroll(&mut self, contents: vt100::capture::RowContents<'_>, _alternate: bool) {
        self.total += 1;
        if self.rows.len() >= MAX_SCROLLED {
            self.lost += 1;
            return;
        }
        let mut formatted = String::new();
        let mut state = vt100::capture::BasicFormattedCaptureState::new();
        if contents
            .write_formatted_basic(&mut formatted, &mut state)
            .is_ok()
        {
            self.rows
                .push(vt100::capture::basic_formatted_to_plain(&formatted).collect());
        }
    }
}

/// A line being typed: where its marker put the cursor.
#[derive(Debug, Clone)]
struct Open {
    row: u16,
    col: u16,
    byte: u64,
    left: u16,
    /// Rows scrolled off when it began.
    scrolled: u64,
    /// The screen was redrawn since (another window, a re-attach): its rows are not where
    /// they were.
    redrawn: bool,
}

/// The command whose output is being collected: its last row's text and columns.
#[derive(Debug, Clone)]
struct Owner {
    text: String,
    left: u16,
    right: u16,
    /// The screen was redrawn since (another window): what it shows is not this output.
    redrawn: bool,
}

/// The screen of one multiplexer, from entering its alternate screen to leaving it.
pub(super) struct Mux {
    parser: vt100::Parser<Scrolled>,
    name: &'static str,
    carry: Vec<u8>,
    carry_at: u64,
    open: Option<Open>,
    owner: Option<Owner>,
    /// Lines the shells began to read, marked.
    marked: usize,
    /// Where the multiplexer's screen began in the source.
    start: u64,
    /// Something was drawn.
    drawn: bool,
    /// The pty added a CR before each LF (unknown until the first LF).
    onlcr: Option<bool>,
    /// A CR at the end of the last bytes drawn, held back.
    held_cr: bool,
    /// The last bytes drawn.
    tail: Vec<u8>,
    /// A whole screen is being drawn (from the cursor sent home to the cursor put back).
    redrawing: bool,
    /// Rows taken at their line feed since the last marker (see `before_line_feed`), and where
    /// the next such line's bytes begin.
    lf_taken: Vec<String>,
    lf_from: u64,
    /// The first row of the last lines read (rows scrolled off before it, and its text).
    last_taken: Option<(u64, String)>,
    /// The width was learnt from the status line.
    width_known: bool,
}

impl Mux {
    /// The screen of `name` (`tmux`, `screen`, …), entered at byte `start`; `width` when known.
    pub fn new(name: &'static str, width: Option<usize>, start: u64) -> Mux {
        let cols = width
            .and_then(|w| u16::try_from(w).ok())
            .unwrap_or(WIDE_COLS)
            .clamp(2, WIDE_COLS);
        let rows = std::num::NonZeroU16::new(MAX_ROWS).unwrap_or(std::num::NonZeroU16::MIN);
        let cols = std::num::NonZeroU16::new(cols).unwrap_or(std::num::NonZeroU16::MIN);
        Mux {
            parser: vt100::Parser::new_with_callbacks(rows, cols, 0, Scrolled::default()),
            name,
            carry: Vec::new(),
            carry_at: start,
            open: None,
            owner: None,
            marked: 0,
            start,
            drawn: false,
            onlcr: None,
            held_cr: false,
            tail: Vec::new(),
            redrawing: false,
            lf_taken: Vec::new(),
            lf_from: 0,
            last_taken: None,
            width_known: width.is_some(),
        }
    }

    /// Feed the bytes at `offset`. Returns where in `bytes` the multiplexer has left its
    /// screen: just after the `CSI ?1049l` that does it (which the caller then applies).
    pub fn feed(&mut self, bytes: &[u8], offset: u64, events: &mut Vec<Event>) -> Option<usize> {
        let mut i = 0;
        // A mode sequence cut by the end of the previous chunk.
        if !self.carry.is_empty() {
            let had = self.carry.len();
            let take = bytes.len().min(MAX_CARRY);
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(&bytes[..take]);
            match mode_seq(&joined) {
                Scan::Mode { len, modes, on } if len > had => {
                    let used = len - had;
                    let (at, end) = (self.carry_at, offset + used as u64);
                    if self.on_modes(&joined[..len], &modes, on, at, end, events) {
                        return Some(used);
                    }
                    i = used;
                }
                Scan::Incomplete if take == bytes.len() && joined.len() < MAX_CARRY => {
                    self.carry = joined;
                    return None;
                }
                _ => {
                    let at = self.carry_at;
                    self.process(&joined[..had], at, events);
                }
            }
        }
        let mut fed = i;
        while let Some(p) = memchr::memchr(0x1b, &bytes[i..]) {
            let at = i + p;
            match mode_seq(&bytes[at..]) {
                Scan::Mode { len, modes, on } => {
                    self.process(&bytes[fed..at], offset + fed as u64, events);
                    let (start, end) = (offset + at as u64, offset + (at + len) as u64);
                    if self.on_modes(&bytes[at..at + len], &modes, on, start, end, events) {
                        return Some(at + len);
                    }
                    i = at + len;
                    fed = i;
                }
                Scan::Other { len } => {
                    if moves_elsewhere(&bytes[at..]) {
                        self.process(&bytes[fed..at], offset + fed as u64, events);
                        fed = at;
                        self.redrawing = false;
                    }
                    if redraws(&bytes[at..]) {
                        self.process(&bytes[fed..at], offset + fed as u64, events);
                        fed = at;
                        self.before_redraw(offset + at as u64, events);
                        self.redrawing = true;
                        if let Some(open) = &mut self.open {
                            open.redrawn = true;
                        }
                        if let Some(owner) = &mut self.owner {
                            owner.redrawn = true;
                        }
                    }
                    i = at + len.max(1);
                }
                Scan::Incomplete => {
                    self.process(&bytes[fed..at], offset + fed as u64, events);
                    self.carry = bytes[at..].to_vec();
                    self.carry_at = offset + at as u64;
                    return None;
                }
            }
        }
        self.process(&bytes[fed..], offset + fed as u64, events);
        None
    }

    /// Draw bytes at `offset`. When the pty added a CR before every LF (`ONLCR`: the
    /// transcript then shows the multiplexer's own `CR LF` as `CR CR LF`), the added CRs are
    /// taken out, as the terminal never drew them: an LF alone keeps the column, which is how a
    /// multiplexer moves down inside a pane that does not start at the left edge.
    fn process(&mut self, bytes: &[u8], offset: u64, events: &mut Vec<Event>) {
        if bytes.is_empty() {
            return;
        }
        self.drawn = true;
        let mut from = 0;
        if self.held_cr {
            self.held_cr = false;
            if bytes[0] != b'\n' {
                self.parser.process(b"\r");
            }
        }
        for k in memchr::memchr_iter(b'\n', bytes) {
            if self.onlcr.is_none() {
                // The first line feed tells: the multiplexer's first screen is drawn row by
                // row with CR LF.
                let before = |back: usize| {
                    k.checked_sub(back).map(|i| bytes[i]).or_else(|| {
                        self.tail
                            .get(self.tail.len().wrapping_sub(back - k))
                            .copied()
                    })
                };
                self.onlcr = Some(before(1) == Some(b'\r') && before(2) == Some(b'\r'));
            }
            let cut = if self.onlcr == Some(true) && k > from && bytes[k - 1] == b'\r' {
                k - 1
            } else {
                k
            };
            self.parser.process(&bytes[from..cut]);
            self.before_line_feed(offset + k as u64, events);
            from = k;
        }
        let rest = &bytes[from..];
        match rest.split_last() {
            Some((b'\r', head)) if self.onlcr != Some(false) => {
                self.parser.process(head);
                self.held_cr = true;
            }
            _ => self.parser.process(rest),
        }
        self.tail.clear();
        self.tail
            .extend_from_slice(&bytes[bytes.len().saturating_sub(2)..]);
    }

    /// The cursor is about to leave its row by a line feed at `at`. When the markers cannot be
    /// trusted (the screen was redrawn since the last one: another window; or the cursor is
    /// in another pane), a row holding a prompt and a command is a line its shell took: the
    /// multiplexer passes on no marker when both shells read lines.
    fn before_line_feed(&mut self, at: u64, events: &mut Vec<Event>) {
        if self.redrawing {
            return;
        }
        let (row, col) = self.cursor();
        let (left, right) = self.pane(row, col);
        let from = match &self.open {
            Some(open) if open.redrawn || open.left != left => open.byte,
            // No shell here ever marked a line: every line is read by its prompt.
            None if self.marked == 0 => self.start,
            _ => return,
        }
        .max(self.lf_from);
        let (text, _) = self.text(row, left, right);
        let Some(cut) = prompt::split_at(&text) else {
            return;
        };
        let typed = text[cut..].trim_end();
        let abandoned = typed.ends_with("^C");
        let command = typed.trim_end_matches("^C").trim().to_string();
        if command.is_empty() {
            return;
        }
        self.flush_output(row, events);
        events.push(Event::Line(Taken {
            prompt: text[..cut].to_string(),
            command,
            abandoned,
            bytes: (from, at + 1),
        }));
        self.lf_from = at + 1;
        self.lf_taken.push(text.clone());
        self.owner = Some(Owner {
            text,
            left,
            right,
            redrawn: false,
        });
        self.parser.callbacks_mut().rows.clear();
    }

    /// Draw a CR held back to see whether an LF follows.
    fn flush_cr(&mut self) {
        if std::mem::take(&mut self.held_cr) {
            self.parser.process(b"\r");
        }
    }

    /// A mode sequence at `at..end`: feed it, then act on what it switches.
    fn on_modes(
        &mut self,
        seq: &[u8],
        modes: &[u16],
        on: bool,
        at: u64,
        end: u64,
        events: &mut Vec<Event>,
    ) -> bool {
        self.flush_cr();
        if !on && modes.iter().any(|m| matches!(m, 1049 | 1047 | 47)) {
            return true;
        }
        self.parser.process(seq);
        if modes.contains(&2004) {
            if on {
                self.paste_on(at, events);
            } else {
                self.paste_off(end, events);
            }
        }
        false
    }

    /// The text of `row` between columns `left..right`, and each character's column.
    fn text(&self, row: u16, left: u16, right: u16) -> (String, Vec<u16>) {
        let screen = self.parser.screen();
        let mut text = String::new();
        let mut cols = Vec::new();
        for col in left..right {
            let Some(cell) = screen.cell(row, col) else {
                break;
            };
            if cell.is_wide_continuation() {
                continue;
            }
            let c = cell.contents();
            let before = text.len();
            if c.is_empty() {
                text.push(' ');
            } else {
                text.push_str(c);
            }
            cols.extend(std::iter::repeat_n(col, text.len() - before));
        }
        let end = text.trim_end().len();
        text.truncate(end);
        cols.truncate(end);
        (text, cols)
    }

    /// The pane holding column `col` of `row`: from after the border on its left to the one on
    /// its right (tmux draws `│` between side-by-side panes).
    fn pane(&self, row: u16, col: u16) -> (u16, u16) {
        let screen = self.parser.screen();
        let cols = screen.size().1.get();
        let border = |c: u16| {
            screen
                .cell(row, c)
                .is_some_and(|cell| matches!(cell.contents(), "│" | "┃" | "║" | "├" | "┤" | "┼"))
        };
        let left = (0..col.min(cols))
            .rev()
            .find(|&c| border(c))
            .map_or(0, |c| c + 1);
        let right = (col.min(cols)..cols).find(|&c| border(c)).unwrap_or(cols);
        (left, right)
    }

    /// tmux draws its status line across the whole width, its right end in the last column:
    /// once it is drawn, the rightmost cell written tells the width, when nothing said it.
    fn learn_width(&mut self) {
        if self.width_known || self.name != "tmux" {
            return;
        }
        self.width_known = true;
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        let mut widest = 0;
        for row in 0..rows.get() {
            if let Some(last) = (widest..cols.get())
                .rev()
                .find(|&c| screen.cell(row, c).is_some_and(|cell| cell.has_contents()))
            {
                widest = widest.max(last + 1);
            }
        }
        if (MIN_LEARNT_COLS..cols.get()).contains(&widest) {
            if let Some(w) = std::num::NonZeroU16::new(widest) {
                self.parser.screen_mut().set_size(rows, w);
            }
        }
    }

    /// The width learnt, if any.
    pub fn width(&self) -> Option<usize> {
        let cols = self.parser.screen().size().1.get();
        (cols != WIDE_COLS).then_some(usize::from(cols))
    }

    fn cursor(&self) -> (u16, u16) {
        self.parser.screen().cursor_position()
    }

    /// The shell starts reading a line: what was printed since the last line is its output.
    fn paste_on(&mut self, at: u64, events: &mut Vec<Event>) {
        self.marked += 1;
        self.redrawing = false;
        self.lf_taken.clear();
        self.learn_width();
        let (row, col) = self.cursor();
        self.flush_output(row, events);
        if self.open.is_none() {
            let (left, _) = self.pane(row, col);
            self.open = Some(Open {
                row,
                col,
                byte: at,
                left,
                scrolled: self.parser.callbacks().total,
                redrawn: false,
            });
        }
    }

    /// The shell took the line: read it off the screen.
    ///
    /// The multiplexer passes on a change of the pane's mode when it next writes, so the
    /// markers can come late (after the echo of Enter, after a short output) or not at all
    /// between two lines (the mode went off and on again in between): every row from the
    /// marker that starts with a prompt of the same shell is a line taken.
    fn paste_off(&mut self, end: u64, events: &mut Vec<Event>) {
        self.redrawing = false;
        let Some(open) = self.open.take() else {
            self.lf_taken.clear();
            return;
        };
        let (row, col) = self.cursor();
        let (left, right) = self.pane(row, col.max(open.left));
        // The shell echoed the newline before it said so: the line ends on the row above.
        let last = if col <= left && row > 0 && self.text(row, left, right).0.is_empty() {
            row - 1
        } else {
            row
        };
        self.harvest(&open, last, (left, right), end, true, events);
        self.lf_taken.clear();
    }

    /// The screen is about to be redrawn (another window) while a marked line is open: the
    /// lines taken on it since the marker, above the cursor's row, are read now, before they go.
    fn before_redraw(&mut self, at: u64, events: &mut Vec<Event>) {
        let Some(open) = self.open.clone().filter(|o| !o.redrawn) else {
            return;
        };
        let (row, col) = self.cursor();
        let (left, right) = self.pane(row, col);
        if row > 0 && open.left == left {
            self.harvest(&open, row - 1, (left, right), at, false, events);
        }
        if let Some(open) = &mut self.open {
            open.byte = at;
        }
    }

    /// Read the lines in the rows from the marker's to `last` in the pane `left..right`.
    /// `nearest`: when the marker's row is not there any more, read the nearest line above
    /// `last` that starts with a prompt.
    fn harvest(
        &mut self,
        open: &Open,
        last: u16,
        (left, right): (u16, u16),
        end: u64,
        nearest: bool,
        events: &mut Vec<Event>,
    ) {
        // Where the marker's row is now: the screen may have scrolled since.
        let scrolled = self.parser.callbacks().total - open.scrolled;
        let open_row = u64::from(open.row)
            .checked_sub(scrolled)
            .and_then(|r| u16::try_from(r).ok())
            .filter(|_| !open.redrawn && open.left == left);
        // The row where the line starts: the marker's row when the line ends there or a few
        // rows below, else the nearest row above the end that starts with a prompt.
        let (first, exact) = match open_row {
            Some(r) if r <= last && last - r < MAX_LINE_ROWS => (r, r == open.row),
            _ if !nearest => return,
            _ => (
                (last.saturating_sub(MAX_LINE_ROWS)..=last)
                    .rev()
                    .find(|&r| prompt::split_at(&self.text(r, left, right).0).is_some())
                    .unwrap_or(last),
                false,
            ),
        };
        let (head, cols) = self.text(first, left, right);
        // Where the prompt ends: at the marker when it came after the prompt, else where a
        // prompt's sign is.
        let at_marker = (exact && open.col > left).then(|| {
            cols.iter()
                .position(|&c| c >= open.col)
                .unwrap_or(head.len())
        });
        let cut = match at_marker {
            Some(cut) if prompt::split_at(&head[..cut]).is_some() => Some(cut),
            _ => prompt::split_at(&head),
        };
        let Some(cut) = cut else {
            // A pane's border (a window split under the cursor) is not a line.
            let border = head
                .chars()
                .all(|c| c == ' ' || ('\u{2500}'..='\u{257f}').contains(&c));
            if !border {
                events.push(Event::Partial(Partial {
                    reason: format!(
                        "inside {}: a line its shell took shows no prompt on its screen, and is not read",
                        self.name
                    ),
                    byte_start: open.byte,
                    byte_end: end,
                }));
            }
            return;
        };
        // The lines in the rows, each with the rows printed after it.
        let shape = prompt::Prompt::parse(&head[..cut]).shape;
        let mut found: Vec<(String, String, String)> = vec![(
            head[..cut].to_string(),
            head[cut..].to_string(),
            String::new(),
        )];
        let mut last_text = head.clone();
        for r in first + 1..=last {
            let (text, _) = self.text(r, left, right);
            let Some(cur) = found.last_mut() else { break };
            if self.parser.screen().row_wrapped(r - 1) && cur.2.is_empty() {
                cur.1.push_str(&text);
            } else if let Some(c) = prompt::split_at(&text).filter(|&c| {
                let p = prompt::Prompt::parse(&text[..c]);
                p.shape == shape
                    || p.is_continuation()
                    || crate::shellwords::transition(cur.1.trim()).is_some()
            }) {
                found.push((text[..c].to_string(), text[c..].to_string(), String::new()));
            } else {
                cur.2.push_str(&text);
                cur.2.push('\n');
            }
            last_text = text;
        }
        let n = found.len();
        let taken_rows = self.parser.callbacks().total + u64::from(first);
        for (k, (prompt_text, command, output)) in found.into_iter().enumerate() {
            // Already taken at its line feed.
            let row_text = format!("{prompt_text}{command}");
            if let Some(i) = self.lf_taken.iter().position(|t| *t == row_text) {
                self.lf_taken.remove(i);
                continue;
            }
            // The same line read again (a second marker pair around a Ctrl-C'd line).
            if k == 0 && self.last_taken.as_ref() == Some(&(taken_rows, row_text.clone())) {
                continue;
            }
            if k == 0 {
                self.last_taken = Some((taken_rows, row_text.clone()));
            }
            let trimmed = command.trim_end();
            let abandoned = trimmed.ends_with("^C");
            let command = trimmed.trim_end_matches("^C").trim().to_string();
            let taken = !command.is_empty();
            events.push(Event::Line(Taken {
                prompt: prompt_text,
                command,
                abandoned,
                bytes: (open.byte, end),
            }));
            let output = output.trim_end_matches(['\n', ' ']);
            if taken && !output.is_empty() {
                events.push(Event::Output(output.to_string()));
            }
            if k + 1 == n {
                self.owner = taken.then(|| Owner {
                    text: last_text.clone(),
                    left,
                    right,
                    redrawn: false,
                });
            }
        }
        self.parser.callbacks_mut().rows.clear();
    }

    /// The rows the last command printed, above `row` (where the next prompt is).
    fn flush_output(&mut self, row: u16, events: &mut Vec<Event>) {
        let Some(owner) = self.owner.take().filter(|o| !o.redrawn) else {
            return;
        };
        let mut out = String::new();
        let found = (0..row)
            .rev()
            .find(|&r| self.text(r, owner.left, owner.right).0 == owner.text);
        let from = match found {
            Some(r) => r + 1,
            None => {
                let scrolled = std::mem::take(&mut self.parser.callbacks_mut().rows);
                let skip = scrolled
                    .iter()
                    .rposition(|t| t.trim_end() == owner.text)
                    .map_or(0, |i| i + 1);
                for t in &scrolled[skip..] {
                    out.push_str(t.trim_end());
                    out.push('\n');
                }
                0
            }
        };
        for r in from..row {
            out.push_str(&self.text(r, owner.left, owner.right).0);
            out.push('\n');
        }
        let out = out.trim_end_matches(['\n', ' ']);
        if !out.is_empty() {
            events.push(Event::Output(out.to_string()));
        }
    }

    /// The multiplexer leaves its screen at `end` (it cleared it first: the output of the last
    /// command was collected at the prompt after it). Could its shells be read at all?
    pub fn leave(self, end: u64, events: &mut Vec<Event>) {
        if self.marked == 0 && self.drawn {
            events.push(Event::Partial(Partial {
                reason: format!(
                    "inside {}: its shell does not mark the lines it reads; they were read by their prompts, and a line at a prompt not recognised is missed",
                    self.name
                ),
                byte_start: self.start,
                byte_end: end.max(self.start + 1),
            }));
        }
    }
}

/// What is at an ESC.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// `CSI ? n (; n)* h|l`: modes switched on or off.
    Mode {
        len: usize,
        modes: Vec<u16>,
        on: bool,
    },
    /// Any other sequence, or not a sequence looked at: skip `len` bytes.
    Other { len: usize },
    /// The bytes end inside a mode sequence.
    Incomplete,
}

/// Does the sequence at the start of `bytes` begin drawing a whole screen: erase all, or the
/// cursor sent home and text written there (not a scroll, which tmux also starts from home)?
fn redraws(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\x1b[2J") {
        return true;
    }
    [&b"\x1b[H"[..], b"\x1b[1;1H"].iter().any(|home| {
        bytes.starts_with(home)
            && bytes.get(home.len()..).is_some_and(|next| {
                next.first().is_some_and(|&b| b != 0x1b) || next.starts_with(b"\x1b[K")
            })
    })
}

/// Is the sequence at the start of `bytes` a cursor position other than home (where a
/// multiplexer puts the cursor back after drawing a screen)?
fn moves_elsewhere(bytes: &[u8]) -> bool {
    let Some(rest) = bytes.strip_prefix(b"\x1b[") else {
        return false;
    };
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b';'))
        .unwrap_or(rest.len());
    rest.get(end) == Some(&b'H') && !matches!(&rest[..end], b"" | b"1;1" | b"1" | b";")
}

/// Recognise a private mode sequence at the start of `bytes` (which starts with ESC).
fn mode_seq(bytes: &[u8]) -> Scan {
    match bytes.get(1) {
        None => return Scan::Incomplete,
        Some(b'[') => {}
        Some(_) => return Scan::Other { len: 1 },
    }
    match bytes.get(2) {
        None => return Scan::Incomplete,
        Some(b'?') => {}
        Some(_) => return Scan::Other { len: 2 },
    }
    let mut modes = Vec::new();
    let mut cur: u32 = 0;
    for (k, &b) in bytes.iter().enumerate().skip(3) {
        match b {
            b'0'..=b'9' => cur = (cur * 10 + u32::from(b - b'0')).min(u32::from(u16::MAX)),
            b';' => {
                modes.push(cur as u16);
                cur = 0;
            }
            b'h' | b'l' => {
                modes.push(cur as u16);
                return Scan::Mode {
                    len: k + 1,
                    modes,
                    on: b == b'h',
                };
            }
            _ => return Scan::Other { len: k },
        }
        if k >= MAX_CARRY {
            return Scan::Other { len: k };
        }
    }
    Scan::Incomplete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &'static str, bytes: &[u8], chunk: usize) -> (Vec<Event>, Option<usize>) {
        let mut mux = Mux::new(name, Some(120), 0);
        let mut events = Vec::new();
        let mut at = 0;
        for piece in bytes.chunks(chunk) {
            if let Some(i) = mux.feed(piece, at as u64, &mut events) {
                mux.leave((at + i) as u64, &mut events);
                return (events, Some(at + i));
            }
            at += piece.len();
        }
        (events, None)
    }

    fn lines(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Line(t) => Some(t.command.clone()),
                _ => None,
            })
            .collect()
    }

    const TMUX: &[u8] = b"\x1b[1;48r\x1b[H\x1b[2J[ssm-user@ip-10-0-1-23 ~]$ \x1b[?2004hhostname\r\r\n\x1b[?2004lvm\r\r\n[ssm-user@ip-10-0-1-23 ~]$ \x1b[?2004hid -un\r\r\n\x1b[?2004lssm-user\r\r\n\x1b[?2004h[ssm-user@ip-10-0-1-23 ~]$ \x1b[?1049l[exited]";

    #[test]
    fn lines_are_read_between_the_markers_whatever_the_chunks() {
        for chunk in [1, 3, 7, 4096] {
            let (events, left) = run("tmux", TMUX, chunk);
            assert_eq!(lines(&events), ["hostname", "id -un"], "chunk {chunk}");
            let outputs: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Output(o) => Some(o.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(outputs, ["vm", "ssm-user"], "chunk {chunk}");
            assert_eq!(
                left,
                TMUX.windows(8)
                    .position(|w| w == b"\x1b[?1049l")
                    .map(|p| p + 8)
            );
        }
    }

    #[test]
    fn a_line_in_the_right_pane_is_read_in_its_pane() {
        let mut bytes =
            b"\x1b[H\x1b[2J[ssm-user@h ~]$ \x1b[?2004hecho left\r\n\x1b[?2004lleft\r\n".to_vec();
        for row in 1..=5 {
            bytes.extend_from_slice(format!("\x1b[{row};41H\u{2502}").as_bytes());
        }
        bytes.extend_from_slice(b"\x1b[1;42H[ssm-user@h ~]$ \x1b[?2004hecho right pane\x1b[2;42H\x1b[?2004lright pane\x1b[3;42H\x1b[?2004h[ssm-user@h ~]$ ");
        let (events, _) = run("tmux", &bytes, 5);
        assert_eq!(lines(&events), ["echo left", "echo right pane"]);
    }

    #[test]
    fn a_line_scrolled_up_before_it_is_taken_is_still_read() {
        // tmux scrolls the pane's region (above its status line) before it passes on the
        // marker: the line moved up a row.
        let mut bytes = b"\x1b[1;5r\x1b[H\x1b[2J".to_vec();
        bytes.extend_from_slice(b"a\r\nb\r\nc\r\n\x1b[4;1H$ \x1b[?2004hsudo su -\x1b[1;4r\x1b[4;1H\r\n\x1b[1;5r\x1b[4;1H\x1b[?2004l");
        let mut mux = Mux::new("tmux", Some(40), 0);
        let mut events = Vec::new();
        mux.feed(&bytes, 0, &mut events);
        assert_eq!(lines(&events), ["sudo su -"]);
    }

    #[test]
    fn a_marked_line_without_a_prompt_is_a_stretch_not_read() {
        let bytes = b"\x1b[H\x1b[2J\x1b[?2004hsome text typed\r\n\x1b[?2004l";
        let (events, _) = run("screen", bytes, 4096);
        assert!(lines(&events).is_empty());
        assert!(matches!(&events[..], [Event::Partial(p)] if p.reason.contains("no prompt")));
    }

    #[test]
    fn lines_of_shells_that_never_mark_them_are_read_by_their_prompts_and_flagged() {
        // tmux resets the mode as it starts; the screen drawn, the cursor is put back.
        let bytes = b"\x1b[?2004l\x1b[H\x1b[2J$ \x1b[1;3Hdate\r\nFri\r\n$ \x1b[?1049l";
        let (events, left) = run("tmux", bytes, 4096);
        assert!(left.is_some());
        assert_eq!(lines(&events), ["date"]);
        assert!(
            matches!(events.last(), Some(Event::Partial(p)) if p.reason.contains("does not mark")),
            "{events:?}"
        );
    }

    #[test]
    fn mode_sequences_are_recognised_and_others_skipped() {
        assert_eq!(
            mode_seq(b"\x1b[?1049;2004h"),
            Scan::Mode {
                len: 13,
                modes: vec![1049, 2004],
                on: true
            }
        );
        assert_eq!(mode_seq(b"\x1b[?20"), Scan::Incomplete);
        assert_eq!(mode_seq(b"\x1b[K"), Scan::Other { len: 2 });
        assert_eq!(mode_seq(b"\x1b7"), Scan::Other { len: 1 });
    }
}
