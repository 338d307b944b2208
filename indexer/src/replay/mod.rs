//! Terminal replay: from the bytes a pty printed to the command lines a shell ran.
//!
//! The bytes drive a [`vte`] parser whose actions move a [`Screen`] (cells and a cursor), as a
//! terminal would. Input lines are read off that screen when the shell accepts them, so every
//! edit a line editor made (backspace echo, redraws, history recall, Ctrl-R, insertions) has
//! already been applied. See `design.md` beside this file for how a line is known to be input.

mod escape;
mod input;
mod mux;
mod output;
mod prompt;
mod screen;
mod shells;
mod shown;
mod streams;
mod width;

pub use prompt::{Prompt, Shape};
pub use screen::Screen;
pub use shown::as_shown;

pub use crate::model::Partial;
use crate::shellwords::{self, Transition};
use input::Input;
use output::push_output_text;
use screen::{cells_text, EMPTY};
use shells::{echo_left_off, turns_echo_off, Level};
use std::rc::Rc;
use width::WrapSuspect;

/// Bytes of output kept per command; the rest is counted, not kept.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// The `base_user` that stands for the session's login user, whoever that is: the lines it
/// types get an empty `run_as`, which the derivation resolves from every source of the session
/// ([`crate::model::Attribution::login_user`]).
pub const LOGIN_USER: &str = "";

/// Options of one replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The user the session's first shell runs as (`ssm-user` unless the source says otherwise).
    pub base_user: String,
    /// Trust bracketed-paste markers (`CSI ?2004h/l`) as input boundaries. Off for streamed
    /// sessions, whose escapes were stripped line by line.
    pub markers: bool,
    /// Terminal width when known.
    pub width: Option<usize>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            base_user: "ssm-user".to_string(),
            markers: true,
            width: None,
        }
    }
}

/// One line the user gave the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLine {
    /// Position among the session's input lines, from 1.
    pub seq: u32,
    /// The command as the shell received it (continuation lines joined with `\n`).
    pub command: String,
    /// The user the shell ran as.
    pub run_as: String,
    /// The working directory shown by the prompt, if any.
    pub cwd: Option<String>,
    /// Byte range in the source that holds the prompt, the echo and the editing of the line.
    pub byte_start: u64,
    /// End of that range (exclusive).
    pub byte_end: u64,
    /// Clean text the command printed (capped at [`MAX_OUTPUT_BYTES`]).
    pub output: String,
    /// Output bytes beyond the cap.
    pub output_truncated: u64,
    /// The line was abandoned (Ctrl-C) and never ran.
    pub abandoned: bool,
    /// Why this line deserves a closer look (forged prompts in its output, echo switched off).
    pub suspicious: Vec<String>,
    /// The command line was longer than the replay keeps: its full length in characters
    /// (`command` holds its first [`screen::HEAD_CELLS`]).
    pub truncated: Option<u64>,
    /// The terminal showed the line before the shell's first prompt: the agent wrote it into
    /// the terminal from the preferences' shell profile (or it was typed ahead).
    pub profile: bool,
}

/// The most lines of a shell profile followed.
const PROFILE_LINES: usize = 32;

/// Replays one session's terminal bytes.
pub struct Replayer {
    parser: vte::Parser,
    term: Term,
    /// The end of the bytes fed so far.
    fed_end: u64,
}

impl Replayer {
    /// A replayer for one session.
    pub fn new(options: ReplayOptions) -> Self {
        Replayer {
            parser: vte::Parser::new(),
            term: Term::new(options),
            fed_end: 0,
        }
    }

