//! The `sigma pack` columns of `sigma-bench anchors`: the built `sigma` binary run on the file,
//! exactly as a user runs it, one named configuration (command-line arguments) per column.
//!
//! A new configuration is one line in [`PACKS`], or `--pack 'NAME=ARGS'` on the command line.
//! Configurations with `--field` store the text field only and are compared with the text
//! anchors; the others store every line whole and are compared with the whole-file anchors.
//! `{key}` in the arguments stands for the file's conversation key (`--key`, default
//! `conversation`); a configuration using it runs only on files whose lines have that field.
//!
//! Every archive is unpacked again by `sigma unpack` and compared with the input. Speeds are the
//! child process's CPU time (user + system, from `wait4`), packing and unpacking on one thread
//! (`-T 1`), so they compare with the in-process anchors, which run on one thread too; process
//! start-up and file I/O are included.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The `sigma pack` configurations measured by default: column name, then the arguments
/// added to `sigma pack -q -f -T 1 -o ARCHIVE FILE`.
pub const PACKS: &[(&str, &str)] = &[
    ("pack --field text", "--field text"),
    (
        "pack --field text (keyed)",
        "--field text --context-key {key}",
    ),
    ("pack", ""),
    ("pack (keyed)", "--context-key {key}"),
];

/// One named `sigma pack` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    /// The column name.
    pub name: String,
    /// The arguments, `{key}` not yet replaced.
    pub args: Vec<String>,
}

impl Pack {
    /// A configuration from its name and its arguments separated by spaces.
    pub fn new(name: &str, args: &str) -> Pack {
        Pack {
            name: name.to_owned(),
            args: args.split_whitespace().map(str::to_owned).collect(),
        }
    }

    /// Parses `NAME=ARGS` (the `--pack` option).
    pub fn parse(spec: &str) -> Result<Pack, String> {
        let (name, args) = spec
            .split_once('=')
            .ok_or_else(|| format!("--pack {spec:?}: expected NAME=ARGS"))?;
        if name.trim().is_empty() {
            return Err(format!("--pack {spec:?}: empty name"));
        }
        Ok(Pack::new(name.trim(), args))
    }

    /// Whether it stores the text field only (its arguments have `--field`).
    pub fn text_only(&self) -> bool {
        self.args.iter().any(|a| a == "--field")
    }

    /// Whether it needs the conversation key.
    pub fn keyed(&self) -> bool {
        self.args.iter().any(|a| a.contains("{key}"))
    }

    /// The arguments with `{key}` replaced by `key`.
    pub fn args_for(&self, key: &str) -> Vec<String> {
        self.args.iter().map(|a| a.replace("{key}", key)).collect()
    }
}

/// The default configurations.
pub fn defaults() -> Vec<Pack> {
    PACKS.iter().map(|(n, a)| Pack::new(n, a)).collect()
}

/// Runs `sigma` with `args` to completion, returning its standard output and its CPU time
/// (user + system). Fails with its standard error when it exits unsuccessfully.
fn run(sigma: &Path, args: &[String]) -> Result<(Vec<u8>, Duration), String> {
    let shown = || format!("{} {}", sigma.display(), args.join(" "));
    let mut child = Command::new(sigma)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", shown()))?;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut err_pipe = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_end(&mut stdout)
        .map_err(|e| format!("{}: reading its output: {e}", shown()))?;
    stderr.extend(reader.join().unwrap_or_default());
    let (status, cpu) = wait(child.id())?;
    if status != 0 {
        let how = if libc::WIFEXITED(status) {
            format!("exit status {}", libc::WEXITSTATUS(status))
        } else {
            format!("wait status {status:#x}")
        };
        return Err(format!(
            "{} failed ({how}): {}",
            shown(),
            String::from_utf8_lossy(&stderr).trim()
        ));
    }
    Ok((stdout, cpu))
}

