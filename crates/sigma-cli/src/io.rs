//! Inputs and outputs: choosing where output goes, opening inputs, and writing file outputs
//! through a temporary file that is renamed into place only when everything succeeded.
//!
//! The rules, as in zstd and xz: standard input goes to standard output; `FILE` compresses to
//! `FILE.sgm` and `FILE.sgm` decompresses to `FILE`; an existing output is never overwritten
//! without `-f`; the input is never modified. A file output is written to a temporary file in
//! the destination's directory, given the input's metadata, synced, then renamed over the
//! destination; if anything fails first (or a signal comes, see [`crate::signals`]), the
//! temporary file is deleted and the destination is untouched. A destination that exists and
//! is not a regular file (a device, a FIFO, a symbolic link) is never replaced: it is opened
//! and written through.

use std::ffi::OsString;
use std::fs::{self, File, Metadata, Permissions};
use std::io::{self, BufWriter, IsTerminal, Read, StdoutLock, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{one_line, CliError};
use crate::signals;
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
    /// Its metadata if it is a regular file, which a file output copies (as gzip and zstd
    /// do).
    pub metadata: Option<Metadata>,
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

    /// Fails if the input is a directory (checked before anything else, so the message says
    /// so rather than something about its name).
    pub fn check_not_directory(&self) -> Result<(), CliError> {
        match self {
            Input::File(p) if fs::metadata(p).is_ok_and(|m| m.is_dir()) => {
                Err(CliError::new(label(p), "is a directory"))
            }
            _ => Ok(()),
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
                metadata: None,
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
                    metadata: is_file.then_some(meta),
                })
            }
        }
    }

    /// Reads the whole input into memory (for commands that need it at once).
    /// Reads the whole input, at most `max` bytes: a longer input is refused, naming the cap
    /// and `why` it exists, before more than `max + 1` bytes are held.
    pub fn read_all(&self, max: u64, why: &str) -> Result<Vec<u8>, CliError> {
        let opened = self.open()?;
        if opened.len.is_some_and(|len| len > max) {
            return Err(too_large(self.label(), max, why));
        }
        let mut data = Vec::with_capacity(opened.len.unwrap_or(0).min(max) as usize);
        opened
            .reader
            .take(max + 1)
            .read_to_end(&mut data)
            .map_err(|e| CliError::new(self.label(), e))?;
        if data.len() as u64 > max {
            return Err(too_large(self.label(), max, why));
        }
        Ok(data)
    }
}