    /// Feed the next bytes; `offset` is the position of `bytes[0]` in the source.
    ///
    /// Plain ASCII runs are written to the screen directly, and so are the control bytes and
    /// the short escape sequences shells send, when the whole sequence is in `bytes`. Anything
    /// else (OSC strings, UTF-8, sequences cut by the chunking) goes through the [`vte`]
    /// parser, escape sequences byte by byte, so that every printed character knows its own
    /// source offset however the bytes were chunked.
    pub fn feed(&mut self, bytes: &[u8], offset: u64) {
        self.fed_end = self.fed_end.max(offset + bytes.len() as u64);
        let mut i = 0;
        // Inside a multiplexer's screen (from the bytes before), its bytes go to it.
        while self.term.mux.is_some() && i < bytes.len() {
            i += self.term.feed_mux(&bytes[i..], offset + i as u64);
        }
        while i < bytes.len() {
            let at = offset + i as u64;
            let ground = !self.term.in_seq && !self.term.utf8_pending;
            if !ground {
                self.term.offset = at;
                self.term.offset_end = at + 1;
                self.parser.advance(&mut self.term, &bytes[i..=i]);
                if !self.term.in_seq {
                    self.term.utf8_pending = false;
                }
                i += 1;
                // A multiplexer's screen begins: its bytes go to it.
                while self.term.mux.is_some() && i < bytes.len() {
                    i += self.term.feed_mux(&bytes[i..], offset + i as u64);
                }
                continue;
            }
            let b = bytes[i];
            if (0x20..0x7f).contains(&b) {
                let run_end = i + printable_run(&bytes[i..]);
                self.term.offset = at;
                self.term.offset_end = offset + run_end as u64;
                self.term.pos = at;
                self.term.print_ascii(&bytes[i..run_end], at);
                i = run_end;
            } else if b >= 0x80 {
                // Text with UTF-8 in it, up to the next control byte, through the parser.
                let run_end = bytes[i..]
                    .iter()
                    .position(|&b| b < 0x20 || b == 0x7f)
                    .map_or(bytes.len(), |p| i + p);
                let run = &bytes[i..run_end];
                self.term.offset = at;
                self.term.offset_end = offset + run_end as u64;
                self.term.pos = at;
                self.parser.advance(&mut self.term, run);
                self.term.utf8_pending = ends_inside_utf8(run);
                i = run_end;
            } else if b == 0x1b {
                self.term.seq_start = at;
                match escape::parse(&bytes[i..]) {
                    Some((len, seq)) => {
                        self.term.offset = at;
                        self.term.offset_end = at + len as u64;
                        self.term.dispatch(&seq);
                        i += len;
                        // A multiplexer's screen begins: its bytes go to it.
                        while self.term.mux.is_some() && i < bytes.len() {
                            i += self.term.feed_mux(&bytes[i..], offset + i as u64);
                        }
                    }
                    None => {
                        self.term.in_seq = true;
                        self.term.offset = at;
                        self.term.offset_end = at + 1;
                        self.parser.advance(&mut self.term, &bytes[i..=i]);
                        i += 1;
                    }
                }
            } else {
                self.term.offset = at;
                self.term.offset_end = at + 1;
                if b != 0x7f {
                    vte::Perform::execute(&mut self.term, b);
                }
                i += 1;
            }
            if self.term.screen.has_evicted() {
                self.term.collect_evicted();
            }
        }
    }

    /// Input lines that are complete (their output too), oldest first; the latest line stays
    /// until the next one begins, since continuation lines and output may still extend it.
    pub fn drain(&mut self) -> Vec<InputLine> {
        let t = &mut self.term;
        let keep = t.lines.len().min(1);
        let n = t.lines.len() - keep;
        t.drained += n;
        t.lines.drain(..n).collect()
    }

    /// End of the session: what is still on the input line was never run. The lines, and the
    /// stretches that could not be read ([`Partial`]).
    pub fn finish(mut self) -> Replayed {
        self.term.finish();
        let t = &mut self.term;
        if let Some(start) = t.echo_off.take() {
            if self.fed_end > start {
                t.partial.push(Partial {
                    reason: "terminal echo was switched off (`stty -echo`) and no line showed again: what was typed after it is not in the transcript".into(),
                    byte_start: start,
                    byte_end: self.fed_end,
                });
            }
        }
        if t.stream_mux.is_some() {
            t.close_stream_mux(self.fed_end);
        }
        for (a, b) in std::mem::take(&mut t.stream_marked) {
            t.partial.push(Partial {
                reason: "the shell took a line here (the stream kept its input markers) that could not be read".into(),
                byte_start: a,
                byte_end: b.max(a + 1),
            });
        }
        Replayed {
            lines: self.term.lines,
            preamble: std::mem::take(&mut self.term.preamble),
            partial: merged(self.term.partial),
        }
    }
}

/// Stretches in order, those that overlap made one (their reasons joined).
pub(crate) fn merged(mut partial: Vec<Partial>) -> Vec<Partial> {
    partial.sort_by_key(|p| (p.byte_start, p.byte_end));
    let mut out: Vec<Partial> = Vec::with_capacity(partial.len());
    for p in partial {
        match out.last_mut() {
            Some(last) if p.byte_start < last.byte_end => {
                last.byte_end = last.byte_end.max(p.byte_end);
                if !last.reason.contains(&p.reason) {
                    last.reason.push_str("; ");
                    last.reason.push_str(&p.reason);
                }
            }
            _ => out.push(p),
        }
    }
    out
}

