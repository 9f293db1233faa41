//! Inputs and outputs: choosing where output goes, opening inputs, and writing file outputs
//! through a temporary file that is renamed into place only when everything succeeded.
//!
//! The rules, as in zstd and xz: standard input goes to standard output; `FILE` compresses to
//! `FILE.sgm` and `FILE.sgm` decompresses to `FILE`; an existing output is never overwritten
//! without `-f`; the input is never modified. A file output is written to a temporary file in
//! the destination's directory, flushed and synced, then renamed over the destination; if
//! anything fails first, the temporary file is deleted and the destination is untouched.

use std::ffi::OsString;
use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, IsTerminal, Read, StdoutLock, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{one_line, CliError};
use crate::CodecArgs;

/// The suffix of compressed files, without its dot.
pub const SUFFIX: &str = "sgm";

/// How standard input is named in messages.
pub const STDIN_LABEL: &str = "<stdin>";

/// How standard output is named in messages.
pub const STDOUT_LABEL: &str = "<stdout>";

/// Size of the buffers used to stream data through.
pub const BUF_SIZE: usize = 256 << 10;

/// A path as shown in messages (on one line whatever its bytes).
pub fn label(path: &Path) -> String {
    one_line(&path.display().to_string())
}

/// Prints a warning to standard error unless `quiet`.
pub fn warn(quiet: bool, message: impl std::fmt::Display) {
    if !quiet {
        eprintln!("sigma: warning: {}", one_line(&message.to_string()));
    }
}

/// Where input comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Standard input (no FILE, or `-`).
    Stdin,
    /// A file.
    File(PathBuf),
}

/// An opened input.
pub struct Opened {
    /// The bytes of the input.
    pub reader: Box<dyn Read>,
    /// Its length, if known (a regular file).
    pub len: Option<u64>,
    /// Its permissions, which a file output copies (as gzip and zstd do).
    pub permissions: Option<Permissions>,
}

impl Input {
    /// The input named by a FILE argument: standard input for none or `-`.
    pub fn from_arg(arg: Option<&Path>) -> Input {
        match arg {
            None => Input::Stdin,
            Some(p) if p.as_os_str() == "-" => Input::Stdin,
            Some(p) => Input::File(p.to_path_buf()),
        }
    }

    /// The input's name in messages.
    pub fn label(&self) -> String {
        match self {
            Input::Stdin => STDIN_LABEL.to_string(),
            Input::File(p) => label(p),
        }
    }

    /// The input's path, if it is a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Input::Stdin => None,
            Input::File(p) => Some(p),
        }
    }

    /// Whether the input is a terminal (someone typing).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Input::Stdin) && io::stdin().is_terminal()
    }

    /// Opens the input for reading.
    pub fn open(&self) -> Result<Opened, CliError> {
        match self {
            Input::Stdin => Ok(Opened {
                reader: Box::new(io::stdin().lock()),
                len: None,
                permissions: None,
            }),
            Input::File(path) => {
                let err = |e: io::Error| CliError::new(label(path), e);
                let file = File::open(path).map_err(err)?;
                let meta = file.metadata().map_err(err)?;
                if meta.is_dir() {
                    return Err(CliError::new(label(path), "is a directory"));
                }
                let is_file = meta.is_file();
                Ok(Opened {
                    reader: Box::new(file),
                    len: is_file.then_some(meta.len()),
                    permissions: is_file.then(|| meta.permissions()),
                })
            }
        }
    }

    /// Reads the whole input into memory (for commands that need it at once).
    pub fn read_all(&self) -> Result<Vec<u8>, CliError> {
        let mut opened = self.open()?;
        let mut data = Vec::with_capacity(opened.len.unwrap_or(0).min(1 << 30) as usize);
        opened
            .reader
            .read_to_end(&mut data)
            .map_err(|e| CliError::new(self.label(), e))?;
        Ok(data)
    }
}

/// Which way the data goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Text to SigmaLang.
    Compress,
    /// SigmaLang to text.
    Decompress,
}

/// Where output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Standard output.
    Stdout,
    /// A file (written through a temporary file).
    File(PathBuf),
}

impl Target {
    /// The output's name in messages.
    pub fn label(&self) -> String {
        match self {
            Target::Stdout => STDOUT_LABEL.to_string(),
            Target::File(p) => label(p),
        }
    }
}

