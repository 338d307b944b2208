//! Just enough shell syntax to tell what a command line runs.
//!
//! A line is split into words (quotes and backslashes honoured) and into the simple commands of
//! its lists and pipelines (`;`, `&&`, `||`, `|`, `&`, newlines). For each simple command the
//! program is found past variable assignments and wrappers such as `sudo`, `env`, `nohup` and
//! `time`, so that `sudo -u root id` runs both `sudo` and `id`, while `grep -w sudo` runs `grep`.

/// A word or an operator of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Op(&'static str),
    /// The target of a redirection (`> FILE`, `2>>FILE`, `< FILE`).
    Redirect(String),
}

/// Split a command line into words and operators. Unterminated quotes end the line.
fn tokenize(line: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let flush = |word: &mut String, in_word: &mut bool, out: &mut Vec<Token>| {
        if *in_word {
            out.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
            }
            '\\' => {
                if i + 1 < chars.len() {
                    if chars[i + 1] != '\n' {
                        in_word = true;
                        word.push(chars[i + 1]);
                    }
                    i += 1;
                }
            }
            ' ' | '\t' => flush(&mut word, &mut in_word, &mut out),
            '#' if !in_word => break,
            '\n' | ';' | '&' | '|' | '(' | ')' | '{' | '}'
                if !(matches!(c, '{' | '}') && in_word) =>
            {
                flush(&mut word, &mut in_word, &mut out);
                let next = chars.get(i + 1).copied();
                let op = match (c, next) {
                    ('&', Some('&')) => {
                        i += 1;
                        "&&"
                    }
                    ('|', Some('|')) => {
                        i += 1;
                        "||"
                    }
                    ('&', _) => "&",
                    ('|', _) => "|",
                    (';', _) => ";",
                    ('(', _) => "(",
                    (')', _) => ")",
                    ('{', _) => "{",
                    ('}', _) => "}",
                    _ => "\n",
                };
                out.push(Token::Op(op));
            }
            '<' | '>' if !in_word || word.chars().all(|d| d.is_ascii_digit()) => {
                // A redirection: the operator goes, its target is kept apart from the words.
                word.clear();
                in_word = false;
                while i + 1 < chars.len() && matches!(chars[i + 1], '<' | '>' | '&' | '-') {
                    i += 1;
                }
                while i + 1 < chars.len() && chars[i + 1] == ' ' {
                    i += 1;
                }
                let mut target = String::new();
                while i + 1 < chars.len()
                    && !matches!(chars[i + 1], ' ' | '\t' | ';' | '|' | '&' | '\n')
                {
                    i += 1;
                    if !matches!(chars[i], '\'' | '"') {
                        target.push(chars[i]);
                    }
                }
                if !target.is_empty() {
                    out.push(Token::Redirect(target));
                }
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
        i += 1;
    }
    flush(&mut word, &mut in_word, &mut out);
    out
}

/// One simple command: its words (assignments and wrappers included) and redirection targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimpleCommand {
    /// The words, in order.
    pub words: Vec<String>,
    /// Where its input or output is redirected.
    pub redirects: Vec<String>,
}

/// The pipelines of a line (split at `;`, `&&`, `||`, `&`, newlines), each as its simple
/// commands (split at `|`).
pub fn pipelines(line: &str) -> Vec<Vec<SimpleCommand>> {
    let mut out: Vec<Vec<SimpleCommand>> = Vec::new();
    let mut pipeline: Vec<SimpleCommand> = Vec::new();
    let mut cur = SimpleCommand::default();
    let end_command = |cur: &mut SimpleCommand, pipeline: &mut Vec<SimpleCommand>| {
        if !cur.words.is_empty() || !cur.redirects.is_empty() {
            pipeline.push(std::mem::take(cur));
        }
    };
    for token in tokenize(&heredoc_free(line)) {
        match token {
            Token::Word(w) => cur.words.push(w),
            Token::Redirect(t) => cur.redirects.push(t),
            Token::Op("|") => end_command(&mut cur, &mut pipeline),
            Token::Op(_) => {
                end_command(&mut cur, &mut pipeline);
                if !pipeline.is_empty() {
                    out.push(std::mem::take(&mut pipeline));
                }
            }
        }
    }
    end_command(&mut cur, &mut pipeline);
    if !pipeline.is_empty() {
        out.push(pipeline);
    }
    out
}

/// The simple commands of a line, each as its words (redirections removed).
pub fn simple_commands(line: &str) -> Vec<Vec<String>> {
    pipelines(line)
        .into_iter()
        .flatten()
        .map(|c| c.words)
        .filter(|w| !w.is_empty())
        .collect()
}

/// The line without heredoc bodies (only the first line of a command with a heredoc is syntax).
fn heredoc_free(line: &str) -> String {
    split_heredocs(line).0
}

