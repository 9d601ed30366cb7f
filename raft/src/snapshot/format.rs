//! The snapshot stream: a kho checkpoint's files framed into one byte stream, with a
//! checksum per file (grammar and worked example in docs/scale-out.md, "Snapshot format").
//!
//! ```text
//! stream := magic "KHOSNAP1" | file_count: u32 BE | file{file_count} | end "KHOSEND1"
//! file   := name_len: u16 BE | name | data_len: u64 BE | crc32(name | data): u32 BE | data
//! ```
//!
//! Invariants: names are plain file names (1-255 bytes, no `/`, not `.` or `..`, no NUL), so
//! unpacking can only create files inside the target directory; every file's checksum is
//! verified before a byte of it is written; a stream with trailing bytes, a short file or a
//! missing end marker is refused. Unpacking syncs every file and then the directory.

use std::path::Path;

use kho::vfs::FileSystem;

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"KHOSNAP1";
const END: &[u8; 8] = b"KHOSEND1";
/// At most this many files in one snapshot (a kho database holds far fewer).
pub const MAX_FILES: u32 = 1_000_000;
/// Longest file name accepted.
pub const MAX_NAME_LEN: usize = 255;

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(Error::corrupt("snapshot stream", format!("file name of {} bytes is not a plain file name", name.len())))
    }
}

fn file_crc(name: &[u8], data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(name);
    h.update(data);
    h.finalize()
}

/// Packs every file of the flat directory `dir` on `fs`, in name order.
pub fn pack(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u8>> {
    let mut names = fs.list(dir)?;
    names.sort();
    let count = u32::try_from(names.len())
        .ok()
        .filter(|c| *c <= MAX_FILES)
        .ok_or_else(|| Error::Invalid(format!("{} files is too many for one snapshot", names.len())))?;
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&count.to_be_bytes());
    for name in &names {
        check_name(name)?;
        let data = fs.read_all(&dir.join(name))?;
        let name_len = u16::try_from(name.len()).map_err(|_| Error::Invalid("file name too long".into()))?;
        out.extend_from_slice(&name_len.to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(data.len() as u64).to_be_bytes());
        out.extend_from_slice(&file_crc(name.as_bytes(), &data).to_be_bytes());
        out.extend_from_slice(&data);
    }
    out.extend_from_slice(END);
    Ok(out)
}

/// A cursor over the stream that fails with `Corrupt` instead of reading past the end.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let end =
            end.ok_or_else(|| Error::corrupt("snapshot stream", format!("cut short in {what} at byte {}", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
}

/// One file of a parsed stream.
pub struct PackedFile<'a> {
    /// Its plain name.
    pub name: &'a str,
    /// Its bytes (checksum verified).
    pub data: &'a [u8],
}

/// Parses and verifies the whole stream (every checksum) without writing anything.
pub fn parse(stream: &[u8]) -> Result<Vec<PackedFile<'_>>> {
    let mut r = Reader { buf: stream, pos: 0 };
    if r.take(8, "magic")? != MAGIC {
        return Err(Error::corrupt("snapshot stream", "not a kho snapshot (bad magic)"));
    }
    let count = u32::from_be_bytes(r.array("file count")?);
    if count > MAX_FILES {
        return Err(Error::corrupt("snapshot stream", format!("{count} files is more than {MAX_FILES}")));
    }
    let mut files = Vec::new();
    for i in 0..count {
        let name_len = usize::from(u16::from_be_bytes(r.array("name length")?));
        let name = std::str::from_utf8(r.take(name_len, "name")?)
            .map_err(|_| Error::corrupt("snapshot stream", format!("file {i}: name is not UTF-8")))?;
        check_name(name)?;
        let len = usize::try_from(u64::from_be_bytes(r.array("data length")?))
            .map_err(|_| Error::corrupt("snapshot stream", format!("file {i}: length does not fit in memory")))?;
        let crc = u32::from_be_bytes(r.array("checksum")?);
        let data = r.take(len, "file data")?;
        if file_crc(name.as_bytes(), data) != crc {
            return Err(Error::corrupt("snapshot stream", format!("file {i} ({name}): checksum mismatch")));
        }
        files.push(PackedFile { name, data });
    }
    if r.take(8, "end marker")? != END || r.pos != stream.len() {
        return Err(Error::corrupt("snapshot stream", "bad end marker or trailing bytes"));
    }
    Ok(files)
}

/// Verifies `stream` completely, then writes its files into the new directory `dir` on `fs`,
/// syncing each file and then the directory.
pub fn unpack(fs: &dyn FileSystem, stream: &[u8], dir: &Path) -> Result<()> {
    let files = parse(stream)?;
    fs.create_dir_all(dir)?;
    for f in files {
        let mut w = fs.create(&dir.join(f.name))?;
        w.append(f.data)?;
        w.sync()?;
    }
    fs.sync_dir(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kho::vfs::FaultFs;

    fn sample() -> (FaultFs, Vec<u8>) {
        let fs = FaultFs::new();
        let dir = Path::new("/src");
        fs.create_dir_all(dir).unwrap();
        for (n, d) in [("CURRENT", &b"MANIFEST-000002\n"[..]), ("000001.sst", &[7u8; 1000][..]), ("empty.log", &[][..])]
        {
            let mut w = fs.create(&dir.join(n)).unwrap();
            w.append(d).unwrap();
            w.sync().unwrap();
        }
        let s = pack(&fs, dir).unwrap();
        (fs, s)
    }

    #[test]
    fn pack_then_unpack_gives_the_same_files() {
        let (fs, s) = sample();
        unpack(&fs, &s, Path::new("/dst")).unwrap();
        let mut names = fs.list(Path::new("/dst")).unwrap();
        names.sort();
        assert_eq!(names, vec!["000001.sst", "CURRENT", "empty.log"]);
        assert_eq!(&fs.read_all(Path::new("/dst/000001.sst")).unwrap()[..], &[7u8; 1000][..]);
    }

    #[test]
    fn every_flipped_bit_or_cut_is_refused() {
        let (_, s) = sample();
        for i in 0..s.len() {
            let mut bad = s.clone();
            bad[i] ^= 0x10;
            assert!(parse(&bad).is_err(), "flip at {i}");
            assert!(parse(&s[..i]).is_err(), "cut at {i}");
        }
        let mut long = s.clone();
        long.push(0);
        assert!(parse(&long).is_err());
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        for n in ["..", ".", "a/b", "", "x\0"] {
            assert!(check_name(n).is_err(), "{n:?}");
        }
    }
}
