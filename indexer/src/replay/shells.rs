//! The stack of nested shells (`sudo su -` pushes, `exit` pops): which prompt belongs to which
//! shell, which user each runs as, and whether a line at a prompt is input at all when no
//! marker says so.

use super::*;

/// One shell in the stack of nested shells (`sudo su -` pushes, `exit` pops).
#[derive(Debug, Clone)]
pub(super) struct Level {
    pub(super) shape: Option<Shape>,
    pub(super) user: String,
    pub(super) markers: bool,
}

/// Does the command switch the terminal's echo off (`stty -echo`)?
pub(super) fn turns_echo_off(command: &str) -> bool {
    command.contains("-echo")
        && shellwords::simple_commands(command).iter().any(|w| {
            w.iter()
                .position(|x| x.rsplit('/').next() == Some("stty"))
                .is_some_and(|i| w[i + 1..].iter().any(|a| a == "-echo"))
        })
}

/// Is echo still off when the command line is done (`stty -echo` not followed by `stty echo`
/// or `stty sane` in the same line)?
pub(super) fn echo_left_off(command: &str) -> bool {
    let mut off = false;
    for w in shellwords::simple_commands(command) {
        if let Some(i) = w.iter().position(|x| x.rsplit('/').next() == Some("stty")) {
            for a in &w[i + 1..] {
                match a.as_str() {
                    "-echo" => off = true,
                    "echo" | "sane" => off = false,
                    _ => {}
                }
            }
        }
    }
    off
}

/// What a shell prints when a job it waited for died of a signal (the `strsignal`
/// descriptions bash and dash print), maybe followed by ` (core dumped)`.
const SIGNAL_NOTICES: &[&str] = &[
    "Hangup",
    "Killed",
    "Terminated",
    "Quit",
    "Aborted",
    "Segmentation fault",
    "Bus error",
    "Illegal instruction",
    "Floating point exception",
    "Alarm clock",
    "User defined signal 1",
    "User defined signal 2",
    "CPU time limit exceeded",
    "File size limit exceeded",
];

/// Prompts kept parsed.
pub(super) const PROMPTS_KEPT: usize = 32;

impl Term {
    pub(super) fn top(&self) -> &Level {
        self.levels.last().expect("the login shell is never popped")
    }

    /// Parse a prompt; sessions show the same few prompts over and over.
    pub(super) fn parse_prompt(&mut self, text: &str) -> Rc<Prompt> {
        if let Some(p) = self.prompts.iter().find(|p| p.text == text) {
            return Rc::clone(p);
        }
        let p = Rc::new(Prompt::parse(text));
        if self.prompts.len() == PROMPTS_KEPT {
            self.prompts.remove(0);
        }
        self.prompts.push(Rc::clone(&p));
        p
    }

    /// Without markers, is a line that starts like this prompt really at a prompt?
    pub(super) fn prompt_expected(&self, prompt: &Prompt) -> bool {
        let top = self.top();
        let Some(shape) = &top.shape else {
            return true;
        };
        if prompt.is_continuation() && self.last_command_incomplete() {
            return true;
        }
        match &self.pending {
            Some(Transition::Enter(_)) => &prompt.shape != shape || !top.markers,
            // Leaving the login shell ends the session; a shell inside a multiplexer that
            // exited was never on the stack: its prompt's shell goes on.
            Some(Transition::Leave) if self.levels.len() == 1 => {
                !top.markers && &prompt.shape == shape
            }
            Some(Transition::Leave) => self.levels[..self.levels.len() - 1]
                .iter()
                .any(|l| l.shape.as_ref() == Some(&prompt.shape)),
            None => !top.markers && &prompt.shape == shape,
        }
    }

    /// Did the shell at the top die of a signal while it waited at its prompt? Its parent
    /// then prints the signal's notice on that prompt's row (`[root@ip ~]# Hangup`: bash 4.2
    /// leaves no line feed) and its own prompt after it. The last line read is that notice, not
    /// a command: it is taken back, and the shell whose prompt `prompt` is goes on.
    /// The notice may also be on a row of its own, just above `prompt` (a shell that ended its
    /// prompt's row as it died): then no line is taken back.
    pub(super) fn shell_died(&mut self, prompt: &Prompt) -> bool {
        let top = self.levels.len() - 1;
        let is_notice = |text: &str| {
            let t = text.trim();
            SIGNAL_NOTICES.contains(&t.strip_suffix(" (core dumped)").unwrap_or(t))
        };
        let Some(last) = self.lines.last() else {
            return false;
        };
        let on_prompt_row = !last.abandoned && is_notice(&last.command);
        let (first, _) = self.screen.logical_line(self.screen.cursor_row());
        let own_row = first
            .checked_sub(1)
            .and_then(|r| self.screen.row(r))
            .is_some_and(|r| is_notice(&r.text()));
        if top == 0 || !(on_prompt_row || own_row) {
            return false;
        }
        let Some(to) = self.levels[..top]
            .iter()
            .rposition(|l| l.shape.as_ref() == Some(&prompt.shape))
        else {
            return false;
        };
        self.pending = None;
        self.levels.truncate(to + 1);
        if !on_prompt_row {
            return true;
        }
        let idx = self.drained + self.lines.len() - 1;
        if self.output_owner.is_some_and(|(i, _)| i == idx) {
            self.output_owner = None;
        }
        if self.expandable == Some(idx) {
            self.expandable = None;
        }
        self.lines.pop();
        self.forgeable = None;
        self.last_open = false;
        true
    }