/// The line without heredoc bodies, and whether a heredoc it opens is still waiting for its
/// delimiter (every delimiter opened must appear alone on a later line).
fn split_heredocs(line: &str) -> (String, bool) {
    let mut out = String::new();
    let mut pending: Vec<String> = Vec::new();
    for l in line.split('\n') {
        if let Some(word) = pending.first() {
            if l.trim_start_matches('\t') == word {
                pending.remove(0);
            }
            continue;
        }
        pending.extend(heredoc_words(l));
        out.push_str(l);
        out.push('\n');
    }
    out.pop();
    (out, !pending.is_empty())
}

/// Delimiters of the heredocs opened on one line (`<<EOF`, `<<-'EOF'`, `<< "EOF"`).
fn heredoc_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = line;
    while let Some(pos) = rest.find("<<") {
        let after = &rest[pos + 2..];
        if let Some(r) = after.strip_prefix('<') {
            rest = r;
            continue;
        }
        let after = after.trim_start_matches('-').trim_start();
        let word: String = after
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, ';' | '|' | '&' | '<' | '>' | ')'))
            .filter(|c| !matches!(c, '\'' | '"' | '\\'))
            .collect();
        if !word.is_empty() {
            words.push(word);
        }
        rest = after;
    }
    words
}

/// Does a word of `b`, split at the bytes `sep` accepts, satisfy `f`? `f` sees only words of 2
/// to 6 bytes, the lengths of every name looked for here, and with `base` only what follows a
/// word's last `/`. One pass over the bytes: this runs for nearly every line the shell accepts.
fn any_word(b: &[u8], sep: impl Fn(u8) -> bool, base: bool, f: impl Fn(&[u8]) -> bool) -> bool {
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if sep(c) {
            if (2..=6).contains(&(i - start)) && f(&b[start..i]) {
                return true;
            }
            start = i + 1;
        } else if base && c == b'/' {
            start = i + 1;
        }
    }
    (2..=6).contains(&(b.len() - start)) && f(&b[start..])
}

/// What one pass over a line's words found: which of the slower questions about it are worth
/// asking. A word here is 2 to 6 bytes between blanks, operators or quotes, after any path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    /// A word that opens a compound command (`if`, `for`, …).
    pub opener: bool,
    /// A word that may change the shell (`sudo`, `su`, `exit`, a shell's name, …).
    pub shell: bool,
    /// A terminal multiplexer's name.
    pub multiplexer: bool,
    /// A word that switches the editing mode (`vi`, `emacs`, `-v`, `-e`).
    pub editing: bool,
    /// A byte that can leave a line open: a quote, `\\`, `|`, `&`, `<`.
    pub syntax: bool,
    /// `!` or `^`: a history expansion may be in it.
    pub bang: bool,
    /// A word that begins `PS1=`.
    pub prompt: bool,
    /// `stty`.
    pub stty: bool,
}

/// A word of at most 7 bytes as one number (its bytes, and its length on top).
const fn word_key(w: &[u8]) -> u64 {
    let mut k = 0u64;
    let mut i = 0;
    while i < w.len() && i < 7 {
        k |= (w[i] as u64) << (8 * i);
        i += 1;
    }
    k | ((w.len() as u64) << 56)
}

/// Byte classes for [`scan`].
const BREAK: u8 = 1;
const SLASH: u8 = 2;
const SYNTAX: u8 = 4;
const BANG: u8 = 8;

const fn byte_classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let breaks = b" \t\n\r\x0b\x0c;|&()'\"`";
    let mut i = 0;
    while i < breaks.len() {
        t[breaks[i] as usize] |= BREAK;
        i += 1;
    }
    let syntax = b"\\|&<'\"";
    let mut i = 0;
    while i < syntax.len() {
        t[syntax[i] as usize] |= SYNTAX;
        i += 1;
    }
    t[b'/' as usize] |= SLASH;
    t[b'!' as usize] |= BANG;
    t[b'^' as usize] |= BANG;
    t
}

static BYTE_CLASSES: [u8; 256] = byte_classes();

