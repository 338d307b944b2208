//! How answers look to people: the time zone times are shown in, the width tables fit, and
//! whether there is colour. Machine formats (JSON, CSV) keep the stored UTC times and carry no
//! colour; only what is meant to be read is shaped here.

use anyhow::{Context, Result};
use comfy_table::{Cell, Color, ContentArrangement, Table};
use jiff::tz::TimeZone;
use std::io::IsTerminal;

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// When standard output is a terminal, `NO_COLOR` is not set and `TERM` is not `dumb`
    /// (`CLICOLOR_FORCE` forces it)
    Auto,
    /// Always
    Always,
    /// Never
    Never,
}

/// The display settings of one run.
#[derive(Debug, Clone)]
pub struct Look {
    /// The zone times are shown in.
    pub tz: TimeZone,
    /// The zone's name, as given (`Asia/Seoul`, `UTC`).
    pub tz_name: String,
    /// The width tables fit into; `None`: as wide as their rows (a pipe, no `COLUMNS`).
    pub width: Option<u16>,
    /// Colour on.
    pub colour: bool,
}

impl Default for Look {
    fn default() -> Self {
        Look {
            tz: TimeZone::UTC,
            tz_name: "UTC".into(),
            width: None,
            colour: false,
        }
    }
}

impl Look {
    /// The look of this run: `--tz` (else `TZ`, else the system's zone, else UTC), the
    /// terminal's width (else `COLUMNS`), and `--color`.
    pub fn of(tz: Option<&str>, color: ColorWhen) -> Result<Look> {
        let (tz, tz_name) = zone(tz)?;
        let stdout = std::io::stdout();
        let terminal = stdout.is_terminal();
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|c| *c >= 20);
        let width = if terminal {
            terminal_size::terminal_size_of(&stdout)
                .map(|(w, _)| w.0)
                .filter(|w| *w >= 20)
                .or(columns)
                .or(Some(80))
        } else {
            columns
        };
        let colour = match color {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                anstream::AutoStream::choice(&stdout) != anstream::ColorChoice::Never
            }
        };
        Ok(Look {
            tz,
            tz_name,
            width,
            colour,
        })
    }

    /// A time from a source, shown in the zone: `2026-02-10T10:02:03+09:00` (`…Z` in UTC).
    /// What is not an RFC 3339 time is shown escaped and flagged (see [`escape::time`]).
    pub fn time(&self, s: &str) -> String {
        match s.parse::<jiff::Timestamp>() {
            Ok(t) => self.instant(t),
            Err(_) => escape::time(s),
        }
    }

    /// A time, or `-` when there is none.
    pub fn time_or_dash(&self, s: &Option<String>) -> String {
        s.as_deref().map_or_else(|| "-".into(), |t| self.time(t))
    }

    /// An instant in the zone.
    pub fn instant(&self, t: jiff::Timestamp) -> String {
        let zoned = t.to_zoned(self.tz.clone());
        let text = zoned.strftime("%Y-%m-%dT%H:%M:%S%.f%:z").to_string();
        if self.is_utc() {
            text.strip_suffix("+00:00")
                .map_or(text.clone(), |head| format!("{head}Z"))
        } else {
            text
        }
    }

    /// Is the zone UTC (so times are written with `Z`)?
    pub fn is_utc(&self) -> bool {
        self.tz == TimeZone::UTC || matches!(self.tz_name.as_str(), "UTC" | "Etc/UTC" | "Z")
    }

    /// A style when colour is on: `text` wrapped in it; else `text`.
    pub fn paint(&self, style: anstyle::Style, text: &str) -> String {
        if self.colour {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    /// A table of already-escaped cells, fitted to the width (the widest columns wrapped),
    /// display widths from Unicode; the last line ends with a newline.
    pub fn table(&self, header: &[&str], rows: Vec<Vec<Styled>>) -> String {
        let mut t = Table::new();
        t.load_style(comfy_table::presets::NOTHING);
        t.force_no_tty();
        t.style_text_only();
        if self.colour {
            t.enforce_styling();
        }
        match self.width {
            Some(w) => {
                t.set_width(w);
                t.set_content_arrangement(ContentArrangement::Dynamic);
            }
            None => {
                t.set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        t.set_header(header.iter().map(|h| {
            let c = Cell::new(h);
            if self.colour {
                c.add_attribute(comfy_table::Attribute::Bold)
            } else {
                c
            }
        }));
        for row in rows {
            t.add_row(row.into_iter().map(|s| {
                let c = Cell::new(s.text);
                match (self.colour, s.tone) {
                    (true, Tone::Alert) => {
                        c.fg(Color::Red).add_attribute(comfy_table::Attribute::Bold)
                    }
                    (true, Tone::Warn) => c.fg(Color::Yellow),
                    _ => c,
                }
            }));
        }
        let last = header.len().saturating_sub(1);
        for (i, col) in t.column_iter_mut().enumerate() {
            col.set_padding((0, if i == last { 0 } else { 2 }));
        }
        let mut out = String::new();
        for line in t.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// How a cell stands out, when colour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    /// As it is.
    #[default]
    Plain,
    /// What an auditor must look at: suspicious, conflict, no MFA.
    Alert,
    /// What deserves a look: privileged, abandoned, partial.
    Warn,
}

impl Tone {
    /// `Alert` when something must be looked at, else `Warn` when something deserves a look,
    /// else `Plain`.
    pub fn of(alert: bool, look: bool) -> Tone {
        if alert {
            Tone::Alert
        } else if look {
            Tone::Warn
        } else {
            Tone::Plain
        }
    }
}

/// A table cell: text already escaped, and its tone.
#[derive(Debug, Clone, Default)]
pub struct Styled {
    pub text: String,
    pub tone: Tone,
}

impl From<String> for Styled {
    fn from(text: String) -> Self {
        Styled {
            text,
            tone: Tone::Plain,
        }
    }
}

impl Styled {
    /// A cell with a tone.
    pub fn toned(text: String, tone: Tone) -> Self {
        Styled { text, tone }
    }
}

/// The zone asked for: `--tz`, else `TZ`, else the system's, else UTC.
fn zone(given: Option<&str>) -> Result<(TimeZone, String)> {
    if let Some(name) = given {
        let name = name.trim();
        let tz = if matches!(name, "UTC" | "utc" | "Z" | "z") {
            TimeZone::UTC
        } else {
            TimeZone::get(name).with_context(|| {
                format!("--tz {name}: not a time zone (an IANA name such as Asia/Seoul, Europe/Berlin or UTC)")
            })?
        };
        return Ok((tz, name.to_string()));
    }
    let tz = TimeZone::try_system().unwrap_or(TimeZone::UTC);
    let name = tz
        .iana_name()
        .map(str::to_string)
        .or_else(|| std::env::var("TZ").ok().filter(|t| !t.is_empty()))
        .unwrap_or_else(|| "UTC".into());
    Ok((tz, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(tz: &str) -> Look {
        let (tz, tz_name) = zone(Some(tz)).unwrap();
        Look {
            tz,
            tz_name,
            ..Look::default()
        }
    }

    #[test]
    fn times_are_shown_in_the_zone_with_their_offset() {
        assert_eq!(
            look("Asia/Seoul").time("2026-02-10T01:02:03Z"),
            "2026-02-10T10:02:03+09:00"
        );
        assert_eq!(
            look("UTC").time("2026-02-10T01:02:03.250Z"),
            "2026-02-10T01:02:03.25Z"
        );
        assert_eq!(
            look("America/New_York").time("2026-07-01T12:00:00Z"),
            "2026-07-01T08:00:00-04:00"
        );
        assert!(look("UTC")
            .time("yesterday\x1b[2J")
            .contains("[not a time]"));
        assert!(zone(Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn a_table_fits_its_width_counting_wide_characters_as_two() {
        let l = Look {
            width: Some(40),
            ..Look::default()
        };
        let rows = vec![
            vec![
                "김하늘@corp.example".to_string().into(),
                "arn:aws:iam::111122223333:user/김하늘".to_string().into(),
                "3".to_string().into(),
            ],
            vec![
                "山田".to_string().into(),
                "arn:aws:iam::111122223333:user/yamada".to_string().into(),
                "12".to_string().into(),
            ],
        ];
        let text = l.table(&["PRINCIPAL", "ARN", "N"], rows);
        for line in text.lines() {
            assert!(
                unicode_width::UnicodeWidthStr::width(line) <= 40,
                "{line:?} is wider than 40"
            );
        }
        // The third column starts at the same display column on every line that has it.
        assert!(text.contains("12"));
    }
}