    /// Is this prompt-like line text the previous command wrote itself (`printf '$ rm -rf /\n'`)?
    /// Each piece of the command's text can account for one such line.
    pub(super) fn printed_by_last_command(&mut self, text: &str) -> bool {
        let last = self.lines.last();
        let pieces = self.forgeable.get_or_insert_with(|| {
            last.map(|l| {
                l.command
                    .split(['\n', '\'', '"'])
                    .flat_map(|p| p.split("\\n"))
                    .map(|p| p.trim().to_string())
                    .filter(|p| p.len() > 1)
                    .collect()
            })
            .unwrap_or_default()
        });
        match pieces.iter().position(|p| p.contains(text)) {
            Some(i) => {
                pieces.remove(i);
                true
            }
            None => false,
        }
    }

    /// The last line needs more lines (worked out when the line was taken or extended).
    pub(super) fn last_command_incomplete(&self) -> bool {
        self.last_open
    }

    /// Move in the stack of shells to the one this prompt belongs to.
    pub(super) fn enter_prompt(&mut self, prompt: &Prompt, markers: bool) {
        if prompt.is_continuation() {
            return;
        }
        let top = self.levels.len() - 1;
        if self.pending.is_none() && self.levels[top].shape.as_ref() == Some(&prompt.shape) {
            // The same shell as before: nothing moves.
            self.levels[top].markers = markers;
            return;
        }
        let shape = prompt.shape.clone();
        let named = shape.user.clone();
        let pending = self.pending.take();
        let top = self.levels.len() - 1;
        if self.levels[top].shape.is_none() {
            let level = &mut self.levels[top];
            level.shape = Some(shape.clone());
            level.markers = markers;
            if let Some(u) = named {
                level.user = u;
            } else if shape.sigil == '#' {
                level.user = "root".into();
            }
            return;
        }
        let same = self.levels[top].shape.as_ref() == Some(&shape);
        match pending {
            Some(Transition::Enter(target)) if !same => {
                let user = named.unwrap_or_else(|| {
                    if shape.sigil == '#' {
                        "root".to_string()
                    } else {
                        target.unwrap_or_else(|| self.levels[top].user.clone())
                    }
                });
                self.levels.push(Level {
                    shape: Some(shape),
                    user,
                    markers,
                });
            }
            Some(Transition::Leave) if top > 0 => {
                let to = self.levels[..top]
                    .iter()
                    .rposition(|l| l.shape.as_ref() == Some(&shape))
                    .unwrap_or(top - 1);
                self.levels.truncate(to + 1);
                self.levels[to].markers = markers;
            }
            _ if !same => {
                if let Some(to) = self.levels[..top]
                    .iter()
                    .rposition(|l| l.shape.as_ref() == Some(&shape))
                {
                    self.levels.truncate(to + 1);
                } else {
                    let level = &mut self.levels[top];
                    level.shape = Some(shape.clone());
                    if let Some(u) = named {
                        level.user = u;
                    } else if shape.sigil == '#' {
                        level.user = "root".into();
                    }
                }
                let top = self.levels.len() - 1;
                self.levels[top].markers = markers;
            }
            _ => {
                self.levels[top].markers = markers;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::replay::tests::{commands, pairs, replay_with, replayed};
    #[allow(unused_imports)]
    use crate::replay::*;

    #[test]
    fn dash_without_markers_follows_sudo_and_ignores_printed_prompts() {
        let got = commands(
            b"$ lss\x08 \x08 -a\r\r\n.  ..\r\r\n$ printf '$ rm -rf /\\n# cat /etc/shadow\\n'\r\r\n$ rm -rf /\r\r\n# cat /etc/shadow\r\r\n$ sudo sh\r\r\n# id\r\r\nuid=0(root)\r\r\n# exit\r\r\n$ sleep 9^C\r\r\n$ exit\r\r\n",
        );
        assert_eq!(
            got,
            pairs(&[
                ("ssm-user", "ls -a"),
                ("ssm-user", "printf '$ rm -rf /\\n# cat /etc/shadow\\n'"),
                ("ssm-user", "sudo sh"),
                ("root", "id"),
                ("root", "exit"),
                ("ssm-user", "exit"),
            ])
        );
    }

    #[test]
    fn nested_shells_push_and_pop_with_their_users() {
        let got = commands(
            b"\x1b[?2004h[u@h ~]$ sudo -u postgres bash\r\r\n\x1b[?2004l\r\x1b[?2004hbash-5.2$ id -un\r\r\n\x1b[?2004l\rpostgres\r\r\n\x1b[?2004hbash-5.2$ exit\r\r\n\x1b[?2004l\rexit\r\r\n\x1b[?2004h[u@h ~]$ sudo su -\r\r\n\x1b[?2004l\r\x1b[?2004h[root@h ~]# whoami\r\r\n\x1b[?2004l\rroot\r\r\n\x1b[?2004h[root@h ~]# logout\r\r\n\x1b[?2004l\r\x1b[?2004h[u@h ~]$ id\r\r\n\x1b[?2004l\r",
        );
        assert_eq!(
            got,
            pairs(&[
                ("u", "sudo -u postgres bash"),
                ("postgres", "id -un"),
                ("postgres", "exit"),
                ("u", "sudo su -"),
                ("root", "whoami"),
                ("root", "logout"),
                ("u", "id"),
            ])
        );
    }

    #[test]
    fn echo_left_off_follows_the_last_stty() {
        assert!(super::echo_left_off("stty -echo"));
        assert!(!super::echo_left_off("stty -echo; read p; stty echo"));
        assert!(super::echo_left_off("stty sane && stty -echo"));
        assert!(!super::echo_left_off("echo -echo"));
    }
}