/// Waits for the child `pid`; returns its wait status and the CPU time it used.
fn wait(pid: u32) -> Result<(i32, Duration), String> {
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; `pid` is our own child, not yet
    // waited for (std's `Child` is never waited on after this).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = pid as libc::pid_t;
    loop {
        // SAFETY: valid pointers to locals for the duration of the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4: {e}"));
        }
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok((status, time(usage.ru_utime) + time(usage.ru_stime)))
}

/// What one configuration gave on one file.
#[derive(Debug, Clone)]
pub struct Packed {
    /// Archive size.
    pub bytes: u64,
    /// CPU time of `sigma pack`.
    pub encode: Duration,
    /// CPU time of `sigma unpack`.
    pub decode: Duration,
}

/// Where the archives go while measured.
pub fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("sigma-bench-anchors-{}", std::process::id()))
}

/// Packs `file` with configuration `pack` (key `key`), unpacks it and checks the result: the
/// file itself for whole-line configurations, `texts` (each line's `text` field) for text-only
/// ones.
pub fn measure(
    sigma: &Path,
    pack: &Pack,
    key: &str,
    file: &Path,
    texts: &[&[u8]],
) -> Result<Packed, String> {
    let dir = scratch();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stem = file.file_stem().unwrap_or_default().to_string_lossy();
    let slug: String = pack
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let archive = dir.join(format!("{stem}.{slug}.sga"));
    let archive_arg = archive.display().to_string();
    let mut args: Vec<String> = ["pack", "-q", "-f", "-T", "1", "-o", &archive_arg]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(pack.args_for(key));
    args.push(file.display().to_string());
    let (_, encode) = run(sigma, &args)?;
    let bytes = std::fs::metadata(&archive)
        .map_err(|e| format!("{}: {e}", archive.display()))?
        .len();
    let unpack: Vec<String> = ["unpack", "-q", "-T", "1", &archive_arg]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (out, decode) = run(sigma, &unpack)?;
    let _ = std::fs::remove_file(&archive);
    let fail = |what: String| Err(format!("{} of {}: {what}", pack.name, file.display()));
    if pack.text_only() {
        let lines: Vec<&[u8]> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        if lines.len() != texts.len() {
            return fail(format!(
                "unpack gave {} lines, not {}",
                lines.len(),
                texts.len()
            ));
        }
        for (n, (line, text)) in lines.iter().zip(texts).enumerate() {
            let value: serde_json::Value = serde_json::from_slice(line)
                .map_err(|e| format!("{}: unpacked line {}: {e}", pack.name, n + 1))?;
            let got = value.as_str().or_else(|| value["text"].as_str());
            if got.map(str::as_bytes) != Some(*text) {
                return fail(format!("unpacked record {n} differs from the input"));
            }
        }
    } else {
        let input = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        if out != input {
            return fail(format!(
                "unpack gave {} bytes differing from the {}-byte file",
                out.len(),
                input.len()
            ));
        }
    }
    Ok(Packed {
        bytes,
        encode,
        decode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_parse() {
        let p = Pack::parse("block=--block 1MiB --context-key {key}").unwrap();
        assert_eq!(p.name, "block");
        assert_eq!(
            p.args_for("conv"),
            ["--block", "1MiB", "--context-key", "conv"]
        );
        assert!(p.keyed() && !p.text_only());
        assert!(Pack::parse("no equals").is_err());
        assert!(Pack::parse(" =x").is_err());
        let d = defaults();
        assert_eq!(d.iter().filter(|p| p.text_only()).count(), 2);
        assert_eq!(d.iter().filter(|p| p.keyed()).count(), 2);
    }

    #[test]
    fn child_cpu_time_is_measured() {
        let (out, cpu) = run(
            Path::new("sh"),
            &[
                "-c".into(),
                "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo ok".into(),
            ],
        )
        .unwrap();
        assert_eq!(out, b"ok\n");
        assert!(cpu > Duration::ZERO);
        let err = run(
            Path::new("sh"),
            &["-c".into(), "echo bad >&2; exit 3".into()],
        )
        .unwrap_err();
        assert!(
            err.contains("bad") && err.contains("exit status 3"),
            "{err}"
        );
    }
}