/// Scan a line once (see [`Scan`]): every line the shell accepts is asked all of these
/// questions, and most of them are answered here.
pub fn scan(line: &str) -> Scan {
    let mut found = Scan::default();
    let mut classify = |w: &[u8]| {
        if w.first() == Some(&b'P') && w.starts_with(b"PS1=") {
            found.prompt = true;
        }
        if !(2..=6).contains(&w.len()) {
            return;
        }
        const IF: u64 = word_key(b"if");
        const FOR: u64 = word_key(b"for");
        const WHILE: u64 = word_key(b"while");
        const UNTIL: u64 = word_key(b"until");
        const CASE: u64 = word_key(b"case");
        const SELECT: u64 = word_key(b"select");
        const EXIT: u64 = word_key(b"exit");
        const LOGOUT: u64 = word_key(b"logout");
        const SUDO: u64 = word_key(b"sudo");
        const DOAS: u64 = word_key(b"doas");
        const SU: u64 = word_key(b"su");
        const EXEC: u64 = word_key(b"exec");
        const BASH: u64 = word_key(b"bash");
        const SH: u64 = word_key(b"sh");
        const DASH: u64 = word_key(b"dash");
        const ZSH: u64 = word_key(b"zsh");
        const KSH: u64 = word_key(b"ksh");
        const FISH: u64 = word_key(b"fish");
        const CSH: u64 = word_key(b"csh");
        const TCSH: u64 = word_key(b"tcsh");
        const ASH: u64 = word_key(b"ash");
        const TMUX: u64 = word_key(b"tmux");
        const SCREEN: u64 = word_key(b"screen");
        const BYOBU: u64 = word_key(b"byobu");
        const TMATE: u64 = word_key(b"tmate");
        const ZELLIJ: u64 = word_key(b"zellij");
        const DTACH: u64 = word_key(b"dtach");
        const ABDUCO: u64 = word_key(b"abduco");
        const VI: u64 = word_key(b"vi");
        const EMACS: u64 = word_key(b"emacs");
        const DASH_V: u64 = word_key(b"-v");
        const DASH_E: u64 = word_key(b"-e");
        const STTY: u64 = word_key(b"stty");
        match word_key(w) {
            IF | FOR | WHILE | UNTIL | CASE | SELECT => found.opener = true,
            EXIT | LOGOUT | SUDO | DOAS | SU | EXEC | BASH | SH | DASH | ZSH | KSH | FISH | CSH
            | TCSH | ASH => found.shell = true,
            TMUX | SCREEN | BYOBU | TMATE | ZELLIJ | DTACH | ABDUCO => found.multiplexer = true,
            VI | EMACS | DASH_V | DASH_E => found.editing = true,
            STTY => found.stty = true,
            _ => {}
        }
    };
    let b = line.as_bytes();
    let mut start = 0;
    let mut syntax = 0u8;
    for (i, &c) in b.iter().enumerate() {
        let class = BYTE_CLASSES[usize::from(c)];
        if class == 0 {
            continue;
        }
        syntax |= class;
        if class & BREAK != 0 {
            classify(&b[start..i]);
            start = i + 1;
        } else if class & SLASH != 0 {
            start = i + 1;
        }
    }
    classify(&b[start..]);
    found.syntax = syntax & SYNTAX != 0;
    found.bang = syntax & BANG != 0;
    found
}

/// Does this word open a compound command (it continues until its closing word)?
fn is_opener(w: &[u8]) -> bool {
    matches!(
        w,
        b"if" | b"for" | b"while" | b"until" | b"case" | b"select"
    )
}

/// Does the line need more lines (a trailing backslash or operator, an open quote, a heredoc)?
pub fn is_incomplete(line: &str) -> bool {
    is_incomplete_scanned(line, scan(line))
}

/// [`is_incomplete`] of a line already scanned.
pub fn is_incomplete_scanned(line: &str, scanned: Scan) -> bool {
    // Most lines have nothing that could leave them open.
    if !scanned.syntax && !scanned.opener {
        return false;
    }
    let trimmed = line.trim_end();
    if trimmed.ends_with('\\') && !trimmed.ends_with("\\\\") {
        return true;
    }
    if trimmed.ends_with("&&") || trimmed.ends_with("||") || trimmed.ends_with('|') {
        return true;
    }
    // Heredoc bodies are not syntax; an open heredoc needs more lines.
    let free = if line.as_bytes().windows(2).any(|w| w == b"<<") {
        let (free, open) = split_heredocs(line);
        if open {
            return true;
        }
        Some(free)
    } else {
        None
    };
    // Open compound commands: `for …` waits for `done`, `if` for `fi`, `case` for `esac`.
    let opener = any_word(
        line.as_bytes(),
        |b| b.is_ascii_whitespace() || matches!(b, b';' | b'|' | b'&' | b'('),
        false,
        is_opener,
    );
    let mut depth = 0i32;
    for words in if opener {
        simple_commands(line)
    } else {
        Vec::new()
    } {
        match words.first().map(String::as_str) {
            Some("if" | "for" | "while" | "until" | "case" | "select") => depth += 1,
            Some("fi" | "done" | "esac") => depth -= 1,
            _ => {}
        }
        if words
            .last()
            .is_some_and(|w| matches!(w.as_str(), "fi" | "done" | "esac"))
            && words.len() > 1
        {
            depth -= 1;
        }
    }
    if depth > 0 {
        return true;
    }
    // Open quotes (the bytes that matter are ASCII: UTF-8 never hides one inside a character).
    let mut single = false;
    let mut double = false;
    let syntax = free.as_deref().unwrap_or(line).as_bytes();
    let mut bytes = syntax.iter();
    while let Some(&c) = bytes.next() {
        match c {
            b'\\' if !single => {
                bytes.next();
            }
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            _ => {}
        }
    }
    single || double
}