/// What a replay gives at the end.
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    /// The input lines not drained before.
    pub lines: Vec<InputLine>,
    /// What the transcript shows before its first input line (capped at
    /// [`MAX_OUTPUT_BYTES`]): all of it in a session that ran a command and read no line (an
    /// interactive command document), where it is that command's output.
    pub preamble: String,
    /// The stretches of the transcript it could not read as a shell's input and output.
    pub partial: Vec<Partial>,
}

struct Term {
    options: ReplayOptions,
    screen: Screen,
    offset: u64,
    offset_end: u64,
    alt: bool,
    alt_saved: Option<(u64, usize)>,
    input: Option<Input>,
    levels: Vec<Level>,
    pending: Option<Transition>,
    /// Lines not yet drained; `drained` lines came before them.
    lines: Vec<InputLine>,
    drained: usize,
    /// Index in `lines` of the command whose output is being collected, and its first row.
    output_owner: Option<(usize, u64)>,
    /// The text before the first input line.
    preamble: String,
    /// No input line was read yet: rows still go to `preamble`.
    preamble_open: bool,
    /// The lines the terminal showed before the first prompt, not yet read at a prompt: the
    /// shell profile the agent wrote, which the shell then reads.
    profile: std::collections::VecDeque<String>,
    /// Where those lines are in the source.
    profile_bytes: Option<(u64, u64)>,
    last_accept_byte: u64,
    last_printed: [char; 2],
    last_print_col: usize,
    suspect: Option<WrapSuspect>,
    title_cwd: Option<String>,
    keypad: bool,
    /// The last event was a backspace (see `print`).
    after_backspace: bool,
    /// Inside an escape sequence (fed byte by byte), and where it began.
    in_seq: bool,
    seq_start: u64,
    /// Source offset of the next printed character of the current run.
    pos: u64,
    /// The parser holds the start of a UTF-8 sequence.
    utf8_pending: bool,
    /// Literal pieces of the last command, which its output may repeat (worked out when first
    /// needed: `None` until then).
    forgeable: Option<Vec<String>>,
    /// The prompts parsed last (a session moves between a few: directories, users).
    prompts: Vec<Rc<Prompt>>,
    /// The logical lines of the input line being taken (a buffer kept between lines).
    ranges: Vec<(u64, u64)>,
    /// The last line taken is not abandoned and needs more lines (an open quote, heredoc,
    /// compound command or trailing operator).
    last_open: bool,
    /// The line being accepted is longer than what is kept of it: its length in characters.
    truncated: Option<u64>,
    /// Stretches not read, closed.
    partial: Vec<Partial>,
    /// The prompt a command set (`PS1='>> '`), when it is a literal.
    set_prompt: Option<String>,
    /// A space then erase to the end of the line were printed, the space at this column:
    /// padding, if a double-width character comes next.
    pad_at: Option<usize>,
    /// A command started a multiplexer (its name, and where its screen would begin): its full
    /// screen, when it comes next, is read as the multiplexer's (see `mux.rs`).
    mux_pending: Option<(&'static str, u64)>,
    /// The screen of the multiplexer being read, while it is on.
    mux: Option<Box<mux::Mux>>,
    /// Where a command switched the terminal's echo off (`stty -echo`): what is typed after
    /// it does not show, until a line shows again.
    echo_off: Option<u64>,
    /// In a stream whose lines kept their escapes (fish), the stretches its shell marked as
    /// lines it took (`CSI ?2004h` … `?2004l`, something printed between), not yet matched by
    /// a line read; and the one open.
    stream_marked: Vec<(u64, u64)>,
    /// (Where it began, characters printed then, lines read then.)
    stream_mark_open: Option<(u64, u64, u64)>,
    /// Characters printed so far (to tell a marked stretch with text in it).
    printed: u64,
    /// In a stream, a multiplexer started (its name) at this byte and not seen to end.
    stream_mux: Option<(&'static str, u64)>,
    /// The line (index among all) whose command may hold a history expansion (`!`, `^`).
    expandable: Option<usize>,
    /// In a stream, the matches a history search displayed on the line being typed.
    stream_matches: Vec<String>,
    /// A search prompt was printed on the line being typed (in a stream).
    stream_searching: bool,
    /// The stream is fish's: it kept its escape sequences (fish sets a title at every
    /// prompt) and moves with CR then `CSI n C`, whose CR the stream dropped.
    stream_fish: bool,
    /// fish's `⏎` mark was just printed: the spaces after it are not drawn.
    fish_spaces: bool,
    /// The shell edits lines in vi mode (`set -o vi`), which moves the cursor with escapes a
    /// stream does not keep; and the line being typed had text printed over backspaced cells.
    vi_mode: bool,
    stream_bs_edit: bool,
    mux_events: Vec<mux::Event>,
}

impl Term {
    fn new(options: ReplayOptions) -> Self {
        let screen = Screen::new(options.width);
        let user = options.base_user.clone();
        Term {
            options,
            screen,
            offset: 0,
            offset_end: 0,
            alt: false,
            alt_saved: None,
            input: None,
            levels: vec![Level {
                shape: None,
                user,
                markers: false,
            }],
            pending: None,
            lines: Vec::new(),
            drained: 0,
            output_owner: None,
            preamble: String::new(),
            preamble_open: true,
            profile: std::collections::VecDeque::new(),
            profile_bytes: None,
            last_accept_byte: 0,
            last_printed: [' ', ' '],
            last_print_col: 0,
            suspect: None,
            title_cwd: None,
            keypad: false,
            after_backspace: false,
            in_seq: false,
            seq_start: 0,
            pos: 0,
            utf8_pending: false,
            forgeable: Some(Vec::new()),
            prompts: Vec::new(),
            ranges: Vec::new(),
            last_open: false,
            truncated: None,
            partial: Vec::new(),
            set_prompt: None,
            pad_at: None,
            mux_pending: None,
            mux: None,
            mux_events: Vec::new(),
            echo_off: None,
            stream_marked: Vec::new(),
            stream_mark_open: None,
            printed: 0,
            stream_mux: None,
            expandable: None,
            stream_matches: Vec::new(),
            stream_searching: false,
            stream_fish: false,
            fish_spaces: false,
            vi_mode: false,
            stream_bs_edit: false,
        }
    }

    // ---- output -----------------------------------------------------------------------------

    // ---- input lines ------------------------------------------------------------------------

    /// A line was accepted at `prompt`.
    fn accept(
        &mut self,
        prompt: Rc<Prompt>,
        command: String,
        abandoned: bool,
        bytes: (u64, u64),
        last_row: u64,
        markers: bool,
    ) {
        self.last_accept_byte = bytes.1;
        // The line's length counts its prompt: the command's is that less what of the kept
        // head is not the command.
        let truncated = self.truncated.take().map(|n| {
            n.saturating_sub(
                (screen::HEAD_CELLS as u64).saturating_sub(command.chars().count() as u64),
            )
        });
        let first = self.screen.logical_line(last_row).0;
        self.close_preamble(first);
        self.finish_output(first);
        // The command is trimmed in its own buffer: `start..end` is what is kept.
        let mut command = command;
        let mut end = command.trim_end().len();
        if abandoned && command[..end].ends_with("^C") {
            end = command[..end - 2].trim_end().len();
        }
        // Streams can hold a prompt twice before a command (`sh-4.2$ sh-4.2$ date`).
        let mut start = 0;
        let p = prompt.text.trim_end();
        while !p.is_empty() && command[start..end].starts_with(p) {
            start = end - command[start + p.len()..end].trim_start().len();
        }
        // Old agents started their own logger in the shell before the user's: not a user command.
        if command[start..end].starts_with("/usr/bin/ssm-session-logger ") {
            return;
        }
        // Windows: the logger shell replays the session with the agent's logger.
        if command[start..end].starts_with("& ")
            && command[start..end].contains("ssm-session-logger.exe")
        {
            return;
        }
        command.truncate(end);
        command.drain(..start);
        // A paste of several complete lines is several commands.
        if command.contains('\n') && !prompt.is_continuation() {
            let mut parts = Vec::new();
            let mut cur = String::new();
            for l in command.split('\n') {
                if !cur.is_empty() {
                    cur.push('\n');
                }
                cur.push_str(l);
                if !shellwords::is_incomplete(&cur) {
                    parts.push(std::mem::take(&mut cur));
                }
            }
            if !cur.is_empty() {
                parts.push(cur);
            }
            if parts.len() > 1 {
                let last_part = parts.pop().unwrap_or_default();
                for part in parts {
                    self.accept(
                        Rc::clone(&prompt),
                        part,
                        abandoned,
                        bytes,
                        last_row,
                        markers,
                    );
                }
                self.accept(prompt, last_part, abandoned, bytes, last_row, markers);
                return;
            }
        }

        if prompt.is_continuation() && !abandoned && self.last_command_incomplete() {
            if let Some(last) = self.lines.len().checked_sub(1) {
                let idx = last + self.drained;
                let line = &mut self.lines[last];
                line.command.push('\n');
                line.command.push_str(&command);
                line.byte_end = bytes.1;
                if memchr::memchr2(b'!', b'^', command.as_bytes()).is_some() {
                    self.expandable = Some(idx);
                }
                self.output_owner = Some((idx, last_row + 1));
                self.last_open = shellwords::is_incomplete(&line.command);
                if !self.last_open {
                    self.pending = shellwords::transition(&line.command);
                }
                return;
            }
        }
        self.enter_prompt(&prompt, markers);
        if command.trim().is_empty() {
            return;
        }
        // A line read where the stream says its shell took one.
        self.stream_marked
            .retain(|&(a, b)| !(a < bytes.1 && bytes.0 < b));
        // A line shows again: echo is back on. What was typed in between is not in the log.
        if let Some(start) = self.echo_off.take() {
            if bytes.0 > start {
                self.partial.push(Partial {
                    reason: "terminal echo was switched off (`stty -echo`): what was typed until a line shows again is not in the transcript".into(),
                    byte_start: start,
                    byte_end: bytes.0,
                });
            }
        }
        let cwd = prompt.cwd.clone().or_else(|| self.title_cwd.clone());
        let mut line = InputLine {
            seq: (self.drained + self.lines.len()) as u32 + 1,
            command,
            run_as: self.top().user.clone(),
            cwd,
            byte_start: bytes.0,
            byte_end: bytes.1,
            output: String::new(),
            output_truncated: 0,
            abandoned,
            suspicious: Vec::new(),
            truncated,
            profile: false,
        };
        if !self.profile.is_empty() && !abandoned {
            self.follow_profile(&mut line, markers);
        }
        let scanned = shellwords::scan(&line.command);
        self.last_open = !abandoned && shellwords::is_incomplete_scanned(&line.command, scanned);
        if !abandoned && !self.last_open {
            self.pending = shellwords::transition_scanned(&line.command, scanned);
        }
        if let Some(n) = truncated {
            line.suspicious.push(format!(
                "truncated: the command is {n} characters long; its first {} are kept",
                line.command.chars().count()
            ));
        }
        if !abandoned && scanned.stty && turns_echo_off(&line.command) {
            line.suspicious.push(
                "turns terminal echo off: what is typed next does not show in the transcript"
                    .to_string(),
            );
            if echo_left_off(&line.command) {
                self.echo_off = Some(bytes.1);
            }
        }
        // A multiplexer that never drew its screen (it failed, or listed its sessions) hid
        // nothing: forgotten at the next line the shell takes.
        self.mux_pending = None;
        if !abandoned && !self.options.markers && self.stream_mux.is_none() {
            // A stream keeps no screen updates: lines inside are read by their prompts alone.
            if let Some(what) = shellwords::multiplexer_scanned(&line.command, scanned) {
                self.stream_mux = Some((what, bytes.1));
            }
        }
        if !abandoned && self.options.markers {
            if let Some(what) = shellwords::multiplexer_scanned(&line.command, scanned) {
                self.mux_pending = Some((what, bytes.1));
            }
        }
        if !abandoned {
            if let Some(p) = shellwords::prompt_set_scanned(&line.command, scanned) {
                self.set_prompt = Some(p);
            }
            if let Some(vi) = shellwords::vi_mode_scanned(&line.command, scanned) {
                self.vi_mode = vi;
            }
        }
        self.forgeable = None;
        self.expandable = (scanned.bang && !abandoned).then_some(self.drained + self.lines.len());
        self.lines.push(line);
        self.output_owner = Some((self.drained + self.lines.len() - 1, last_row + 1));
    }

    // ---- wrap detection ---------------------------------------------------------------------
}

/// How many bytes at the start of `bytes` are printable ASCII (0x20..0x7f), eight at a time.
fn printable_run(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut n = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_ne_bytes(word);
        // A byte below 0x20, one at 0x7f, or one with its high bit set (each test may also
        // flag bytes after the first that matches, never before it).
        let below = w.wrapping_sub(0x20 * ONES) & !w;
        let del = (w ^ (0x7f * ONES)).wrapping_sub(ONES) & !(w ^ (0x7f * ONES));
        if (below | del | w) & HIGH != 0 {
            break;
        }
        n += 8;
    }
    n + bytes[n..]
        .iter()
        .position(|b| !(0x20..0x7f).contains(b))
        .unwrap_or(bytes.len() - n)
}

/// Does this text end in the middle of a UTF-8 sequence (the parser then holds part of it)?
fn ends_inside_utf8(run: &[u8]) -> bool {
    for back in 1..=run.len().min(4) {
        let b = run[run.len() - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return false,
        };
        return back < need;
    }
    false
}

impl vte::Perform for Term {
    fn print(&mut self, ch: char) {
        self.in_seq = false;
        // An invalid UTF-8 byte prints U+FFFD (three bytes long) from one source byte: offsets
        // are kept inside the bytes that printed the run, whatever the decoder made of them.
        let start = self.pos.min(self.offset_end);
        let end = (start + ch.len_utf8() as u64).min(self.offset_end);
        self.pos = end;
        if !self.options.markers {
            self.printed += 1;
        }
        // C1 controls print nothing on a terminal (and one marks a wide character's second cell).
        if self.alt || ('\u{80}'..='\u{9f}').contains(&ch) {
            return;
        }
        // fish marks output that did not end its line with `⏎` at every prompt: `⏎`, spaces
        // to the margin, CR, `⏎ `, CR. In a stream the CRs are gone: the mark and its spaces
        // leave the row empty, as they did on the screen.
        if ch == '\u{23ce}' && !self.options.markers && !self.stream_fish {
            self.fish_stream();
        }
        if ch == '\u{23ce}' && self.stream_fish {
            self.screen.carriage_return();
            self.screen.erase_line(2);
            self.fish_spaces = true;
            return;
        }
        if std::mem::take(&mut self.fish_spaces) && ch == ' ' {
            self.fish_spaces = true;
            return;
        }
        if let Some(col) = self.pad_at.take() {
            if !ch.is_ascii() && unicode_width::UnicodeWidthChar::width(ch) == Some(2) {
                self.screen.pad_and_wrap(col);
            }
        }
        // Streamed lines lost their erase sequences (`CSI K`) but kept backspaces: text printed
        // over backspaced cells there replaced the rest of the line.
        if std::mem::take(&mut self.after_backspace) && !self.options.markers {
            // Unless the line editor moves with the stripped escapes (vi mode): then text
            // printed after backspaces may not have replaced what followed.
            self.stream_bs_edit |= self
                .screen
                .row(self.screen.cursor_row())
                .is_some_and(|r| r.cells.len() > self.screen.cursor_col());
            self.screen.erase_line(0);
        }
        self.last_print_col = self.screen.cursor_col();
        if self.suspect.is_some() {
            self.resolve_suspect(Some((ch, start, end)));
        } else {
            self.screen.print(ch, start, end);
        }
        self.last_printed = [self.last_printed[1], ch];
        if let Some(input) = &mut self.input {
            input.printed = true;
            input.last_print_row = self.screen.cursor_row();
            input.ctrl_c = self.last_printed == ['^', 'C'];
        }
    }

