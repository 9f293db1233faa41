//! Codebooks on the command line: loading `-m MODEL`, and choosing the codebook to decode a
//! file with from the one its header names.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sigmalang::{Codebook, CodebookId};

use crate::error::CliError;
use crate::io::label;
use crate::limits::{human, MAX_CODEBOOK_BYTES};

/// A codebook and where it came from.
#[derive(Clone, Debug)]
pub struct Model {
    /// The codebook.
    pub codebook: Arc<Codebook>,
    /// The file it was loaded from; `None` for the built-in codebook.
    pub path: Option<PathBuf>,
}

impl Model {
    /// The built-in codebook.
    pub fn builtin() -> Model {
        Model {
            codebook: Codebook::default_codebook(),
            path: None,
        }
    }

    /// Loads and checks the codebook file `path`. At most [`MAX_CODEBOOK_BYTES`] are read, so
    /// a device or an endless pipe (`-m /dev/zero`) is refused instead of filling memory.
    pub fn load(path: &Path) -> Result<Model, CliError> {
        let subject = label(path);
        let err = |e: io::Error| CliError::new(&subject, e);
        let file = File::open(path).map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        if meta.is_dir() {
            return Err(CliError::new(subject, "is a directory"));
        }
        let too_large = || {
            CliError::new(
                &subject,
                format!(
                    "is larger than {}, the most a codebook may be (`sigma train` makes none \
                     larger), so it is not one",
                    human(MAX_CODEBOOK_BYTES)
                ),
            )
        };
        if meta.is_file() && meta.len() > MAX_CODEBOOK_BYTES {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(meta.len().min(MAX_CODEBOOK_BYTES) as usize);
        file.take(MAX_CODEBOOK_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(err)?;
        if bytes.len() as u64 > MAX_CODEBOOK_BYTES {
            return Err(too_large());
        }
        let codebook = Codebook::from_bytes(&bytes)
            .map_err(|e| CliError::new(&subject, format!("not a usable codebook: {e}")))?;
        Ok(Model {
            codebook,
            path: Some(path.to_path_buf()),
        })
    }

    /// The codebook in `path` if given, else the built-in one (for writing).
    pub fn load_or_builtin(path: Option<&Path>) -> Result<Model, CliError> {
        path.map_or_else(|| Ok(Model::builtin()), Model::load)
    }

    /// The codebook to decode a `what` (`"stream"`, `"archive"`) named `subject` whose header
    /// says it was made with codebook `made_with`: the one in `path` if given (which must be that
    /// codebook), else the built-in one if it is that codebook.
    pub fn for_decoding(
        made_with: CodebookId,
        path: Option<&Path>,
        what: &str,
        subject: &str,
    ) -> Result<Model, CliError> {
        let model = match path {
            Some(path) => Model::load(path)?,
            None => {
                let builtin = Model::builtin();
                if builtin.codebook.id() != made_with {
                    return Err(CliError::new(
                        subject,
                        format!("this {what} was made with codebook {made_with}; pass it with -m"),
                    ));
                }
                builtin
            }
        };
        let given = model.codebook.id();
        if given != made_with {
            return Err(CliError::new(
                subject,
                format!(
                    "this {what} was made with codebook {made_with}, but {} is codebook {given}",
                    model.name()
                ),
            ));
        }
        Ok(model)
    }

    /// How the codebook is named in messages: `the built-in codebook` or its file.
    pub fn name(&self) -> String {
        match &self.path {
            Some(p) => label(p),
            None => "the built-in codebook".to_string(),
        }
    }

    /// The codebook and its size, for summaries: `default (N bytes)` or `PATH (N bytes)`.
    pub fn describe(&self) -> String {
        let size = self.codebook.serialized_len();
        match &self.path {
            Some(p) => format!("{} ({size} bytes)", label(p)),
            None => format!("default ({size} bytes)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn builtin_decodes_its_own_files_only() {
        let id = Codebook::default_codebook().id();
        let m = Model::for_decoding(id, None, "stream", "x").unwrap();
        assert!(m.path.is_none());
        assert!(m.describe().starts_with("default ("));
        let other = CodebookId(id.0 ^ 1);
        let e = Model::for_decoding(other, None, "archive", "x").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("x: this archive was made with codebook {other}; pass it with -m")
        );
    }

    #[test]
    fn bad_model_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.sgcb");
        fs::write(&p, b"not a codebook").unwrap();
        let e = Model::load(&p).unwrap_err().to_string();
        assert!(e.contains("not a usable codebook"), "{e}");
        assert!(Model::load(&dir.path().join("missing")).is_err());
        assert!(Model::load(dir.path()).is_err());

        let default = Codebook::default_codebook();
        fs::write(&p, default.to_bytes()).unwrap();
        let m = Model::load(&p).unwrap();
        assert_eq!(m.codebook.id(), default.id());
        assert!(m.describe().contains("m.sgcb"));
    }
}