/// Wrappers that run the program given in their arguments.
const WRAPPERS: &[&str] = &[
    "sudo",
    "doas",
    "env",
    "nohup",
    "time",
    "nice",
    "ionice",
    "stdbuf",
    "timeout",
    "exec",
    "command",
    "builtin",
    "xargs",
    "watch",
    "strace",
    "ltrace",
    "chroot",
    "runuser",
    "setsid",
    "unbuffer",
    "caffeinate",
    "flock",
];

/// Options of `sudo` that take a value.
const SUDO_VALUE_OPTS: &[&str] = &[
    "-u",
    "-g",
    "-C",
    "-D",
    "-h",
    "-p",
    "-r",
    "-t",
    "-T",
    "-U",
    "--user",
    "--group",
    "--chdir",
    "--prompt",
    "--role",
    "--type",
    "--other-user",
    "--host",
    "--close-from",
];

/// The programs a line runs, in order: each simple command's program, and what wrappers run.
pub fn programs(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    each_program(line, &mut |p| out.push(p.to_string()));
    out
}

/// [`programs`], each handed to `f` instead of collected (this runs for every command indexed).
pub fn each_program(line: &str, f: &mut dyn FnMut(&str)) {
    if is_plain(line) {
        // One buffer of words for every command of the line: this runs for every command.
        let mut words: Vec<&str> = Vec::new();
        for part in plain_parts(line) {
            words.clear();
            words.extend(part);
            each_program_of(&words, f);
        }
        return;
    }
    for words in simple_commands(line) {
        each_program_of(&words, f);
    }
}

/// A word a command's program follows (`if cmd`, `! cmd`, `while cmd`).
fn is_keyword(name: &str) -> bool {
    matches!(
        name,
        "!" | "if" | "then" | "else" | "elif" | "do" | "while" | "until"
    )
}

/// The programs one simple command runs: its program and, past wrappers, theirs.
pub fn programs_of<S: AsRef<str>>(words: &[S]) -> Vec<String> {
    let mut out = Vec::new();
    each_program_of(words, &mut |p| out.push(p.to_string()));
    out
}

/// [`programs_of`], each handed to `f`.
fn each_program_of<S: AsRef<str>>(words: &[S], f: &mut dyn FnMut(&str)) {
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_ref();
        if is_assignment(w) {
            i += 1;
            continue;
        }
        let name = basename(w);
        if is_keyword(name) {
            i += 1;
            continue;
        }
        f(name);
        if !WRAPPERS.contains(&name) {
            break;
        }
        i += 1;
        // Skip the wrapper's own options (and the values of those that take one).
        while i < words.len() {
            let o = words[i].as_ref();
            if o == "--" {
                i += 1;
                break;
            }
            if !o.starts_with('-') || o == "-" {
                if name == "timeout" && o.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    i += 1;
                    continue;
                }
                if matches!(name, "nice" | "ionice" | "flock") && i + 1 < words.len() {
                    // `flock FILE cmd`, `nice cmd`: the first plain word may be an argument.
                    if name == "flock" {
                        i += 1;
                        continue;
                    }
                }
                break;
            }
            let takes_value = match name {
                "sudo" => SUDO_VALUE_OPTS.contains(&o),
                "nice" | "ionice" => matches!(o, "-n" | "-c"),
                "timeout" => matches!(o, "-s" | "-k" | "--signal" | "--kill-after"),
                "runuser" | "xargs" => {
                    matches!(o, "-u" | "-g" | "-I" | "-n" | "-P" | "-d" | "-L")
                }
                "stdbuf" => false,
                "env" => matches!(o, "-u" | "-C" | "-S"),
                _ => false,
            };
            i += if takes_value { 2 } else { 1 };
        }
        // `sudo -s`/`sudo -i` with no command run a shell; that shell is a program too.
    }
}

/// The prompt a line sets, when it assigns `PS1` (alone, or exported) a literal that shows as
/// itself: no backslash escape, no expansion.
pub fn prompt_set(line: &str) -> Option<String> {
    prompt_set_scanned(line, scan(line))
}

/// [`prompt_set`] of a line already scanned.
pub fn prompt_set_scanned(line: &str, scanned: Scan) -> Option<String> {
    if !scanned.prompt {
        return None;
    }
    let commands = simple_commands(line);
    let words = commands.last()?;
    let assignment = match words.as_slice() {
        [one] => one,
        [export, one] if export == "export" => one,
        _ => return None,
    };
    let value = assignment.strip_prefix("PS1=")?;
    // The words are unquoted: a value that held `\` or `$` may show as something else.
    let raw = line.rsplit("PS1=").next()?;
    (!value.is_empty() && !raw.contains(['\\', '$', '`'])).then(|| value.to_string())
}