/// Decides where the output of `mode` on `input` goes, and checks that it may be written:
/// it must not exist (unless `-f`), must not be a directory, and must not be the input.
pub fn plan_output(input: &Input, args: &CodecArgs, mode: Mode) -> Result<Target, CliError> {
    let dest = match (&args.output, input) {
        _ if args.stdout => return Ok(Target::Stdout),
        (Some(out), _) if out.as_os_str() == "-" => return Ok(Target::Stdout),
        (Some(out), _) => out.clone(),
        (None, Input::Stdin) => return Ok(Target::Stdout),
        (None, Input::File(path)) => default_output(path, mode)?,
    };
    check_destination(&dest, input.path(), args.force)?;
    Ok(Target::File(dest))
}

/// Checks that the file `dest` may be written: it must not be a directory, must not be one of
/// `inputs`, and must not exist unless `force`.
pub fn check_destination<'a>(
    dest: &Path,
    inputs: impl IntoIterator<Item = &'a Path>,
    force: bool,
) -> Result<(), CliError> {
    let Ok(meta) = fs::symlink_metadata(dest) else {
        return Ok(());
    };
    if meta.is_dir() || fs::metadata(dest).is_ok_and(|m| m.is_dir()) {
        return Err(CliError::new(label(dest), "is a directory"));
    }
    if inputs.into_iter().any(|input| same_file(input, dest)) {
        return Err(CliError::new(
            label(dest),
            "the output would be the input file itself",
        ));
    }
    if !force {
        return Err(CliError::new(
            label(dest),
            "already exists; use -f to overwrite it",
        ));
    }
    Ok(())
}

/// The target named by an `-o` argument of the commands that always name their output (`-` is
/// standard output), checked with [`check_destination`]. With `binary`, standard output must not
/// be a terminal unless `force`.
pub fn named_target<'a>(
    out: &Path,
    inputs: impl IntoIterator<Item = &'a Path>,
    force: bool,
    binary: bool,
) -> Result<Target, CliError> {
    if out.as_os_str() == "-" {
        if binary && !force && io::stdout().is_terminal() {
            return Err(CliError::new(
                STDOUT_LABEL,
                "refusing to write binary data to a terminal (use -o FILE, or -f to force)",
            ));
        }
        return Ok(Target::Stdout);
    }
    check_destination(out, inputs, force)?;
    Ok(Target::File(out.to_path_buf()))
}

