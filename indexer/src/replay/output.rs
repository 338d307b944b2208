//! Output capture: the rows a command printed, kept with it (within a cap), and what they say
//! about it (the line bash printed after a history expansion, a forged prompt, a shell that
//! ended on Ctrl-D).

use super::*;

/// Append one row of output to a command, within the cap.
pub(super) fn push_output(line: &mut InputLine, row: &screen::Row) {
    if line.output.capacity() == 0 {
        line.output.reserve(2 * row.cells.len() + 16);
    }
    let before = line.output.len();
    row.push_text(&mut line.output);
    if !row.wrapped {
        line.output.push('\n');
    }
    if line.output.len() > MAX_OUTPUT_BYTES {
        line.output_truncated += (line.output.len() - before) as u64;
        line.output.truncate(before);
    }
}

/// Append one line of text to a command's output, within the cap.
pub(super) fn push_output_text(line: &mut InputLine, text: &str, wrapped: bool) {
    let before = line.output.len();
    line.output.push_str(text);
    if !wrapped {
        line.output.push('\n');
    }
    if line.output.len() > MAX_OUTPUT_BYTES {
        line.output_truncated += (line.output.len() - before) as u64;
        line.output.truncate(before);
    }
}

/// Append a row to the text before the first input line, within the cap.
fn push_preamble(out: &mut String, row: &screen::Row) {
    let before = out.len();
    row.push_text(out);
    if !row.wrapped {
        out.push('\n');
    }
    if out.len() > MAX_OUTPUT_BYTES {
        out.truncate(before);
    }
}

impl Term {
    /// The text before the first input line ends before `row`.
    pub(super) fn close_preamble(&mut self, row: u64) {
        if !std::mem::take(&mut self.preamble_open) {
            return;
        }
        let mut abs = self.screen.first_row();
        while abs < row {
            if let Some(r) = self.screen.row(abs) {
                push_preamble(&mut self.preamble, r);
            }
            abs += 1;
        }
        let kept = self.preamble.trim_end_matches(['\n', ' ']).len();
        self.preamble.truncate(kept);
        // Lines shown before the first prompt are the shell profile the agent wrote into the
        // terminal (which echoed them before the shell read them), or text typed ahead.
        let lines: Vec<&str> = self
            .preamble
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.len() <= super::PROFILE_LINES {
            self.profile = lines.into_iter().map(String::from).collect();
            self.profile_bytes = (row > self.screen.first_row())
                .then(|| self.screen.bytes_of(self.screen.first_row(), row - 1))
                .flatten();
        }
    }

    /// A line read while lines shown before the first prompt are still unread: the next of
    /// them is this line (a shell that echoes what it reads, bash's readline), or, at the first
    /// prompt of a shell that does not (dash), each of them ran unseen, and what shows at the
    /// prompts may be their output: they are taken as lines before this one, and the session
    /// is flagged partial.
    pub(super) fn follow_profile(&mut self, line: &mut super::InputLine, markers: bool) {
        if self.profile.front().map(String::as_str) == Some(line.command.trim()) {
            self.profile.pop_front();
            line.profile = true;
            return;
        }
        let first = self.drained + self.lines.len() == 0;
        // The first row of a two-line prompt (`user@host ~`, then `$ `) is no profile.
        let prompt_like = self
            .profile
            .iter()
            .any(|l| super::prompt::user_host_cwd(l).0.is_some() || prompt::split(l).is_some());
        // Only in a terminal's own bytes (an S3 log): a stream's text before the first prompt
        // may be anything its writer put there (PowerShell transcription's header).
        if !first || markers || prompt_like || !self.options.markers {
            self.profile.clear();
            return;
        }
        let shown: Vec<String> = self.profile.drain(..).collect();
        self.partial.push(super::Partial {
            reason: format!(
                "the terminal showed {} before the shell's first prompt (the shell profile, or text typed ahead) and the shell did not show it again at its prompt: it ran unseen, and what shows after the first prompts may be its output",
                if shown.len() == 1 { "a line" } else { "lines" }
            ),
            byte_start: line.byte_start,
            byte_end: line.byte_end.max(line.byte_start + 1),
        });
        let (start, end) = self
            .profile_bytes
            .unwrap_or((line.byte_start, line.byte_start));
        for command in shown {
            self.lines.push(super::InputLine {
                seq: (self.drained + self.lines.len()) as u32 + 1,
                command,
                run_as: line.run_as.clone(),
                cwd: None,
                byte_start: start,
                byte_end: end,
                output: String::new(),
                output_truncated: 0,
                abandoned: false,
                suspicious: Vec::new(),
                truncated: None,
                profile: true,
            });
        }
        line.seq = (self.drained + self.lines.len()) as u32 + 1;
    }