/// Where bash's history expansion begins in a line as typed: at a `^` that starts it (`^old^new`),
/// or at the first `!` that is not quoted, escaped, or followed by a blank, `=`, `(` or the
/// end. bash then prints the line it made before running it.
pub fn history_expansion(line: &str) -> Option<usize> {
    // Lines with neither sign are most: one pass finds that.
    memchr::memchr2(b'!', b'^', line.as_bytes())?;
    if line.starts_with('^') && line[1..].contains('^') {
        return Some(0);
    }
    let b = line.as_bytes();
    let (mut single, mut i) = (false, 0);
    while i < b.len() {
        match b[i] {
            b'\\' if !single => i += 1,
            b'\'' => single = !single,
            b'!' if !single
                && !matches!(
                    b.get(i + 1),
                    None | Some(b' ' | b'\t' | b'\n' | b'=' | b'(' | b'"')
                ) =>
            {
                return Some(i)
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Is `printed` what bash could have printed for `typed` after history expansion: what was
/// typed before the expansion begins, then the rest; for `^old^new`, a line holding `new`.
pub fn expanded_from(typed: &str, printed: &str) -> bool {
    let Some(at) = history_expansion(typed) else {
        return false;
    };
    if printed.trim().is_empty() || printed == typed || printed.contains('\n') {
        return false;
    }
    if at == 0 && typed.starts_with('^') {
        let new = typed[1..].split('^').nth(1).unwrap_or("");
        return printed.contains(new);
    }
    printed.starts_with(&typed[..at])
}

/// Terminal multiplexers: what runs inside them draws on a full screen of their own.
const MULTIPLEXERS: &[&str] = &[
    "tmux", "screen", "byobu", "tmate", "zellij", "dtach", "abduco",
];

/// The terminal multiplexer this line starts or attaches to, if it runs one (past wrappers:
/// `sudo screen -r`, `exec tmux a`): its name. Listing, killing and version subcommands run
/// none.
pub fn multiplexer(line: &str) -> Option<&'static str> {
    multiplexer_scanned(line, scan(line))
}

/// [`multiplexer`] of a line already scanned.
pub fn multiplexer_scanned(line: &str, scanned: Scan) -> Option<&'static str> {
    if !scanned.multiplexer {
        return None;
    }
    simple_commands(line).iter().find_map(|words| {
        let programs = programs_of(words);
        let name = MULTIPLEXERS
            .iter()
            .copied()
            .find(|m| programs.iter().any(|p| p == m))?;
        let at = words.iter().position(|w| basename(w) == name)?;
        let args: Vec<&str> = words[at + 1..].iter().map(String::as_str).collect();
        let first = args.iter().find(|a| !a.starts_with('-')).copied();
        let lists = match name {
            "screen" => args.iter().any(|a| {
                matches!(
                    *a,
                    "-ls" | "-list" | "-v" | "-version" | "-X" | "-Q" | "-wipe"
                ) || (a.starts_with("-d") || a.starts_with("-D")) && a.contains('m')
            }),
            _ => {
                args.iter()
                    .any(|a| matches!(*a, "-V" | "--version" | "-h" | "--help"))
                    || first.is_some_and(|f| {
                        f == "ls"
                            || f.starts_with("list")
                            || f.starts_with("kill")
                            || f.starts_with("has")
                            || f.starts_with("show")
                            || f.starts_with("display")
                            || f.starts_with("send")
                            || f.starts_with("source")
                            || f == "info"
                    })
            }
        };
        (!lists).then_some(name)
    })
}

fn is_assignment(w: &str) -> bool {
    match w.find('=') {
        Some(0) | None => false,
        Some(p) => {
            w[..p]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !w[..p].starts_with(|c: char| c.is_ascii_digit())
        }
    }
}

fn basename(w: &str) -> &str {
    w.rsplit('/').next().unwrap_or(w)
}

/// Is this program name a shell's? A match (a jump on the length, then a compare), not a scan
/// of a list.
fn is_shell(name: &[u8]) -> bool {
    matches!(
        name,
        b"bash" | b"sh" | b"dash" | b"zsh" | b"ksh" | b"fish" | b"csh" | b"tcsh" | b"ash"
    )
}

/// What a line does to the shell stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// It starts an interactive shell as this user (`None`: the same user).
    Enter(Option<String>),
    /// It leaves the current shell.
    Leave,
}

/// Does the line switch the shell's line editing to vi mode (`set -o vi`, `bindkey -v`,
/// `bind 'set editing-mode vi'`), `Some(true)`, or back to emacs mode, `Some(false)`?
pub fn vi_mode(line: &str) -> Option<bool> {
    vi_mode_scanned(line, scan(line))
}

/// [`vi_mode`] of a line already scanned.
pub fn vi_mode_scanned(line: &str, scanned: Scan) -> Option<bool> {
    if !scanned.editing {
        return None;
    }
    let mut mode = None;
    for w in simple_commands(line) {
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["set", "-o", "vi", ..] | ["bindkey", "-v", ..] => mode = Some(true),
            ["set", "-o", "emacs", ..] | ["bindkey", "-e", ..] => mode = Some(false),
            ["bind", arg, ..] if arg.contains("editing-mode") => {
                mode = Some(arg.trim_end().ends_with("vi"));
            }
            _ => {}
        }
    }
    mode
}

