//! [`Records`]: an archive's records as an iterator; [`KeyedRecords`]: with their keys.

use std::io::{Read, Seek};
use std::iter::FusedIterator;

use super::{Archive, ArchiveReader};
use crate::error::Result;

impl<R: Read + Seek> ArchiveReader<R> {
    /// The records in order, each decoded as [`get`](Self::get) decodes it (block payload
    /// checksums verified; recent records cached, so a record's chain is not decoded again).
    /// A damaged record yields its error and the iteration goes on: damage reaches only the
    /// records whose chains include it.
    ///
    /// [`walk`](Self::walk) visits the same records without a copy each and also checks every
    /// block's checksum of decoded content; use it to verify an archive.
    ///
    /// ```
    /// use sigmalang::{ArchiveReader, ArchiveWriter, Codebook};
    ///
    /// let mut w = ArchiveWriter::new(Vec::new(), Codebook::default_codebook(), b"")?;
    /// w.add_in_group(Some(b"chat-1"), b"How do I sort a list in Python?")?;
    /// w.add_in_group(Some(b"chat-1"), b"Use sorted(list) or list.sort().")?;
    /// let archive = w.finish()?;
    ///
    /// let mut r = ArchiveReader::open(std::io::Cursor::new(archive))?;
    /// let records: Vec<Vec<u8>> = r.records().collect::<Result<_, _>>()?;
    /// assert_eq!(records[1], b"Use sorted(list) or list.sort().");
    /// # Ok::<(), sigmalang::Error>(())
    /// ```
    pub fn records(&mut self) -> Records<'_, R> {
        let end = self.len();
        Records {
            reader: self,
            next: 0,
            end,
        }
    }
}

impl<R: Read + Seek> ArchiveReader<R> {
    /// The records in order, as [`records`](Self::records), each with the key of its group
    /// from the archive's index ([`Archive::key`]; `None` for the default group and in an
    /// archive of version 2).
    ///
    /// ```
    /// use sigmalang::{ArchiveOptions, ArchiveReader, ArchiveWriter, Codebook};
    ///
    /// let opts = ArchiveOptions::default().json_lines(true);
    /// let mut w = ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts)?;
    /// w.add_line(Some(b"\"c1\""), b"{\"c\": \"c1\", \"body\": \"{\\\"q\\\": \\\"hi\\\"}\"}\n")?;
    /// w.add_line(None, b"not json\n")?;
    /// let archive = w.finish()?;
    ///
    /// let mut r = ArchiveReader::open(std::io::Cursor::new(archive))?;
    /// let all: Vec<(Option<Vec<u8>>, Vec<u8>)> = r.keyed_records().collect::<Result<_, _>>()?;
    /// assert_eq!(all[0].0.as_deref(), Some(&b"\"c1\""[..]));
    /// assert_eq!(all[1], (None, b"not json\n".to_vec()));
    /// # Ok::<(), sigmalang::Error>(())
    /// ```
    pub fn keyed_records(&mut self) -> KeyedRecords<'_, R> {
        KeyedRecords {
            archive: self.archive().clone(),
            records: self.records(),
        }
    }
}

/// The records of an archive, in order, with their groups' keys: made by
/// [`ArchiveReader::keyed_records`].
pub struct KeyedRecords<'a, R: Read + Seek> {
    archive: Archive,
    records: Records<'a, R>,
}

impl<R: Read + Seek> Iterator for KeyedRecords<'_, R> {
    type Item = Result<(Option<Vec<u8>>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let n = self.records.next;
        let record = self.records.next()?;
        Some(record.map(|r| (self.archive.key(n).map(<[u8]>::to_vec), r)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.records.size_hint()
    }
}

impl<R: Read + Seek> ExactSizeIterator for KeyedRecords<'_, R> {}

impl<R: Read + Seek> FusedIterator for KeyedRecords<'_, R> {}

/// The records of an archive, in order: made by [`ArchiveReader::records`].
pub struct Records<'a, R: Read + Seek> {
    reader: &'a mut ArchiveReader<R>,
    next: u64,
    end: u64,
}

impl<R: Read + Seek> Iterator for Records<'_, R> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        if self.next >= self.end {
            return None;
        }
        let n = self.next;
        self.next += 1;
        Some(self.reader.get(n))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.end - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl<R: Read + Seek> ExactSizeIterator for Records<'_, R> {}

impl<R: Read + Seek> FusedIterator for Records<'_, R> {}