    fn execute(&mut self, byte: u8) {
        self.fish_spaces = false;
        if self.alt {
            return;
        }
        self.pad_at = None;
        match byte {
            b'\r' => {
                if self.suspect.is_some() {
                    self.resolve_suspect(None);
                } else {
                    self.check_wrap_suspect();
                }
                self.screen.carriage_return();
            }
            b'\n' | 0x0b | 0x0c => {
                self.resolve_suspect(None);
                self.before_line_feed();
                self.screen.line_feed();
            }
            0x08 => {
                self.resolve_suspect(None);
                self.screen.back(1);
                self.after_backspace = true;
                self.last_printed = [self.last_printed[1], '\u{1}'];
                return;
            }
            b'\t' => self.screen.tab(),
            _ => {}
        }
        self.after_backspace = false;
        self.last_printed = [self.last_printed[1], '\u{1}'];
    }

    fn csi_dispatch(
        &mut self,
        params: &vte::Params,
        intermediates: &[u8],
        _ignore: bool,
        action: char,
    ) {
        let mut first = [0u16; escape::MAX_PARAMS];
        let mut n = 0;
        for p in params.iter().take(escape::MAX_PARAMS) {
            first[n] = p.first().copied().unwrap_or(0);
            n += 1;
        }
        self.csi(&first[..n], intermediates, action);
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], _ignore: bool, byte: u8) {
        self.esc(intermediates, byte);
    }