/// Does this line start a nested interactive shell (`sudo su -`, `sudo -i`, `bash`) or leave one?
pub fn transition(line: &str) -> Option<Transition> {
    transition_scanned(line, scan(line))
}

/// [`transition`] of a line already scanned.
pub fn transition_scanned(line: &str, scanned: Scan) -> Option<Transition> {
    // Only lines that name one of these can change the shell.
    if !scanned.shell {
        return None;
    }
    match plain_last_command(line) {
        Some(words) => transition_of(&words),
        None => transition_of(simple_commands(line).last()?),
    }
}

/// The words of a line's last simple command, when the line has no quoting, grouping,
/// redirection or comment: then operators and blanks alone separate them, as the tokenizer
/// would.
fn plain_last_command(line: &str) -> Option<Vec<&str>> {
    if !is_plain(line) {
        return None;
    }
    let last = line
        .rsplit([';', '&', '|', '\n'])
        .find(|part| !part.trim_matches([' ', '\t']).is_empty())?;
    Some(last.split([' ', '\t']).filter(|w| !w.is_empty()).collect())
}

/// No quoting, grouping, redirection or comment in the line.
fn is_plain(line: &str) -> bool {
    !line.as_bytes().iter().any(|b| {
        matches!(
            b,
            b'\'' | b'"' | b'\\' | b'#' | b'(' | b')' | b'{' | b'}' | b'<' | b'>'
        )
    })
}

/// The parts of a plain line between separators, each as its words (some parts have none).
fn plain_parts(line: &str) -> impl Iterator<Item = impl Iterator<Item = &str>> {
    line.split([';', '&', '|', '\n'])
        .map(|part| part.split([' ', '\t']).filter(|w| !w.is_empty()))
}

/// Every simple command of a plain line (see [`plain_last_command`]), as words.
#[cfg(test)]
fn plain_simple_commands(line: &str) -> Option<Vec<Vec<&str>>> {
    if !is_plain(line) {
        return None;
    }
    Some(
        plain_parts(line)
            .map(Iterator::collect::<Vec<_>>)
            .filter(|w| !w.is_empty())
            .collect(),
    )
}

/// What the last simple command of a line, as words, does to the shell stack.
fn transition_of<S: AsRef<str>>(words: &[S]) -> Option<Transition> {
    let mut i = 0;
    while i < words.len() && (is_assignment(words[i].as_ref()) || words[i].as_ref() == "exec") {
        i += 1;
    }
    let words = &words[i..];
    let first = basename(words.first()?.as_ref());
    match first {
        "exit" | "logout" => Some(Transition::Leave),
        "sudo" | "doas" => {
            let mut user: Option<String> = None;
            let mut shell = false;
            let mut j = 1;
            while j < words.len() {
                let o = words[j].as_ref();
                if o == "--" {
                    j += 1;
                    break;
                }
                if !o.starts_with('-') {
                    break;
                }
                if o == "-u" || o == "--user" {
                    user = words.get(j + 1).map(|u| u.as_ref().to_string());
                    j += 2;
                    continue;
                }
                if let Some(u) = o.strip_prefix("--user=") {
                    user = Some(u.to_string());
                } else if o == "--login" || o == "--shell" {
                    shell = true;
                } else if !o.starts_with("--") {
                    // Bundled short options: -i, -s, -iu USER, -u USER.
                    let flags: Vec<char> = o[1..].chars().collect();
                    for (k, f) in flags.iter().enumerate() {
                        match f {
                            'i' | 's' => shell = true,
                            'u' => {
                                let rest: String = flags[k + 1..].iter().collect();
                                if rest.is_empty() {
                                    user = words.get(j + 1).map(|u| u.as_ref().to_string());
                                    j += 1;
                                } else {
                                    user = Some(rest);
                                }
                                break;
                            }
                            _ => {}
                        }
                    }
                } else if SUDO_VALUE_OPTS.contains(&o) {
                    j += 1;
                }
                j += 1;
            }
            let rest = &words[j.min(words.len())..];
            let target = user.unwrap_or_else(|| "root".to_string());
            if rest.is_empty() {
                return shell.then_some(Transition::Enter(Some(target)));
            }
            let prog = basename(rest[0].as_ref());
            if prog == "su" {
                return su_target(&rest[1..]).map(|u| Transition::Enter(Some(u)));
            }
            if is_shell(prog.as_bytes()) && shell_is_interactive(&rest[1..]) {
                return Some(Transition::Enter(Some(target)));
            }
            None
        }
        "su" => su_target(&words[1..]).map(|u| Transition::Enter(Some(u))),
        p if is_shell(p.as_bytes()) && shell_is_interactive(&words[1..]) => {
            Some(Transition::Enter(None))
        }
        _ => None,
    }
}