    pub(super) fn collect_evicted(&mut self) {
        let mut evicted = self.screen.take_evicted();
        for (abs, row) in evicted.drain(..) {
            if self.preamble_open {
                push_preamble(&mut self.preamble, &row);
            }
            if let Some((idx, from)) = self.output_owner {
                if abs >= from {
                    push_output(&mut self.lines[idx - self.drained], &row);
                }
            }
            self.screen.recycle(row);
        }
        self.screen.give_back_evicted(evicted);
    }

    /// The command being collected ends before `row`.
    pub(super) fn finish_output(&mut self, row: u64) {
        let Some((idx, from)) = self.output_owner.take() else {
            return;
        };
        let start = from.max(self.screen.first_row());
        let mut abs = start;
        while abs < row {
            if let Some(r) = self.screen.row(abs) {
                push_output(&mut self.lines[idx - self.drained], r);
            }
            abs += 1;
        }
        self.settle_output(idx);
    }

    /// The output of line `idx` is all there: what it says about the line.
    pub(super) fn settle_output(&mut self, idx: usize) {
        let line = &mut self.lines[idx - self.drained];
        let out = line.output.trim_end_matches(['\n', ' ']);
        line.output.truncate(out.len());
        // bash printed the line its history expansion made (`sudo !!`): that is what ran.
        if self.expandable == Some(idx)
            && !line.abandoned
            && shellwords::history_expansion(&line.command).is_some()
        {
            let printed = line.output.lines().next().unwrap_or("").trim_end();
            if shellwords::expanded_from(&line.command, printed) {
                let printed = printed.to_string();
                line.suspicious.push(format!(
                    "typed with history expansion as {:?}: the command is the line the shell printed",
                    line.command
                ));
                line.output
                    .drain(..line.output.find('\n').unwrap_or(line.output.len()));
                let rest = line.output.trim_start_matches('\n').len();
                line.output.drain(..line.output.len() - rest);
                line.command = printed;
                if idx - self.drained + 1 == self.lines.len() {
                    let command = &self.lines[idx - self.drained].command;
                    self.last_open = shellwords::is_incomplete(command);
                    self.pending = (!self.last_open)
                        .then(|| shellwords::transition(command))
                        .flatten();
                }
            }
        }
        let line = &mut self.lines[idx - self.drained];
        // Output that shows a command line at one of this session's prompts may be forging one.
        // Only lines holding a prompt's sign (and its user, when it names one) can: the others
        // are not split and parsed.
        let could_be_prompt = |l: &str| {
            self.levels.iter().any(|lv| {
                lv.shape.as_ref().is_some_and(|s| {
                    l.contains(s.sigil) && s.user.as_deref().is_none_or(|u| l.contains(u))
                })
            })
        };
        // Only the lines that hold a prompt's sign are looked at: one pass over the output
        // finds them.
        let out = line.output.as_str();
        let mut forged = None;
        let mut next_line = 0;
        let mut signs: Vec<usize> = memchr::memchr3_iter(b'$', b'#', b'%', out.as_bytes())
            .chain(memchr::memchr_iter(b'>', out.as_bytes()))
            .collect();
        signs.sort_unstable();
        for at in signs {
            if at < next_line {
                continue;
            }
            let start = out[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = out[at..].find('\n').map_or(out.len(), |i| at + i);
            next_line = end;
            let l = &out[start..end];
            if could_be_prompt(l)
                && prompt::split_at(l).is_some_and(|cut| {
                    !l[cut..].trim().is_empty()
                        && self
                            .levels
                            .iter()
                            .any(|lv| lv.shape.as_ref() == Some(&Prompt::parse(&l[..cut]).shape))
                })
            {
                forged = Some(l);
                break;
            }
        }
        if let Some(forged) = forged {
            let shown: String = forged.chars().take(80).collect();
            line.suspicious.push(format!(
                "its output shows a command line at a prompt of this session: {shown:?}"
            ));
        }
        let line = &mut self.lines[idx - self.drained];
        // A shell that ends on Ctrl-D says so itself.
        let last = line.output.lines().last().unwrap_or("").trim();
        if self.levels.len() > 1 && matches!(last, "logout" | "exit") && self.pending.is_none() {
            self.pending = Some(Transition::Leave);
        }
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::replay::tests::{commands, pairs, replay_with, replayed};
    #[allow(unused_imports)]
    use crate::replay::*;

    /// bash prints the line its history expansion made: that is the command, and it moves the
    /// stack of shells as typed in full would (`sudo !!` after `su -`).
    #[test]
    fn history_expansion_is_the_line_bash_printed() {
        let p = "\x1b[?2004h[u@h ~]$ ";
        let off = "\r\r\n\x1b[?2004l\r";
        let log = format!(
            "{p}su -{off}Password: \r\nsu: Authentication failure\r\n{p}sudo !!{off}sudo su -\r\r\n\x1b[?2004h[root@h ~]# id{off}uid=0(root)\r\n\x1b[?2004h[root@h ~]# echo '!!'{off}!!\r\n"
        );
        let lines = replay_with(log.as_bytes(), true);
        let got: Vec<(&str, &str, &str)> = lines
            .iter()
            .map(|l| (l.run_as.as_str(), l.command.as_str(), l.output.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("u", "su -", "Password: \nsu: Authentication failure"),
                ("u", "sudo su -", ""),
                ("root", "id", "uid=0(root)"),
                ("root", "echo '!!'", "!!"),
            ]
        );
        assert!(
            lines[1].suspicious[0].contains("\"sudo !!\""),
            "{:?}",
            lines[1]
        );
    }

    #[test]
    fn bash_markers_ignore_a_printed_fake_prompt() {
        let got = commands(
            b"\x1b[?2004h[ssm-user@ip-10-20-1-5 ~]$ printf '[root@ip-10-20-1-5 ~]# cat /etc/shadow\\n'\r\r\n\x1b[?2004l\r[root@ip-10-20-1-5 ~]# cat /etc/shadow\r\r\n\x1b[?2004h[ssm-user@ip-10-20-1-5 ~]$ sudo id\r\r\n\x1b[?2004l\ruid=0(root)\r\r\n",
        );
        assert_eq!(
            got,
            pairs(&[
                (
                    "ssm-user",
                    "printf '[root@ip-10-20-1-5 ~]# cat /etc/shadow\\n'"
                ),
                ("ssm-user", "sudo id")
            ])
        );
    }

    #[test]
    fn output_is_kept_within_its_cap_and_the_rest_counted() {
        let mut bytes = b"\x1b[?2004h$ cat big\r\r\n\x1b[?2004l\r".to_vec();
        for _ in 0..2000 {
            bytes.extend_from_slice(&[b'x'; 63]);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\x1b[?2004h$ true\r\r\n\x1b[?2004l\r");
        let lines = replay_with(&bytes, true);
        assert_eq!(lines.len(), 2);
        let out = &lines[0];
        assert!(out.output.len() <= MAX_OUTPUT_BYTES);
        assert!(out.output_truncated > 0);
        // Every byte printed is kept or counted.
        assert!(out.output.len() as u64 + out.output_truncated >= 2000 * 64 - 1);
    }

    #[test]
    fn the_first_row_of_a_two_line_prompt_is_no_shell_profile() {
        // A stream: no markers; the prompt's first line comes before each prompt.
        let body =
            b"ssm-user@ip-10-0-1-23 ~\r\n$ ls\r\nnotes\r\nssm-user@ip-10-0-1-23 ~\r\n$ exit\r\n";
        let r = replayed(body, false);
        let got: Vec<(&str, bool)> = r
            .lines
            .iter()
            .map(|l| (l.command.as_str(), l.profile))
            .collect();
        assert_eq!(got, [("ls", false), ("exit", false)]);
        assert!(r.partial.is_empty(), "{:?}", r.partial);
    }

    #[test]
    fn a_profile_line_shown_before_the_first_prompt_is_marked() {
        let body = b"cd /tmp\r\n\x1b[?2004hsh-4.2$ cd /tmp\r\n\x1b[?2004l\r\x1b[?2004hsh-4.2$ id\r\n\x1b[?2004l\ruid=1001\r\n";
        let r = replayed(body, true);
        let got: Vec<(&str, bool)> = r
            .lines
            .iter()
            .map(|l| (l.command.as_str(), l.profile))
            .collect();
        assert_eq!(got, [("cd /tmp", true), ("id", false)]);
    }
}
