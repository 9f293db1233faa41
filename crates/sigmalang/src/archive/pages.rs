//! Block mode of [`ArchiveWriter`] ([`ArchiveOptions::page_bytes`](super::ArchiveOptions)):
//! consecutive records are grouped into pages, each coded as one payload with the stream's
//! chunk coder, at once or on the batch encoder's workers (a page a job).

use std::io::Write;

use super::batch::Pending;
use super::writer::Coder;
use super::ArchiveWriter;
use crate::error::{Error, Result};
use crate::record::MAX_RECORD_LEN;

impl<W: Write> ArchiveWriter<W> {
    /// Adds `record` in context `cid` to the page being filled, which is coded once its records
    /// hold at least `page_bytes`; returns the record's index.
    pub(super) fn add_to_page(&mut self, cid: u32, record: &[u8]) -> Result<u64> {
        let len = record.len() as u64;
        if len > MAX_RECORD_LEN {
            return Err(Error::invalid(format!(
                "record of {len} bytes exceeds the {MAX_RECORD_LEN}-byte limit"
            )));
        }
        // A page is coded as one payload, which may hold at most MAX_RECORD_LEN bytes.
        if self.page.len() as u64 + len > MAX_RECORD_LEN {
            self.flush_page()?;
        }
        let index = self.len();
        self.page.extend_from_slice(record);
        self.page_members.push((cid, len));
        if self.page.len() as u64 >= self.opts.page_bytes {
            self.flush_page()?;
        }
        Ok(index)
    }

    /// Ends the page being filled, if it holds any record: codes and writes it, or hands it to
    /// the batch encoder (whose batch is full at two pages a worker). Pages depend on nothing
    /// else, so the bytes are the same however they are batched.
    pub(super) fn flush_page(&mut self) -> Result<()> {
        if self.page_members.is_empty() {
            return Ok(());
        }
        let members = std::mem::take(&mut self.page_members);
        let workers = self.opts.worker_count();
        match &mut self.coder {
            Coder::Now(_) => {
                let page = std::mem::take(&mut self.page);
                let mut payload = std::mem::take(&mut self.payload);
                payload.clear();
                let r = self
                    .encoder
                    .encode_chunk(&page, &mut payload)
                    .and_then(|()| self.commit_page(&members, &payload, &page));
                self.payload = payload;
                self.page = page;
                self.page.clear();
                r
            }
            Coder::Batches(batches) => {
                let page = std::mem::replace(
                    &mut self.page,
                    Vec::with_capacity(self.opts.page_bytes.min(1 << 20) as usize),
                );
                batches.pending_bytes += page.len();
                batches.pending.push(Pending {
                    context: 0,
                    record: page,
                    members,
                });
                if batches.pending.len() >= 2 * workers {
                    self.flush_batch()?;
                }
                Ok(())
            }
        }
    }

    /// Writes a coded page and its index entries.
    pub(super) fn commit_page(
        &mut self,
        members: &[(u32, u64)],
        payload: &[u8],
        page: &[u8],
    ) -> Result<()> {
        self.inner.write_all(payload)?;
        self.index.add_page(members, payload, page);
        self.offset += payload.len() as u64;
        self.bytes_in += page.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::archive::testing::*;
    use crate::archive::{ArchiveOptions, ArchiveReader, ArchiveWriter};
    use crate::codebook::Codebook;
    use crate::error::ErrorKind;
    use std::io::Cursor;

    /// Keyed and unkeyed records of every size: conversations, system-prompt logs, short
    /// lines, empty records.
    fn mixed() -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
        let mut records: Vec<(Option<Vec<u8>>, Vec<u8>)> = Vec::new();
        for (i, r) in history(12).into_iter().enumerate() {
            records.push((Some(b"h".to_vec()), r));
            records.push((None, format!("short line {i} (data files)").into_bytes()));
            records.push((None, Vec::new()));
        }
        for (k, t) in system_prompt_logs(6) {
            records.push((Some(k), t));
        }
        records
    }