/// A shell started with these arguments reads commands from the terminal.
fn shell_is_interactive<S: AsRef<str>>(args: &[S]) -> bool {
    args.iter().all(|a| {
        matches!(
            a.as_ref(),
            "-l" | "-i" | "--login" | "-il" | "-li" | "-" | "--norc" | "--noprofile"
        )
    })
}

/// The user `su ARGS` becomes, unless it runs a single command (`-c`).
fn su_target<S: AsRef<str>>(args: &[S]) -> Option<String> {
    let mut user = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_ref();
        match a {
            "-c" | "--command" | "--session-command" => return None,
            "-s" | "--shell" | "-g" | "--group" | "-G" | "--supp-group" => i += 1,
            "-" | "-l" | "--login" | "-m" | "-p" | "--preserve-environment" => {}
            _ if a.starts_with('-') => {}
            _ => {
                if user.is_none() {
                    user = Some(a.to_string());
                }
            }
        }
        i += 1;
    }
    Some(user.unwrap_or_else(|| "root".to_string()))
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn one_scan_finds_the_words_each_question_needs() {
        let s = scan("sudo /usr/bin/tmux attach");
        assert!(s.shell && s.multiplexer && !s.opener && !s.editing && !s.syntax);
        let s = scan("for f in *.log; do gzip \"$f\"");
        assert!(s.opener && s.syntax && !s.shell);
        assert!(scan("set -o vi").editing);
        assert!(scan("(bash)").shell);
        assert!(scan("echo a\\").syntax);
        assert!(scan("cat <x").syntax);
        // Longer words, and names inside other words, are not names.
        assert_eq!(scan("sudoedit bashful tmuxinator"), Scan::default());
        assert!(!scan("ls -la /tmp").shell);
        assert!(scan("sudo !!").bang && scan("^a^b").bang && !scan("ls").bang);
        assert!(scan("export PS1='> '").prompt && !scan("echo $PS1").prompt);
        assert!(scan("stty -echo").stty);
    }
}

