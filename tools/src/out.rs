//! Where output goes: [`Out`] (buffered stdout with the `--json`/`--hex` settings), the
//! streaming JSON writer [`JsonDoc`], progress bars, and the exit [`Outcome`].
//!
//! Big outputs (every record of a log, every entry of a table) are streamed, never collected:
//! text line by line, JSON as one document written piece by piece.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::fmt::Bytes;

/// How a command ended, when it ran to completion. Errors (could not run) are `Err`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: clean, found.
    Ok,
    /// Exit 1: ran, and found problems (damage, a failed check, a key not found).
    Problems,
}

/// Buffered standard output plus the output settings shared by every subcommand.
pub struct Out {
    w: io::BufWriter<io::Stdout>,
    /// `--json`: one JSON document on stdout instead of text.
    pub json: bool,
    /// `--hex`: how keys and values are shown and read.
    pub bytes: Bytes,
}

impl Out {
    /// Standard output with the given settings.
    pub fn stdout(json: bool, hex: bool) -> Self {
        Out { w: io::BufWriter::new(io::stdout()), json, bytes: Bytes::from_flag(hex) }
    }

    /// Writes one value as a JSON document followed by a newline.
    pub fn json_value(&mut self, v: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut self.w, v)?;
        self.w.write_all(b"\n")
    }

    /// Starts a streamed JSON object on this output.
    pub fn json_doc(&mut self) -> io::Result<JsonDoc<'_>> {
        JsonDoc::begin(&mut self.w)
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// A JSON object written incrementally: scalar fields, and lists whose items are written one
/// at a time, so a dump of millions of entries needs no memory for them.
pub struct JsonDoc<'a> {
    w: &'a mut dyn Write,
    first_field: bool,
    /// Inside a list: whether no item was written yet.
    list: Option<bool>,
}

impl<'a> JsonDoc<'a> {
    fn begin(w: &'a mut dyn Write) -> io::Result<Self> {
        w.write_all(b"{")?;
        Ok(JsonDoc { w, first_field: true, list: None })
    }

    fn key(&mut self, name: &str) -> io::Result<()> {
        self.end_list()?;
        if !self.first_field {
            self.w.write_all(b",")?;
        }
        self.first_field = false;
        write!(self.w, "\n  {}: ", serde_json::to_string(name)?)
    }

    /// Writes a field.
    pub fn field(&mut self, name: &str, v: &impl Serialize) -> io::Result<()> {
        self.key(name)?;
        serde_json::to_writer(&mut *self.w, v)?;
        Ok(())
    }

    /// Opens a list field; follow with [`Self::item`] calls. The list closes at the next field
    /// or at [`Self::finish`].
    pub fn list(&mut self, name: &str) -> io::Result<()> {
        self.key(name)?;
        self.w.write_all(b"[")?;
        self.list = Some(true);
        Ok(())
    }

    /// Appends one item to the open list.
    pub fn item(&mut self, v: &impl Serialize) -> io::Result<()> {
        match self.list {
            Some(true) => self.list = Some(false),
            Some(false) => self.w.write_all(b",")?,
            None => return Err(io::Error::other("JSON list item outside a list")),
        }
        self.w.write_all(b"\n    ")?;
        serde_json::to_writer(&mut *self.w, v)?;
        Ok(())
    }

    fn end_list(&mut self) -> io::Result<()> {
        if let Some(empty) = self.list.take() {
            self.w.write_all(if empty { b"]" } else { b"\n  ]" })?;
        }
        Ok(())
    }

    /// Closes the object (and any open list).
    pub fn finish(mut self) -> io::Result<()> {
        self.end_list()?;
        self.w.write_all(b"\n}\n")
    }
}

/// A progress bar over `total` bytes on stderr, drawn only when stderr is a terminal; hidden,
/// it costs nothing and prints nothing (pipes, CI, tests).
pub fn progress(total: u64, what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg:>12} [{bar:30}] {bytes}/{total_bytes} ({eta})")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

/// A spinner with the elapsed time on stderr, for work of unknown length; like [`progress`],
/// drawn only when stderr is a terminal.
pub fn spinner(what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_doc_is_valid_json() {
        let mut buf = Vec::new();
        let mut d = JsonDoc::begin(&mut buf).unwrap();
        d.field("a", &1).unwrap();
        d.list("empty").unwrap();
        d.list("xs").unwrap();
        d.item(&"x").unwrap();
        d.item(&serde_json::json!({"k": [1, 2]})).unwrap();
        d.field("b", &"two").unwrap();
        d.list("last").unwrap();
        d.item(&3).unwrap();
        d.finish().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(v["empty"], serde_json::json!([]));
        assert_eq!(v["xs"][1]["k"][1], 2);
        assert_eq!(v["b"], "two");
        assert_eq!(v["last"][0], 3);
    }
}