    fn build_paged(
        records: &[(Option<Vec<u8>>, Vec<u8>)],
        page_bytes: u64,
        batch_records: u32,
        threads: usize,
    ) -> Vec<u8> {
        let opts = ArchiveOptions::default()
            .page_bytes(page_bytes)
            .batch_records(batch_records)
            .threads(threads);
        let mut w =
            ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"m", opts)
                .unwrap();
        for (n, (k, r)) in records.iter().enumerate() {
            assert_eq!(w.add_in_group(k.as_deref(), r).unwrap(), n as u64);
            assert_eq!(w.len(), n as u64 + 1);
        }
        w.finish().unwrap()
    }

    #[test]
    fn pages_round_trip_and_do_not_depend_on_threads() {
        let records = mixed();
        for page_bytes in [1u64, 100, 4096, 1 << 20] {
            let one = build_paged(&records, page_bytes, 1, 1);
            for (batch, threads) in [(64, 1), (64, 2), (64, 3)] {
                assert_eq!(
                    one,
                    build_paged(&records, page_bytes, batch, threads),
                    "pages of {page_bytes}, batch {batch}, {threads} threads"
                );
            }
            let mut r = ArchiveReader::open(Cursor::new(&one)).unwrap();
            assert_eq!(r.len(), records.len() as u64);
            assert_eq!(r.page_bytes(), page_bytes);
            let mut rng = crate::workers::TestRng(page_bytes);
            for _ in 0..100 {
                let n = rng.below(records.len() as u64);
                assert_eq!(r.get(n).unwrap(), records[n as usize].1, "record {n}");
                assert_eq!(r.decoded_len(n).unwrap(), records[n as usize].1.len() as u64);
                assert_eq!(r.chain(n), vec![n]);
            }
            // Groups are still recorded per record: the keyed ones in order of first use.
            let keyed: Vec<u32> = (0..3).map(|n| r.info(n).unwrap().group).collect();
            assert_eq!(keyed, vec![1, 0, 0]);
            let walked = r.walk(|n, rec| assert_eq!(rec.unwrap(), &records[n as usize].1[..]));
            assert_eq!(walked, 0);
            let got: Vec<Vec<u8>> = r.records().map(|x| x.unwrap()).collect();
            assert!(got.iter().zip(&records).all(|(a, b)| *a == b.1));
            let mut events = Vec::new();
            let failed = r
                .walk_in_runs(|| Ok(Cursor::new(&one[..])), 2, (2, 1 << 10), |n, rec| {
                    events.push((n, rec.unwrap().to_vec()));
                    std::ops::ControlFlow::Continue(())
                })
                .unwrap();
            assert_eq!(failed, 0);
            assert_eq!(events.len(), records.len());
            assert!(events.iter().all(|(n, b)| *b == records[*n as usize].1));
        }
        // Pages of 1 byte hold one record each (empty ones join the next); larger pages fewer.
        let small = build_paged(&records, 4096, 1, 1);
        let big = build_paged(&records, 1 << 20, 1, 1);
        assert!(big.len() < small.len(), "{} vs {}", big.len(), small.len());
    }

    #[test]
    fn reading_in_order_decodes_each_page_once() {
        let records: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..400)
            .map(|i| (None, format!("line {i}: some text about pages").into_bytes()))
            .collect();
        let bytes = build_paged(&records, 2048, 1, 1);
        let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        let pages = r.page_of(399).unwrap() + 1;
        assert!(pages > 3, "{pages} pages");
        let mut read = 0;
        for n in 0..400 {
            assert_eq!(r.get(n).unwrap(), records[n as usize].1);
            read += r.last_read_bytes();
        }
        // Every page's payload read once: the archive minus head, index and footer.
        assert!(read < bytes.len() as u64, "{read} of {}", bytes.len());
    }

    #[test]
    fn damage_stays_in_its_page() {
        let records: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..60)
            .map(|i| (None, format!("record {i} with a few words").into_bytes()))
            .collect();
        let mut bytes = build_paged(&records, 300, 1, 1);
        let r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        let page = r.page_of(30).unwrap();
        let members: Vec<u64> = (0..60).filter(|&n| r.page_of(n) == Some(page)).collect();
        let at = r.info(members[0]).unwrap().offset as usize + 2;
        bytes[at] ^= 0x08;
        let mut r = ArchiveReader::open(Cursor::new(&bytes)).unwrap();
        let mut failed = Vec::new();
        r.walk(|n, rec| match rec {
            Ok(b) => assert_eq!(b, &records[n as usize].1[..]),
            Err(e) => {
                assert!(matches!(e.kind(), ErrorKind::Checksum { .. }), "{e}");
                failed.push(n);
            }
        });
        assert_eq!(failed, members);
    }

    #[test]
    fn page_size_is_bounded() {
        let opts = ArchiveOptions::default().page_bytes(super::super::MAX_PAGE_BYTES + 1);
        assert!(
            ArchiveWriter::with_options(Vec::new(), Codebook::default_codebook(), b"", opts)
                .is_err()
        );
    }
}