#[cfg(test)]
mod vi_tests {
    #[test]
    fn vi_mode_is_told_from_the_commands_that_set_it() {
        assert_eq!(super::vi_mode("set -o vi"), Some(true));
        assert_eq!(super::vi_mode("bind 'set editing-mode vi'"), Some(true));
        assert_eq!(super::vi_mode("set -o vi; set -o emacs"), Some(false));
        assert_eq!(super::vi_mode("vim set.txt"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_prompts_are_read_from_assignments() {
        assert_eq!(prompt_set("PS1='>> '").as_deref(), Some(">> "));
        assert_eq!(prompt_set("export PS1=\"ops> \"").as_deref(), Some("ops> "));
        assert_eq!(prompt_set("PS1='\\u@\\h \\$ '"), None);
        assert_eq!(prompt_set("PS1=\"$PS1> \""), None);
        assert_eq!(prompt_set("echo PS1=x"), None);
    }

    #[test]
    fn history_expansions_are_found_where_bash_makes_them() {
        for (line, at) in [
            ("!!", Some(0)),
            ("sudo !!", Some(5)),
            ("ls -d !$", Some(6)),
            ("^three^/tmp", Some(0)),
            ("!ec", Some(0)),
            ("echo hi!", None),
            ("echo '!!'", None),
            ("echo \\!!", None),
            ("[ ! -f x ]", None),
            ("x=!(a)", None),
        ] {
            assert_eq!(history_expansion(line), at, "{line}");
        }
        assert!(expanded_from("sudo !!", "sudo su -"));
        assert!(expanded_from("^three^/tmp", "ls -d /tmp"));
        assert!(!expanded_from("sudo !!", "sudo: a password is required"));
        assert!(!expanded_from("ls -d !$", "three"));
        assert!(!expanded_from("echo hi", "echo hi"));
    }

    #[test]
    fn multiplexers_are_told_from_their_listings() {
        for (line, want) in [
            ("tmux", Some("tmux")),
            ("tmux new -s work", Some("tmux")),
            ("sudo screen -r", Some("screen")),
            ("exec tmux a", Some("tmux")),
            ("cd /srv && byobu", Some("byobu")),
            ("tmux ls", None),
            ("tmux list-sessions", None),
            ("tmux kill-server", None),
            ("screen -ls", None),
            ("screen -dmS job ./run.sh", None),
            ("tmux -V", None),
            ("grep tmux /etc/shells", None),
            ("man screen", None),
        ] {
            assert_eq!(multiplexer(line), want, "{line}");
        }
    }

    #[test]
    fn plain_lines_split_as_the_tokenizer_splits_them() {
        for line in [
            "sudo su -",
            "cd /tmp && sudo -iu deploy",
            "ls | grep x; exit",
            "a=1\tb=2  exec   bash -l",
            "sudo -u root bash ;  ",
            "x & y",
            "echo done || logout",
            "for f in *; do su - $f; done",
        ] {
            let plain = plain_last_command(line).expect(line);
            let words = simple_commands(line).last().cloned().unwrap_or_default();
            assert_eq!(plain, words, "{line}");
            assert_eq!(
                plain_simple_commands(line).expect(line),
                simple_commands(line),
                "{line}"
            );
            assert_eq!(transition_of(&plain), transition_of(&words), "{line}");
        }
        for line in ["echo 'a;b'", "sudo -s # root", "(su)", "cat <<EOF", "a\\;b"] {
            assert_eq!(plain_last_command(line), None, "{line}");
        }
    }

    #[test]
    fn programs_of_pipelines_lists_and_wrappers() {
        let cases: &[(&str, &[&str])] = &[
            ("sudo id", &["sudo", "id"]),
            ("grep -w sudo /etc/group", &["grep"]),
            ("echo 'sudo rm' | sudo tee /x", &["echo", "sudo", "tee"]),
            ("sudo -u root id", &["sudo", "id"]),
            ("FOO=1 /usr/bin/sudo -E make install", &["sudo", "make"]),
            ("ls -l /etc 2>/dev/null | head", &["ls", "head"]),
            ("sh /tmp/p.sh && \\\nrm /tmp/p.sh", &["sh", "rm"]),
            ("cat > /tmp/x <<EOF\nsudo reboot\nEOF", &["cat"]),
            (
                "timeout 5 nice -n 5 sudo su -",
                &["timeout", "nice", "sudo", "su"],
            ),
            ("echo \"a; sudo b\"; true", &["echo", "true"]),
            ("curl -s http://x | sh", &["curl", "sh"]),
        ];
        for (line, want) in cases {
            assert_eq!(programs(line), *want, "{line}");
        }
    }

    #[test]
    fn words_of_two_to_six_bytes_are_checked() {
        let ws = |b: u8| b == b' ' || b == b';';
        let is_su = |w: &[u8]| w == b"su";
        let cases: [(&str, bool, bool); 9] = [
            ("su", false, true),
            ("ls; su -", false, true),
            ("/bin/su", false, false),
            ("/bin/su", true, true),
            ("sudo", true, false),
            ("", false, false),
            ("x ", false, false),
            ("a/su/b", true, false),
            ("echo su", true, true),
        ];
        for (line, base, want) in cases {
            assert_eq!(any_word(line.as_bytes(), ws, base, is_su), want, "{line:?}");
        }
        // Longer and shorter words are never handed over.
        assert!(!any_word(b"a logouts", ws, false, |_| true));
        assert!(any_word(b"a logout", ws, false, |w| w == b"logout"));
    }

    #[test]
    fn transitions() {
        let root = Some(Transition::Enter(Some("root".into())));
        for l in [
            "sudo su -",
            "sudo su",
            "sudo -i",
            "sudo -s",
            "sudo sh",
            "sudo bash -l",
            "su -",
            "exec sudo -i",
        ] {
            assert_eq!(transition(l), root, "{l}");
        }
        assert_eq!(
            transition("sudo -u postgres -i"),
            Some(Transition::Enter(Some("postgres".into())))
        );
        assert_eq!(
            transition("sudo -iu app"),
            Some(Transition::Enter(Some("app".into())))
        );
        assert_eq!(
            transition("sudo su - app"),
            Some(Transition::Enter(Some("app".into())))
        );
        assert_eq!(transition("bash"), Some(Transition::Enter(None)));
        assert_eq!(transition("exit"), Some(Transition::Leave));
        assert_eq!(transition("logout"), Some(Transition::Leave));
        for l in [
            "sudo -u root id",
            "sudo sh /tmp/x.sh",
            "su -c id",
            "sudo ls",
            "bash x.sh",
            "echo sudo -i",
        ] {
            assert_eq!(transition(l), None, "{l}");
        }
    }

    #[test]
    fn incomplete_lines() {
        for l in [
            "sh a && \\",
            "cat <<EOF",
            "cat <<EOF\nx",
            "echo 'abc",
            "ls |",
            "a &&",
            "for i in 1 2",
            "for i in 1 2\ndo echo $i",
            "if true",
        ] {
            assert!(is_incomplete(l), "{l}");
        }
        for l in [
            "ls",
            "cat <<EOF\nx\nEOF",
            "echo 'a b'",
            "echo \"it's\"",
            "sh a && \\\nrm b",
            "for i in 1 2; do echo $i; done",
            "for i in 1 2\ndo echo $i\ndone",
            "if true; then id; fi",
            "echo done",
        ] {
            assert!(!is_incomplete(l), "{l}");
        }
    }
}