    fn unhook(&mut self) {
        self.in_seq = false;
    }

    fn osc_dispatch(&mut self, params: &[&[u8]], _bell_terminated: bool) {
        self.osc(params);
    }
}

impl Term {
    /// A sequence the fast path read whole.
    fn dispatch(&mut self, seq: &escape::Seq<'_>) {
        match seq {
            escape::Seq::Csi {
                params,
                intermediates,
                action,
            } => self.csi(params, intermediates, *action),
            escape::Seq::Osc { body, bell } => {
                let mut params = [&[][..]; escape::MAX_OSC_PARAMS];
                let n = escape::osc_params(body, &mut params).unwrap_or(0);
                self.osc(&params[..n]);
                if !bell {
                    self.esc(&[], b'\\');
                }
            }
            escape::Seq::Esc {
                intermediates,
                byte,
            } => self.esc(intermediates, *byte),
        }
    }

    /// A control sequence: `params` holds the first sub-parameter of each parameter.
    fn csi(&mut self, params: &[u16], intermediates: &[u8], action: char) {
        self.in_seq = false;
        self.fish_spaces = false;
        self.after_backspace = false;
        if intermediates == b"?" {
            self.resolve_suspect(None);
        }
        let mut it = params.iter().copied();
        let p0 = it.next().unwrap_or(0);
        let n = usize::from(p0.max(1));
        if intermediates == b"?" {
            let on = match action {
                'h' => true,
                'l' => false,
                _ => return,
            };
            for &mode in params {
                match mode {
                    2004 if !self.alt => {
                        if on {
                            self.paste_on()
                        } else {
                            self.paste_off()
                        }
                    }
                    1049 | 1047 | 47 => self.set_alt(on),
                    1 if !self.alt => self.keypad = on,
                    _ => {}
                }
            }
            return;
        }
        if self.alt || !intermediates.is_empty() {
            return;
        }
        self.resolve_suspect(None);
        match action {
            'A' => self.screen.up(n),
            'B' | 'e' => self.screen.down(n),
            'C' | 'a' => {
                // fish moves from the first column; the stream dropped the CR.
                if self.stream_fish {
                    self.screen.carriage_return();
                }
                self.screen.forward(n)
            }
            'D' => self.screen.back(n),
            'E' => {
                self.screen.down(n);
                self.screen.carriage_return();
            }
            'F' => {
                self.screen.up(n);
                self.screen.carriage_return();
            }
            'G' | '`' => self.screen.column(n - 1),
            'H' | 'f' => {
                let col = usize::from(it.next().unwrap_or(1).max(1));
                self.screen.position(n - 1, col - 1);
            }
            'J' => self.screen.erase_display(p0),
            'K' => {
                // A space then erase to the end of the line, at a width not known: readline's
                // padding before a double-width character that does not fit (see `print`).
                if p0 == 0
                    && self.screen.width().is_none()
                    && self.input.is_some()
                    && self.last_printed[1] == ' '
                    && self.screen.cursor_col() > 0
                {
                    self.pad_at = Some(self.screen.cursor_col() - 1);
                }
                self.screen.erase_line(p0)
            }
            'P' => self.screen.delete_chars(n),
            '@' => self.screen.insert_chars(n),
            'X' => self.screen.erase_chars(n),
            's' => self.screen.save_cursor(),
            'u' => self.screen.restore_cursor(),
            _ => {}
        }
    }