/// The output file name for an input file: `FILE.sgm` when compressing, `FILE` for `FILE.sgm`
/// when decompressing.
pub fn default_output(path: &Path, mode: Mode) -> Result<PathBuf, CliError> {
    let has_suffix = path.extension().is_some_and(|e| e == SUFFIX);
    match mode {
        Mode::Compress if has_suffix => Err(CliError::new(
            label(path),
            format!("already has the .{SUFFIX} suffix; use -o OUT or -c to compress it anyway"),
        )),
        Mode::Compress => {
            let mut name = OsString::from(path.as_os_str());
            name.push(".");
            name.push(SUFFIX);
            Ok(PathBuf::from(name))
        }
        Mode::Decompress if has_suffix => Ok(path.with_extension("")),
        Mode::Decompress => Err(CliError::new(
            label(path),
            format!("unknown suffix (expected .{SUFFIX}); use -o OUT or -c to name the output"),
        )),
    }
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// An output being written: standard output, or a temporary file beside the destination.
pub struct Output {
    sink: Sink,
    label: String,
    written: u64,
}

enum Sink {
    Stdout(BufWriter<StdoutLock<'static>>),
    File {
        file: BufWriter<NamedTempFile>,
        dest: PathBuf,
        force: bool,
    },
}

impl Output {
    /// Starts writing to `target`. A file output is created as a temporary file in the
    /// destination's directory with `permissions` (or the default for new files).
    pub fn create(
        target: &Target,
        force: bool,
        permissions: Option<Permissions>,
    ) -> Result<Output, CliError> {
        let label = target.label();
        let sink = match target {
            Target::Stdout => Sink::Stdout(BufWriter::with_capacity(BUF_SIZE, io::stdout().lock())),
            Target::File(dest) => {
                let tmp = temp_file_for(dest).map_err(|e| CliError::new(&label, e))?;
                if let Some(perm) = permissions {
                    tmp.as_file()
                        .set_permissions(perm)
                        .map_err(|e| CliError::new(&label, e))?;
                }
                Sink::File {
                    file: BufWriter::with_capacity(BUF_SIZE, tmp),
                    dest: dest.clone(),
                    force,
                }
            }
        };
        Ok(Output {
            sink,
            label,
            written: 0,
        })
    }

    /// The output's name in messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether the output is standard output.
    pub fn is_stdout(&self) -> bool {
        matches!(self.sink, Sink::Stdout(_))
    }

    /// Flushes everything and syncs a file output to disk; the file is not in place yet (see
    /// [`Finished::persist`]).
    pub fn finish(self) -> Result<Finished, CliError> {
        let Output {
            sink,
            label,
            written,
        } = self;
        let is_stdout = matches!(sink, Sink::Stdout(_));
        let err = |e: io::Error| CliError::write(&label, e, is_stdout);
        let temp = match sink {
            Sink::Stdout(mut out) => {
                out.flush().map_err(err)?;
                None
            }
            Sink::File { file, dest, force } => {
                let tmp = file.into_inner().map_err(|e| err(e.into_error()))?;
                tmp.as_file().sync_all().map_err(err)?;
                Some((tmp, dest, force))
            }
        };
        Ok(Finished {
            temp,
            label,
            written,
        })
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.sink {
            Sink::Stdout(out) => out.write(buf)?,
            Sink::File { file, .. } => file.write(buf)?,
        };
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(out) => out.flush(),
            Sink::File { file, .. } => file.flush(),
        }
    }
}

/// Creates the temporary file for `dest`: hidden, in the same directory (so the final rename
/// stays on one file system), named after it.
fn temp_file_for(dest: &Path) -> io::Result<NamedTempFile> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".sigma-tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // As for any new file: 0666 less the umask (tempfile's default would be 0600).
        builder.permissions(Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// A fully written (and, for a file, synced) output, waiting to be put in place.
pub struct Finished {
    temp: Option<(NamedTempFile, PathBuf, bool)>,
    label: String,
    written: u64,
}

impl Finished {
    /// Bytes written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The temporary file holding the output, for a file output.
    pub fn temp_path(&self) -> Option<&Path> {
        self.temp.as_ref().map(|(t, _, _)| t.path())
    }

    /// Renames the temporary file over the destination (refusing to replace a file that appeared
    /// meanwhile unless `-f`) and syncs the directory. With `strict`, a failure to sync the
    /// directory is an error (the caller is about to delete the input).
    pub fn persist(self, strict: bool) -> Result<(), CliError> {
        let Some((tmp, dest, force)) = self.temp else {
            return Ok(());
        };
        let result = if force {
            tmp.persist(&dest)
        } else {
            tmp.persist_noclobber(&dest)
        };
        if let Err(e) = result {
            // Dropping the PersistError's file removes the temporary file.
            let message = if !force && e.error.kind() == io::ErrorKind::AlreadyExists {
                "already exists; use -f to overwrite it".to_string()
            } else {
                e.error.to_string()
            };
            return Err(CliError::new(&self.label, message));
        }
        match sync_parent(&dest) {
            Err(e) if strict => Err(CliError::new(
                &self.label,
                format!("could not sync the directory: {e}"),
            )),
            _ => Ok(()),
        }
    }
}

/// Syncs the directory holding `path`, so a rename into it survives a crash.
fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CodecArgs {
        CodecArgs::default()
    }

    #[test]
    fn default_names() {
        let p = Path::new("dir/notes.txt");
        assert_eq!(
            default_output(p, Mode::Compress).unwrap(),
            Path::new("dir/notes.txt.sgm")
        );
        assert_eq!(
            default_output(Path::new("dir/notes.txt.sgm"), Mode::Decompress).unwrap(),
            Path::new("dir/notes.txt")
        );
        assert!(default_output(p, Mode::Decompress).is_err());
        assert!(default_output(Path::new("x.sgm"), Mode::Compress).is_err());
        assert!(default_output(Path::new(".sgm"), Mode::Decompress).is_err());
    }

    #[test]
    fn stdin_goes_to_stdout() {
        let t = plan_output(&Input::Stdin, &args(), Mode::Compress).unwrap();
        assert_eq!(t, Target::Stdout);
        assert_eq!(Input::from_arg(Some(Path::new("-"))), Input::Stdin);
        let mut a = args();
        a.output = Some(PathBuf::from("-"));
        let input = Input::File(PathBuf::from("x"));
        assert_eq!(
            plan_output(&input, &a, Mode::Compress).unwrap(),
            Target::Stdout
        );
    }

    #[test]
    fn temp_file_is_removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.sgm");
        let target = Target::File(dest.clone());
        let mut out = Output::create(&target, false, None).unwrap();
        out.write_all(b"data").unwrap();
        drop(out);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut out = Output::create(&target, false, None).unwrap();
        out.write_all(b"data").unwrap();
        let done = out.finish().unwrap();
        assert_eq!(done.written(), 4);
        done.persist(true).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"data");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