/// The error for an input over the `max` bytes a command reads whole.
fn too_large(label: String, max: u64, why: &str) -> CliError {
    CliError::new(
        label,
        format!(
            "larger than {}, the most this command reads ({why})",
            crate::limits::human(max)
        ),
    )
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
    // Writing into the null device replaces nothing: no -f needed (as with zstd).
    let null_device = dest == Path::new("/dev/null") && writes_through(dest);
    if !force && !null_device {
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

/// Whether `a` and `b` name the same existing file, whatever the names: the same device and
/// inode once symbolic links are followed, so hard links and links to links count too.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (fs::metadata(a), fs::metadata(b)) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// An output being written: standard output, a temporary file beside the destination, or an
/// existing device, FIFO or symbolic link written through.
pub struct Output {
    sink: Sink,
    label: String,
    written: u64,
    /// The input's metadata, copied to a file output when it is finished.
    source: Option<Metadata>,
}

enum Sink {
    Stdout(BufWriter<StdoutLock<'static>>),
    /// A new regular file: written to a temporary file that is renamed over the destination.
    Temp {
        file: BufWriter<TempFile>,
        dest: PathBuf,
        force: bool,
    },
    /// An existing destination that is not a regular file (a device such as `/dev/null`, a
    /// FIFO, a symbolic link): opened and written into, as zstd does, never replaced.
    Through(BufWriter<File>),
}

impl Output {
    /// Starts writing to `target`. A destination that exists and is not a regular file (a
    /// device, a FIFO, a symbolic link) is opened and written through; any other is created as
    /// a temporary file in the destination's directory. `source` is the input's metadata, which
    /// a new file gets when finished (mode, owner where permitted, access and modification
    /// times, as zstd and gzip do).
    pub fn create(
        target: &Target,
        force: bool,
        source: Option<&Metadata>,
    ) -> Result<Output, CliError> {
        let label = target.label();
        let sink = match target {
            Target::Stdout => Sink::Stdout(BufWriter::with_capacity(BUF_SIZE, io::stdout().lock())),
            Target::File(dest) if writes_through(dest) => {
                let file = fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(dest)
                    .map_err(|e| CliError::new(&label, e))?;
                Sink::Through(BufWriter::with_capacity(BUF_SIZE, file))
            }
            Target::File(dest) => {
                // A symbolic link to a regular file: the file it leads to is replaced like any
                // other (a complete temporary file renamed over it), and the link stays.
                let dest = match fs::symlink_metadata(dest) {
                    Ok(m) if m.file_type().is_symlink() => {
                        fs::canonicalize(dest).map_err(|e| CliError::new(&label, plain(e)))?
                    }
                    _ => dest.clone(),
                };
                let tmp = TempFile::beside(&dest).map_err(|e| CliError::new(&label, plain(e)))?;
                Sink::Temp {
                    file: BufWriter::with_capacity(BUF_SIZE, tmp),
                    dest,
                    force,
                }
            }
        };
        Ok(Output {
            sink,
            label,
            written: 0,
            source: source.cloned(),
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

    /// Whether the output is a regular file that `sigma` writes whole (a temporary file renamed
    /// into place): the only kind of output after which `--rm` deletes the input.
    pub fn is_new_file(&self) -> bool {
        matches!(self.sink, Sink::Temp { .. })
    }

    /// Flushes everything; a new file is not in place yet (see [`Finished::persist`]).
    pub fn finish(self) -> Result<Finished, CliError> {
        let Output {
            sink,
            label,
            written,
            source,
        } = self;
        let is_stdout = matches!(sink, Sink::Stdout(_));
        let err = |e: io::Error| CliError::write(&label, plain(e), is_stdout);
        let temp = match sink {
            Sink::Stdout(mut out) => {
                out.flush().map_err(err)?;
                None
            }
            Sink::Through(out) => {
                let file = out.into_inner().map_err(|e| err(e.into_error()))?;
                // Devices and FIFOs cannot be synced (fsync fails on them); what a link
                // leads to can.
                if file.metadata().is_ok_and(|m| m.is_file()) {
                    file.sync_all().map_err(err)?;
                }
                None
            }
            Sink::Temp { file, dest, force } => {
                let tmp = file.into_inner().map_err(|e| err(e.into_error()))?;
                Some(Pending {
                    tmp,
                    dest,
                    force,
                    source,
                })
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
            Sink::Temp { file, .. } => file.write(buf)?,
            Sink::Through(file) => file.write(buf)?,
        };
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(out) => out.flush(),
            Sink::Temp { file, .. } => file.flush(),
            Sink::Through(file) => file.flush(),
        }
    }
}

/// Whether an output to `dest` is written through it: it exists and is, or leads to, neither a
/// regular file nor a directory (a device, a FIFO, a socket, or a dangling symbolic link). A
/// symbolic link to a regular file is not written through: the file it leads to is replaced by
/// a complete new file, so a failure part-way never leaves it truncated.
pub fn writes_through(dest: &Path) -> bool {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::metadata(dest).map_or(true, |t| !t.is_file() && !t.is_dir())
        }
        Ok(m) => !m.is_file() && !m.is_dir(),
        Err(_) => false,
    }
}

/// Gives `file` the metadata of the input `meta`: owner and group (where permitted: as root,
/// or the group alone if the user belongs to it), permission bits, access and modification
/// times. The owner goes first, as changing it clears the set-user-ID bits.
fn copy_metadata(file: &File, meta: &Metadata) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // Not permitted for most users; a new file then keeps the user's ownership, as with
        // zstd and gzip.
        if std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid())).is_err() {
            let _ = std::os::unix::fs::fchown(file, None, Some(meta.gid()));
        }
    }
    file.set_permissions(meta.permissions())?;
    let mut times = fs::FileTimes::new();
    if let Ok(t) = meta.modified() {
        times = times.set_modified(t);
    }
    if let Ok(t) = meta.accessed() {
        times = times.set_accessed(t);
    }
    file.set_times(times)
}