    fn esc(&mut self, intermediates: &[u8], byte: u8) {
        self.in_seq = false;
        if self.alt || !intermediates.is_empty() {
            return;
        }
        self.resolve_suspect(None);
        match byte {
            b'7' => self.screen.save_cursor(),
            b'8' => self.screen.restore_cursor(),
            b'M' => self.screen.up(1),
            b'D' => {
                self.before_line_feed();
                self.screen.line_feed();
            }
            b'E' => {
                self.before_line_feed();
                self.screen.line_feed();
            }
            _ => {}
        }
    }

    fn osc(&mut self, params: &[&[u8]]) {
        self.in_seq = false;
        match params {
            [b"0" | b"2", title, ..] => {
                // `user@host: /path` titles (Debian and Ubuntu prompts) name the cwd.
                let title = String::from_utf8_lossy(title);
                if let Some((_, cwd)) = title.split_once(": ") {
                    if title.contains('@') && !cwd.is_empty() {
                        self.title_cwd = Some(cwd.trim().to_string());
                    }
                }
            }
            [b"7", url, ..] => {
                let url = String::from_utf8_lossy(url);
                if let Some(rest) = url.strip_prefix("file://") {
                    if let Some(p) = rest.find('/') {
                        self.title_cwd = Some(rest[p..].to_string());
                    }
                }
            }
            _ => {}
        }
    }
}

impl Term {
    /// Print a run of printable ASCII in the parser's ground state: rows are written a slice at
    /// a time; a pending wrap decision or a streamed backspace goes character by character.
    fn print_ascii(&mut self, run: &[u8], at: u64) {
        self.in_seq = false;
        // What a stream lost is put back (see `streams.rs`); S3 logs need none of it.
        let (run, at, cr_at) = if self.options.markers && !self.stream_fish {
            (run, at, None)
        } else {
            let (skip, cr_at) = self.stream_print(run);
            (&run[skip..], at + skip as u64, cr_at)
        };
        if self.alt || run.is_empty() {
            self.pos = at + run.len() as u64;
            return;
        }
        let mut k = 0;
        while k < run.len() {
            if cr_at == Some(k) {
                self.screen.carriage_return();
                self.after_backspace = false;
                // Inside a multiplexer the prompt was drawn on a row of its own.
                if self.stream_mux.is_some() {
                    self.screen.erase_line(0);
                }
            }
            if self.suspect.is_some() || self.after_backspace {
                self.pos = at + k as u64;
                vte::Perform::print(self, char::from(run[k]));
                k += 1;
                continue;
            }
            let upto = match cr_at {
                Some(c) if c > k => c,
                _ => run.len(),
            };
            let (n, last_col) = self.screen.print_ascii(&run[k..upto], at + k as u64);
            self.last_print_col = last_col;
            k += n;
        }
        self.pos = at + run.len() as u64;
        self.last_printed = match run {
            [.., a, b] => [char::from(*a), char::from(*b)],
            [b] => [self.last_printed[1], char::from(*b)],
            [] => self.last_printed,
        };
        if let Some(input) = &mut self.input {
            input.printed = true;
            input.last_print_row = self.screen.cursor_row();
            input.ctrl_c = self.last_printed == ['^', 'C'];
        }
    }