/// `e` without the path some libraries add to their messages: a temporary file's name must not
/// appear in messages (it means nothing to the user, and is gone by the time they read it).
fn plain(e: io::Error) -> io::Error {
    if let Some(code) = e.raw_os_error() {
        return io::Error::from_raw_os_error(code);
    }
    // tempfile wraps the operating system's error with the path: take the error it wraps.
    let mut source = e.get_ref().map(|r| r as &(dyn std::error::Error + 'static));
    while let Some(err) = source {
        if let Some(code) = err
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return io::Error::from_raw_os_error(code);
        }
        source = err.source();
    }
    match e.get_ref() {
        Some(_) => io::Error::from(e.kind()),
        None => e,
    }
}

/// The longest file name most file systems take (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// The temporary file a file output is written to: hidden, in the destination's directory (so
/// the final rename stays on one file system), named `.NAME.XXXXXX~` after it (shortened so
/// that the name fits in [`NAME_MAX`] bytes whatever NAME's length). It is registered with
/// [`crate::signals`] while it exists, so a signal removes it.
pub struct TempFile {
    file: Option<NamedTempFile>,
}

impl TempFile {
    /// Creates the temporary file for `dest`, with the permissions of any new file (0666 less
    /// the umask); the input's come when it is finished.
    fn beside(dest: &Path) -> io::Result<TempFile> {
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // '.' + name + '.' + 6 random characters + '~'.
        let room = NAME_MAX - 9;
        let mut end = name.len().min(room);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let prefix = format!(".{}.", &name[..end]);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix("~").rand_bytes(6);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(Permissions::from_mode(0o666));
        }
        let mut registry = signals::registry();
        let file = builder.tempfile_in(dir)?;
        signals::register(&mut registry, file.path());
        Ok(TempFile { file: Some(file) })
    }

    fn file(&self) -> &File {
        self.file
            .as_ref()
            .expect("present until persisted")
            .as_file()
    }

    /// The temporary file's path (never shown in messages).
    pub fn path(&self) -> &Path {
        self.file.as_ref().expect("present until persisted").path()
    }

    /// Renames the file to `dest`, over an existing file only if `force`.
    fn persist(mut self, dest: &Path, force: bool) -> io::Result<()> {
        let mut registry = signals::registry();
        let file = self.file.take().expect("present until persisted");
        let path = file.path().to_path_buf();
        let result = if force {
            file.persist(dest)
        } else {
            file.persist_noclobber(dest)
        };
        // On failure the file comes back in the error; dropping it removes it.
        let result = result.map(drop).map_err(|e| plain(e.error));
        signals::unregister(&mut registry, &path);
        result
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let mut registry = signals::registry();
            let path = file.path().to_path_buf();
            drop(file); // removes it
            signals::unregister(&mut registry, &path);
        }
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut file = self.file();
        file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut file = self.file();
        file.flush()
    }
}

/// A fully written output, waiting to be put in place.
pub struct Finished {
    temp: Option<Pending>,
    label: String,
    written: u64,
}

impl Finished {
    /// Bytes written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The temporary file holding the output, for a new file.
    pub fn temp_path(&self) -> Option<&Path> {
        self.temp.as_ref().map(|p| p.tmp.path())
    }

    /// Gives a new file the input's metadata (last, so that nothing reads or writes it after its
    /// times are set), syncs it, renames it over the destination (refusing to replace a file
    /// that appeared meanwhile unless `-f`) and syncs the directory. With `strict`, a failure to
    /// sync the directory is an error (the caller is about to delete the input).
    pub fn persist(self, strict: bool) -> Result<(), CliError> {
        let Some(Pending {
            tmp,
            dest,
            force,
            source,
        }) = self.temp
        else {
            return Ok(());
        };
        let err = |e: io::Error| CliError::new(&self.label, plain(e));
        if let Some(meta) = &source {
            copy_metadata(tmp.file(), meta).map_err(err)?;
        }
        tmp.file().sync_all().map_err(err)?;
        if let Err(e) = tmp.persist(&dest, force) {
            let message = if !force && e.kind() == io::ErrorKind::AlreadyExists {
                "already exists; use -f to overwrite it".to_string()
            } else {
                e.to_string()
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

/// A new file's output, written and waiting for its rename.
struct Pending {
    tmp: TempFile,
    dest: PathBuf,
    force: bool,
    /// The input's metadata, given to the file before the rename.
    source: Option<Metadata>,
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

    #[test]
    fn temporary_names_fit_in_name_max() {
        let dir = tempfile::tempdir().unwrap();
        // 255 bytes, with a 4-byte character across the cut.
        for name in [
            "x".repeat(255),
            format!("{}👋{}", "a".repeat(244), "b".repeat(7)),
        ] {
            let dest = dir.path().join(&name);
            let tmp = TempFile::beside(&dest).unwrap();
            let temp_name = tmp
                .path()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            assert!(temp_name.len() <= NAME_MAX, "{}", temp_name.len());
            assert!(temp_name.starts_with('.') && temp_name.ends_with('~'));
            assert!(signals::registry().iter().any(|p| p == tmp.path()));
            let path = tmp.path().to_path_buf();
            drop(tmp);
            assert!(!path.exists());
            assert!(!signals::registry().contains(&path), "unregistered");
        }
        let tmp = TempFile::beside(&dir.path().join("short.sgm")).unwrap();
        let temp_name = tmp.path().file_name().unwrap().to_str().unwrap();
        assert!(temp_name.starts_with(".short.sgm.") && temp_name.len() == 18);
    }
}