    fn set_alt(&mut self, on: bool) {
        if on == self.alt {
            return;
        }
        self.resolve_suspect(None);
        if on {
            self.alt_saved = Some((self.screen.cursor_row(), self.screen.cursor_col()));
            self.alt = true;
            // A multiplexer drawing its screen: read its shells off it.
            if let Some((program, start)) = self.mux_pending.take() {
                self.finish_output(self.screen.last_row() + 1);
                self.input = None;
                self.mux = Some(Box::new(mux::Mux::new(program, self.screen.width(), start)));
            }
        } else {
            self.alt = false;
            if let Some((r, c)) = self.alt_saved.take() {
                self.screen.save_cursor_at(r, c);
                self.screen.restore_cursor();
            }
        }
    }
}

impl Term {
    /// Bytes at `at` while a multiplexer's screen is on: how many of them it took (all of
    /// them, unless it left its screen among them).
    fn feed_mux(&mut self, bytes: &[u8], at: u64) -> usize {
        let Some(mux) = self.mux.as_mut() else {
            return 0;
        };
        let mut events = std::mem::take(&mut self.mux_events);
        let left = mux.feed(bytes, at, &mut events);
        if let Some(n) = left {
            if let Some(mux) = self.mux.take() {
                if let (None, Some(w)) = (self.screen.width(), mux.width()) {
                    self.screen.set_width(w);
                }
                mux.leave(at + n as u64, &mut events);
            }
        }
        for event in events.drain(..) {
            match event {
                mux::Event::Line(taken) => {
                    let prompt = self.parse_prompt(&taken.prompt);
                    self.offset_end = taken.bytes.1;
                    let row = self.screen.cursor_row();
                    self.accept(
                        prompt,
                        taken.command,
                        taken.abandoned,
                        taken.bytes,
                        row,
                        true,
                    );
                    // Its output is on the multiplexer's screen, not on this one.
                    self.output_owner = None;
                }
                mux::Event::Output(text) => {
                    if let Some(idx) = self.lines.len().checked_sub(1) {
                        let line = &mut self.lines[idx];
                        for l in text.split('\n') {
                            push_output_text(line, l, false);
                        }
                        self.settle_output(idx + self.drained);
                    }
                }
                mux::Event::Partial(p) => self.partial.push(p),
            }
        }
        self.mux_events = events;
        match left {
            Some(n) => {
                self.offset = at + n as u64;
                self.offset_end = self.offset;
                self.set_alt(false);
                n
            }
            None => bytes.len(),
        }
    }
}

#[cfg(test)]
mod tests;
